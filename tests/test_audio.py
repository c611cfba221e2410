"""Audio in and out: WAV writing, levels, spectrograms."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from audiogan.audio import log_spectrogram, read_audio, rms_db, write_wav

SR = 16000


def _sine(freq_hz: float, n: int, sample_rate: int = SR, amplitude: float = 1.0) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq_hz * np.arange(n) / sample_rate)).astype(np.float32)


def test_write_wav_round_trip_within_16_bit_quantisation(tmp_path):
    rng = np.random.default_rng(0)
    wav = np.concatenate([
        rng.uniform(-1, 1, 1000), [-1.0, 1.0, 0.0, 0.5, -0.5], _sine(440, 500, amplitude=0.9),
    ]).astype(np.float32)
    path = write_wav(tmp_path / "sub" / "clip.wav", wav, SR)
    assert path.is_file()
    back, sample_rate = sf.read(str(path), dtype="float32")
    info = sf.info(str(path))
    assert sample_rate == SR
    assert info.channels == 1
    assert info.subtype == "PCM_16"
    assert back.shape == wav.shape
    np.testing.assert_allclose(back, wav, rtol=0, atol=1 / 32768 + 1e-7)


def test_write_wav_clips_out_of_range_and_flattens(tmp_path):
    wav = np.array([[2.0, -3.0, 0.25]], dtype=np.float32)  # (1, t) is written as mono
    back, _ = sf.read(str(write_wav(tmp_path / "c.wav", wav, SR)), dtype="float32")
    np.testing.assert_allclose(back, [1.0, -1.0, 0.25], atol=1 / 32768 + 1e-7)


def test_read_audio_downmixes_and_resamples(tmp_path):
    stereo = np.stack([_sine(440, 22050, 22050, 0.5), _sine(440, 22050, 22050, 0.5)], axis=1)
    sf.write(str(tmp_path / "s.wav"), stereo, 22050)
    wav = read_audio(tmp_path / "s.wav", SR)
    assert wav.dtype == np.float32
    assert wav.ndim == 1
    assert abs(len(wav) - SR) <= 1


def test_rms_db_of_full_scale_sine_is_minus_3_db():
    level = rms_db(_sine(1000, SR))  # a whole number of periods
    assert level.shape == (1,)
    assert level[0] == pytest.approx(-3.0103, abs=0.01)


def test_rms_db_per_clip_and_floor():
    clips = np.stack([_sine(500, 1600, amplitude=0.1), np.zeros(1600, np.float32)])
    level = rms_db(clips)
    assert level.shape == (2,)
    assert level[0] == pytest.approx(-23.0103, abs=0.01)  # 20 dB below full scale
    assert level[1] == pytest.approx(-120.0)


def test_log_spectrogram_shape_and_peak_at_0_db():
    wav = _sine(1000, 4096, amplitude=0.3)
    spec = log_spectrogram(wav, SR, n_fft=256)
    assert spec.shape == (129, 1 + 4096 // 64)
    assert spec.max() == pytest.approx(0.0, abs=1e-4)
    assert spec.min() >= -80.0 - 1e-4  # top_db
    # The loudest bin is the one nearest 1 kHz.
    assert np.argmax(spec.mean(axis=1)) == round(1000 / (SR / 256))


def test_log_spectrogram_default_frame_never_longer_than_clip():
    spec = log_spectrogram(_sine(1000, 100), SR)
    n_fft = 2 * (spec.shape[0] - 1)
    assert n_fft <= 100
    assert spec.max() == pytest.approx(0.0, abs=1e-4)
