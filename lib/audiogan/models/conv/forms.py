"""The public convolutions, each dispatching to the form :func:`~audiogan.models.conv.settings.resolve_form`
picks. Semantics (every form, channels last, no bias):

- :func:`conv1d`: kernel (K, in, out), padding TF 'SAME' (``ceil(T / stride)`` outputs, the odd
  padded sample on the right: 10|11 for kernel 25, stride 4), 'VALID' or explicit (lo, hi);
- :func:`conv1d_transpose` (WaveGAN): TF's ``conv2d_transpose``, the exact adjoint of :func:`conv1d`
  with the same kernel stored in TF's layout (K, out, in) (``transpose_kernel=True``): 'SAME' gives
  ``stride * T`` samples, 'VALID' ``stride * T + max(K - stride, 0)`` (TF's lengths), and the forward
  padding (lo, hi) gives ``(T - 1) * stride + K - lo - hi``;
- :func:`conv2d` (SpecGAN): kernel (KH, KW, in, out), padding as ``lax.conv_general_dilated``
  ('SAME' is TF's: 1|2 for kernel 5, stride 2 on an even size), 'VALID' or explicit pairs;
- :func:`conv2d_transpose` (SpecGAN): ``lax.conv_transpose`` with ``transpose_kernel=False``: the
  kernel (KH, KW, in, out) applied unflipped to the zero-stuffed input, padding 'SAME' (3|2 for kernel
  5, stride 2: output ``stride`` times larger), 'VALID' or explicit pairs on the stuffed input.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
from jax import lax

from audiogan.models.conv import settings
from audiogan.models.conv.correlation import _DIMS_1D, _DIMS_2D
from audiogan.models.conv.matmul import _conv1d_blocked, _conv_matmul, _stuffed_conv_matmul
from audiogan.models.conv.padding import (
    Padding1d,
    Padding2d,
    _forward_pads,
    _pairs1,
    _strides,
    _transpose_pads,
    same_padding,
)
from audiogan.models.conv.polyphase import (
    _conv2d_polyphase,
    _conv2d_transpose_polyphase,
    _conv_polyphase,
    _stuffed_conv_polyphase,
)

# ---------------------------------------------------------------------------- 1-D (WaveGAN)


def conv1d(
    x_btc: jax.Array, kernel_kio: jax.Array, stride: int = 1, padding: Padding1d = "SAME", *, form: str | None = None
) -> jax.Array:
    """Strided convolution, TF 'SAME' padding by default: (B, T, I) -> (B, ceil(T / stride), O). No bias."""
    (stride,) = _strides(stride, 1)
    (pads,) = _forward_pads(x_btc.shape[1:2], kernel_kio.shape[:1], (stride,), _pairs1(padding))
    chosen = settings.resolve_form(form)
    if chosen == "lax":
        return lax.conv_general_dilated(x_btc, kernel_kio, (stride,), (pads,), dimension_numbers=_DIMS_1D)
    if chosen == "polyphase":
        return _conv_polyphase(
            x_btc, kernel_kio, strides=(stride,), pads=(pads,),
            rows_per_column=settings.POLYPHASE_ROWS_PER_COLUMN,
        )
    kernel_len = kernel_kio.shape[0]
    per_block = max(1, kernel_len // stride) if kernel_len >= settings.LONG_KERNEL else 1
    return _conv1d_blocked(x_btc, kernel_kio, stride=stride, pads=pads, per_block=per_block)


def conv1d_transpose(
    x_btc: jax.Array, kernel_koi: jax.Array, stride: int, padding: Padding1d = "SAME", *, form: str | None = None
) -> jax.Array:
    """TF's transposed convolution: (B, T, I) -> (B, stride * T, O) for 'SAME'. No bias.

    The adjoint of :func:`conv1d` (same stride and padding) from the output's length, with the same kernel
    in TF layout (kernel, out, in), i.e. zero-stuffing the input and convolving with the flipped kernel.
    """
    (stride,) = _strides(stride, 1)
    kernel_len, length = kernel_koi.shape[0], x_btc.shape[1]
    if padding == "SAME":
        n_out = stride * length
        lo, hi = same_padding(n_out, kernel_len, stride)
    elif padding == "VALID":
        n_out, lo, hi = stride * length + max(kernel_len - stride, 0), 0, 0
    else:
        ((lo, hi),) = _forward_pads([0], [kernel_len], [stride], _pairs1(padding))
        n_out = (length - 1) * stride + kernel_len - lo - hi
    leftover = (n_out + lo + hi - kernel_len) % stride  # samples the forward conv never reads
    pads = (kernel_len - 1 - lo, kernel_len - 1 - hi + leftover)
    chosen = settings.resolve_form(form)
    if chosen == "lax":
        return lax.conv_transpose(
            x_btc, kernel_koi, (stride,), (pads,), dimension_numbers=_DIMS_1D, transpose_kernel=True
        )
    if chosen == "polyphase":
        return _stuffed_conv_polyphase(
            x_btc, kernel_koi, strides=(stride,), pads=(pads,), transpose_kernel=True,
            rows_per_column=settings.POLYPHASE_ROWS_PER_COLUMN,
        )
    return _stuffed_conv_matmul(x_btc, kernel_koi, strides=(stride,), pads=(pads,), transpose_kernel=True)


# ---------------------------------------------------------------------------- 2-D (SpecGAN)


def conv2d(
    x_bhwc: jax.Array,
    kernel_hwio: jax.Array,
    stride: int | Sequence[int] = 1,
    padding: Padding2d = "SAME",
    *,
    form: str | None = None,
) -> jax.Array:
    """Strided 2-D convolution, padded as ``lax.conv_general_dilated`` ('SAME' is TF's). No bias."""
    strides = _strides(stride, 2)
    pads = _forward_pads(x_bhwc.shape[1:3], kernel_hwio.shape[:2], strides, padding)
    chosen = settings.resolve_form(form)
    if chosen == "lax":
        return lax.conv_general_dilated(x_bhwc, kernel_hwio, strides, pads, dimension_numbers=_DIMS_2D)
    if chosen == "polyphase":
        return _conv2d_polyphase(
            x_bhwc, kernel_hwio, strides=strides, pads=tuple(pads),
            rows_per_column=settings.POLYPHASE_ROWS_PER_COLUMN,
        )
    return _conv_matmul(x_bhwc, kernel_hwio, strides=strides, pads=tuple(pads))


def conv2d_transpose(
    x_bhwc: jax.Array,
    kernel_hwio: jax.Array,
    stride: int | Sequence[int] = 1,
    padding: Padding2d = "SAME",
    *,
    form: str | None = None,
) -> jax.Array:
    """``lax.conv_transpose(..., transpose_kernel=False)``: the unflipped kernel (KH, KW, in, out) on the
    zero-stuffed input; 'SAME' gives ``stride`` times the size. No bias."""
    strides = _strides(stride, 2)
    pads = _transpose_pads(kernel_hwio.shape[:2], strides, padding)
    chosen = settings.resolve_form(form)
    if chosen == "lax":
        return lax.conv_transpose(x_bhwc, kernel_hwio, strides, pads, dimension_numbers=_DIMS_2D)
    if chosen == "polyphase":
        return _conv2d_transpose_polyphase(
            x_bhwc, kernel_hwio, strides=strides, pads=tuple(pads),
            rows_per_column=settings.POLYPHASE_ROWS_PER_COLUMN,
        )
    return _stuffed_conv_matmul(x_bhwc, kernel_hwio, strides=strides, pads=tuple(pads), transpose_kernel=False)
