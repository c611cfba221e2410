"""What the answers say: shares, mean opinion scores and MUSHRA ratings with 95% intervals, as tables
and a figure; MUSHRA listeners post-screened as ITU-R BS.1534-3 says."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from audiogan.files import atomic_write_text
from audiogan.listening.answers import read_answers
from audiogan.listening.design import CLIP_COLUMN, GENERATED, MUSHRA, REAL, check_answer, folder_path, load_test
from audiogan.listening.mushra import ANCHOR, HIDDEN_REFERENCE
from audiogan.plots import mushra_bars, plot_text, readable

SCREEN_BELOW, SCREEN_SHARE = 90, 0.15  # BS.1534-3: hidden reference under 90 in more than 15% of items


# ---------------------------------------------------------------------------- analysis
def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float, float]:
    """Proportion ``k/n`` with its Wilson score interval (95% by default); NaNs when n is 0."""
    if n == 0:
        return math.nan, math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact ends where rounding would miss them
    hi = 1.0 if k == n else min(1.0, centre + half)
    return p, lo, hi


def mean_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean with its Student-t confidence interval; the interval is NaN for fewer than two values."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    from scipy.stats import t

    half = float(t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def scored_answers(folders: str | os.PathLike | Sequence[str | os.PathLike]) -> list[dict[str, Any]]:
    """Answers of one or several test folders joined with what was hidden: each row gets the
    source, whether the clip was real, its true class, and whether the answer was right; a MUSHRA
    rating (one row per rated clip) gets its ``clip``, the clip's ``condition`` (hidden_reference,
    anchor or a system) and the ``rating`` 0-100. When a listener answered an item (a MUSHRA item's
    clip) twice (a repeated import, a page reopened), the last answer counts."""
    if isinstance(folders, str | os.PathLike):
        folders = [folders]
    rows: dict[tuple, dict[str, Any]] = {}
    for folder in folders:
        test = load_test(folder)
        items, clips = test.item_index, test.clip_index
        for r in sorted(read_answers(folder), key=lambda r: r["answered_at"] or ""):
            clip_id = r.get(CLIP_COLUMN) or None
            if (r["test_id"] != test.test_id or r["item"] not in items
                    or check_answer(items[r["item"]], r["answer"], clip_id) is not None):
                continue  # a row edited by hand into something the test never asked is not an answer
            item = items[r["item"]]
            if item["task"] == MUSHRA:
                clip = clips[clip_id]
                rows[(test.test_id, r["listener"], r["item"], clip_id)] = {
                    "test_id": test.test_id, "listener": r["listener"], "item": r["item"], "task": MUSHRA,
                    "answer": r["answer"], "source": clip["source"], "real": clip["real"], "label": None,
                    "correct": None, "score": None, "clip": clip_id, "condition": clip["condition"],
                    "rating": int(r["answer"]),
                }
                continue
            first = clips[item["clips"][0]]
            row: dict[str, Any] = {
                "test_id": test.test_id, "listener": r["listener"], "item": r["item"], "task": item["task"],
                "answer": r["answer"], "source": first["source"], "real": first["real"],
                "label": first["label"], "correct": None, "score": None,
            }
            if item["task"] == "real_or_fake":
                row["correct"] = r["answer"] == (REAL if first["real"] else GENERATED)
            elif item["task"] == "label":
                row["correct"] = r["answer"] == first["label"]
            else:
                row["score"] = int(r["answer"])
            rows[(test.test_id, r["listener"], r["item"])] = row
    return list(rows.values())


def _proportions(rows: list[dict], keys: Sequence[str]) -> list[dict[str, Any]]:
    groups: dict[tuple, list[bool]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(bool(r["correct"]))
    table = []
    for key in sorted(groups, key=lambda k: tuple(str(x) for x in k)):
        hits = groups[key]
        p, lo, hi = wilson_interval(sum(hits), len(hits))
        table.append(dict(zip(keys, key, strict=True)) | {"n": len(hits), "correct": sum(hits),
                                                         "accuracy": p, "ci_low": lo, "ci_high": hi})
    return table


def post_screen(rows: list[dict[str, Any]], below: float = SCREEN_BELOW, share: float = SCREEN_SHARE
                ) -> list[dict[str, Any]]:
    """BS.1534-3's post-screening of MUSHRA listeners, one row per listener: ``items`` in which they
    rated the hidden reference, ``hidden_reference_below`` how many of those ratings are under
    ``below`` (90), its ``share``, and ``flagged`` when that share is more than ``share`` (15%): a
    listener who cannot find the reference is not judging the systems either."""
    hidden: dict[str, list[int]] = {}
    for r in rows:
        if r["task"] == MUSHRA and r["condition"] == HIDDEN_REFERENCE:
            hidden.setdefault(r["listener"], []).append(r["rating"])
    table = []
    for listener in sorted(hidden):
        low = sum(x < below for x in hidden[listener])
        table.append({"listener": listener, "items": len(hidden[listener]), "hidden_reference_below": low,
                      "share": low / len(hidden[listener]), "flagged": low / len(hidden[listener]) > share})
    return table


def _condition_order(condition: str) -> tuple[int, str]:
    return {HIDDEN_REFERENCE: 0, ANCHOR: 2}.get(condition, 1), condition


def mushra_table(rows: list[dict[str, Any]], by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Per condition (and per each of ``by``, e.g. ``("item",)``): ``n`` ratings, from how many
    ``listeners``, their ``mean`` and its 95% interval (``ci_low``, ``ci_high``) from Student's t over
    the listener-item ratings, each rating one observation (BS.1534-3's interval; ratings of one
    listener are not independent, so it is a little narrow where listeners differ a lot; it is not
    cut to the 0-100 scale). The hidden reference first, then the systems by name, then the anchor."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["task"] == MUSHRA:
            groups.setdefault((*(r[k] for k in by), r["condition"]), []).append(r)
    table = []
    for key in sorted(groups, key=lambda k: (*(str(x) for x in k[:-1]), _condition_order(k[-1]))):
        m, lo, hi = mean_interval([r["rating"] for r in groups[key]])
        table.append(dict(zip(by, key[:-1], strict=True)) | {
            "condition": key[-1], "n": len(groups[key]), "listeners": len({r["listener"] for r in groups[key]}),
            "mean": m, "ci_low": lo, "ci_high": hi})
    return table


def analyse(rows: list[dict[str, Any]], exclude_flagged: bool = False) -> dict[str, Any]:
    """Tables (lists of rows) of what the answers say, pooled over listeners and by listener:
    real-versus-generated accuracy with Wilson 95% intervals, per source and overall (50% means the
    listeners could not tell); mean opinion scores with 95% t intervals per source and criterion;
    labelling accuracy per source and per source and class; MUSHRA ratings per condition and per
    item and condition (:func:`mushra_table`) and the listeners' post-screening (:func:`post_screen`).
    With ``exclude_flagged``, the MUSHRA tables leave out the listeners post-screening flags (listed in
    ``mushra_excluded``), as BS.1534-3 asks; by default they are only reported."""
    rof = [r for r in rows if r["task"] == "real_or_fake"]
    lab = [r for r in rows if r["task"] == "label"]
    overall = [r | {"source": "all"} for r in rof]
    mos = []
    groups: dict[tuple, list[int]] = {}
    for r in rows:
        if r["score"] is not None:
            groups.setdefault((r["source"], r["task"]), []).append(r["score"])
    for (source, task), scores in sorted(groups.items()):
        m, lo, hi = mean_interval(scores)
        mos.append({"source": source, "criterion": task, "n": len(scores), "mos": m, "ci_low": lo, "ci_high": hi})
    screening = post_screen(rows)
    excluded = sorted(r["listener"] for r in screening if r["flagged"]) if exclude_flagged else []
    rated = [r for r in rows if r["task"] == MUSHRA and r["listener"] not in excluded]
    return {
        "listeners": sorted({r["listener"] for r in rows}),
        "n_answers": len(rows),
        "real_or_fake": _proportions(rof, ["source"]) + _proportions(overall, ["source"]),
        "real_or_fake_by_listener": _proportions(rof, ["listener"]),
        "mos": mos,
        "label": _proportions(lab, ["source"]),
        "label_by_class": _proportions(lab, ["source", "label"]),
        "mushra": mushra_table(rated),
        "mushra_by_item": mushra_table(rated, ["item"]),
        "mushra_screening": screening,
        "mushra_excluded": excluded,
    }


def write_analysis(folder: str | os.PathLike, analysis: Mapping[str, Any]) -> Path:
    """``analysis.json`` in ``folder`` (NaN written as null)."""
    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    path = folder_path(folder) / "analysis.json"
    atomic_write_text(path, json.dumps(clean(dict(analysis)), indent=1) + "\n")
    return path


def plot_analysis(analysis: Mapping[str, Any]):
    """One panel per kind of result, each estimate with its 95% interval as an error bar; source
    names are shown literally (``$`` and undecodable bytes included)."""
    from matplotlib.figure import Figure

    panels = [k for k in ("real_or_fake", "mos", "label", "mushra") if analysis.get(k)]
    fig = Figure(figsize=(4.2 * max(1, len(panels)), 3.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(1, len(panels)), squeeze=False).ravel())
    if not panels:
        axes[0].text(0.5, 0.5, "no answers yet", ha="center", va="center")
        axes[0].set_axis_off()
    for ax, kind in zip(axes, panels, strict=False):
        table = analysis[kind]
        if kind == "mushra":
            mushra_bars([r["condition"] for r in table], [r["mean"] for r in table], [r["ci_low"] for r in table],
                        [r["ci_high"] for r in table], ax=ax)
            continue
        if kind == "mos":
            criteria = sorted({r["criterion"] for r in table})
            sources = list(dict.fromkeys(r["source"] for r in table))
            width = 0.8 / max(1, len(criteria))
            for j, crit in enumerate(criteria):
                rows = {r["source"]: r for r in table if r["criterion"] == crit}
                x = [i + j * width for i, s in enumerate(sources) if s in rows]
                y = [rows[s]["mos"] for s in sources if s in rows]
                err = [[max(0.0, rows[s]["mos"] - rows[s]["ci_low"]) if math.isfinite(rows[s]["ci_low"]) else 0
                        for s in sources if s in rows],
                       [max(0.0, rows[s]["ci_high"] - rows[s]["mos"]) if math.isfinite(rows[s]["ci_high"]) else 0
                        for s in sources if s in rows]]
                ax.bar(x, y, width, yerr=err, capsize=3, label=plot_text(crit))
            ax.set_xticks([i + 0.4 - width / 2 for i in range(len(sources))], [plot_text(s) for s in sources],
                          fontsize=8)
            ax.set_ylim(0, 5.5)
            ax.set_ylabel("mean opinion score")
            ax.legend(fontsize=7)
        else:
            x = np.arange(len(table))
            y = np.array([r["accuracy"] for r in table])
            lo = np.nan_to_num(y - np.array([r["ci_low"] for r in table]))
            hi = np.nan_to_num(np.array([r["ci_high"] for r in table]) - y)
            ax.bar(x, y, yerr=[lo, hi], capsize=3, color="tab:blue" if kind == "label" else "tab:orange")
            ax.set_xticks(x, [plot_text(r["source"]) for r in table], fontsize=8)
            ax.set_ylim(0, 1.05)
            ax.set_ylabel("accuracy")
            if kind == "real_or_fake":
                ax.axhline(0.5, ls="--", c="grey", lw=1)
        ax.set_title({"real_or_fake": "real or generated?", "mos": "opinion scores",
                      "label": "labelling"}[kind], fontsize=10)
    return fig


def tables_html(analysis: Mapping[str, Any]) -> str:
    """The analysis tables as HTML, numbers rounded, names escaped, for a notebook to display."""
    import html

    parts = [f"<p>{analysis['n_answers']} answers from {len(analysis['listeners'])} listener(s): "
             f"{html.escape(readable(', '.join(analysis['listeners'])))}</p>"]
    for name in ("real_or_fake", "real_or_fake_by_listener", "mos", "label", "label_by_class", "mushra",
                 "mushra_screening"):
        table = analysis.get(name) or []
        if not table:
            continue
        cols = list(table[0])
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = "".join(
            "<tr>" + "".join(f"<td>{v:.3f}</td>" if isinstance(v, float) else f"<td>{html.escape(readable(v))}</td>"
                             for v in r.values()) + "</tr>" for r in table
        )
        parts.append(f"<h4>{name}</h4><table><tr>{head}</tr>{body}</table>")
    return "".join(parts)
