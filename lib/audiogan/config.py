"""Run settings: one frozen, validated record per run, written to ``config.json``.

Notebooks hold flat scalars in their ``parameters`` cell (the names below) and turn them into a
:class:`RunConfig` in the next cell, so a bad value stops the notebook there with a message that
names the parameter, the value and the choices, instead of a traceback from deep inside JAX.
Settings left at ``None`` are filled in from the model family's ``RECIPE`` (``MODEL_DEFAULTS`` maps
each family to it), so every hyperparameter of a recipe lives in one place.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audiogan import models
from audiogan.audio.mel import MelSettings
from audiogan.datasets.naming import NamePattern
from audiogan.errors import ConfigError
from audiogan.models import specgan

# Every hyperparameter of each model family's reference recipe lives in the family's module
# (``audiogan.models.<family>.RECIPE``); a setting the user leaves at None takes its value from there.
MODEL_DEFAULTS: Mapping[str, Mapping[str, Any]] = models.RECIPES
# Settings that depend on the loss rather than the model: WGAN-GP's critic is trained 5 times per
# generator update with gradient-penalty weight lambda 10 (Gulrajani et al. 2017).
LOSS_DEFAULTS: dict[str, dict[str, Any]] = {
    "wgan-gp": {"n_critic": 5, "gp_weight": 10.0},
    "ns": {"n_critic": 1, "gp_weight": 0.0},
    "hinge": {"n_critic": 1, "gp_weight": 0.0},
    "lsgan": {"n_critic": 1, "gp_weight": 0.0},
}
# Presets: a named bundle of settings for one purpose. A setting the caller leaves at RunConfig's own
# default takes the preset's value; any other value the caller gives wins over the preset. Each preset
# is one table: its settings, a model per dataset (when the caller leaves model at None), and settings
# for one model and for one (model, dataset) pair on top.
# "workshop": sized for a 2-core laptop CPU at 8 kHz (docs/workshop.md gives what each choice measured):
# the classic fully connected GAN, quarter-second clips for tones and half-second clips for spoken
# digits (a quarter second would cut them); for digits, where the classic GAN collapses onto one sound,
# a conditional WaveGAN at a quarter of the paper's width, sampled from a moving average of G.
PRESETS: dict[str, dict[str, Any]] = {
    "workshop": {
        "settings": {
            "model": "mlp", "sample_rate": 8000, "steps": 4000, "log_every": 25, "preview_every": 250,
            "checkpoint_every": 250,
        },
        "dataset_models": {"digits": "wavegan"},
        "models": {
            "mlp": {"clip_samples": 2048, "batch_size": 64, "loss": "ns"},
            "wavegan": {"clip_samples": 16384, "batch_size": 16, "d": 16, "loss": "hinge"},
            "specgan": {"clip_samples": 16384, "batch_size": 16, "d": 16, "loss": "hinge"},
        },
        "model_datasets": {
            ("mlp", "digits"): {"clip_samples": 4096},
            ("wavegan", "digits"): {
                "clip_samples": 4096, "batch_size": 32, "conditional": True, "ema_decay": 0.999,
                "steps": 20000, "log_every": 50, "preview_every": 1000, "checkpoint_every": 1000,
            },
        },
    },
}
MODELS = tuple(MODEL_DEFAULTS)
ARCHITECTURE_FIELDS = (
    "d", "phase_shuffle", "phase_shuffle_per_example", "upsample", "post_filter", "griffin_lim_iters",
    "spectrogram",
)
MEL_FIELDS = ("n_mels", "hop", "fmax")  # a mel SpecGAN's front end (specgan.mel_settings)
# What tells a vocoder run folder (audiogan.training.vocoder_config.KIND, vocoder_loop.DATASET_JSON; the
# training layer sits above this one, so the names are repeated here and a test keeps them equal).
VOCODER_KIND = "vocoder"
VOCODER_DATA = "dataset.json"
LOSSES = tuple(LOSS_DEFAULTS)
SLICE_MODES = ("first", "all")
ON_ERROR_MODES = ("skip", "raise")
PRECISIONS = ("float32", "bfloat16")
FLOAT_FIELDS = ("lr", "beta1", "beta2", "label_smoothing", "gp_weight", "r1_weight", "ema_decay")
MAX_SEED = 2**32  # jax.random.PRNGKey(seed) keeps the low 32 bits: PRNGKey(2**32) == PRNGKey(0)


def _choices(values) -> str:
    return ", ".join(repr(v) for v in values)


def vocoder_mel(vocoder: str | os.PathLike) -> MelSettings:
    """The mel front end the vocoder run folder ``vocoder`` was trained on (its ``dataset.json``);
    :class:`ConfigError` naming ``vocoder`` when the folder is missing, not a vocoder run, or untrained."""
    path = Path(vocoder)
    if not path.is_dir():
        raise ConfigError(
            f"vocoder={os.fspath(vocoder)!r} does not exist; give the run folder of a trained vocoder "
            "(notebook 07_vocoder), or '' for Griffin-Lim."
        )
    try:
        kind = json.loads((path / "config.json").read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        kind = None
    if kind != VOCODER_KIND:
        raise ConfigError(
            f"vocoder={os.fspath(vocoder)!r} is not a vocoder run folder (its config.json has no kind "
            f"{VOCODER_KIND!r}); give a folder that notebook 07_vocoder trained."
        )
    try:
        return MelSettings(**json.loads((path / VOCODER_DATA).read_text())["mel"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"vocoder={os.fspath(vocoder)!r} has not been trained yet: its {VOCODER_DATA} holds no mel "
            "settings. Train it first (notebook 07_vocoder)."
        ) from exc


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Every setting of one training run, dataset included."""

    run_dir: str = "runs/default"
    preset: str | None = None  # a bundle of settings (PRESETS), e.g. "workshop"; explicit values win
    dataset: str = "tones"  # an embedded dataset name or a folder of audio files
    model: str | None = None  # None: the classic GAN ("mlp"), or the preset's model for the dataset
    loss: str | None = None  # None: the model's recipe
    steps: int = 2000
    batch_size: int | None = None
    seed: int = 0
    sample_rate: int = 16000
    clip_samples: int = 16384
    # Optimiser and objective; None takes the recipe's value (MODEL_DEFAULTS, LOSS_DEFAULTS).
    lr: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    n_critic: int | None = None
    latent_dim: int | None = None
    label_smoothing: float | None = None  # target for real clips with "ns"/"lsgan"; 1 = none
    gp_weight: float | None = None  # gradient penalty (wgan-gp's lambda)
    r1_weight: float = 0.0  # R1 penalty gamma on real clips (gamma/2 * E|grad D|^2); 0 = off
    # Lazy R1 (StyleGAN2): the penalty only on steps divisible by r1_every, charged r1_every times over
    # so its mean is unchanged; the off steps skip its second derivative. 1: every step. metrics.csv's
    # r1 is the penalty as charged (r1_every x R1, or 0): a row's mean is R1's when r1_every divides log_every.
    r1_every: int = 1
    ema_decay: float = 0.0  # exponential moving average of the generator (e.g. 0.999); 0 = off
    # Condition both networks on the dataset's class (digits: the digit; drums: the drum; tones: the
    # note; a folder in the Speech Commands layout: the word): the generator is told which to make.
    # None: off, or the preset's choice.
    conditional: bool | None = None
    # Architecture (WaveGAN, SpecGAN); None takes the recipe's value.
    d: int | None = None  # model size
    phase_shuffle: int | None = None  # WaveGAN discriminator's phase-shuffle radius
    phase_shuffle_per_example: bool | None = None  # one shift per example instead of per batch
    upsample: str | None = None  # WaveGAN generator: "zeros" (transposed conv) or "nn"
    post_filter: int | None = None  # WaveGAN's learned post-processing filter length; 0 = off
    griffin_lim_iters: int | None = None  # SpecGAN: Griffin-Lim iterations back to audio
    # SpecGAN's spectrograms: "stft" (the paper's log-magnitude STFT) or "mel" (a vocoder's log-mel).
    spectrogram: str | None = None
    # A mel SpecGAN's front end; None: the vocoder's, or without one HiFi-GAN's (80 bands, hop 256,
    # fmax min(8 kHz, Nyquist)); n_fft = win = 4 hops, as the suite's vocoders have it.
    n_mels: int | None = None
    hop: int | None = None  # samples per mel frame
    fmax: float | None = None  # top of the mel band, Hz
    # A mel SpecGAN's sound: the folder of a trained vocoder run (notebook 07_vocoder) that turns its
    # log-mels into clips; "": Griffin-Lim. Training never reads it, so it may change when a run resumes.
    vocoder: str = ""
    # Data.
    n_clips: int | None = None  # size of an embedded dataset (digits: training clips); None: its default
    slices: str = "first"  # folder datasets: the first clip of each file, or every clip
    on_error: str = "skip"  # folder datasets: "skip" a bad file (and report it) or "raise" on it
    # Folder datasets: labels from file names, a regular expression with named groups matched against
    # each name without its extension, e.g. r"(?P<word>[a-z]+)-(?P<speaker>\w+)"; None: the folder's layout.
    name_pattern: str | None = None
    # Bookkeeping.
    log_every: int = 50
    preview_every: int = 500
    checkpoint_every: int = 500
    n_previews: int = 4
    # Score generated clips with the dataset's classifier every N steps (0 = off), into metrics.csv,
    # keeping the best checkpoint; fixed for a run, since metrics.csv's columns depend on it.
    eval_every: int = 0
    eval_clips: int = 200  # generated clips per training-time evaluation
    precision: str = "float32"  # "bfloat16": bfloat16 compute, float32 weights, optimiser and losses

    def __post_init__(self):
        # What the caller gave, before the recipe fills the gaps: replace() starts from this, so a
        # changed model or loss brings its own defaults instead of keeping the old recipe's.
        object.__setattr__(self, "_given", {f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        if self.preset is not None:
            self._apply_preset()
        if self.model is None:
            object.__setattr__(self, "model", "mlp")
        if self.conditional is None:
            object.__setattr__(self, "conditional", False)
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
        for name, value in LOSS_DEFAULTS[self.loss].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        for name in ARCHITECTURE_FIELDS:  # settings the chosen family does not use stay None
            if name not in MODEL_DEFAULTS[self.model] and getattr(self, name) is not None:
                raise ConfigError(
                    f"{name}={getattr(self, name)!r} does not apply to model={self.model!r}; leave it "
                    f"at None (it applies to {', '.join(m for m in MODELS if name in MODEL_DEFAULTS[m])})."
                )
        if self.slices not in SLICE_MODES:
            raise ConfigError(
                f"slices={self.slices!r} is unknown; choose one of {_choices(SLICE_MODES)}."
            )
        if self.name_pattern is not None:
            if not isinstance(self.name_pattern, str):
                raise ConfigError(f"name_pattern={self.name_pattern!r} must be a regular expression (text) or None.")
            NamePattern(self.name_pattern)  # raises naming what is wrong with it
        if self.on_error not in ON_ERROR_MODES:
            raise ConfigError(
                f"on_error={self.on_error!r} is unknown; choose one of {_choices(ON_ERROR_MODES)}."
            )
        if not isinstance(self.dataset, str) or not self.dataset.strip():
            raise ConfigError("dataset must be an embedded dataset name or a folder path.")
        if not isinstance(self.run_dir, str | os.PathLike) or not os.fspath(self.run_dir).strip():
            raise ConfigError("run_dir must be a folder path, e.g. 'runs/my_run'.")
        positive_ints = (
            "steps", "batch_size", "sample_rate", "clip_samples", "n_critic", "latent_dim",
            "log_every", "preview_every", "checkpoint_every", "n_previews",
        ) + tuple(n for n in ("d", "griffin_lim_iters", "n_clips", "n_mels", "hop") if getattr(self, n) is not None)
        for name in positive_ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r} must be a positive whole number.")
        if isinstance(self.eval_every, bool) or not isinstance(self.eval_every, int) or self.eval_every < 0:
            raise ConfigError(f"eval_every={self.eval_every!r} must be a whole number >= 0 (0 turns it off).")
        if isinstance(self.eval_clips, bool) or not isinstance(self.eval_clips, int) or self.eval_clips < 20:
            raise ConfigError(f"eval_clips={self.eval_clips!r} must be a whole number >= 20.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < MAX_SEED:
            raise ConfigError(
                f"seed={self.seed!r} must be a whole number from 0 to {MAX_SEED - 1} (2**32 - 1): "
                "jax.random.PRNGKey keeps 32 bits, so a larger seed would repeat a smaller one."
            )
        for name in FLOAT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{name}={value!r} must be a number.")
            try:
                number = float(value)
            except OverflowError:  # an int beyond float's range
                number = math.inf
            if not math.isfinite(number):  # NaN would pass every comparison below
                raise ConfigError(f"{name}={value!r} must be a finite number, not NaN or infinite.")
            object.__setattr__(self, name, number)
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
        for name in ("gp_weight", "r1_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be >= 0 (0 turns it off).")
        if isinstance(self.r1_every, bool) or not isinstance(self.r1_every, int) or self.r1_every < 1:
            raise ConfigError(
                f"r1_every={self.r1_every!r} must be a positive whole number: the R1 penalty is computed on "
                "every r1_every-th step (1: every step; StyleGAN2's lazy regularisation used 16)."
            )
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"ema_decay={self.ema_decay!r} must lie in [0, 1) (0 = off, e.g. 0.999).")
        if not isinstance(self.conditional, bool):
            raise ConfigError(f"conditional={self.conditional!r} must be True or False.")
        self._resolve_mel()
        self._check_architecture()
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision={self.precision!r} is unknown; choose one of {_choices(PRECISIONS)} "
                "(bfloat16 computes in bfloat16 and keeps weights, optimiser and losses in float32)."
            )
        if self.sample_rate < 1000:
            raise ConfigError(f"sample_rate={self.sample_rate} Hz is too low; use 8000 or more.")
        if self.clip_samples < 64:
            raise ConfigError(f"clip_samples={self.clip_samples} is too short; use 64 or more.")

    def _apply_preset(self) -> None:
        """Fill the settings left at RunConfig's defaults from ``PRESETS[preset]``."""
        if self.preset not in PRESETS:
            raise ConfigError(
                f"preset={self.preset!r} is unknown; choose one of {_choices(PRESETS)}, or None for "
                "no preset."
            )
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        preset = PRESETS[self.preset]
        values = dict(preset["settings"])
        model = self.model
        if model is None:
            model = preset["dataset_models"].get(self.dataset, values.get("model"))
        values["model"] = model
        values |= preset["models"].get(model, {})
        values |= preset["model_datasets"].get((model, self.dataset), {})
        for name, value in values.items():
            if getattr(self, name) == defaults[name]:
                object.__setattr__(self, name, value)

    def _resolve_mel(self) -> None:
        """A mel SpecGAN's n_mels, hop and fmax: given, the vocoder's, or HiFi-GAN's; the vocoder's
        must agree with them and with sample_rate. Other runs leave them (and ``vocoder``) unset."""
        if not isinstance(self.vocoder, str | os.PathLike):
            raise ConfigError(f"vocoder={self.vocoder!r} must be a vocoder run folder, or '' for Griffin-Lim.")
        object.__setattr__(self, "vocoder", os.fspath(self.vocoder).strip())
        if self.fmax is not None:
            if isinstance(self.fmax, bool) or not isinstance(self.fmax, int | float) or not math.isfinite(self.fmax):
                raise ConfigError(f"fmax={self.fmax!r} must be a frequency in Hz, or None.")
            object.__setattr__(self, "fmax", float(self.fmax))
        if self.spectrogram != "mel":
            if self.vocoder:
                raise ConfigError(
                    f"vocoder={self.vocoder!r} turns a mel SpecGAN's log-mels into sound; it needs "
                    f"model='specgan' and spectrogram='mel' (this run: model={self.model!r}, "
                    f"spectrogram={self.spectrogram!r}). Leave vocoder at ''."
                )
            for name in MEL_FIELDS:
                if getattr(self, name) is not None:
                    raise ConfigError(
                        f"{name}={getattr(self, name)!r} applies to a mel SpecGAN (model='specgan', "
                        f"spectrogram='mel'); leave it at None."
                    )
            return
        theirs = vocoder_mel(self.vocoder) if self.vocoder else None
        given = {name: getattr(self, name) for name in MEL_FIELDS}
        if theirs is None:
            fill = specgan.mel_defaults(self.sample_rate)
        else:
            fill = {"n_mels": theirs.n_mels, "hop": theirs.hop, "fmax": theirs.f_max}
        for name in MEL_FIELDS:
            if given[name] is None:
                object.__setattr__(self, name, fill[name])
        if theirs is None:
            return
        mine = {"sample_rate": self.sample_rate, "hop": self.hop, "n_mels": self.n_mels, "fmax": self.fmax}
        wanted = {"sample_rate": theirs.sample_rate, "hop": theirs.hop, "n_mels": theirs.n_mels, "fmax": theirs.f_max}
        for name, value in mine.items():
            if value != wanted[name]:
                hint = "" if name == "sample_rate" else " (or leave it at None to take the vocoder's)"
                raise ConfigError(
                    f"{name}={value} does not match vocoder={self.vocoder!r}, trained with {name} "
                    f"{wanted[name]}: a mel SpecGAN makes the log-mels its vocoder takes. Set "
                    f"{name}={wanted[name]}{hint}."
                )
        try:
            ours = specgan.mel_settings(self)
        except ValueError:
            return  # specgan.check names what is wrong with the settings
        for name in ("n_fft", "win", "fmin"):
            if getattr(ours, name) != getattr(theirs, name):
                raise ConfigError(
                    f"vocoder={self.vocoder!r} was trained on a mel front end with {name}="
                    f"{getattr(theirs, name)}, where a mel SpecGAN's has {getattr(ours, name)} "
                    "(n_fft = win = 4 hops, fmin 0); train the vocoder with the suite's vocoder_loop."
                )

    def _check_architecture(self) -> None:
        models.family(self.model).check(self)

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
                "(notebook 02_train or audiogan.training.train)."
            )
        return cls.from_dict(json.loads(path.read_text()))

    def replace(self, **changes) -> RunConfig:
        """A copy with ``changes``; settings that were left to the recipe are derived again."""
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}.")
        return RunConfig(**(self._given | changes))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # Settings that may differ when a run is continued: more steps, other bookkeeping intervals.
    RESUMABLE_CHANGES = frozenset(
        {"steps", "log_every", "preview_every", "checkpoint_every", "n_previews", "run_dir", "vocoder"}
    )

    def differences(self, other: RunConfig) -> dict[str, tuple[Any, Any]]:
        """Settings that differ from ``other`` and would change what the run computes."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {
            k: (theirs[k], mine[k])
            for k in mine
            if k not in self.RESUMABLE_CHANGES and mine[k] != theirs[k]
        }
