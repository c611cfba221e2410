"""``drums``: synthetic kick, snare and hi-hat hits, made on the spot and labelled.

Each clip holds one hit, starting 0-10 ms into the clip, with its parameters drawn at random
(seeded); the three kinds are balanced (clip ``i`` of a shuffled ``i % 3``):

- **kick**: a sine whose pitch falls exponentially from 90-160 Hz to 40-60 Hz within 20-60 ms,
  amplitude decaying with a time constant of 80-300 ms, plus a 2-4 ms noise click at the onset;
- **snare**: a 160-260 Hz tone decaying in 40-120 ms under white noise high-passed at 1-2 kHz
  decaying in 60-200 ms (noise share 50-85%);
- **hat**: six square waves at inharmonic ratios of a 300-500 Hz root plus noise, high-passed at
  6-8 kHz (at most 0.8 x Nyquist), decaying in 20-60 ms (closed, 70%) or 150-400 ms (open, 30%).

Peak-normalised to 0.95; the label ``drum`` is ``"kick"``, ``"snare"`` or ``"hat"``.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from audiogan.datasets.dataset import PEAK, Dataset

KINDS = ("kick", "snare", "hat")
HAT_RATIOS = (2.0, 3.0, 4.16, 5.43, 6.79, 8.21)  # the classic inharmonic "808" metal ratios


def _highpass(x: np.ndarray, cutoff_hz: float, sample_rate: int) -> np.ndarray:
    cutoff_hz = min(cutoff_hz, 0.8 * sample_rate / 2)
    sos = signal.butter(4, cutoff_hz, btype="highpass", fs=sample_rate, output="sos")
    return signal.sosfilt(sos, x)


def _kick(rng, t, sample_rate):
    f0, f1, sweep = rng.uniform(90, 160), rng.uniform(40, 60), rng.uniform(0.02, 0.06)
    freq = f1 + (f0 - f1) * np.exp(-t / sweep)
    phase = 2 * np.pi * np.cumsum(freq) / sample_rate
    body = np.sin(phase) * np.exp(-t / rng.uniform(0.08, 0.3))
    click = rng.standard_normal(len(t)) * np.exp(-t / rng.uniform(0.002, 0.004)) * 0.3
    return body + click


def _snare(rng, t, sample_rate):
    tone = np.sin(2 * np.pi * rng.uniform(160, 260) * t) * np.exp(-t / rng.uniform(0.04, 0.12))
    noise = _highpass(rng.standard_normal(len(t)), rng.uniform(1000, 2000), sample_rate)
    noise = noise / (np.max(np.abs(noise)) + 1e-9) * np.exp(-t / rng.uniform(0.06, 0.2))
    share = rng.uniform(0.5, 0.85)
    return (1 - share) * tone + share * noise


def _hat(rng, t, sample_rate):
    root = rng.uniform(300, 500)
    metal = sum(np.sign(np.sin(2 * np.pi * root * r * t + rng.uniform(0, 2 * np.pi))) for r in HAT_RATIOS)
    raw = metal / len(HAT_RATIOS) + 0.5 * rng.standard_normal(len(t))
    decay = rng.uniform(0.02, 0.06) if rng.uniform() < 0.7 else rng.uniform(0.15, 0.4)
    return _highpass(raw, rng.uniform(6000, 8000), sample_rate) * np.exp(-t / decay)


def make_drums(n_clips: int, sample_rate: int, clip_samples: int, seed: int = 0):
    """``n_clips`` drum hits, balanced over kick, snare and hat, labelled ``drum``."""
    rng = np.random.default_rng(seed)
    kinds = rng.permutation(np.arange(n_clips) % len(KINDS))
    clips = np.zeros((n_clips, clip_samples), np.float32)
    make = {"kick": _kick, "snare": _snare, "hat": _hat}
    for i, k in enumerate(kinds):
        start = int(rng.integers(0, max(1, min(clip_samples // 4, sample_rate // 100))))
        t = np.arange(clip_samples - start) / sample_rate
        hit = make[KINDS[k]](rng, t, sample_rate)
        fade = min(len(t), max(1, sample_rate // 100))  # 10 ms release at the end of the clip
        hit[-fade:] *= np.linspace(1, 0, fade)
        clips[i, start:] = PEAK * hit / np.max(np.abs(hit))
    return Dataset(
        name="drums", clips=clips, sample_rate=sample_rate,
        labels={"drum": np.array([KINDS[k] for k in kinds])},
        info={"kinds": list(KINDS)},
    )
