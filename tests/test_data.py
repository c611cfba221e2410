"""Data: embedded tones, folders of audio files, slicing, caching and seeded batches."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from audiogan.config import ConfigError, RunConfig
from audiogan.datasets import (
    PEAK,
    TONE_MIDI_RANGE,
    Batches,
    DataError,
    check_source,
    load_dataset,
    load_folder,
    make_tones,
    midi_to_hz,
    slice_clips,
)

SR = 16000
CLIP = 4096


def _sine(freq_hz: float, n: int, sample_rate: int, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq_hz * np.arange(n) / sample_rate)).astype(np.float32)


def _dominant_hz(wav: np.ndarray, sample_rate: int, n_fft: int | None = None) -> float:
    n_fft = n_fft or len(wav)
    spectrum = np.abs(np.fft.rfft(wav * np.hanning(len(wav)), n=n_fft))
    return float(np.argmax(spectrum) * sample_rate / n_fft)


def _corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not audio, only a file named like it\n" * 40)
    return path


@pytest.fixture
def audio_folder(tmp_path) -> Path:
    """Four audio files in nested folders (wav 22.05 kHz stereo, flac, ogg, a silent wav)."""
    folder = tmp_path / "sounds"
    (folder / "a" / "b").mkdir(parents=True)
    (folder / "c" / "d" / "e").mkdir(parents=True)
    stereo = np.stack([_sine(440, 22050, 22050), _sine(440, 22050, 22050, 0.3)], axis=1)
    sf.write(str(folder / "a" / "b" / "sine440.wav"), stereo, 22050)  # 1 s
    sf.write(str(folder / "a" / "tone.flac"), _sine(300, 8000, SR), SR)  # 0.5 s
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, 8000).astype(np.float32)
    sf.write(str(folder / "c" / "d" / "e" / "noise.ogg"), noise, SR, format="OGG", subtype="VORBIS")
    sf.write(str(folder / "silent.wav"), np.zeros(8000, np.float32), SR)
    (folder / "notes.txt").write_text("not audio")
    return folder


def _config(**changes) -> RunConfig:
    values = dict(dataset="tones", sample_rate=8000, clip_samples=256, n_clips=8, batch_size=4)
    values.update(changes)
    return RunConfig(**values)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("AUDIOGAN_CACHE_DIR", str(folder))
    return folder


# ---------------------------------------------------------------------------- tones
def test_make_tones_shapes_range_and_labels():
    data = make_tones(16, 8000, 512, seed=1)
    assert data.clips.shape == (16, 512)
    assert data.clips.dtype == np.float32
    assert len(data) == 16 and data.clip_samples == 512 and data.sample_rate == 8000
    assert np.all(np.abs(data.clips) <= 1.0)
    np.testing.assert_allclose(np.abs(data.clips).max(axis=1), PEAK, rtol=1e-6)
    midi = data.labels["midi"]
    assert midi.shape == (16,)
    assert np.all((midi >= TONE_MIDI_RANGE[0]) & (midi <= TONE_MIDI_RANGE[1]))
    np.testing.assert_allclose(data.labels["pitch_hz"], midi_to_hz(midi), rtol=1e-6)
    assert midi_to_hz(69) == pytest.approx(440.0)
    assert midi_to_hz(TONE_MIDI_RANGE[0]) == pytest.approx(130.81, abs=0.01)


def test_make_tones_is_seeded():
    a, b, c = make_tones(6, 8000, 256, seed=3), make_tones(6, 8000, 256, seed=3), make_tones(
        6, 8000, 256, seed=4)
    assert a.clips.tobytes() == b.clips.tobytes()
    assert np.array_equal(a.labels["midi"], b.labels["midi"])
    assert a.clips.tobytes() != c.clips.tobytes()


def test_tone_pitch_is_the_dominant_frequency():
    data = make_tones(6, SR, 16000, seed=0)  # 1 Hz FFT bins
    for clip, pitch in zip(data.clips, data.labels["pitch_hz"], strict=True):
        assert _dominant_hz(clip, SR) == pytest.approx(float(pitch), abs=3.0)


# ---------------------------------------------------------------------------- slicing
def test_slice_first_takes_the_first_clip():
    wav = np.arange(1, 11, dtype=np.float32)
    np.testing.assert_array_equal(slice_clips(wav, 4, "first"), [[1, 2, 3, 4]])


def test_slice_all_keeps_a_remainder_of_at_least_half_a_clip():
    wav = np.arange(1, 11, dtype=np.float32)  # 10 = 2 * 4 + 2
    np.testing.assert_array_equal(
        slice_clips(wav, 4, "all"), [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 0, 0]]
    )
    assert slice_clips(wav[:9], 4, "all").shape == (2, 4)  # a remainder of 1 < 2 is dropped


@pytest.mark.parametrize("mode", ["first", "all"])
def test_slice_short_recording_is_zero_padded(mode):
    out = slice_clips(np.ones(3, np.float32), 8, mode)
    np.testing.assert_array_equal(out, [[1, 1, 1, 0, 0, 0, 0, 0]])
    assert out.dtype == np.float32


@settings(max_examples=150, deadline=None)
@given(n=st.integers(0, 400), clip=st.integers(2, 64), mode=st.sampled_from(["first", "all"]))
def test_slice_clips_property(n, clip, mode):
    wav = np.arange(1, n + 1, dtype=np.float32)  # nonzero, so padding is recognisable
    out = slice_clips(wav, clip, mode)
    if n <= clip or mode == "first":
        k = 1
    else:
        k = n // clip + (n % clip >= clip // 2)
    assert out.shape == (k, clip)
    flat = out.reshape(-1)
    used = min(n, k * clip)
    np.testing.assert_array_equal(flat[:used], wav[:used])
    assert np.all(flat[used:] == 0)
    if mode == "all":
        assert n - used < max(clip // 2, 1)  # only a tail shorter than half a clip is dropped


# ---------------------------------------------------------------------------- folders
def test_load_folder_first_slices(audio_folder):
    data = load_folder(audio_folder, SR, CLIP, "first")
    names = [Path(f).name for f in data.info["files"]]
    assert names == ["sine440.wav", "tone.flac", "noise.ogg", "silent.wav"]  # recursive, sorted
    assert data.clips.shape == (3, CLIP)  # one per file, the silent one dropped
    assert data.clips.dtype == np.float32
    assert data.info["silent_clips"] == 1
    np.testing.assert_allclose(np.abs(data.clips).max(axis=1), PEAK, rtol=1e-6)
    sources = [names[i] for i in data.labels["file_index"]]
    assert sources == ["sine440.wav", "tone.flac", "noise.ogg"]
    sine = data.clips[sources.index("sine440.wav")]
    assert _dominant_hz(sine, SR, n_fft=1 << 16) == pytest.approx(440.0, abs=2.0)
    tone = data.clips[sources.index("tone.flac")]
    assert _dominant_hz(tone, SR, n_fft=1 << 16) == pytest.approx(300.0, abs=2.0)


def test_load_folder_all_slices_resamples(audio_folder):
    data = load_folder(audio_folder, SR, CLIP, "all")
    # 1 s at 22.05 kHz -> 16000 samples at 16 kHz: 3 clips + 3712 left (>= half): 4 clips.
    # 8000 samples: 1 clip + 3904 left: 2 clips, for the flac and the ogg; the silent 2 dropped.
    names = [Path(f).name for f in data.info["files"]]
    counts = {name: int(np.sum(data.labels["file_index"] == i)) for i, name in enumerate(names)}
    assert counts == {"sine440.wav": 4, "tone.flac": 2, "noise.ogg": 2, "silent.wav": 0}
    assert data.clips.shape == (8, CLIP)
    assert data.info["silent_clips"] == 2


@pytest.mark.filterwarnings("ignore:PySoundFile failed", "ignore::FutureWarning")
def test_load_folder_skips_corrupt_file_with_warning(audio_folder):
    _corrupt(audio_folder / "a" / "broken.wav")
    with pytest.warns(UserWarning, match="broken.wav"):
        data = load_folder(audio_folder, SR, CLIP, "first")
    assert len(data) == 3
    assert [Path(s["file"]).name for s in data.info["skipped"]] == ["broken.wav", "silent.wav"]
    assert "not a readable audio file" in data.info["skipped"][0]["reason"]
    assert data.info["skipped"][1]["reason"].startswith("silent")


def test_load_folder_of_only_corrupt_files_raises(tmp_path):
    folder = tmp_path / "junk"
    _corrupt(folder / "one.wav")
    _corrupt(folder / "sub" / "two.flac")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa's fallback chatter
        with pytest.raises(DataError, match=re.escape(str(folder))):
            load_folder(folder, SR, CLIP)


def test_load_folder_of_only_silence_raises(tmp_path):
    folder = tmp_path / "quiet"
    folder.mkdir()
    sf.write(str(folder / "z.wav"), np.zeros(1000, np.float32), SR)
    with pytest.raises(DataError, match="silent"):
        load_folder(folder, SR, CLIP)


# ---------------------------------------------------------------------------- check_source
def test_check_source_accepts_tones_and_a_good_folder(audio_folder):
    assert check_source("tones") == "tones"
    assert check_source(str(audio_folder)) == str(audio_folder)


def test_check_source_unknown_name():
    with pytest.raises(ConfigError) as err:
        check_source("piano_notes")
    assert "'piano_notes'" in str(err.value)
    assert "tones" in str(err.value)


def test_check_source_missing_folder(tmp_path):
    missing = str(tmp_path / "no" / "such")
    with pytest.raises(ConfigError, match=re.escape(repr(missing))):
        check_source(missing)


def test_check_source_file_instead_of_folder(audio_folder):
    path = str(audio_folder / "silent.wav")
    with pytest.raises(ConfigError, match=re.escape(repr(path))):
        check_source(path)


def test_check_source_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "readme.txt").write_text("no audio here")
    for name in ("empty", "text"):
        value = str(tmp_path / name)
        with pytest.raises(ConfigError, match=re.escape(repr(value))):
            check_source(value)


def test_check_source_folder_without_readable_audio(tmp_path):
    folder = tmp_path / "junk"
    _corrupt(folder / "x.wav")
    _corrupt(folder / "y.ogg")
    with pytest.raises(ConfigError, match=re.escape(repr(str(folder)))):
        check_source(str(folder))


# ---------------------------------------------------------------------------- caching
def test_load_dataset_tones_cached(cache):
    config = _config()
    first = load_dataset(config)
    assert first.info["from_cache"] is False
    assert Path(first.info["cache"]).parent == cache
    second = load_dataset(config)
    assert second.info["from_cache"] is True
    assert second.info["cache"] == first.info["cache"]
    assert second.clips.dtype == np.float32
    assert second.clips.tobytes() == first.clips.tobytes()
    for name, values in first.labels.items():
        np.testing.assert_array_equal(second.labels[name], values)
    assert load_dataset(config, use_cache=False).info["from_cache"] is False


def test_cached_labels_keep_their_dtype(cache):
    config = _config()
    fresh = load_dataset(config)
    cached = load_dataset(config)
    assert {k: v.dtype for k, v in cached.labels.items()} == {
        k: v.dtype for k, v in fresh.labels.items()
    }


@pytest.mark.parametrize("change", [{"n_clips": 12}, {"seed": 1}, {"clip_samples": 512}])
def test_changing_a_setting_changes_the_cache_key(cache, change):
    base = load_dataset(_config())
    other = load_dataset(_config(**change))
    assert other.info["from_cache"] is False
    assert other.info["cache"] != base.info["cache"]
    assert len(list(cache.glob("*.npy"))) == 2
    assert load_dataset(_config()).info["from_cache"] is True  # the first is still there


def test_bookkeeping_settings_share_the_cache(cache):
    load_dataset(_config())
    again = load_dataset(_config(steps=5, batch_size=2, lr=1e-3, run_dir="elsewhere"))
    assert again.info["from_cache"] is True


def test_folder_cache_is_invalidated_by_a_changed_file(cache, audio_folder):
    config = _config(dataset=str(audio_folder), sample_rate=SR, clip_samples=CLIP, slices="all")
    first = load_dataset(config)
    assert first.info["from_cache"] is False
    assert len(first) == 8
    assert load_dataset(config).info["from_cache"] is True
    # Rewrite the flac three times as long (its size changes): 24000 samples -> 6 clips.
    sf.write(str(audio_folder / "a" / "tone.flac"), _sine(300, 24000, SR), SR)
    changed = load_dataset(config)
    assert changed.info["from_cache"] is False
    assert changed.info["cache"] != first.info["cache"]
    assert len(changed) == 12


def test_damaged_cache_is_rebuilt_with_a_warning(cache):
    config = _config()
    first = load_dataset(config)
    Path(first.info["cache"]).write_bytes(b"\x93NUMPY garbage")
    with pytest.warns(UserWarning, match="damaged"):
        rebuilt = load_dataset(config)
    assert rebuilt.info["from_cache"] is False
    assert rebuilt.clips.tobytes() == first.clips.tobytes()
    again = load_dataset(config)
    assert again.info["from_cache"] is True
    assert again.clips.tobytes() == first.clips.tobytes()


def test_load_dataset_checks_the_source(cache):
    with pytest.raises(ConfigError, match="nowhere"):
        load_dataset(_config(dataset="nowhere"))


# ---------------------------------------------------------------------------- batches
def _numbered(n: int) -> np.ndarray:
    return np.repeat(np.arange(n, dtype=np.float32)[:, None], 3, axis=1)  # clip i is all i


def test_batches_hold_distinct_clips():
    batches = Batches(_numbered(10), batch_size=4, seed=0)
    for step in range(12):
        idx = batches.indices(step)
        assert len(idx) == 4
        assert len(set(idx.tolist())) == 4
        np.testing.assert_array_equal(batches[step][:, 0], idx)


def test_batches_are_seeded():
    clips = _numbered(16)
    a, b, c = Batches(clips, 4, seed=5), Batches(clips, 4, seed=5), Batches(clips, 4, seed=6)
    seq = [a[s] for s in range(10)]
    assert all(np.array_equal(x, b[s]) for s, x in enumerate(seq))
    assert not all(np.array_equal(x, c[s]) for s, x in enumerate(seq))


def test_batch_for_a_step_does_not_depend_on_how_it_is_reached():
    clips = _numbered(10)
    it = Batches(clips, 3, seed=1).iterate(0)
    from_start = [next(it) for _ in range(11)]
    direct = Batches(clips, 3, seed=1)
    for step in (10, 4, 7, 0, 9, 3):  # out of order, across epochs
        np.testing.assert_array_equal(direct[step], from_start[step])
    resumed = Batches(clips, 3, seed=1).iterate(start=6)
    for step in range(6, 11):
        np.testing.assert_array_equal(next(resumed), from_start[step])


def test_each_epoch_covers_every_clip_once():
    batches = Batches(_numbered(12), batch_size=4, seed=2)
    assert batches.per_epoch == 3
    for epoch in range(3):
        seen = np.concatenate([batches.indices(epoch * 3 + i) for i in range(3)])
        assert sorted(seen.tolist()) == list(range(12))
    first, second = (np.concatenate([batches.indices(e * 3 + i) for i in range(3)]) for e in (0, 1))
    assert not np.array_equal(first, second)  # reshuffled each epoch


def test_epochs_drop_the_last_partial_batch():
    batches = Batches(_numbered(10), batch_size=4, seed=0)
    assert batches.per_epoch == 2
    seen = np.concatenate([batches.indices(0), batches.indices(1)])
    assert len(set(seen.tolist())) == 8


def test_batch_size_larger_than_dataset_is_a_config_error():
    with pytest.raises(ConfigError, match="batch_size=8"):
        Batches(_numbered(5), batch_size=8, seed=0)
    assert Batches(_numbered(5), batch_size=5, seed=0)[3].shape == (5, 3)
