"""Listening tests: design, answers on disk, resuming after a restart, importing, analysis."""

import csv
import json
import math
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from audiogan import listening
from audiogan.config import ConfigError
from audiogan.listening import ListeningSession, Source

SR = 8000


def sources(n_real=40, n_gen=12):
    rng = np.random.default_rng(0)
    real_labels = [["low", "middle", "high"][i % 3] for i in range(n_real)]
    return [
        Source("real", rng.uniform(-0.5, 0.5, (n_real, 256)).astype(np.float32), True, real_labels),
        Source("run_a", rng.uniform(-0.5, 0.5, (n_gen, 256)).astype(np.float32), False,
               [["low", "high", None][i % 3] for i in range(n_gen)]),
        Source("run_b", rng.uniform(-0.5, 0.5, (n_gen, 256)).astype(np.float32), False, None),
    ]


@pytest.fixture
def folder(tmp_path):
    listening.create_test(tmp_path / "listening", sources(), SR, n_per_source=4, seed=3, group_size=2)
    return tmp_path / "listening"


def test_design_is_balanced_seeded_and_blind():
    test = listening.design_test(sources(), SR, n_per_source=4, seed=3, group_size=2)
    again = listening.design_test(sources(), SR, n_per_source=4, seed=3, group_size=2)
    other = listening.design_test(sources(), SR, n_per_source=4, seed=4, group_size=2)
    assert test.to_dict() == again.to_dict() and test.test_id == again.test_id
    assert [i["clips"] for i in test.items] != [i["clips"] for i in other.items]
    per_source = Counter(c["source"] for c in test.clips)
    assert per_source == {"real": 8, "run_a": 4, "run_b": 4}  # as many real clips as generated ones
    real = [c for c in test.clips if c["real"]]
    assert sorted(Counter(c["label"] for c in real).values()) == [2, 3, 3]  # classes spread evenly
    tasks = Counter(i["task"] for i in test.items)
    assert tasks["real_or_fake"] == tasks["quality"] == tasks["understanding"] == 16
    assert tasks["diversity"] == 2 + 2 + 4  # groups of 2 of each source's clips
    assert tasks["label"] == sum(c["label"] is not None for c in test.clips)
    assert test.classes == ["high", "low", "middle"]
    # Names hide the source: ids follow a shuffled order, and the page data holds no source or label.
    assert [c["source"] for c in test.clips] != sorted(c["source"] for c in test.clips)
    public = json.dumps(test.public())
    assert "run_a" not in public and "real\"" not in public.replace('"real", "generated"', "")
    assert "middle" in public  # ...but the label choices are there


def test_bad_design_settings_are_named():
    with pytest.raises(ConfigError, match="tasks='loudness'"):
        listening.design_test(sources(), SR, tasks="loudness")
    with pytest.raises(ConfigError, match="n_per_source=0"):
        listening.design_test(sources(), SR, n_per_source=0)
    with pytest.raises(ConfigError, match="real_or_fake"):
        listening.design_test(sources()[1:], SR, tasks="real_or_fake")


def test_clips_are_written_and_the_test_reused_or_refused(folder):
    test = listening.load_test(folder)
    src = {s.name: s for s in sources()}
    for clip in test.clips[:3]:
        wav, sr = sf.read(listening.clip_path(folder, clip["id"]), dtype="float32")
        assert sr == SR and np.allclose(wav, src[clip["source"]].clips[clip["index"]], atol=1 / 32768)
    assert listening.create_test(folder, sources(), SR, n_per_source=4, seed=3, group_size=2).test_id == test.test_id
    with pytest.raises(ConfigError, match=r"n_per_source: 4 -> 5"):
        listening.create_test(folder, sources(), SR, n_per_source=5, seed=3, group_size=2)
    session = ListeningSession(folder, "ann")
    session.answer(session.next_item()["choices"][0])
    new = listening.create_test(folder, sources(), SR, n_per_source=5, seed=3, group_size=2, new_test=True)
    archive = folder / "archive" / test.test_id
    assert new.test_id != test.test_id and (archive / "test.json").is_file() and (archive / "answers.csv").is_file()
    assert listening.read_answers(folder) == [] and ListeningSession(folder, "ann").next_item() == new.items[0]


def test_half_answered_test_continues_after_a_restart(folder):
    """Kernel restart: a new session object built from the same folder starts at the next item."""
    session = ListeningSession(folder, "ann")
    items = session.test.items
    half = len(items) // 2
    given = {}
    for k in range(half):
        item = session.next_item()
        assert item["id"] == items[k]["id"]
        given[item["id"]] = item["choices"][k % len(item["choices"])]
        session.answer(given[item["id"]])
        # On disk the moment it is given.
        assert len(listening.read_answers(folder)) == k + 1
    del session
    resumed = ListeningSession(folder, "ann")
    assert resumed.next_item()["id"] == items[half]["id"]
    assert resumed.answers == given
    assert len(resumed.remaining) == len(items) - half
    # Another listener starts from the beginning; a torn last line from a crash is ignored and cut.
    assert ListeningSession(folder, "bob").next_item()["id"] == items[0]["id"]
    with open(folder / "answers.csv", "a") as f:
        f.write("abc,ann,i0")
    assert len(listening.read_answers(folder)) == half
    resumed.answer(resumed.next_item()["choices"][0])
    assert len(listening.read_answers(folder)) == half + 1


def test_answers_are_checked(folder):
    session = ListeningSession(folder, "ann")
    item = session.next_item()
    with pytest.raises(ValueError, match=f"not an answer to item {item['id']}"):
        session.answer("maybe")
    with pytest.raises(ConfigError, match="listener"):
        ListeningSession(folder, "a,b")
    with pytest.raises(FileNotFoundError, match="build the test first"):
        ListeningSession(folder.parent / "nothing", "ann")


def test_wilson_and_t_intervals():
    p, lo, hi = listening.wilson_interval(5, 10)
    assert p == 0.5 and lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    p, lo, hi = listening.wilson_interval(10, 10)
    assert p == 1.0 and lo == pytest.approx(0.7225, abs=1e-4) and hi == 1.0
    assert all(math.isnan(x) for x in listening.wilson_interval(0, 0))
    m, lo, hi = listening.mean_interval([1, 2, 3, 4, 5])
    # t(0.975, 4) = 2.7764, sd = 1.5811, n = 5
    assert m == 3 and hi - m == pytest.approx(2.7764 * 1.5811 / math.sqrt(5), abs=1e-3)
    assert m - lo == pytest.approx(hi - m)
    assert math.isnan(listening.mean_interval([4])[1])


def answer_all(folder, listener, rule):
    session = ListeningSession(folder, listener)
    while (item := session.next_item()) is not None:
        session.answer(rule(session.test, item))
    return session


def truth(test, item):
    clip = test.clip_index[item["clips"][0]]
    return clip


def test_analysis_counts_what_was_answered(folder, tmp_path):
    # ann always says "real", gets every label right and rates real 5 and generated 2; bob is perfect.
    def ann(test, item):
        clip = truth(test, item)
        return {"real_or_fake": "real", "label": clip["label"]}.get(item["task"], "5" if clip["real"] else "2")

    def bob(test, item):
        clip = truth(test, item)
        if item["task"] == "real_or_fake":
            return "real" if clip["real"] else "generated"
        return {"label": clip["label"]}.get(item["task"], "4")

    answer_all(folder, "ann", ann)
    answer_all(folder, "bob", bob)
    result = listening.analyse(listening.scored_answers(folder))
    assert result["listeners"] == ["ann", "bob"]
    rof = {r["source"]: r for r in result["real_or_fake"]}
    assert (rof["real"]["n"], rof["real"]["accuracy"]) == (16, 1.0)
    assert (rof["run_a"]["n"], rof["run_a"]["correct"]) == (8, 4)  # bob's 4 right, ann's 4 wrong
    assert rof["all"]["n"] == 32 and rof["all"]["accuracy"] == 0.75
    assert rof["all"]["ci_low"] < 0.75 < rof["all"]["ci_high"]
    by_listener = {r["listener"]: r["accuracy"] for r in result["real_or_fake_by_listener"]}
    assert by_listener == {"ann": 0.5, "bob": 1.0}
    mos = {(r["source"], r["criterion"]): r for r in result["mos"]}
    assert mos[("real", "quality")]["mos"] == 4.5 and mos[("run_b", "quality")]["mos"] == 3.0
    assert mos[("run_b", "quality")]["ci_low"] < 3.0 < mos[("run_b", "quality")]["ci_high"]
    assert all(r["accuracy"] == 1.0 for r in result["label"] + result["label_by_class"])
    assert {r["source"] for r in result["label"]} == {"real", "run_a"}  # run_b has no known classes
    path = listening.write_analysis(folder, result)
    assert json.loads(path.read_text())["real_or_fake"][-1]["accuracy"] == 0.75
    assert listening.plot_analysis(result).axes and "<table>" in listening.tables_html(result)


def test_import_checks_and_skips_duplicates(folder, tmp_path):
    test = listening.load_test(folder)
    item = next(i for i in test.items if i["task"] == "real_or_fake")
    row = {"test_id": test.test_id, "listener": "cat", "item": item["id"], "task": "real_or_fake",
           "answer": "generated", "answered_at": "2026-01-01T00:00:00.000Z", "via": "page"}
    good = tmp_path / "good.csv"
    with open(good, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=listening.ANSWER_COLUMNS)
        w.writeheader()
        w.writerow(row)
    assert listening.import_answers(folder, good) == 1
    assert listening.import_answers(folder, good) == 0  # importing twice adds nothing
    assert ListeningSession(folder, "cat").answers == {item["id"]: "generated"}
    bad = tmp_path / "bad.csv"
    bad.write_text(good.read_text().replace(test.test_id, "otherid"))
    with pytest.warns(UserWarning, match=r"bad.csv, line 2: answers to test 'otherid'"):
        report = listening.import_answers(folder, bad)
    assert report == 0 and report.skipped[0][0].endswith("bad.csv, line 2")
    bad.write_text(good.read_text().replace("generated", "fake"))
    with pytest.warns(UserWarning, match=r"bad.csv, line 2: row: 'fake' is not an answer"):
        assert listening.import_answers(folder, bad) == 0
    bad.write_text("name,score\nx,1\n")
    with pytest.raises(ValueError, match="bad.csv is not an answers file"):
        listening.import_answers(folder, bad)


def test_exported_page_is_self_contained(folder):
    page = listening.export_html(folder).read_text()
    test = listening.load_test(folder)
    assert page.count("data:audio/wav;base64,") == len(test.clips)
    for needle in ("http://", "https://", "<link", "src=\"http"):
        assert needle not in page
    assert "run_a" not in page and test.test_id in page


def test_tone_registers():
    assert [listening.tone_register(m) for m in (48, 55, 56, 63, 64, 72, 80)] == [
        "low", "low", "middle", "middle", "high", "high", None]
    assert listening.real_labels({"midi": np.array([48, 60])}) == ["low", "middle"]
    assert listening.real_labels({"digit": np.array([3])}) == ["3"]
    assert listening.real_labels({}) is None


def test_widget_click_writes_the_answer_and_shows_the_next_item(folder):
    session = ListeningSession(folder, "ann")
    items = session.test.items
    box = listening.session_widget(session)
    progress, _, players, buttons = box.children
    assert f"item 1 of {len(items)}" in progress.value and len(players.children) == len(items[0]["clips"])
    assert [b.description for b in buttons.children] == items[0]["choices"]
    buttons.children[-1].click()
    assert listening.read_answers(folder)[0]["answer"] == items[0]["choices"][-1]
    assert f"item 2 of {len(items)}" in progress.value
    # After a restart, a new widget from the same folder opens at item 2.
    again = listening.session_widget(ListeningSession(folder, "ann"))
    assert f"item 2 of {len(items)}" in again.children[0].value


def test_the_widget_shows_a_listener_name_as_text_not_html(folder):
    box = listening.session_widget(ListeningSession(folder, "<b>ann</b>"))
    assert "&lt;b&gt;ann&lt;/b&gt;" in box.children[0].value and "<b><b>" not in box.children[0].value
