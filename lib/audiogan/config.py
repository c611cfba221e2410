"""Run settings: one frozen, validated record per run, written to ``config.json``.

Notebooks hold flat scalars in their ``parameters`` cell (the names below) and turn them into a
:class:`RunConfig` in the next cell, so a bad value stops the notebook there with a message that
names the parameter, the value and the choices, instead of a traceback from deep inside JAX.
Settings left at ``None`` are filled in from the model family's defaults (see ``MODEL_DEFAULTS``),
so every hyperparameter of a recipe lives in one place.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A parameter has a value the suite cannot use; the message says which and what to do."""


# Training hyperparameters of each model family's reference recipe. A setting the user leaves at
# None takes its value from here.
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    # The classic fully connected GAN (Goodfellow et al. 2014 as popularised by the Keras recipe):
    # Adam(2e-4, beta1 0.5), one discriminator update per generator update, batch 128, latent 100,
    # one-sided label smoothing 0.9 on the non-saturating cross-entropy loss.
    "mlp": {
        "loss": "ns",
        "lr": 2e-4,
        "beta1": 0.5,
        "beta2": 0.999,
        "n_critic": 1,
        "latent_dim": 100,
        "label_smoothing": 0.9,
    },
}
MODELS = tuple(MODEL_DEFAULTS)
LOSSES = ("ns", "hinge", "lsgan")
SLICE_MODES = ("first", "all")


def _choices(values) -> str:
    return ", ".join(repr(v) for v in values)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Every setting of one training run, dataset included."""

    run_dir: str = "runs/default"
    dataset: str = "tones"  # an embedded dataset name or a folder of audio files
    model: str = "mlp"
    loss: str | None = None
    steps: int = 2000
    batch_size: int = 128
    seed: int = 0
    sample_rate: int = 16000
    clip_samples: int = 16384
    # Optimiser and objective; None takes the model family's default.
    lr: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    n_critic: int | None = None
    latent_dim: int | None = None
    label_smoothing: float | None = None
    # Data.
    n_clips: int = 2048  # size of an embedded dataset
    slices: str = "first"  # folder datasets: the first clip of each file, or every clip
    # Bookkeeping.
    log_every: int = 50
    preview_every: int = 500
    checkpoint_every: int = 500
    n_previews: int = 4

    def __post_init__(self):
        if self.model not in MODEL_DEFAULTS:
            raise ConfigError(
                f"model={self.model!r} is not a model of this suite; choose one of "
                f"{_choices(MODELS)}."
            )
        for name, value in MODEL_DEFAULTS[self.model].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.loss not in LOSSES:
            raise ConfigError(f"loss={self.loss!r} is unknown; choose one of {_choices(LOSSES)}.")
        if self.slices not in SLICE_MODES:
            raise ConfigError(
                f"slices={self.slices!r} is unknown; choose one of {_choices(SLICE_MODES)}."
            )
        if not isinstance(self.dataset, str) or not self.dataset.strip():
            raise ConfigError("dataset must be an embedded dataset name or a folder path.")
        if not isinstance(self.run_dir, str | os.PathLike) or not os.fspath(self.run_dir).strip():
            raise ConfigError("run_dir must be a folder path, e.g. 'runs/my_run'.")
        positive_ints = (
            "steps", "batch_size", "sample_rate", "clip_samples", "n_critic", "latent_dim",
            "n_clips", "log_every", "preview_every", "checkpoint_every", "n_previews",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r} must be a positive whole number.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} must be a whole number >= 0.")
        for name in ("lr", "beta1", "beta2", "label_smoothing"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{name}={value!r} must be a number.")
            object.__setattr__(self, name, float(value))
        object.__setattr__(self, "run_dir", os.fspath(self.run_dir))
        if not 0 < float(self.lr) < 1:
            raise ConfigError(f"lr={self.lr!r} must lie between 0 and 1 (e.g. 2e-4).")
        for name in ("beta1", "beta2"):
            if not 0 <= float(getattr(self, name)) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must lie in [0, 1).")
        if not 0 < float(self.label_smoothing) <= 1:
            raise ConfigError(
                f"label_smoothing={self.label_smoothing!r} is the target for real clips; it must "
                "lie in (0, 1] (1 turns smoothing off, 0.9 is the classic recipe)."
            )
        if self.sample_rate < 1000:
            raise ConfigError(f"sample_rate={self.sample_rate} Hz is too low; use 8000 or more.")
        if self.clip_samples < 64:
            raise ConfigError(f"clip_samples={self.clip_samples} is too short; use 64 or more.")

    # ------------------------------------------------------------------ construction
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any], **overrides) -> RunConfig:
        """Build from a notebook's globals(): takes the names it knows, ignores the rest."""
        values = {k: namespace[k] for k in cls.field_names() if k in namespace}
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {', '.join(unknown)}; known settings are "
                f"{', '.join(cls.field_names())}."
            )
        return cls(**values)

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> RunConfig:
        path = Path(run_dir) / "config.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist: {run_dir} is not a run folder yet. Train into it first "
                "(notebook 02_train or audiogan.train.train)."
            )
        return cls.from_dict(json.loads(path.read_text()))

    def replace(self, **changes) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # Settings that may differ when a run is continued: more steps, other bookkeeping intervals.
    RESUMABLE_CHANGES = frozenset(
        {"steps", "log_every", "preview_every", "checkpoint_every", "n_previews", "run_dir"}
    )

    def differences(self, other: RunConfig) -> dict[str, tuple[Any, Any]]:
        """Settings that differ from ``other`` and would change what the run computes."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {
            k: (theirs[k], mine[k])
            for k in mine
            if k not in self.RESUMABLE_CHANGES and mine[k] != theirs[k]
        }
