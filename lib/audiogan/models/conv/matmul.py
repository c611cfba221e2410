"""The "matmul" form: each layer as one matrix product of patches (B, *L_out, T * C_in) and a weight matrix.

- 2-D convolution (im2col): the prod(K) shifted strided slices of the padded input, concatenated into
  patches (B, *L_out, prod(K) * C_in), times the kernel reshaped to (prod(K) * C_in, C_out);
- 1-D convolution (:func:`_conv1d_blocked_impl`): the same after a space-to-depth reshape, which needs no
  strided slices: the padded input as blocks of P = stride samples (B, L / P, P * C_in), T = ceil(K / P)
  shifted blocks concatenated, times a (T * P * C_in, C_out) matrix (the kernel and a few zero taps).
  For very long kernels (WaveGAN's 512-tap post filter), where K slices would make patches K times the
  input, each row computes P / stride outputs with P ~ K: a block-Toeplitz product of T = 2 or 3 blocks;
- transposed convolution: the output phases (:mod:`~audiogan.models.conv.transposed`), as T stride-1 slices
  of the input concatenated into (B, *L, prod(T) * C_in), times one (prod(T) * C_in, prod(s) * C_out) matrix.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from audiogan.models.conv import settings
from audiogan.models.conv.compiling import jit
from audiogan.models.conv.padding import _pad
from audiogan.models.conv.patches import _patch_matmul
from audiogan.models.conv.transposed import _stuffed_conv_impl


def _conv_matmul_impl(
    x: jax.Array, w: jax.Array, strides: tuple[int, ...], pads: tuple[tuple[int, int], ...]
) -> jax.Array:
    """Strided convolution (kernel (*K, in, out)) as im2col patches times one weight matrix."""
    n = x.ndim - 2
    kernel = w.shape[:n]
    xp = _pad(x, pads)
    out = [(xp.shape[1 + i] - kernel[i]) // strides[i] + 1 for i in range(n)]
    return _patch_matmul(xp, kernel, strides, out, w.reshape(-1, w.shape[-1]))


def _conv1d_blocked_impl(x: jax.Array, w: jax.Array, stride: int, pads: tuple[int, int], per_block: int) -> jax.Array:
    """Strided 1-D convolution with ``per_block`` outputs per matrix row: a block-Toeplitz product.

    ``per_block`` 1 is im2col after a space-to-depth reshape (for stride 1, plain im2col). With
    P = stride * per_block, output q = per_block * Q + j reads padded samples P * Q + stride * j + k,
    k < K: T = ceil((stride * (per_block - 1) + K) / P) blocks of P samples. The weight
    W[(t, p, c), (j, o)] = w[t * P + p - stride * j, c, o] (zero outside the kernel) is built by the skew
    trick: the zero-padded kernel tiled per_block times and re-cut into rows ``stride`` samples shorter
    shifts each row ``stride`` samples further right.
    """
    b, c = x.shape[0], x.shape[-1]
    k, c_out = w.shape[0], w.shape[-1]
    xp = _pad(x, [pads])
    n_out = (xp.shape[1] - k) // stride + 1
    block = stride * per_block
    n_taps = -(-(stride * (per_block - 1) + k) // block)
    n_rows = -(-n_out // per_block)
    n_blocks = n_rows + n_taps - 1
    xp = _pad(xp, [(0, block * n_blocks - xp.shape[1])]).reshape(b, n_blocks, block * c)

    row = n_taps * block  # kernel samples per weight row, w placed at 0 and shifted by stride * j
    w_pad = jnp.pad(w, ((0, row + stride - k), (0, 0), (0, 0)))  # (row + stride, C, O)
    tiled = jnp.broadcast_to(w_pad[None], (per_block, *w_pad.shape)).reshape(-1, c, c_out)
    w_juco = tiled[: per_block * row].reshape(per_block, row, c, c_out)  # [j, u] = w[u - stride * j]
    w_kc = w_juco.transpose(1, 2, 0, 3).reshape(row * c, per_block * c_out)
    y = _patch_matmul(xp, (n_taps,), (1,), (n_rows,), w_kc)  # patches (B, rows, T * P * C) x w_kc
    y = y.reshape(b, n_rows * per_block, c_out)
    return y[:, :n_out]


def _stuffed_conv_matmul_impl(
    x: jax.Array, w: jax.Array, strides: tuple[int, ...], pads: tuple[tuple[int, int], ...], transpose_kernel: bool
) -> jax.Array:
    """Polyphase form of the stride-1 correlation of the zero-stuffed, padded input with w (*K, in, out),
    as patches times one weight matrix (:func:`~audiogan.models.conv.transposed._stuffed_conv_impl`)."""
    return _stuffed_conv_impl(x, w, strides, pads, transpose_kernel, product="matmul")


def _rematerialised(impl, static_argnames: tuple[str, ...]):
    """``impl`` jitted (static arguments by name), its patches recomputed from the input when a derivative
    needs them (``jax.checkpoint``) instead of stored: a patch matrix is ``T * P / stride`` (7 for WaveGAN)
    times the size of its layer's input, and storing them for the gradient penalty's second derivative
    and every critic update is what made the matmul form's memory grow (``settings.REMAT``)."""

    @functools.partial(jit, static_argnames=(*static_argnames, "remat"))
    def jitted(x, w, remat, **static):
        if not remat:
            return impl(x, w, **static)
        return jax.checkpoint(functools.partial(impl, **static))(x, w)

    @functools.wraps(impl)
    def fn(x, w, **static):
        return jitted(x, w, remat=settings.REMAT, **static)

    return fn


# Jitted (hashable static arguments: tuples) so that called eagerly each layer is one compiled program rather
# than dozens of tiny ones; inside an outer jit they are inlined.
_conv_matmul = _rematerialised(_conv_matmul_impl, ("strides", "pads"))
_conv1d_blocked = _rematerialised(_conv1d_blocked_impl, ("stride", "pads", "per_block"))
_stuffed_conv_matmul = _rematerialised(_stuffed_conv_matmul_impl, ("strides", "pads", "transpose_kernel"))
