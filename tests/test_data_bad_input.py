"""A folder mixing good files with every kind of bad one: the good load, the bad are reported by
name and reason, and nothing stops half-way (or, with on_error="raise", the first bad one stops it)."""

import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiogan.audio import io as audio_io
from audiogan.config import ConfigError, RunConfig
from audiogan.datasets import DataError, check_source, folders, load_dataset, load_folder

SR, CLIP = 16000, 4096
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _tone(sample_rate: int, seconds: float = 0.5, channels: int = 1, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    wav = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([wav * (1 - 0.1 * c) for c in range(channels)], axis=1) if channels > 1 else wav


GOOD = {  # name: (how to write it)
    "pcm24.wav": dict(subtype="PCM_24"),
    "ulaw8.wav": dict(subtype="ULAW"),
    "float64.wav": dict(subtype="DOUBLE"),
    "bigendian.wav": dict(endian="BIG"),
    "rf64.wav": dict(format="RF64"),
}
RATES = (8000, 11025, 22050, 44100, 48000, 96000, 192000)


@pytest.fixture
def mixed(tmp_path) -> Path:
    """Good files in unusual encodings and rates, and every kind of bad file, in one folder."""
    folder = tmp_path / "mixed"
    (folder / "rates").mkdir(parents=True)
    for name, kwargs in GOOD.items():
        sf.write(folder / name, _tone(SR), SR, **kwargs)
    sf.write(folder / "six_channels.wav", _tone(SR, channels=6), SR)
    for rate in RATES:
        sf.write(folder / "rates" / f"tone_{rate}.flac" if rate <= 96000 else folder / "rates" / f"tone_{rate}.wav",
                 _tone(rate), rate)
    # Bad ones.
    whole = (folder / "pcm24.wav").read_bytes()
    sf.write(folder / "to_truncate.wav", _tone(SR), SR)
    data = (folder / "to_truncate.wav").read_bytes()
    (folder / "to_truncate.wav").unlink()
    (folder / "truncated_data.wav").write_bytes(data[: len(data) // 2])  # kept, with a note
    (folder / "truncated_header.wav").write_bytes(whole[:30])
    (folder / "zero_length.wav").write_bytes(b"")
    (folder / "header_only.wav").write_bytes(data[:44])
    (folder / "text.mp3").write_text("this is a shopping list, not an mp3\n" * 30)
    (folder / "random.flac").write_bytes(np.random.default_rng(0).bytes(5000))
    sf.write(folder / "silent.wav", np.zeros(8000), SR)
    sf.write(folder / "nan.wav", np.full(800, np.nan), SR, subtype="FLOAT")
    locked = folder / "locked.wav"
    sf.write(locked, _tone(SR), SR)
    locked.chmod(0)
    (folder / "loop").mkdir()
    (folder / "loop" / "back_up").symlink_to(folder, target_is_directory=True)  # a folder loop
    (folder / "a.wav").symlink_to(folder / "b.wav")  # a file loop
    (folder / "b.wav").symlink_to(folder / "a.wav")
    (folder / "dangling.ogg").symlink_to(folder / "nowhere.ogg")
    yield folder
    locked.chmod(0o644)


@pytest.fixture
def unreadable(monkeypatch):
    """root reads files whatever their mode; make a mode-0 file unreadable for root too."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        real = audio_io._open

        def strict(path):
            if not os.stat(path).st_mode & 0o444:
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)

        monkeypatch.setattr(audio_io, "_open", strict)


EXPECTED_REASONS = {
    "truncated_header.wav": "not a readable audio file",
    "zero_length.wav": "empty file (0 bytes)",
    "header_only.wav": "no samples",
    "text.mp3": "not a readable audio file",
    "random.flac": "not a readable audio file",
    "silent.wav": "silent",
    "nan.wav": "NaN",
    "locked.wav": "permission denied",
    "a.wav": "symbolic-link loop",
    "b.wav": "symbolic-link loop",
    "dangling.ogg": "broken symbolic link",
    "back_up": "symbolic-link loop",
}


def test_mixed_folder_loads_the_good_and_reports_the_bad(mixed, unreadable):
    data = load_folder(mixed, SR, CLIP, "first")
    used = sorted(Path(data.info["files"][i]).name for i in np.unique(data.labels["file_index"]))
    good = sorted([*GOOD, "six_channels.wav", "truncated_data.wav"]
                  + [f"tone_{r}.{'flac' if r <= 96000 else 'wav'}" for r in RATES])
    assert used == good
    assert len(data) == len(good) and data.clips.dtype == np.float32
    # Every good file, whatever its encoding or rate, is the same 440 Hz tone at 16 kHz.
    for clip in data.clips:
        spectrum = np.abs(np.fft.rfft(clip[:4000] * np.hanning(4000), n=1 << 15))
        assert np.argmax(spectrum) * SR / (1 << 15) == pytest.approx(440, abs=3)
    reasons = {Path(s["file"]).name: s["reason"] for s in data.info["skipped"]}
    assert set(reasons) == set(EXPECTED_REASONS)
    for name, expected in EXPECTED_REASONS.items():
        assert expected in reasons[name], (name, reasons[name])
    notes = {Path(n["file"]).name: n["reason"] for n in data.info["notes"]}
    assert "truncated" in notes["truncated_data.wav"]


def test_on_error_raise_stops_at_a_bad_file_and_names_it(mixed, unreadable):
    with pytest.raises(DataError) as err:
        load_folder(mixed, SR, CLIP, "first", on_error="raise")
    message = str(err.value)
    assert str(mixed) in message and "on_error='skip'" in message


def test_on_error_raise_through_load_dataset_and_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOGAN_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "two"
    folder.mkdir()
    sf.write(folder / "good.wav", _tone(SR), SR)
    (folder / "bad.wav").write_text("not audio")
    config = RunConfig(dataset=str(folder), sample_rate=SR, clip_samples=CLIP)
    assert len(load_dataset(config)) == 1  # skip is the default
    for _ in range(2):  # built fresh, then with the skip-built cache present
        with pytest.raises(DataError, match="bad.wav: not a readable audio file"):
            load_dataset(config.replace(on_error="raise"))
    with pytest.raises(ConfigError, match="on_error='ignore'"):
        RunConfig(on_error="ignore")


def test_empty_folder_and_folder_of_only_bad_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no audio files"):
        check_source(str(tmp_path / "empty"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "zero.wav").write_bytes(b"")
    with pytest.raises(DataError, match="zero.wav: empty file"):
        load_folder(tmp_path / "bad", SR, CLIP)


def test_a_long_file_is_streamed_in_blocks(tmp_path, monkeypatch):
    path = tmp_path / "long.wav"
    rate, seconds = 8000, 20 * 60  # 20 minutes: 9.6 M samples, 38 MB as float32
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as f:
        block = (0.3 * np.sin(2 * np.pi * 200 * np.arange(rate * 60) / rate)).astype(np.float32)
        for _ in range(seconds // 60):
            f.write(block)
    # "first" reads only what the first clip needs: a few blocks, nowhere near the whole file.
    tracemalloc.start()
    clips, _ = folders.read_clips(path, SR, CLIP, "first")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert clips.shape == (1, CLIP)
    assert peak < 4e6, peak
    # "all" reads every frame, one block at a time, and keeps only the clips.
    sizes = []
    real_read = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        out = real_read(self, frames, *args, **kwargs)
        sizes.append(len(out))
        return out

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    clip, n = 65000, rate * seconds
    clips, _ = folders.read_clips(path, rate, clip, "all")
    assert n % clip >= clip // 2 and clips.shape == (n // clip + 1, clip)  # 147 whole clips + a remainder
    assert sum(sizes) == rate * seconds and max(sizes) == folders.BLOCK_FRAMES


def test_streamed_reading_matches_slicing_the_whole_file(tmp_path):
    from audiogan.datasets import slice_clips

    wav = np.random.default_rng(1).uniform(-0.5, 0.5, 10_000).astype(np.float32)
    sf.write(tmp_path / "x.wav", wav, SR, subtype="FLOAT")
    for mode in ("first", "all"):
        for clip in (1000, 3000, 4096, 12000):
            streamed, _ = folders.read_clips(tmp_path / "x.wav", SR, clip, mode, block_frames=777)
            np.testing.assert_array_equal(streamed, slice_clips(wav, clip, mode))


@pytest.mark.parametrize("damage", ["flip_clip_byte", "flip_label_byte", "truncate_clips", "bad_json", "no_labels"])
def test_a_damaged_cache_is_detected_and_rebuilt(damage, tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOGAN_CACHE_DIR", str(tmp_path))
    config = RunConfig(dataset="tones", n_clips=8, sample_rate=8000, clip_samples=256)
    first = load_dataset(config)
    clips_path = Path(first.info["cache"])
    labels_path = clips_path.with_name(clips_path.stem + ".labels.npz")
    meta_path = clips_path.with_suffix(".json")
    if damage.startswith("flip"):  # same size, one byte changed in the middle: only a checksum sees it
        path = clips_path if damage == "flip_clip_byte" else labels_path
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        path.write_bytes(bytes(raw))
    elif damage == "truncate_clips":
        clips_path.write_bytes(clips_path.read_bytes()[:1000])
    elif damage == "bad_json":
        meta_path.write_text('{"name": "tones", "sha')
    else:
        labels_path.unlink()
    with pytest.warns(UserWarning, match="damaged"):
        rebuilt = load_dataset(config)
    assert rebuilt.info["from_cache"] is False
    assert rebuilt.clips.tobytes() == first.clips.tobytes()
    again = load_dataset(config)
    assert again.info["from_cache"] is True and again.clips.tobytes() == first.clips.tobytes()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]  # no temporary files left behind


def test_a_file_two_hours_long_reads_only_its_first_clip(tmp_path):
    """A 2-hour 16 kHz WAV (230 MB, stored sparse so the test writes almost nothing)."""
    import struct

    path = tmp_path / "two_hours.wav"
    sf.write(path, _tone(SR, seconds=1.0), SR, subtype="PCM_16")
    header = 44
    data_bytes = 2 * 3600 * SR * 2
    with open(path, "r+b") as f:
        f.truncate(header + data_bytes)  # the rest reads as zeros
        f.seek(4)
        f.write(struct.pack("<I", 36 + data_bytes))
        f.seek(40)
        f.write(struct.pack("<I", data_bytes))
    assert sf.info(str(path)).frames == 2 * 3600 * SR
    tracemalloc.start()
    clips, note = folders.read_clips(path, SR, CLIP, "first")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert clips.shape == (1, CLIP) and note is None
    assert np.abs(clips).max() == pytest.approx(0.5, abs=1e-3)  # the tone at its start
    assert peak < 4e6, peak  # the whole file would be 460 MB as float32
