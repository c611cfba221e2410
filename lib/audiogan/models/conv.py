"""Convolutions for the audio GANs, in three numerically equal forms: "lax", "matmul" and "polyphase".

XLA on CPU runs long strided convolutions (WaveGAN's kernel 25, stride 4), their transposes, and above
all the gradient penalty's second derivative through them several times slower than PyTorch.

The "polyphase" form (the default on CPU) turns every layer into a stride-1 correlation with a short
kernel, which XLA:CPU runs as fast as a matrix product:

- strided convolution: the padded input cut into blocks of ``stride`` samples (space-to-depth, a reshape
  in 1-D), correlated with the kernel zero-padded to T = ceil(K / stride) blocks and cut the same way:
  7 taps of 4 * C_in channels for WaveGAN (28 products for 25), 3 x 3 taps of 4 * C_in for SpecGAN;
- transposed convolution: output phase r of stride s only meets every s-th tap of the kernel, so one
  correlation of the (unstuffed) input with a kernel of T taps and prod(s) * C_out channels gives all
  phases at once, interleaved by a reshape (7 taps for WaveGAN, 3 x 3 for SpecGAN). The phase kernel is
  built by pads, reshapes and reversals that move whole channel rows, so its gradient is as cheap;
- the correlation's derivatives are routed by hand (``jax.custom_vjp``): to every order they are this
  correlation again (with the kernel flipped) and its kernel gradient, both XLA convolutions in its
  canonical layout. Left to autodiff, the gradient penalty's second derivative became convolutions
  windowed over the whole signal, 100x slower;
- 2-D (SpecGAN): the strided convolution is three operations whose derivatives are each other
  (:func:`_strided_forward`): XLA's own strided forward pass and its kernel gradient (the window dilated
  by the stride), which Eigen runs as fast as PyTorch, and the polyphase input gradient; the transposed
  convolution is that input gradient. SpecGAN's one-channel layers (4 channels a block, 4 output phases,
  which Eigen runs at a tenth of its speed) compute 2 x 2 outputs at a time instead (:func:`_output_blocked`:
  16 channels a block). 2-D convolutions need XLA:CPU's Eigen, not YNNPACK, its default
  for them and 5-10x slower at SpecGAN's shapes: ``import audiogan`` asks for it (:mod:`audiogan.xla_flags`)
  and the module's own compiled functions pass :func:`compiler_options`;
- per layer, where the kernel outweighs the activations (few positions, many channels: the last
  discriminator and first generator layers at d=64) the product is patches times one weight matrix
  instead (:func:`polyphase_product`), whose patches are small there and whose kernel needs no copies.

The "matmul" form writes each layer as one matrix product, built only from slices, pads, reshapes and a
concatenation, whose derivatives of every order are again slices, pads and matrix products:

- 2-D convolution (im2col): the prod(K) shifted strided slices of the padded input, concatenated into
  patches (B, *L_out, prod(K) * C_in), times the kernel reshaped to (prod(K) * C_in, C_out);
- 1-D convolution (:func:`_conv1d_blocked`): the same after a space-to-depth reshape, which needs no
  strided slices: the padded input as blocks of P = stride samples (B, L / P, P * C_in), T = ceil(K / P)
  shifted blocks concatenated, times a (T * P * C_in, C_out) matrix (the kernel and a few zero taps).
  For very long kernels (WaveGAN's 512-tap post filter), where K slices would make patches K times the
  input, each row computes P / stride outputs with P ~ K: a block-Toeplitz product of T = 2 or 3 blocks;
- transposed convolution: the polyphase phases above, as T stride-1 slices of the input concatenated
  into (B, *L, prod(T) * C_in), times the one (prod(T) * C_in, prod(s) * C_out) phase matrix.

The "lax" form is ``lax.conv_general_dilated`` / ``lax.conv_transpose``: the native convolution.
``FORM`` picks the form: "auto" (the default) is "polyphase" on CPU (WaveGAN WGAN-GP step at d=16,
batch 16 on 2 cores: lax 2.27 s, matmul 0.33 s, polyphase 0.21 s) and on GPU (one H100, d=64 batch 64
5:1, float32, side by side: WaveGAN polyphase 48 ms, matmul 63 ms; SpecGAN 55 and 81 ms; lax took 345
and 147 ms in an earlier session; at d=16 batch 16 1:1, where kernel launches dominate, matmul's 1.8 ms
beat polyphase's 3.7; benchmarks/README.md),
and "lax" on TPU, not measured; the environment variable
``AUDIOGAN_CONV_FORM=lax|matmul|polyphase|auto`` sets it at import, :func:`use_form` for a block of
code, and every function takes ``form=``. The form is read when a function is traced: a function
jitted under one form keeps it.

Semantics (every form, channels last, no bias):

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

import contextlib
import functools
import itertools
import math
import os
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from audiogan import xla_flags

FORMS = ("auto", "lax", "matmul", "polyphase")
POLYPHASE_ROWS_PER_COLUMN = float(os.environ.get("AUDIOGAN_POLYPHASE_ROWS", "4"))
LONG_KERNEL = 64  # 1-D kernels at least this long compute ~K / stride outputs per matrix row


def _check_form(form: str, source: str) -> str:
    if form not in FORMS:
        raise ValueError(f"{source} must be one of {FORMS}, got {form!r}")
    return form


FORM = _check_form(os.environ.get("AUDIOGAN_CONV_FORM", "auto"), "AUDIOGAN_CONV_FORM")
# Recompute the matmul form's patches in the backward pass rather than keep them (see _rematerialised).
REMAT = os.environ.get("AUDIOGAN_CONV_REMAT", "1") != "0"


def compiler_options(elemental_fusions: bool = False) -> dict[str, str | bool]:
    """Options for ``jax.jit(..., compiler_options=...)`` of code that runs these convolutions: on CPU, every
    convolution through Eigen, the memory-optimised instruction order and, with ``elemental_fusions``,
    XLA:CPU's elemental fusion emitters (:func:`audiogan.xla_flags.compiler_options`); elsewhere none. Pass
    them when jitting the models yourself."""
    return xla_flags.compiler_options(jax.default_backend(), elemental_fusions)


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


Padding1d = str | tuple[int, int]
Padding2d = str | Sequence[tuple[int, int]]


def resolve_form(form: str | None = None) -> str:
    """The form a call uses: ``form``, else the module's ``FORM``; "auto" is "polyphase" on CPU and GPU (measured
    fastest there), "lax" on TPU (not measured)."""
    form = _check_form(FORM if form is None else form, "form")
    if form == "auto":
        backend = jax.default_backend()
        return "lax" if backend == "tpu" else "polyphase"
    return form


@contextlib.contextmanager
def use_form(form: str) -> Iterator[None]:
    """Set ``FORM`` for the block (for functions traced inside it)."""
    global FORM
    previous, FORM = FORM, _check_form(form, "form")
    try:
        yield
    finally:
        FORM = previous


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


# The matmul forms are jitted by _rematerialised below (hashable static arguments: tuples) so that called
# eagerly each layer is one compiled program rather than dozens of tiny ones; inside an outer jit they are inlined.
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
    as patches times one weight matrix (:func:`_stuffed_conv_impl`)."""
    return _stuffed_conv_impl(x, w, strides, pads, transpose_kernel, product="matmul")


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
    :func:`polyphase_product`.
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
    product = product or polyphase_product(b * math.prod(rows), n_cols, rows_per_column)
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


def polyphase_product(n_rows: int, n_cols: int, rows_per_column: float | None = None) -> str:
    """How the polyphase form computes a layer whose product has ``n_rows`` output rows (batch x positions)
    and ``n_cols`` output columns: "conv" (XLA's stride-1 convolution) where the activations outweigh the
    kernel (``n_rows >= POLYPHASE_ROWS_PER_COLUMN * n_cols``), "matmul" (patches times the weight matrix),
    whose patches are then small, where the kernel does. At 4 rows per column (the default) WaveGAN d=64
    batch 16 runs its last two discriminator and first two generator layers as products of patches."""
    rows_per_column = POLYPHASE_ROWS_PER_COLUMN if rows_per_column is None else rows_per_column
    return "conv" if n_rows >= rows_per_column * n_cols else "matmul"


Pads = tuple[tuple[int, int], ...]


def _native_corr(x: jax.Array, w: jax.Array, pads: Pads) -> jax.Array:
    """The stride-1 correlation of (B, *S, C), zero-padded by ``pads`` (>= 0), with (*T, C, O): XLA's own
    convolution, which XLA:CPU runs with Eigen in 1-D and, under :func:`compiler_options`, in 2-D too. The
    padding is the convolution's own, not a padded copy of the input."""
    dims = _DIMS_1D if x.ndim == 3 else _DIMS_2D
    return lax.conv_general_dilated(x, w, (1,) * (x.ndim - 2), pads, dimension_numbers=dims)


def _native_kernel_grad(x: jax.Array, g: jax.Array, pads: Pads) -> jax.Array:
    """sum over batch and positions q of x_padded[q + t] g[q]^T, (*T, C, O): XLA's kernel-gradient convolution.

    Written in XLA's canonical layout (channels as batch, batch as features), not as autodiff's transpose
    of the correlation: XLA:CPU canonicalises that one inside loops, where the step's critic updates run,
    only to a naive emitted loop, 40x slower than the Eigen convolution.
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
    gradient penalty's second derivative becomes convolutions whose window is the whole signal, 100x slower.
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
    if polyphase_product(b * math.prod(n_out), c_out, rows_per_column) == "conv":
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
# each computed the fastest way measured on 2 cores (SpecGAN d=16 batch 64, ms per layer):
#   forward        y = F(x, w): XLA's own strided convolution (Eigen: 9.4 against PyTorch's 9.3 ms at
#                  64 x 64 x 64 x 16 -> 32 channels; the polyphase form took 21);
#   input grad     T(g, w): the polyphase form's (stride-1 correlations: 12 ms against XLA's 95, whose
#                  derivative of a strided convolution dilates the input);
#   kernel grad    K(x, g): XLA's convolution with the window dilated by the stride, written in its canonical
#                  layout (channels as batch, batch as features) so that it stays Eigen's inside loops too
#                  (24 against 37 ms for the polyphase form's, whose space-to-depth copy before the kernel
#                  gradient's transpose fuses into one slow 6-D permutation).
# d<y, ct>/dx = T(ct, w), d/dw = K(x, ct); T is linear in g and w, with d<T(g, w), ct>/dg = F(ct, w) and
# d/dw = K(ct, g); K's are T(g, ct) and F(x, ct). So every derivative order stays in these three.


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _strided_forward(x: jax.Array, w: jax.Array, spec: _Strided) -> jax.Array:
    if _blocks_outputs(w, spec):
        return _output_blocked_forward(x, w, spec)
    return lax.conv_general_dilated(x, w, spec.strides, spec.pads, dimension_numbers=_DIMS_2D)


# F and T with fewer input channels than FEW_INPUT_CHANNELS per input block (C_in * prod(strides)) and at most
# BLOCKED_CHANNELS output channels once blocked compute 2 x 2 outputs of F at a time (:func:`_output_blocked`):
# SpecGAN's one-channel layers, the discriminator's first and the generator's last. Eigen runs them at
# 36-40 GFLOP/s as they are (four input channels per block, four output phases); blocked, F at d=16 batch 64
# took 3.0 against 6.0 ms, and the SpecGAN step 7% less time at d=16 batch 16, 10% at batch 64, 2.5% at
# d=32, the same temporaries. At d=64 (256 channels blocked) the step was no faster (1.008) and held 27 MiB
# more temporaries, so it is left as it was.
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
    """:func:`conv2d` in the polyphase form: strided, the three operations above (:func:`_strided_forward`);
    stride 1, the stride-1 correlation."""
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
    """:func:`_stuffed_conv_impl` in the polyphase form: per layer a stride-1 correlation of the (unstuffed)
    input with the phase kernel (*T, C_in, prod(s) * C_out), or patches times it (:func:`polyphase_product`)."""
    return _stuffed_conv_impl(x, w, strides, pads, transpose_kernel, product=None, rows_per_column=rows_per_column)


def _conv2d_transpose_polyphase_impl(
    x: jax.Array, w: jax.Array, strides: tuple[int, ...], pads: tuple[tuple[int, int], ...], rows_per_column: float
) -> jax.Array:
    """:func:`conv2d_transpose` in the polyphase form: the input gradient T of the strided convolution F
    whose adjoint it is (:func:`_strided_forward`), so that its derivatives are F (XLA's strided forward)
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


def _rematerialised(impl, static_argnames: tuple[str, ...]):
    """``impl`` jitted (static arguments by name), its patches recomputed from the input when a derivative
    needs them (``jax.checkpoint``) instead of stored: a patch matrix is ``T * P / stride`` (7 for WaveGAN)
    times the size of its layer's input, and storing them for the gradient penalty's second derivative
    and every critic update is what made the matmul form's memory grow (``REMAT``)."""

    @functools.partial(jit, static_argnames=(*static_argnames, "remat"))
    def jitted(x, w, remat, **static):
        if not remat:
            return impl(x, w, **static)
        return jax.checkpoint(functools.partial(impl, **static))(x, w)

    @functools.wraps(impl)
    def fn(x, w, **static):
        return jitted(x, w, remat=REMAT, **static)

    return fn


_conv_matmul = _rematerialised(_conv_matmul_impl, ("strides", "pads"))
_conv1d_blocked = _rematerialised(_conv1d_blocked_impl, ("stride", "pads", "per_block"))
_stuffed_conv_matmul = _rematerialised(_stuffed_conv_matmul_impl, ("strides", "pads", "transpose_kernel"))
# The module's POLYPHASE_ROWS_PER_COLUMN is passed in as a static argument: changing it retraces.
_conv_polyphase = jit(_conv_polyphase_impl, static_argnames=("strides", "pads", "rows_per_column"))
_conv2d_polyphase = jit(_conv2d_polyphase_impl, static_argnames=("strides", "pads", "rows_per_column"))
_conv2d_transpose_polyphase = jit(
    _conv2d_transpose_polyphase_impl, static_argnames=("strides", "pads", "rows_per_column")
)
_stuffed_conv_polyphase = jit(
    _stuffed_conv_polyphase_impl, static_argnames=("strides", "pads", "transpose_kernel", "rows_per_column")
)


# ---------------------------------------------------------------------------- 1-D (WaveGAN)
_DIMS_1D = ("NWC", "WIO", "NWC")


def conv1d(
    x_btc: jax.Array, kernel_kio: jax.Array, stride: int = 1, padding: Padding1d = "SAME", *, form: str | None = None
) -> jax.Array:
    """Strided convolution, TF 'SAME' padding by default: (B, T, I) -> (B, ceil(T / stride), O). No bias."""
    (stride,) = _strides(stride, 1)
    (pads,) = _forward_pads(x_btc.shape[1:2], kernel_kio.shape[:1], (stride,), _pairs1(padding))
    if resolve_form(form) == "lax":
        return lax.conv_general_dilated(x_btc, kernel_kio, (stride,), (pads,), dimension_numbers=_DIMS_1D)
    if resolve_form(form) == "polyphase":
        return _conv_polyphase(
            x_btc, kernel_kio, strides=(stride,), pads=(pads,), rows_per_column=POLYPHASE_ROWS_PER_COLUMN
        )
    kernel_len = kernel_kio.shape[0]
    per_block = max(1, kernel_len // stride) if kernel_len >= LONG_KERNEL else 1
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
    if resolve_form(form) == "lax":
        return lax.conv_transpose(
            x_btc, kernel_koi, (stride,), (pads,), dimension_numbers=_DIMS_1D, transpose_kernel=True
        )
    if resolve_form(form) == "polyphase":
        return _stuffed_conv_polyphase(
            x_btc, kernel_koi, strides=(stride,), pads=(pads,), transpose_kernel=True,
            rows_per_column=POLYPHASE_ROWS_PER_COLUMN,
        )
    return _stuffed_conv_matmul(x_btc, kernel_koi, strides=(stride,), pads=(pads,), transpose_kernel=True)


# ---------------------------------------------------------------------------- 2-D (SpecGAN)
_DIMS_2D = ("NHWC", "HWIO", "NHWC")


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
    if resolve_form(form) == "lax":
        return lax.conv_general_dilated(x_bhwc, kernel_hwio, strides, pads, dimension_numbers=_DIMS_2D)
    if resolve_form(form) == "polyphase":
        return _conv2d_polyphase(
            x_bhwc, kernel_hwio, strides=strides, pads=tuple(pads), rows_per_column=POLYPHASE_ROWS_PER_COLUMN
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
    if resolve_form(form) == "lax":
        return lax.conv_transpose(x_bhwc, kernel_hwio, strides, pads, dimension_numbers=_DIMS_2D)
    if resolve_form(form) == "polyphase":
        return _conv2d_transpose_polyphase(
            x_bhwc, kernel_hwio, strides=strides, pads=tuple(pads), rows_per_column=POLYPHASE_ROWS_PER_COLUMN
        )
    return _stuffed_conv_matmul(x_bhwc, kernel_hwio, strides=strides, pads=tuple(pads), transpose_kernel=False)
