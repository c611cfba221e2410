"""A trained vocoder against the recordings and against Griffin-Lim, on held-out clips.

Each held-out clip, cut to whole hops, is turned into its log-mel; the vocoder and Griffin-Lim
(32 iterations) each turn that mel back into sound, and every version is scored against the
recording (:func:`audiogan.evaluation.vocoder_metrics.score`; the recording against itself gives the
ceiling). ``RUN_DIR/vocoder_eval.json`` holds ``{"ground_truth": {...}, "vocoder": {...},
"griffin_lim": {...}}``, each with mrstft, mel_l1, lsd, si_sdr and stoi averaged over the clips (stoi
over those with enough sound for it, ``stoi_clips``: a short spoken digit can have less than 0.4 s).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from audiogan import plots
from audiogan.audio.mel import mel_spectrogram
from audiogan.evaluation.vocoder_metrics import griffin_lim, lsd, mel_l1, mrstft, si_sdr, stoi
from audiogan.files import atomic_write_text
from audiogan.training.vocoder_loop import synthesise
from audiogan.training.vocoder_step import Vocoder, VocoderState

CONDITIONS = ("ground_truth", "vocoder", "griffin_lim")
TITLES = {"ground_truth": "ground truth", "vocoder": "vocoder", "griffin_lim": "Griffin-Lim"}
EVAL_JSON = "vocoder_eval.json"


def resynthesise(
    vocoder: Vocoder, state: VocoderState, clips_bt: np.ndarray, n_iter: int = 32,
) -> dict[str, np.ndarray]:
    """``{"ground_truth", "vocoder", "griffin_lim"}`` -> (B, T // hop * hop) clips made from the clips' mels."""
    settings = vocoder.config.mel_settings()
    clips_bt = np.asarray(clips_bt, np.float32)
    truth_bt = clips_bt[:, : clips_bt.shape[1] // settings.hop * settings.hop]
    mel_bft = np.asarray(mel_spectrogram(truth_bt, settings))
    return {"ground_truth": truth_bt, "vocoder": synthesise(vocoder, state, mel_bft),
            "griffin_lim": griffin_lim(mel_bft, settings, n_iter=n_iter)}


def stoi_clips(reference_bt: np.ndarray, sample_rate: int) -> np.ndarray:
    """Indices of the clips STOI can score (about 0.4 s of sound after its silence removal)."""
    keep = []
    for i, clip_t in enumerate(reference_bt):
        try:
            stoi(clip_t[None], clip_t[None], sample_rate)
        except ValueError:
            continue
        keep.append(i)
    return np.asarray(keep, np.int64)


def score_clips(reference_bt: np.ndarray, estimate_bt: np.ndarray, sample_rate: int,
                stoi_index: np.ndarray | None = None) -> dict[str, float]:
    """mrstft, mel_l1, lsd, si_sdr over every clip; stoi over ``stoi_index`` (the clips long enough for it;
    NaN when none is)."""
    scores = {"mrstft": mrstft(reference_bt, estimate_bt, sample_rate),
              "mel_l1": mel_l1(reference_bt, estimate_bt, sample_rate),
              "lsd": lsd(reference_bt, estimate_bt, sample_rate), "si_sdr": si_sdr(reference_bt, estimate_bt)}
    index = np.arange(len(reference_bt)) if stoi_index is None else stoi_index
    scores["stoi"] = stoi(reference_bt[index], estimate_bt[index], sample_rate) if len(index) else float("nan")
    return scores


def evaluate(
    vocoder: Vocoder, state: VocoderState, clips_bt: np.ndarray, n_iter: int = 32,
    run_dir: str | os.PathLike | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]]]:
    """(the three versions of the clips, their scores against the recordings); the scores are written
    to ``run_dir/vocoder_eval.json`` when ``run_dir`` is given."""
    audio = resynthesise(vocoder, state, clips_bt, n_iter)
    rate = vocoder.config.sample_rate
    index = stoi_clips(audio["ground_truth"], rate)
    scores = {name: score_clips(audio["ground_truth"], audio[name], rate, index) for name in CONDITIONS}
    if run_dir is not None:
        record = scores | {"clips": int(len(clips_bt)), "stoi_clips": int(len(index)),
                           "samples": int(audio["ground_truth"].shape[1]),
                           "griffin_lim_iters": n_iter, "step": int(state.step)}
        atomic_write_text(Path(run_dir) / EVAL_JSON, json.dumps(record, indent=2) + "\n")
    return audio, scores


def table(scores: Mapping[str, Mapping[str, float]]) -> str:
    """The scores as a text table, one row per condition (lower is better for mrstft, mel_l1, lsd)."""
    names = list(next(iter(scores.values())))
    lines = [f"{'':14s}" + "".join(f"{n:>10s}" for n in names)]
    lines += [f"{TITLES.get(c, c):14s}" + "".join(f"{scores[c][n]:10.3f}" for n in names) for c in scores]
    return "\n".join(lines)


def interleave(audio: Mapping[str, np.ndarray], n: int) -> tuple[np.ndarray, list[str]]:
    """The first ``n`` clips of each condition, clip by clip (ground truth, vocoder, Griffin-Lim), and titles;
    clipped to [-1, 1] as a WAV file or a player would (Griffin-Lim's sum of frames can overshoot)."""
    n = min(n, len(audio["ground_truth"]))
    clips = [audio[c][i] for i in range(n) for c in CONDITIONS]
    return np.clip(np.stack(clips), -1.0, 1.0), [f"clip {i}: {TITLES[c]}" for i in range(n) for c in CONDITIONS]


def comparison_figure(audio: Mapping[str, np.ndarray], sample_rate: int, n: int = 3) -> Figure:
    """Spectrograms of ground truth, vocoder and Griffin-Lim side by side, one row per clip."""
    clips, titles = interleave(audio, n)
    return plots.spectrogram_grid(clips, sample_rate, titles, cols=len(CONDITIONS))


def training_curves(history: Mapping[str, Sequence[float]], smoothing: float = 0.6) -> Figure:
    """D and adversarial G losses, and the mel L1 and feature-matching terms, against steps."""
    fig = Figure(figsize=(11, 3.4), layout="constrained")
    ax_adv, ax_rec = fig.subplots(1, 2)
    steps = history["step"]
    for name, ax in (("d_loss", ax_adv), ("g_adv", ax_adv), ("mel_l1", ax_rec), ("fm", ax_rec)):
        if history.get(name):
            ax.plot(steps, plots.smooth(history[name], smoothing), label=name)
    ax_adv.set_title("adversarial losses")
    ax_rec.set_title("mel L1 and feature matching")
    for ax in (ax_adv, ax_rec):
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig
