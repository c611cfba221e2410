"""What 01_data shows about a dataset: clips per class and split, the skipped-file report, and
which clips to look at and hear (one of each class first)."""

from __future__ import annotations

import html

import numpy as np

from audiogan.datasets.dataset import class_label, label_counts
from audiogan.plots import readable


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Every cell escaped, file names with bytes that are not UTF-8 shown as backslash escapes."""
    head = "".join(f"<th>{html.escape(readable(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(readable(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def counts_html(dataset) -> str:
    """A table of clips per class (rows) and split (columns), with totals."""
    counts = label_counts(dataset)
    name = class_label(dataset) or "class"
    classes = sorted({c for per in counts.values() for c in per}, key=lambda c: (len(c), c))
    splits = list(counts)
    rows = [[c] + [counts[s].get(c, 0) for s in splits] + [sum(counts[s].get(c, 0) for s in splits)]
            for c in classes]
    rows.append(["total"] + [sum(counts[s].values()) for s in splits] + [len(dataset)])
    return _table([name] + splits + ["all"], rows)


def skipped_html(dataset) -> str:
    """Every file that was left out (and why), and every file used with a caveat."""
    skipped = dataset.info.get("skipped", [])
    notes = dataset.info.get("notes", [])
    if "files" not in dataset.info:
        return "<p>An embedded dataset: no files were read, so none was skipped.</p>"
    parts = [f"<p>{len(dataset.info['files'])} audio file(s) found; {len(skipped)} skipped; "
             f"{dataset.info.get('silent_clips', 0)} silent clip(s) dropped.</p>"]
    if skipped:
        parts.append(_table(["skipped file", "reason"], [[s["file"], s["reason"]] for s in skipped]))
    if notes:
        parts.append(_table(["used with a note", "note"], [[n["file"], n["reason"]] for n in notes]))
    return "".join(parts)


def pick_examples(dataset, n: int, seed: int = 0) -> np.ndarray:
    """``n`` clip indices, seeded: one of each class first (training split where there is one)."""
    rng = np.random.default_rng(seed)
    n = min(n, len(dataset))
    name = class_label(dataset)
    chosen: list[int] = []
    if name:
        pool = np.arange(len(dataset))
        if "split" in dataset.labels and (dataset.labels["split"] == "train").any():
            pool = pool[dataset.labels["split"] == "train"]
        for value in np.unique(dataset.labels[name][pool]):
            if len(chosen) < n:
                chosen.append(int(rng.choice(pool[dataset.labels[name][pool] == value])))
    rest = np.setdiff1d(np.arange(len(dataset)), chosen)
    chosen += rng.choice(rest, size=n - len(chosen), replace=False).tolist()
    return np.asarray(chosen)
