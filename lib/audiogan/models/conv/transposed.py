"""Transposed convolution by output phases: output phase r of stride s only meets every s-th kernel tap, so
one stride-1 product of the (unstuffed) input with a phase kernel of T = ceil(K / s) taps and
prod(s) * C_out channels gives all phases at once, interleaved by a reshape. Shared by the "matmul" and
"polyphase" forms, which differ in how they compute that product."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
from jax import lax

from audiogan.models.conv import settings
from audiogan.models.conv.correlation import _corr
from audiogan.models.conv.padding import _pad
from audiogan.models.conv.patches import _patch_matmul


def _stuffed_conv_impl(
    x: jax.Array,
    w: jax.Array,
    strides: tuple[int, ...],
    pads: tuple[tuple[int, int], ...],
    transpose_kernel: bool,
    product: str | None,
    rows_per_column: float | None = None,
) -> jax.Array:
    """Polyphase form of the stride-1 correlation of the zero-stuffed, padded input with w (*K, in, out).

    That is ``lax.conv_transpose(x, w, strides, pads, transpose_kernel=...)``: with ``transpose_kernel`` the
    kernel (*K, out, in) is flipped and used with its channel axes swapped, as TF's transposed convolution
    does (as patches, the swap is a transposed matrix product, not a copy of the kernel).
    Output s * q + r reads input q + d with kernel tap s * d - r + pad_lo, for d in [dmin, dmax]:
    T = dmax - dmin + 1 slices of the input cover every phase, and one weight matrix
    (T * C_in, s * C_out) holds each phase's taps. ``product`` "conv" correlates the input with that
    matrix as a kernel (*T, C_in, s * C_out); "matmul" multiplies the patches by it; None picks by
    :func:`~audiogan.models.conv.settings.polyphase_product`.
    """
    n = x.ndim - 2
    if transpose_kernel:  # TF's layout (*K, out, in), flipped; the channel axes stay where they are
        w = jnp.flip(w, tuple(range(n)))
    b, c_out = x.shape[0], w.shape[-2 if transpose_kernel else -1]
    kernel, sizes = w.shape[:n], x.shape[1:-1]
    dims = list(zip(sizes, kernel, strides, pads, strict=True))
    n_out = [(sz - 1) * s + 1 + lo + hi - k + 1 for sz, k, s, (lo, hi) in dims]
    rows = [-(-m // s) for m, s in zip(n_out, strides, strict=True)]
    d_min = [-(lo // s) for s, (lo, _) in zip(strides, pads, strict=True)]  # ceil(-lo / s): phase 0's first tap
    d_max = [(s - 1 + k - 1 - lo) // s for s, (lo, _), k in zip(strides, pads, kernel, strict=True)]
    taps = [hi - lo + 1 for lo, hi in zip(d_min, d_max, strict=True)]
    # Rows q read inputs q + d_min .. q + d_max: pad (or crop) the input to exactly that range.
    x_pads = [(-lo, q - 1 + hi - (sz - 1)) for lo, hi, q, sz in zip(d_min, d_max, rows, sizes, strict=True)]

    # Phase r, tap t of axis i reads kernel tap s * (d_min + t) - r + pad_lo: the kernel padded (or cropped)
    # to the s * T taps from s * d_min - (s - 1) + pad_lo, cut into (T, s) and reversed along s. Pads,
    # reshapes, reversals and moves of whole channel rows only: cheap, and so are their derivatives.
    w_ts = lax.pad(w, jnp.zeros((), w.dtype), [
        *((-(s * d0 - (s - 1) + lo), s * (d0 + t - 1) + lo - (k - 1), 0)
          for k, s, (lo, _), d0, t in zip(kernel, strides, pads, d_min, taps, strict=True)),
        (0, 0, 0), (0, 0, 0),
    ])
    w_ts = jnp.flip(w_ts.reshape(*itertools.chain.from_iterable(zip(taps, strides, strict=True)), *w_ts.shape[n:]),
                    tuple(range(1, 2 * n, 2)))
    t_axes, s_axes, a, c = tuple(range(0, 2 * n, 2)), tuple(range(1, 2 * n, 2)), 2 * n, 2 * n + 1
    c_in, n_cols = x.shape[-1], math.prod(strides) * c_out
    product = product or settings.polyphase_product(b * math.prod(rows), n_cols, rows_per_column)
    if product == "matmul" and transpose_kernel:  # the matrix transposed, (s * C_out, T * C_in): rows of C_in move
        w_nk = w_ts.transpose(*s_axes, a, *t_axes, c).reshape(n_cols, math.prod(taps) * c_in)
        y = _patch_matmul(_pad(x, x_pads), taps, (1,) * n, rows, w_nk, transposed=True)
    else:
        w_io = w_ts.transpose(*t_axes, c, *s_axes, a) if transpose_kernel else w_ts.transpose(*t_axes, a, *s_axes, c)
        if product == "conv":
            y = _corr(x, w_io.reshape(*taps, c_in, n_cols), x_pads)
        else:
            y = _patch_matmul(_pad(x, x_pads), taps, (1,) * n, rows, w_io.reshape(math.prod(taps) * c_in, n_cols))
    y = y.reshape(b, *rows, *strides, c_out)
    if n > 1:  # interleave: (B, Q_1..Q_n, s_1..s_n, C) -> (B, Q_1, s_1, .., Q_n, s_n, C)
        y = y.transpose(0, *itertools.chain.from_iterable((1 + i, 1 + n + i) for i in range(n)), 2 * n + 1)
    y = y.reshape(b, *(q * s for q, s in zip(rows, strides, strict=True)), c_out)
    if list(y.shape[1:-1]) != n_out:
        y = lax.slice(y, (0,) * y.ndim, (b, *n_out, c_out))
    return y
