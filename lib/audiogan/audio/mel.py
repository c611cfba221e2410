"""Log-mel spectrogram in JAX: HiFi-GAN's vocoder front end, at any sample rate.

The definition is HiFi-GAN's ``mel_spectrogram`` (``center=False``): reflect-pad the clip by
(n_fft - hop) / 2 on each side, take a Hann-windowed STFT with no further centring, the magnitude
sqrt(re^2 + im^2 + 1e-9), Slaney-normalised librosa mel filters, then log(max(x, 1e-5)).

Frames: a clip of T samples gives exactly ``T // hop`` frames (frame f is centred on sample
f * hop + hop / 2), so a clip of a whole number of hops round-trips through a vocoder whose output
is ``hop * frames`` samples. Trailing samples short of a whole hop only reach the last frame's
tail. When n_fft - hop is odd the extra padding sample goes on the right (HiFi-GAN pads both
sides by the floor, which loses a frame); every HiFi-GAN config has it even, where the two agree.
A clip shorter than the padding is reflected back and forth (numpy's rule; torch refuses it).
The window is Hann of length ``win`` (the reference always builds it with 1024 samples, so it only
runs with win = 1024).

Layout: ``mel_bft`` is (batch, n_mels, frames), as in the reference; Flax convolutions want
channels last, ``mel_bft.transpose(0, 2, 1)``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import scipy.signal

# HiFi-GAN V1/V2/V3 (LJSpeech, 22.05 kHz).
_HIFIGAN_RATE = 22050
_HIFIGAN_N_FFT, _HIFIGAN_HOP, _HIFIGAN_WIN = 1024, 256, 1024
_HIFIGAN_N_MELS, _HIFIGAN_FMIN, _HIFIGAN_FMAX = 80, 0.0, 8000.0

MAG_EPS = 1e-9  # added under the square root of the STFT power, as in the reference
LOG_FLOOR = 1e-5  # mel energies are clamped here before the log


def power_of_two_scale(sample_rate: int, reference_rate: int) -> float:
    """The power of two nearest to sample_rate / reference_rate, to scale FFT sizes and hops.

    Powers of two keep the hop a product of a vocoder's upsampling factors (8 * 8 * 2 * 2 = 256 in
    HiFi-GAN V1): halving or doubling the hop changes one factor.
    """
    return float(2.0 ** round(math.log2(sample_rate / reference_rate)))


def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class MelSettings:
    """Everything that defines the mel front end; validated on construction.

    ``fmax=None`` means the Nyquist frequency (HiFi-GAN's ``fmax_for_loss``).
    """

    sample_rate: int = _HIFIGAN_RATE
    n_fft: int = _HIFIGAN_N_FFT
    hop: int = _HIFIGAN_HOP
    win: int = _HIFIGAN_WIN
    n_mels: int = _HIFIGAN_N_MELS
    fmin: float = _HIFIGAN_FMIN
    fmax: float | None = _HIFIGAN_FMAX

    def __post_init__(self):
        _check_int("sample_rate", self.sample_rate, 1)
        _check_int("n_fft", self.n_fft, 2)
        _check_int("hop", self.hop, 1)
        _check_int("win", self.win, 1)
        _check_int("n_mels", self.n_mels, 1)
        if self.hop > self.win:
            raise ValueError(f"hop={self.hop} must be <= win={self.win}: samples between windows would be unseen")
        if self.win > self.n_fft:
            raise ValueError(f"win={self.win} must be <= n_fft={self.n_fft}")
        nyquist = self.sample_rate / 2
        if not 0 <= self.fmin < nyquist:
            raise ValueError(f"fmin={self.fmin} must be in [0, sample_rate / 2 = {nyquist})")
        if self.fmax is not None and not self.fmin < self.fmax <= nyquist:
            raise ValueError(f"fmax={self.fmax} must be in (fmin={self.fmin}, sample_rate / 2 = {nyquist}] or None")
        empty = np.flatnonzero(mel_filters(self).max(axis=1) <= 0)
        if empty.size:
            raise ValueError(
                f"n_mels={self.n_mels} is too many for n_fft={self.n_fft} between {self.fmin} and {self.f_max} Hz: "
                f"mel filter(s) {empty.tolist()} cover no FFT bin; lower n_mels or raise n_fft"
            )

    @property
    def f_max(self) -> float:
        """The upper edge of the mel band in Hz, with None resolved to the Nyquist frequency."""
        return float(self.sample_rate / 2 if self.fmax is None else self.fmax)

    @property
    def n_freqs(self) -> int:
        """Number of one-sided STFT bins, n_fft // 2 + 1."""
        return self.n_fft // 2 + 1

    @classmethod
    def hifigan(cls, sample_rate: int = _HIFIGAN_RATE, n_mels: int = _HIFIGAN_N_MELS) -> MelSettings:
        """HiFi-GAN V1's front end at ``sample_rate``.

        n_fft, hop and win scale by the power of two nearest sample_rate / 22050 (8 kHz: 512/128/512;
        16-24 kHz: 1024/256/1024; 44.1-48 kHz: 2048/512/2048); fmax stays 8 kHz where the rate allows.
        """
        scale = power_of_two_scale(sample_rate, _HIFIGAN_RATE)
        return cls(
            sample_rate=sample_rate,
            n_fft=int(_HIFIGAN_N_FFT * scale),
            hop=int(_HIFIGAN_HOP * scale),
            win=int(_HIFIGAN_WIN * scale),
            n_mels=n_mels,
            fmin=_HIFIGAN_FMIN,
            fmax=min(_HIFIGAN_FMAX, sample_rate / 2),
        )

    def for_loss(self) -> MelSettings:
        """The same front end up to the Nyquist frequency, as HiFi-GAN's mel L1 loss uses."""
        return dataclasses.replace(self, fmax=None)

    def frames_for(self, samples: int) -> int:
        """Mel frames of a clip of ``samples`` samples: ``samples // hop``."""
        return int(samples) // self.hop

    def samples_for(self, frames: int) -> int:
        """Samples a vocoder makes from ``frames`` mel frames: ``hop * frames``."""
        return int(frames) * self.hop


@functools.lru_cache(maxsize=32)
def mel_filters(settings: MelSettings) -> np.ndarray:
    """librosa's Slaney mel filterbank (n_mels, n_fft // 2 + 1), float32 as in the reference."""
    with warnings.catch_warnings():
        # An empty filter is reported by MelSettings as an error naming n_mels.
        warnings.simplefilter("ignore", UserWarning)
        basis = librosa.filters.mel(
            sr=settings.sample_rate, n_fft=settings.n_fft, n_mels=settings.n_mels,
            fmin=settings.fmin, fmax=settings.f_max, htk=False, norm="slaney", dtype=np.float32,
        )
    basis.setflags(write=False)
    return basis


@functools.lru_cache(maxsize=32)
def _window(win: int) -> np.ndarray:
    """Periodic Hann window (win,), torch.hann_window's default."""
    return scipy.signal.get_window("hann", win, fftbins=True).astype(np.float32)


def _frames(wav_bt: jax.Array, settings: MelSettings, n_frames: int) -> jax.Array:
    """Windowed segments (B, frames, win) of the padded clip, made of slices (no gather).

    Only the ``win`` samples under the window are kept: torch centres a short window inside n_fft,
    which shifts every frame by the same offset and changes the phase, not the magnitude.
    """
    hop, win = settings.hop, settings.win
    left = (settings.n_fft - hop) // 2
    right = settings.n_fft - hop - left
    padded_bt = jnp.pad(wav_bt, ((0, 0), (left, right)), mode="reflect")
    offset = (settings.n_fft - win) // 2
    chunks_per_frame = -(-win // hop)
    n_chunks = n_frames + chunks_per_frame - 1
    segment_bt = padded_bt[:, offset : offset + n_chunks * hop]
    segment_bt = jnp.pad(segment_bt, ((0, 0), (0, n_chunks * hop - segment_bt.shape[1])))
    chunks_bch = segment_bt.reshape(segment_bt.shape[0], n_chunks, hop)
    # Frame f is chunks f .. f + chunks_per_frame - 1 laid end to end, cut to the window.
    frames_bfw = jnp.concatenate([chunks_bch[:, k : k + n_frames] for k in range(chunks_per_frame)], axis=-1)
    return frames_bfw[..., :win]


def magnitude_spectrogram(wav_bt: jax.Array, settings: MelSettings) -> jax.Array:
    """STFT magnitude (B, n_fft // 2 + 1, T // hop) of clips (B, T) on HiFi-GAN's framing."""
    wav_bt = jnp.asarray(wav_bt)
    if wav_bt.ndim != 2:
        raise ValueError(f"wav_bt must be (batch, samples), got shape {wav_bt.shape}")
    if wav_bt.shape[1] < settings.hop:
        raise ValueError(f"wav_bt has {wav_bt.shape[1]} samples, fewer than one hop ({settings.hop})")
    if wav_bt.dtype not in (jnp.float32, jnp.float64):
        # Integers and half precision (which the FFT does not take) are scored in float32.
        wav_bt = wav_bt.astype(jnp.float32)
    frames_bfw = _frames(wav_bt, settings, settings.frames_for(wav_bt.shape[1]))
    window_11w = jnp.asarray(_window(settings.win), wav_bt.dtype)[None, None, :]
    spec_bfk = jnp.fft.rfft(frames_bfw * window_11w, n=settings.n_fft)
    mag_bfk = jnp.sqrt(jnp.real(spec_bfk) ** 2 + jnp.imag(spec_bfk) ** 2 + MAG_EPS)
    return mag_bfk.transpose(0, 2, 1)


def mel_spectrogram(wav_bt: jax.Array, settings: MelSettings) -> jax.Array:
    """Log-mel spectrogram (B, n_mels, T // hop) of clips (B, T) in [-1, 1], HiFi-GAN's definition.

    Differentiable and jit-friendly: the shapes depend only on T and ``settings``.
    """
    mag_bkf = magnitude_spectrogram(wav_bt, settings)
    basis_mk = jnp.asarray(mel_filters(settings), mag_bkf.dtype)
    # Full float32 so that TF32/bfloat16 matmul defaults on accelerators do not move the result.
    mel_bmf = jnp.einsum("mk,bkf->bmf", basis_mk, mag_bkf, precision=jax.lax.Precision.HIGHEST)
    return jnp.log(jnp.maximum(mel_bmf, LOG_FLOOR))
