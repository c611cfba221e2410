"""The latent explorer: sample latent vectors, walk between two of them, hear and see each point.

Paths are linear (``lerp``) or spherical (``slerp``: along the great circle, which keeps the norm
of Gaussian latents typical, so midpoints do not sound quieter or duller than the ends). Latent
vectors worth keeping are saved by name as ``runs/NAME/latents/NAME.npy`` and recalled later.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import jax
import numpy as np

from audiogan import models, plots
from audiogan.config import RunConfig
from audiogan.errors import ConfigError
from audiogan.files import atomic_path
from audiogan.training import compiled

LATENTS_DIR = "latents"


def sample(config: RunConfig, n: int, seed: int = 0) -> np.ndarray:
    """``n`` latent vectors of the run's family and size, drawn from ``seed``."""
    return np.asarray(models.sample_latent(config, jax.random.PRNGKey(seed), n))


def lerp(z0: np.ndarray, z1: np.ndarray, n: int) -> np.ndarray:
    """``n`` points on the straight line from ``z0`` to ``z1``, both ends included."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    return ((1 - t) * np.asarray(z0, np.float64) + t * np.asarray(z1, np.float64)).astype(np.float32)


def slerp(z0: np.ndarray, z1: np.ndarray, n: int) -> np.ndarray:
    """``n`` points on the great-circle arc from ``z0`` to ``z1`` (norms interpolated linearly),
    both ends included; falls back to ``lerp`` when the two point the same way."""
    a, b = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return lerp(a, b, n)
    omega = np.arccos(np.clip(a @ b / (na * nb), -1.0, 1.0))
    if omega < 1e-6:
        return lerp(a, b, n)
    t = np.linspace(0.0, 1.0, n)[:, None]
    # Directions along the arc at an even angular speed; lengths from |z0| to |z1| in a straight line.
    direction = (np.sin((1 - t) * omega) * a / na + np.sin(t * omega) * b / nb) / np.sin(omega)
    return (direction * ((1 - t) * na + t * nb)).astype(np.float32)


def interpolate(z0: np.ndarray, z1: np.ndarray, n: int, kind: str = "slerp") -> np.ndarray:
    if kind not in ("lerp", "slerp"):
        raise ConfigError(f"interpolation={kind!r} must be 'lerp' (linear) or 'slerp' (spherical).")
    if not isinstance(n, int) or n < 2:
        raise ConfigError(f"n_path={n!r} must be a whole number of at least 2 (the two ends).")
    return (lerp if kind == "lerp" else slerp)(z0, z1, n)


def decode(gan, state, z_bd: np.ndarray, classes=None) -> np.ndarray:
    """The generator's clips for the latent vectors ``z_bd`` (the moving average when kept).

    A conditional run makes ``classes`` (one for all points, or one per point); by default the
    first class for every point, so a path changes the latent vector and nothing else."""
    z = np.asarray(z_bd, np.float32)
    if z.ndim != 2 or z.shape[1] != gan.config.latent_dim:
        raise ConfigError(f"latent vectors of shape {z.shape} do not fit this generator, which takes "
                          f"(n, {gan.config.latent_dim}).")
    if gan.conditional and classes is None:
        classes = gan.classes[0]
    return gan.to_audio(compiled(gan)[1](state.sampling_params, z, gan.class_labels(len(z), classes)))


def _latent_path(run_dir: str | os.PathLike, name: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith("."):
        raise ConfigError(f"latent name {name!r} must use only letters, digits, '_', '-' and '.'.")
    return Path(run_dir) / LATENTS_DIR / f"{name}.npy"


def save(run_dir: str | os.PathLike, name: str, z: np.ndarray) -> Path:
    """Keep latent vectors as ``RUN/latents/NAME.npy`` (written atomically; float32 kept bit-exact)."""
    path = _latent_path(run_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        np.save(tmp, np.asarray(z, np.float32))
    return path


def load(run_dir: str | os.PathLike, name: str) -> np.ndarray:
    path = _latent_path(run_dir, name)
    if not path.is_file():
        known = ", ".join(saved(run_dir)) or "none yet"
        raise FileNotFoundError(f"{path} does not exist; saved latents in this run: {known}.")
    return np.load(path)


def saved(run_dir: str | os.PathLike) -> list[str]:
    """Names of the latent vectors saved in a run folder."""
    folder = Path(run_dir) / LATENTS_DIR
    return sorted(p.stem for p in folder.glob("*.npy")) if folder.is_dir() else []


def wav_bytes(clip: np.ndarray, sample_rate: int) -> bytes:
    """A clip as the bytes of a 16-bit WAV file, for players that take bytes."""
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(clip, np.float32).reshape(-1), -1, 1), int(sample_rate), format="WAV",
             subtype="PCM_16")
    return buf.getvalue()


def explorer(clips: np.ndarray, sample_rate: int):
    """A slider over the clips of the points of a latent path (``decode(gan, state, z_path)``);
    moving it draws and plays that point's clip. Plain image and audio widgets whose values are
    replaced, so it works the same in JupyterLab and in a saved notebook."""
    import ipywidgets as w


    slider = w.IntSlider(value=0, min=0, max=len(clips) - 1, description="point")
    image = w.Image(format="png")
    player = w.Audio(format="wav", autoplay=False, loop=False)

    def draw(change=None):
        i = slider.value
        fig = plots.spectrogram_grid(clips[i:i + 1], sample_rate, [f"point {i} of {len(clips) - 1}"], cols=1)
        image.value = plots.to_png(fig)
        player.value = wav_bytes(clips[i], sample_rate)

    slider.observe(draw, names="value")
    draw()
    return w.VBox([slider, image, player])
