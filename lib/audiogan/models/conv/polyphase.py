"""The "polyphase" form: every layer a stride-1 correlation with a short kernel, which XLA runs as fast as a
matrix product.

- strided convolution (:func:`_conv_polyphase_impl`): the padded input cut into blocks of ``stride`` samples
  (space-to-depth, a reshape in 1-D), correlated with the kernel zero-padded to T = ceil(K / stride) blocks and
  cut the same way: 7 taps of 4 * C_in channels for WaveGAN (28 products for 25), 3 x 3 taps of 4 * C_in for
  SpecGAN;
- transposed convolution: the output phases (:mod:`~audiogan.models.conv.transposed`), one correlation of the
  (unstuffed) input with a phase kernel of T taps and prod(s) * C_out channels (7 taps for WaveGAN, 3 x 3 for
  SpecGAN), built by pads, reshapes and reversals that move whole channel rows, so its gradient is as cheap;
- the correlation's derivatives are routed by hand (:mod:`~audiogan.models.conv.correlation`): to every order
  they are this correlation again (with the kernel flipped) and its kernel gradient;
- 2-D (SpecGAN): the strided convolution is three operations whose derivatives are each other
  (:func:`_strided_forward`): XLA's own strided forward pass, its kernel gradient (the window dilated by the
  stride) and the polyphase input gradient; the transposed convolution is that input gradient. One-channel
  layers (4 channels a block, 4 output phases) compute 2 x 2 outputs at a time instead
  (:func:`_output_blocked`: 16 channels a block);
- per layer, where the kernel outweighs the activations (few positions, many channels: the last
  discriminator and first generator layers at d=64) the product is patches times one weight matrix instead
  (:func:`~audiogan.models.conv.settings.polyphase_product`), whose patches are small there and whose kernel
  needs no copies.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from audiogan.models.conv import settings
from audiogan.models.conv.compiling import jit
from audiogan.models.conv.correlation import _DIMS_2D, _bilinear_vjp, _corr
from audiogan.models.conv.padding import _out_sizes, _pad
from audiogan.models.conv.patches import _patch_matmul
from audiogan.models.conv.transposed import _stuffed_conv_impl


def _conv_polyphase_impl(
    x: jax.Array, w: jax.Array, strides: tuple[int, ...], pads: tuple[tuple[int, int], ...], rows_per_column: float
) -> jax.Array:
    """Strided convolution as a stride-1 one on the input's polyphase components (space-to-depth).

    Output q reads padded samples s * q + k = s * (q + t) + p (k = s * t + p, p < s): blocks of s samples
    (B, *S / s, prod(s) * C) correlated with the kernel zero-padded to T = ceil(K / s) blocks and cut
    the same way, (*T, prod(s) * C, O).
    """
    n, b, c = x.ndim - 2, x.shape[0], x.shape[-1]
    kernel, c_out, sizes = w.shape[:n], w.shape[-1], x.shape[1:-1]
    n_out = _out_sizes(sizes, pads, kernel, strides)
    if all(s == 1 for s in strides):
        return _corr(x, w, pads)
    taps = [-(-k // s) for k, s in zip(kernel, strides, strict=True)]
    blocks = [o + t - 1 for o, t in zip(n_out, taps, strict=True)]
    # The left padding rounded up to whole blocks and the kernel led by as many zero taps: then the input
    # cuts into blocks as it is, and the padding is the block convolution's own, not a padded copy.
    lead = [-(-lo // s) * s - lo for (lo, _), s in zip(pads, strides, strict=True)]
    if all(sz % s == 0 and -(-(k + e) // s) == t
           for sz, s, k, e, t in zip(sizes, strides, kernel, lead, taps, strict=True)):
        block_pads = [(-(-lo // s), nb - sz // s - -(-lo // s))
                      for (lo, _), s, nb, sz in zip(pads, strides, blocks, sizes, strict=True)]
        xp = x
    else:  # pad (or crop) a copy to exactly the blocks read
        lead = [0] * n
        block_pads = [(0, 0)] * n
        xp = _pad(x, pads)
        xp = _pad(xp, [(0, nb * s - sz) for nb, s, sz in zip(blocks, strides, xp.shape[1:-1], strict=True)])
    in_blocks = [sz // s for sz, s in zip(xp.shape[1:-1], strides, strict=True)]
    x_blk = xp.reshape(b, *itertools.chain.from_iterable(zip(in_blocks, strides, strict=True)), c)
    x_blk = x_blk.transpose(0, *range(1, 2 * n, 2), *range(2, 2 * n + 1, 2), 2 * n + 1)
    x_blk = x_blk.reshape(b, *in_blocks, math.prod(strides) * c)
    w_pad = jnp.pad(w, [(e, t * s - k - e) for t, s, k, e in zip(taps, strides, kernel, lead, strict=True)]
                    + [(0, 0)] * 2)
    w_blk = w_pad.reshape(*itertools.chain.from_iterable(zip(taps, strides, strict=True)), c, c_out)
    w_blk = w_blk.transpose(*range(0, 2 * n, 2), *range(1, 2 * n, 2), 2 * n, 2 * n + 1)
    if settings.polyphase_product(b * math.prod(n_out), c_out, rows_per_column) == "conv":
        return _corr(x_blk, w_blk.reshape(*taps, math.prod(strides) * c, c_out), block_pads)
    return _patch_matmul(_pad(x_blk, block_pads), taps, (1,) * n, n_out, w_blk.reshape(-1, c_out))


class _Strided(NamedTuple):
    """A strided 2-D convolution's static shape: what its three operations below need besides arrays."""

    strides: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    kernel: tuple[int, ...]
    in_spatial: tuple[int, ...]
    rows_per_column: float

    @property
    def out_spatial(self) -> tuple[int, ...]:
        return _out_sizes(self.in_spatial, self.pads, self.kernel, self.strides)


# conv2d's strided convolution in the polyphase form is three operations whose derivatives are each other,
# each computed the fastest way measured (benchmarks/README.md):
#   forward        y = F(x, w): XLA's own strided convolution (Eigen's);
#   input grad     T(g, w): the polyphase form's stride-1 correlations (XLA's derivative of a strided
#                  convolution dilates the input);
#   kernel grad    K(x, g): XLA's convolution with the window dilated by the stride, written in its canonical
#                  layout (channels as batch, batch as features) so that it stays Eigen's inside loops too
#                  (the polyphase form's space-to-depth copy before the kernel gradient's transpose fuses into
#                  one slow 6-D permutation).
# d<y, ct>/dx = T(ct, w), d/dw = K(x, ct); T is linear in g and w, with d<T(g, w), ct>/dg = F(ct, w) and
# d/dw = K(ct, g); K's are T(g, ct) and F(x, ct). So every derivative order stays in these three.


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _strided_forward(x: jax.Array, w: jax.Array, spec: _Strided) -> jax.Array:
    if _blocks_outputs(w, spec):
        return _output_blocked_forward(x, w, spec)
    return lax.conv_general_dilated(x, w, spec.strides, spec.pads, dimension_numbers=_DIMS_2D)


# F and T with fewer input channels than FEW_INPUT_CHANNELS per input block (C_in * prod(strides)) and at most
# BLOCKED_CHANNELS output channels once blocked compute 2 x 2 outputs of F at a time (:func:`_output_blocked`):
# SpecGAN's one-channel layers, the discriminator's first and the generator's last, which Eigen runs slowly as
# they are (four input channels per block, four output phases). With more output channels (d=64: 256 once
# blocked) blocking did not pay, so those layers are left as they were.
FEW_INPUT_CHANNELS = 8
BLOCKED_CHANNELS = 128
OUTPUT_BLOCK = 2


def _blocks_outputs(w: jax.Array, spec: _Strided) -> bool:
    """Whether F (and T) of kernel ``w`` (*K, C_in, C_out) run output-blocked (above): on CPU, where it was
    measured; the GPU keeps the form its figures were measured with."""
    return (jax.default_backend() == "cpu" and w.shape[-2] * math.prod(spec.strides) < FEW_INPUT_CHANNELS
            and OUTPUT_BLOCK ** len(spec.strides) * w.shape[-1] <= BLOCKED_CHANNELS
            and all(m % OUTPUT_BLOCK == 0 for m in spec.out_spatial))


def _output_blocked(w: jax.Array, spec: _Strided) -> tuple[jax.Array, _Strided]:
    """F as a convolution computing r x r outputs per position (r = OUTPUT_BLOCK): stride s * r, its kernel
    K + s * (r - 1) taps wide holding the r x r output phases' kernels as r * r * O output channels, phase
    (a, b) reading taps s * (a, b) + k (output r * Q + a reads padded input s * r * Q + s * a + k). Run in
    the polyphase form, the input is cut into blocks of s * r samples: 16 channels for SpecGAN's one-channel
    input rather than 4. Returns that kernel (*K', C, (a, b, O)) and its convolution's shape."""
    r, n = OUTPUT_BLOCK, len(spec.strides)
    wide = [k + s * (r - 1) for k, s in zip(spec.kernel, spec.strides, strict=True)]
    phases = [jnp.pad(w, [(s * a, wd - k - s * a) for a, s, k, wd in zip(phase, spec.strides, spec.kernel, wide,
                                                                           strict=True)] + [(0, 0)] * 2)
              for phase in itertools.product(range(r), repeat=n)]
    w_wide = jnp.stack(phases, axis=-2).reshape(*wide, w.shape[-2], r ** n * w.shape[-1])
    pads = tuple((lo, (m // r - 1) * s * r + wd - size - lo) for (lo, _), m, s, wd, size
                 in zip(spec.pads, spec.out_spatial, spec.strides, wide, spec.in_spatial, strict=True))
    return w_wide, spec._replace(strides=tuple(s * r for s in spec.strides), pads=pads, kernel=tuple(wide))


def _output_blocked_forward(x: jax.Array, w: jax.Array, spec: _Strided) -> jax.Array:
    """F by :func:`_output_blocked`, its r x r phases then interleaved."""
    r, n, c_out = OUTPUT_BLOCK, len(spec.strides), w.shape[-1]
    w_wide, wide = _output_blocked(w, spec)
    y = _conv_polyphase_impl(x, w_wide, wide.strides, wide.pads, wide.rows_per_column)
    y = y.reshape(y.shape[0], *y.shape[1:-1], *(r,) * n, c_out)
    y = y.transpose(0, *itertools.chain.from_iterable((1 + i, 1 + n + i) for i in range(n)), 1 + 2 * n)
    return y.reshape(y.shape[0], *spec.out_spatial, c_out)


def _output_blocked_input_grad(g: jax.Array, w: jax.Array, spec: _Strided) -> jax.Array:
    """T, the adjoint of :func:`_output_blocked_forward`: g cut into r x r blocks (the phases as channels, in
    the wide kernel's order), then the polyphase input gradient of the wide convolution: 2 x 2 taps of
    16 output channels for SpecGAN's one-channel layers rather than 3 x 3 taps of 4."""
    r, n, c_out = OUTPUT_BLOCK, len(spec.strides), w.shape[-1]
    w_wide, wide = _output_blocked(w, spec)
    blocks = [m // r for m in g.shape[1:-1]]
    g = g.reshape(g.shape[0], *itertools.chain.from_iterable((m, r) for m in blocks), c_out)
    g = g.transpose(0, *range(1, 2 * n, 2), *range(2, 2 * n + 1, 2), 2 * n + 1)
    return _polyphase_input_grad(g.reshape(g.shape[0], *blocks, r ** n * c_out), w_wide, wide)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _strided_input_grad(g: jax.Array, w: jax.Array, spec: _Strided) -> jax.Array:
    if _blocks_outputs(w, spec):
        return _output_blocked_input_grad(g, w, spec)
    return _polyphase_input_grad(g, w, spec)


def _polyphase_input_grad(g: jax.Array, w: jax.Array, spec: _Strided) -> jax.Array:
    x0 = jnp.zeros((g.shape[0], *spec.in_spatial, w.shape[-2]), g.dtype)  # its shape only: XLA drops the rest
    _, vjp = jax.vjp(
        lambda x: _conv_polyphase_impl(x, w, spec.strides, spec.pads, spec.rows_per_column), x0
    )
    return vjp(g)[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _strided_kernel_grad(x: jax.Array, g: jax.Array, spec: _Strided) -> jax.Array:
    # the input padded (or cropped) to exactly kernel + stride * (outputs - 1) samples per axis: the cropping
    # a slice, the padding the convolution's own
    pads = [(lo, k + s * (o - 1) - size - lo) for (lo, _), k, s, o, size
            in zip(spec.pads, spec.kernel, spec.strides, g.shape[1:-1], spec.in_spatial, strict=True)]
    xc = _pad(x, [(min(lo, 0), min(hi, 0)) for lo, hi in pads])
    dw = lax.conv_general_dilated(xc.transpose(3, 1, 2, 0), g.transpose(1, 2, 0, 3), (1, 1),
                                  [(max(lo, 0), max(hi, 0)) for lo, hi in pads],
                                  rhs_dilation=spec.strides, dimension_numbers=_DIMS_2D)  # (C, *K, O)
    return dw.transpose(1, 2, 0, 3)


_bilinear_vjp(_strided_forward, lambda x, w, ct, spec: _strided_input_grad(ct, w, spec),
              lambda x, w, ct, spec: _strided_kernel_grad(x, ct, spec))
_bilinear_vjp(_strided_input_grad, lambda g, w, ct, spec: _strided_forward(ct, w, spec),
              lambda g, w, ct, spec: _strided_kernel_grad(ct, g, spec))
_bilinear_vjp(_strided_kernel_grad, lambda x, g, ct, spec: _strided_input_grad(g, ct, spec),
              lambda x, g, ct, spec: _strided_forward(x, ct, spec))


def _conv2d_polyphase_impl(
    x: jax.Array, w: jax.Array, strides: tuple[int, ...], pads: tuple[tuple[int, int], ...], rows_per_column: float
) -> jax.Array:
    """:func:`~audiogan.models.conv.conv2d` in the polyphase form: strided, the three operations above
    (:func:`_strided_forward`); stride 1, the stride-1 correlation."""
    if all(s == 1 for s in strides):
        return _conv_polyphase_impl(x, w, strides, pads, rows_per_column)
    return _strided_forward(x, w, _Strided(strides, pads, w.shape[:2], x.shape[1:3], rows_per_column))


def _stuffed_conv_polyphase_impl(
    x: jax.Array,
    w: jax.Array,
    strides: tuple[int, ...],
    pads: tuple[tuple[int, int], ...],
    transpose_kernel: bool,
    rows_per_column: float,
) -> jax.Array:
    """:func:`~audiogan.models.conv.transposed._stuffed_conv_impl` in the polyphase form: per layer a stride-1
    correlation of the (unstuffed) input with the phase kernel (*T, C_in, prod(s) * C_out), or patches times it
    (:func:`~audiogan.models.conv.settings.polyphase_product`)."""
    return _stuffed_conv_impl(x, w, strides, pads, transpose_kernel, product=None, rows_per_column=rows_per_column)


def _conv2d_transpose_polyphase_impl(
    x: jax.Array, w: jax.Array, strides: tuple[int, ...], pads: tuple[tuple[int, int], ...], rows_per_column: float
) -> jax.Array:
    """:func:`~audiogan.models.conv.conv2d_transpose` in the polyphase form: the input gradient T of the strided
    convolution F whose adjoint it is (:func:`_strided_forward`), so that its derivatives are F (XLA's strided forward)
    and K (XLA's dilated kernel gradient) rather than stride-1 correlations of the phase kernel and their
    layout copies. Output m reads stuffed input m + k - lo = s * q, i.e. F's tap K - 1 - k with F's padding
    K - 1 - lo | K - 1 - hi, and F's kernel is w flipped with its channel axes swapped. Paddings that give
    F a negative padding or an unread remainder take the phase-kernel correlation instead."""
    kernel, sizes = w.shape[:2], x.shape[1:3]
    n_out = tuple((n - 1) * s + 1 + lo + hi - k + 1
                  for n, s, (lo, hi), k in zip(sizes, strides, pads, kernel, strict=True))
    f_pads = tuple((k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip(kernel, pads, strict=True))
    if all(pl >= 0 and ph >= 0 and (m + pl + ph - k) % s == 0 and (m + pl + ph - k) // s + 1 == n
           for (pl, ph), m, k, s, n in zip(f_pads, n_out, kernel, strides, sizes, strict=True)):
        w_f = jnp.swapaxes(jnp.flip(w, (0, 1)), 2, 3)
        return _strided_input_grad(x, w_f, _Strided(strides, f_pads, kernel, n_out, rows_per_column))
    return _stuffed_conv_impl(x, w, strides, pads, False, product=None, rows_per_column=rows_per_column)


# settings.POLYPHASE_ROWS_PER_COLUMN is passed in as a static argument: changing it retraces.
_conv_polyphase = jit(_conv_polyphase_impl, static_argnames=("strides", "pads", "rows_per_column"))
_conv2d_polyphase = jit(_conv2d_polyphase_impl, static_argnames=("strides", "pads", "rows_per_column"))
_conv2d_transpose_polyphase = jit(
    _conv2d_transpose_polyphase_impl, static_argnames=("strides", "pads", "rows_per_column")
)
_stuffed_conv_polyphase = jit(
    _stuffed_conv_polyphase_impl, static_argnames=("strides", "pads", "transpose_kernel", "rows_per_column")
)

