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
# A header is not trusted: a rate outside these bounds marks a damaged or hostile file (8 kB whose
# header says 1 Hz would resample to 128 MB of clips), and a whole-file read is refused beyond this
# length (a small FLAC of silence can decode to hours).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 384000
MAX_FILE_SECONDS = 3600  # an hour: 230 MB of clips at 16 kHz; longer recordings are better cut


class BadFile(Exception):
    """One file cannot be used; ``str()`` is the reason, in words a person can act on."""


def _open(path: Path):
    return open(path, "rb")  # noqa: SIM115 - closed by the caller's with-block


def read_blocks(path: Path, sample_rate: int, max_frames: int | None = None,
                block_frames: int = BLOCK_FRAMES, max_seconds: float | None = None) -> Iterator[np.ndarray]:
    """Mono float32 blocks of ``path`` at ``sample_rate``, read ``block_frames`` at a time.

    Refuses (:class:`BadFile`) a header's sample rate outside ``MIN_SAMPLE_RATE``-``MAX_SAMPLE_RATE``,
    and a read of more than ``max_seconds`` (default ``MAX_FILE_SECONDS``; libsndfile counts a WAV's
    frames from the bytes present, not from the size its header declares)."""
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
            if not MIN_SAMPLE_RATE <= audio.samplerate <= MAX_SAMPLE_RATE:
                raise BadFile(
                    f"sample rate {audio.samplerate} Hz in its header is outside {MIN_SAMPLE_RATE}-"
                    f"{MAX_SAMPLE_RATE} Hz: the header is damaged or this is not a recording"
                )
            frames = audio.frames if max_frames is None else min(audio.frames, max_frames)
            max_seconds = MAX_FILE_SECONDS if max_seconds is None else max_seconds
            limit = int(max_seconds * audio.samplerate)
            if frames > limit:
                raise BadFile(_too_long(audio.frames, audio.samplerate, max_seconds))
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


def _too_long(frames: int, rate: int, max_seconds: float) -> str:
    def span(seconds: float) -> str:
        return f"{seconds:g} s" if seconds < 120 else f"{seconds / 60:.0f} minutes"

    return (f"{frames} frames at {rate} Hz ({span(frames / rate)}) is longer than the {span(max_seconds)} "
            "a file may hold; cut it into shorter files")


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
