"""Vocoder losses against values worked out by hand on two tiny discriminators."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiogan.audio.mel import MelSettings
from audiogan.training import vocoder_losses as vl

# Two discriminators with differently shaped outputs, as HiFi-GAN's period and scale ones have.
REAL = [jnp.array([1.0, 0.0]), jnp.array([[0.5]])]
FAKE = [jnp.array([0.0, 1.0]), jnp.array([[-0.5, -1.5]])]


def test_lsgan_d_loss_sums_the_per_discriminator_means():
    # D1: mean(0, 1) + mean(0, 1) = 1.0; D2: 0.25 + mean(0.25, 2.25) = 1.5.
    assert float(vl.lsgan_d_loss(REAL, FAKE)) == pytest.approx(2.5)


def test_lsgan_g_loss_pulls_fake_scores_to_one():
    # D1: mean(1, 0) = 0.5; D2: mean(2.25, 6.25) = 4.25.
    assert float(vl.lsgan_g_loss(FAKE)) == pytest.approx(4.75)
    assert float(vl.lsgan_g_loss([jnp.ones(3), jnp.ones((2, 2))])) == 0.0


def test_hinge_d_loss_ignores_scores_beyond_the_margin():
    # D1: mean(0, 1) + mean(1, 2) = 2.0; D2: 0.5 + mean(0.5, 0) = 0.75.
    assert float(vl.hinge_d_loss(REAL, FAKE)) == pytest.approx(2.75)
    assert float(vl.hinge_d_loss([jnp.full(2, 3.0)], [jnp.full(2, -3.0)])) == 0.0


def test_hinge_g_loss_is_minus_the_mean_fake_score():
    # D1: -0.5; D2: +1.0.
    assert float(vl.hinge_g_loss(FAKE)) == pytest.approx(0.5)


def test_feature_matching_sums_layer_means_of_absolute_differences():
    fmaps_real = [[jnp.array([1.0, 2.0]), jnp.zeros((2, 2))], [jnp.array([3.0])]]
    fmaps_fake = [[jnp.array([1.0, 4.0]), jnp.array([[1.0, -1.0], [2.0, 0.0]])], [jnp.array([0.0])]]
    # D1: mean(0, 2) + mean(1, 1, 2, 0) = 2.0; D2: 3.0.
    assert float(vl.feature_matching_loss(fmaps_real, fmaps_fake)) == pytest.approx(5.0)
    grad_real, grad_fake = jax.jit(jax.grad(vl.feature_matching_loss, argnums=(0, 1)))(fmaps_real, fmaps_fake)
    assert all(float(jnp.abs(g).sum()) == 0 for layers in grad_real for g in layers)
    # d/df mean|r - f| = sign(f - r) / size, away from r == f where abs has no derivative.
    assert float(grad_fake[0][0][1]) == 0.5 and float(grad_fake[1][0][0]) == -1.0


def test_mel_l1_of_a_doubled_clip_is_log_two():
    settings = MelSettings.hifigan(8000)
    t = np.arange(4 * settings.hop) / 8000
    wav_bt = jnp.asarray(0.4 * np.sin(2 * np.pi * np.outer([300.0, 1100.0], t)) + 0.05, jnp.float32)
    loss = jax.jit(vl.mel_l1, static_argnums=2)(wav_bt, 2 * wav_bt, settings)
    assert float(loss) == pytest.approx(np.log(2.0), abs=1e-4)
    assert float(jax.jit(vl.mel_l1, static_argnums=2)(wav_bt, wav_bt, settings)) == 0.0
    grad_bt = jax.jit(jax.grad(lambda fake: vl.mel_l1(wav_bt, fake, settings)))(0.5 * wav_bt)
    assert np.all(np.isfinite(grad_bt)) and float(jnp.abs(grad_bt).max()) > 0


def test_losses_jit_over_lists():
    assert float(jax.jit(vl.lsgan_d_loss)(REAL, FAKE)) == pytest.approx(2.5)
    assert float(jax.jit(vl.hinge_g_loss)(FAKE)) == pytest.approx(0.5)


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="real_outputs"):
        vl.lsgan_d_loss(jnp.zeros((2, 3)), FAKE)
    with pytest.raises(ValueError, match="fake_outputs"):
        vl.hinge_d_loss(REAL, FAKE[:1])
    with pytest.raises(ValueError, match="fake_outputs"):
        vl.lsgan_g_loss([])
    with pytest.raises(ValueError, match=r"fmaps_fake\[0\]\[1\]"):
        vl.feature_matching_loss([[jnp.zeros(2), jnp.zeros(3)]], [[jnp.zeros(2), jnp.zeros(4)]])
    with pytest.raises(ValueError, match=r"fmaps_fake\[0\]"):
        vl.feature_matching_loss([[jnp.zeros(2), jnp.zeros(3)]], [[jnp.zeros(2)]])
    with pytest.raises(ValueError, match="wav_fake_bt"):
        vl.mel_l1(jnp.zeros((1, 256)), jnp.zeros((1, 384)), MelSettings.hifigan(8000))
