"""GAN objectives, each a pair of pure functions of the discriminator's outputs.

``d_loss(real_logits, fake_logits, label_smoothing)`` is what the discriminator minimises and
``g_loss(fake_logits)`` what the generator minimises. ``score`` turns logits into the number we log
as D(real) and D(fake): a probability for cross-entropy losses, the raw score otherwise. The
regularisers (gradient penalty, R1) take the critic as a function ``x -> logits``, so losses know
nothing of models.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class GANLoss(NamedTuple):
    d_loss: Callable[..., jax.Array]
    g_loss: Callable[[jax.Array], jax.Array]
    score: Callable[[jax.Array], jax.Array]


def bce_with_logits(logits: jax.Array, target: float) -> jax.Array:
    """Mean binary cross-entropy of ``logits`` against a constant ``target`` in [0, 1]."""
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target)))


def ns_d_loss(real_logits, fake_logits, label_smoothing: float = 1.0):
    """Cross-entropy with real clips labelled ``label_smoothing`` (0.9: one-sided smoothing) and
    generated ones 0, averaged over the real and the fake half of the batch as one batch of 2B."""
    return 0.5 * (bce_with_logits(real_logits, label_smoothing) + bce_with_logits(fake_logits, 0.0))


def ns_g_loss(fake_logits):
    """Non-saturating: the generator maximises log D(G(z)), i.e. wants the answer "real"."""
    return bce_with_logits(fake_logits, 1.0)


def hinge_d_loss(real_logits, fake_logits, label_smoothing: float = 1.0):
    del label_smoothing
    return jnp.mean(jax.nn.relu(1 - real_logits)) + jnp.mean(jax.nn.relu(1 + fake_logits))


def hinge_g_loss(fake_logits):
    return -jnp.mean(fake_logits)


def lsgan_d_loss(real_logits, fake_logits, label_smoothing: float = 1.0):
    """Least squares (Mao et al. 2017): real towards ``label_smoothing`` (1 by default), fake to 0."""
    return 0.5 * (jnp.mean((real_logits - label_smoothing) ** 2) + jnp.mean(fake_logits**2))


def lsgan_g_loss(fake_logits):
    return 0.5 * jnp.mean((fake_logits - 1) ** 2)


def wgan_d_loss(real_logits, fake_logits, label_smoothing: float = 1.0):
    """The critic's side of the Wasserstein loss, E[D(fake)] - E[D(real)] (the gradient penalty is
    added separately); its negation is the Wasserstein estimate we log."""
    del label_smoothing
    return jnp.mean(fake_logits) - jnp.mean(real_logits)


def wgan_g_loss(fake_logits):
    return -jnp.mean(fake_logits)


def _per_example_grad_norm(critic: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
    grads = jax.grad(lambda v: jnp.sum(critic(v)))(x)  # each example's logit depends on it alone
    return jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=1) + 1e-12)


def gradient_penalty(critic, real: jax.Array, fake: jax.Array, key: jax.Array) -> jax.Array:
    """WGAN-GP (Gulrajani et al. 2017): E[(|grad D(x_hat)| - 1)^2] at random points x_hat on the
    lines between real and generated examples (one mixing weight per example)."""
    alpha = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), dtype=real.dtype)
    x_hat = real + alpha * (fake - real)
    return jnp.mean((_per_example_grad_norm(critic, x_hat) - 1.0) ** 2)


def r1_penalty(critic, real: jax.Array) -> jax.Array:
    """R1 (Mescheder et al. 2018): E[|grad D(x)|^2] on real examples; weighted by gamma / 2."""
    return jnp.mean(_per_example_grad_norm(critic, real) ** 2)


def _identity(x):
    return x


LOSSES: dict[str, GANLoss] = {
    "ns": GANLoss(ns_d_loss, ns_g_loss, jax.nn.sigmoid),
    "hinge": GANLoss(hinge_d_loss, hinge_g_loss, _identity),
    "lsgan": GANLoss(lsgan_d_loss, lsgan_g_loss, _identity),
    "wgan-gp": GANLoss(wgan_d_loss, wgan_g_loss, _identity),
}


def get(name: str) -> GANLoss:
    return LOSSES[name]
