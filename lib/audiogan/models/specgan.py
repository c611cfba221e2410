"""SpecGAN (Donahue, McAuley and Puckette, "Adversarial Audio Synthesis", ICLR 2019).

SpecGAN is a DCGAN on normalised log-magnitude spectrograms; audio comes back by Griffin-Lim.
Defaults are the paper's (and the official ``chrisdonahue/wavegan`` code's, ``specgan.py`` and
``train_specgan.py``):

- latent ``z``: ``latent_dim`` = 100, uniform in [-1, 1];
- model width ``d`` = 64; square kernels of ``KERNEL`` = 5, stride ``STRIDE`` = 2, no batch norm;
- Generator: z -> Dense to 4 x 4 x 16d -> reshape -> ReLU -> five transposed convolutions (5x5,
  stride 2, TensorFlow 'SAME') to 8d, 4d, 2d, d, 1 channels (4 -> 8 -> 16 -> 32 -> 64 -> 128), ReLU
  between them and tanh at the end: a (128, 128) spectrogram in [-1, 1];
- Discriminator: five convolutions (5x5, stride 2, 'SAME') to d, 2d, 4d, 8d, 16d channels
  (128 -> 64 -> 32 -> 16 -> 8 -> 4), each followed by LeakyReLU(0.2), flatten, Dense to 1 logit.
  SpecGAN has no phase shuffle;
- all kernels Glorot-uniform and all biases zero (TensorFlow's ``tf.layers`` defaults).

Features (:class:`SpectrogramCodec`): 16,384-sample clips, STFT with 256-point periodic Hann frames
and hop 128, zero-padded at the end to 128 frames (TF ``stft(pad_end=True)``, no centring); the 128
lowest of the 129 bins; log(|X| + 1e-6); each bin standardised with moments computed once over the
training set, divided by 3 (clip at 3 standard deviations) and clipped to [-1, 1]. Back to audio:
undo the scaling, exp, put back the Nyquist bin (a normalised 0, as the official code does), and 16
iterations of Griffin-Lim from zero phase (as official) with librosa's fast-Griffin-Lim momentum
0.99 (official: plain, momentum 0; the fast variant comes closer in 16 iterations).

Layout: spectrograms are ``spec_bft`` (batch, frequency, time) outside; inside the networks they are
channels-last images (B, H=frequency, W=time, C). The official code lays them out as (time,
frequency); with square kernels and a square input the two are the same model up to a permutation
of the weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import librosa
import numpy as np
from flax import nnx

from audiogan.errors import ConfigError
from audiogan.files import atomic_path
from audiogan.models import conv

# Architecture (paper defaults).
LATENT_DIM = 100
DIM = 64
KERNEL = 5
STRIDE = 2
NEGATIVE_SLOPE = 0.2
ELEMENTAL_FUSIONS = True  # XLA:CPU's elemental fusion emitters: less memory for its many fused loops
N_LAYERS = 5
BASE = 4  # spatial size after the generator's Dense layer; BASE * STRIDE**N_LAYERS = 128
WIDTH_MULTIPLIERS = (16, 8, 4, 2, 1)  # generator channels after the Dense layer and each upconv

# Features (paper defaults).
CLIP_SAMPLES = 16384
N_FFT = 256
HOP = 128
N_BINS = 128  # of the N_FFT // 2 + 1 = 129; the Nyquist bin is dropped
N_FRAMES = 128  # ceil(CLIP_SAMPLES / HOP), with TF's pad_end
LOG_EPS = 1e-6
CLIP_NSTD = 3.0
GRIFFIN_LIM_ITERS = 16
GRIFFIN_LIM_MOMENTUM = 0.99  # librosa's fast Griffin-Lim; the official code's plain one is 0
SPEC_SHAPE = (N_BINS, N_FRAMES)
# The paper's recipe: WGAN-GP (lambda 10, 5 critic updates), Adam(1e-4, 0.5, 0.9), batch 64, latent 100,
# d 64, audio back by Griffin-Lim (16 iterations).
RECIPE = {
    "loss": "wgan-gp", "lr": 1e-4, "beta1": 0.5, "beta2": 0.9, "batch_size": 64,
    "latent_dim": LATENT_DIM, "label_smoothing": 1.0, "d": DIM, "griffin_lim_iters": GRIFFIN_LIM_ITERS,
}

_PADDED_SAMPLES = (N_FRAMES - 1) * HOP + N_FFT  # 16,512: the clip with pad_end's zeros
_WINDOW_SUM_T = librosa.filters.window_sumsquare(
    window="hann", n_frames=N_FRAMES, hop_length=HOP, win_length=N_FFT, n_fft=N_FFT, dtype=np.float32
)[:CLIP_SAMPLES]
# librosa divides by _WINDOW_SUM_T; this gain makes it a division by max(_WINDOW_SUM_T, 0.5) instead.
_EDGE_GAIN_T = _WINDOW_SUM_T / np.maximum(_WINDOW_SUM_T, np.float32(0.5))
_INIT = jax.nn.initializers.glorot_uniform()
_CHUNK = 256  # clips per STFT batch, to bound the complex intermediate


def sample_latent(key: jax.Array, n: int, latent_dim: int) -> jax.Array:
    """SpecGAN draws z uniformly from [-1, 1]."""
    return jax.random.uniform(key, (n, latent_dim), dtype=jnp.float32, minval=-1.0, maxval=1.0)


# ---------------------------------------------------------------------------- convolutions
def conv2d(x_bhwc: jax.Array, w_hwio: jax.Array, stride: int = STRIDE) -> jax.Array:
    """Strided 2-D convolution with TensorFlow 'SAME' padding (the extra pad goes after: 1|2 here);
    patches x weight matrix on CPU, the native convolution elsewhere (``audiogan.models.conv``)."""
    return conv.conv2d(x_bhwc, w_hwio, stride, "SAME")


def conv_transpose2d(x_bhwc: jax.Array, w_hwio: jax.Array, stride: int = STRIDE) -> jax.Array:
    """Transposed 2-D convolution, output ``stride`` times larger, padded as TF's 'SAME' (3|2 here).

    The kernel is applied unflipped to the zero-stuffed input; TF's ``conv2d_transpose`` flips it,
    which only re-labels randomly initialised weights. Polyphase matmul on CPU (``audiogan.models.conv``).
    """
    return conv.conv2d_transpose(x_bhwc, w_hwio, stride, "SAME")


class _Conv(nnx.Module):
    """A 5x5 (transposed) convolution with bias; ``transpose`` picks upsampling."""

    def __init__(self, c_in: int, c_out: int, *, transpose: bool, rngs: nnx.Rngs):
        self.kernel = nnx.Param(_INIT(rngs.params(), (KERNEL, KERNEL, c_in, c_out), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((c_out,), jnp.float32))
        self.transpose = transpose

    def __call__(self, x_bhwc: jax.Array) -> jax.Array:
        op = conv_transpose2d if self.transpose else conv2d
        return op(x_bhwc, self.kernel[...]) + self.bias[...].reshape(1, 1, 1, -1)


# ---------------------------------------------------------------------------- networks
class Generator(nnx.Module):
    def __init__(self, latent_dim: int, d: int, *, rngs: nnx.Rngs):
        widths = [m * d for m in WIDTH_MULTIPLIERS] + [1]
        self.project = nnx.Linear(latent_dim, BASE * BASE * widths[0], kernel_init=_INIT, rngs=rngs)
        self.upconvs = nnx.List(
            [_Conv(a, b, transpose=True, rngs=rngs) for a, b in zip(widths[:-1], widths[1:], strict=True)]
        )
        self.base_channels = widths[0]

    def __call__(self, z_bd: jax.Array) -> jax.Array:
        h = self.project(z_bd).reshape(z_bd.shape[0], BASE, BASE, self.base_channels)
        h = nnx.relu(h)
        for layer in self.upconvs[:-1]:
            h = nnx.relu(layer(h))
        return jnp.tanh(self.upconvs[-1](h))[..., 0]  # spec_bft in [-1, 1]


class Discriminator(nnx.Module):
    def __init__(self, d: int, *, rngs: nnx.Rngs):
        widths = [1] + [m * d for m in reversed(WIDTH_MULTIPLIERS)]
        self.downconvs = nnx.List(
            [_Conv(a, b, transpose=False, rngs=rngs) for a, b in zip(widths[:-1], widths[1:], strict=True)]
        )
        self.out = nnx.Linear(BASE * BASE * widths[-1], 1, kernel_init=_INIT, rngs=rngs)

    def features(self, spec_bft: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        """What the output layer reads, flattened: (batch, 16 * 16d). ``key`` is unused."""
        del key
        h = spec_bft[..., None]
        for layer in self.downconvs:
            h = nnx.leaky_relu(layer(h), NEGATIVE_SLOPE)
        return h.reshape(h.shape[0], -1)

    def __call__(self, spec_bft: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        """Logits, shape (batch,). ``key`` is accepted for a common interface and unused."""
        return self.out(self.features(spec_bft, key=key))[:, 0]


# ---------------------------------------------------------------------------- features
def _check_clips(clips_bt: np.ndarray) -> np.ndarray:
    clips_bt = np.asarray(clips_bt, dtype=np.float32)
    if clips_bt.ndim != 2 or clips_bt.shape[1] != CLIP_SAMPLES:
        raise ValueError(
            f"SpecGAN needs clips of clip_samples={CLIP_SAMPLES} samples, shape (N, {CLIP_SAMPLES}); "
            f"got shape {clips_bt.shape}"
        )
    return clips_bt


def _log_magnitude_chunks(clips_bt: np.ndarray):
    """Yield (start, float32 (n, 129, 128) log magnitudes) for ``_CHUNK`` clips at a time."""
    clips_bt = _check_clips(clips_bt)
    for start in range(0, len(clips_bt), _CHUNK):
        padded = np.pad(clips_bt[start:start + _CHUNK], ((0, 0), (0, _PADDED_SAMPLES - CLIP_SAMPLES)))
        stft = librosa.stft(padded, n_fft=N_FFT, hop_length=HOP, window="hann", center=False)
        yield start, np.log(np.abs(stft) + np.float32(LOG_EPS))


def log_magnitude(clips_bt: np.ndarray) -> np.ndarray:
    """log(|STFT| + 1e-6) of clips, all 129 bins: float32 (N, 129, 128) (batch, frequency, time).

    Frames as TF's ``stft(x, 256, 128, pad_end=True)``: periodic Hann, no centring, 128 zeros
    appended so that the last frame starts at sample 16,256.
    """
    clips_bt = _check_clips(clips_bt)
    out = np.empty((len(clips_bt), N_FFT // 2 + 1, N_FRAMES), dtype=np.float32)
    for start, lmag_bft in _log_magnitude_chunks(clips_bt):
        out[start:start + len(lmag_bft)] = lmag_bft
    return out


@dataclass(frozen=True, eq=False)
class SpectrogramCodec:
    """Clips <-> SpecGAN features, with the training set's per-bin log-magnitude moments.

    ``mean_f`` and ``std_f`` have all 129 bins, as in the official code: the Nyquist bin is not a
    feature, but decoding puts it back as a normalised 0, i.e. the training set's mean log magnitude.
    """

    mean_f: np.ndarray  # float32 (129,)
    std_f: np.ndarray  # float32 (129,)
    sample_rate: int

    def __post_init__(self):
        for name in ("mean_f", "std_f"):
            value = np.array(getattr(self, name), dtype=np.float32)  # a private, read-only copy
            if value.shape != (N_FFT // 2 + 1,):
                raise ValueError(f"{name} must have shape ({N_FFT // 2 + 1},), got {value.shape}")
            value.flags.writeable = False
            object.__setattr__(self, name, value)
        object.__setattr__(self, "sample_rate", int(self.sample_rate))

    @classmethod
    def fit(cls, clips_bt: np.ndarray, sample_rate: int) -> SpectrogramCodec:
        """Per-bin mean and standard deviation of the log magnitude over every frame of every clip."""
        clips_bt = _check_clips(clips_bt)
        if len(clips_bt) == 0:
            raise ValueError("fit needs at least one clip")
        # One pass in float64, shifted by the first chunk's means so that E[x^2] - E[x]^2 stays exact.
        shift_f = total_f = total_sq_f = None
        for _, lmag_bft in _log_magnitude_chunks(clips_bt):
            lmag_bft = lmag_bft.astype(np.float64)
            if shift_f is None:
                shift_f = lmag_bft.mean(axis=(0, 2))
                total_f = np.zeros_like(shift_f)
                total_sq_f = np.zeros_like(shift_f)
            centred = lmag_bft - shift_f[None, :, None]
            total_f += centred.sum(axis=(0, 2))
            total_sq_f += np.square(centred).sum(axis=(0, 2))
        count = len(clips_bt) * N_FRAMES
        mean_f = shift_f + total_f / count
        std_f = np.sqrt(np.maximum(total_sq_f / count - np.square(total_f / count), 0.0))
        # A bin that never varies (digital silence) would divide by zero; it stays at 0 instead.
        std_f = np.maximum(std_f, 1e-8)
        return cls(mean_f=mean_f, std_f=std_f, sample_rate=sample_rate)

    def encode(self, clips_bt: np.ndarray, *, clip: bool = True) -> np.ndarray:
        """Features ``spec_bft``: float32 (N, 128, 128) in [-1, 1]; ``clip=False`` skips the clipping."""
        lmag_bft = log_magnitude(clips_bt)[:, :N_BINS]
        mean = self.mean_f[:N_BINS, None]
        scale = (self.std_f[:N_BINS] * np.float32(CLIP_NSTD))[:, None]
        spec_bft = (lmag_bft - mean[None]) / scale[None]
        if clip:
            np.clip(spec_bft, -1.0, 1.0, out=spec_bft)
        return spec_bft.astype(np.float32, copy=False)

    def magnitude(self, spec_bft: np.ndarray) -> np.ndarray:
        """Linear magnitudes, float32 (N, 129, 128), with the Nyquist bin put back."""
        spec_bft = np.asarray(spec_bft, dtype=np.float32)
        if spec_bft.ndim != 3 or spec_bft.shape[1:] != SPEC_SHAPE:
            raise ValueError(f"spectrograms must have shape (N, {N_BINS}, {N_FRAMES}), got {spec_bft.shape}")
        norm_bft = np.pad(spec_bft, ((0, 0), (0, 1), (0, 0)))  # normalised Nyquist bin = 0, as official
        lmag_bft = norm_bft * (np.float32(CLIP_NSTD) * self.std_f)[None, :, None] + self.mean_f[None, :, None]
        return np.exp(lmag_bft)

    def decode(
        self, spec_bft: np.ndarray, n_iter: int = GRIFFIN_LIM_ITERS, *, momentum: float = GRIFFIN_LIM_MOMENTUM,
    ) -> np.ndarray:
        """Clips float32 (N, 16384) in [-1, 1] by Griffin-Lim from zero phase (deterministic).

        ``momentum=0`` is the official plain Griffin-Lim; the default 0.99 is librosa's fast
        Griffin-Lim, which gets closer in the same 16 iterations. librosa's inverse STFT divides by
        the window's sum of squares, which is Hann**2 over the first 128 samples (one frame only)
        and would blow them up by ~1e3 towards sample 0: there the divisor is floored at the
        interior minimum 0.5, fading in over the first 82 samples. The result is clipped to [-1, 1].
        """
        mag_bft = self.magnitude(spec_bft)
        wav_bt = librosa.griffinlim(
            mag_bft, n_iter=n_iter, hop_length=HOP, win_length=N_FFT, n_fft=N_FFT, window="hann",
            center=False, length=_PADDED_SAMPLES, momentum=momentum, init=None,
        )
        wav_bt = wav_bt[:, :CLIP_SAMPLES] * _EDGE_GAIN_T[None]
        return np.clip(wav_bt, -1.0, 1.0).astype(np.float32, copy=False)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the moments to ``path`` (.npz), atomically."""
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, mean_f=self.mean_f, std_f=self.std_f, sample_rate=np.int64(self.sample_rate))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> SpectrogramCodec:
        with np.load(path) as f:
            return cls(mean_f=f["mean_f"], std_f=f["std_f"], sample_rate=int(f["sample_rate"]))


def check(config) -> None:
    """Raise :class:`ConfigError` when ``config``'s clips are not the length SpecGAN's spectrograms cover."""
    if config.clip_samples != CLIP_SAMPLES:
        raise ConfigError(
            f"clip_samples={config.clip_samples} does not fit SpecGAN, whose {N_BINS} x {N_FRAMES} spectrograms "
            f"(hop {HOP}) cover exactly {CLIP_SAMPLES} samples; use clip_samples={CLIP_SAMPLES}."
        )


def build(config, n_in: int, rngs: nnx.Rngs) -> tuple[Generator, Discriminator]:
    """Both networks of a run at width ``config.d``."""
    return Generator(n_in, config.d, rngs=rngs), Discriminator(config.d, rngs=rngs)
