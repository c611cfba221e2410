"""The classic fully connected GAN (Goodfellow et al. 2014), as in the widely used Keras recipe.

Generator: z (latent_dim, standard normal) -> Dense 256 -> 512 -> 1024 -> clip_samples, LeakyReLU
(0.2) between the layers and tanh at the end. Discriminator: clip -> Dense 1024 -> 512 -> 256 -> 1
logit, each hidden layer followed by LeakyReLU(0.2) and Dropout(0.3).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

GENERATOR_WIDTHS = (256, 512, 1024)
DISCRIMINATOR_WIDTHS = (1024, 512, 256)
NEGATIVE_SLOPE = 0.2
DROPOUT = 0.3
ELEMENTAL_FUSIONS = False  # XLA:CPU's default fusion emitters suit this family's few large loops
# The classic recipe (Goodfellow et al. 2014, as in the widely used Keras version): non-saturating
# cross-entropy with one-sided label smoothing 0.9, Adam(2e-4, beta1 0.5), batch 128, latent 100 (N(0, 1)).
RECIPE = {
    "loss": "ns", "lr": 2e-4, "beta1": 0.5, "beta2": 0.999, "batch_size": 128,
    "latent_dim": 100, "label_smoothing": 0.9,
}


def sample_latent(key: jax.Array, n: int, latent_dim: int) -> jax.Array:
    """The classic recipe draws z from a standard normal."""
    return jax.random.normal(key, (n, latent_dim), dtype=jnp.float32)


class Generator(nnx.Module):
    def __init__(self, latent_dim: int, clip_samples: int, *, rngs: nnx.Rngs):
        widths = (latent_dim, *GENERATOR_WIDTHS, clip_samples)
        self.layers = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(widths[:-1], widths[1:], strict=True)]
        )

    def __call__(self, z_bd: jax.Array) -> jax.Array:
        h = z_bd
        for layer in self.layers[:-1]:
            h = nnx.leaky_relu(layer(h), NEGATIVE_SLOPE)
        return jnp.tanh(self.layers[-1](h))  # wav_bt in [-1, 1]


class Discriminator(nnx.Module):
    def __init__(self, clip_samples: int, *, rngs: nnx.Rngs):
        widths = (clip_samples, *DISCRIMINATOR_WIDTHS)
        self.hidden = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(widths[:-1], widths[1:], strict=True)]
        )
        self.dropout = nnx.Dropout(DROPOUT)
        self.out = nnx.Linear(widths[-1], 1, rngs=rngs)

    def __call__(self, wav_bt: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        """Logits, shape (batch,). With ``key`` dropout is on (training); without, it is off."""
        return self.out(self.features(wav_bt, key=key))[:, 0]

    def features(self, wav_bt: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        """The last hidden layer, after dropout: (batch, 256)."""
        h = wav_bt
        keys = jax.random.split(key, len(self.hidden)) if key is not None else [None] * len(self.hidden)
        for layer, k in zip(self.hidden, keys, strict=True):
            h = nnx.leaky_relu(layer(h), NEGATIVE_SLOPE)
            h = self.dropout(h, deterministic=k is None, rngs=k)
        return h


def check(config) -> None:
    """Any clip length fits the fully connected networks."""


def build(config, n_in: int, rngs: nnx.Rngs) -> tuple[Generator, Discriminator]:
    """Both networks of a run: ``n_in`` latent (and class) inputs to ``config.clip_samples`` samples."""
    return Generator(n_in, config.clip_samples, rngs=rngs), Discriminator(config.clip_samples, rngs=rngs)
