"""Class conditioning for any family: a generator told which class to make, and a projection
discriminator that judges a clip together with its class.

- :class:`ConditionalGenerator` appends the class as a one-hot vector to the latent vector, so
  the family's generator is built with ``latent_dim + n_classes`` inputs (Mirza & Osindero 2014).
  Its first layer is linear, so this is the same as a learned per-class offset of that layer.
- :class:`ProjectionDiscriminator` adds to the family's logit the inner product of a learned class
  embedding with the features its output layer reads: ``D(x, y) = out(phi(x)) + <e_y, phi(x)>``
  (Miyato & Koyama, "cGANs with Projection Discriminator", ICLR 2018). The discriminator then cannot
  be satisfied by a clip of the wrong class, which pushes the generator to make the class it is
  asked for instead of collapsing onto whichever class is easiest.

Both take the classes as integer indices, keyword ``labels``, shape (batch,).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx


class ConditionalGenerator(nnx.Module):
    """``base`` built with ``latent_dim + n_classes`` inputs; ``g(z, labels=y) = base([z, onehot(y)])``."""

    def __init__(self, base: nnx.Module, n_classes: int):
        self.base, self.n_classes = base, n_classes

    def __call__(self, z_bd: jax.Array, *, labels: jax.Array) -> jax.Array:
        onehot_bk = jax.nn.one_hot(labels, self.n_classes, dtype=z_bd.dtype)
        return self.base(jnp.concatenate([z_bd, onehot_bk], axis=-1))


class ProjectionDiscriminator(nnx.Module):
    """``base`` must have ``features(x, key=)`` and the linear layer ``out`` that reads them."""

    def __init__(self, base: nnx.Module, n_classes: int, *, rngs: nnx.Rngs):
        dim = base.out.in_features
        self.base = base
        # Scaled like the output layer's weights, so the projection starts as large as the logit.
        self.embed = nnx.Embed(
            n_classes, dim, embedding_init=jax.nn.initializers.normal(1 / math.sqrt(dim)), rngs=rngs
        )

    def __call__(self, x: jax.Array, *, labels: jax.Array, key: jax.Array | None = None) -> jax.Array:
        h_bf = self.base.features(x, key=key)
        return self.base.out(h_bf)[:, 0] + jnp.sum(self.embed(labels).astype(h_bf.dtype) * h_bf, axis=-1)
