"""One optax update, tied so that XLA updates every weight and moment in its own donated buffer."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def optimiser_update(tx: optax.GradientTransformation, grads, opt_state, params):
    """``(new params, new optimiser state)``: ``tx.update`` then ``optax.apply_updates``, plus two ties
    that add zero so that XLA can overwrite the donated buffers instead of copying them first.

    XLA overwrites a buffer in place only when everything reading its old value is ordered before the
    write. Each new moment also reads the new weights (times zero), so it is written after them; every
    gradient reads one element of every other (times zero), so no weight is updated while another
    layer's gradient still reads it. ``x + 0 * y == x`` for finite ``y`` (a non-finite one means a
    diverged run, which the loop stops), so the values are optax's."""
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
