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

A mel SpecGAN (``spectrogram="mel"``, not in the paper) makes a vocoder's log-mel instead
(:class:`MelCodec`): HiFi-GAN's front end (:mod:`audiogan.audio.mel`) with n_fft = win = 4 hops, as
the suite's vocoders take it, so the generator's (n_mels, clip_samples // hop) output goes straight
into a trained vocoder; without one, Griffin-Lim on the mel inverted by the filterbank's pseudo-inverse.
Both networks take any spectrogram shape: the generator starts from (ceil(H / 32), ceil(W / 32)) and
crops its output to (H, W); the discriminator's strided 'SAME' convolutions halve (rounding up).

Layout: spectrograms are ``spec_bft`` (batch, frequency, time) outside; inside the networks they are
channels-last images (B, H=frequency, W=time, C). The official code lays them out as (time,
frequency); with square kernels and a square input the two are the same model up to a permutation
of the weights.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import librosa
import numpy as np
from flax import nnx

from audiogan.audio.mel import MelSettings, mel_filters, mel_spectrogram
from audiogan.errors import ConfigError
from audiogan.files import atomic_path
from audiogan.models import conv, hifigan

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
    "spectrogram": "stft",
}
REPRESENTATIONS = ("stft", "mel")  # the paper's log-magnitude STFT, or a vocoder's log-mel
# A mel SpecGAN without a vocoder to match takes HiFi-GAN V1's front end: 80 bands, hop 256 (fixed by
# the vocoder's upsampling at any rate), n_fft = win = 4 hops, fmax min(8 kHz, Nyquist).
MEL_N_MELS = hifigan.RECIPE["num_mels"]
MEL_HOP = hifigan.RECIPE["hop_size"]
MEL_FFT_HOPS = hifigan.RECIPE["n_fft"] // hifigan.RECIPE["hop_size"]
MEL_FMAX = float(hifigan.RECIPE["fmax"])
MEL_MIN_FRAMES = 2

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
def _base_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """The generator's first grid: (ceil(H / 32), ceil(W / 32)); (4, 4) for the paper's 128 x 128."""
    return tuple(-(-n // STRIDE**N_LAYERS) for n in shape)


def _reduced_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """The discriminator's last grid: five strided 'SAME' convolutions, each ceil(n / 2)."""
    for _ in range(N_LAYERS):
        shape = tuple(-(-n // STRIDE) for n in shape)
    return shape


class Generator(nnx.Module):
    """z (B, latent_dim) -> spec_bft (B, H, W) in [-1, 1]; ``shape`` = (H, W), the paper's (128, 128)."""

    def __init__(self, latent_dim: int, d: int, *, shape: tuple[int, int] = SPEC_SHAPE, rngs: nnx.Rngs):
        widths = [m * d for m in WIDTH_MULTIPLIERS] + [1]
        self.shape = tuple(int(n) for n in shape)
        self.base = _base_shape(self.shape)
        self.project = nnx.Linear(latent_dim, math.prod(self.base) * widths[0], kernel_init=_INIT, rngs=rngs)
        self.upconvs = nnx.List(
            [_Conv(a, b, transpose=True, rngs=rngs) for a, b in zip(widths[:-1], widths[1:], strict=True)]
        )
        self.base_channels = widths[0]

    def __call__(self, z_bd: jax.Array) -> jax.Array:
        h = self.project(z_bd).reshape(z_bd.shape[0], *self.base, self.base_channels)
        h = nnx.relu(h)
        for layer in self.upconvs[:-1]:
            h = nnx.relu(layer(h))
        h = self.upconvs[-1](h)[:, :self.shape[0], :self.shape[1], 0]  # cropped to (H, W)
        return jnp.tanh(h)  # spec_bft in [-1, 1]


class Discriminator(nnx.Module):
    """spec_bft (B, H, W) -> logits (B,); ``shape`` = (H, W), the paper's (128, 128)."""

    def __init__(self, d: int, *, shape: tuple[int, int] = SPEC_SHAPE, rngs: nnx.Rngs):
        widths = [1] + [m * d for m in reversed(WIDTH_MULTIPLIERS)]
        self.downconvs = nnx.List(
            [_Conv(a, b, transpose=False, rngs=rngs) for a, b in zip(widths[:-1], widths[1:], strict=True)]
        )
        n_out = math.prod(_reduced_shape(tuple(int(n) for n in shape))) * widths[-1]
        self.out = nnx.Linear(n_out, 1, kernel_init=_INIT, rngs=rngs)

    def features(self, spec_bft: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        """What the output layer reads, flattened: (batch, 16 * 16d at 128 x 128). ``key`` is unused."""
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


def _moments(chunks) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin mean and standard deviation over every frame of every clip, from (n, bins, frames) chunks.

    One pass in float64, shifted by the first chunk's means so that E[x^2] - E[x]^2 stays exact.
    """
    shift_f = total_f = total_sq_f = None
    count = 0
    for x_bft in chunks:
        x_bft = x_bft.astype(np.float64)
        if shift_f is None:
            shift_f = x_bft.mean(axis=(0, 2))
            total_f = np.zeros_like(shift_f)
            total_sq_f = np.zeros_like(shift_f)
        centred = x_bft - shift_f[None, :, None]
        total_f += centred.sum(axis=(0, 2))
        total_sq_f += np.square(centred).sum(axis=(0, 2))
        count += x_bft.shape[0] * x_bft.shape[2]
    if shift_f is None:
        raise ValueError("fit needs at least one clip")
    mean_f = shift_f + total_f / count
    std_f = np.sqrt(np.maximum(total_sq_f / count - np.square(total_f / count), 0.0))
    # A bin that never varies (digital silence) would divide by zero; it stays at 0 instead.
    return mean_f, np.maximum(std_f, 1e-8)


@dataclass(frozen=True, eq=False)
class SpectrogramCodec:
    """Clips <-> SpecGAN features, with the training set's per-bin log-magnitude moments.

    ``mean_f`` and ``std_f`` have all 129 bins, as in the official code: the Nyquist bin is not a
    feature, but decoding puts it back as a normalised 0, i.e. the training set's mean log magnitude.
    :meth:`load` reads either kind of codec back (a :class:`MelCodec` when the file holds a mel).
    """

    mean_f: np.ndarray  # float32 (129,)
    std_f: np.ndarray  # float32 (129,)
    sample_rate: int

    @property
    def n_moments(self) -> int:
        """Bins with moments: the 129 of the 256-point STFT."""
        return N_FFT // 2 + 1

    def __post_init__(self):
        for name in ("mean_f", "std_f"):
            value = np.array(getattr(self, name), dtype=np.float32)  # a private, read-only copy
            if value.shape != (self.n_moments,):
                raise ValueError(f"{name} must have shape ({self.n_moments},), got {value.shape}")
            value.flags.writeable = False
            object.__setattr__(self, name, value)
        object.__setattr__(self, "sample_rate", int(self.sample_rate))

    @classmethod
    def fit(cls, clips_bt: np.ndarray, sample_rate: int) -> SpectrogramCodec:
        """Per-bin mean and standard deviation of the log magnitude over every frame of every clip."""
        clips_bt = _check_clips(clips_bt)
        mean_f, std_f = _moments(lmag for _, lmag in _log_magnitude_chunks(clips_bt))
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

    def griffin_lim(
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

    def decode(
        self, spec_bft: np.ndarray, n_iter: int = GRIFFIN_LIM_ITERS, *, momentum: float = GRIFFIN_LIM_MOMENTUM,
    ) -> np.ndarray:
        """Clips float32 (N, samples) in [-1, 1]: Griffin-Lim (:meth:`griffin_lim`), or a
        :class:`MelCodec`'s vocoder when it has one."""
        return self.griffin_lim(spec_bft, n_iter, momentum=momentum)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"mean_f": self.mean_f, "std_f": self.std_f, "sample_rate": np.int64(self.sample_rate)}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the moments (and a mel codec's settings) to ``path`` (.npz), atomically."""
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **self._arrays())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> SpectrogramCodec:
        """The codec saved at ``path``: a :class:`MelCodec` when the file holds mel settings."""
        with np.load(path) as f:
            values = dict(mean_f=f["mean_f"], std_f=f["std_f"], sample_rate=int(f["sample_rate"]))
            if "mel" in f.files:
                return MelCodec(**values, mel=MelSettings(**json.loads(str(f["mel"]))))
        return SpectrogramCodec(**values)


@dataclass(frozen=True, eq=False)
class MelCodec(SpectrogramCodec):
    """Clips <-> a mel SpecGAN's features: the log-mel of ``mel`` (HiFi-GAN's definition, what the
    vocoder takes), each band standardised with the training set's moments, divided by 3 and clipped
    to [-1, 1] as the paper's STFT features are.

    Back to audio (:meth:`decode`): through ``vocoder`` (log-mel (B, n_mels, frames) -> clips (B,
    frames * hop)) when one is attached (:meth:`with_vocoder`), else :meth:`griffin_lim`.
    """

    mel: MelSettings
    vocoder: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def n_moments(self) -> int:
        return self.mel.n_mels

    def __post_init__(self):
        if not isinstance(self.mel, MelSettings):
            raise ValueError(f"mel must be a MelSettings, got {self.mel!r}")
        if int(self.sample_rate) != self.mel.sample_rate:
            raise ValueError(f"sample_rate={self.sample_rate} differs from the mel's {self.mel.sample_rate}")
        super().__post_init__()

    def with_vocoder(self, vocoder: Callable[[np.ndarray], np.ndarray] | None) -> MelCodec:
        """The same codec decoding through ``vocoder`` (None: Griffin-Lim)."""
        return dataclasses.replace(self, vocoder=vocoder)

    def _check_mel_clips(self, clips_bt: np.ndarray) -> np.ndarray:
        clips_bt = np.asarray(clips_bt, dtype=np.float32)
        hop = self.mel.hop
        if clips_bt.ndim != 2 or clips_bt.shape[1] % hop or clips_bt.shape[1] < MEL_MIN_FRAMES * hop:
            raise ValueError(
                f"a mel SpecGAN needs clips of clip_samples a multiple of hop={hop} (at least "
                f"{MEL_MIN_FRAMES * hop}), shape (N, samples); got shape {clips_bt.shape}"
            )
        return clips_bt

    def _log_mel_chunks(self, clips_bt: np.ndarray):
        clips_bt = self._check_mel_clips(clips_bt)
        for start in range(0, len(clips_bt), _CHUNK):
            yield start, np.asarray(mel_spectrogram(clips_bt[start:start + _CHUNK], self.mel), dtype=np.float32)

    def log_mel(self, clips_bt: np.ndarray) -> np.ndarray:
        """The vocoder's log-mel of clips: float32 (N, n_mels, samples // hop)."""
        clips_bt = self._check_mel_clips(clips_bt)
        out = np.empty((len(clips_bt), self.mel.n_mels, self.mel.frames_for(clips_bt.shape[1])), np.float32)
        for start, mel_bft in self._log_mel_chunks(clips_bt):
            out[start:start + len(mel_bft)] = mel_bft
        return out

    @classmethod
    def fit(cls, clips_bt: np.ndarray, mel: MelSettings) -> MelCodec:  # type: ignore[override]
        """Per-band mean and standard deviation of the log-mel over every frame of every clip."""
        probe = cls(mean_f=np.zeros(mel.n_mels), std_f=np.ones(mel.n_mels), sample_rate=mel.sample_rate, mel=mel)
        mean_f, std_f = _moments(m for _, m in probe._log_mel_chunks(clips_bt))
        return cls(mean_f=mean_f, std_f=std_f, sample_rate=mel.sample_rate, mel=mel)

    def encode(self, clips_bt: np.ndarray, *, clip: bool = True) -> np.ndarray:
        """Features ``spec_bft``: float32 (N, n_mels, samples // hop) in [-1, 1]; ``clip=False`` skips the clipping."""
        scale = self.std_f * np.float32(CLIP_NSTD)
        spec_bft = (self.log_mel(clips_bt) - self.mean_f[None, :, None]) / scale[None, :, None]
        if clip:
            np.clip(spec_bft, -1.0, 1.0, out=spec_bft)
        return spec_bft.astype(np.float32, copy=False)

    def to_log_mel(self, spec_bft: np.ndarray) -> np.ndarray:
        """Features back to the vocoder's log-mel: float32 (N, n_mels, frames)."""
        spec_bft = np.asarray(spec_bft, dtype=np.float32)
        if spec_bft.ndim != 3 or spec_bft.shape[1] != self.mel.n_mels:
            raise ValueError(f"spectrograms must have shape (N, {self.mel.n_mels}, frames), got {spec_bft.shape}")
        return spec_bft * (np.float32(CLIP_NSTD) * self.std_f)[None, :, None] + self.mean_f[None, :, None]

    def magnitude(self, spec_bft: np.ndarray) -> np.ndarray:
        """Linear STFT magnitudes (N, n_fft // 2 + 1, frames) under the mel: the filterbank's
        pseudo-inverse, negatives set to 0. librosa's ``mel_to_stft`` solves the same least squares
        under x >= 0 by NNLS; on tones it gave the same mel error and took ~0.3 s a clip, against
        milliseconds here."""
        mel_bft = np.exp(self.to_log_mel(spec_bft))
        inverse_km = _pseudo_inverse(self.mel)
        mag_bkf = np.einsum("km,bmf->bkf", inverse_km, mel_bft)
        return np.maximum(mag_bkf, 0.0).astype(np.float32, copy=False)

    def griffin_lim(
        self, spec_bft: np.ndarray, n_iter: int = GRIFFIN_LIM_ITERS, *, momentum: float = GRIFFIN_LIM_MOMENTUM,
    ) -> np.ndarray:
        """Clips float32 (N, frames * hop) in [-1, 1] by Griffin-Lim on :meth:`magnitude`, on the
        mel's framing (the clip reflect-padded by (n_fft - hop) / 2, uncentred frames): librosa
        inverts the padded clip, whose padding is cut off again."""
        mag_bkf = self.magnitude(spec_bft)
        mel = self.mel
        frames = mag_bkf.shape[2]
        left = (mel.n_fft - mel.hop) // 2
        padded = (frames - 1) * mel.hop + mel.n_fft
        wav_bt = librosa.griffinlim(
            mag_bkf, n_iter=n_iter, hop_length=mel.hop, win_length=mel.win, n_fft=mel.n_fft, window="hann",
            center=False, length=padded, momentum=momentum, init=None,
        )
        wav_bt = wav_bt[:, left:left + mel.samples_for(frames)]
        return np.clip(wav_bt, -1.0, 1.0).astype(np.float32, copy=False)

    def decode(
        self, spec_bft: np.ndarray, n_iter: int = GRIFFIN_LIM_ITERS, *, momentum: float = GRIFFIN_LIM_MOMENTUM,
    ) -> np.ndarray:
        """Clips float32 (N, frames * hop) in [-1, 1]: the vocoder's, or Griffin-Lim's without one."""
        if self.vocoder is None:
            return self.griffin_lim(spec_bft, n_iter, momentum=momentum)
        wav_bt = np.asarray(self.vocoder(self.to_log_mel(spec_bft)), dtype=np.float32)
        return np.clip(wav_bt, -1.0, 1.0)

    def _arrays(self) -> dict[str, np.ndarray]:
        return super()._arrays() | {"mel": np.asarray(json.dumps(dataclasses.asdict(self.mel)))}


def _pseudo_inverse(mel: MelSettings) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels): the Moore-Penrose inverse of the mel filterbank."""
    return np.linalg.pinv(mel_filters(mel).astype(np.float64)).astype(np.float32)


# ---------------------------------------------------------------------------- a run's representation
def mel_settings(config) -> MelSettings:
    """A mel SpecGAN's front end: ``config``'s sample_rate, hop, n_mels and fmax, n_fft = win = 4 hops
    (as the suite's vocoders derive it), fmin 0. Raises ValueError for settings that do not fit."""
    return MelSettings(sample_rate=config.sample_rate, n_fft=MEL_FFT_HOPS * config.hop, hop=config.hop,
                       win=MEL_FFT_HOPS * config.hop, n_mels=config.n_mels, fmin=0.0, fmax=float(config.fmax))


def mel_defaults(sample_rate: int) -> dict[str, float | int]:
    """n_mels, hop and fmax of a mel SpecGAN with no vocoder to take them from (HiFi-GAN V1's)."""
    return {"n_mels": MEL_N_MELS, "hop": MEL_HOP, "fmax": min(MEL_FMAX, sample_rate / 2)}


def spec_shape(config) -> tuple[int, int]:
    """The generator's output (H, W): (128, 128), or (n_mels, clip_samples // hop) for a mel SpecGAN."""
    if config.spectrogram == "mel":
        return config.n_mels, config.clip_samples // config.hop
    return SPEC_SHAPE


def fit_codec(config, clips_bt: np.ndarray, sample_rate: int) -> SpectrogramCodec:
    """The codec of ``config``'s representation, its moments fitted on ``clips_bt``."""
    if config.spectrogram == "mel":
        return MelCodec.fit(clips_bt, mel_settings(config))
    return SpectrogramCodec.fit(clips_bt, sample_rate)


def check(config) -> None:
    """Raise :class:`ConfigError` when ``config``'s representation or clip length does not fit SpecGAN."""
    if config.spectrogram not in REPRESENTATIONS:
        raise ConfigError(
            f"spectrogram={config.spectrogram!r} is unknown; choose one of {', '.join(map(repr, REPRESENTATIONS))}."
        )
    if config.spectrogram == "stft":
        if config.clip_samples != CLIP_SAMPLES:
            raise ConfigError(
                f"clip_samples={config.clip_samples} does not fit SpecGAN, whose {N_BINS} x {N_FRAMES} spectrograms "
                f"(hop {HOP}) cover exactly {CLIP_SAMPLES} samples; use clip_samples={CLIP_SAMPLES}."
            )
        return
    try:
        mel = mel_settings(config)
    except ValueError as exc:
        raise ConfigError(
            f"n_mels={config.n_mels}, hop={config.hop}, fmax={config.fmax} at sample_rate={config.sample_rate} "
            f"do not make a mel front end: {exc}."
        ) from exc
    if config.clip_samples % mel.hop or config.clip_samples < MEL_MIN_FRAMES * mel.hop:
        lower = max(MEL_MIN_FRAMES * mel.hop, config.clip_samples // mel.hop * mel.hop)
        raise ConfigError(
            f"clip_samples={config.clip_samples} must be a multiple of hop={mel.hop} (at least {MEL_MIN_FRAMES} "
            f"of them): a mel SpecGAN makes one frame per hop and a vocoder hop samples per frame. Use "
            f"{lower} or {lower + mel.hop}."
        )


def build(config, n_in: int, rngs: nnx.Rngs) -> tuple[Generator, Discriminator]:
    """Both networks of a run at width ``config.d``, for its spectrograms' shape."""
    shape = spec_shape(config)
    return Generator(n_in, config.d, shape=shape, rngs=rngs), Discriminator(config.d, shape=shape, rngs=rngs)
