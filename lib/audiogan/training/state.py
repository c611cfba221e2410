"""A run's state: the static half (:class:`GAN`: graph definitions, optimisers, objective, sharding)
and the dynamic half (:class:`TrainState`: weights, optimiser moments, step, key), made by :func:`create`.

A run with ``conditional=True`` is built for the dataset's classes, stored as ``classes.json`` in the
run folder, in the order of the label indices.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from audiogan import models
from audiogan.config import RunConfig
from audiogan.errors import ConfigError
from audiogan.models.specgan import SpectrogramCodec
from audiogan.runs import RunFolder
from audiogan.training import distributed, losses

SPECTROGRAM_MOMENTS = "spectrogram_moments.npz"  # SpecGAN's per-bin moments, stored with the run
CLASSES = "classes.json"  # a conditional run's class names, in the order of the label indices
PREVIEW_STREAM = 0x5EED  # the fixed preview latents come from fold_in(key(seed), PREVIEW_STREAM)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


@struct.dataclass
class TrainState:
    g_params: nnx.State
    d_params: nnx.State
    g_opt: optax.OptState
    d_opt: optax.OptState
    g_ema: nnx.State | dict  # moving average of g_params when ema_decay > 0, else empty
    step: jax.Array  # int32 scalar: generator updates done
    key: jax.Array  # uint32[2]: the run's base key

    @property
    def sampling_params(self) -> nnx.State:
        """The generator weights to sample with: the moving average when it is kept."""
        return self.g_ema if jax.tree.leaves(self.g_ema) else self.g_params


@dataclasses.dataclass(frozen=True)
class GAN:
    """The static half of a run: graph definitions, optimisers, objective, sharding."""

    config: RunConfig
    g_def: nnx.GraphDef
    d_def: nnx.GraphDef
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    loss: losses.GANLoss
    mesh: Mesh
    codec: SpectrogramCodec | None = None  # SpecGAN: clips <-> normalised spectrograms
    classes: tuple[str, ...] = ()  # conditional runs: the class names, by label index

    @property
    def conditional(self) -> bool:
        return self.config.conditional

    def class_labels(self, n: int, classes=None) -> np.ndarray | None:
        """Label indices for ``n`` generated clips: ``classes`` (names or indices, one per clip, or one
        for all) or, by default, every class in turn; None for an unconditional run."""
        if not self.conditional:
            if classes is not None:
                raise ConfigError("classes= applies to a run trained with conditional=True; this run is not.")
            return None
        if classes is None:
            return np.arange(n, dtype=np.int32) % len(self.classes)
        wanted = [classes] * n if isinstance(classes, str | int | np.integer) else list(classes)
        if len(wanted) != n:
            raise ConfigError(f"classes= gives {len(wanted)} classes for {n} clips; give one, or one per clip.")
        out = []
        for c in wanted:
            if isinstance(c, str) and c in self.classes:
                out.append(self.classes.index(c))
            elif isinstance(c, int | np.integer) and not isinstance(c, bool) and 0 <= c < len(self.classes):
                out.append(int(c))
            elif str(c) in self.classes:  # e.g. the digit 7 given as a number
                out.append(self.classes.index(str(c)))
            else:
                raise ConfigError(
                    f"class {c!r} is not one of this run's classes: {', '.join(self.classes)}."
                )
        return np.asarray(out, np.int32)

    def to_audio(self, x: np.ndarray) -> np.ndarray:
        """Generator output as clips (SpecGAN's spectrograms through Griffin-Lim)."""
        x = np.asarray(x)
        if self.codec is None:
            return x
        return self.codec.decode(x, n_iter=self.config.griffin_lim_iters)

    def generator(self, state: TrainState) -> nnx.Module:
        return nnx.merge(self.g_def, state.g_params)

    def discriminator(self, state: TrainState) -> nnx.Module:
        return nnx.merge(self.d_def, state.d_params)

    @property
    def data_sharding(self) -> NamedSharding:
        """Batches (n_critic, batch, time) are split over the mesh's devices along batch."""
        return NamedSharding(self.mesh, PartitionSpec(None, "data"))

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec())


def create(
    config: RunConfig, codec: SpectrogramCodec | None = None, classes: tuple[str, ...] = (),
) -> tuple[GAN, TrainState]:
    """Both networks, both optimisers and the key of a fresh run, placed on all devices; a conditional
    run's networks are conditioned on ``classes``. The state is made by one compiled call rather than
    eagerly, where each initialiser would compile and keep an executable of its own."""
    if config.conditional and len(classes) < 2:
        raise ConfigError(
            f"conditional=True needs the dataset's classes (at least 2), got {len(classes)}; "
            "train() reads them from the dataset."
        )
    classes = tuple(classes) if config.conditional else ()
    n_classes = len(classes)
    g_def, d_def = (
        nnx.split(m, nnx.Param)[0] for m in nnx.eval_shape(lambda: models.build(config, n_classes=n_classes))
    )
    g_tx = optax.adam(config.lr, b1=config.beta1, b2=config.beta2)
    d_tx = optax.adam(config.lr, b1=config.beta1, b2=config.beta2)
    devices = jax.devices()
    if config.batch_size % len(devices):
        raise ConfigError(
            f"batch_size={config.batch_size} must be a multiple of the {len(devices)} devices "
            "it is split over."
        )
    mesh = Mesh(np.asarray(devices), ("data",))
    gan = GAN(config, g_def, d_def, g_tx, d_tx, losses.get(config.loss), mesh, codec, classes)

    def initial_state() -> TrainState:
        g_params, d_params = (nnx.split(m, nnx.Param)[1] for m in models.build(config, n_classes=n_classes))
        return TrainState(
            g_params=g_params, d_params=d_params,
            g_opt=g_tx.init(g_params), d_opt=d_tx.init(d_params),
            g_ema=jax.tree.map(jnp.copy, g_params) if config.ema_decay > 0 else {},
            step=jnp.zeros((), jnp.int32), key=jax.random.PRNGKey(config.seed),
        )

    return gan, distributed.replicate(jax.jit(initial_state)(), gan.replicated)


def preview_latents(config: RunConfig, n: int | None = None) -> jax.Array:
    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), PREVIEW_STREAM)
    return models.sample_latent(config, key, config.n_previews if n is None else n)


def clip_titles(gan: GAN, n: int, prefix: str = "sample ") -> list[str]:
    """``sample 0``, ``sample 1``, ... for ``n`` clips made with the default classes (every class in
    turn), each with the class asked for when the run is conditional."""
    labels = gan.class_labels(n)
    return [f"{prefix}{i}" if labels is None else f"{prefix}{i}: {gan.classes[labels[i]]}" for i in range(n)]


def preview_titles(gan: GAN, step: int | None = None) -> list[str]:
    """``z0``, ``z1``, ... for the fixed preview latents, with the class asked for when conditional."""
    titles = clip_titles(gan, gan.config.n_previews, prefix="z")
    return titles if step is None else [f"step {step}, {t}" for t in titles]


def stored_classes(run: RunFolder) -> tuple[str, ...]:
    """The class names a conditional run folder was trained on."""
    if not (run.path / CLASSES).is_file():
        raise ConfigError(f"{run.path} is a conditional run without {CLASSES}: it was never trained.")
    return tuple(run.read_json(CLASSES))


def create_for_run(run: RunFolder) -> tuple[GAN, TrainState]:
    """A fresh state shaped like the run folder's, to restore a checkpoint into: its config, with
    SpecGAN's stored moments and a conditional run's stored classes."""
    config = run.config()
    moments = run.path / SPECTROGRAM_MOMENTS
    classes = stored_classes(run) if config.conditional else ()
    return create(config, SpectrogramCodec.load(moments) if moments.is_file() else None, classes)
