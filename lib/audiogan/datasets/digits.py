"""``digits``: the words "zero" to "nine" spoken by eSpeak NG, made on the spot (nothing downloaded).

Every English accent of eSpeak NG (``en``, ``en-029``, ``en-gb-scotland``, ``en-gb-x-gbclan``,
``en-gb-x-gbcwmd``, ``en-gb-x-rp``, ``en-us``, ``en-us-nyc``) is combined with every voice variant
(the plain voice and the 100-odd speaker characters in eSpeak's ``!v`` folder, e.g. ``m3``, ``f2``,
``croak``, ``klatt``): a *voice* is an accent plus a variant, e.g. ``"en-us+m3"``. The *speaker*
of a voice is its variant, and the train, validation and test splits hold disjoint speakers (so
their voices are disjoint too): a model is tested on speaker characters it never heard. The split
of speakers is fixed (it does not follow ``seed``), so every run tests on the same speakers.

Each clip: a digit and a voice of its split, drawn so that digits and voices are balanced; a
speaking rate uniform in ``RATE_WPM``, a base pitch uniform in ``PITCH`` and an intonation range
uniform in ``PITCH_RANGE`` (eSpeak's 0-100 scales, 50 = the voice's own); the utterance is trimmed
of silence, resampled to ``sample_rate``, placed near the middle of the clip (jittered by up to a
quarter of the free room either way) and peak-normalised to 0.95. The same seed gives the same
bytes: the speech is made in fixed chunks, each by a fresh process (see ``audiogan.datasets.espeak``).
"""

from __future__ import annotations

import time

import numpy as np

from audiogan.datasets import espeak
from audiogan.datasets.dataset import PEAK, Dataset

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DEFAULT_TRAIN_CLIPS = 5000
HELD_OUT_FRACTION = 0.1  # validation and test each hold this fraction of the training count
SPLITS = ("train", "validation", "test")
RATE_WPM = (120, 220)  # words per minute; eSpeak's default is 175
PITCH = (25, 75)
PITCH_RANGE = (20, 80)
SPLIT_SEED = 20190301  # fixes which speakers are held out, whatever the run's seed
TRIM_DB = -40.0  # samples quieter than this below the utterance's peak are trimmed at both ends
N_CHUNKS = 8  # fixed, so the bytes do not depend on the number of worker processes
VERSION = 1  # bump when the recipe changes, so caches of the old recipe are not reused


def speakers() -> list[str]:
    """Every speaker character: ``""`` (the accent's own voice) and each eSpeak variant."""
    return [""] + espeak.variants()


def split_speakers() -> dict[str, list[str]]:
    """The fixed assignment of speakers to splits: 10% test, 10% validation, the rest train."""
    everyone = speakers()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(everyone))
    n_held = max(1, round(len(everyone) * HELD_OUT_FRACTION))
    test, validation, train = order[:n_held], order[n_held:2 * n_held], order[2 * n_held:]
    return {name: sorted(everyone[i] for i in idx)
            for name, idx in (("train", train), ("validation", validation), ("test", test))}


def voice_name(accent: str, speaker: str) -> str:
    return f"{accent}+{speaker}" if speaker else accent


def split_sizes(n_train: int) -> dict[str, int]:
    held = max(10, round(n_train * HELD_OUT_FRACTION))
    return {"train": n_train, "validation": held, "test": held}


def _plan(n_train: int, seed: int) -> list[dict]:
    """What each clip will be: split, digit, voice, rate, pitch; balanced digits and voices."""
    rng = np.random.default_rng(seed)
    accents = espeak.english_accents()
    plan = []
    for split, count in split_sizes(n_train).items():
        voices = [(a, s) for s in split_speakers()[split] for a in accents]
        digits = rng.permutation(np.arange(count) % len(WORDS))
        which = rng.permutation(np.arange(count) % len(voices))
        rates = rng.integers(RATE_WPM[0], RATE_WPM[1] + 1, count)
        pitches = rng.integers(PITCH[0], PITCH[1] + 1, count)
        ranges = rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1, count)
        jitter = rng.uniform(-1, 1, count)
        for i in range(count):
            accent, speaker = voices[which[i]]
            plan.append({
                "split": split, "digit": int(digits[i]), "accent": accent, "speaker": speaker,
                "voice": voice_name(accent, speaker), "rate": int(rates[i]), "pitch": int(pitches[i]),
                "pitch_range": int(ranges[i]), "jitter": float(jitter[i]),
            })
    return plan


def _trim(wav: np.ndarray) -> np.ndarray:
    peak = np.max(np.abs(wav)) if len(wav) else 0.0
    if peak == 0:
        return wav[:0]
    loud = np.nonzero(np.abs(wav) >= peak * 10 ** (TRIM_DB / 20))[0]
    return wav[loud[0]:loud[-1] + 1]


def _place(wav: np.ndarray, clip_samples: int, jitter: float, sample_rate: int) -> tuple[np.ndarray, bool]:
    """The utterance in a clip of ``clip_samples``: centred and jittered, or cut with a 10 ms fade."""
    clip = np.zeros(clip_samples, np.float32)
    if len(wav) > clip_samples:
        wav = wav[:clip_samples].copy()
        fade = min(clip_samples, max(1, sample_rate // 100))
        wav[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
        clip[:] = wav
        return clip, True
    free = clip_samples - len(wav)
    start = free // 2 + int(round(jitter * (free // 4)))
    clip[start:start + len(wav)] = wav
    return clip, False


def make_digits(n_train: int = DEFAULT_TRAIN_CLIPS, sample_rate: int = 16000, clip_samples: int = 16384,
                seed: int = 0, workers: int | None = None):
    """Spoken digits: ``n_train`` training clips plus validation and test (10% of it each, at
    least 10), labelled ``digit``, ``voice``, ``split``, ``accent``, ``speaker``, ``rate_wpm``,
    ``pitch``. Clips are ordered train, validation, test."""
    import soxr

    t0 = time.perf_counter()
    plan = _plan(n_train, seed)
    jobs = [{"text": WORDS[p["digit"]], "voice": p["voice"], "rate": p["rate"], "pitch": p["pitch"],
             "pitch_range": p["pitch_range"]} for p in plan]
    waves, espeak_rate = espeak.synthesise(jobs, rand_seed=seed, n_chunks=N_CHUNKS, workers=workers)
    t_speech = time.perf_counter() - t0
    clips = np.empty((len(plan), clip_samples), np.float32)
    n_cut = 0
    for i, (wave, p) in enumerate(zip(waves, plan, strict=True)):
        wav = _trim(wave.astype(np.float32) / 32768.0)
        if sample_rate != espeak_rate and len(wav):
            wav = soxr.resample(wav, espeak_rate, sample_rate).astype(np.float32)
        clip, cut = _place(wav, clip_samples, p["jitter"], sample_rate)
        n_cut += cut
        peak = np.max(np.abs(clip))
        clips[i] = PEAK * clip / peak if peak > 0 else clip
    labels = {
        "digit": np.array([p["digit"] for p in plan], np.int32),
        "voice": np.array([p["voice"] for p in plan]),
        "split": np.array([p["split"] for p in plan]),
        "accent": np.array([p["accent"] for p in plan]),
        "speaker": np.array([p["speaker"] or "(default)" for p in plan]),
        "rate_wpm": np.array([p["rate"] for p in plan], np.int16),
        "pitch": np.array([p["pitch"] for p in plan], np.int16),
    }
    sizes = split_sizes(n_train)
    info = {
        "words": list(WORDS), "splits": sizes, "accents": espeak.english_accents(),
        "speakers": {k: [s or "(default)" for s in v] for k, v in split_speakers().items()},
        "voices": {s: int(len(np.unique(labels["voice"][labels["split"] == s]))) for s in SPLITS},
        "rate_wpm": list(RATE_WPM), "pitch": list(PITCH), "pitch_range": list(PITCH_RANGE),
        "espeak_sample_rate": espeak_rate, "cut_to_fit": int(n_cut),
        "build_seconds": round(time.perf_counter() - t0, 2), "speech_seconds": round(t_speech, 2),
    }
    return Dataset(name="digits", clips=clips, sample_rate=sample_rate, labels=labels, info=info)
