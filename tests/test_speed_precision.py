"""Mixed precision (RunConfig.precision) and the lean step: bfloat16 compute, float32 weights and losses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiogan import training
from audiogan.config import ConfigError, RunConfig
from audiogan.training import precision


def test_unknown_precision_is_refused_with_the_choices(tiny_config):
    with pytest.raises(ConfigError, match=r"precision='float16' is unknown; choose one of 'float32', 'bfloat16'"):
        tiny_config.replace(precision="float16")
    assert RunConfig().precision == "float32"


def test_cast_params_and_wrap_keep_float32_outside():
    params = {"w": jnp.ones((2, 3)), "step": jnp.zeros((), jnp.int32)}
    cast = precision.cast_params(params, "bfloat16")
    assert cast["w"].dtype == jnp.bfloat16 and cast["step"].dtype == jnp.int32
    assert precision.cast_params(params, "float32") is params

    def f(x):
        assert x.dtype == jnp.bfloat16  # the network sees bfloat16
        return x * 2

    y = precision.wrap(f, "bfloat16")(jnp.ones(3))
    assert y.dtype == jnp.float32
    grad = jax.grad(lambda x: precision.wrap(f, "bfloat16")(x).sum())(jnp.ones(3))
    assert grad.dtype == jnp.float32 and np.allclose(grad, 2)


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ns", "wgan-gp"])
def test_bfloat16_step_trains_with_float32_weights_and_finite_losses(tiny_config, loss):
    """The classic GAN's cross-entropy, and WGAN-GP with 2 critic steps (the gradient penalty's second
    derivative through bfloat16); WaveGAN's convolutions in bfloat16 are checked in the next test."""
    cfg = tiny_config.replace(precision="bfloat16", loss=loss, n_critic=2 if loss == "wgan-gp" else None)
    gan, state = training.create(cfg)
    before = jax.device_get(state.d_params)
    step = training.make_step(gan)
    real = np.random.default_rng(0).uniform(-0.5, 0.5, (cfg.n_critic, cfg.batch_size, cfg.clip_samples))
    real = jnp.asarray(real, jnp.float32)
    for _ in range(2):
        state, metrics = step(state, real)
    metrics = jax.device_get(metrics)
    assert all(np.isfinite(v) and np.asarray(v).dtype == np.float32 for v in metrics.values())
    assert ("gp" in metrics) == (loss == "wgan-gp")
    for tree in (state.g_params, state.d_params, state.g_opt, state.d_opt):
        floats = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
        assert floats and all(x.dtype == jnp.float32 for x in floats)
    changed = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(state.d_params),
                                                         strict=True)]
    assert any(changed)  # the float32 weights move by updates computed in bfloat16
    assert step._cache_size() == 1


@pytest.mark.slow
def test_bfloat16_step_computes_in_bfloat16(tiny_config):
    """The compiled step really multiplies in bfloat16 (not a float32 step with a new name)."""
    texts = {}
    for p in ("float32", "bfloat16"):
        cfg = tiny_config.replace(precision=p)
        gan, state = training.create(cfg)
        real = jnp.zeros((1, cfg.batch_size, cfg.clip_samples))
        texts[p] = str(jax.make_jaxpr(training.make_step(gan))(state, real))
    assert "bf16" in texts["bfloat16"] and "bf16" not in texts["float32"]


@pytest.mark.parametrize("op", ["conv1d", "conv1d_transpose"])
def test_convolutions_in_bfloat16_stay_close_to_float32(op):
    from audiogan.models import conv

    fn = getattr(conv, op)
    kx, kw = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (2, 64, 8))
    w = jax.random.normal(kw, (25, 8, 8)) * 0.1
    y32 = fn(x, w, 4, form="matmul")
    y16 = fn(x.astype(jnp.bfloat16), w.astype(jnp.bfloat16), 4, form="matmul")
    assert y16.dtype == jnp.bfloat16 and y16.shape == y32.shape
    assert float(jnp.abs(y16.astype(jnp.float32) - y32).max() / jnp.abs(y32).max()) < 2e-2
