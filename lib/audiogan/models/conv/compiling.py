"""``jax.jit`` with the XLA compiler options the convolutions need (on CPU, every convolution through Eigen)."""

from __future__ import annotations

import functools

import jax

from audiogan import xla


def compiler_options(elemental_fusions: bool = False) -> dict[str, str | bool]:
    """Options for ``jax.jit(..., compiler_options=...)`` of code that runs these convolutions: on CPU, every
    convolution through Eigen, the memory-optimised instruction order and, with ``elemental_fusions``,
    XLA:CPU's elemental fusion emitters (:func:`audiogan.xla.compiler_options`); elsewhere none. Pass
    them when jitting the models yourself."""
    return xla.compiler_options(jax.default_backend(), elemental_fusions)


def jit(fun, options: dict[str, str | bool] | None = None, **kwargs):
    """``jax.jit(fun, **kwargs)``, with ``options`` (by default :func:`compiler_options`) where it is compiled
    on its own: called on arrays, or through ``.lower(...)``. JAX takes compiler options at the top level
    only: called inside another trace (``jax.jit``, ``jax.make_jaxpr``, ``jax.vmap``) it is inlined there,
    without them. ``._cache_size()`` counts the top-level compilations, as ``jax.jit``'s does."""
    jitted = {}

    def at(top: bool):
        if top not in jitted:
            chosen = (compiler_options() if options is None else options) if top else None
            jitted[top] = jax.jit(fun, compiler_options=chosen, **kwargs)
        return jitted[top]

    @functools.wraps(fun)
    def call(*args, **kw):
        return at(not any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves((args, kw))))(*args, **kw)

    call.lower = lambda *args, **kw: at(True).lower(*args, **kw)
    call._cache_size = lambda: at(True)._cache_size()  # compilations at the top level, as jax.jit's
    return call
