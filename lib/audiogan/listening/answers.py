"""Answers that survive a crash: appended and fsync'ed as given, read back, imported from the page.

``answers.csv`` is also what people open in a spreadsheet, so a value a spreadsheet would run as a
formula (starting with ``= + - @``, a tab or a carriage return) is written with a leading ``'``
and read back without it. Imported files are untrusted: every field is checked and bounded, and
each row left out is reported with its reason (:class:`ImportReport`).

A MUSHRA item (:mod:`.mushra`) is answered with one row per rated clip, its clip id in the column
``clip``; a file gains that column only when it holds such rows (an older file is rewritten with it
the first time one is appended), and a file without it reads as before.
"""

from __future__ import annotations

import csv
import io
import os
import re
import unicodedata
import warnings
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audiogan.errors import ConfigError
from audiogan.files import atomic_write_text
from audiogan.listening.design import (
    ANSWER_COLUMNS,
    ANSWERS_FILE,
    CLIP_COLUMN,
    MUSHRA,
    TEST_FILE,
    ListeningTest,
    check_answer,
    folder_path,
    load_test,
)

# The longest value each column may hold in an imported file (a class name is the longest answer).
FIELD_LIMITS = {"test_id": 64, "listener": 100, "item": 32, "task": 32, "answer": 200, "answered_at": 40,
                "via": 32, CLIP_COLUMN: 32}
MAX_IMPORT_BYTES = 20_000_000  # far more answers than any test has items times listeners
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_VIA = re.compile(r"[A-Za-z0-9_.-]+")


# ---------------------------------------------------------------------------- answers
def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def spreadsheet_safe(value: Any) -> str:
    """``value`` as a spreadsheet shows it as text: a leading ``'`` before ``= + - @``, tab or CR
    (and before a ``'`` that precedes one of them, so :func:`from_spreadsheet` undoes it exactly)."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_START) or (text[:1] == "'" and text[1:2] in (*FORMULA_START, "'") and text[1:2]):
        return "'" + text
    return text


def from_spreadsheet(text: str | None) -> str | None:
    """The value :func:`spreadsheet_safe` guarded."""
    if text and text[0] == "'" and text[1:2] and text[1:2] in (*FORMULA_START, "'"):
        return text[1:]
    return text


def _fields(line: bytes) -> list[str] | None:
    try:
        return next(csv.reader([line.decode("utf-8-sig").rstrip("\r")]), [])
    except (UnicodeDecodeError, csv.Error):
        return None


def _complete_row(line: bytes, n_columns: int) -> bool:
    """Whether a last line without its newline is a whole row (a spreadsheet saved it so) rather
    than one torn by a crash mid-write: it has every column of the header."""
    fields = _fields(line)
    return fields is not None and len(fields) == n_columns


def _add_clip_column(path: Path, data: bytes) -> None:
    """Rewrite an answers file without the ``clip`` column with it (empty in every old row), atomically."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*rows[0], CLIP_COLUMN])
    writer.writerows([*row, ""] for row in rows[1:] if row)
    atomic_write_text(path, buf.getvalue())


def append_answers(folder: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> None:
    """Append whole rows to ``answers.csv`` and fsync them: a crash loses at most the row in flight.
    A last line without its newline is ended first when it is a whole row (as a spreadsheet saves
    it) and cut off when it is torn (a crash mid-write), so the next row never joins it."""
    path = folder_path(folder) / ANSWERS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    with_clip = any(row.get(CLIP_COLUMN) for row in rows)
    header: list[str] = []
    if path.is_file():
        data = path.read_bytes()
        header = _fields(data.split(b"\n", 1)[0]) or []
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(path, "r+b") as f:
                if _complete_row(data[cut:], len(header)):
                    f.seek(0, os.SEEK_END)
                    f.write(b"\n")
                else:
                    f.truncate(cut)
                f.flush()
                os.fsync(f.fileno())
        if with_clip and header and CLIP_COLUMN not in header:
            _add_clip_column(path, path.read_bytes())
            header.append(CLIP_COLUMN)
    columns = ANSWER_COLUMNS + ((CLIP_COLUMN,) if with_clip or CLIP_COLUMN in header else ())
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    if not path.is_file() or path.stat().st_size == 0:
        writer.writeheader()
    for row in rows:
        writer.writerow({k: spreadsheet_safe(row.get(k, "")) for k in columns})
    with open(path, "a", newline="") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())


def _parse_csv(path: Path) -> tuple[list[tuple[int, dict[str, str | None]]], list[tuple[str, str]]]:
    """The rows of an answers file with their line numbers, and the rows left out with why (a last
    line cut short, a row without an answer). A file that is not an answers file is a ValueError."""
    size = path.stat().st_size
    if size > MAX_IMPORT_BYTES:
        raise ValueError(f"{path} is {size / 1e6:.0f} MB, more than an answers file can be "
                         f"({MAX_IMPORT_BYTES / 1e6:.0f} MB); import the file the test page saved.")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}); import the file the test "
                         "page saved.") from None
    left_out: list[tuple[str, str]] = []
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey="_extra")
    try:
        fieldnames = reader.fieldnames or []
        missing = [c for c in ANSWER_COLUMNS if c not in fieldnames]
        if missing:
            raise ValueError(
                f"{path} is not an answers file: it lacks the column(s) {', '.join(missing)} "
                f"(expected {', '.join(ANSWER_COLUMNS)}). Import the file the test page downloaded."
            )
        rows = []
        line = reader.line_num + 1
        for row in reader:
            rows.append((line, {k: from_spreadsheet(v) if isinstance(v, str) else v for k, v in row.items()}))
            line = reader.line_num + 1
    except csv.Error as e:
        raise ValueError(f"{path}, line {reader.line_num}: not CSV the test page writes ({e}).") from None
    if rows and not text.endswith(("\n", "\r")):
        n, last = rows[-1]
        if any(last.get(c) is None for c in fieldnames):  # fewer fields: torn by a crash mid-write
            rows.pop()
            left_out.append((f"{path}, line {n}", "the last line is cut short (a write that did not finish)"))
    kept = []
    for n, row in rows:
        if row.get("answer") is None:
            have = sum(row.get(c) is not None for c in fieldnames)
            left_out.append((f"{path}, line {n}", f"{have} of the header's {len(fieldnames)} fields, no answer"))
        elif row["answer"] == "":
            left_out.append((f"{path}, line {n}", "no answer"))
        else:
            kept.append((n, row))
    return kept, left_out


def _read_csv(path: Path) -> list[dict[str, str]]:
    """The whole rows with an answer (a row edited short by hand is not one)."""
    return [row for _, row in _parse_csv(path)[0] if all(row.get(c) is not None for c in ANSWER_COLUMNS)]


def read_answers(folder: str | os.PathLike) -> list[dict[str, str]]:
    """Every answer in ``folder/answers.csv`` (none when it does not exist yet)."""
    path = folder_path(folder) / ANSWERS_FILE
    return _read_csv(path) if path.is_file() else []


def _check_answer(test: ListeningTest, item_id: str, answer: str, where: str, clip: str | None = None
                  ) -> dict[str, Any]:
    item = test.item_index.get(item_id)
    if item is None:
        raise ValueError(f"{where}: item {item_id!r} is not in test {test.test_id}.")
    if problem := check_answer(item, answer, clip):
        raise ValueError(f"{where}: {problem}.")
    return item


def _control_characters(text: str) -> list[str]:
    return [ch for ch in text if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp")]


def check_listener(listener: str) -> str:
    """A listener's name, stripped of spaces around it: not empty, at most 100 characters, without
    commas, quotes or control characters (a newline, a tab, NUL)."""
    listener = str(listener).strip()
    if (not listener or len(listener) > FIELD_LIMITS["listener"] or any(ch in listener for ch in ",\"")
            or _control_characters(listener)):
        raise ConfigError(f"listener={listener[:120]!r} must be a non-empty name of at most "
                          f"{FIELD_LIMITS['listener']} characters without commas, quotes, newlines or other "
                          "control characters.")
    return listener


class ListeningSession:
    """One listener taking a test. Every answer goes to disk at once; a new session for the same
    listener and folder (after a kernel restart, or on another day) starts at their first
    unanswered item with everything they answered before kept."""

    def __init__(self, folder: str | os.PathLike, listener: str):
        self.folder = folder_path(folder)
        self.listener = check_listener(listener)
        self.test = load_test(self.folder)
        items = self.test.item_index
        self.answers: dict[str, Any] = {}  # item -> answer; a MUSHRA item -> {clip: rating}
        for r in read_answers(self.folder):
            if r["test_id"] == self.test.test_id and r["listener"] == self.listener:
                if r["item"] in items and items[r["item"]]["task"] == MUSHRA:
                    self.answers.setdefault(r["item"], {})[r.get(CLIP_COLUMN) or ""] = r["answer"]
                else:
                    self.answers[r["item"]] = r["answer"]

    def _answered(self, item: dict[str, Any]) -> bool:
        given = self.answers.get(item["id"])
        if item["task"] == MUSHRA:
            return isinstance(given, dict) and all(c in given for c in item["clips"])
        return given is not None

    @property
    def remaining(self) -> list[dict[str, Any]]:
        return [it for it in self.test.items if not self._answered(it)]

    @property
    def done(self) -> bool:
        return not self.remaining

    def next_item(self) -> dict[str, Any] | None:
        remaining = self.remaining
        return remaining[0] if remaining else None

    def answer(self, answer: str | int | Mapping[str, int] | Sequence[int], item_id: str | None = None) -> None:
        """Record ``answer`` to ``item_id`` (default: the next item) and write it to disk. A MUSHRA
        item takes a rating 0-100 for each of its clips: ``{clip_id: rating}``, or the ratings in the
        order the clips are shown (A, B, ...); they are written together."""
        if item_id is None:
            item = self.next_item()
            if item is None:
                raise ValueError(f"{self.listener} has answered every item of test {self.test.test_id}.")
            item_id = item["id"]
        if self.test.item_index.get(item_id, {}).get("task") == MUSHRA:
            return self._rate(self.test.item_index[item_id], answer)
        item = _check_answer(self.test, item_id, str(answer), f"listener {self.listener}")
        append_answers(self.folder, [{
            "test_id": self.test.test_id, "listener": self.listener, "item": item_id, "task": item["task"],
            "answer": str(answer), "answered_at": _now(), "via": "notebook",
        }])
        self.answers[item_id] = str(answer)

    def _rate(self, item: dict[str, Any], ratings: Any) -> None:
        where = f"listener {self.listener}"
        if isinstance(ratings, str | int) or not isinstance(ratings, Mapping | Sequence):
            raise ValueError(f"{where}: item {item['id']} (mushra) takes a rating for each of its clips "
                             f"({', '.join(item['clips'])}), as a mapping or a list in that order; got {ratings!r}.")
        if not isinstance(ratings, Mapping):
            if len(ratings) != len(item["clips"]):
                raise ValueError(f"{where}: item {item['id']} rates {len(item['clips'])} clips, got "
                                 f"{len(ratings)} ratings.")
            ratings = dict(zip(item["clips"], ratings, strict=True))
        missing = [c for c in item["clips"] if c not in ratings]
        if missing:
            raise ValueError(f"{where}: item {item['id']} needs a rating of every clip; missing {', '.join(missing)}.")
        rows, now = [], _now()
        for clip, rating in ratings.items():
            _check_answer(self.test, item["id"], str(rating), where, clip)
            rows.append({"test_id": self.test.test_id, "listener": self.listener, "item": item["id"], "task": MUSHRA,
                         "answer": str(rating), "answered_at": now, "via": "notebook", CLIP_COLUMN: clip})
        append_answers(self.folder, rows)
        self.answers[item["id"]] = {r[CLIP_COLUMN]: r["answer"] for r in rows}


class ImportReport(int):
    """What :func:`import_answers` did. The number itself is how many rows were added (so it
    compares and prints as before); ``duplicates`` counts rows already there, ``skipped`` lists
    each row left out as ``(file, line N)`` and why, and ``guarded`` counts rows holding a value a
    spreadsheet would run as a formula, stored with a leading ``'``."""

    added: int
    duplicates: int
    skipped: tuple[tuple[str, str], ...]
    guarded: int

    def __new__(cls, added: int, duplicates: int = 0, skipped: Iterable[tuple[str, str]] = (), guarded: int = 0):
        report = super().__new__(cls, added)
        report.added, report.duplicates, report.skipped, report.guarded = added, duplicates, tuple(skipped), guarded
        return report

    __str__ = int.__repr__

    def __repr__(self) -> str:
        return (f"ImportReport(added={self.added}, duplicates={self.duplicates}, skipped={len(self.skipped)}, "
                f"guarded={self.guarded})")

    def message(self, limit: int = 10) -> str:
        """One line of counts, then each row left out and why (the first ``limit`` of them)."""
        lines = [f"{self.added} answer(s) added, {self.duplicates} already there, {len(self.skipped)} left out"
                 + (f", {self.guarded} with a value stored with a leading ' so a spreadsheet shows it as text"
                    if self.guarded else "")]
        lines += [f"  {where}: {why}" for where, why in self.skipped[:limit]]
        if len(self.skipped) > limit:
            lines.append(f"  ... and {len(self.skipped) - limit} more")
        return "\n".join(lines)


def _check_row(test: ListeningTest, row: Mapping[str, str | None], test_file: Path, n_header: int
               ) -> dict[str, str]:
    """An imported row, every field checked against the test and bounded; a ValueError says why not."""
    for column in ANSWER_COLUMNS + ((CLIP_COLUMN,) if CLIP_COLUMN in row else ()):
        value = row.get(column)
        if value is None:
            raise ValueError(f"no {column} (the row has fewer fields than the header)")
        if len(value) > FIELD_LIMITS[column]:
            raise ValueError(f"{column} is {len(value)} characters long, more than {FIELD_LIMITS[column]}")
        if bad := _control_characters(value):
            raise ValueError(f"{column} holds control character(s) {', '.join(repr(c) for c in bad[:3])}")
    if row.get("_extra"):
        raise ValueError(f"{len(row['_extra'])} field(s) more than the header's {n_header}")
    if row["test_id"] != test.test_id:
        raise ValueError(f"answers to test {row['test_id']!r}, but {test_file} is test {test.test_id!r}; import "
                         "it into the folder of its own test")
    try:
        listener = check_listener(row["listener"])
    except ConfigError as e:
        raise ValueError(str(e)) from None
    clip = row.get(CLIP_COLUMN) or ""
    item = _check_answer(test, row["item"], row["answer"], "row", clip or None)
    if row["task"] != item["task"]:
        raise ValueError(f"task {row['task']!r}, but item {row['item']} is a {item['task']} item")
    try:
        datetime.fromisoformat(row["answered_at"])
    except ValueError:
        raise ValueError(f"answered_at {row['answered_at']!r} is not an ISO 8601 time such as "
                         "2026-01-31T12:00:00.000Z") from None
    via = row["via"] or "page"
    if not _VIA.fullmatch(via):
        raise ValueError(f"via {via!r} must be a word such as page or notebook")
    return {"test_id": row["test_id"], "listener": listener, "item": row["item"], "task": item["task"],
            "answer": row["answer"], "answered_at": row["answered_at"], "via": via, CLIP_COLUMN: clip}


def import_answers(folder: str | os.PathLike, path: str | os.PathLike) -> ImportReport:
    """Append the answers in ``path`` (a file the test page downloaded, or a folder of them) to
    ``folder/answers.csv``. Each row is checked against this test and bounded (test, item, task
    and answer match the test; ``answered_at`` is an ISO time; no field over its length in
    ``FIELD_LIMITS`` or holding a control character; the listener's name is stripped); a row that
    fails is left out, and rows already there are skipped. Returns an :class:`ImportReport`: the
    number of rows added, with what was left out and why; when anything was left out, a warning
    says so too. A file that is not an answers file at all is a ValueError."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"import_answers: {path} does not exist; give the file the test page saved.")
    files = sorted(p for p in path.glob("*.csv") if p.is_file()) if path.is_dir() else [path]
    test = load_test(folder)
    test_file = folder_path(folder) / TEST_FILE
    key_columns = ("test_id", "listener", "item", "answer", "answered_at", CLIP_COLUMN)
    have = {tuple(r.get(k) or "" for k in key_columns) for r in read_answers(folder)}
    new, skipped, duplicates = [], [], 0
    for file in files:
        rows, left_out = _parse_csv(file)
        skipped += left_out
        for n, row in rows:
            try:
                checked = _check_row(test, row, test_file, len(row) - ("_extra" in row))
            except ValueError as e:
                skipped.append((f"{file}, line {n}", str(e)))
                continue
            key = tuple(checked[k] for k in key_columns)
            if key in have:
                duplicates += 1
            else:
                have.add(key)
                new.append(checked)
    append_answers(folder, new)
    guarded = sum(any(spreadsheet_safe(v) != v for v in row.values()) for row in new)
    report = ImportReport(len(new), duplicates, sorted(skipped, key=_line_order), guarded)
    if report.skipped:
        warnings.warn(f"import_answers from {path}: {report.message()}", stacklevel=2)
    return report


def _line_order(entry: tuple[str, str]) -> tuple[str, int]:
    where, _ = entry
    file, _, line = where.rpartition(", line ")
    return file, int(line) if line.isdigit() else 0
