"""Patches times a weight matrix: a convolution built only from slices, a concatenation and one dot, whose
derivatives of every order are again slices, pads and matrix products."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax


def _tap_slices(x: jax.Array, taps: Sequence[int], strides: Sequence[int], out: Sequence[int]) -> list[jax.Array]:
    """(B, *S, C) -> prod(taps) arrays (B, *out, C): each tap's (strided) slice, taps in row-major order."""
    b, c = x.shape[0], x.shape[-1]
    slices = []
    for tap in itertools.product(*(range(t) for t in taps)):
        limit = (b, *(i + s * (o - 1) + 1 for i, s, o in zip(tap, strides, out, strict=True)), c)
        slices.append(lax.slice(x, (0, *tap, 0), limit, (1, *strides, 1)))
    return slices


def _patches(x: jax.Array, taps: Sequence[int], strides: Sequence[int], out: Sequence[int]) -> jax.Array:
    """(B, *S, C) -> (B, *out, prod(taps) * C): each tap's (strided) slice, taps in row-major order."""
    slices = _tap_slices(x, taps, strides, out)
    return slices[0] if len(slices) == 1 else jnp.concatenate(slices, axis=-1)


def _matmul(patches: jax.Array, w_kc: jax.Array, transposed: bool = False) -> jax.Array:
    """(..., K) x (K, C) -> (..., C): one dot; ``transposed``: the weight given as (C, K)."""
    return lax.dot_general(patches, w_kc, (((patches.ndim - 1,), (1 if transposed else 0,)), ((), ())))


def _patch_matmul(
    x: jax.Array,
    taps: Sequence[int],
    strides: Sequence[int],
    out: Sequence[int],
    w_kc: jax.Array,
    transposed: bool = False,
) -> jax.Array:
    """``_patches(x, taps, strides, out) @ w_kc``: a (B, *out, T * C) copy of the input times the weight
    matrix (T * C, N), or (N, T * C) when ``transposed``."""
    return _matmul(_patches(x, taps, strides, out), w_kc, transposed)
