"""Losses: each objective on known logits against numpy formulas, signs and scores."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiogan.config import LOSSES as CONFIG_LOSSES
from audiogan.training import losses

REAL = np.array([2.0, -0.5, 1.0, 3.0], dtype=np.float32)
FAKE = np.array([-1.5, 0.25, -3.0, 0.0], dtype=np.float32)


def _sigmoid(x):
    return 1 / (1 + np.exp(-np.asarray(x, np.float64)))


def _bce(logits, target):
    p = _sigmoid(logits)
    return float(np.mean(-(target * np.log(p) + (1 - target) * np.log(1 - p))))


def test_every_configurable_loss_exists():
    assert set(losses.LOSSES) == set(CONFIG_LOSSES)
    for name in CONFIG_LOSSES:
        assert losses.get(name) is losses.LOSSES[name]


def test_bce_with_logits_matches_formula():
    for target in (0.0, 0.9, 1.0):
        assert float(losses.bce_with_logits(jnp.asarray(REAL), target)) == pytest.approx(
            _bce(REAL, target), rel=1e-5)


@pytest.mark.parametrize("smoothing", [0.9, 1.0])
def test_ns_d_loss(smoothing):
    expected = 0.5 * (_bce(REAL, smoothing) + _bce(FAKE, 0.0))
    got = losses.ns_d_loss(jnp.asarray(REAL), jnp.asarray(FAKE), smoothing)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_ns_d_loss_defaults_to_no_smoothing():
    assert float(losses.ns_d_loss(REAL, FAKE)) == pytest.approx(
        0.5 * (_bce(REAL, 1.0) + _bce(FAKE, 0.0)), rel=1e-5)
    assert float(losses.ns_d_loss(REAL, FAKE, 0.9)) > float(losses.ns_d_loss(REAL, FAKE, 1.0))


def test_ns_g_loss_is_non_saturating():
    expected = float(np.mean(-np.log(_sigmoid(FAKE))))
    assert float(losses.ns_g_loss(jnp.asarray(FAKE))) == pytest.approx(expected, rel=1e-5)
    # Where D confidently rejects the fakes the gradient stays large (about -1 per example / B).
    grad = jax.grad(losses.ns_g_loss)(jnp.full((4,), -10.0))
    np.testing.assert_allclose(grad, -0.25, rtol=1e-3)


def test_hinge():
    expected_d = np.mean(np.maximum(0, 1 - REAL)) + np.mean(np.maximum(0, 1 + FAKE))
    assert float(losses.hinge_d_loss(REAL, FAKE)) == pytest.approx(expected_d, rel=1e-6)
    assert float(losses.hinge_d_loss(REAL, FAKE, 0.9)) == pytest.approx(expected_d, rel=1e-6)
    assert float(losses.hinge_g_loss(FAKE)) == pytest.approx(-np.mean(FAKE), rel=1e-6)


@pytest.mark.parametrize("smoothing", [0.9, 1.0])
def test_lsgan(smoothing):
    expected_d = 0.5 * (np.mean((REAL - smoothing) ** 2) + np.mean(FAKE**2))
    assert float(losses.lsgan_d_loss(REAL, FAKE, smoothing)) == pytest.approx(expected_d, rel=1e-5)
    assert float(losses.lsgan_g_loss(FAKE)) == pytest.approx(
        0.5 * np.mean((FAKE - 1) ** 2), rel=1e-6)


@pytest.mark.parametrize("name", CONFIG_LOSSES)
def test_a_right_discriminator_has_lower_loss(name):
    objective = losses.get(name)
    sure = jnp.full((4,), 3.0)
    right = objective.d_loss(sure, -sure, 0.9)
    wrong = objective.d_loss(-sure, sure, 0.9)
    assert float(right) < float(wrong)
    # The generator, in turn, wants fakes the discriminator calls real.
    assert float(objective.g_loss(sure)) < float(objective.g_loss(-sure))


def test_smoothed_real_term_is_minimal_at_d_equal_0_9():
    logits = jnp.linspace(-1.0, 5.0, 6001)  # steps of 1e-3
    per_logit = jax.vmap(lambda x: losses.bce_with_logits(x[None], 0.9))(logits)
    best = float(jax.nn.sigmoid(logits[jnp.argmin(per_logit)]))
    assert best == pytest.approx(0.9, abs=1e-3)
    # Analytically the gradient vanishes at logit log(9), where sigmoid is exactly 0.9.
    grad = jax.grad(lambda x: losses.bce_with_logits(x[None], 0.9))(jnp.log(9.0))
    assert abs(float(grad)) < 1e-6


def test_scores():
    np.testing.assert_allclose(losses.get("ns").score(jnp.asarray(REAL)), _sigmoid(REAL), rtol=1e-6)
    for name in ("hinge", "lsgan"):
        np.testing.assert_array_equal(losses.get(name).score(jnp.asarray(REAL)), REAL)


def test_losses_are_scalars_and_jit():
    for name in CONFIG_LOSSES:
        objective = losses.get(name)
        d = jax.jit(objective.d_loss)(jnp.asarray(REAL), jnp.asarray(FAKE), 0.9)
        g = jax.jit(objective.g_loss)(jnp.asarray(FAKE))
        assert d.shape == () and g.shape == ()


def test_wgan_losses_and_wasserstein_sign():
    d = losses.wgan_d_loss(jnp.asarray(REAL), jnp.asarray(FAKE))
    assert float(d) == pytest.approx(np.mean(FAKE) - np.mean(REAL), rel=1e-6)
    assert float(losses.wgan_g_loss(jnp.asarray(FAKE))) == pytest.approx(-np.mean(FAKE), rel=1e-6)


def _tiny_critic(w, b):
    """A small non-linear critic with a hand-derivable input gradient:
    D(x) = sum_i w_i * tanh(x_i) + b, so dD/dx_i = w_i * (1 - tanh(x_i)^2)."""
    return lambda x: jnp.tanh(x.reshape(x.shape[0], -1)) @ w + b


def test_gradient_penalty_equals_hand_written_reference():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(5, 3, 2)).astype(np.float32), rng.normal(size=(5, 3, 2)).astype(np.float32)
    w, b = rng.normal(size=6).astype(np.float32), np.float32(0.3)
    key = jax.random.PRNGKey(7)
    gp = losses.gradient_penalty(_tiny_critic(jnp.asarray(w), b), jnp.asarray(real), jnp.asarray(fake), key)
    # Reference: the same mixing weights, the gradient written out by hand, numpy throughout.
    alpha = np.asarray(jax.random.uniform(key, (5, 1, 1)))
    x_hat = (real + alpha * (fake - real)).reshape(5, -1)
    grad = w * (1 - np.tanh(x_hat) ** 2)
    expected = np.mean((np.sqrt((grad**2).sum(1)) - 1) ** 2)
    assert float(gp) == pytest.approx(expected, rel=1e-5)
    # A critic with unit-norm input gradient everywhere (linear, |w| = 1) has no penalty.
    unit = jnp.asarray(w / np.linalg.norm(w))
    assert float(losses.gradient_penalty(lambda x: x.reshape(5, -1) @ unit, real, fake, key)) < 1e-8


def test_r1_penalty_equals_hand_written_reference():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(4, 6)).astype(np.float32)
    w = rng.normal(size=6).astype(np.float32)
    r1 = losses.r1_penalty(_tiny_critic(jnp.asarray(w), 0.0), jnp.asarray(real))
    expected = np.mean(((w * (1 - np.tanh(real) ** 2)) ** 2).sum(1))
    assert float(r1) == pytest.approx(expected, rel=1e-5)


def test_gradient_penalty_has_a_gradient_for_the_critic():
    """The penalty is differentiated again with respect to the critic's weights (double backprop)."""
    real, fake = jnp.ones((3, 4)), -jnp.ones((3, 4))
    grad_w = jax.grad(
        lambda w: losses.gradient_penalty(_tiny_critic(w, 0.0), real, fake, jax.random.PRNGKey(0))
    )(jnp.full((4,), 2.0))
    assert np.all(np.isfinite(grad_w)) and np.any(np.abs(grad_w) > 0)
