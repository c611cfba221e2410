"""Models: the fully connected GAN's shapes, parameter counts, dropout and gradient flow."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from audiogan import models
from audiogan.config import RunConfig
from audiogan.models import count_params, mlp

LATENT, CLIP, BATCH = 8, 64, 3


@pytest.fixture
def nets():
    return mlp.Generator(LATENT, CLIP, rngs=nnx.Rngs(0)), mlp.Discriminator(CLIP, rngs=nnx.Rngs(1))


def test_shapes_and_tanh_range(nets):
    g, d = nets
    z_bd = mlp.sample_latent(jax.random.key(0), BATCH, LATENT)
    assert z_bd.shape == (BATCH, LATENT) and z_bd.dtype == jnp.float32
    wav_bt = g(z_bd)
    assert wav_bt.shape == (BATCH, CLIP)
    assert wav_bt.dtype == jnp.float32
    logits_b = d(wav_bt)
    assert logits_b.shape == (BATCH,)
    # Huge latents saturate the output layer: still within [-1, 1], and reaching its edges.
    loud_bt = np.asarray(g(z_bd * 1e4))
    assert np.all(np.abs(loud_bt) <= 1.0)
    assert np.abs(loud_bt).max() > 0.99


def test_build_and_sample_latent_follow_the_config():
    config = RunConfig(latent_dim=LATENT, clip_samples=CLIP, seed=2)
    g, d = models.build(config)
    z_bd = models.sample_latent(config, jax.random.key(1), 5)
    assert z_bd.shape == (5, LATENT)
    assert d(g(z_bd)).shape == (5,)
    g2, _ = models.build(config)
    np.testing.assert_array_equal(g(z_bd), g2(z_bd))  # the seed fixes the initialisation
    g3, _ = models.build(config, seed=3)
    assert not np.array_equal(g(z_bd), g3(z_bd))


def test_parameter_counts_of_the_classic_recipe():
    g = nnx.eval_shape(lambda: mlp.Generator(100, 16384, rngs=nnx.Rngs(0)))
    d = nnx.eval_shape(lambda: mlp.Discriminator(16384, rngs=nnx.Rngs(0)))
    assert count_params(g) == 17_476_352
    assert count_params(d) == 17_434_625


def test_parameter_count_of_a_tiny_model(nets):
    g, d = nets
    widths_g = (LATENT, 256, 512, 1024, CLIP)
    widths_d = (CLIP, 1024, 512, 256, 1)
    dense = sum(a * b + b for a, b in zip(widths_g[:-1], widths_g[1:], strict=True))
    assert count_params(g) == dense
    assert count_params(d) == sum(a * b + b for a, b in zip(widths_d[:-1], widths_d[1:], strict=True))


def test_dropout_only_with_a_key(nets):
    _, d = nets
    wav_bt = jax.random.uniform(jax.random.key(3), (BATCH, CLIP), minval=-1, maxval=1)
    plain = d(wav_bt)
    np.testing.assert_array_equal(plain, d(wav_bt))  # deterministic without a key
    a = d(wav_bt, key=jax.random.key(1))
    np.testing.assert_array_equal(a, d(wav_bt, key=jax.random.key(1)))  # same key, same mask
    b = d(wav_bt, key=jax.random.key(2))
    assert not np.allclose(a, b)
    assert not np.allclose(a, plain)


def test_gradients_reach_every_parameter(nets):
    g, d = nets
    g_def, g_params = nnx.split(g, nnx.Param)
    d_def, d_params = nnx.split(d, nnx.Param)
    z_bd = mlp.sample_latent(jax.random.key(0), BATCH, LATENT)

    def d_of_g(g_params, d_params):
        return jnp.mean(nnx.merge(d_def, d_params)(nnx.merge(g_def, g_params)(z_bd)))

    g_grads, d_grads = jax.grad(d_of_g, argnums=(0, 1))(g_params, d_params)
    leaves = jax.tree.leaves(g_grads) + jax.tree.leaves(d_grads)
    assert len(leaves) == 2 * 4 + 2 * 4  # kernel and bias of four layers in each network
    for leaf in leaves:
        assert np.all(np.isfinite(leaf))
        assert np.any(np.asarray(leaf) != 0)
