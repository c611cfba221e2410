"""Random training segments within a dataset's clips, and the clips held out to judge a vocoder.

A vocoder trains on short segments cut at random places, not on whole clips. Which clips a step reads
follows :class:`Batches` (a permutation per epoch from ``(seed, epoch)``) and where each segment
starts is drawn from ``(seed, step)``, so the segments of a step are fixed by the seed alone and a
resumed run sees the ones an uninterrupted run would.
"""

from __future__ import annotations

import numpy as np

from audiogan.datasets.batches import Batches
from audiogan.datasets.dataset import Dataset
from audiogan.errors import ConfigError, DataError

OFFSET_STREAM = 0x5E6  # offsets come from default_rng([seed, OFFSET_STREAM, step])
HOLD_OUT_STREAM = 0x401D  # a dataset without splits loses default_rng([seed, HOLD_OUT_STREAM])'s clips


def active_lengths(clips_nt: np.ndarray) -> np.ndarray:
    """Samples up to each clip's last non-zero one (a short recording is zero-padded to the clip)."""
    nonzero_nt = clips_nt != 0
    last_n = clips_nt.shape[1] - np.argmax(nonzero_nt[:, ::-1], axis=1)
    return np.where(nonzero_nt.any(axis=1), last_n, 0)


class Segments:
    """``segments[step]`` -> (batch_size, segment_samples) float32: one segment of a distinct clip each.

    A segment starts uniformly within the clip's sound (up to its last non-zero sample, so padding
    after a short recording is rarely trained on); a clip shorter than a segment starts at 0.
    """

    def __init__(self, clips_nt: np.ndarray, segment_samples: int, batch_size: int, seed: int):
        clips_nt = np.asarray(clips_nt, np.float32)
        if clips_nt.ndim != 2 or clips_nt.shape[1] < segment_samples:
            raise ConfigError(f"segment_samples={segment_samples} is longer than the clips "
                              f"({clips_nt.shape[-1]} samples); lower it or use longer clips.")
        self.clips_nt, self.segment_samples, self.seed = clips_nt, segment_samples, seed
        self.batches = Batches(clips_nt, batch_size, seed)
        self.max_offset_n = np.maximum(active_lengths(clips_nt) - segment_samples, 0)

    @property
    def per_epoch(self) -> int:
        """Steps per pass over the clips (each clip read once): the recipe's epoch."""
        return self.batches.per_epoch

    def locate(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(clip indices, start samples) of the step's segments."""
        index_b = self.batches.indices(step)
        uniform_b = np.random.default_rng([self.seed, OFFSET_STREAM, step]).random(len(index_b))
        return index_b, (uniform_b * (self.max_offset_n[index_b] + 1)).astype(np.int64)

    def __getitem__(self, step: int) -> np.ndarray:
        index_b, start_b = self.locate(step)
        window_bt = start_b[:, None] + np.arange(self.segment_samples)[None, :]
        return self.clips_nt[index_b[:, None], window_bt]


def _take(dataset: Dataset, index: np.ndarray, part: str) -> Dataset:
    return Dataset(name=dataset.name, clips=dataset.clips[index], sample_rate=dataset.sample_rate,
                   labels={k: v[index] for k, v in dataset.labels.items()}, info=dataset.info | {"subset": part})


def hold_out(dataset: Dataset, n_clips: int, seed: int) -> tuple[Dataset, Dataset, str]:
    """(training clips, up to ``n_clips`` held-out clips, where they came from).

    A dataset with splits trains on ``train`` and holds out clips of its ``test`` split (else
    ``validation``), chosen by ``seed``; any other dataset loses ``n_clips`` clips chosen by ``seed``
    to the held-out set, so a resumed run holds out the same ones.
    """
    rng = np.random.default_rng([seed, HOLD_OUT_STREAM])
    if "split" in dataset.labels:
        splits = set(dataset.labels["split"].tolist())
        part = next((s for s in ("test", "validation") if s in splits), None)
        if part is not None and "train" in splits:
            held = np.flatnonzero(dataset.labels["split"] == part)
            held = np.sort(rng.permutation(held)[:n_clips])
            return dataset.subset("train"), _take(dataset, held, part), f"the {part} split"
    if len(dataset) <= n_clips:
        raise DataError(f"dataset {dataset.name!r} has {len(dataset)} clips: too few to hold out {n_clips} "
                        "for evaluation and train on the rest. Use more clips or a smaller eval_clips.")
    order = rng.permutation(len(dataset))
    held, train = np.sort(order[:n_clips]), np.sort(order[n_clips:])
    return _take(dataset, train, "train"), _take(dataset, held, "held_out"), f"{n_clips} clips held out by seed"
