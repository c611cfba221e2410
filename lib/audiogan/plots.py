"""Pictures: waveforms, spectrograms, level histograms and loss curves.

Figures are made with ``matplotlib.figure.Figure`` (no pyplot state, no backend needed), shown in
a notebook with :func:`show` and written with :func:`save`, so the same code runs in JupyterLab,
under papermill and in a plain script.

Titles and labels made from file and run names are shown literally (:func:`plot_text`): a ``$``
does not start matplotlib's mathtext, and bytes of a file name that are not UTF-8 appear as
backslash escapes instead of stopping the figure.
"""

from __future__ import annotations

import io
import os
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from audiogan.audio import log_spectrogram


def readable(text) -> str:
    """A file or run name as text that can be shown and stored anywhere: bytes that are not UTF-8
    (on Linux, Python keeps them in a ``str`` as lone surrogates) become backslash escapes
    (``\\xff``), and so do control characters other than a newline."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", "backslashreplace")
    text = str(text)
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no undecodable byte made
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if any(unicodedata.category(ch) == "Cc" and ch != "\n" for ch in text):
        text = "".join(ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) == "Cc" and ch != "\n"
                       else ch for ch in text)
    return text


def plot_text(text) -> str:
    """:func:`readable`, with every ``$`` escaped so matplotlib shows it instead of reading mathtext."""
    return readable(text).replace("$", r"\$")


def to_png(fig: Figure, dpi: int = 90) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def save(fig: Figure, path: str | os.PathLike, dpi: int = 90) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_png(fig, dpi))
    return path


def show(fig: Figure, dpi: int = 90):
    """Display a figure in the notebook as a PNG (works headless and in JupyterLab)."""
    from IPython.display import Image, display

    display(Image(to_png(fig, dpi)))


def _grid(n: int, cols: int, size=(3.2, 2.2)) -> tuple[Figure, np.ndarray]:
    cols = max(1, min(cols, n))
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(size[0] * cols, size[1] * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig, axes[:n]


def spectrogram_grid(
    clips: np.ndarray, sample_rate: int, titles: Sequence[str] | None = None, cols: int = 4,
) -> Figure:
    """Log-magnitude spectrograms of clips, 0 to Nyquist, one panel each."""
    clips = np.atleast_2d(np.asarray(clips))
    fig, axes = _grid(len(clips), cols)
    duration = clips.shape[1] / sample_rate
    for i, (ax, clip) in enumerate(zip(axes, clips, strict=True)):
        spec = log_spectrogram(clip, sample_rate)
        ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=0,
                  extent=(0, duration, 0, sample_rate / 2000))
        ax.set_title(plot_text(titles[i]) if titles else f"clip {i}", fontsize=9)
        ax.set_xlabel("time (s)", fontsize=8)
        ax.set_ylabel("kHz", fontsize=8)
        ax.tick_params(labelsize=7)
    return fig


def waveform_grid(
    clips: np.ndarray, sample_rate: int, titles: Sequence[str] | None = None, cols: int = 4,
) -> Figure:
    clips = np.atleast_2d(np.asarray(clips))
    fig, axes = _grid(len(clips), cols, size=(3.2, 1.6))
    t = np.arange(clips.shape[1]) / sample_rate
    for i, (ax, clip) in enumerate(zip(axes, clips, strict=True)):
        ax.plot(t, clip, lw=0.4)
        ax.set_ylim(-1.05, 1.05)
        ax.set_title(plot_text(titles[i]) if titles else f"clip {i}", fontsize=9)
        ax.tick_params(labelsize=7)
    return fig


def level_histogram(levels_db: np.ndarray, title: str = "clip level") -> Figure:
    fig = Figure(figsize=(5, 2.8), layout="constrained")
    ax = fig.subplots()
    ax.hist(levels_db, bins=40, color="tab:blue")
    ax.set_xlabel("RMS level (dBFS)")
    ax.set_ylabel("clips")
    ax.set_title(plot_text(title))
    return fig


def pitch_histogram(
    generated_hz: np.ndarray, pitch_range_hz: Sequence[float], real_hz: np.ndarray | None = None,
) -> Figure:
    """Pitches of generated clips (and of real ones) on a log-frequency axis, with the dataset's
    pitch range shaded."""
    fig = Figure(figsize=(6, 3), layout="constrained")
    ax = fig.subplots()
    lo, hi = pitch_range_hz
    bins = np.geomspace(lo / 2, hi * 2, 49)
    ax.axvspan(lo, hi, color="0.9", label="dataset pitch range")
    if real_hz is not None:
        ax.hist(real_hz, bins=bins, alpha=0.5, color="tab:gray", label="real clips")
    found = np.asarray(generated_hz, dtype=float)
    ax.hist(found[np.isfinite(found)], bins=bins, alpha=0.8, color="tab:orange", label="generated")
    ax.set_xscale("log")
    ax.set_xlabel("median pitch (Hz, pYIN)")
    ax.set_ylabel("clips")
    ax.legend(fontsize=8)
    return fig


def smooth(values: Sequence[float], weight: float) -> np.ndarray:
    """Exponential moving average with bias correction (``weight`` 0 = raw, 0.9 = smooth)."""
    out, avg = [], 0.0
    for i, v in enumerate(values):
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight ** (i + 1)) if weight > 0 else v)
    return np.asarray(out)


def loss_curves(
    runs: Mapping[str, Mapping[str, Sequence[float]]], x: str = "step", smoothing: float = 0.6,
) -> Figure:
    """Losses and D(real)/D(fake) of one or several runs against ``x`` ("step" or "time_s"), plus
    the Wasserstein estimate and the penalty terms for runs that log them (WGAN-GP, R1)."""
    extras = [k for k in ("wasserstein", "gp", "r1") if any(cols.get(k) for cols in runs.values())]
    fig = Figure(figsize=(16 if extras else 11, 3.4), layout="constrained")
    axes = fig.subplots(1, 3 if extras else 2)
    ax_loss, ax_d = axes[0], axes[1]
    styles = {"wasserstein": "-", "gp": "--", "r1": ":"}
    for i, (name, cols) in enumerate(runs.items()):
        if not cols.get("step"):
            continue
        c = f"C{i % 10}"
        xs = cols[x]
        name = plot_text(name)
        ax_loss.plot(xs, smooth(cols["d_loss"], smoothing), color=c, label=f"{name}: D loss")
        ax_loss.plot(xs, smooth(cols["g_loss"], smoothing), color=c, ls="--", label=f"{name}: G loss")
        ax_d.plot(xs, smooth(cols["d_real"], smoothing), color=c, label=f"{name}: D(real)")
        ax_d.plot(xs, smooth(cols["d_fake"], smoothing), color=c, ls=":", label=f"{name}: D(fake)")
        for k in extras:
            if cols.get(k):
                axes[2].plot(xs, smooth(cols[k], smoothing), color=c, ls=styles[k], label=f"{name}: {k}")
    xlabel = {"step": "training step", "time_s": "wall time (s)"}.get(x, x)
    titles = ["losses", "discriminator output", "Wasserstein estimate and penalties"]
    for ax, title in zip(axes, titles, strict=False):
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


class LivePlot:
    """Loss curves that redraw in place as training logs (a training callback)."""

    def __init__(self, smoothing: float = 0.0):
        from IPython.display import display

        self.smoothing = smoothing
        self.cols: dict[str, list[float]] = {}
        self.handle = display(display_id=True)

    def __call__(self, row: Mapping[str, float]) -> None:
        from IPython.display import Image

        for k, v in row.items():
            self.cols.setdefault(k, []).append(float(v))
        fig = loss_curves({"this run": self.cols}, smoothing=self.smoothing)
        if self.handle is not None:
            self.handle.update(Image(to_png(fig, dpi=70)))


MUSHRA_GRADES = ((0, "bad"), (20, "poor"), (40, "fair"), (60, "good"), (80, "excellent"))  # ITU-R BS.1534's scale


def mushra_bars(
    conditions: Sequence[str], means: Sequence[float], lows: Sequence[float], highs: Sequence[float], ax=None,
    title: str = "MUSHRA ratings",
) -> Figure:
    """Mean rating (0-100) per condition as a bar with its interval (``lows``-``highs``, e.g. 95%) as an
    error bar (none where an end is NaN), over the scale's grades (bad, poor, fair, good, excellent).
    Draws into ``ax`` when given; returns the figure."""
    if ax is None:
        fig = Figure(figsize=(1.2 * max(3, len(conditions)) + 1, 3.2), layout="constrained")
        ax = fig.subplots()
    means = np.asarray(means, dtype=float)
    err = np.nan_to_num([means - np.asarray(lows, dtype=float), np.asarray(highs, dtype=float) - means]).clip(0)
    x = np.arange(len(conditions))
    for level, grade in MUSHRA_GRADES:
        ax.axhline(level, color="0.85", lw=0.8, zorder=0)
        ax.text(1.01, (level + 10) / 105, grade, transform=ax.transAxes, fontsize=7, color="0.45", va="center")
    ax.bar(x, means, yerr=err, capsize=3, color=[f"C{i % 10}" for i in x], zorder=2)
    ax.set_xticks(x, [plot_text(c) for c in conditions], fontsize=8, rotation=20)
    ax.set_ylim(0, 105)
    ax.set_ylabel("rating (0-100)")
    ax.set_title(plot_text(title), fontsize=10)
    return ax.figure
