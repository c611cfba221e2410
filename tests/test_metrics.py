"""Metrics: the pitch of generated clips, measured by pYIN."""

from __future__ import annotations

import numpy as np
import pytest

from audiogan.evaluation.metrics import median_pitch, pitch_report


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


# ---------------------------------------------------------------------------- known distributions
from audiogan.evaluation import metrics as M  # noqa: E402


def _one_hot(labels, n_classes):
    return np.eye(n_classes)[labels]


def test_inception_score_of_uniform_predictions_is_one():
    assert M.inception_score(np.full((200, 10), 0.1)) == pytest.approx(1.0, abs=1e-9)
    # Confident but always the same class: also 1 (no diversity).
    assert M.inception_score(_one_hot(np.zeros(50, int), 10)) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("n_classes", [2, 10, 25])
def test_inception_score_of_perfect_balanced_one_hot_is_the_class_count(n_classes):
    probs = _one_hot(np.arange(20 * n_classes) % n_classes, n_classes)
    assert M.inception_score(probs) == pytest.approx(n_classes, rel=1e-6)
    # Unbalanced classes score less.
    skewed = _one_hot(np.r_[np.zeros(100, int), np.arange(n_classes)], n_classes)
    assert M.inception_score(skewed) < 0.6 * n_classes


def test_modified_inception_score():
    n = 10
    assert M.modified_inception_score(np.full((50, n), 1 / n)) == pytest.approx(1.0, abs=1e-9)
    # Soft but distinct predictions: KL between two clips of different classes is finite, so the
    # score lies between 1 and what confident predictions of balanced classes give.
    soft = 0.9 * _one_hot(np.arange(100) % n, n) + 0.1 / n
    hard = 0.999 * _one_hot(np.arange(100) % n, n) + 0.001 / n
    s_soft, s_hard = M.modified_inception_score(soft), M.modified_inception_score(hard)
    assert 1 < s_soft < s_hard
    # Within one class every clip predicts the same: mIS = exp(mean pairwise KL), checked by hand.
    p = soft
    kl = np.array([[np.sum(a * np.log(a / b)) for b in p] for a in p])
    assert s_soft == pytest.approx(np.exp(kl.mean()), rel=1e-6)


def test_am_score_is_zero_for_confident_predictions_matching_the_reference():
    probs = _one_hot(np.arange(100) % 4, 4)
    assert M.am_score(probs, probs) == pytest.approx(0.0, abs=1e-6)
    # Uniform predictions pay the full entropy log(4); one class only pays the marginal KL log(4).
    assert M.am_score(np.full((100, 4), 0.25), probs) == pytest.approx(np.log(4), rel=1e-6)
    assert M.am_score(_one_hot(np.zeros(100, int), 4), probs) > 5


def test_probabilities_are_checked():
    with pytest.raises(ValueError, match="probability"):
        M.inception_score(np.ones((5, 3)))
    with pytest.raises(ValueError, match="classes"):
        M.inception_score(np.ones(5))


def test_frechet_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 16))
    assert M.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    # A shift of the mean by v adds |v|^2; independent samples of one Gaussian are close to 0.
    shift = np.zeros(16)
    shift[0] = 3.0
    assert M.frechet_distance(a, a + shift) == pytest.approx(9.0, rel=1e-6)
    b = rng.normal(size=(5000, 16))
    c = rng.normal(size=(5000, 16))
    assert M.frechet_distance(b, c) < 0.1
    # Scaling the spread by 2 in d dimensions: (1 + 4 - 2*2) per dimension = d.
    assert M.frechet_distance(b, 2 * c) == pytest.approx(16, rel=0.05)
    with pytest.raises(ValueError, match="feature"):
        M.frechet_distance(a, a[:, :3])


def test_ndb_same_distribution_near_zero_disjoint_near_one():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(4000, 8))
    same = rng.normal(size=(2000, 8))
    far = rng.normal(size=(2000, 8)) + 20.0  # nowhere near the training data
    centroids = M.kmeans(train, 20, seed=0)
    r_same = M.ndb(train, same, centroids=centroids)
    r_far = M.ndb(train, far, centroids=centroids)
    assert r_same["k"] == 20 and r_same["ndb_k"] <= 0.2
    assert r_far["ndb_k"] >= 0.9
    assert sum(r_same["share"]) == pytest.approx(1.0)
    # A generator that covers half the bins is caught too.
    half = train[M.assign_bins(train, centroids) < 10]
    assert M.ndb(train, half, centroids=centroids)["ndb_k"] >= 0.9


def test_kmeans_is_seeded_and_finds_separated_clusters():
    rng = np.random.default_rng(2)
    centres = np.array([[0, 0], [10, 0], [0, 10]], float)
    x = np.concatenate([c + rng.normal(scale=0.3, size=(100, 2)) for c in centres])
    c1, c2 = M.kmeans(x, 3, seed=5), M.kmeans(x, 3, seed=5)
    np.testing.assert_array_equal(c1, c2)
    found = np.sort(np.round(c1).astype(int), axis=0)
    np.testing.assert_array_equal(found, np.sort(centres.astype(int), axis=0))
    with pytest.raises(ValueError, match="ndb_bins"):
        M.kmeans(x[:2], 3)


def test_nearest_neighbour_distances():
    x = np.array([[0.0, 0], [3, 4], [3, 5], [10, 10]])
    np.testing.assert_allclose(M.nearest_distances(x, x), 0)
    np.testing.assert_allclose(
        M.nearest_distances(x, x, exclude=np.arange(4)), [5, 1, 1, np.hypot(7, 5)], rtol=1e-9
    )
    assert M.nn_diversity(x) == pytest.approx((5 + 1 + 1 + np.hypot(7, 5)) / 4)
    # Copies of the training set are memorised: |D|train 0; a collapsed set has |D|self 0.
    assert M.nn_memorisation(x[:2], x) == 0
    assert M.nn_diversity(np.repeat(x[:1], 5, axis=0)) == 0
    # Chunking gives the same answer.
    rng = np.random.default_rng(3)
    q, r = rng.normal(size=(37, 5)), rng.normal(size=(50, 5))
    np.testing.assert_allclose(M.nearest_distances(q, r, chunk=4), M.nearest_distances(q, r), rtol=1e-9)


def test_equal_feature_rows_are_exactly_zero_apart():
    """Log-mel features are 2,048 values of tens of dB: the expansion |q|^2 - 2 q.r + |r|^2 that finds the
    nearest row cancels to a rounding error there, not to zero, so the distance is taken directly."""
    rows = np.random.default_rng(0).normal(-40.0, 20.0, size=(3, 2048)).astype(np.float32)
    collapsed = np.repeat(rows[:1], 12, axis=0)
    assert M.nn_diversity(collapsed) == 0.0
    assert np.all(M.nearest_distances(collapsed, rows) == 0.0)
    np.testing.assert_allclose(M.nearest_distances(rows[1:], rows[:1]),
                               np.linalg.norm(rows[1:].astype(np.float64) - rows[0], axis=1), rtol=1e-12)


def test_log_mel_shape_and_level():
    sr = 8000
    clips = np.stack([_sine(440, sr), 0.1 * _sine(440, sr), np.zeros(4000, np.float32)])
    mel = M.log_mel(clips, sr, n_mels=32, n_frames=20)
    assert mel.shape == (3, 32, 20) and mel.dtype == np.float32
    # A fixed reference: 20 dB quieter clip is 20 dB lower in its loudest bin; silence is the floor.
    assert mel[0].max() - mel[1].max() == pytest.approx(20, abs=0.5)
    assert mel[2].max() == -80


def test_over_splits_uses_disjoint_parts():
    seen = []
    mean, std = M.over_splits(lambda idx: seen.append(idx) or len(idx), 100, splits=10)
    assert (mean, std) == (10, 0)
    assert sorted(np.concatenate(seen).tolist()) == list(range(100))


def test_pitch_accuracy_and_distribution_distance():
    notes = np.array([60, 62, 64, 67])
    hz = 440 * 2 ** ((notes - 69) / 12)
    assert M.pitch_accuracy(hz, (48, 72)) == 1.0
    detuned = hz * 2 ** (0.4 / 12)  # 40 cents sharp
    assert M.pitch_accuracy(detuned, (48, 72)) == 0.0
    assert M.pitch_accuracy(np.r_[hz[:2], np.nan, 2000.0], (48, 72)) == 0.5  # unpitched, out of range
    assert M.pitch_distribution_distance(hz, hz) == pytest.approx(0, abs=1e-9)
    assert M.pitch_distribution_distance(hz * 2 ** (3 / 12), hz) == pytest.approx(3, rel=1e-6)
    assert np.isnan(M.pitch_distribution_distance(np.array([np.nan]), hz))


# ---------------------------------------------------------------------------- noise: spectral flatness
def test_white_noise_is_about_0_56_flat_whatever_its_level():
    """The power of a white-noise bin is exponentially distributed (under a Hann window too), and the
    geometric over the arithmetic mean of an exponential variable is exp(-Euler's gamma) = 0.5615."""
    noise = np.random.default_rng(0).standard_normal((8, 16384)).astype(np.float32)
    flat = M.spectral_flatness(0.3 * noise)
    assert flat.shape == (8,)
    np.testing.assert_allclose(flat, np.exp(-np.euler_gamma), atol=0.02)
    np.testing.assert_allclose(M.spectral_flatness(0.003 * noise), flat, rtol=1e-3)  # level does not count
    assert M.flatness(0.3 * noise) == pytest.approx(np.median(flat))


def test_a_pure_tone_is_near_zero_flat():
    assert M.spectral_flatness(_sine(440, 16000, seconds=1.0))[0] < 1e-3


def test_quiet_frames_are_left_out():
    rng = np.random.default_rng(1)
    noise = 0.3 * rng.standard_normal(8192).astype(np.float32)
    silent = np.concatenate([noise, np.zeros(8192, np.float32)])  # zeros alone would be perfectly flat: 1
    quiet_tone = np.concatenate([noise, 0.02 * _sine(440, 16000, seconds=1.0)[:8192]])  # a tone alone: 0
    flat = M.spectral_flatness(np.stack([silent, quiet_tone]))
    np.testing.assert_allclose(flat, np.exp(-np.euler_gamma), atol=0.03)
    # Above a tenth of the loudest frame's energy a frame counts: a loud tone over most of the clip wins.
    loud_tone = np.concatenate([noise[:4096], 0.5 * _sine(440, 16000, seconds=1.0)[:12288]])
    assert M.spectral_flatness(loud_tone)[0] < 0.01


def test_silent_clips_have_no_flatness_and_short_clips_are_padded():
    flat = M.spectral_flatness(np.zeros((2, 300), np.float32))
    assert np.all(np.isnan(flat)) and np.isnan(M.flatness(np.zeros((2, 300))))
    short = M.spectral_flatness(np.random.default_rng(2).standard_normal((1, 300)))
    assert np.isfinite(short[0])
    clips = np.stack([np.zeros(4096), np.random.default_rng(3).standard_normal(4096)])
    assert np.isfinite(M.flatness(clips))  # a silent clip does not make the set's figure NaN
