"""Convolutions for the audio GANs, in two numerically equal forms: "lax" and "matmul".

XLA on CPU runs long strided convolutions (WaveGAN's kernel 25, stride 4), their transposes, and above
all the gradient penalty's second derivative through them several times slower than PyTorch. The
"matmul" form writes each layer as one matrix product, built only from slices, pads, reshapes and a
concatenation, whose derivatives of every order are again slices, pads and matrix products:

- 2-D convolution (im2col): the prod(K) shifted strided slices of the padded input, concatenated into
  patches (B, *L_out, prod(K) * C_in), times the kernel reshaped to (prod(K) * C_in, C_out);
- 1-D convolution (:func:`_conv1d_blocked`): the same after a space-to-depth reshape, which needs no
  strided slices: the padded input as blocks of P = stride samples (B, L / P, P * C_in), T = ceil(K / P)
  shifted blocks concatenated, times a (T * P * C_in, C_out) matrix (the kernel and a few zero taps).
  At d=16, batch 16 it runs as fast as the K strided slices (the gradient penalty 6% faster) and
  compiles twice as fast. For very long kernels (WaveGAN's 512-tap post filter), where K slices would
  make patches K times the input, each row computes P / stride outputs with P ~ K: a block-Toeplitz
  product of T = 2 or 3 blocks;
- transposed convolution (polyphase, "sub-pixel"): output phase r of stride s only meets every s-th
  tap of the kernel, so T = ceil(K / s) + 1 stride-1 slices of the (unstuffed) input, concatenated
  into (B, *L, prod(T) * C_in), times one (prod(T) * C_in, prod(s) * C_out) matrix assembled from the
  kernel (zeros where a phase has no tap), give all s phases at once; they are interleaved by a
  reshape.

The "lax" form is ``lax.conv_general_dilated`` / ``lax.conv_transpose``: the native convolution.
``FORM`` picks the form: "auto" (the default) is "matmul" on CPU and GPU, where it measured faster
for every WaveGAN and SpecGAN step we timed (2-core CPU: 6.7x at d=16; H100 with jax 0.11.2:
5.7x for WaveGAN d=64 batch 64 WGAN-GP 5:1, 1.9x for SpecGAN; benchmarks/README.md), and "lax" on
TPU, which is not measured yet; the environment variable ``AUDIOGAN_CONV_FORM=lax|matmul|auto``
sets it at import, :func:`use_form` for a block of code, and every function takes ``form=``. The form
is read when a function is traced: a function jitted under one form keeps it.

Semantics (both forms, channels last, no bias):

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

import jax
import jax.numpy as jnp
from jax import lax

FORMS = ("auto", "lax", "matmul")
LONG_KERNEL = 64  # 1-D kernels at least this long compute ~K / stride outputs per matrix row


def _check_form(form: str, source: str) -> str:
    if form not in FORMS:
        raise ValueError(f"{source} must be one of {FORMS}, got {form!r}")
    return form


FORM = _check_form(os.environ.get("AUDIOGAN_CONV_FORM", "auto"), "AUDIOGAN_CONV_FORM")
# Recompute the matmul form's patches in the backward pass rather than keep them (see _rematerialised).
REMAT = os.environ.get("AUDIOGAN_CONV_REMAT", "1") != "0"
# Order of a stride-1 patch product (_patch_matmul): "never" builds the patches; "auto" multiplies first and
# shifts the outputs where the output is narrower than the input; "always" everywhere (tests). Measured on
# 2 busy cores, WaveGAN d=32 batch 16 1:1: "never" 6.3 s/step and 602 MiB of XLA temporaries, "auto" 7.8 s
# and 677 MiB (XLA materialises the shifted slices), so "never" is the default (AUDIOGAN_SHIFT_OUTPUTS).
SHIFT_OUTPUTS = os.environ.get("AUDIOGAN_SHIFT_OUTPUTS", "never")

Padding1d = str | tuple[int, int]
Padding2d = str | Sequence[tuple[int, int]]


def resolve_form(form: str | None = None) -> str:
    """The form a call uses: ``form``, else the module's ``FORM``; "auto" is "matmul" on CPU and GPU
    (measured faster there), "lax" on TPU (not measured)."""
    form = _check_form(FORM if form is None else form, "form")
    if form == "auto":
        return "lax" if jax.default_backend() == "tpu" else "matmul"
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


def _matmul(patches: jax.Array, w_kc: jax.Array) -> jax.Array:
    """(..., K) x (K, C) -> (..., C): one dot."""
    return lax.dot_general(patches, w_kc, (((patches.ndim - 1,), (0,)), ((), ())))


def shifts_outputs(n_in: int, n_out: int, strides: Sequence[int], n_taps: int) -> bool:
    """Whether a stride-1 patch product is computed as "shifted outputs" (:func:`_patch_matmul`, SHIFT_OUTPUTS)."""
    if SHIFT_OUTPUTS == "never" or n_taps == 1 or any(s != 1 for s in strides):
        return False
    return SHIFT_OUTPUTS == "always" or n_out < n_in


def _patch_matmul(x: jax.Array, taps: Sequence[int], strides: Sequence[int], out: Sequence[int], w_kc: jax.Array):
    """``_patches(x, taps, strides, out) @ w_kc``, in whichever of two orders needs less memory.

    Patches first: a (B, *out, T * C) copy of the input, times w_kc (T * C, N). Or, for stride-1 taps,
    outputs first: x times all T blocks of w_kc side by side, (B, *S, T * N), then the sum of each tap's
    slice of its own block. The product of a layer whose output has fewer channels per row than its input
    (N < C: the discriminator's 1-D layers after the first, C = 4 C_in, N = 2 C_in; the generator's last
    layer, C = d, N = 4) is T * N instead of T * C wide: half, or 16 times smaller.
    """
    n_taps, c, n = math.prod(taps), x.shape[-1], w_kc.shape[-1]
    if not shifts_outputs(c, n, strides, n_taps):
        return _matmul(_patches(x, taps, strides, out), w_kc)
    w_cj = w_kc.reshape(n_taps, c, n).transpose(1, 0, 2).reshape(c, n_taps * n)
    y_all = _matmul(x, w_cj).reshape(*x.shape[:-1], n_taps, n)  # (B, *S, T, N)
    b, y = x.shape[0], None
    for j, tap in enumerate(itertools.product(*(range(t) for t in taps))):
        limit = (b, *(i + o for i, o in zip(tap, out, strict=True)), j + 1, n)
        term = lax.slice(y_all, (0, *tap, j, 0), limit).reshape(b, *out, n)
        y = term if y is None else y + term
    return y


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
    """Polyphase form of the stride-1 correlation of the zero-stuffed, padded input with w (*K, in, out).

    That is ``lax.conv_transpose(x, w, strides, pads, transpose_kernel=...)``: with ``transpose_kernel`` the
    kernel (*K, out, in) is first flipped and its channel axes swapped, as TF's transposed convolution does.
    Output s * q + r reads input q + d with kernel tap s * d - r + pad_lo, for d in [dmin, dmax]:
    T = dmax - dmin + 1 slices of the input cover every phase, and one weight matrix
    (T * C_in, s * C_out) holds each phase's taps.
    """
    n = x.ndim - 2
    if transpose_kernel:
        w = jnp.swapaxes(jnp.flip(w, tuple(range(n))), -1, -2)
    b, c_out = x.shape[0], w.shape[-1]
    kernel, sizes = w.shape[:n], x.shape[1:-1]
    dims = list(zip(sizes, kernel, strides, pads, strict=True))
    n_out = [(sz - 1) * s + 1 + lo + hi - k + 1 for sz, k, s, (lo, hi) in dims]
    rows = [-(-m // s) for m, s in zip(n_out, strides, strict=True)]
    d_min = [(-lo) // s for s, (lo, _) in zip(strides, pads, strict=True)]
    d_max = [(s - 1 + k - 1 - lo) // s for s, (lo, _), k in zip(strides, pads, kernel, strict=True)]
    taps = [hi - lo + 1 for lo, hi in zip(d_min, d_max, strict=True)]
    # Rows q read inputs q + d_min .. q + d_max: pad (or crop) the input to exactly that range.
    xp = _pad(x, [(-lo, q - 1 + hi - (sz - 1)) for lo, hi, q, sz in zip(d_min, d_max, rows, sizes, strict=True)])

    w_phases = w  # per axis: (..., K_i, ...) -> (..., T_i, ..., C_in, [phases so far], s_i, C_out)
    for i, (k, s, (lo, _), d0, d1, t) in enumerate(zip(kernel, strides, pads, d_min, d_max, taps, strict=True)):
        first, last = s * d0 - (s - 1) + lo, s * d1 + lo  # the taps any phase reads, maybe outside [0, K)
        pad_lo, pad_hi = max(0, -first), max(0, last - (k - 1))
        w_pad = jnp.pad(w_phases, [(pad_lo, pad_hi) if a == i else (0, 0) for a in range(w_phases.ndim)])
        starts = [s * d0 - r + lo + pad_lo for r in range(s)]
        phases = [lax.slice_in_dim(w_pad, st, st + s * (t - 1) + 1, stride=s, axis=i) for st in starts]
        w_phases = jnp.stack(phases, axis=-2)
    w_kc = w_phases.reshape(math.prod(taps) * x.shape[-1], math.prod(strides) * c_out)

    y = _patch_matmul(xp, taps, (1,) * n, rows, w_kc).reshape(b, *rows, *strides, c_out)
    if n > 1:  # interleave: (B, Q_1..Q_n, s_1..s_n, C) -> (B, Q_1, s_1, .., Q_n, s_n, C)
        y = y.transpose(0, *itertools.chain.from_iterable((1 + i, 1 + n + i) for i in range(n)), 2 * n + 1)
    y = y.reshape(b, *(q * s for q, s in zip(rows, strides, strict=True)), c_out)
    if list(y.shape[1:-1]) != n_out:
        y = lax.slice(y, (0,) * y.ndim, (b, *n_out, c_out))
    return y


def _rematerialised(impl, static_argnames: tuple[str, ...]):
    """``impl`` jitted (static arguments by name), its patches recomputed from the input when a derivative
    needs them (``jax.checkpoint``) instead of stored: a patch matrix is ``T * P / stride`` (7 for WaveGAN)
    times the size of its layer's input, and storing them for the gradient penalty's second derivative
    and every critic update is what made the matmul form's memory grow (``REMAT``)."""

    @functools.partial(jax.jit, static_argnames=(*static_argnames, "remat", "shift"))
    def jitted(x, w, remat, shift, **static):
        del shift  # read from the module while tracing; a key of jit's cache, so a change retraces
        if not remat:
            return impl(x, w, **static)
        return jax.checkpoint(functools.partial(impl, **static))(x, w)

    @functools.wraps(impl)
    def fn(x, w, **static):
        return jitted(x, w, remat=REMAT, shift=SHIFT_OUTPUTS, **static)

    return fn


_conv_matmul = _rematerialised(_conv_matmul_impl, ("strides", "pads"))
_conv1d_blocked = _rematerialised(_conv1d_blocked_impl, ("stride", "pads", "per_block"))
_stuffed_conv_matmul = _rematerialised(_stuffed_conv_matmul_impl, ("strides", "pads", "transpose_kernel"))


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
    return _stuffed_conv_matmul(x_bhwc, kernel_hwio, strides=strides, pads=tuple(pads), transpose_kernel=False)
