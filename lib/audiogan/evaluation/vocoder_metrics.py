"""Scores of vocoded audio against the recordings it came from, and the Griffin-Lim baseline.

Every score takes clips ``reference_bt`` and ``estimate_bt`` (batch, samples) as numpy arrays and
returns one float, the mean over clips. Lower is better for ``mrstft``, ``mel_l1`` and ``lsd``;
higher for ``si_sdr`` (dB) and ``stoi`` (0-1). A vocoder is worth training when it beats
:func:`griffin_lim` on the same mels.
"""

from __future__ import annotations

import warnings

import librosa
import numpy as np
import pystoi

from audiogan.audio.mel import MelSettings, mel_spectrogram, power_of_two_scale

# (n_fft, hop, win) of the multi-resolution STFT distance at 24 kHz.
STFT_RESOLUTIONS_24K = ((512, 128, 512), (1024, 256, 1024), (2048, 512, 2048))
_RESOLUTION_RATE = 24000
_POWER_FLOOR = 1e-7  # STFT power is clamped here before the sqrt, so silence has a finite log
_LSD_FLOOR = 1e-10  # power floor of the log-spectral distance
_SDR_EPS = 1e-12


def stft_resolutions(sample_rate: int) -> tuple[tuple[int, int, int], ...]:
    """The three (n_fft, hop, win) resolutions scaled by the power of two nearest sample_rate / 24 kHz."""
    _check_rate(sample_rate)
    scale = power_of_two_scale(sample_rate, _RESOLUTION_RATE)
    return tuple(tuple(max(1, int(v * scale)) for v in res) for res in STFT_RESOLUTIONS_24K)


def _check_rate(sample_rate) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")


def _pair(reference_bt, estimate_bt) -> tuple[np.ndarray, np.ndarray]:
    """Both clip batches as float64 (B, T), checked to be finite and of one shape."""
    ref_bt = np.asarray(reference_bt, dtype=np.float64)
    est_bt = np.asarray(estimate_bt, dtype=np.float64)
    if ref_bt.ndim != 2 or 0 in ref_bt.shape:
        raise ValueError(f"reference_bt must be a non-empty (batch, samples) array, got shape {ref_bt.shape}")
    if est_bt.shape != ref_bt.shape:
        raise ValueError(f"estimate_bt has shape {est_bt.shape} but reference_bt has {ref_bt.shape}")
    for name, wav_bt in (("reference_bt", ref_bt), ("estimate_bt", est_bt)):
        if not np.all(np.isfinite(wav_bt)):
            raise ValueError(f"{name} holds NaN or infinite samples")
    return ref_bt, est_bt


def _magnitude(wav_bt: np.ndarray, n_fft: int, hop: int, win: int, floor: float = _POWER_FLOOR) -> np.ndarray:
    """Centred Hann STFT magnitude (B, n_fft // 2 + 1, frames), its power floored at ``floor``."""
    spec = librosa.stft(
        wav_bt, n_fft=n_fft, hop_length=hop, win_length=win, window="hann", center=True, pad_mode="reflect"
    )
    return np.sqrt(np.maximum(spec.real**2 + spec.imag**2, floor))


def mrstft(reference_bt, estimate_bt, sample_rate: int, resolutions=None) -> float:
    """Multi-resolution STFT distance: spectral convergence + mean |log magnitude difference|.

    Averaged over the resolutions (``stft_resolutions(sample_rate)`` unless given as
    (n_fft, hop, win) triples) and over clips; 0 for identical clips.
    """
    ref_bt, est_bt = _pair(reference_bt, estimate_bt)
    resolutions = stft_resolutions(sample_rate) if resolutions is None else tuple(tuple(r) for r in resolutions)
    if not resolutions or any(len(r) != 3 or not 1 <= r[1] <= r[2] <= r[0] for r in resolutions):
        raise ValueError(f"resolutions must be (n_fft, hop, win) triples with hop <= win <= n_fft, got {resolutions}")
    longest = max(r[0] for r in resolutions)
    if ref_bt.shape[1] < longest:
        raise ValueError(f"reference_bt clips have {ref_bt.shape[1]} samples, fewer than the largest n_fft ({longest})")
    per_clip = np.zeros(ref_bt.shape[0])
    for n_fft, hop, win in resolutions:
        ref_bkf, est_bkf = _magnitude(ref_bt, n_fft, hop, win), _magnitude(est_bt, n_fft, hop, win)
        convergence = np.linalg.norm(ref_bkf - est_bkf, axis=(1, 2)) / np.linalg.norm(ref_bkf, axis=(1, 2))
        log_l1 = np.mean(np.abs(np.log(ref_bkf) - np.log(est_bkf)), axis=(1, 2))
        per_clip += (convergence + log_l1) / len(resolutions)
    return float(per_clip.mean())


def mel_l1(reference_bt, estimate_bt, sample_rate: int, settings: MelSettings | None = None) -> float:
    """Mean |log-mel difference| on the vocoder's front end (``MelSettings.hifigan(sample_rate)`` by default)."""
    ref_bt, est_bt = _pair(reference_bt, estimate_bt)
    _check_rate(sample_rate)
    settings = MelSettings.hifigan(sample_rate) if settings is None else settings
    if settings.sample_rate != sample_rate:
        raise ValueError(f"settings are for {settings.sample_rate} Hz but sample_rate is {sample_rate}")
    ref_bft = np.asarray(mel_spectrogram(ref_bt.astype(np.float32), settings), dtype=np.float64)
    est_bft = np.asarray(mel_spectrogram(est_bt.astype(np.float32), settings), dtype=np.float64)
    return float(np.mean(np.abs(ref_bft - est_bft)))


def lsd(reference_bt, estimate_bt, sample_rate: int, n_fft: int | None = None, hop: int | None = None) -> float:
    """Log-spectral distance in dB: per frame the RMS over bins of the dB power difference, averaged.

    The STFT defaults to the largest ``mrstft`` resolution at ``sample_rate`` (2048 / 512 at 24 kHz).
    """
    ref_bt, est_bt = _pair(reference_bt, estimate_bt)
    default_fft, default_hop, _ = stft_resolutions(sample_rate)[-1]
    n_fft, hop = n_fft or default_fft, hop or default_hop
    if ref_bt.shape[1] < n_fft:
        raise ValueError(f"reference_bt clips have {ref_bt.shape[1]} samples, fewer than n_fft ({n_fft})")
    ref_db, est_db = (
        10 * np.log10(_magnitude(w, n_fft, hop, n_fft, floor=0.0) ** 2 + _LSD_FLOOR) for w in (ref_bt, est_bt)
    )
    per_frame_bf = np.sqrt(np.mean((ref_db - est_db) ** 2, axis=1))
    return float(per_frame_bf.mean())


def si_sdr(reference_bt, estimate_bt) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (zero-mean clips), averaged over clips.

    Invariant to the gain of either clip; very high (above 100 dB) for identical clips.
    """
    ref_bt, est_bt = _pair(reference_bt, estimate_bt)
    ref_bt = ref_bt - ref_bt.mean(axis=1, keepdims=True)
    est_bt = est_bt - est_bt.mean(axis=1, keepdims=True)
    gain_b1 = np.sum(est_bt * ref_bt, axis=1, keepdims=True) / (np.sum(ref_bt**2, axis=1, keepdims=True) + _SDR_EPS)
    target_bt = gain_b1 * ref_bt
    distortion_bt = est_bt - target_bt
    ratio_b = (np.sum(target_bt**2, axis=1) + _SDR_EPS) / (np.sum(distortion_bt**2, axis=1) + _SDR_EPS)
    return float(np.mean(10 * np.log10(ratio_b)))


def stoi(reference_bt, estimate_bt, sample_rate: int, extended: bool = False) -> float:
    """Short-time objective intelligibility (pystoi; ``extended``: ESTOI), averaged over clips.

    STOI needs about 0.4 s of non-silent sound per clip; shorter clips raise ValueError instead of
    pystoi's silent placeholder score.
    """
    ref_bt, est_bt = _pair(reference_bt, estimate_bt)
    _check_rate(sample_rate)
    scores = []
    for i, (ref_t, est_t) in enumerate(zip(ref_bt, est_bt, strict=True)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            scores.append(float(pystoi.stoi(ref_t, est_t, sample_rate, extended=extended)))
        if any("Not enough STFT frames" in str(w.message) for w in caught):
            raise ValueError(f"reference_bt[{i}] has too little non-silent sound for STOI (about 0.4 s needed)")
    return float(np.mean(scores))


def score(reference_bt, estimate_bt, sample_rate: int) -> dict[str, float]:
    """Every score above with its defaults: mrstft, mel_l1, lsd, si_sdr (dB) and stoi."""
    return {
        "mrstft": mrstft(reference_bt, estimate_bt, sample_rate),
        "mel_l1": mel_l1(reference_bt, estimate_bt, sample_rate),
        "lsd": lsd(reference_bt, estimate_bt, sample_rate),
        "si_sdr": si_sdr(reference_bt, estimate_bt),
        "stoi": stoi(reference_bt, estimate_bt, sample_rate),
    }


def griffin_lim(mel_bft, settings: MelSettings, n_iter: int = 32, seed: int = 0) -> np.ndarray:
    """Audio (B, frames * hop) from log-mels (B, n_mels, frames): the baseline a vocoder must beat.

    The mel is undone by non-negative least squares (librosa ``mel_to_stft``), the phase found by
    ``n_iter`` Griffin-Lim iterations on the same uncentred framing as :func:`mel_spectrogram`, and
    the reflect padding cut off again.
    """
    mel_bft = np.asarray(mel_bft, dtype=np.float32)
    if mel_bft.ndim != 3 or mel_bft.shape[1] != settings.n_mels or mel_bft.shape[2] == 0:
        raise ValueError(f"mel_bft must be (batch, n_mels={settings.n_mels}, frames), got shape {mel_bft.shape}")
    if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive integer, got {n_iter!r}")
    magnitude_bkf = librosa.feature.inverse.mel_to_stft(
        np.exp(mel_bft), sr=settings.sample_rate, n_fft=settings.n_fft, power=1.0,
        fmin=settings.fmin, fmax=settings.f_max, htk=False, norm="slaney",
    )
    padded_bt = librosa.griffinlim(
        magnitude_bkf, n_iter=n_iter, hop_length=settings.hop, win_length=settings.win, n_fft=settings.n_fft,
        window="hann", center=False, random_state=seed,
    )
    left = (settings.n_fft - settings.hop) // 2
    return padded_bt[:, left : left + mel_bft.shape[2] * settings.hop].astype(np.float32)
