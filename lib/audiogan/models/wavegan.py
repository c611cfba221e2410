"""WaveGAN (Donahue, McAuley & Puckette, "Adversarial Audio Synthesis", ICLR 2019), channels-last (B, T, C).

Hyperparameters (paper values are the defaults):

- latent: ``latent_dim`` = 100, z ~ U[-1, 1] (:func:`sample_latent`);
- model width ``d`` = 64 (the paper's ``d``; ``dim`` in the official code);
- kernel length ``KERNEL_LEN`` = 25, stride ``STRIDE`` = 4 for every (transposed) convolution;
- ``clip_samples`` in {16384, 32768, 65536} (about 1, 2 and 4 s at 16 kHz), and, shorter than the
  paper, 4096 and 8192 (a quarter and half of 16384: one stride-4 layer fewer, or a last stride of 2);
- phase shuffle radius ``phase_shuffle`` = 2 with reflect padding, one shift per batch
  (``per_example=True`` draws one per example instead, as common ports do);
- LeakyReLU slope ``NEGATIVE_SLOPE`` = 0.2 in the discriminator, ReLU in the generator;
- no batch normalisation (the paper's WGAN-GP setting);
- optional learned post-processing filter of length ``post_filter`` (paper: 512; 0 = off).

Generator, clip_samples = 16384:
    z (B, 100) -> Dense 256d -> reshape (B, 16, 16d) -> ReLU
    -> 5 transposed convolutions (kernel 25, stride 4), channels 8d, 4d, 2d, d, 1, ReLU between them
    -> tanh -> (B, 16384) [-> post filter: Conv1d(1 -> 1, kernel post_filter, no bias, 'SAME')].
For 32768 and 65536 the dense layer gives (B, 16, 32d) and there are six transposed convolutions,
channels 16d, 8d, 4d, 2d, d, 1, the last with stride 2 (32768) or 4 (65536). Shorter clips follow
the same rule downwards: 8192 is 16384's plan with a last stride of 2, and 4096 drops the first
layer (dense (B, 16, 8d), then 4d, 2d, d, 1). In general n layers, the dense layer gives
2^(n-1) d channels and each layer halves them, down to d and then 1.
``upsample="nn"`` replaces each transposed convolution by nearest-neighbour upsampling (repeat each
sample ``stride`` times) followed by a stride-1 'SAME' convolution of the same kernel length.

Discriminator, clip_samples = 16384:
    wav (B, 16384, 1) -> 5 convolutions (kernel 25, stride 4, TF 'SAME' padding), channels d, 2d, 4d, 8d, 16d,
    each followed by LeakyReLU(0.2), and phase shuffle after the first four
    -> flatten (B, 16 * 16d) -> Dense 1 -> logits (B,).
For 32768 and 65536 a sixth convolution (32d channels, stride 2 or 4, no phase shuffle after it) brings
the length back to 16 before the flatten. For 8192 the last of five has stride 2; for 4096 there are
four (d, 2d, 4d, 8d), phase shuffle after the first three: always after every layer but the last,
and at most after four.

Padding follows TensorFlow's 'SAME': for kernel 25, stride 4 on an even length it pads 10 left and
11 right (PyTorch's ``padding=11`` pads 11 | 11). The transposed convolution is TF's
``conv2d_transpose``: the exact gradient (adjoint) of that strided convolution, with its kernel stored
in TF's layout (kernel, out channels, in channels), and gives exactly stride x length samples.

The convolutions come from :mod:`audiogan.models.conv`, whose three forms ("lax", "matmul" and the
default "polyphase", every strided convolution and each derivative the gradient penalty needs written
as a stride-1 convolution) give the same numbers (``AUDIOGAN_CONV_FORM`` picks one). Phase shuffle's
shift has its own derivative (:func:`_window`), so that no derivative writes into a buffer of zeros.

Initialisation follows the official TensorFlow code rather than Flax's defaults: Glorot-uniform
kernels (TF's default for ``tf.layers.dense / conv1d / conv2d_transpose``) and zero biases.

Parameters at d=64, clip_samples=16384: generator 19,065,345, discriminator 17,427,969.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from audiogan.errors import ConfigError
from audiogan.models.conv import conv1d, conv1d_transpose, same_padding  # noqa: F401  (re-exported)

LATENT_DIM = 100
MODEL_DIM = 64
KERNEL_LEN = 25
STRIDE = 4
PHASE_SHUFFLE = 2
NEGATIVE_SLOPE = 0.2
ELEMENTAL_FUSIONS = True  # XLA:CPU's elemental fusion emitters: less memory for its many fused loops
POST_FILTER_LEN = 512  # the paper's length, when the post filter is switched on
CLIP_SAMPLES = (4096, 8192, 16384, 32768, 65536)
PAPER_CLIP_SAMPLES = (16384, 32768, 65536)
UPSAMPLES = ("zeros", "nn")
# The paper's hyperparameter table: WGAN-GP (lambda 10, 5 critic updates per generator update),
# Adam(1e-4, 0.5, 0.9), batch 64, latent 100 (uniform in [-1, 1]), d 64, phase shuffle n=2 (one shift
# per batch as in the official code), transposed-convolution upsampling, no post-processing filter.
RECIPE = {
    "loss": "wgan-gp", "lr": 1e-4, "beta1": 0.5, "beta2": 0.9, "batch_size": 64,
    "latent_dim": LATENT_DIM, "label_smoothing": 1.0, "d": MODEL_DIM, "phase_shuffle": PHASE_SHUFFLE,
    "phase_shuffle_per_example": False, "upsample": "zeros", "post_filter": 0,
}
_init_kernel = jax.nn.initializers.glorot_uniform()


def sample_latent(key: jax.Array, n: int, latent_dim: int = LATENT_DIM) -> jax.Array:
    """WaveGAN draws z uniformly from [-1, 1]."""
    return jax.random.uniform(key, (n, latent_dim), dtype=jnp.float32, minval=-1.0, maxval=1.0)


def _check_clip_samples(clip_samples: int) -> None:
    if clip_samples not in CLIP_SAMPLES:
        raise ValueError(f"WaveGAN clip_samples must be one of {CLIP_SAMPLES}, got clip_samples={clip_samples}")


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _window(x_btc: jax.Array, start: jax.Array, pads: tuple[int, int], length: int) -> jax.Array:
    """``length`` steps of ``x`` zero-padded by ``pads`` along time, from the traced index ``start``.

    Phase shuffle's shift. Its derivative is the same operation with other padding, and so is that one's;
    ``jax.lax.dynamic_slice``'s own derivative writes into a fresh buffer of zeros per layer and pass,
    which XLA:CPU kept alive at the step's peak. The values are the same (tested).
    """
    padded_btc = jnp.pad(x_btc, ((0, 0), pads, (0, 0)))
    return jax.lax.dynamic_slice_in_dim(padded_btc, start, length, axis=1)


def _window_fwd(x_btc, start, pads, length):
    return _window(x_btc, start, pads, length), (start, x_btc.shape[1])


def _window_bwd(pads, length, res, ct_btc):
    # out[t] = x[t + start - pads[0]], so x[s] takes ct[s - start + pads[0]]: a window of the cotangent
    # padded enough on each side for every start that keeps the forward window inside the padded input.
    start, n = res
    lo, hi = n + pads[1] - length, n + pads[0] - length
    return _window(ct_btc, pads[0] - start + lo, (lo, hi), n), None


_window.defvjp(_window_fwd, _window_bwd)


def phase_shuffle(x_btc: jax.Array, key: jax.Array | None, radius: int, per_example: bool = False) -> jax.Array:
    """Shift along time by k ~ U{-radius..radius}, filling the edges by reflection (edge sample not repeated).

    ``out[:, t] = reflect(x)[:, t - k]``. One k for the whole batch (the official code), or one per example.
    ``radius`` 0 or ``key`` None is the identity. Differentiable any number of times.
    """
    if key is None or radius == 0:
        return x_btc
    length = x_btc.shape[1]
    padded_btc = jnp.pad(x_btc, ((0, 0), (radius, radius), (0, 0)), mode="reflect")
    if not per_example:
        k = jax.random.randint(key, (), -radius, radius + 1)
        return _window(padded_btc, radius - k, (0, 0), length)
    k_b11 = jax.random.randint(key, (x_btc.shape[0], 1, 1), -radius, radius + 1)
    out_btc = jnp.zeros_like(x_btc)
    for shift in range(-radius, radius + 1):
        out_btc = jnp.where(k_b11 == shift, padded_btc[:, radius - shift : radius - shift + length], out_btc)
    return out_btc


def _bias(b_c: jax.Array) -> jax.Array:
    return b_c[None, None, :]


class Conv1d(nnx.Module):
    """Strided convolution with TF 'SAME' padding; kernel (kernel_len, in, out)."""

    def __init__(self, c_in: int, c_out: int, kernel_len: int, stride: int, *, use_bias: bool = True, rngs: nnx.Rngs):
        self.stride = stride
        self.kernel = nnx.Param(_init_kernel(rngs.params(), (kernel_len, c_in, c_out), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((c_out,), jnp.float32)) if use_bias else None

    def __call__(self, x_btc: jax.Array) -> jax.Array:
        h_btc = conv1d(x_btc, self.kernel[...], self.stride)
        return h_btc if self.bias is None else h_btc + _bias(self.bias[...])


class ConvTranspose1d(nnx.Module):
    """TF's 'SAME' transposed convolution, stride x length samples; kernel (kernel_len, out, in) as in TF."""

    def __init__(self, c_in: int, c_out: int, kernel_len: int, stride: int, *, rngs: nnx.Rngs):
        self.stride = stride
        self.kernel = nnx.Param(_init_kernel(rngs.params(), (kernel_len, c_out, c_in), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((c_out,), jnp.float32))

    def __call__(self, x_btc: jax.Array) -> jax.Array:
        return conv1d_transpose(x_btc, self.kernel[...], self.stride) + _bias(self.bias[...])


class UpsampleConv1d(nnx.Module):
    """Nearest-neighbour upsampling by ``stride`` then a stride-1 'SAME' convolution (the paper's "nn")."""

    def __init__(self, c_in: int, c_out: int, kernel_len: int, stride: int, *, rngs: nnx.Rngs):
        self.stride = stride
        self.conv = Conv1d(c_in, c_out, kernel_len, 1, rngs=rngs)

    def __call__(self, x_btc: jax.Array) -> jax.Array:
        return self.conv(jnp.repeat(x_btc, self.stride, axis=1))


def _strides(clip_samples: int) -> list[int]:
    """Strides of the layers between 16 samples and ``clip_samples``: fours, the last 2 or 4."""
    _check_clip_samples(clip_samples)
    strides, length = [], 16
    while length < clip_samples:
        strides.append(min(STRIDE, clip_samples // length))
        length *= strides[-1]
    return strides


def _generator_plan(d: int, clip_samples: int) -> tuple[int, list[int], list[int]]:
    """(channels after the dense layer, channels of each upsampling layer, their strides)."""
    strides = _strides(clip_samples)
    n = len(strides)
    return 2 ** (n - 1) * d, [2 ** (n - 2 - i) * d for i in range(n - 1)] + [1], strides


def _discriminator_plan(d: int, clip_samples: int) -> tuple[list[int], list[int]]:
    """(channels of each convolution, their strides); the last output always has 16 samples."""
    strides = _strides(clip_samples)
    return [2 ** i * d for i in range(len(strides))], strides


class Generator(nnx.Module):
    def __init__(
        self,
        latent_dim: int = LATENT_DIM,
        d: int = MODEL_DIM,
        clip_samples: int = 16384,
        *,
        upsample: str = "zeros",
        post_filter: int = 0,
        rngs: nnx.Rngs,
    ):
        dense_channels, channels, strides = _generator_plan(d, clip_samples)
        if upsample not in UPSAMPLES:
            raise ValueError(f"WaveGAN upsample must be one of {UPSAMPLES}, got upsample={upsample!r}")
        if post_filter < 0:
            raise ValueError(f"post_filter must be 0 (off) or a filter length, got post_filter={post_filter}")
        self.clip_samples, self.dense_channels = clip_samples, dense_channels
        self.dense = nnx.Linear(latent_dim, 16 * dense_channels, kernel_init=_init_kernel, rngs=rngs)
        layer = ConvTranspose1d if upsample == "zeros" else UpsampleConv1d
        widths = [dense_channels, *channels]
        self.layers = nnx.List(
            [layer(a, b, KERNEL_LEN, s, rngs=rngs) for a, b, s in zip(widths[:-1], widths[1:], strides, strict=True)]
        )
        self.post_filter = Conv1d(1, 1, post_filter, 1, use_bias=False, rngs=rngs) if post_filter else None

    def __call__(self, z_bd: jax.Array) -> jax.Array:
        h_btc = self.dense(z_bd).reshape(z_bd.shape[0], 16, self.dense_channels)
        h_btc = nnx.relu(h_btc)
        for layer in self.layers[:-1]:
            h_btc = nnx.relu(layer(h_btc))
        wav_btc = jnp.tanh(self.layers[-1](h_btc))
        if self.post_filter is not None:  # after tanh, as in the official code: may leave [-1, 1]
            wav_btc = self.post_filter(wav_btc)
        return wav_btc[:, :, 0]


class Discriminator(nnx.Module):
    def __init__(
        self,
        d: int = MODEL_DIM,
        clip_samples: int = 16384,
        *,
        phase_shuffle: int = PHASE_SHUFFLE,
        per_example: bool = False,
        rngs: nnx.Rngs,
    ):
        channels, strides = _discriminator_plan(d, clip_samples)
        self.radius, self.per_example = phase_shuffle, per_example
        widths = [1, *channels]
        self.convs = nnx.List(
            [Conv1d(a, b, KERNEL_LEN, s, rngs=rngs) for a, b, s in zip(widths[:-1], widths[1:], strides, strict=True)]
        )
        self.out = nnx.Linear(16 * channels[-1], 1, kernel_init=_init_kernel, rngs=rngs)

    def __call__(self, wav_bt: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        """Logits, shape (batch,). With ``key`` phase shuffle is on (training); without, it is off."""
        return self.out(self.features(wav_bt, key=key))[:, 0]

    def features(self, wav_bt: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        """What the output layer reads, flattened: (batch, 16 * last channels)."""
        n_shuffled = min(4, len(self.convs) - 1)  # after every convolution but the last, at most four
        keys = list(jax.random.split(key, n_shuffled)) if key is not None else [None] * n_shuffled
        h_btc = wav_bt[:, :, None]
        for i, conv in enumerate(self.convs):
            h_btc = nnx.leaky_relu(conv(h_btc), NEGATIVE_SLOPE)
            if i < n_shuffled:
                h_btc = phase_shuffle(h_btc, keys[i], self.radius, self.per_example)
        return h_btc.reshape(h_btc.shape[0], -1)


def _choices(values) -> str:
    return ", ".join(repr(v) for v in values)


def check(config) -> None:
    """Raise :class:`ConfigError` naming the setting when ``config`` does not fit WaveGAN."""
    if config.clip_samples not in CLIP_SAMPLES:
        raise ConfigError(
            f"clip_samples={config.clip_samples} does not fit WaveGAN; choose one of {_choices(CLIP_SAMPLES)}."
        )
    if config.upsample not in UPSAMPLES:
        raise ConfigError(f"upsample={config.upsample!r} is unknown; choose one of {_choices(UPSAMPLES)}.")
    for name in ("phase_shuffle", "post_filter"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name}={value!r} must be a whole number >= 0 (0 turns it off).")
    if not isinstance(config.phase_shuffle_per_example, bool):
        raise ConfigError(
            f"phase_shuffle_per_example={config.phase_shuffle_per_example!r} must be True or False."
        )


def build(config, n_in: int, rngs: nnx.Rngs) -> tuple[Generator, Discriminator]:
    """Both networks of a run, from its ``d``, ``clip_samples`` and architecture settings."""
    g = Generator(n_in, config.d, config.clip_samples, upsample=config.upsample,
                  post_filter=config.post_filter, rngs=rngs)
    d = Discriminator(config.d, config.clip_samples, phase_shuffle=config.phase_shuffle,
                      per_example=config.phase_shuffle_per_example, rngs=rngs)
    return g, d
