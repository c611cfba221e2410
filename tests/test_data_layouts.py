"""SC09 / Speech Commands folders, drums, tones' stated pitch distribution, and streamed slicing (hypothesis)."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from audiogan.config import RunConfig
from audiogan.datasets import (
    TONE_MIDI_RANGE,
    check_source,
    folders,
    label_counts,
    load_dataset,
    load_folder,
    make_tones,
    slice_clips,
    summarise,
)
from audiogan.datasets.drums import KINDS, make_drums

SR, CLIP = 8000, 2048
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _word(path: Path, freq: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(4000) / SR
    sf.write(path, 0.4 * np.sin(2 * np.pi * freq * t), SR)


@pytest.fixture
def sc09(tmp_path) -> Path:
    """SC09 as published: train/valid/test folders of Word_speaker_nohash_n.wav files."""
    root = tmp_path / "sc09"
    for split, speakers in (("train", ("0a2b400e", "1b3c5d7f")), ("valid", ("2c4e6a8b",)), ("test", ("3d5f7b9c",))):
        for k, word in enumerate(("Zero", "Seven", "Nine")):
            for s in speakers:
                _word(root / split / f"{word}_{s}_nohash_0.wav", 200 + 100 * k)
    return root


def test_sc09_names_give_digit_speaker_and_split(sc09, tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOGAN_CACHE_DIR", str(tmp_path / "cache"))
    for dataset in (f"sc09:{sc09}", str(sc09)):
        data = load_dataset(RunConfig(dataset=dataset, sample_rate=SR, clip_samples=CLIP))
        assert len(data) == 12 and data.info["layout"] == "sc09"
        assert label_counts(data) == {
            "test": {"0": 1, "7": 1, "9": 1}, "train": {"0": 2, "7": 2, "9": 2}, "validation": {"0": 1, "7": 1, "9": 1}}
        for i in range(len(data)):
            name = Path(data.info["files"][data.labels["file_index"][i]]).name
            assert name.lower().startswith(data.labels["word"][i])
            assert name.split("_")[1] == data.labels["speaker"][i]
        train_speakers = set(data.labels["speaker"][data.labels["split"] == "train"])
        assert train_speakers == {"0a2b400e", "1b3c5d7f"}
    assert check_source(f"sc09:{sc09}") == f"sc09:{sc09}"


def test_speech_commands_folders_with_split_lists(tmp_path):
    root = tmp_path / "speech_commands"
    _word(root / "seven" / "0a2b400e_nohash_0.wav", 300)
    _word(root / "seven" / "1b3c5d7f_nohash_1.wav", 300)
    _word(root / "dog" / "2c4e6a8b_nohash_0.wav", 500)
    _word(root / "stop" / "3d5f7b9c_nohash_0.wav", 700)
    (root / folders.BACKGROUND).mkdir()
    sf.write(root / folders.BACKGROUND / "white_noise.wav", np.random.default_rng(0).uniform(-.3, .3, 20000), SR)
    (root / "validation_list.txt").write_text("seven/1b3c5d7f_nohash_1.wav\n")
    (root / "testing_list.txt").write_text("dog/2c4e6a8b_nohash_0.wav\n")
    data = load_folder(root, SR, CLIP)
    assert data.info["layout"] == "speech_commands" and len(data) == 4
    assert "digit" not in data.labels  # not all words are digits
    names = [Path(data.info["files"][i]).relative_to(root).as_posix() for i in data.labels["file_index"]]
    assert dict(zip(names, data.labels["split"].tolist(), strict=True)) == {
        "dog/2c4e6a8b_nohash_0.wav": "test", "seven/0a2b400e_nohash_0.wav": "train",
        "seven/1b3c5d7f_nohash_1.wav": "validation", "stop/3d5f7b9c_nohash_0.wav": "train"}
    assert data.labels["speaker"][names.index("dog/2c4e6a8b_nohash_0.wav")] == "2c4e6a8b"
    assert sorted(data.labels["word"].tolist()) == ["dog", "seven", "seven", "stop"]
    assert any("background-noise" in n["reason"] for n in data.info["notes"])
    # sc09: keeps only the digits.
    digits_only = load_folder(root, SR, CLIP, layout="sc09")
    assert digits_only.labels["word"].tolist() == ["seven", "seven"]
    assert digits_only.labels["digit"].tolist() == [7, 7]
    assert summarise(digits_only)["class_label"] == "digit"


def test_an_unrecognised_folder_has_no_word_labels_and_sc09_reports_misnamed_files(tmp_path):
    _word(tmp_path / "mine" / "take1.wav", 300)
    _word(tmp_path / "mine" / "seven" / "take2.wav", 300)
    plain = load_folder(tmp_path / "mine", SR, CLIP)
    assert "word" not in plain.labels and "layout" not in plain.info and len(plain) == 2
    strict = load_folder(tmp_path / "mine", SR, CLIP, layout="sc09")
    assert strict.labels["word"].tolist() == ["seven"]
    assert [Path(s["file"]).name for s in strict.info["skipped"]] == ["take1.wav"]
    assert "SC09" in strict.info["skipped"][0]["reason"]


def test_drums_are_balanced_labelled_and_sound_different():
    data = make_drums(30, 16000, 4096, seed=0)
    assert data.clips.shape == (30, 4096) and data.clips.dtype == np.float32
    assert label_counts(data) == {"all": {k: 10 for k in KINDS}}
    freqs = np.fft.rfftfreq(4096, 1 / 16000)
    centroid = {}
    for kind in KINDS:
        spectrum = np.abs(np.fft.rfft(data.clips[data.labels["drum"] == kind], axis=1)).mean(0)
        centroid[kind] = float((spectrum * freqs).sum() / spectrum.sum())
    assert centroid["kick"] < centroid["snare"] < centroid["hat"]
    assert make_drums(30, 16000, 4096, seed=0).clips.tobytes() == data.clips.tobytes()


def test_tones_follow_the_stated_pitch_distribution():
    data = make_tones(2500, 8000, 64, seed=0)
    midi = data.labels["midi"]
    values, counts = np.unique(midi, return_counts=True)
    assert values.tolist() == list(range(TONE_MIDI_RANGE[0], TONE_MIDI_RANGE[1] + 1))  # all 25 notes
    assert counts.min() > 0.6 * 100 and counts.max() < 1.4 * 100  # uniform: 100 each expected
    assert summarise(data)["pitch_range_hz"] == pytest.approx([130.81, 523.25], abs=0.01)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3000), clip=st.integers(2, 700), block=st.integers(1, 900),
       mode=st.sampled_from(["first", "all"]))
def test_streamed_clips_equal_slicing_the_whole_recording(tmp_path_factory, n, clip, block, mode):
    folder = tmp_path_factory.mktemp("stream")
    wav = (np.arange(1, n + 1, dtype=np.float32) / (n + 1)).astype(np.float32)  # nonzero, so padding shows
    sf.write(folder / "x.wav", wav, SR, subtype="FLOAT")
    streamed, note = folders.read_clips(folder / "x.wav", SR, clip, mode, block_frames=block)
    expected = slice_clips(wav, clip, mode)
    np.testing.assert_array_equal(streamed, expected)
    assert note is None


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 600), clip=st.integers(64, 512), jitter=st.floats(-1, 1))
def test_placing_an_utterance_pads_around_it_or_cuts_it_with_a_fade(n, clip, jitter):
    from audiogan.datasets.digits import _place

    word = np.linspace(0.1, 1.0, n, dtype=np.float32)  # nonzero everywhere
    placed, cut = _place(word, clip, jitter, sample_rate=8000)
    assert placed.shape == (clip,) and placed.dtype == np.float32
    assert cut == (n > clip)
    if n <= clip:
        start = int(np.argmax(placed != 0)) if n else 0
        np.testing.assert_array_equal(placed[start:start + n], word)  # whole and unchanged
        assert np.count_nonzero(placed) == n
        free = clip - n
        assert n == 0 or abs(start - free // 2) <= free // 4 + 1  # near the middle
    else:
        fade = min(clip, 80)  # 10 ms at 8 kHz, or the whole clip when it is shorter
        np.testing.assert_array_equal(placed[:clip - fade], word[:clip - fade])
        assert placed[-1] == 0 and np.all(np.abs(placed[-fade:]) <= word[clip - fade:clip])
