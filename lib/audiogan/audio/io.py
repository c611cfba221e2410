"""Audio in and out: any file libsndfile decodes, read in blocks and resampled (soxr); WAV written."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
BLOCK_FRAMES = 1 << 16  # frames read at once (per channel): 64 Ki, e.g. 4 s at 16 kHz


class BadFile(Exception):
    """One file cannot be used; ``str()`` is the reason, in words a person can act on."""


def _open(path: Path):
    return open(path, "rb")  # noqa: SIM115 - closed by the caller's with-block


def read_blocks(path: Path, sample_rate: int, max_frames: int | None = None,
                block_frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
    """Mono float32 blocks of ``path`` at ``sample_rate``, read ``block_frames`` at a time."""
    try:
        fh = _open(path)
    except PermissionError as exc:
        raise BadFile(f"cannot be read: permission denied ({exc.strerror})") from exc
    except OSError as exc:
        raise BadFile(f"cannot be read: {exc.strerror or exc}") from exc
    with fh:
        try:
            audio = sf.SoundFile(fh)
        except Exception as exc:  # noqa: BLE001 - libsndfile's many ways of saying "not audio"
            if path.stat().st_size == 0:
                raise BadFile("empty file (0 bytes)") from exc
            message = str(exc).split(": ", 1)[-1] if ": " in str(exc) else str(exc)
            raise BadFile(f"not a readable audio file ({message.strip()})") from exc
        with audio:
            if audio.frames == 0:
                raise BadFile("no samples (the header says the audio is 0 frames long)")
            if audio.samplerate <= 0:
                raise BadFile(f"invalid sample rate {audio.samplerate}")
            frames = audio.frames if max_frames is None else min(audio.frames, max_frames)
            stream = None if audio.samplerate == sample_rate else soxr.ResampleStream(
                audio.samplerate, sample_rate, 1, dtype="float32")
            read = 0
            while read < frames:
                try:
                    block = audio.read(min(block_frames, frames - read), dtype="float32", always_2d=True)
                except Exception as exc:  # noqa: BLE001 - a decoding error half-way through
                    raise BadFile(f"decoding failed after {read} frames ({exc})") from exc
                if len(block) == 0:
                    break
                read += len(block)
                mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
                if not np.all(np.isfinite(mono)):
                    raise BadFile("holds NaN or infinite samples")
                last = read >= frames
                yield mono if stream is None else stream.resample_chunk(mono, last=last)
            if stream is not None and read < frames:  # stopped early: flush the resampler
                yield stream.resample_chunk(np.zeros(0, np.float32), last=True)


def read_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Decode all of ``path`` to mono float32 at ``sample_rate``, in blocks (soundfile + soxr).

    Raises :class:`BadFile` with the reason when the file cannot be used. For
    datasets, ``audiogan.datasets.folders.read_clips`` reads only the clips it needs."""
    blocks = list(read_blocks(Path(path), sample_rate))
    return np.concatenate(blocks).astype(np.float32) if blocks else np.zeros(0, np.float32)


def write_wav(path: str | os.PathLike, wav: np.ndarray, sample_rate: int) -> Path:
    """Write a mono clip in [-1, 1] as 16-bit PCM WAV, the format every player reads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = np.clip(np.asarray(wav, dtype=np.float32).reshape(-1), -1.0, 1.0)
    sf.write(str(path), wav, int(sample_rate), subtype="PCM_16")
    return path
