"""The jit-compiled training step and ``generate``, as pure functions over the split state.

``step(state, real_cbt[, labels_cb]) -> (state, metrics)`` (``nnx.merge`` inside, the state donated)
makes ``n_critic`` discriminator updates, in a loop that carries the state, then one generator update.
Per-step keys are ``fold_in(key, step)``, so a resumed run continues exactly. A conditional run's
critic sees the real clips' classes and fakes of the same classes; its generator update asks for
classes drawn uniformly.

Lazy R1 (``r1_every`` k > 1): the penalty and its second derivative are computed only on steps
divisible by k, charged k times over; the ``r1`` metric is the penalty as charged (k x R1 on those
steps, 0 on the others), so a ``metrics.csv`` row, the mean over ``log_every`` steps, is the mean R1
of the steps that computed it when k divides ``log_every`` (and jitters around it when it does not).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from audiogan import models
from audiogan.config import RunConfig
from audiogan.errors import ConfigError
from audiogan.models import conv
from audiogan.training import losses, precision
from audiogan.training.optimiser import optimiser_update
from audiogan.training.state import GAN, TrainState


def compiler_options(config: RunConfig) -> dict[str, str | bool]:
    """XLA's compiler options for a run's step and ``generate`` (:func:`audiogan.xla.compiler_options`),
    with the elemental fusion emitters where the model family asks for them (``ELEMENTAL_FUSIONS``)."""
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

    def r1_charged(critic, real_bt, step):  # R1 as charged this step; lazily, k x R1 every k-th step
        every = cfg.r1_every
        if every == 1:
            return losses.r1_penalty(critic, real_bt)

        def charged():
            return every * losses.r1_penalty(critic, real_bt)

        off = jax.eval_shape(charged)
        # cond, not where: the off steps run only the zeros branch, not the second derivative
        return jax.lax.cond(step % every == 0, charged, lambda: jnp.zeros(off.shape, off.dtype))

    def d_loss_fn(d_params, g_params, real_bt, labels_b, z_bd, key, step):
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
            aux["r1"] = r1_charged(lambda x: d(x, key=k_r1), real_bt, step)
            loss = loss + 0.5 * cfg.r1_weight * aux["r1"]
        return loss, aux

    def g_loss_fn(g_params, d_params, labels_b, z_bd, key):
        g, d = (told(net, labels_b) for net in networks(g_params, d_params))
        return objective.g_loss(d(g(z_bd), key=key))

    def d_update(state: TrainState, real_bt, labels_b, key):
        k_z, k_drop = jax.random.split(key)
        z_bd = models.sample_latent(cfg, k_z, real_bt.shape[0])
        (loss, aux), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
            state.d_params, state.g_params, real_bt, labels_b, z_bd, k_drop, state.step
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
        step's memory does not grow with n_critic (unrolled, every update got fresh buffers)."""
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
