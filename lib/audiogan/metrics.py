"""Objective measurements of generated audio. For now: pitch, for the embedded tones."""

from __future__ import annotations

import librosa
import numpy as np


def median_pitch(
    clips: np.ndarray, sample_rate: int, fmin: float = 60.0, fmax: float = 1200.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Median fundamental frequency (Hz) of each clip's voiced frames by librosa's pYIN, and the
    fraction of frames that are voiced. Clips with no voiced frame get NaN."""
    clips = np.atleast_2d(np.asarray(clips, dtype=np.float32))
    frame = int(2 ** np.ceil(np.log2(4 * sample_rate / fmin)))  # four periods of the lowest pitch
    frame = min(frame, 2 ** int(np.log2(clips.shape[1])))
    f0, voiced, _ = librosa.pyin(
        clips, fmin=fmin, fmax=fmax, sr=sample_rate, frame_length=frame, center=True
    )
    f0 = np.where(voiced, f0, np.nan)
    with np.errstate(all="ignore"):
        counts = voiced.sum(-1)
        med = np.array([np.nanmedian(row) if c else np.nan for row, c in zip(f0, counts, strict=True)])
    return med, voiced.mean(-1)


def pitch_report(
    clips: np.ndarray, sample_rate: int, pitch_range_hz: tuple[float, float],
) -> dict[str, float | list[float]]:
    """How the pitches of ``clips`` sit against a dataset's pitch range (a semitone of slack)."""
    lo, hi = pitch_range_hz
    med, voiced = median_pitch(clips, sample_rate, fmin=lo / 2, fmax=min(hi * 2, sample_rate / 2 - 1))
    tol = 2 ** (1 / 12)
    pitched = np.isfinite(med)
    inside = pitched & (med >= lo / tol) & (med <= hi * tol)
    return {
        "n_clips": int(len(med)),
        "pitch_range_hz": [float(lo), float(hi)],
        "median_pitch_hz": [None if not np.isfinite(m) else round(float(m), 2) for m in med],
        "voiced_fraction": [round(float(v), 3) for v in voiced],
        "fraction_pitched": float(pitched.mean()),
        "fraction_in_range": float(inside.mean()),
    }
