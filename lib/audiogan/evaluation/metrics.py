"""Objective measurements of audio: pitch (tones), classifier scores (IS, modified IS, AM, Fréchet
distance), NDB/K, nearest-neighbour distances and spectral flatness (noise). Pure functions over arrays;
``audiogan.evaluation.evaluate`` feeds them clips, a classifier and real-data references."""

from __future__ import annotations

import librosa
import numpy as np


def median_pitch(
    clips: np.ndarray, sample_rate: int, fmin: float = 60.0, fmax: float = 1200.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Median fundamental frequency (Hz) of each clip's voiced frames by librosa's pYIN, and the
    fraction of frames that are voiced. Clips with no voiced frame get NaN."""
    clips = np.atleast_2d(np.asarray(clips, dtype=np.float32))
    frame = int(2 ** np.ceil(np.log2(4 * sample_rate / fmin)))  # four periods of the lowest pitch
    frame = min(frame, 2 ** int(np.log2(clips.shape[1])))
    f0, voiced, _ = librosa.pyin(
        clips, fmin=fmin, fmax=fmax, sr=sample_rate, frame_length=frame, center=True
    )
    f0 = np.where(voiced, f0, np.nan)
    with np.errstate(all="ignore"):
        counts = voiced.sum(-1)
        med = np.array([np.nanmedian(row) if c else np.nan for row, c in zip(f0, counts, strict=True)])
    return med, voiced.mean(-1)


def pitch_report(
    clips: np.ndarray, sample_rate: int, pitch_range_hz: tuple[float, float],
) -> dict[str, float | list[float]]:
    """How the pitches of ``clips`` sit against a dataset's pitch range (a semitone of slack)."""
    lo, hi = pitch_range_hz
    med, voiced = median_pitch(clips, sample_rate, fmin=lo / 2, fmax=min(hi * 2, sample_rate / 2 - 1))
    tol = 2 ** (1 / 12)
    pitched = np.isfinite(med)
    inside = pitched & (med >= lo / tol) & (med <= hi * tol)
    return {
        "n_clips": int(len(med)),
        "pitch_range_hz": [float(lo), float(hi)],
        "median_pitch_hz": [None if not np.isfinite(m) else round(float(m), 2) for m in med],
        "voiced_fraction": [round(float(v), 3) for v in voiced],
        "fraction_pitched": float(pitched.mean()),
        "fraction_in_range": float(inside.mean()),
    }


# ---------------------------------------------------------------------------- tones: pitch against the notes
def hz_to_midi(hz) -> np.ndarray:
    """Fractional MIDI note number of a frequency (A4 = 440 Hz = 69); NaN stays NaN."""
    with np.errstate(all="ignore"):
        return 69 + 12 * np.log2(np.asarray(hz, dtype=np.float64) / 440.0)


def pitch_accuracy(
    pitch_hz: np.ndarray, midi_range: tuple[int, int], cents: float = 25.0,
) -> float:
    """Fraction of clips whose measured pitch is a note of ``midi_range`` (inclusive) within
    ``cents`` of equal temperament. Unpitched clips (NaN) count as wrong. Real tones score 1."""
    midi = hz_to_midi(pitch_hz)
    nearest = np.round(midi)
    ok = np.isfinite(midi) & (np.abs(midi - nearest) * 100 <= cents)
    ok &= (nearest >= midi_range[0]) & (nearest <= midi_range[1])
    return float(ok.mean()) if len(ok) else float("nan")


def pitch_distribution_distance(pitch_hz: np.ndarray, reference_hz: np.ndarray) -> float:
    """Earth mover's (1-D Wasserstein) distance in semitones between the pitches of two sets of
    clips, over their pitched clips; NaN when either set has none. 0 for identical distributions,
    k for a set shifted by k semitones."""
    a, b = hz_to_midi(pitch_hz), hz_to_midi(reference_hz)
    a, b = np.sort(a[np.isfinite(a)]), np.sort(b[np.isfinite(b)])
    if not len(a) or not len(b):
        return float("nan")
    # The distance between two empirical distributions is the area between their quantile functions.
    q = np.linspace(0, 1, 2 * max(len(a), len(b)) + 1)[1:-1]
    return float(np.mean(np.abs(np.quantile(a, q) - np.quantile(b, q))))


# ---------------------------------------------------------------------------- scores from a classifier
# Each function below takes plain arrays: ``probs_nc`` are a classifier's predicted class
# probabilities (rows sum to 1), ``feats_nd`` its penultimate-layer features.

_EPS = 1e-12


def _check_probs(probs_nc: np.ndarray, name: str = "probs") -> np.ndarray:
    probs_nc = np.asarray(probs_nc, dtype=np.float64)
    if probs_nc.ndim != 2 or len(probs_nc) == 0:
        raise ValueError(f"{name} must be a non-empty (clips, classes) array, got shape {probs_nc.shape}")
    if not np.allclose(probs_nc.sum(1), 1.0, atol=1e-3) or probs_nc.min() < -1e-6:
        raise ValueError(f"{name}: each row must be a probability distribution (non-negative, sum 1)")
    return np.clip(probs_nc, 0.0, 1.0)


def _entropy(p: np.ndarray) -> np.ndarray:
    return -np.sum(p * np.log(p + _EPS), axis=-1)


def inception_score(probs_nc: np.ndarray) -> float:
    """exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016): 1 when every prediction is the same,
    the class count when predictions are confident and the classes balanced."""
    p = _check_probs(probs_nc)
    marginal = p.mean(0)
    kl = np.sum(p * (np.log(p + _EPS) - np.log(marginal + _EPS)), axis=1)
    return float(np.exp(kl.mean()))


def modified_inception_score(probs_nc: np.ndarray) -> float:
    """exp(E_{x,x'} KL(p(y|x) || p(y|x'))) over pairs of clips (Gurumurthy et al. 2017): like the
    Inception Score, but it also falls when clips of one class all look alike (intra-class
    diversity). With a confident classifier the KL between clips of different classes is tens of
    nats, so real data scores in the millions (1.5e7 for real digits): compare runs on a log scale."""
    p = _check_probs(probs_nc)
    logp = np.log(p + _EPS)
    # KL(p_i || p_j) = sum_c p_ic log p_ic - sum_c p_ic log p_jc, for every pair at once.
    kl_nn = (p * logp).sum(1)[:, None] - p @ logp.T
    return float(np.exp(kl_nn.mean()))


def am_score(probs_nc: np.ndarray, reference_probs_nc: np.ndarray) -> float:
    """AM score (Zhou et al. 2018): KL(p_ref(y) || p(y)) + E_x H(p(y|x)), where p_ref(y) is the
    classifier's mean prediction on real training clips. Lower is better; 0 is perfect."""
    p = _check_probs(probs_nc)
    ref = _check_probs(reference_probs_nc, "reference_probs").mean(0)
    marginal = p.mean(0)
    kl = np.sum(ref * (np.log(ref + _EPS) - np.log(marginal + _EPS)))
    return float(kl + _entropy(p).mean())


def _sqrt_psd(cov: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(cov)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (FID's formula):
    |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2). 0 for identical sets."""
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"frechet_distance needs two (n >= 2, d) feature arrays, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # Tr (S_a S_b)^1/2 = Tr (S_a^1/2 S_b S_a^1/2)^1/2, whose matrix is symmetric: stable eigenvalues.
    root_a = _sqrt_psd(cov_a)
    eig = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    tr_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()
    fd = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt
    return float(max(fd, 0.0))


# ---------------------------------------------------------------------------- NDB/K
def kmeans(feats_nd: np.ndarray, k: int, seed: int = 0, iters: int = 50) -> np.ndarray:
    """Centroids (k, d) of ``feats_nd`` by Lloyd's algorithm from a k-means++ start (seeded)."""
    from scipy.cluster.vq import kmeans2

    x = np.asarray(feats_nd, np.float64)
    if len(x) < k:
        raise ValueError(f"k-means needs at least k={k} points, got {len(x)}; lower ndb_bins")
    centroids, _ = kmeans2(x, k, iter=iters, minit="++", seed=np.random.default_rng(seed))
    return centroids


def assign_bins(feats_nd: np.ndarray, centroids_kd: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid of each row."""
    x = np.asarray(feats_nd, np.float64)
    d2 = (x**2).sum(1)[:, None] - 2 * x @ centroids_kd.T + (centroids_kd**2).sum(1)[None]
    return np.argmin(d2, axis=1)


def ndb(
    train_feats: np.ndarray, feats: np.ndarray, k: int = 50, alpha: float = 0.05, seed: int = 0,
    centroids: np.ndarray | None = None,
) -> dict[str, float | int | list]:
    """Number of statistically Different Bins (Richardson & Weiss 2018). The training features are
    split into ``k`` bins by k-means; a bin is different when a two-proportion z-test rejects, at
    level ``alpha``, that it holds the same share of ``feats`` as of the training set. Returns
    ``ndb`` (the count), ``ndb_k`` (count / k: ~alpha for the same distribution, 1 for disjoint
    ones) and the shares per bin."""
    from scipy.stats import norm

    train_feats = np.asarray(train_feats, np.float64)
    if centroids is None:
        centroids = kmeans(train_feats, k, seed)
    k = len(centroids)
    n_t, n_g = len(train_feats), len(feats)
    p_t = np.bincount(assign_bins(train_feats, centroids), minlength=k) / n_t
    p_g = np.bincount(assign_bins(feats, centroids), minlength=k) / n_g
    pooled = (p_t * n_t + p_g * n_g) / (n_t + n_g)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_g))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (p_g - p_t) / se, 0.0)
    different = np.abs(z) > norm.ppf(1 - alpha / 2)
    return {
        "ndb": int(different.sum()), "ndb_k": float(different.mean()), "k": int(k),
        "train_share": p_t.round(5).tolist(), "share": p_g.round(5).tolist(),
    }


# ---------------------------------------------------------------------------- nearest neighbours
def log_mel(
    clips: np.ndarray, sample_rate: int, n_mels: int = 64, n_frames: int = 64,
) -> np.ndarray:
    """Log-mel spectrograms (clips, n_mels, n_frames) in dB against a fixed reference (so loudness
    counts), floor -80 dB. The window is a power of two near 32 ms (at most the clip) and the hop
    spreads ``n_frames`` frames over the clip, whatever its length and sample rate."""
    clips = np.atleast_2d(np.asarray(clips, dtype=np.float32))
    n = clips.shape[1]
    hop = max(1, n // n_frames)
    n_fft = int(2 ** np.round(np.log2(max(64, min(n, sample_rate * 0.032)))))
    mel = librosa.feature.melspectrogram(
        y=clips, sr=sample_rate, n_fft=n_fft, hop_length=hop, n_mels=n_mels, fmin=20.0,
        fmax=sample_rate / 2, center=True, power=2.0,
    )[..., :n_frames]
    if mel.shape[-1] < n_frames:
        mel = np.pad(mel, [(0, 0), (0, 0), (0, n_frames - mel.shape[-1])])
    return np.maximum(10 * np.log10(mel + 1e-10), -80.0).astype(np.float32)


def nearest_distances(
    queries_nd: np.ndarray, reference_md: np.ndarray, exclude: np.ndarray | None = None,
    chunk: int = 512,
) -> np.ndarray:
    """Euclidean distance from each query to its nearest reference row. ``exclude[i]`` is a
    reference index that query ``i`` may not match (itself, when both sets are the same).

    The nearest row is found by the expansion |q|^2 - 2 q.r + |r|^2 (one matrix product per chunk); its
    distance is then computed directly, as |q - r|, because the expansion cancels: for two equal rows
    of 2,048 log-mel values it left about 1e-9 of squared distance, so 3e-5 instead of 0, depending on
    how the machine's BLAS rounds."""
    q = np.asarray(queries_nd, np.float64).reshape(len(queries_nd), -1)
    r = np.asarray(reference_md, np.float64).reshape(len(reference_md), -1)
    r2 = (r**2).sum(1)
    out = np.empty(len(q))
    for s in range(0, len(q), chunk):
        qs = q[s:s + chunk]
        d2 = (qs**2).sum(1)[:, None] - 2 * qs @ r.T + r2[None]
        if exclude is not None:
            idx = np.asarray(exclude[s:s + chunk])
            d2[np.arange(len(qs)), idx] = np.inf
        nearest = d2.argmin(1)
        out[s:s + chunk] = np.sqrt(((qs - r[nearest]) ** 2).sum(1))
    return out


def nn_diversity(feats_nd: np.ndarray) -> float:
    """|D|self (WaveGAN paper): mean distance from each clip to its nearest other clip of the same
    set. Low means the clips are near-copies of each other (mode collapse)."""
    if len(feats_nd) < 2:
        return float("nan")
    return float(nearest_distances(feats_nd, feats_nd, exclude=np.arange(len(feats_nd))).mean())


def nn_memorisation(feats_nd: np.ndarray, train_feats_md: np.ndarray, exclude=None) -> float:
    """|D|train (WaveGAN paper): mean distance from each clip to its nearest training clip. Much
    lower than real test clips get means the generator copies its training data."""
    return float(nearest_distances(feats_nd, train_feats_md, exclude).mean())


# ---------------------------------------------------------------------------- noise
FLATNESS_FFT = 512
FLATNESS_HOP = 128  # n_fft / 4, librosa's default
FLATNESS_LOUD = 0.1  # frames above this share of the clip's loudest frame's energy are measured
_POWER_FLOOR = 1e-10  # librosa.feature.spectral_flatness's amin, on the power spectrum


def spectral_flatness(
    clips: np.ndarray, n_fft: int = FLATNESS_FFT, hop: int = FLATNESS_HOP, loud: float = FLATNESS_LOUD,
    chunk: int = 256,
) -> np.ndarray:
    """Per clip: the median spectral flatness of its loud frames, float64 (N,); NaN for a silent clip.

    Frames of ``n_fft`` samples every ``hop`` (periodic Hann, uncentred; a clip shorter than one frame
    is zero-padded to one). A frame is loud when its energy (the sum of its power spectrum) is above
    ``loud`` times that of the clip's own loudest frame, so a clip's pauses and fades are left out
    and a quiet clip is judged like a loud one. Flatness is the geometric over the arithmetic mean of
    the power spectrum (floored at 1e-10, as librosa's): about exp(-Euler's gamma) = 0.56 for white
    noise, near 0 for a pure tone.
    """
    clips = np.atleast_2d(np.asarray(clips, dtype=np.float32))
    if clips.shape[1] < n_fft:
        clips = np.pad(clips, ((0, 0), (0, n_fft - clips.shape[1])))
    window = librosa.filters.get_window("hann", n_fft, fftbins=True).astype(np.float32)
    out = np.full(len(clips), np.nan)
    for s in range(0, len(clips), chunk):
        frames_bfn = librosa.util.frame(clips[s:s + chunk], frame_length=n_fft, hop_length=hop, axis=-1)
        frames_bfn = np.moveaxis(frames_bfn, -1, 1) * window  # (clips, frames, n_fft)
        power_bfk = np.abs(np.fft.rfft(frames_bfn, axis=-1)).astype(np.float64) ** 2
        energy_bf = power_bfk.sum(-1)
        floored = np.maximum(power_bfk, _POWER_FLOOR)
        flat_bf = np.exp(np.log(floored).mean(-1)) / floored.mean(-1)
        is_loud = energy_bf > loud * energy_bf.max(1, keepdims=True)
        for i, (flat_f, keep) in enumerate(zip(flat_bf, is_loud, strict=True)):
            if keep.any():
                out[s + i] = float(np.median(flat_f[keep]))
    return out


def flatness(clips: np.ndarray) -> float:
    """A set's noise figure: the median over its clips of :func:`spectral_flatness` (silent clips
    left out); NaN when every clip is silent."""
    per_clip = spectral_flatness(clips)
    return float(np.nanmedian(per_clip)) if np.isfinite(per_clip).any() else float("nan")


# ---------------------------------------------------------------------------- spread over splits
def over_splits(fn, n: int, splits: int = 10, seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of ``fn(indices)`` over ``splits`` disjoint, shuffled parts of
    ``range(n)`` (as the Inception Score is usually reported)."""
    splits = max(1, min(splits, n))
    order = np.random.default_rng(seed).permutation(n)
    values = np.array([fn(part) for part in np.array_split(order, splits)], dtype=np.float64)
    return float(values.mean()), float(values.std())
