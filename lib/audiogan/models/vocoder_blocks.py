"""Layers the GAN vocoders share: normalised convolutions, channels-last, as PyTorch's vocoders build them.

- :class:`Conv`: an N-d convolution (1-D ``(B, T, C)`` or 2-D ``(B, H, W, C)``) with PyTorch's symmetric zero
  padding, dilation and groups, and one of three weight parametrisations:

  * ``norm="weight"``, ``torch.nn.utils.weight_norm`` (Salimans & Kingma 2016): parameters ``weight_v`` and
    ``weight_g`` with ``w = g * v / ||v||``, the norm over every axis but the output channel. ``g`` starts
    at ``||v||`` so the first weight is ``v`` itself;
  * ``norm="spectral"``, ``torch.nn.utils.spectral_norm`` (Miyato et al. 2018): the parameter
    ``weight_orig`` divided by its largest singular value, estimated by one power iteration per call
    from the vectors ``u`` and ``v`` kept as :class:`PowerIteration` variables (not parameters);
    ``module.eval()`` freezes them, as torch's ``eval()`` does;
  * ``norm=None``: a plain ``weight``.

- :class:`ConvTranspose1d`: PyTorch's ``ConvTranspose1d`` under weight norm. torch's ``weight_norm(dim=0)``
  keeps one gain per *input* channel here (its weight is ``(in, out, k)``), and so do we, so the parameter
  counts agree with the PyTorch models.
- :func:`avg_pool1d`: ``AvgPool1d`` with zero padding, counting the padding or not.
- :func:`remove_weight_norm`: every weight-normed layer folded into a plain ``weight``, for inference.

Kernels are stored ``(*kernel, in // groups, out)`` (XLA's ``WIO`` / ``HWIO``); :func:`torch_layout` and
:func:`from_torch_layout` convert a PyTorch weight either way. Every weight starts as PyTorch's default
(uniform in +-1/sqrt(fan_in), bias too): the official HiFi-GAN and MelGAN code re-draw ``m.weight`` from a
normal distribution after ``weight_norm``, but that tensor is derived from ``g`` and ``v`` and recomputed at
the next call, so the weights that train are the defaults.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from audiogan.models import conv as conv_forms

NORMS = ("weight", "spectral", None)
_DIMENSION_NUMBERS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}
_EPS = 1e-12  # torch.nn.functional.normalize's floor, used by spectral_norm


class PowerIteration(nnx.Variable):
    """A spectral-norm power-iteration vector: state that changes in the forward pass, never trained."""


def _tuple(value: int | Sequence[int], rank: int) -> tuple[int, ...]:
    return (value,) * rank if isinstance(value, int) else tuple(value)


def _padding(padding: int | Sequence, rank: int) -> tuple[tuple[int, int], ...]:
    """PyTorch's ``padding`` (an int, or one int or ``(lo, hi)`` pair per spatial axis) as XLA's pairs."""
    if isinstance(padding, int):
        return ((padding, padding),) * rank
    return tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)


def _draw(sampler, key: jax.Array, shape: tuple[int, ...], **kwargs) -> jax.Array:
    """``sampler(key, shape)`` drawn at the next power-of-two size and cut to ``shape``.

    JAX compiles a sampler once per shape; a vocoder has dozens of weight shapes, so drawing at a few
    bucket sizes compiles a few programs instead of dozens when a model is built outside ``jit``.
    """
    n = math.prod(shape)
    size = max(256, 1 << (n - 1).bit_length())
    return sampler(key, (size,), jnp.float32, **kwargs)[:n].reshape(shape)


def torch_uniform(key: jax.Array, shape: tuple[int, ...], fan_in: int) -> jax.Array:
    """PyTorch's default for conv weights and biases: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return _draw(jax.random.uniform, key, shape, minval=-bound, maxval=bound)


def norm_except(v: jax.Array, axis: int) -> jax.Array:
    """L2 norm of ``v`` over every axis but ``axis``, kept with size-1 axes so it broadcasts against ``v``."""
    axes = tuple(i for i in range(v.ndim) if i != axis % v.ndim)
    return jnp.sqrt(jnp.sum(jnp.square(v), axis=axes, keepdims=True))


def weight_norm(v: jax.Array, g: jax.Array, axis: int) -> jax.Array:
    """``g * v / ||v||`` with one gain per index of ``axis`` (``g`` has that axis' length)."""
    shape = [1] * v.ndim
    shape[axis % v.ndim] = g.shape[0]
    return v * (g.reshape(shape) / norm_except(v, axis))


def torch_layout(kernel: jax.Array, transposed: bool = False) -> jax.Array:
    """Our ``(*k, in, out)`` kernel in PyTorch's layout: ``(out, in, *k)``, or ``(in, out, *k)`` if transposed."""
    rank = kernel.ndim - 2
    first, second = (rank, rank + 1) if transposed else (rank + 1, rank)
    return jnp.transpose(kernel, (first, second, *range(rank)))


def from_torch_layout(weight, transposed: bool = False):
    """A PyTorch conv weight ``(out, in, *k)`` (``(in, out, *k)`` if transposed) in our ``(*k, in, out)``."""
    rank = weight.ndim - 2
    order = (*range(2, 2 + rank), 0, 1) if transposed else (*range(2, 2 + rank), 1, 0)
    return weight.transpose(order)


def conv(x: jax.Array, kernel: jax.Array, *, stride=1, padding=0, dilation=1, groups: int = 1) -> jax.Array:
    """Channels-last convolution as PyTorch's ``ConvNd``: x (B, *S, Cin), kernel (*K, Cin // groups, Cout).

    Grouped 1-D convolutions (the discriminators') go through :func:`grouped_conv1d`."""
    rank = kernel.ndim - 2
    if rank == 1 and groups > 1 and _tuple(dilation, 1) == (1,):
        (stride,), ((lo, hi),) = _tuple(stride, 1), _padding(padding, 1)
        return grouped_conv1d(x, kernel, stride, (lo, hi), groups)
    return jax.lax.conv_general_dilated(
        x, kernel, window_strides=_tuple(stride, rank), padding=_padding(padding, rank),
        rhs_dilation=_tuple(dilation, rank), dimension_numbers=_DIMENSION_NUMBERS[rank],
        feature_group_count=groups)


def grouped_conv1d(x_btc: jax.Array, kernel: jax.Array, stride: int, pads: tuple[int, int], groups: int) -> jax.Array:
    """A strided grouped 1-D convolution as a stride-1 one on blocks of ``stride`` samples (space-to-depth,
    each group's block channels kept together): (B, T, C) -> (B, (T + lo + hi - K) // stride + 1, O).

    XLA:CPU runs the grouped kernel gradient that autodiff makes (``batch_group_count``) as a naive loop:
    12 s for MelGAN's 1024-channel layer at batch 32 where this form's, one batched product per tap, takes
    well under one (benchmarks/README.md)."""
    b, t, c = x_btc.shape
    k, cg, o = kernel.shape
    n_out = (t + pads[0] + pads[1] - k) // stride + 1
    taps = -(-k // stride)
    n_blocks = n_out + taps - 1
    config = [(0, 0, 0), (pads[0], n_blocks * stride - t - pads[0], 0), (0, 0, 0)]
    xp = jax.lax.pad(x_btc, jnp.zeros((), x_btc.dtype), config)  # a negative right pad crops what is never read
    x_blk = xp.reshape(b, n_blocks, stride, groups, cg).transpose(0, 1, 3, 2, 4).reshape(b, n_blocks, -1)
    w_blk = jnp.pad(kernel, ((0, taps * stride - k), (0, 0), (0, 0))).reshape(taps, stride * cg, o)
    return _grouped_corr(x_blk, w_blk, groups)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _grouped_corr(x_btc: jax.Array, w: jax.Array, groups: int) -> jax.Array:
    """Stride-1, unpadded grouped correlation: x (B, T, G * Cg), w (K, Cg, G * Og) -> (B, T - K + 1, G * Og)."""
    return jax.lax.conv_general_dilated(x_btc, w, (1,), ((0, 0),), dimension_numbers=_DIMENSION_NUMBERS[1],
                                        feature_group_count=groups)


def _grouped_corr_fwd(x_btc, w, groups):
    return _grouped_corr(x_btc, w, groups), (x_btc, w)


def _grouped_corr_bwd(groups, residuals, g_bto):
    x_btc, w = residuals
    taps, cg, o = w.shape
    og = o // groups
    # d/dx: the grouped correlation of the padded cotangent with each group's kernel flipped and transposed.
    w_t = jnp.flip(w, 0).reshape(taps, cg, groups, og).transpose(0, 3, 2, 1).reshape(taps, og, groups * cg)
    dx = jax.lax.conv_general_dilated(g_bto, w_t, (1,), ((taps - 1, taps - 1),),
                                      dimension_numbers=_DIMENSION_NUMBERS[1], feature_group_count=groups)
    # d/dw: per tap, one product batched over the groups, summed over batch and positions.
    b, n_out = g_bto.shape[:2]
    x_g = x_btc.reshape(b, x_btc.shape[1], groups, cg)
    g_g = g_bto.reshape(b, n_out, groups, og)
    dw = jnp.stack([jnp.einsum("bqgc,bqgo->cgo", x_g[:, i:i + n_out], g_g) for i in range(taps)])
    return dx, dw.reshape(taps, cg, o)


_grouped_corr.defvjp(_grouped_corr_fwd, _grouped_corr_bwd)


def _add_bias(y: jax.Array, bias: jax.Array) -> jax.Array:
    return y + bias.reshape((1,) * (y.ndim - 1) + bias.shape)


def _normalize(x: jax.Array) -> jax.Array:
    return x / jnp.maximum(jnp.linalg.norm(x), _EPS)


class Conv(nnx.Module):
    """PyTorch's ``Conv1d`` / ``Conv2d`` under weight norm, spectral norm or neither, channels-last.

    x (B, *S, in_channels) -> (B, *S', out_channels); ``kernel_size`` an int (1-D) or a tuple (its rank).
    Parameters as torch's: ``weight_g`` + ``weight_v`` + ``bias``, ``weight_orig`` + ``bias``, or
    ``weight`` + ``bias``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int], *, stride=1,
                 padding=0, dilation=1, groups: int = 1, norm: str | None = "weight", rngs: nnx.Rngs):
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got norm={norm!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
        kernel_size = _tuple(kernel_size, 1)
        self.stride, self.padding, self.dilation, self.groups, self.norm = stride, padding, dilation, groups, norm
        fan_in = in_channels // groups * math.prod(kernel_size)
        w = torch_uniform(rngs.params(), (*kernel_size, in_channels // groups, out_channels), fan_in)
        self.bias = nnx.Param(torch_uniform(rngs.params(), (out_channels,), fan_in))
        if norm == "weight":
            self.weight_v = nnx.Param(w)
            self.weight_g = nnx.Param(norm_except(w, -1).reshape(out_channels))
        elif norm == "spectral":
            self.weight_orig = nnx.Param(w)
            self.u = PowerIteration(_normalize(_draw(jax.random.normal, rngs.params(), (out_channels,))))
            self.v = PowerIteration(_normalize(_draw(jax.random.normal, rngs.params(), (fan_in,))))
            self.use_running_average = False  # nnx's eval() sets it: then u and v stay as they are
        else:
            self.weight = nnx.Param(w)

    def spectral_weight(self) -> jax.Array:
        """``weight_orig / sigma``; in training one power iteration first updates ``u`` and ``v``.

        The matrix is torch's ``weight.reshape(out, -1)``, and, as in torch, no gradient flows through
        ``u`` and ``v``: only through the matrix in ``sigma = u . W v``.
        """
        w = self.weight_orig[...]
        w_oi = torch_layout(w).reshape(w.shape[-1], -1)  # (out, in // groups * prod(kernel))
        u, v = self.u[...], self.v[...]
        if not self.use_running_average:
            w_sg = jax.lax.stop_gradient(w_oi)
            v = _normalize(w_sg.T @ u)
            u = _normalize(w_sg @ v)
            self.u[...], self.v[...] = u, v
        sigma = u @ (w_oi @ v)
        return w / sigma

    def kernel(self) -> jax.Array:
        """The effective kernel, (*K, in // groups, out)."""
        if self.norm == "weight":
            return weight_norm(self.weight_v[...], self.weight_g[...], -1)
        if self.norm == "spectral":
            return self.spectral_weight()
        return self.weight[...]

    def remove_weight_norm(self) -> None:
        """Replace ``weight_g`` and ``weight_v`` by the plain ``weight`` they make, as torch's
        ``remove_weight_norm``: the same outputs, without recomputing the norm at every call."""
        if self.norm != "weight":
            raise ValueError(f"Conv has norm={self.norm!r}: no weight norm to remove")
        kernel = self.kernel()
        del self.weight_g, self.weight_v
        self.weight, self.norm = nnx.Param(kernel), None

    def __call__(self, x: jax.Array) -> jax.Array:
        y = conv(x, self.kernel(), stride=self.stride, padding=self.padding, dilation=self.dilation,
                 groups=self.groups)
        return _add_bias(y, self.bias[...])


class ConvTranspose1d(nnx.Module):
    """PyTorch's ``ConvTranspose1d`` under weight norm, channels-last: (B, T, in) -> (B, T', out).

    ``T' = (T - 1) * stride - 2 * padding + kernel_size + output_padding``: the adjoint of a strided
    convolution, computed by :func:`audiogan.models.conv.conv1d_transpose` in the package's form.
    ``weight_v`` is stored (k, in, out) and ``weight_g`` has one gain per input channel (torch's
    ``weight_norm`` on a ``(in, out, k)`` weight).

    :meth:`remove_weight_norm` (for inference) keeps the kernel as ``weight_phases`` instead, (taps, in,
    stride * out) with taps = ceil(k / stride): output sample ``stride * q + r`` (before the padding is cut)
    is ``sum_j x[q - j] w[stride * j + r]``, so one stride-1 convolution of the input with that kernel, taps
    reversed, makes every phase at once, and a reshape interleaves them. Prepared once, it spares each call
    the rearranging of the kernel, and at batch 1 it is XLA:CPU's fastest form (half the time of the
    polyphase form's at HiFi-GAN's first layer, benchmarks/README.md). Training does not use it: XLA:CPU's
    kernel gradient of that convolution took twenty times the polyphase form's (that layer at batch 16).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int = 0,
                 output_padding: int = 0, *, rngs: nnx.Rngs):
        if kernel_size - 1 - padding < 0:
            raise ValueError(f"padding={padding} must be smaller than kernel_size={kernel_size}")
        self.kernel_size, self.stride, self.padding, self.output_padding = kernel_size, stride, padding, output_padding
        self.norm = "weight"
        fan_in = out_channels * kernel_size  # torch computes the fan from the weight's second axis
        v = torch_uniform(rngs.params(), (kernel_size, in_channels, out_channels), fan_in)
        self.weight_v = nnx.Param(v)
        self.weight_g = nnx.Param(norm_except(v, 1).reshape(in_channels))
        self.bias = nnx.Param(torch_uniform(rngs.params(), (out_channels,), fan_in))

    def kernel(self) -> jax.Array:
        """The effective kernel, (k, in, out)."""
        if self.norm == "weight":
            return weight_norm(self.weight_v[...], self.weight_g[...], 1)
        w = self.weight_phases[...]
        taps, c_in = w.shape[:2]
        w = jnp.flip(w.reshape(taps, c_in, self.stride, -1), 0).transpose(0, 2, 1, 3)
        return w.reshape(taps * self.stride, c_in, -1)[:self.kernel_size]

    def remove_weight_norm(self) -> None:
        """Replace ``weight_g`` and ``weight_v`` by the kernel they make, as ``weight_phases`` (see above)."""
        if self.norm != "weight":
            raise ValueError("ConvTranspose1d has no weight norm to remove: it was removed already")
        self.weight_phases = nnx.Param(phase_kernel(self.kernel(), self.stride))
        del self.weight_g, self.weight_v
        self.norm = None

    def __call__(self, x_btc: jax.Array) -> jax.Array:
        if self.norm is None:
            y_btc = _phase_transpose(x_btc, self.weight_phases[...], self.stride, self.padding,
                                     self.kernel_size + self.output_padding - 2 * self.padding)
            return _add_bias(y_btc, self.bias[...])
        # models.conv's transposed convolution (by output phases in its polyphase form; XLA:CPU runs the
        # dilated input of lax's far slower): TF's layout (k, out, in), forward padding (p, p - output_padding).
        y_btc = conv_forms.conv1d_transpose(x_btc, jnp.swapaxes(self.kernel(), 1, 2), self.stride,
                                            (self.padding, self.padding - self.output_padding))
        return _add_bias(y_btc, self.bias[...])


def phase_kernel(kernel_kio: jax.Array, stride: int) -> jax.Array:
    """A transposed convolution's kernel (k, in, out) as (taps, in, stride * out), taps = ceil(k / stride):
    entry [t, :, r * out:(r + 1) * out] is tap ``stride * (taps - 1 - t) + r`` (zero past k)."""
    k, c_in, c_out = kernel_kio.shape
    taps = -(-k // stride)
    w = jnp.pad(kernel_kio, ((0, taps * stride - k), (0, 0), (0, 0))).reshape(taps, stride, c_in, c_out)
    return jnp.flip(w, 0).transpose(0, 2, 1, 3).reshape(taps, c_in, stride * c_out)


def _phase_transpose(x_btc: jax.Array, w_phases: jax.Array, stride: int, padding: int, extra: int) -> jax.Array:
    """(B, T, in) -> (B, (T - 1) * stride + extra, out): every output phase from one stride-1 convolution
    with :func:`phase_kernel`'s kernel, interleaved, then ``padding`` samples cut from the front."""
    b, t, _ = x_btc.shape
    taps, n_out = w_phases.shape[0], (t - 1) * stride + extra
    rows = -(-(padding + n_out) // stride)
    y = jax.lax.conv_general_dilated(x_btc, w_phases, (1,), ((taps - 1, max(taps - 1, rows - t)),),
                                     dimension_numbers=_DIMENSION_NUMBERS[1])
    return y.reshape(b, -1, w_phases.shape[-1] // stride)[:, padding:padding + n_out]


def remove_weight_norm(module: nnx.Module) -> nnx.Module:
    """Fold every weight-normed layer of ``module`` into a plain weight, in place, and return ``module``.

    The official inference scripts call ``remove_weight_norm`` before synthesis: the outputs stay the same
    (to float32 rounding) and a call no longer recomputes ``g * v / ||v||`` over every weight. Layers under
    spectral norm or none are left as they are.
    """
    layers = [m for _, m in nnx.iter_graph(module) if isinstance(m, Conv | ConvTranspose1d) and m.norm == "weight"]
    for layer in layers:
        layer.remove_weight_norm()
    return module


def avg_pool1d(x_btc: jax.Array, kernel_size: int, stride: int, padding: int,
               count_include_pad: bool = True) -> jax.Array:
    """PyTorch's ``AvgPool1d`` over time: (B, T, C) -> (B, (T + 2 * padding - kernel_size) // stride + 1, C)."""
    window, strides, pads = (1, kernel_size, 1), (1, stride, 1), ((0, 0), (padding, padding), (0, 0))
    total = jax.lax.reduce_window(x_btc, 0.0, jax.lax.add, window, strides, pads)
    if count_include_pad:
        return total / kernel_size
    ones = jnp.ones((1, x_btc.shape[1], 1), x_btc.dtype)
    count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, window, strides, pads)
    return total / count


def reflect_pad(x_btc: jax.Array, left: int, right: int | None = None) -> jax.Array:
    """``ReflectionPad1d`` over time (the edge sample is not repeated): (B, T, C) -> (B, T + left + right, C)."""
    right = left if right is None else right
    return jnp.pad(x_btc, ((0, 0), (left, right), (0, 0)), mode="reflect")


def count_params(module: nnx.Module) -> int:
    """Trainable weights (``nnx.Param`` only: spectral norm's ``u`` and ``v`` are not counted, as in torch)."""
    return sum(math.prod(p.shape) for p in jax.tree.leaves(nnx.state(module, nnx.Param)))


def load_torch_state(module: nnx.Module, state_dict: dict, rename=None) -> None:
    """Copy a PyTorch ``state_dict`` (name -> numpy array) into ``module``, converting layouts.

    ``rename`` maps a torch name to our dotted path (identity when the modules are named alike, as HiFi-GAN's
    are). Spectral norm's buffers ``weight_u`` / ``weight_v`` land in ``u`` / ``v``. Raises ``KeyError``
    naming any parameter left without a value.
    """
    rename = rename or (lambda name: name)
    params = {".".join(str(k) for k in path) for path, _ in nnx.to_flat_state(nnx.state(module, nnx.Param))}
    filled = set()
    for name, value in state_dict.items():
        path = rename(name)
        if path is None:
            continue
        layer_path, leaf = path.rsplit(".", 1)
        layer = _layer(module, layer_path)
        if leaf == "weight_v" and getattr(layer, "norm", "weight") == "spectral":
            leaf = "v"
        elif leaf == "weight_u":
            leaf = "u"
        if leaf in ("weight_v", "weight_orig", "weight"):
            value = from_torch_layout(value, isinstance(layer, ConvTranspose1d))
        else:
            value = value.reshape(-1)
        var = getattr(layer, leaf)
        if var.shape != value.shape:
            raise ValueError(f"{name}: torch shape {value.shape} does not fit {layer_path}.{leaf} {var.shape}")
        var[...] = jnp.asarray(value)
        filled.add(f"{layer_path}.{leaf}")
    missing = sorted(params - filled)
    if missing:
        raise KeyError(f"no torch value for {missing}")


def _layer(module: nnx.Module, dotted: str):
    for part in dotted.split("."):
        module = module[int(part)] if part.isdigit() else getattr(module, part)
    return module
