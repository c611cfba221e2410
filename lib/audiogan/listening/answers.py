"""Answers that survive a crash: appended and fsync'ed as given, read back, imported from the page."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audiogan.errors import ConfigError
from audiogan.listening.design import ANSWER_COLUMNS, ANSWERS_FILE, TEST_FILE, ListeningTest, folder_path, load_test


# ---------------------------------------------------------------------------- answers
def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def append_answers(folder: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> None:
    """Append whole rows to ``answers.csv`` and fsync them: a crash loses at most the row in flight,
    and a torn last line (a crash mid-write) is cut off before the next row goes in."""
    path = folder_path(folder) / ANSWERS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=ANSWER_COLUMNS, lineterminator="\n")
    if not path.is_file() or path.stat().st_size == 0:
        writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in ANSWER_COLUMNS})
    with open(path, "a", newline="") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())


def _read_csv(path: Path) -> list[dict[str, str]]:
    text = path.read_text(encoding="utf-8-sig")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # a torn last row is not an answer
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ANSWER_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(
            f"{path} is not an answers file: it lacks the column(s) {', '.join(missing)} "
            f"(expected {', '.join(ANSWER_COLUMNS)}). Import the file the test page downloaded."
        )
    return [row for row in reader if row.get("answer") not in (None, "")]


def read_answers(folder: str | os.PathLike) -> list[dict[str, str]]:
    """Every answer in ``folder/answers.csv`` (none when it does not exist yet)."""
    path = folder_path(folder) / ANSWERS_FILE
    return _read_csv(path) if path.is_file() else []


def _check_answer(test: ListeningTest, item_id: str, answer: str, where: str) -> dict[str, Any]:
    item = test.item_index.get(item_id)
    if item is None:
        raise ValueError(f"{where}: item {item_id!r} is not in test {test.test_id}.")
    if answer not in item["choices"]:
        raise ValueError(f"{where}: {answer!r} is not an answer to item {item_id} ({item['task']}); "
                         f"choose one of {', '.join(item['choices'])}.")
    return item


def check_listener(listener: str) -> str:
    listener = str(listener).strip()
    if not listener or any(ch in listener for ch in ",\n\r\""):
        raise ConfigError(f"listener={listener!r} must be a non-empty name without commas, quotes or newlines.")
    return listener


class ListeningSession:
    """One listener taking a test. Every answer goes to disk at once; a new session for the same
    listener and folder (after a kernel restart, or on another day) starts at their first
    unanswered item with everything they answered before kept."""

    def __init__(self, folder: str | os.PathLike, listener: str):
        self.folder = folder_path(folder)
        self.listener = check_listener(listener)
        self.test = load_test(self.folder)
        self.answers = {
            r["item"]: r["answer"] for r in read_answers(self.folder)
            if r["test_id"] == self.test.test_id and r["listener"] == self.listener
        }

    @property
    def remaining(self) -> list[dict[str, Any]]:
        return [it for it in self.test.items if it["id"] not in self.answers]

    @property
    def done(self) -> bool:
        return not self.remaining

    def next_item(self) -> dict[str, Any] | None:
        remaining = self.remaining
        return remaining[0] if remaining else None

    def answer(self, answer: str | int, item_id: str | None = None) -> None:
        """Record ``answer`` to ``item_id`` (default: the next item) and write it to disk."""
        if item_id is None:
            item = self.next_item()
            if item is None:
                raise ValueError(f"{self.listener} has answered every item of test {self.test.test_id}.")
            item_id = item["id"]
        item = _check_answer(self.test, item_id, str(answer), f"listener {self.listener}")
        append_answers(self.folder, [{
            "test_id": self.test.test_id, "listener": self.listener, "item": item_id, "task": item["task"],
            "answer": str(answer), "answered_at": _now(), "via": "notebook",
        }])
        self.answers[item_id] = str(answer)


def import_answers(folder: str | os.PathLike, path: str | os.PathLike) -> int:
    """Append the answers in ``path`` (a file the test page downloaded, or a folder of them) to
    ``folder/answers.csv``, after checking each belongs to this test; rows already there are skipped.
    Returns how many rows were added."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"import_answers: {path} does not exist; give the file the test page saved.")
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    test = load_test(folder)
    have = {(r["test_id"], r["listener"], r["item"], r["answer"], r["answered_at"]) for r in read_answers(folder)}
    new = []
    for file in files:
        for n, row in enumerate(_read_csv(file), start=2):
            where = f"{file}, line {n}"
            if row["test_id"] != test.test_id:
                raise ValueError(f"{where}: answers to test {row['test_id']!r}, but {folder_path(folder) / TEST_FILE} "
                                 f"is test {test.test_id!r}; import it into the folder of its own test.")
            check_listener(row["listener"])
            item = _check_answer(test, row["item"], row["answer"], where)
            key = (row["test_id"], row["listener"], row["item"], row["answer"], row["answered_at"])
            if key not in have:
                have.add(key)
                new.append(row | {"task": item["task"], "via": row.get("via") or "page"})
    append_answers(folder, new)
    return len(new)
