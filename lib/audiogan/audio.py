"""Audio in and out: reading any file soundfile can decode, writing WAV, level and spectrograms."""

from __future__ import annotations

import os
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


def read_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Decode all of ``path`` to mono float32 at ``sample_rate``, in blocks (soundfile + soxr).

    Raises ``audiogan.datasets.folders.BadFile`` with the reason when the file cannot be used. For
    datasets, ``audiogan.datasets.folders.read_clips`` reads only the clips it needs."""
    from audiogan.datasets.folders import read_blocks

    blocks = list(read_blocks(Path(path), sample_rate))
    return np.concatenate(blocks).astype(np.float32) if blocks else np.zeros(0, np.float32)


def write_wav(path: str | os.PathLike, wav: np.ndarray, sample_rate: int) -> Path:
    """Write a mono clip in [-1, 1] as 16-bit PCM WAV, the format every player reads."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = np.clip(np.asarray(wav, dtype=np.float32).reshape(-1), -1.0, 1.0)
    sf.write(str(path), wav, int(sample_rate), subtype="PCM_16")
    return path


def rms_db(wav_bt: np.ndarray) -> np.ndarray:
    """Root-mean-square level of each clip in dB relative to full scale (floor -120 dB)."""
    wav_bt = np.atleast_2d(np.asarray(wav_bt, dtype=np.float64))
    rms = np.sqrt(np.mean(wav_bt**2, axis=-1))
    return 20 * np.log10(np.maximum(rms, 1e-6))


def log_spectrogram(wav: np.ndarray, sample_rate: int, n_fft: int | None = None) -> np.ndarray:
    """Magnitude STFT in dB (peak 0 dB), frequency by time, for pictures."""
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    if n_fft is None:
        # A power of two near 16-32 ms, but never longer than the clip.
        n_fft = int(2 ** np.floor(np.log2(max(16, min(len(wav), sample_rate // 32)))))
    spec = np.abs(librosa.stft(wav, n_fft=n_fft, hop_length=max(1, n_fft // 4)))
    return librosa.amplitude_to_db(spec, ref=np.max(spec) if spec.max() > 0 else 1.0, top_db=80)
