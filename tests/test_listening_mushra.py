"""MUSHRA items: the design (hidden reference, anchor, seeded blind order), the low-pass anchor,
ratings through the answers file into the analysis, intervals and BS.1534 post-screening."""

import csv
import json
import math

import numpy as np
import pytest
import soundfile as sf

from audiogan import listening
from audiogan.config import ConfigError
from audiogan.listening import ANCHOR, HIDDEN_REFERENCE, REFERENCE, ListeningSession

SR = 8000
T975 = {2: 4.302653, 3: 3.182446, 4: 2.776445}  # Student's t, 97.5% quantile, by degrees of freedom


def clips(n=6, samples=2048, seed=0):
    rng = np.random.default_rng(seed)
    ref = (0.3 * rng.standard_normal((n, samples))).astype(np.float32)
    return ref, {"vocoder": 0.5 * ref, "griffin_lim": np.roll(ref, 3, axis=1)}


@pytest.fixture
def folder(tmp_path):
    ref, systems = clips()
    listening.create_mushra(tmp_path / "listening", ref, systems, SR, n_items=4, seed=2)
    return tmp_path / "listening"


def condition_of(test, clip_id):
    return test.clip_index[clip_id]["condition"]


# ---------------------------------------------------------------------------- design
def test_every_item_has_the_reference_the_hidden_reference_and_the_anchor_in_a_seeded_order():
    ref, systems = clips()
    test, _ = listening.design_mushra(ref, systems, SR, seed=2)
    assert len(test.items) == 6 and {i["task"] for i in test.items} == {"mushra"}
    orders = []
    for item in test.items:
        assert condition_of(test, item["reference"]) == REFERENCE
        shown = [condition_of(test, c) for c in item["clips"]]
        assert sorted(shown) == sorted([HIDDEN_REFERENCE, ANCHOR, "vocoder", "griffin_lim"])
        # Every condition of an item renders the same held-out clip.
        assert len({test.clip_index[c]["index"] for c in [item["reference"], *item["clips"]]}) == 1
        orders.append(tuple(shown))
    assert len(set(orders)) > 1  # the order is drawn per item, not once for the test
    assert len({test.clip_index[i["reference"]]["index"] for i in test.items}) == 6
    again, _ = listening.design_mushra(ref, systems, SR, seed=2)
    other, _ = listening.design_mushra(ref, systems, SR, seed=3)
    assert again.to_dict() == test.to_dict()
    assert [tuple(condition_of(other, c) for c in i["clips"]) for i in other.items] != orders
    # Blind: what a listener's page gets names no condition or system.
    public = json.dumps(test.public())
    for name in ("vocoder", "griffin_lim", "anchor", "hidden"):
        assert name not in public
    assert test.settings["anchor_hz"] == 1750.0 and test.settings["conditions"][:2] == [HIDDEN_REFERENCE, ANCHOR]


def test_n_items_draws_that_many_clips_and_bad_systems_are_named():
    ref, systems = clips()
    test, _ = listening.design_mushra(ref, systems, SR, n_items=3, seed=0)
    assert len(test.items) == 3 and len(test.clips) == 3 * 5
    with pytest.raises(ConfigError, match="system 'vocoder' has clips of shape"):
        listening.design_mushra(ref, {"vocoder": ref[:, :100]}, SR)
    with pytest.raises(ConfigError, match="system name 'anchor'"):
        listening.design_mushra(ref, {"anchor": ref}, SR)
    with pytest.raises(ConfigError, match="at least one system"):
        listening.design_mushra(ref, {}, SR)
    with pytest.raises(ConfigError, match="n_items=0"):
        listening.design_mushra(ref, systems, SR, n_items=0)


# ---------------------------------------------------------------------------- the anchor
def band_energy(x, lo, hi):
    spec = np.abs(np.fft.rfft(x * np.hanning(x.shape[-1]), axis=-1)) ** 2
    f = np.fft.rfftfreq(x.shape[-1], 1 / SR)
    return spec[..., (f >= lo) & (f < hi)].sum()


def test_the_anchor_is_low_passed_above_its_cutoff_and_untouched_below(folder):
    assert [listening.anchor_cutoff(sr) for sr in (8000, 16000, 22050, 48000)] == [1750, 3500, 3500, 3500]
    rng = np.random.default_rng(1)
    noise = (0.3 * rng.standard_normal((2, 4096))).astype(np.float32)
    low = listening.lowpass(noise, SR)
    cut = listening.anchor_cutoff(SR)
    assert band_energy(low, cut * 1.05, SR / 2) < 1e-6 * band_energy(noise, cut * 1.05, SR / 2)
    assert band_energy(low, 0, cut * 0.95) == pytest.approx(band_energy(noise, 0, cut * 0.95), rel=1e-3)
    # No delay: a tone below the cutoff comes out sample for sample as it went in (away from the ends).
    t = np.arange(4096) / SR
    tone = np.sin(2 * np.pi * 440 * t)[None]
    assert np.abs(listening.lowpass(tone, SR) - tone)[:, 400:-400].max() < 1e-3
    # The anchor written to the test folder is the reference low-passed.
    test = listening.load_test(folder)
    item = test.items[0]
    anchor = next(c for c in item["clips"] if condition_of(test, c) == ANCHOR)
    hidden = next(c for c in item["clips"] if condition_of(test, c) == HIDDEN_REFERENCE)
    a, sr = sf.read(listening.clip_path(folder, anchor), dtype="float32")
    r, _ = sf.read(listening.clip_path(folder, item["reference"]), dtype="float32")
    h, _ = sf.read(listening.clip_path(folder, hidden), dtype="float32")
    assert sr == SR and np.array_equal(r, h)
    assert band_energy(a, cut * 1.05, SR / 2) < 1e-4 * band_energy(r, cut * 1.05, SR / 2)
    assert band_energy(a, 0, cut * 0.95) == pytest.approx(band_energy(r, 0, cut * 0.95), rel=0.01)


# ---------------------------------------------------------------------------- answers and analysis
def page_csv(path, test, listener, ratings_of, columns=None):
    """The file the test page saves: one row per rated clip, its id in the clip column."""
    columns = columns or list(test.columns)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        for k, item in enumerate(test.items):
            for clip in item["clips"]:
                w.writerow({"test_id": test.test_id, "listener": listener, "item": item["id"], "task": "mushra",
                            "answer": str(ratings_of(condition_of(test, clip), k)),
                            "answered_at": f"2026-01-01T00:00:0{k}.000Z", "via": "page", "clip": clip})
    return path


RATINGS = {  # listener -> condition -> rating of items 0..3
    "ann": {HIDDEN_REFERENCE: [100, 100, 95, 100], ANCHOR: [20, 10, 30, 20], "vocoder": [70, 80, 60, 90],
            "griffin_lim": [40, 50, 30, 40]},
    "bob": {HIDDEN_REFERENCE: [90, 100, 100, 100], ANCHOR: [0, 5, 10, 25], "vocoder": [60, 60, 70, 50],
            "griffin_lim": [30, 20, 40, 50]},
}


def test_page_ratings_round_trip_through_the_csv_into_the_analysis(folder, tmp_path):
    test = listening.load_test(folder)
    assert test.columns[-1] == "clip"
    saved = page_csv(tmp_path / "ann.csv", test, "ann", lambda c, k: RATINGS["ann"][c][k])
    assert listening.import_answers(folder, saved) == 16
    assert listening.import_answers(folder, saved) == 0  # the same ratings again are duplicates
    # bob rates in the notebook, in the order the clips are shown.
    bob = ListeningSession(folder, "bob")
    for k, item in enumerate(test.items):
        assert bob.next_item()["id"] == item["id"]
        bob.answer([RATINGS["bob"][condition_of(test, c)][k] for c in item["clips"]])
    assert bob.done and ListeningSession(folder, "bob").done and ListeningSession(folder, "ann").done
    with open(folder / "answers.csv", newline="") as f:
        assert next(csv.reader(f))[-1] == "clip"

    result = listening.analyse(listening.scored_answers(folder))
    assert result["listeners"] == ["ann", "bob"] and result["n_answers"] == 32 and result["mos"] == []
    table = {r["condition"]: r for r in result["mushra"]}
    assert [r["condition"] for r in result["mushra"]] == [HIDDEN_REFERENCE, "griffin_lim", "vocoder", ANCHOR]
    for condition, row in table.items():
        x = np.array(RATINGS["ann"][condition] + RATINGS["bob"][condition], float)
        half = T975.get(len(x) - 1, 2.364624) * x.std(ddof=1) / math.sqrt(len(x))  # t(0.975, 7) = 2.364624
        assert (row["n"], row["listeners"]) == (8, 2)
        assert row["mean"] == pytest.approx(x.mean())
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((x.mean() - half, x.mean() + half), abs=1e-4)
    by_item = {(r["item"], r["condition"]): r["mean"] for r in result["mushra_by_item"]}
    assert by_item[(test.items[1]["id"], "vocoder")] == (80 + 60) / 2
    assert [(r["listener"], r["flagged"]) for r in result["mushra_screening"]] == [("ann", False), ("bob", False)]
    path = listening.write_analysis(folder, result)
    assert json.loads(path.read_text())["mushra"][0]["condition"] == HIDDEN_REFERENCE
    assert listening.plot_analysis(result).axes and "mushra_screening" in listening.tables_html(result)


def test_means_and_intervals_equal_hand_computed_values():
    def row(listener, condition, rating, item="i000"):
        return {"task": "mushra", "listener": listener, "item": item, "condition": condition, "rating": rating}

    rows = [row("a", "vocoder", 80), row("b", "vocoder", 90), row("c", "vocoder", 100),
            row("a", ANCHOR, 10), row("b", ANCHOR, 20), row("c", ANCHOR, 30, "i001"), row("d", ANCHOR, 40, "i001"),
            row("a", HIDDEN_REFERENCE, 100)]
    table = {r["condition"]: r for r in listening.mushra_table(rows)}
    # vocoder: mean 90, sd 10, n 3: 90 +- 4.302653 * 10 / sqrt(3) = 90 +- 24.8414
    assert table["vocoder"]["mean"] == 90 and table["vocoder"]["ci_high"] == pytest.approx(114.8414, abs=1e-3)
    assert table["vocoder"]["ci_low"] == pytest.approx(65.1586, abs=1e-3)
    # anchor: mean 25, sd 12.9099, n 4: 25 +- 3.182446 * 12.9099 / 2 = 25 +- 20.5426
    assert table[ANCHOR]["mean"] == 25 and table[ANCHOR]["ci_low"] == pytest.approx(4.4574, abs=1e-3)
    assert (table[ANCHOR]["n"], table[ANCHOR]["listeners"]) == (4, 4)
    assert table[HIDDEN_REFERENCE]["mean"] == 100 and math.isnan(table[HIDDEN_REFERENCE]["ci_low"])
    by_item = {(r["item"], r["condition"]): r["mean"] for r in listening.mushra_table(rows, ["item"])}
    assert by_item[("i000", ANCHOR)] == 15 and by_item[("i001", ANCHOR)] == 35


def test_post_screening_flags_a_listener_who_rates_the_hidden_reference_40(folder, tmp_path):
    test = listening.load_test(folder)
    good = {HIDDEN_REFERENCE: [100, 90, 100, 95], ANCHOR: [10] * 4, "vocoder": [70] * 4, "griffin_lim": [40] * 4}
    deaf = good | {HIDDEN_REFERENCE: [100, 40, 100, 100], "vocoder": [10] * 4}  # 1 of 4 items = 25% > 15%
    for name, ratings in (("ann", good), ("cy", deaf)):
        saved = page_csv(tmp_path / f"{name}.csv", test, name, lambda c, k, r=ratings: r[c][k])
        listening.import_answers(folder, saved)
    rows = listening.scored_answers(folder)
    screening = {r["listener"]: r for r in listening.post_screen(rows)}
    assert (screening["cy"]["hidden_reference_below"], screening["cy"]["share"]) == (1, 0.25)
    assert screening["cy"]["flagged"] and not screening["ann"]["flagged"]  # ann's 90 is not below 90
    reported = listening.analyse(rows)
    assert reported["mushra_excluded"] == []
    assert {r["condition"]: r["mean"] for r in reported["mushra"]}["vocoder"] == 40
    screened = listening.analyse(rows, exclude_flagged=True)
    assert screened["mushra_excluded"] == ["cy"]
    assert {r["condition"]: r["mean"] for r in screened["mushra"]}["vocoder"] == 70
    # One miss in seven items is 14%, within BS.1534's 15%.
    rows7 = [{"task": "mushra", "listener": "di", "condition": HIDDEN_REFERENCE, "rating": 40 if k == 0 else 100}
             for k in range(7)]
    assert listening.post_screen(rows7)[0]["flagged"] is False


# ---------------------------------------------------------------------------- checks and the answers file
def test_bad_ratings_are_refused_and_reported(folder, tmp_path):
    test = listening.load_test(folder)
    item = test.items[0]
    session = ListeningSession(folder, "ann")
    with pytest.raises(ValueError, match="not a rating of item"):
        session.answer([101, 50, 50, 50])
    with pytest.raises(ValueError, match="rates 4 clips, got 3"):
        session.answer([50, 50, 50])
    with pytest.raises(ValueError, match="missing"):
        session.answer({item["clips"][0]: 50})
    with pytest.raises(ValueError, match="takes a rating for each of its clips"):
        session.answer("50")
    assert listening.read_answers(folder) == [] and session.next_item()["id"] == item["id"]
    saved = page_csv(tmp_path / "bad.csv", test, "ann", lambda c, k: 50)
    lines = saved.read_text().splitlines()
    lines[1] = lines[1].replace(",50,", ",085,")
    lines[2] = lines[2].replace(",50,", ",-5,")
    lines[3] = lines[3].rsplit(",", 1)[0] + "," + item["reference"]  # the open reference is not rated
    lines[4] = lines[4].rsplit(",", 1)[0] + ","  # no clip
    saved.write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match="4 left out"):
        report = listening.import_answers(folder, saved)
    why = dict(report.skipped)
    assert report == 12 and len(why) == 4
    assert "'085' is not a rating" in why[f"{saved}, line 2"] and "'-5' is not a rating" in why[f"{saved}, line 3"]
    assert "is not rated in item" in why[f"{saved}, line 4"] and "clip None" in why[f"{saved}, line 5"]
    # The item whose ratings were left out is still to do; the others are done.
    assert [i["id"] for i in ListeningSession(folder, "ann").remaining] == [item["id"]]


def test_an_older_answers_file_stays_readable_and_gains_the_clip_column(tmp_path):
    old = {"test_id": "t", "listener": "ann", "item": "i000", "task": "quality", "answer": "4",
           "answered_at": "2026-01-01T00:00:00.000Z", "via": "notebook"}
    listening.append_answers(tmp_path, [old])
    assert (tmp_path / "answers.csv").read_text().splitlines()[0] == ",".join(listening.ANSWER_COLUMNS)
    assert listening.read_answers(tmp_path) == [old]  # a file without ratings has no clip column at all
    rating = old | {"item": "i001", "task": "mushra", "answer": "85", "clip": "c003"}
    listening.append_answers(tmp_path, [rating])
    text = (tmp_path / "answers.csv").read_text().splitlines()
    assert text[0].endswith(",clip") and text[1].endswith(",notebook,") and text[2].endswith(",c003")
    assert listening.read_answers(tmp_path) == [old | {"clip": ""}, rating]
    listening.append_answers(tmp_path, [old | {"answer": "5"}])
    assert len(listening.read_answers(tmp_path)) == 3
    assert (tmp_path / "answers.csv").read_text().splitlines()[0] == text[0]


def test_the_page_and_the_widget_show_a_slider_per_clip(folder):
    test = listening.load_test(folder)
    page = listening.export_html(folder).read_text()
    assert page.count("data:audio/wav;base64,") == len(test.clips) and '"clip"]' in page
    for name in ("vocoder", "griffin_lim", "hidden_reference"):
        assert name not in page
    session = ListeningSession(folder, "ann")
    box = listening.session_widget(session)
    progress, _, players, buttons = box.children
    item = test.items[0]
    rows = players.children
    assert len(rows) == 1 + len(item["clips"]) and rows[0].children[0].value == "Reference"
    sliders = [r.children[0] for r in rows[1:]]
    assert [s.description for s in sliders] == ["A", "B", "C", "D"] and (sliders[0].min, sliders[0].max) == (0, 100)
    (done,) = buttons.children
    for k, s in enumerate(sliders):
        assert done.disabled  # every slider must be set first
        s.value = 10 + k
    assert not done.disabled
    done.click()
    saved = {r["clip"]: r["answer"] for r in listening.read_answers(folder)}
    assert saved == {c: str(10 + k) for k, c in enumerate(item["clips"])}
    assert f"item 2 of {len(test.items)}" in progress.value
