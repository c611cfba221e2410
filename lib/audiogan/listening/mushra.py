"""MUSHRA items (ITU-R BS.1534-3): systems rated 0-100 against an open reference, with a hidden
reference and a low-pass anchor among them.

Each item is one clip (a held-out recording, say). The listener hears the open, labelled
reference and, under letters A, B, C ... in an order drawn with the seed for that item, its
conditions: the hidden reference (the reference itself), the anchor (the reference low-passed)
and each system under test (``vocoder``, ``griffin_lim``, ...), and rates each on a 0-100 slider.
Items are asked in a seeded random order too. The anchor's cutoff is BS.1534-3's 3.5 kHz, and for
sample rates below 16 kHz, 7/16 of the Nyquist frequency (1.75 kHz at 8 kHz): 3.5 kHz is 7/16 of
wideband speech's band, so the anchor then lies as far below the full band as it does at 16 kHz,
where at 8 kHz a 3.5 kHz low-pass would cut almost nothing and anchor nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from audiogan.errors import ConfigError
from audiogan.listening.design import MUSHRA, ListeningTest, Source, write_test

REFERENCE, HIDDEN_REFERENCE, ANCHOR = "reference", "hidden_reference", "anchor"
ANCHOR_HZ = 3500.0  # BS.1534-3's low-range anchor
ANCHOR_NYQUIST_SHARE = 7 / 16  # 3.5 kHz of wideband speech's 8 kHz, used below 16 kHz sample rates


# ---------------------------------------------------------------------------- the anchor
def anchor_cutoff(sample_rate: int) -> float:
    """The anchor's cutoff in Hz: min(3.5 kHz, 7/16 of Nyquist), so 3.5 kHz from 16 kHz up, 1.75 kHz at 8 kHz."""
    return min(ANCHOR_HZ, ANCHOR_NYQUIST_SHARE * sample_rate / 2)


def lowpass_kernel(cutoff_hz: float, sample_rate: int, transition_hz: float | None = None,
                   attenuation_db: float = 80.0) -> np.ndarray:
    """A linear-phase windowed-sinc FIR (Kaiser window, Kaiser's formulas for beta and length): -6 dB at
    ``cutoff_hz``, at least ``attenuation_db`` down from ``cutoff_hz + transition_hz / 2`` and flat below
    ``cutoff_hz - transition_hz / 2``; ``transition_hz`` defaults to 1/16 of the cutoff. (taps,), odd."""
    nyquist = sample_rate / 2
    if not 0 < cutoff_hz < nyquist:
        raise ConfigError(f"cutoff_hz={cutoff_hz!r} must lie between 0 and the Nyquist frequency {nyquist:g} Hz.")
    width = cutoff_hz / 16 if transition_hz is None else transition_hz
    beta = 0.1102 * (attenuation_db - 8.7)
    taps = int(math.ceil((attenuation_db - 7.95) / (2.285 * 2 * math.pi * width / sample_rate))) | 1
    n = np.arange(taps) - (taps - 1) / 2
    h = 2 * cutoff_hz / sample_rate * np.sinc(2 * cutoff_hz / sample_rate * n) * np.kaiser(taps, beta)
    return h / h.sum()  # exactly unity gain at 0 Hz


def lowpass(clips_bt: np.ndarray, sample_rate: int, cutoff_hz: float | None = None) -> np.ndarray:
    """Clips (B, T) low-passed at ``cutoff_hz`` (default :func:`anchor_cutoff`) by :func:`lowpass_kernel`,
    without delay (the kernel is centred) and without wrap-around (zeros beyond each end); (B, T) float32."""
    clips_bt = np.asarray(clips_bt, np.float64)
    h = lowpass_kernel(anchor_cutoff(sample_rate) if cutoff_hz is None else cutoff_hz, sample_rate)
    n = clips_bt.shape[-1] + len(h) - 1
    size = 1 << (n - 1).bit_length()
    full = np.fft.irfft(np.fft.rfft(clips_bt, size, axis=-1) * np.fft.rfft(h, size), size, axis=-1)[..., :n]
    start = (len(h) - 1) // 2
    return full[..., start:start + clips_bt.shape[-1]].astype(np.float32)


# ---------------------------------------------------------------------------- the design
def _check_systems(reference_bt: np.ndarray, systems: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    if reference_bt.ndim != 2 or len(reference_bt) == 0:
        raise ConfigError(f"reference clips must be (clips, samples), got shape {reference_bt.shape}")
    if not systems:
        raise ConfigError("a MUSHRA test needs at least one system under test (e.g. vocoder, griffin_lim).")
    out = {}
    for name, clips in systems.items():
        if not isinstance(name, str) or not name or name in (REFERENCE, HIDDEN_REFERENCE, ANCHOR):
            raise ConfigError(f"system name {name!r} must be a non-empty name other than {REFERENCE}, "
                              f"{HIDDEN_REFERENCE} and {ANCHOR}.")
        clips = np.asarray(clips, np.float32)
        if clips.shape != reference_bt.shape:
            raise ConfigError(f"system {name!r} has clips of shape {clips.shape}, the reference {reference_bt.shape}; "
                              "each system renders every reference clip at its length.")
        out[name] = clips
    return out


def design_mushra(
    reference_bt: np.ndarray, systems: Mapping[str, np.ndarray], sample_rate: int, *, n_items: int | None = None,
    seed: int = 0, anchor_hz: float | None = None, settings: Mapping[str, Any] | None = None,
) -> tuple[ListeningTest, list[Source]]:
    """A blind MUSHRA test of ``systems`` (name -> (B, T) clips, each a rendering of the reference clip
    of the same index) against ``reference_bt`` (B, T): ``n_items`` items (default every clip, else that
    many drawn with ``seed``). Returns the test and the sources its clips come from (for
    :func:`write_test`): the reference (open and hidden reference), the anchor (the reference through
    :func:`lowpass` at ``anchor_hz``, default :func:`anchor_cutoff`) and the systems.

    Each item: ``reference`` the open reference's clip id, ``clips`` the rated clips in the order
    shown (A, B, ...; drawn with the seed for each item), no ``choices`` (ratings are 0-100). Clip ids
    ``cNNN`` follow a shuffled order; each clip's ``condition`` (reference, hidden_reference, anchor or
    a system) stays in ``test.json``. ``settings`` adds what else made the clips (a checkpoint step)."""
    reference_bt = np.asarray(reference_bt, np.float32)
    systems = _check_systems(reference_bt, systems)
    if n_items is not None and (not isinstance(n_items, int) or isinstance(n_items, bool) or n_items < 1):
        raise ConfigError(f"n_items={n_items!r} must be a positive whole number (or None for every clip).")
    cutoff = float(anchor_cutoff(sample_rate) if anchor_hz is None else anchor_hz)
    rng = np.random.default_rng(seed)
    n = len(reference_bt) if n_items is None else min(n_items, len(reference_bt))
    chosen = sorted(rng.choice(len(reference_bt), size=n, replace=False).tolist())
    conditions = [HIDDEN_REFERENCE, ANCHOR, *systems]
    source_of = {REFERENCE: REFERENCE, HIDDEN_REFERENCE: REFERENCE, ANCHOR: ANCHOR} | {s: s for s in systems}
    entries = [(i, c) for i in chosen for c in (REFERENCE, *conditions)]
    order = rng.permutation(len(entries))
    clips, ids = [], {}
    for k, j in enumerate(order):
        i, condition = entries[j]
        ids[(i, condition)] = f"c{k:03d}"
        real = condition in (REFERENCE, HIDDEN_REFERENCE)
        clips.append({"id": f"c{k:03d}", "source": source_of[condition], "real": real, "index": int(i), "label": None,
                      "condition": condition})
    items = []
    for i in chosen:
        shown = [conditions[j] for j in rng.permutation(len(conditions))]
        items.append({"task": MUSHRA, "reference": ids[(i, REFERENCE)], "clips": [ids[(i, c)] for c in shown],
                      "choices": []})
    items = [{"id": f"i{k:03d}", **items[j]} for k, j in enumerate(rng.permutation(len(items)))]
    made = {"kind": MUSHRA, "conditions": conditions, "n_items": n_items, "seed": seed, "anchor_hz": cutoff,
            "sample_rate": sample_rate} | dict(settings or {})
    blob = json.dumps([made, clips, items], sort_keys=True).encode()
    test = ListeningTest(hashlib.sha256(blob).hexdigest()[:12], made, sample_rate, [], clips, items)
    sources = [Source(REFERENCE, reference_bt, True), Source(ANCHOR, lowpass(reference_bt, sample_rate, cutoff), False)]
    sources += [Source(name, clips_bt, False) for name, clips_bt in systems.items()]
    return test, sources


def create_mushra(
    folder: str | os.PathLike, reference_bt: np.ndarray, systems: Mapping[str, np.ndarray], sample_rate: int, *,
    new_test: bool = False, **design: Any,
) -> ListeningTest:
    """:func:`design_mushra`, written into ``folder`` (kept, refused or archived as ``create_test`` does)."""
    test, sources = design_mushra(reference_bt, systems, sample_rate, **design)
    return write_test(folder, test, sources, new_test=new_test)


def letters(n: int) -> list[str]:
    """The names a listener sees for ``n`` rated clips: A, B, ... Z, AA, AB, ..."""
    out = []
    for k in range(n):
        name, k = "", k + 1
        while k:
            k, r = divmod(k - 1, 26)
            name = chr(65 + r) + name
        out.append(name)
    return out
