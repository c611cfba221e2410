"""The stride-1 correlation the polyphase form reduces every layer to, as XLA's native convolution, with its
derivatives routed by hand (``jax.custom_vjp``) so that to every order they stay two convolutions in XLA's
canonical layout: this correlation (kernel flipped) and its kernel gradient."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from audiogan.models.conv.padding import Pads, _pad

_DIMS_1D = ("NWC", "WIO", "NWC")
_DIMS_2D = ("NHWC", "HWIO", "NHWC")


def _native_corr(x: jax.Array, w: jax.Array, pads: Pads) -> jax.Array:
    """The stride-1 correlation of (B, *S, C), zero-padded by ``pads`` (>= 0), with (*T, C, O): XLA's own
    convolution, which XLA:CPU runs with Eigen in 1-D and, under :func:`audiogan.models.conv.compiler_options`, in
    2-D too. The padding is the convolution's own, not a padded copy of the input."""
    dims = _DIMS_1D if x.ndim == 3 else _DIMS_2D
    return lax.conv_general_dilated(x, w, (1,) * (x.ndim - 2), pads, dimension_numbers=dims)


def _native_kernel_grad(x: jax.Array, g: jax.Array, pads: Pads) -> jax.Array:
    """sum over batch and positions q of x_padded[q + t] g[q]^T, (*T, C, O): XLA's kernel-gradient convolution.

    Written in XLA's canonical layout (channels as batch, batch as features), not as autodiff's transpose
    of the correlation: XLA:CPU canonicalises that one inside loops, where the step's critic updates run,
    only to a naive emitted loop.
    """
    n = x.ndim - 2
    spatial = tuple(range(1, n + 1))
    dw = lax.conv_general_dilated(
        x.transpose(n + 1, *spatial, 0), g.transpose(*spatial, 0, n + 1), (1,) * n, pads,
        dimension_numbers=_DIMS_1D if n == 1 else _DIMS_2D,
    )  # (C, *T, O)
    return dw.transpose(*spatial, 0, n + 1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _stride1_conv(x: jax.Array, w: jax.Array, pads: Pads) -> jax.Array:
    """The stride-1 correlation of (B, *S, C), zero-padded by ``pads`` (each >= 0), with (*T, C, O), as
    XLA's native convolution.

    Its derivatives are routed by hand (custom VJP) so that every order stays one of two forms XLA:CPU
    runs fast: this correlation, and the kernel gradient :func:`_kernel_grad`. Left to autodiff, the
    gradient penalty's second derivative becomes convolutions whose window is the whole signal.
    """
    return _native_corr(x, w, pads)


def _corr(x: jax.Array, w: jax.Array, pads: Sequence[tuple[int, int]]) -> jax.Array:
    """:func:`_stride1_conv` of x padded by ``pads``, of any sign: the negative parts crop x first, the
    positive parts are the convolution's own padding (no padded copy of the input)."""
    crop = [(min(lo, 0), min(hi, 0)) for lo, hi in pads]
    return _stride1_conv(_pad(x, crop), w, tuple((max(lo, 0), max(hi, 0)) for lo, hi in pads))


def _input_grad(g: jax.Array, w: jax.Array, pads: Pads) -> jax.Array:
    """d/dx of sum(g * corr(pad(x, pads), w)): the correlation of g, padded by T - 1 - pads, with the flipped,
    transposed kernel."""
    n = g.ndim - 2
    full = [(t - 1 - lo, t - 1 - hi) for t, (lo, hi) in zip(w.shape[:n], pads, strict=True)]
    return _corr(g, jnp.swapaxes(jnp.flip(w, tuple(range(n))), -1, -2), full)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _kernel_grad(x: jax.Array, g: jax.Array, pads: Pads) -> jax.Array:
    """d/dw of sum(g * corr(pad(x, pads), w)), (*T, C, O): sum over batch and positions q of
    x_padded[q + t] g[q]^T."""
    return _native_kernel_grad(x, g, pads)


def _bilinear_vjp(op, d_first, d_second) -> None:
    """Define the VJP of ``op(a, b, static)``, linear in a and in b (every convolution here): it keeps a and b,
    and the cotangents are ``d_first(a, b, ct, static)`` and ``d_second(a, b, ct, static)``."""
    op.defvjp(lambda a, b, static: (op(a, b, static), (a, b)),
              lambda static, res, ct: (d_first(*res, ct, static), d_second(*res, ct, static)))


# d/dx and d/dw of the correlation are the input and kernel gradients; the kernel gradient's are the input
# gradient and the correlation: every order stays in these two.
_bilinear_vjp(_stride1_conv, lambda x, w, ct, p: _input_grad(ct, w, p), lambda x, w, ct, p: _kernel_grad(x, ct, p))
_bilinear_vjp(_kernel_grad, lambda x, g, ct, p: _input_grad(g, ct, p), lambda x, g, ct, p: _stride1_conv(x, ct, p))
