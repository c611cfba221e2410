"""Listening answers are never lost or poisoned: a file a spreadsheet saved without its last newline
keeps every row, imported fields are checked and bounded with each row left out reported, and values
a spreadsheet would run as formulas are stored as text."""

import csv

import numpy as np
import pytest

from audiogan import listening
from audiogan.config import ConfigError
from audiogan.listening import ListeningSession, Source

SR = 8000
COLUMNS = listening.ANSWER_COLUMNS


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    labels = ["=cmd()", "-1", "plain"]
    sources = [Source("real", rng.uniform(-0.5, 0.5, (12, 64)).astype(np.float32), True,
                      [labels[i % 3] for i in range(12)]),
               Source("run", rng.uniform(-0.5, 0.5, (4, 64)).astype(np.float32), False, None)]
    listening.create_test(tmp_path / "listening", sources, SR, n_per_source=4, seed=0,
                          tasks="real_or_fake,label")
    return tmp_path / "listening"


def a_row(test, task="real_or_fake", **fields):
    item = next(i for i in test.items if i["task"] == task)
    return {"test_id": test.test_id, "listener": "cat", "item": item["id"], "task": task,
            "answer": item["choices"][0], "answered_at": "2026-01-01T00:00:00.000Z", "via": "page"} | fields


def write_csv(path, rows, newline_at_end=True, lineterminator="\n"):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator=lineterminator)
        w.writeheader()
        w.writerows(rows)
    if not newline_at_end:
        path.write_bytes(path.read_bytes().rstrip(b"\r\n"))
    return path


# ---------------------------------------------------------------------------- a missing last newline
@pytest.mark.parametrize("lineterminator", ["\n", "\r\n"])
def test_appending_to_answers_saved_without_a_last_newline_keeps_every_row(folder, lineterminator):
    session = ListeningSession(folder, "ann")
    for _ in range(2):
        session.answer(session.next_item()["choices"][0])
    path = folder / "answers.csv"
    before = listening.read_answers(folder)
    # A spreadsheet opens the file and saves it back: CRLF or LF, and no newline after the last row.
    write_csv(path, before, newline_at_end=False, lineterminator=lineterminator)
    assert listening.read_answers(folder) == before  # the last row is read, not taken for a torn one
    again = ListeningSession(folder, "ann")
    assert again.answers == session.answers
    again.answer(again.next_item()["choices"][0])
    after = listening.read_answers(folder)
    assert after[:2] == before and len(after) == 3 and after[2]["listener"] == "ann"


def test_a_torn_last_line_is_still_cut_before_the_next_row(folder):
    session = ListeningSession(folder, "ann")
    session.answer(session.next_item()["choices"][0])
    with open(folder / "answers.csv", "a") as f:
        f.write("abc,ann,i0")  # a crash in the middle of a row
    session.answer(session.next_item()["choices"][0])
    rows = listening.read_answers(folder)
    assert len(rows) == 2 and all(r["test_id"] == session.test.test_id for r in rows)


def test_importing_a_file_without_a_last_newline_imports_its_last_row(folder, tmp_path):
    test = listening.load_test(folder)
    saved = write_csv(tmp_path / "saved.csv", [a_row(test)], newline_at_end=False)
    report = listening.import_answers(folder, saved)
    assert report == 1 and report.skipped == () and f"imported {report} new" == "imported 1 new"
    assert ListeningSession(folder, "cat").answers == {a_row(test)["item"]: "real"}


def test_a_last_row_cut_short_is_reported_not_dropped_in_silence(folder, tmp_path):
    test = listening.load_test(folder)
    saved = write_csv(tmp_path / "saved.csv", [a_row(test)])
    saved.write_text(saved.read_text() + f"{test.test_id},cat,i0")
    with pytest.warns(UserWarning, match=r"saved.csv, line 3: the last line is cut short"):
        report = listening.import_answers(folder, saved)
    assert report == 1 and report.skipped == ((f"{saved}, line 3",
                                               "the last line is cut short (a write that did not finish)"),)


# ---------------------------------------------------------------------------- checked, bounded, reported
def test_every_imported_field_is_checked_and_each_row_left_out_is_reported(folder, tmp_path):
    test = listening.load_test(folder)
    label = next(i for i in test.items if i["task"] == "label")
    rows = [
        a_row(test, listener="  dan  "),  # 2: kept, the name stripped
        a_row(test, listener="x" * 1000),  # 3
        a_row(test, listener="e\x00ve"),  # 4
        a_row(test, answer="generated" * 100),  # 5
        a_row(test, answered_at="yesterday"),  # 6
        a_row(test) | {"task": "label"},  # 7
        a_row(test, item="i999"),  # 8
        a_row(test, answer="maybe"),  # 9
        a_row(test, via="page\tx"),  # 10
        a_row(test, via="<script>"),  # 11
        a_row(test, test_id="otherid"),  # 12
        a_row(test, answer=""),  # 13
        a_row(test, "label", listener="fay", answer=label["choices"][0]),  # 14: kept
    ]
    saved = write_csv(tmp_path / "saved.csv", rows)
    with open(saved, "a") as f:
        f.write(f"{test.test_id},gus,i000\n")  # 15: a short row in the middle
        f.write(",".join(a_row(test, listener="hal").values()) + ",extra\n")  # 16: a field too many
    with pytest.warns(UserWarning, match="2 answer\\(s\\) added, 0 already there, 13 left out"):
        report = listening.import_answers(folder, saved)
    assert report == 2 and report.added == 2
    why = {int(where.rpartition(" ")[2]): reason for where, reason in report.skipped}
    assert sorted(why) == [n for n in range(3, 17) if n != 14]
    expected = {3: "listener is 1000 characters long, more than 100", 4: "listener holds control character(s) '\\x00'",
                5: "answer is 900 characters long, more than 200", 6: "answered_at 'yesterday' is not an ISO 8601 time",
                7: "task 'label', but item", 8: "item 'i999' is not in test", 9: "'maybe' is not an answer to item",
                10: "via holds control character(s) '\\t'", 11: "via '<script>' must be a word",
                12: "answers to test 'otherid'", 13: "no answer", 15: "3 of the header's 7 fields, no answer",
                16: "1 field(s) more than the header's 7"}
    for line, text in expected.items():
        assert text in why[line], (line, why[line])
    assert {r["listener"] for r in listening.read_answers(folder)} == {"dan", "fay"}
    with pytest.warns(UserWarning, match="0 answer\\(s\\) added, 2 already there, 13 left out"):
        assert report.duplicates == 0 and listening.import_answers(folder, saved).duplicates == 2


@pytest.mark.parametrize(("content", "message"), [
    (b"test_id,listener\n" + b"x" * 200_000 + b",y\n", "not an answers file"),
    (",".join(COLUMNS).encode() + b"\n" + b'"' + b"x" * 200_000 + b'",a,b,c,d,e,f\n', "not CSV the test page writes"),
    (",".join(COLUMNS).encode() + b"\nab\xff\xfe,cat\n", "is not UTF-8 text"),
])
def test_a_file_that_is_no_answers_file_is_refused_by_name(folder, tmp_path, content, message):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=message) as e:
        listening.import_answers(folder, bad)
    assert "bad.csv" in str(e.value) and not (folder / "answers.csv").exists()


def test_a_listener_name_with_control_characters_or_too_long_is_refused_in_the_notebook(folder):
    for name in ("a\x00b", "tab\there", "x" * 101, "a\u2028b"):
        with pytest.raises(ConfigError, match="listener="):
            ListeningSession(folder, name)
    assert ListeningSession(folder, "  ann ").listener == "ann"


# ---------------------------------------------------------------------------- formulas
def test_formula_values_are_stored_as_text_and_read_back_as_given(folder, tmp_path):
    test = listening.load_test(folder)
    names = ["=1+2", "+cmd", "-2+3", "@SUM(A1)", "'quoted"]
    saved = write_csv(tmp_path / "saved.csv", [a_row(test, listener=n) for n in names])
    report = listening.import_answers(folder, saved)
    assert report == 5 and report.guarded == 4 and "leading '" in report.message()
    with open(folder / "answers.csv", newline="") as f:
        stored = [r["listener"] for r in csv.DictReader(f)]
    assert stored == ["'=1+2", "'+cmd", "'-2+3", "'@SUM(A1)", "'quoted"]
    assert not [v for v in stored if v[0] in "=+-@\t\r"]
    assert [r["listener"] for r in listening.read_answers(folder)] == names
    assert list(ListeningSession(folder, "=1+2").answers) == [a_row(test)["item"]]


def test_class_names_that_look_like_formulas_round_trip_through_answers_and_analysis(folder):
    session = ListeningSession(folder, "ann")
    while (item := session.next_item()) is not None:
        clip = session.test.clip_index[item["clips"][0]]
        session.answer(clip["label"] if item["task"] == "label" else ("real" if clip["real"] else "generated"))
    text = (folder / "answers.csv").read_text()
    assert ",'=cmd()," in text and ",'-1," in text and ",=cmd()," not in text
    result = listening.analyse(listening.scored_answers(folder))
    assert {r["label"] for r in result["label_by_class"]} == {"=cmd()", "-1", "plain"}
    assert all(r["accuracy"] == 1.0 for r in result["label"] + result["real_or_fake"])


@pytest.mark.parametrize(("value", "safe"), [
    ("=1", "'=1"), ("+1", "'+1"), ("-1", "'-1"), ("@a", "'@a"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("'=1", "''=1"), ("''", "'''"), ("'a", "'a"), ("'", "'"), ("a=b", "a=b"), ("", ""),
])
def test_spreadsheet_guard_is_undone_exactly(value, safe):
    from audiogan.listening.answers import from_spreadsheet, spreadsheet_safe

    assert spreadsheet_safe(value) == safe and from_spreadsheet(safe) == value


def test_an_answers_file_edited_into_nonsense_does_not_poison_the_analysis(folder):
    session = ListeningSession(folder, "ann")
    item = session.next_item()
    session.answer(item["choices"][0])
    with open(folder / "answers.csv", "a") as f:
        f.write(f"{session.test.test_id},cy,{item['id']},{item['task']},banana,2026-01-01,notebook\n")
        f.write(f"{session.test.test_id},bob\n")
    rows = listening.scored_answers(folder)
    assert [(r["listener"], r["answer"]) for r in rows] == [("ann", item["choices"][0])]
