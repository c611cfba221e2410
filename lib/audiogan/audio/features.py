"""Level and spectrograms of clips, for reports and pictures."""

from __future__ import annotations

import librosa
import numpy as np


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
