"""Padding, strides and output sizes of the convolutions, as every form computes them, channels last."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

Padding1d = str | tuple[int, int]
Padding2d = str | Sequence[tuple[int, int]]
Pads = tuple[tuple[int, int], ...]


def same_padding(length: int, kernel_len: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'SAME' padding (left, right): ceil(length / stride) outputs, the odd sample on the right."""
    out = -(-length // stride)
    total = max((out - 1) * stride + kernel_len - length, 0)
    return total // 2, total - total // 2


def _forward_pads(
    sizes: Sequence[int], kernel: Sequence[int], strides: Sequence[int], padding
) -> list[tuple[int, int]]:
    """Padding of a strided convolution: 'SAME' (TF's), 'VALID', or explicit (lo, hi) pairs."""
    if isinstance(padding, str) and padding not in ("SAME", "VALID"):
        raise ValueError(f"padding must be 'SAME', 'VALID' or (lo, hi) pairs, got {padding!r}")
    if padding == "SAME":
        return [same_padding(n, k, s) for n, k, s in zip(sizes, kernel, strides, strict=True)]
    if padding == "VALID":
        return [(0, 0)] * len(sizes)
    pads = [(int(lo), int(hi)) for lo, hi in padding]
    if len(pads) != len(sizes):
        raise ValueError(f"padding needs one (lo, hi) pair per spatial dimension, got {padding!r}")
    return pads


def _transpose_pads(kernel: Sequence[int], strides: Sequence[int], padding) -> list[tuple[int, int]]:
    """``lax.conv_transpose``'s padding of the zero-stuffed input for 'SAME', 'VALID' or explicit pairs."""
    if isinstance(padding, str):
        pads = []
        for k, s in zip(kernel, strides, strict=True):
            if padding == "SAME":
                total, lo = k + s - 2, (k - 1 if s > k - 1 else -(-(k + s - 2) // 2))
            elif padding == "VALID":
                total, lo = k + s - 2 + max(k - s, 0), k - 1
            else:
                raise ValueError(f"padding must be 'SAME', 'VALID' or (lo, hi) pairs, got {padding!r}")
            pads.append((lo, total - lo))
        return pads
    return _forward_pads([0] * len(kernel), kernel, strides, padding)


def _pairs1(padding: Padding1d):
    """A 1-D padding as _forward_pads takes it: the string, or a list of the one (lo, hi) pair."""
    return padding if isinstance(padding, str) else [tuple(padding)]


def _strides(stride: int | Sequence[int], n: int) -> tuple[int, ...]:
    strides = (int(stride),) * n if isinstance(stride, int) else tuple(int(s) for s in stride)
    if len(strides) != n or min(strides) < 1:
        raise ValueError(f"stride must be a positive int or {n} of them, got {stride!r}")
    return strides


def _pad(x: jax.Array, pads: Sequence[tuple[int, int]]) -> jax.Array:
    """Zero-pad (or, for negative amounts, crop) the spatial axes of a (B, *S, C) array."""
    if all(lo == 0 and hi == 0 for lo, hi in pads):
        return x
    config = [(0, 0, 0), *((lo, hi, 0) for lo, hi in pads), (0, 0, 0)]
    return lax.pad(x, jnp.zeros((), x.dtype), config)


def _out_sizes(sizes: Sequence[int], pads: Sequence[tuple[int, int]], kernel: Sequence[int],
               strides: Sequence[int]) -> tuple[int, ...]:
    """Output sizes of a strided correlation of an input of ``sizes`` padded by ``pads`` with ``kernel``."""
    return tuple((sz + lo + hi - k) // s + 1 for sz, (lo, hi), k, s in zip(sizes, pads, kernel, strides, strict=True))
