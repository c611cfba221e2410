"""The JAX mel front end against a numpy transcription of HiFi-GAN's ``mel_spectrogram``."""

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest

from audiogan.audio.mel import MelSettings, mel_filters, mel_spectrogram


def reference_mel(wav_bt: np.ndarray, s: MelSettings) -> np.ndarray:
    """HiFi-GAN's definition step by step in float64: reflect pad, torch.stft(center=False), log mel."""
    pad = (s.n_fft - s.hop) // 2
    padded_bt = np.pad(wav_bt.astype(np.float64), ((0, 0), (pad, pad)), mode="reflect")
    n_frames = 1 + (padded_bt.shape[1] - s.n_fft) // s.hop
    # torch.hann_window(win) is periodic; torch.stft centres a short window inside n_fft.
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(s.win) / s.win)
    left = (s.n_fft - s.win) // 2
    window = np.pad(window, (left, s.n_fft - s.win - left))
    starts = np.arange(n_frames) * s.hop
    frames_bfn = padded_bt[:, starts[:, None] + np.arange(s.n_fft)[None, :]]
    spec_bfk = np.fft.rfft(frames_bfn * window, axis=-1)
    mag_bkf = np.sqrt(spec_bfk.real**2 + spec_bfk.imag**2 + 1e-9).transpose(0, 2, 1)
    basis = librosa.filters.mel(sr=s.sample_rate, n_fft=s.n_fft, n_mels=s.n_mels, fmin=s.fmin, fmax=s.fmax)
    return np.log(np.clip(np.einsum("mk,bkf->bmf", basis.astype(np.float64), mag_bkf), 1e-5, None))


def speechlike(batch: int, samples: int, sample_rate: int, seed: int = 0) -> np.ndarray:
    """Harmonics, a chirp and a little noise in [-1, 1], float32: energy across the mel band."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / sample_rate
    f0 = rng.uniform(90, 250, size=(batch, 1))
    wav = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8))
    chirp = np.sin(2 * np.pi * (200 + 0.2 * sample_rate * t) * t)
    wav = wav + 0.3 * chirp + 0.05 * rng.standard_normal((batch, samples))
    return (0.9 * wav / np.abs(wav).max(axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize(
    "settings",
    [
        MelSettings(),
        MelSettings.hifigan(8000),
        MelSettings(sample_rate=16000, n_fft=512, hop=160, win=400, n_mels=40, fmin=20, fmax=None),
    ],
    ids=["hifigan-22k", "scaled-8k", "short-window-16k"],
)
def test_mel_matches_the_hifigan_reference_within_1e_5(settings):
    wav_bt = speechlike(2, 12 * settings.hop + 37, settings.sample_rate)
    mel_bft = np.asarray(jax.jit(mel_spectrogram, static_argnums=1)(wav_bt, settings))
    expected = reference_mel(wav_bt, settings)
    assert mel_bft.shape == expected.shape == (2, settings.n_mels, 12)
    np.testing.assert_allclose(mel_bft, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("sample_rate", [8000, 16000, 22050, 24000])
@pytest.mark.parametrize("hops", [1, 3, 8])
def test_frames_times_hop_equals_the_length_for_whole_hops(sample_rate, hops):
    settings = MelSettings.hifigan(sample_rate)
    samples = hops * settings.hop
    mel_bft = jax.eval_shape(lambda w: mel_spectrogram(w, settings), jnp.zeros((1, samples), jnp.float32))
    assert mel_bft.shape == (1, settings.n_mels, hops)
    assert settings.frames_for(samples) * settings.hop == settings.samples_for(hops) == samples


def test_a_partial_hop_adds_no_frame():
    settings = MelSettings.hifigan(8000)
    for samples in (settings.hop, 2 * settings.hop - 1, 2 * settings.hop, 2 * settings.hop + 1):
        shape = jax.eval_shape(lambda w: mel_spectrogram(w, settings), jnp.zeros((1, samples))).shape
        assert shape[-1] == settings.frames_for(samples) == samples // settings.hop


def test_an_odd_padding_still_gives_length_over_hop_frames():
    settings = MelSettings(sample_rate=16000, n_fft=512, hop=165, win=400, n_mels=40)
    shape = jax.eval_shape(lambda w: mel_spectrogram(w, settings), jnp.zeros((1, 165 * 4))).shape
    assert shape[-1] == 4


def test_mel_is_differentiable_and_its_gradient_finite():
    settings = MelSettings.hifigan(8000)
    wav_bt = jnp.asarray(speechlike(1, 4 * settings.hop, 8000))
    grad_fn = jax.jit(jax.grad(lambda w: mel_spectrogram(w, settings).mean()))
    grad_bt = grad_fn(wav_bt)
    assert grad_bt.shape == wav_bt.shape
    assert np.all(np.isfinite(grad_bt)) and np.abs(grad_bt).max() > 0
    # Silence: the 1e-9 under the square root and the log floor keep the gradient finite.
    assert np.all(np.isfinite(grad_fn(jnp.zeros_like(wav_bt))))


def test_hifigan_defaults_scale_by_powers_of_two():
    assert (MelSettings.hifigan(22050).n_fft, MelSettings.hifigan(22050).hop) == (1024, 256)
    assert (MelSettings.hifigan(24000).hop, MelSettings.hifigan(24000).fmax) == (256, 8000)
    eight = MelSettings.hifigan(8000)
    assert (eight.n_fft, eight.hop, eight.win, eight.fmax) == (512, 128, 512, 4000)
    assert MelSettings.hifigan(16000).for_loss().f_max == 8000
    assert MelSettings().for_loss().f_max == 11025


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"hop": 0}, "hop"),
        ({"hop": 512, "win": 256}, "hop"),
        ({"win": 2048}, "win"),
        ({"n_mels": 0}, "n_mels"),
        ({"n_fft": 1024.0}, "n_fft"),
        ({"fmin": -1.0}, "fmin"),
        ({"fmin": 9000.0}, "fmax"),
        ({"fmax": 12000.0}, "fmax"),
        ({"sample_rate": 0}, "sample_rate"),
        ({"n_fft": 64, "hop": 16, "win": 64, "n_mels": 80}, "n_mels"),
    ],
)
def test_bad_settings_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        MelSettings(**kwargs)


def test_bad_input_shapes_name_the_parameter():
    settings = MelSettings.hifigan(8000)
    with pytest.raises(ValueError, match="wav_bt"):
        mel_spectrogram(jnp.zeros(1024), settings)
    with pytest.raises(ValueError, match="wav_bt"):
        mel_spectrogram(jnp.zeros((1, 100)), settings)


def test_filters_are_librosa_slaney_float32():
    settings = MelSettings.hifigan(8000)
    basis = mel_filters(settings)
    assert basis.shape == (80, 257) and basis.dtype == np.float32
    np.testing.assert_array_equal(basis, librosa.filters.mel(sr=8000, n_fft=512, n_mels=80, fmin=0, fmax=4000))


def test_half_precision_and_integer_clips_give_float32_mels():
    settings = MelSettings.hifigan(8000)
    for dtype in (jnp.bfloat16, jnp.float16, jnp.int16):
        out = jax.eval_shape(lambda w: mel_spectrogram(w, settings), jax.ShapeDtypeStruct((2, 512), dtype))
        assert out.shape == (2, 80, 4) and out.dtype == jnp.float32
