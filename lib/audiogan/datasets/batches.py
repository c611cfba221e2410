"""Seeded batches: which clips a training step reads is a function of the seed and the step alone."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from audiogan.errors import ConfigError


class Batches:
    """Seeded, shuffled batches of distinct clips, addressable by training step.

    Step ``s`` reads batch ``s % per_epoch`` of epoch ``s // per_epoch``, whose order is a
    permutation drawn from ``(seed, epoch)``. The batch for a step is therefore fixed by the seed
    alone, so a resumed run sees exactly the batches an uninterrupted one would.
    """

    def __init__(self, clips: np.ndarray, batch_size: int, seed: int):
        if len(clips) < batch_size:
            raise ConfigError(
                f"batch_size={batch_size} is larger than the dataset ({len(clips)} clips); every "
                "example of a batch must be a different clip. Lower batch_size or use more clips "
                "(n_clips for embedded datasets)."
            )
        self.clips = clips
        self.batch_size = batch_size
        self.seed = seed
        self.per_epoch = len(clips) // batch_size
        self._epoch, self._order = -1, None

    def indices(self, step: int) -> np.ndarray:
        epoch, i = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self._order = np.random.default_rng([self.seed, epoch]).permutation(len(self.clips))
            self._epoch = epoch
        return self._order[i * self.batch_size:(i + 1) * self.batch_size]

    def __getitem__(self, step: int) -> np.ndarray:
        return self.clips[self.indices(step)]

    def iterate(self, start: int = 0) -> Iterator[np.ndarray]:
        step = start
        while True:
            yield self[step]
            step += 1
