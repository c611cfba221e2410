"""Mixed precision: the step computes in ``RunConfig.precision``, weights and losses stay float32.

With ``precision="bfloat16"`` the networks run on bfloat16 copies of their float32 weights and
inputs; their outputs come back as float32, so the losses, the gradient penalty's norms, the
gradients (the cast's derivative casts back), the optimiser's moments and the stored weights are all
float32. ``"float32"`` (the default) changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

PRECISIONS = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(precision: str):
    return PRECISIONS[precision]


def cast_params(params, precision: str):
    """The weights the networks compute with: float leaves cast to the compute dtype."""
    if precision == "float32":
        return params
    dtype = compute_dtype(precision)
    return jax.tree.map(lambda p: p.astype(dtype) if jnp.issubdtype(p.dtype, jnp.floating) else p, params)


def wrap(fn: Callable[..., jax.Array], precision: str) -> Callable[..., jax.Array]:
    """``fn(x, **kw)`` run on ``x`` in the compute dtype, its output returned as float32."""
    if precision == "float32":
        return fn
    dtype = compute_dtype(precision)

    def wrapped(x, **kwargs):
        return fn(x.astype(dtype), **kwargs).astype(jnp.float32)

    return wrapped
