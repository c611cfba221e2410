"""Metrics: the pitch of generated clips, measured by pYIN."""

from __future__ import annotations

import numpy as np
import pytest

from audiogan.metrics import median_pitch, pitch_report


def _sine(freq_hz: float, sample_rate: int, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (0.8 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


@pytest.mark.parametrize("sample_rate", [8000, 16000])
def test_median_pitch_of_sines(sample_rate):
    clips = np.stack([_sine(220, sample_rate), _sine(330, sample_rate)])
    pitch, voiced = median_pitch(clips, sample_rate)
    assert pitch.shape == (2,) and voiced.shape == (2,)
    np.testing.assert_allclose(pitch, [220, 330], rtol=0.02)
    assert np.all(voiced > 0.5)


def test_silence_has_no_pitch():
    clips = np.stack([np.zeros(4000, np.float32), _sine(220, 8000)])
    pitch, voiced = median_pitch(clips, 8000)
    assert np.isnan(pitch[0])
    assert voiced[0] == 0
    assert pitch[1] == pytest.approx(220, rel=0.02)


def test_single_clip_is_accepted():
    pitch, _ = median_pitch(_sine(330, 8000), 8000)
    assert pitch.shape == (1,)
    assert pitch[0] == pytest.approx(330, rel=0.02)


def test_pitch_report_fraction_in_range():
    sample_rate = 8000
    clips = np.stack([
        _sine(220, sample_rate),  # inside C3..C5
        _sine(400, sample_rate),  # inside
        _sine(800, sample_rate),  # pitched, above the range
        np.zeros(4000, np.float32),  # silent: not pitched
    ])
    report = pitch_report(clips, sample_rate, (130.81, 523.25))
    assert report["n_clips"] == 4
    assert report["fraction_pitched"] == pytest.approx(0.75)
    assert report["fraction_in_range"] == pytest.approx(0.5)
    med = report["median_pitch_hz"]
    assert med[3] is None
    np.testing.assert_allclose(med[:3], [220, 400, 800], rtol=0.02)
    assert len(report["voiced_fraction"]) == 4
