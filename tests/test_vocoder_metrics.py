"""Vocoder scores on short 8 kHz vowel-like clips: identical, noisy, rescaled, malformed."""

import numpy as np
import pytest

from audiogan.audio.mel import MelSettings, mel_spectrogram
from audiogan.evaluation import vocoder_metrics as vm

RATE = 8000


def vowels(batch: int = 2, samples: int = 5600, seed: int = 0) -> np.ndarray:
    """Harmonic clips with a syllable-rate envelope (0.7 s at 8 kHz): enough sound for STOI."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / RATE
    f0_b1 = rng.uniform(100, 220, size=(batch, 1))
    voice_bt = sum(np.sin(2 * np.pi * k * f0_b1 * t + rng.uniform(0, 6)) / k for k in range(1, 12))
    envelope_bt = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6, size=(batch, 1)))
    wav_bt = voice_bt * envelope_bt
    return (0.5 * wav_bt / np.abs(wav_bt).max(axis=1, keepdims=True)).astype(np.float32)


def with_noise(wav_bt: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    noise_bt = np.random.default_rng(seed).standard_normal(wav_bt.shape)
    noise_bt *= np.sqrt(np.mean(wav_bt**2, axis=1, keepdims=True) / 10 ** (snr_db / 10))
    return (wav_bt + noise_bt).astype(np.float32)


def test_identical_clips_score_perfectly():
    clean_bt = vowels()
    scores = vm.score(clean_bt, clean_bt.copy(), RATE)
    assert set(scores) == {"mrstft", "mel_l1", "lsd", "si_sdr", "stoi"}
    assert scores["mrstft"] == 0 and scores["lsd"] == 0 and scores["mel_l1"] == 0
    assert scores["si_sdr"] > 100
    assert scores["stoi"] == pytest.approx(1.0, abs=1e-6)


def test_more_noise_worsens_every_score():
    clean_bt = vowels()
    mild, harsh = vm.score(clean_bt, with_noise(clean_bt, 20), RATE), vm.score(clean_bt, with_noise(clean_bt, 0), RATE)
    assert 0 < mild["mrstft"] < harsh["mrstft"]
    assert 0 < mild["mel_l1"] < harsh["mel_l1"]
    assert 0 < mild["lsd"] < harsh["lsd"]
    assert harsh["si_sdr"] < mild["si_sdr"] < 100
    assert harsh["stoi"] < mild["stoi"] < 1
    assert mild["si_sdr"] == pytest.approx(20, abs=0.5)


def test_si_sdr_of_orthogonal_noise_is_the_power_ratio():
    t = np.arange(800) / RATE
    reference_bt = np.sin(2 * np.pi * 100 * t)[None]
    estimate_bt = reference_bt + 0.1 * np.sin(2 * np.pi * 300 * t)[None]
    # Whole periods of both tones: the 300 Hz tone is orthogonal, 20 log10(1 / 0.1) = 20 dB.
    assert vm.si_sdr(reference_bt, estimate_bt) == pytest.approx(20.0, abs=1e-6)


def test_si_sdr_ignores_the_gain_of_either_clip():
    clean_bt = vowels()
    noisy_bt = with_noise(clean_bt, 5)
    base = vm.si_sdr(clean_bt, noisy_bt)
    assert vm.si_sdr(clean_bt, 0.1 * noisy_bt) == pytest.approx(base, abs=1e-6)
    assert vm.si_sdr(3.0 * clean_bt, noisy_bt) == pytest.approx(base, abs=1e-6)


def test_stft_resolutions_scale_by_powers_of_two():
    assert vm.stft_resolutions(24000) == vm.stft_resolutions(22050) == vm.STFT_RESOLUTIONS_24K
    assert vm.stft_resolutions(8000) == ((128, 32, 128), (256, 64, 256), (512, 128, 512))


def test_griffin_lim_returns_hop_times_frames_and_beats_noise():
    settings = MelSettings.hifigan(RATE)
    clean_bt = vowels(1, 24 * settings.hop)
    mel_bft = np.asarray(mel_spectrogram(clean_bt, settings))
    wav_bt = vm.griffin_lim(mel_bft, settings, n_iter=16)
    assert wav_bt.shape == clean_bt.shape and np.all(np.isfinite(wav_bt))
    noise_bt = with_noise(np.zeros_like(clean_bt), 0, seed=2) + np.random.default_rng(3).normal(0, 0.1, clean_bt.shape)
    assert vm.mel_l1(clean_bt, wav_bt, RATE) < 0.5 * vm.mel_l1(clean_bt, noise_bt.astype(np.float32), RATE)


def test_bad_inputs_name_the_parameter():
    clean_bt = vowels(1)
    with pytest.raises(ValueError, match="reference_bt"):
        vm.mrstft(clean_bt[0], clean_bt[0], RATE)
    with pytest.raises(ValueError, match="estimate_bt"):
        vm.lsd(clean_bt, clean_bt[:, :-1], RATE)
    with pytest.raises(ValueError, match="estimate_bt"):
        vm.si_sdr(clean_bt, np.full_like(clean_bt, np.nan))
    with pytest.raises(ValueError, match="sample_rate"):
        vm.stoi(clean_bt, clean_bt, 0)
    with pytest.raises(ValueError, match="reference_bt"):
        vm.stoi(clean_bt[:, :800], clean_bt[:, :800], RATE)
    with pytest.raises(ValueError, match="reference_bt"):
        vm.mrstft(clean_bt[:, :300], clean_bt[:, :300], RATE)
    with pytest.raises(ValueError, match="resolutions"):
        vm.mrstft(clean_bt, clean_bt, RATE, resolutions=[(256, 512, 256)])
    with pytest.raises(ValueError, match="settings"):
        vm.mel_l1(clean_bt, clean_bt, RATE, settings=MelSettings())
    with pytest.raises(ValueError, match="mel_bft"):
        vm.griffin_lim(np.zeros((1, 40, 3)), MelSettings.hifigan(RATE))
