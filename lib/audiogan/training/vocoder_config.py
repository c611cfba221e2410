"""A vocoder run's settings: one frozen, validated record, written to the run folder's ``config.json``.

A vocoder learns mel_btm (B, frames, n_mels) -> wav_bt (B, frames * hop). Its hop is fixed by the
generator (the product of its upsampling rates), so the mel front end is derived from the network,
never set beside it: hop = prod(upsample rates), n_fft = win = 4 hops, fmax = min(8 kHz, Nyquist) as
HiFi-GAN's configs keep them (MelGAN: fmax = Nyquist), and a training segment must be a whole number of
hops. Settings left at ``None`` take the family's ``RECIPE`` (:data:`RECIPES`), so a recipe value is
written once and every one of them can be ablated from the notebook's parameters.

``variant="tiny"`` is a network of a few thousand weights with a hop of 32, for tests and smoke runs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audiogan.audio.mel import MelSettings
from audiogan.errors import ConfigError
from audiogan.models import hifigan, melgan

KIND = "vocoder"  # config.json's "kind": tells a vocoder run folder from a GAN run folder
MODELS = ("hifigan", "melgan")
LOSSES = ("lsgan", "hinge")
VARIANTS: dict[str, tuple[str, ...]] = {"hifigan": (*hifigan.VARIANTS, "tiny"), "melgan": (*melgan.VARIANTS, "tiny")}
SLICE_MODES = ("all", "first")
ON_ERROR_MODES = ("skip", "raise")

# Test-sized networks: hop 32 (upsampling 4 x 4 x 2), 16 mel bands, discriminators of 4-64 channels; HiFi-GAN's
# with periods 2 and 3 and two scales only (XLA:CPU compiles each layer: the full set takes minutes).
TINY: dict[str, dict[str, Any]] = {
    "hifigan": dict(
        generator=dict(resblock=2, upsample_rates=(4, 4, 2), upsample_kernel_sizes=(8, 8, 4),
                       upsample_initial_channel=32, resblock_kernel_sizes=(3, 5),
                       resblock_dilation_sizes=((1, 3), (1, 3))),
        mpd_periods=(2, 3), mpd_channels=(8, 16, 32, 32, 32), msd_scales=2, msd_channels=(16,) * 7, n_mels=16,
    ),
    "melgan": dict(ngf=4, n_residual_layers=1, ratios=(4, 4, 2), num_D=3, ndf=4, n_layers=2,
                   downsampling_factor=4, max_channels=64, n_mels=16),
}

# Each family's training recipe in the names of this config (values from the family's RECIPE).
RECIPES: dict[str, dict[str, Any]] = {
    "hifigan": dict(
        variant="v1", loss="lsgan", batch_size=hifigan.RECIPE["batch_size"], lr=hifigan.RECIPE["learning_rate"],
        beta1=hifigan.RECIPE["betas"][0], beta2=hifigan.RECIPE["betas"][1],
        weight_decay=hifigan.RECIPE["weight_decay"], lr_decay=hifigan.RECIPE["lr_decay"],
        fm_weight=hifigan.RECIPE["feature_matching_weight"], mel_weight=hifigan.RECIPE["mel_l1_weight"],
        n_mels=hifigan.RECIPE["num_mels"],
    ),
    "melgan": dict(
        variant="base", loss="hinge", batch_size=melgan.RECIPE["batch_size"], lr=melgan.RECIPE["learning_rate"],
        beta1=melgan.RECIPE["betas"][0], beta2=melgan.RECIPE["betas"][1],
        weight_decay=0.0, lr_decay=1.0,  # plain Adam, constant rate
        fm_weight=None,  # lambda_feat 10 x 4 / ((n_layers + 1) * num_D): derived from the variant
        mel_weight=0.0, n_mels=melgan.RECIPE["num_mels"],
    ),
}
SEGMENT_HOPS = hifigan.RECIPE["segment_size"] // hifigan.RECIPE["hop_size"]  # 32: 8192 samples at hop 256
FFT_HOPS = hifigan.RECIPE["n_fft"] // hifigan.RECIPE["hop_size"]  # 4: n_fft = win = 1024 at hop 256


def _choices(values) -> str:
    return ", ".join(repr(v) for v in values)


def _whole(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name}={value!r} must be a whole number >= {low}.")


@dataclasses.dataclass(frozen=True)
class VocoderConfig:
    """Every setting of one vocoder training run, dataset included."""

    run_dir: str = "runs/vocoder"
    dataset: str = "tones"  # any dataset the suite reads: an embedded name or a folder of audio files
    model: str = "hifigan"  # "hifigan" or "melgan"
    variant: str | None = None  # hifigan: "v1" (recipe), "v2", "v3"; melgan: "base"; either: "tiny"
    steps: int = 2000
    batch_size: int | None = None
    seed: int = 0
    sample_rate: int = 22050
    segment_samples: int | None = None  # training segment; None: 32 hops (HiFi-GAN's 8192 at hop 256)
    clip_samples: int | None = None  # the dataset's clips, segments are drawn within them; None: ~1 s
    n_clips: int | None = None  # size of an embedded dataset; None: its default
    slices: str = "all"  # folder datasets: every clip of each file, or the first only
    on_error: str = "skip"
    eval_clips: int = 8  # held-out clips (when the dataset has no test or validation split)
    # Recipe values; None takes the family's (RECIPES).
    loss: str | None = None  # "lsgan" (HiFi-GAN) or "hinge" (MelGAN)
    lr: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    weight_decay: float | None = None  # AdamW's decoupled decay
    lr_decay: float | None = None  # the rate is multiplied by this once per epoch (1 = constant)
    fm_weight: float | None = None  # feature-matching weight
    mel_weight: float | None = None  # mel L1 weight (0: the term is logged, not trained on)
    n_mels: int | None = None
    # Bookkeeping.
    log_every: int = 50
    checkpoint_every: int = 500
    init_from: str | None = None  # another vocoder run folder: start from its generator and discriminators

    RESUMABLE_CHANGES = frozenset({"steps", "log_every", "checkpoint_every", "run_dir"})

    def __post_init__(self):
        # What the caller gave, before the recipe fills the gaps: replace() starts from it, so another model
        # brings its own recipe instead of keeping the old one's values.
        object.__setattr__(self, "_given", {f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        if self.model not in MODELS:
            raise ConfigError(f"model={self.model!r} is not a vocoder; choose one of {_choices(MODELS)}.")
        recipe = RECIPES[self.model]
        if self.variant == "tiny" and self.n_mels is None:
            object.__setattr__(self, "n_mels", TINY[self.model]["n_mels"])
        for name, value in recipe.items():
            if getattr(self, name) is None and value is not None:
                object.__setattr__(self, name, value)
        if self.variant not in VARIANTS[self.model]:
            raise ConfigError(f"variant={self.variant!r} is not a {self.model} variant; choose one of "
                              f"{_choices(VARIANTS[self.model])}.")
        if self.fm_weight is None:  # MelGAN: lambda_feat times its per-layer weight
            m = self.melgan_variant()
            object.__setattr__(self, "fm_weight", melgan.RECIPE["feature_matching_weight"] * 4.0
                               / ((m["n_layers"] + 1) * m["num_D"]))
        if self.loss not in LOSSES:
            raise ConfigError(f"loss={self.loss!r} is unknown; choose one of {_choices(LOSSES)}.")
        if not isinstance(self.run_dir, str | os.PathLike) or not os.fspath(self.run_dir).strip():
            raise ConfigError("run_dir must be a folder path, e.g. 'runs/vocoder'.")
        object.__setattr__(self, "run_dir", os.fspath(self.run_dir))
        if not isinstance(self.dataset, str) or not self.dataset.strip():
            raise ConfigError("dataset must be an embedded dataset name or a folder path.")
        for name in ("steps", "batch_size", "n_mels", "log_every", "checkpoint_every", "eval_clips"):
            _whole(name, getattr(self, name), 1)
        _whole("seed", self.seed, 0)
        _whole("sample_rate", self.sample_rate, 4000)
        if self.n_clips is not None:
            _whole("n_clips", self.n_clips, 1)
        if self.slices not in SLICE_MODES:
            raise ConfigError(f"slices={self.slices!r} is unknown; choose one of {_choices(SLICE_MODES)}.")
        if self.on_error not in ON_ERROR_MODES:
            raise ConfigError(f"on_error={self.on_error!r} is unknown; choose one of {_choices(ON_ERROR_MODES)}.")
        for name in ("lr", "beta1", "beta2", "weight_decay", "lr_decay", "fm_weight", "mel_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{name}={value!r} must be a number.")
            object.__setattr__(self, name, float(value))
        if not 0 < self.lr < 1:
            raise ConfigError(f"lr={self.lr!r} must lie between 0 and 1 (the recipe's: {recipe['lr']}).")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must lie in [0, 1).")
        if not 0 < self.lr_decay <= 1:
            raise ConfigError(f"lr_decay={self.lr_decay!r} must lie in (0, 1] (1 keeps the rate constant).")
        for name in ("weight_decay", "fm_weight", "mel_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be >= 0 (0 turns it off).")
        self._derive_lengths()
        if self.init_from is not None:
            if not isinstance(self.init_from, str | os.PathLike) or not os.fspath(self.init_from).strip():
                raise ConfigError("init_from must be None or the folder of another vocoder run.")
            object.__setattr__(self, "init_from", os.fspath(self.init_from))
            if Path(self.init_from).resolve() == Path(self.run_dir).resolve():
                raise ConfigError(f"init_from={self.init_from!r} is this run's own run_dir; give another run.")

    def _derive_lengths(self) -> None:
        hop = self.hop
        if self.segment_samples is None:
            object.__setattr__(self, "segment_samples", SEGMENT_HOPS * hop)
        _whole("segment_samples", self.segment_samples, 1)
        if self.segment_samples % hop:
            lower = max(hop, self.segment_samples // hop * hop)
            raise ConfigError(
                f"segment_samples={self.segment_samples} must be a multiple of hop={hop}, the product of "
                f"{self.model} {self.variant}'s upsampling rates {self.upsample_rates}: the generator makes "
                f"{hop} samples per mel frame. Use {lower} or {lower + hop}.")
        if self.clip_samples is None:
            object.__setattr__(self, "clip_samples", max(self.segment_samples, self.sample_rate // hop * hop))
        _whole("clip_samples", self.clip_samples, 64)
        if self.clip_samples < self.segment_samples:
            raise ConfigError(f"clip_samples={self.clip_samples} must be at least segment_samples="
                              f"{self.segment_samples}: segments are drawn within the dataset's clips.")
        try:
            self.mel_settings()
        except ValueError as exc:
            raise ConfigError(f"n_mels={self.n_mels} at sample_rate={self.sample_rate} with n_fft={FFT_HOPS * hop}: "
                              f"{exc}") from exc

    # ------------------------------------------------------------------ derived settings
    def hifigan_variant(self) -> dict:
        """HiFi-GAN's generator settings (``hifigan.VARIANTS`` or the tiny one)."""
        return dict(TINY["hifigan"]["generator"]) if self.variant == "tiny" else hifigan.resolve_variant(self.variant)

    def melgan_variant(self) -> dict:
        """MelGAN's settings (``melgan.VARIANTS`` or the tiny one), max_channels included."""
        if self.variant == "tiny":
            return dict(TINY["melgan"])
        return dict(melgan.VARIANTS[self.variant], max_channels=1024)

    @property
    def upsample_rates(self) -> tuple[int, ...]:
        if self.model == "hifigan":
            return tuple(self.hifigan_variant()["upsample_rates"])
        return tuple(self.melgan_variant()["ratios"])

    @property
    def hop(self) -> int:
        """Samples per mel frame: the product of the generator's upsampling rates."""
        return math.prod(self.upsample_rates)

    @property
    def segment_frames(self) -> int:
        return self.segment_samples // self.hop

    def mel_settings(self) -> MelSettings:
        """The generator's input: hop = prod(upsample rates), n_fft = win = 4 hops, HiFi-GAN's fmax."""
        nyquist = self.sample_rate / 2
        fmax = min(hifigan.RECIPE["fmax"], nyquist) if self.model == "hifigan" else None
        return MelSettings(sample_rate=self.sample_rate, n_fft=FFT_HOPS * self.hop, hop=self.hop,
                           win=FFT_HOPS * self.hop, n_mels=self.n_mels, fmin=0.0, fmax=fmax)

    def loss_mel_settings(self) -> MelSettings:
        """The mel of the L1 loss: the same up to the Nyquist frequency (HiFi-GAN's ``fmax_for_loss``)."""
        return self.mel_settings().for_loss()

    # ------------------------------------------------------------------ reading and writing
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any], **overrides) -> VocoderConfig:
        """From a notebook's globals(): takes the names it knows, ignores the rest."""
        values = {k: namespace[k] for k in cls.field_names() if k in namespace}
        return cls(**(values | overrides))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> VocoderConfig:
        values = dict(values)
        kind = values.pop("kind", KIND)
        if kind != KIND:
            raise ConfigError(f"this is a {kind!r} run's config, not a vocoder's.")
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ConfigError(f"unknown vocoder setting(s) {', '.join(unknown)}; "
                              f"known: {', '.join(cls.field_names())}.")
        return cls(**values)

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> VocoderConfig:
        path = Path(run_dir) / "config.json"
        if not path.is_file():
            raise ConfigError(f"{path} does not exist: {run_dir} is not a vocoder run folder yet; train into it first.")
        values = json.loads(path.read_text())
        if values.get("kind") != KIND:
            raise ConfigError(f"{run_dir} holds a GAN run, not a vocoder run (its config.json has no kind 'vocoder').")
        return cls.from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": KIND} | dataclasses.asdict(self)

    def replace(self, **changes) -> VocoderConfig:
        """A copy with ``changes``; settings that were left to the recipe are derived again."""
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise ConfigError(f"unknown vocoder setting(s) {', '.join(unknown)}.")
        return VocoderConfig(**(self._given | changes))

    def differences(self, other: VocoderConfig) -> dict[str, tuple[Any, Any]]:
        """Settings that differ from ``other`` and would change what the run computes."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {k: (theirs[k], mine[k]) for k in mine if k not in self.RESUMABLE_CHANGES and mine[k] != theirs[k]}

    def architecture(self) -> dict[str, Any]:
        """What decides the shapes of the weights: ``init_from`` must agree on it."""
        return {"model": self.model, "variant": self.variant, "n_mels": self.n_mels}
