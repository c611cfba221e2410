"""The workshop: training against the clock, and judging whether generated tones are recognisable.

A generated clip counts as a *recognisable tone* when librosa's pYIN finds a pitch in at least half
of its frames and that pitch lies within a quarter of a semitone (25 cents) of a note the dataset
actually holds (the embedded tones are whole MIDI notes, C3 to C5, in equal temperament): in tune,
so a listener hears that note, and not a quarter tone between two notes or a pitch outside the
dataset's range. ``benchmarks/workshop_preset.py`` uses this
to measure how long the ``preset="workshop"`` run takes to get there on a given machine.

Spoken digits are judged by the project's own digit classifier (``audiogan.evaluation.classifier``, trained
on the same data at the run's sample rate and clip length): a generated clip counts as a
*recognisable digit* when the classifier gives one digit a probability of at least 0.9, and the
judgement also reports the Inception Score and how many different digits are heard that way.

For a conditional run (``conditional=True``) the clips are made for every class in turn, and both
judges also report the fraction *as asked*: recognisable, and the note or digit it was asked for.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from audiogan import training as train_lib
from audiogan.config import RunConfig
from audiogan.datasets import TONE_MIDI_RANGE, midi_to_hz
from audiogan.evaluation.metrics import inception_score, median_pitch

MAX_CENTS = 25.0  # within a quarter of a semitone of a dataset note
MIN_VOICED = 0.5  # pYIN finds a pitch in at least half of the clip's frames
MIN_CONFIDENCE = 0.9  # the digit classifier's probability for a clip to count as that digit


def tone_pitch_errors(
    clips: np.ndarray, sample_rate: int, midi_range: tuple[int, int] = TONE_MIDI_RANGE,
) -> dict[str, np.ndarray]:
    """Per clip: median pitch (Hz, NaN if unvoiced), voiced fraction, the nearest dataset note
    (MIDI) and the error to it in cents (NaN if unvoiced)."""
    lo, hi = midi_range
    pitch, voiced = median_pitch(
        clips, sample_rate, fmin=float(midi_to_hz(lo)) / 2, fmax=min(float(midi_to_hz(hi)) * 2, sample_rate / 2 - 1)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        midi = 69 + 12 * np.log2(pitch / 440.0)
    nearest = np.clip(np.round(np.nan_to_num(midi, nan=lo)), lo, hi)
    cents = np.where(np.isfinite(midi), 100 * (midi - nearest), np.nan)
    return {"pitch_hz": pitch, "voiced": voiced, "nearest_midi": nearest.astype(int), "cents": cents}


def _as_asked(heard: list, asked) -> dict[str, float]:
    """The fraction of clips heard as the class asked for (``heard``: None where not recognisable)."""
    if asked is None:
        return {}
    if len(asked) != len(heard):
        raise ValueError(f"asked gives {len(asked)} classes for {len(heard)} clips")
    hits = [h is not None and str(h) == str(a) for h, a in zip(heard, asked, strict=True)]
    return {"fraction_as_asked": float(np.mean(hits))}


def judge_tones(
    clips: np.ndarray, sample_rate: int, midi_range: tuple[int, int] = TONE_MIDI_RANGE, asked=None,
) -> dict[str, float | int | list]:
    """How many of ``clips`` are recognisable tones (see the module's docstring), their median
    absolute pitch error in cents, and how many distinct notes they hit; with ``asked`` (the MIDI
    note each clip was made for) also the fraction in tune on that note."""
    e = tone_pitch_errors(clips, sample_rate, midi_range)
    ok = (e["voiced"] >= MIN_VOICED) & (np.abs(np.nan_to_num(e["cents"], nan=1e9)) <= MAX_CENTS)
    cents = np.abs(e["cents"][np.isfinite(e["cents"])])
    notes = [int(m) if k else None for m, k in zip(e["nearest_midi"], ok, strict=True)]
    return _as_asked(notes, asked) | {
        "n_clips": int(len(ok)),
        "fraction_recognisable": float(ok.mean()),
        "median_abs_cents": float(np.median(cents)) if cents.size else float("nan"),
        "distinct_notes": int(len(set(e["nearest_midi"][ok].tolist()))),
        "notes": notes,
        "cents": [None if not np.isfinite(c) else round(float(c), 1) for c in e["cents"]],
        "voiced": [round(float(v), 3) for v in e["voiced"]],
    }


def judge_digits(classifier) -> Callable[..., dict]:
    """A judge ``judge(clips, asked=None)`` of generated clips by ``classifier`` (an
    ``audiogan.evaluation.classifier.Classifier`` of spoken digits at the run's sample rate and clip length):
    see the module's docstring. ``asked``: the digit each clip was made for (conditional runs)."""
    def judge(clips: np.ndarray, asked=None) -> dict:
        probs, _ = classifier.predict(np.asarray(clips, np.float32))
        top = probs.argmax(1)
        ok = probs.max(1) >= MIN_CONFIDENCE
        heard = [str(classifier.classes[t]) if k else None for t, k in zip(top, ok, strict=True)]
        return _as_asked(heard, asked) | {
            "n_clips": int(len(clips)),
            "fraction_recognisable": float(ok.mean()),
            "distinct_digits": int(len(set(top[ok].tolist()))),
            "inception_score": float(inception_score(probs)),
            "digits": heard,
        }

    return judge


def train_against_clock(
    config: RunConfig, seconds: float, judge_every: int = 250, n_clips: int = 16,
    log: Callable[[dict], None] = print, clock: str = "wall",
    judge: Callable[[np.ndarray], dict] | None = None,
) -> list[dict]:
    """Train ``config`` in pieces of ``judge_every`` steps until it finishes or ``seconds`` have
    passed on ``clock``, judging ``n_clips`` generated clips after each piece with ``judge``
    (default: as tones, ``judge_tones``).

    ``clock="wall"`` counts wall time; ``clock="cpu"`` counts the CPU time of this process (all its
    threads), which does not grow when other programs share the machine: on an otherwise idle
    2-core laptop the wall time lies between half of it and all of it. Both exclude the time spent
    judging and include setup, compilation and restarting each piece from its checkpoint. Returns
    one record per piece: step, wall and CPU seconds of training so far, and the judgement. A
    conditional run's clips are made for every class in turn and judged against the class asked."""
    if clock not in ("wall", "cpu"):
        raise ValueError(f"clock={clock!r}: choose 'wall' or 'cpu'")
    wall = cpu = 0.0
    records = []
    while True:
        t0, c0 = time.perf_counter(), time.process_time()
        result = train_lib.train(config, progress=False, stop_after=judge_every)
        wall, cpu = wall + time.perf_counter() - t0, cpu + time.process_time() - c0
        step = int(result.state.step)
        gan = result.gan
        clips = train_lib.generate(gan, result.state, n_clips, seed=123)
        labels = gan.class_labels(n_clips)
        asked = None if labels is None else [gan.classes[i] for i in labels]
        record = {"step": step, "train_wall_s": round(wall, 1), "train_cpu_s": round(cpu, 1)}
        if judge is None:
            record |= judge_tones(clips, config.sample_rate, asked=asked)
        else:
            record |= judge(clips) if asked is None else judge(clips, asked)
        records.append(record)
        log(record)
        if step >= config.steps or (wall if clock == "wall" else cpu) >= seconds:
            return records
