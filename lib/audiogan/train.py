"""Training: the state, the compiled step and the loop that logs, previews, checkpoints, resumes.

The step is a pure function ``step(state, real_cbt[, labels_cb]) -> (state, metrics)`` over the split state
(``nnx.split`` outside, ``nnx.merge`` inside), compiled once with ``jax.jit`` and the state donated.
It makes ``n_critic`` discriminator updates, in a loop that carries the state, then one generator
update. Per-step keys are ``fold_in(key, step)``, and the batch for a step is fixed by the seed,
so a resumed run continues exactly as an uninterrupted one would.

A run with ``conditional=True`` trains on the dataset's classes (``classes.json`` in the run folder):
each batch carries the class of every real clip, the critic's fakes are asked for the same classes,
the generator's update for classes drawn uniformly, and generating takes the classes wanted.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from audiogan import data as data_lib
from audiogan import distributed, losses, models, plots, precision
from audiogan.audio import write_wav
from audiogan.config import ConfigError, RunConfig
from audiogan.models import conv
from audiogan.models.specgan import SpectrogramCodec
from audiogan.runs import METRIC_COLUMNS, RunFolder

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
    run's networks are conditioned on ``classes``.

    The state is made by one compiled call. Built eagerly, each initialiser's operation compiled and
    cached an executable of its own: about 50 MiB more at creation (WaveGAN d=16; some 10 MiB of it still
    there once the step is compiled) and 2.5 s instead of 1.8 (d=64). The values are the same bits.
    """
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


# ---------------------------------------------------------------------------- the step
def optimiser_update(tx: optax.GradientTransformation, grads, opt_state, params):
    """``(new params, new optimiser state)`` of one ``tx`` update, written so that XLA updates every
    weight and every moment in its own (donated) buffer instead of copying it first.

    XLA overwrites a donated buffer only once it can prove that everything reading the old value has run;
    where it cannot, it copies the old value first. Two such cases, as many bytes as the weights each:
    - Adam's new first moment, ``b1 * mu + (1 - b1) * g``, is cheap, so XLA computes it again inside the
      fusion that writes the new weights. Both fusions read the old moment and nothing orders them, so
      XLA copied every first moment (139 MiB in a WaveGAN d=64 step). Here each new moment also reads the
      new weights, times zero: the moment's write comes after the weights'.
    - A layer's weights are read by operations that feed only the other layers' gradients: the gradient
      penalty's second derivative applies SpecGAN's kernels to tangents. Nothing orders those reads
      before the layer's own update, so XLA copied SpecGAN's weights (133 MiB at d=64). Here every
      gradient also reads one element of every other, times zero: each update comes after all gradients.
    Both ties add zero (``x + 0 * y == x`` for every finite ``y``; a gradient or weight that is not finite
    means a diverged run, which the training loop stops), so the values are optax's, but for the last bit
    where XLA fuses the arithmetic differently."""
    every_gradient = sum(jnp.ravel(g)[:1].sum() for g in jax.tree.leaves(grads)) * 0
    grads = jax.tree.map(lambda g: g + every_gradient.astype(g.dtype), grads)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    shape = jax.tree.structure(params)

    def like_params(x) -> bool:
        return jax.tree.structure(x) == shape and all(
            jnp.shape(a) == jnp.shape(p) for a, p in zip(jax.tree.leaves(x), jax.tree.leaves(params), strict=True)
        )

    def after_params(x):
        return jax.tree.map(lambda m, p: m + (p * 0).astype(m.dtype), x, params) if like_params(x) else x

    return params, jax.tree.map(after_params, opt_state, is_leaf=like_params)


def compiler_options(config: RunConfig) -> dict[str, str | bool]:
    """XLA's compiler options for a run's training step and ``generate``: :func:`audiogan.models.conv.compiler_options`
    (on CPU: Eigen's convolutions and the memory-optimised instruction order), with XLA:CPU's elemental fusion
    emitters where the model family asks for them (``ELEMENTAL_FUSIONS``: WaveGAN and SpecGAN, whose steps'
    hundreds of fused loops cost tens of MiB of resident memory when the MLIR emitters compile them;
    :func:`audiogan.xla_flags.compiler_options`)."""
    return conv.compiler_options(elemental_fusions=models.family(config.model).ELEMENTAL_FUSIONS)


def make_step(
    gan: GAN, unroll_critic: bool = False, options: dict[str, str | bool] | None = None
) -> Callable[..., tuple[TrainState, dict]]:
    """The jit-compiled training step of ``gan``: n_critic D updates, then one G update.

    ``step(state, real_cbt, labels_cb=None)``: ``labels_cb`` (n_critic, batch) are the real clips'
    class indices, needed by a conditional run and refused by an unconditional one.

    ``unroll_critic`` writes the critic updates out one after the other instead of as a loop: the same
    numbers, more memory; for :func:`step_flops`, whose cost analysis counts a loop's body once.
    ``options`` are XLA's compiler options, by default :func:`compiler_options` of the run's config."""
    cfg, objective = gan.config, gan.loss

    def networks(g_params, d_params):  # float32 weights; the forward passes in cfg.precision
        g = nnx.merge(gan.g_def, precision.cast_params(g_params, cfg.precision))
        d = nnx.merge(gan.d_def, precision.cast_params(d_params, cfg.precision))
        return precision.wrap(g, cfg.precision), precision.wrap(d, cfg.precision)

    def told(net, labels_b):  # a conditional network with the classes bound, or the network itself
        return net if labels_b is None else lambda x, **kw: net(x, labels=labels_b, **kw)

    def d_loss_fn(d_params, g_params, real_bt, labels_b, z_bd, key):
        g, d = (told(net, labels_b) for net in networks(g_params, d_params))
        fake_bt = jax.lax.stop_gradient(g(z_bd))
        k_real, k_fake, k_gp, k_mix, k_r1 = jax.random.split(key, 5)
        real_logits, fake_logits = d(real_bt, key=k_real), d(fake_bt, key=k_fake)
        loss = objective.d_loss(real_logits, fake_logits, cfg.label_smoothing)
        aux = {"d_real": objective.score(real_logits).mean(), "d_fake": objective.score(fake_logits).mean()}
        if cfg.loss == "wgan-gp":
            aux["wasserstein"] = real_logits.mean() - fake_logits.mean()
        if cfg.gp_weight > 0:
            aux["gp"] = losses.gradient_penalty(lambda x: d(x, key=k_gp), real_bt, fake_bt, k_mix)
            loss = loss + cfg.gp_weight * aux["gp"]
        if cfg.r1_weight > 0:
            aux["r1"] = losses.r1_penalty(lambda x: d(x, key=k_r1), real_bt)
            loss = loss + 0.5 * cfg.r1_weight * aux["r1"]
        return loss, aux

    def g_loss_fn(g_params, d_params, labels_b, z_bd, key):
        g, d = (told(net, labels_b) for net in networks(g_params, d_params))
        return objective.g_loss(d(g(z_bd), key=key))

    def d_update(state: TrainState, real_bt, labels_b, key):
        k_z, k_drop = jax.random.split(key)
        z_bd = models.sample_latent(cfg, k_z, real_bt.shape[0])
        (loss, aux), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
            state.d_params, state.g_params, real_bt, labels_b, z_bd, k_drop
        )
        d_params, d_opt = optimiser_update(gan.d_tx, grads, state.d_opt, state.d_params)
        state = state.replace(d_params=d_params, d_opt=d_opt)
        return state, {"d_loss": loss} | aux

    def g_update(state: TrainState, batch_size, key):
        k_z, k_drop = jax.random.split(key)
        z_bd = models.sample_latent(cfg, k_z, batch_size)
        labels_b = None  # a conditional generator is asked for classes drawn uniformly
        if gan.conditional:
            labels_b = jax.random.randint(jax.random.fold_in(key, 1), (batch_size,), 0, len(gan.classes))
        loss, grads = jax.value_and_grad(g_loss_fn)(state.g_params, state.d_params, labels_b, z_bd, k_drop)
        g_params, g_opt = optimiser_update(gan.g_tx, grads, state.g_opt, state.g_params)
        g_ema = state.g_ema
        if cfg.ema_decay > 0:
            g_ema = optax.incremental_update(g_params, g_ema, step_size=1.0 - cfg.ema_decay)
        state = state.replace(g_params=g_params, g_opt=g_opt, g_ema=g_ema)
        return state, {"g_loss": loss}

    def critic_updates(state: TrainState, real_cbt: jax.Array, labels_cb: jax.Array | None, key: jax.Array):
        """The n_critic D updates, as a loop that carries the state: XLA then updates it in place, so the
        step's memory does not grow with n_critic. Unrolled, XLA gave every update fresh buffers for D's
        weights and moments (WaveGAN d=16, batch 16: 229 MiB of temporaries at 5:1 against 108 here),
        took 2.6x longer to compile, and ran no faster."""
        def labels(i):
            return None if labels_cb is None else labels_cb[i]

        if cfg.n_critic == 1:
            return d_update(state, real_cbt[0], labels(0), jax.random.fold_in(key, 0))

        def body(i, carry):
            return d_update(carry[0], real_cbt[i], labels(i), jax.random.fold_in(key, i))

        shapes = jax.eval_shape(lambda s: d_update(s, real_cbt[0], labels(0), key)[1], state)
        no_metrics = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)
        return jax.lax.fori_loop(0, cfg.n_critic, body, (state, no_metrics), unroll=unroll_critic)

    def step(state: TrainState, real_cbt: jax.Array, labels_cb: jax.Array | None = None):
        if gan.conditional and labels_cb is None:
            raise ConfigError("this run is conditional: the step needs the real clips' classes (labels_cb).")
        if not gan.conditional and labels_cb is not None:
            raise ConfigError("labels_cb was given to the step of a run that is not conditional.")
        key = jax.random.fold_in(state.key, state.step)
        state, metrics = critic_updates(state, real_cbt, labels_cb, key)
        state, g_metrics = g_update(state, real_cbt.shape[1], jax.random.fold_in(key, cfg.n_critic))
        return state.replace(step=state.step + 1), metrics | g_metrics

    return conv.jit(step, options=compiler_options(cfg) if options is None else options, donate_argnums=0)


def step_flops(gan: GAN, state: TrainState, real_cbt: jax.Array, labels_cb: jax.Array | None = None) -> float | None:
    """Floating-point operations of one training step by XLA's cost analysis (of the step as lowered,
    before XLA's optimisations), every critic update counted: the analysis counts a loop's body once."""
    cost = make_step(gan, unroll_critic=True).lower(state, real_cbt, labels_cb).cost_analysis()
    cost = cost[0] if isinstance(cost, list | tuple) else cost
    return float(cost["flops"]) if cost and "flops" in cost else None


def make_generate(gan: GAN) -> Callable[..., jax.Array]:
    """Compiled ``generate(g_params, z_bd, labels_b=None) -> generator output`` (clips, or SpecGAN's
    spectrograms); ``labels_b`` are the classes a conditional generator is asked for."""

    def generate(g_params, z_bd, labels_b=None):
        g = nnx.merge(gan.g_def, g_params)
        return g(z_bd) if labels_b is None else g(z_bd, labels=labels_b)

    return conv.jit(generate, options=compiler_options(gan.config))


_COMPILED: dict[tuple, tuple[Callable, Callable]] = {}


def compiled(gan: GAN) -> tuple[Callable, Callable]:
    """The step and generate functions of ``gan``'s recipe, made once per recipe in a process, so
    running a notebook cell again, resuming, or training a second run with the same settings
    reuses the compiled code instead of compiling again."""
    recipe = tuple(
        (k, v) for k, v in sorted(gan.config.to_dict().items()) if k not in RunConfig.RESUMABLE_CHANGES
    ) + (("classes", gan.classes),)
    if recipe not in _COMPILED:
        _COMPILED[recipe] = (make_step(gan), make_generate(gan))
    return _COMPILED[recipe]


def summary(config: RunConfig, dataset: data_lib.Dataset | None = None) -> dict[str, int]:
    """Parameter counts of both networks of ``config``. A conditional run's networks depend on its
    number of classes: they come from ``dataset``, or, when it is None, from the run folder."""
    n_classes = 0
    if config.conditional:
        if dataset is not None:
            n_classes = len(data_lib.class_indices(dataset.subset("train"))[0])
        else:
            run = RunFolder(config.run_dir)
            try:
                n_classes = len(stored_classes(run))
            finally:
                run.close()
    return models.summary(config, n_classes)


def preview_latents(config: RunConfig, n: int | None = None) -> jax.Array:
    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), PREVIEW_STREAM)
    return models.sample_latent(config, key, config.n_previews if n is None else n)


# ---------------------------------------------------------------------------- the loop
@dataclasses.dataclass
class TrainResult:
    gan: GAN
    state: TrainState
    history: dict[str, list[float]]  # metrics.csv as columns
    resumed_from: int | None
    loaded: bool = False  # True: the run folder already held the finished run; nothing was trained


def _mean_metrics(pending: list[dict]) -> dict[str, float]:
    """Means over the steps since the last log, in the column order of ``metrics.csv``."""
    fetched = jax.device_get(pending)
    names = [c for c in METRIC_COLUMNS if c in fetched[0]] + sorted(set(fetched[0]) - set(METRIC_COLUMNS))
    return {k: float(np.mean([m[k] for m in fetched])) for k in names}


def prepare_features(config: RunConfig, dataset: data_lib.Dataset, run: RunFolder):
    """What the discriminator sees of the dataset, and the codec that makes it.

    Waveform models train on the clips themselves. SpecGAN trains on normalised spectrograms whose
    per-bin moments are computed once over the training set and stored in the run folder, so a
    resumed run and the notebooks decode with exactly the same moments.
    """
    if config.model != "specgan":
        return dataset.clips, None
    path = run.path / SPECTROGRAM_MOMENTS
    if path.is_file():
        codec = SpectrogramCodec.load(path)
    else:
        codec = SpectrogramCodec.fit(dataset.clips, dataset.sample_rate)
        if distributed.is_main_process():  # every process fits the same moments; one writes them
            codec.save(path)
    return codec.encode(dataset.clips), codec


def prepare_classes(
    config: RunConfig, dataset: data_lib.Dataset, run: RunFolder,
) -> tuple[tuple[str, ...], np.ndarray | None]:
    """A conditional run's class names and each clip's class index (unconditional: ``()``, None).

    The names are stored in the run folder on the first call; a resumed run must find the same ones,
    since its networks were built for them."""
    if not config.conditional:
        return (), None
    classes, index = data_lib.class_indices(dataset)
    path = run.path / CLASSES
    if path.is_file():
        stored = stored_classes(run)
        if stored != classes:
            raise ConfigError(
                f"{config.run_dir} was trained on the classes {', '.join(stored)}, but the dataset now "
                f"has {', '.join(classes)}; use a new run_dir for this dataset."
            )
    elif distributed.is_main_process():
        run.write_json(CLASSES, list(classes))
    return classes, index


def clip_titles(gan: GAN, n: int, prefix: str = "sample ") -> list[str]:
    """``sample 0``, ``sample 1``, ... for ``n`` clips made with the default classes (every class in
    turn), each with the class asked for when the run is conditional."""
    labels = gan.class_labels(n)
    return [f"{prefix}{i}" if labels is None else f"{prefix}{i}: {gan.classes[labels[i]]}" for i in range(n)]


def preview_titles(gan: GAN, step: int | None = None) -> list[str]:
    """``z0``, ``z1``, ... for the fixed preview latents, with the class asked for when conditional."""
    titles = clip_titles(gan, gan.config.n_previews, prefix="z")
    return titles if step is None else [f"step {step}, {t}" for t in titles]


def write_previews(run: RunFolder, gan: GAN, clips: np.ndarray, step: int) -> None:
    sr = gan.config.sample_rate
    folder = run.sample_dir(step)
    for i, clip in enumerate(clips):
        write_wav(folder / f"sample_{i}.wav", clip, sr)
    fig = plots.spectrogram_grid(clips, sr, preview_titles(gan, step))
    plots.save(fig, folder / "spectrograms.png")


def train(
    config: RunConfig,
    dataset: data_lib.Dataset | None = None,
    *,
    progress: bool = True,
    on_log: Callable[[dict[str, float]], None] | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    """Train ``config`` into its run folder, resuming from the latest checkpoint there.

    Every ``log_every`` steps a row of ``metrics.csv`` (means over the interval) is written and
    passed to ``on_log``; every ``preview_every`` steps fixed-latent previews go to ``samples/``;
    every ``checkpoint_every`` steps and at the end an orbax checkpoint is saved. ``stop_after``
    ends this call after that many steps (the run can be continued later), e.g. for a workshop.
    """
    from tqdm.auto import tqdm

    if is_finished(config):  # a class opens the notebook and sees the result at once
        gan, state = restore(config.run_dir)
        run = RunFolder(config.run_dir)
        return TrainResult(gan, state, run.read_metrics(), int(state.step), loaded=True)
    run = RunFolder(config.run_dir)
    main = distributed.is_main_process()  # across processes only process 0 writes the files
    if main:
        run.write_config(config)
    dataset = data_lib.load_dataset(config) if dataset is None else dataset
    dataset = dataset.subset("train")  # datasets with splits (digits) train on the training split only
    if dataset.clip_samples != config.clip_samples:
        raise ConfigError(
            f"the dataset's clips have {dataset.clip_samples} samples but clip_samples="
            f"{config.clip_samples}; build the dataset with the run's config."
        )
    if main:
        run.write_json("dataset.json", {
            "name": dataset.name, "clips": len(dataset), "sample_rate": dataset.sample_rate,
            "clip_samples": dataset.clip_samples, "labels": sorted(dataset.labels),
            "info": {k: v for k, v in dataset.info.items() if k != "files"},
        })
    features, codec = prepare_features(config, dataset, run)
    classes, class_index = prepare_classes(config, dataset, run)
    gan, state = create(config, codec, classes)
    resumed_from = run.latest_step()
    time_offset = 0.0
    if resumed_from is not None:
        state = run.restore_checkpoint(state, resumed_from)
        if main:
            run.truncate_metrics(resumed_from)
        times = run.read_metrics().get("time_s", [])
        time_offset = times[-1] if times else 0.0
    start = int(state.step)
    end = config.steps if stop_after is None else min(config.steps, start + stop_after)

    step_fn, generate = compiled(gan)
    z_preview = distributed.replicate(preview_latents(config), gan.replicated)
    preview_labels = gan.class_labels(config.n_previews)
    batches = data_lib.Batches(features, config.batch_size, config.seed)
    n_critic = config.n_critic

    # Each process loads only the rows of the global batch that its devices hold (all of them
    # when there is one process) and JAX assembles the global, batch-sharded array.
    global_shape = (n_critic, config.batch_size) + features.shape[1:]
    rows = distributed.local_rows(gan.data_sharding, global_shape, axis=1)

    def real_batch(step: int) -> tuple[jax.Array, ...]:
        """The step's real clips (and, conditional, their classes) as the step's arguments."""
        index_cb = np.stack([batches.indices(step * n_critic + i)[rows] for i in range(n_critic)])
        cbt = jax.make_array_from_process_local_data(gan.data_sharding, features[index_cb], global_shape)
        if class_index is None:
            return (cbt,)
        return cbt, jax.make_array_from_process_local_data(
            gan.data_sharding, class_index[index_cb], global_shape[:2]
        )

    def is_checkpoint(s):  # also where this call stops early, so no finished step is lost
        return s % config.checkpoint_every == 0 or s == end

    scorer = None
    if config.eval_every:  # the classifier is trained (or loaded) before the clock starts
        from audiogan.evaluate import TrainingScorer

        # The reference needs the whole dataset (its test split too), not the training subset.
        scorer = TrainingScorer(config, None if "split" in dataset.labels else dataset, run)
    pending: list[dict] = []
    t0 = time.perf_counter()
    next_real = real_batch(start) if start < end else None
    bar = tqdm(total=end, initial=start, desc=f"training {config.model}", disable=not progress,
               unit="step")
    try:
        for step in range(start, end):
            state, metrics = step_fn(state, *next_real)
            pending.append(metrics)
            s = step + 1
            if s < end:
                next_real = real_batch(s)  # prepared while the step runs
            best = False
            if s % config.log_every == 0 or is_checkpoint(s) or (scorer and scorer.due(s)):
                row = {"step": s, "time_s": time_offset + time.perf_counter() - t0}
                row |= _mean_metrics(pending)
                pending = []
                bad = [k for k, v in row.items() if not math.isfinite(v)]
                if scorer:  # eval columns are NaN on rows between evaluations
                    evaluated, best = scorer.row(s, gan, state)
                    row |= evaluated
                if bad:
                    run.wait()
                    last = run.latest_step()
                    where = f"step {last} in {run.checkpoint_dir}" if last else "none was saved yet"
                    raise TrainingDiverged(
                        f"{', '.join(bad)} became NaN or infinite by step {s} of run "
                        f"{config.run_dir}; training stopped. The last good checkpoint is {where}. "
                        "Lower lr, check the data for NaN, or change the loss."
                    )
                if main:
                    run.append_metrics([row])
                bar.set_postfix(d_loss=f"{row['d_loss']:.3f}", g_loss=f"{row['g_loss']:.3f}")
                if on_log is not None:
                    on_log(row)
            if s % config.preview_every == 0 or s == config.steps:
                out = generate(state.sampling_params, z_preview, preview_labels)  # every process runs it
                if main:
                    write_previews(run, gan, gan.to_audio(out), s)
            if is_checkpoint(s):
                run.save_checkpoint(s, state)
            if best:
                run.save_best_checkpoint(s, state)
                scorer.record_best()
            bar.update(1)
    finally:
        bar.close()
        run.close()
    return TrainResult(gan, state, run.read_metrics(), resumed_from)


# ---------------------------------------------------------------------------- reading a run back
def is_finished(config: RunConfig) -> bool:
    """True when ``config.run_dir`` holds a run with the same settings whose latest checkpoint is
    at ``config.steps`` or later: then training is skipped and the run is only loaded."""
    run = RunFolder(config.run_dir)
    try:
        if not run.exists() or config.differences(run.config()):
            return False
        latest = run.latest_step()
        return latest is not None and latest >= config.steps
    finally:
        run.close()


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


def restore(run_dir: str, step: int | None = None) -> tuple[GAN, TrainState]:
    """The networks and optimisers of a run folder at ``step`` (default: the latest checkpoint)."""
    run = RunFolder(run_dir)
    try:
        gan, template = create_for_run(run)
        state = run.restore_checkpoint(template, step)
    finally:
        run.close()
    return gan, state


def preview(gan: GAN, state: TrainState) -> np.ndarray:
    """The generator's clips for the run's fixed preview latents (as in ``samples/``)."""
    n = gan.config.n_previews
    return gan.to_audio(compiled(gan)[1](state.sampling_params, preview_latents(gan.config), gan.class_labels(n)))


def generate(gan: GAN, state: TrainState, n: int, seed: int = 0, classes=None) -> np.ndarray:
    """``n`` clips from the generator of ``state`` with latents drawn from ``seed``.

    A conditional run makes the ``classes`` asked for: one class name (or index) for all clips, or
    one per clip; by default every class in turn (clip ``i`` is class ``i % len(gan.classes)``)."""
    labels = gan.class_labels(n, classes)
    z_bd = models.sample_latent(gan.config, jax.random.PRNGKey(seed), n)
    return gan.to_audio(compiled(gan)[1](state.sampling_params, z_bd, labels))
