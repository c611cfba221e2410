"""Data under stress: cache files that change while they are read, headers that lie."""

from __future__ import annotations

import hashlib
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiogan.audio import BadFile, io
from audiogan.config import RunConfig
from audiogan.datasets import cache, folders, load_dataset, load_folder

SR = 8000


# ---------------------------------------------------------------------------- the cache
def _config(**changes) -> RunConfig:
    return RunConfig(**{"dataset": "tones", "sample_rate": SR, "clip_samples": 256, "n_clips": 8} | changes)


class _SwapAfterHashing:
    """Stands in for ``hashlib`` in the cache module: once the checksum of the clips file has been
    taken, another dataset's (valid) clips file is put in its place, as a concurrent rebuild would."""

    def __init__(self, clips_path: Path, other: bytes):
        self.clips_path, self.other, self.swapped = clips_path, other, False
        self.clips_sha = hashlib.sha256(clips_path.read_bytes()).hexdigest()

    def sha256(self, data=b""):
        outer, real = self, hashlib.sha256(data)

        class Digest:
            def update(self, block):
                real.update(block)

            def hexdigest(self):
                digest = real.hexdigest()
                if digest == outer.clips_sha and not outer.swapped:
                    outer.clips_path.write_bytes(outer.other)  # in place: same inode, new bytes
                    outer.swapped = True
                return digest

        return Digest()


def test_a_cache_file_changed_between_checksum_and_load_never_gives_wrong_clips(tmp_path, monkeypatch):
    """Before, the checksum was taken on one read and the arrays came from another: the swapped
    file's clips were returned as if verified."""
    monkeypatch.setenv("AUDIOGAN_CACHE_DIR", str(tmp_path))
    config = _config()
    right = load_dataset(config)
    clips_path = Path(right.info["cache"])
    wrong = right.clips[::-1].copy()  # same shape and dtype: only the checksum can tell
    other = tmp_path / "other.npy"
    np.save(other, wrong)
    monkeypatch.setattr(cache, "hashlib", _SwapAfterHashing(clips_path, other.read_bytes()))
    got = load_dataset(config)
    assert cache.hashlib.swapped  # the file did change during the load
    assert got.clips.tobytes() == right.clips.tobytes()  # the verified bytes, not the swapped ones
    # The next load sees the swapped file, which fails its checksum: rebuilt, never served.
    monkeypatch.setattr(cache, "hashlib", hashlib)
    with pytest.warns(UserWarning, match="does not match its checksum"):
        again = load_dataset(config)
    assert again.info["from_cache"] is False and again.clips.tobytes() == right.clips.tobytes()


def test_a_cache_file_rewritten_in_place_during_the_read_is_rebuilt(tmp_path, monkeypatch):
    """A reader that sees half of the old file and half of a new one: the checksum of those bytes fails."""
    monkeypatch.setenv("AUDIOGAN_CACHE_DIR", str(tmp_path))
    config = _config()
    right = load_dataset(config)
    clips_path = Path(right.info["cache"])
    other = tmp_path / "other.npy"
    np.save(other, right.clips[::-1].copy())
    torn = bytearray(clips_path.read_bytes())
    torn[len(torn) // 2:] = other.read_bytes()[len(torn) // 2:]
    real_open, torn_once = open, []

    def tearing_open(path, mode="r", *args, **kwargs):
        if Path(path) == clips_path and "b" in mode and not torn_once:  # the read of the clips
            torn_once.append(path)
            other.write_bytes(bytes(torn))
            return real_open(other, mode, *args, **kwargs)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(cache, "open", tearing_open, raising=False)
    with pytest.warns(UserWarning, match="does not match its checksum"):
        got = load_dataset(config)
    assert torn_once and got.info["from_cache"] is False and got.clips.tobytes() == right.clips.tobytes()


def test_cached_clips_are_writable_and_share_the_bytes_read(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOGAN_CACHE_DIR", str(tmp_path))
    load_dataset(_config())
    cached = load_dataset(_config())
    assert cached.info["from_cache"] is True and cached.clips.flags.writeable
    assert cached.clips.dtype == np.float32 and cached.clips.shape == (8, 256)


# ---------------------------------------------------------------------------- headers that lie
def _wav_bytes(rate: int, n_bytes: int, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV whose header claims ``rate`` Hz, with ``n_bytes`` of noise as its audio."""
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
    data = (np.random.default_rng(0).uniform(-0.5, 0.5, n_bytes // 2) * 32767).astype("<i2").tobytes()
    body = b"WAVE" + fmt + struct.pack("<4sI", b"data", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("slices", ["all", "first"])
def test_a_header_claiming_1_hz_is_skipped_naming_the_rate_in_little_memory_and_time(tmp_path, slices):
    """8 kB whose header says 1 Hz: 4000 seconds of audio, 128 MB of float32 at 8 kHz, before."""
    folder = tmp_path / "sounds"
    folder.mkdir()
    (folder / "one_hz.wav").write_bytes(_wav_bytes(1, 8000))
    sf.write(folder / "good.wav", 0.5 * np.sin(np.arange(4000) / 5), SR)
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.warns(UserWarning, match="skipped"):
        data = load_folder(folder, SR, 1024, slices)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [s["file"] for s in data.info["skipped"]] == [str(folder / "one_hz.wav")]
    reason = data.info["skipped"][0]["reason"]
    assert "sample rate 1 Hz" in reason and "1000-384000 Hz" in reason
    assert len(data) == (4 if slices == "all" else 1)  # only the good file's clips
    assert peak < 8e6, peak
    assert seconds < 5, seconds


@pytest.mark.parametrize("rate", [999, 384001, 1_000_000])
def test_sample_rates_outside_the_sane_range_are_bad_files(tmp_path, rate):
    path = tmp_path / "odd.wav"
    path.write_bytes(_wav_bytes(rate, 800))
    with pytest.raises(BadFile, match=f"sample rate {rate} Hz"):
        folders.read_clips(path, SR, 256, "all")
    for ok in (1000, 384000):
        path.write_bytes(_wav_bytes(ok, 800))
        assert folders.read_clips(path, SR, 256, "all")[0].shape[1] == 256


def test_a_file_longer_than_the_limit_is_refused_when_read_whole_but_its_first_clip_reads(tmp_path, monkeypatch):
    path = tmp_path / "long.wav"
    sf.write(path, 0.3 * np.sin(np.arange(3 * SR) / 3), SR)  # 3 s
    monkeypatch.setattr(io, "MAX_FILE_SECONDS", 2)
    with pytest.raises(BadFile, match=r"24000 frames at 8000 Hz .* longer than the 2 s"):
        list(io.read_blocks(path, SR, max_seconds=2))
    with pytest.raises(BadFile, match="longer than"):
        folders.read_clips(path, SR, 1024, "all")
    assert folders.read_clips(path, SR, 1024, "first")[0].shape == (1, 1024)
