"""Embedded tones: harmonic notes with random pitch, timbre and envelope, labelled with their pitch."""

from __future__ import annotations

import numpy as np

from audiogan.datasets.dataset import PEAK, Dataset

TONE_MIDI_RANGE = (48, 72)


def midi_to_hz(midi) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69) / 12)


def make_tones(
    n_clips: int, sample_rate: int, clip_samples: int, seed: int = 0,
    midi_range: tuple[int, int] = TONE_MIDI_RANGE,
) -> Dataset:
    """Harmonic tones with a random pitch, timbre and envelope, labelled with their pitch.

    Pitch distribution: the MIDI note of each clip is drawn independently and uniformly from the
    integers in ``midi_range`` (inclusive; by default 48-72, i.e. the 25 equal-tempered notes C3 =
    130.8 Hz to C5 = 523.3 Hz with A4 = 440 Hz, each with probability 1/25), so pitch is uniform
    on a log-frequency (semitone) scale. Labels: ``midi`` (int32) and ``pitch_hz`` (float32).

    Each clip: its note; 1-8 harmonics with amplitudes
    falling as k**-rolloff (rolloff uniform in [1, 2]) and random phases, harmonics above Nyquist
    left out; an attack of 5-50 ms, an exponential decay towards a sustain level of 0.3-1, and a
    10 ms release at the end of the clip. Peak-normalised to 0.95.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(clip_samples) / sample_rate
    midi = rng.integers(midi_range[0], midi_range[1] + 1, size=n_clips)
    f0 = midi_to_hz(midi)
    clips = np.empty((n_clips, clip_samples), dtype=np.float32)
    for i in range(n_clips):
        n_harm = int(rng.integers(1, 9))
        rolloff = rng.uniform(1.0, 2.0)
        k = np.arange(1, n_harm + 1)
        k = k[k * f0[i] < sample_rate / 2]
        phase = rng.uniform(0, 2 * np.pi, size=len(k))
        wave = ((k[:, None] ** -rolloff) * np.sin(2 * np.pi * f0[i] * k[:, None] * t + phase[:, None])).sum(0)
        attack = rng.uniform(0.005, 0.05)
        sustain = rng.uniform(0.3, 1.0)
        decay = rng.uniform(0.05, 0.5)
        env = np.where(t < attack, t / attack, sustain + (1 - sustain) * np.exp(-(t - attack) / decay))
        release = np.clip((t[-1] - t) / 0.01, 0, 1)
        clip = wave * env * release
        clips[i] = PEAK * clip / np.max(np.abs(clip))
    return Dataset(
        name="tones", clips=clips, sample_rate=sample_rate,
        labels={"midi": midi.astype(np.int32), "pitch_hz": f0.astype(np.float32)},
        info={"midi_range": list(midi_range),
              "pitch_range_hz": [float(midi_to_hz(m)) for m in midi_range]},
    )
