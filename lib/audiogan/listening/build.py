"""Listening tests built from run folders: generated clips against the first run's real data, and a
vocoder run's renderings of its held-out clips in a MUSHRA test."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from audiogan import datasets, training
from audiogan.errors import ConfigError
from audiogan.evaluation.metrics import median_pitch
from audiogan.listening.answers import check_listener
from audiogan.listening.design import (
    MUSHRA,
    TASKS,
    TEST_FILE,
    ListeningTest,
    Source,
    check_tasks,
    create_test,
    load_test,
)
from audiogan.listening.mushra import create_mushra
from audiogan.runs import RunFolder

# ---------------------------------------------------------------------------- building from runs
TONE_REGISTERS = (("low", 48, 55), ("middle", 56, 63), ("high", 64, 72))  # MIDI C3-G3, G#3-D#4, E4-C5


def tone_register(midi: float) -> str | None:
    """The register of a tone (three bands over the tones' C3-C5), None when it lies outside."""
    if not math.isfinite(midi):
        return None
    m = round(midi)
    return next((name for name, lo, hi in TONE_REGISTERS if lo <= m <= hi), None)


def real_labels(labels: Mapping[str, np.ndarray]) -> list[str | None] | None:
    """Each real clip's class: the register for tones, a ``label``/``digit`` label otherwise."""
    if "midi" in labels:
        return [tone_register(float(m)) for m in labels["midi"]]
    for key in ("label", "digit", "class"):
        if key in labels:
            return [str(v) for v in labels[key]]
    return None


def measured_labels(clips: np.ndarray, sample_rate: int, dataset_info: Mapping[str, Any]) -> list[str | None] | None:
    """Classes of generated clips where they can be measured: for tones, the register of the
    pitch librosa's pYIN finds (None for unpitched clips). Other datasets: None (unknown)."""
    if "pitch_range_hz" not in dataset_info:
        return None
    lo, hi = dataset_info["pitch_range_hz"]
    f0, _ = median_pitch(clips, sample_rate, fmin=lo / 2, fmax=min(hi * 2, sample_rate / 2 - 1))
    return [tone_register(69 + 12 * math.log2(f / 440.0)) if np.isfinite(f) else None for f in f0]


def check_notebook_parameters(
    *, n_per_source: Any, tasks: Any, listener: Any, import_answers: Any, n_path: Any, interpolation: Any,
    mushra_run: Any = "", mushra_items: Any = 8, mushra_answers: Any = "",
) -> None:
    """The listening and latent parameters of ``04_listening_test``; a bad one stops with its name."""
    if not isinstance(n_per_source, int) or isinstance(n_per_source, bool) or n_per_source < 1:
        raise ConfigError(f"n_per_source={n_per_source!r} must be a positive whole number.")
    check_tasks(tasks)
    if listener:
        check_listener(listener)
    if import_answers and not Path(import_answers).exists():
        raise ConfigError(f"import_answers={import_answers!r} does not exist; give the file the test page saved "
                          "(or a folder of such files), or leave it empty.")
    if not isinstance(n_path, int) or isinstance(n_path, bool) or n_path < 2:
        raise ConfigError(f"n_path={n_path!r} must be a whole number of at least 2 (the two ends).")
    if interpolation not in ("lerp", "slerp"):
        raise ConfigError(f"interpolation={interpolation!r} must be 'lerp' (linear) or 'slerp' (spherical).")
    if mushra_run and not (Path(mushra_run) / "config.json").is_file():
        raise ConfigError(f"mushra_run={mushra_run!r} is not a run folder (no config.json); give a vocoder run "
                          "trained with 07_vocoder, or leave it empty.")
    if not isinstance(mushra_items, int) or isinstance(mushra_items, bool) or mushra_items < 1:
        raise ConfigError(f"mushra_items={mushra_items!r} must be a positive whole number.")
    if mushra_answers and not mushra_run:
        raise ConfigError(f"mushra_answers={mushra_answers!r} needs mushra_run, the vocoder run whose test "
                          "they answer.")
    if mushra_answers and not Path(mushra_answers).exists():
        raise ConfigError(f"mushra_answers={mushra_answers!r} does not exist; give the file the MUSHRA page saved "
                          "(or a folder of such files), or leave it empty.")


def test_folder(run_dir: str | os.PathLike) -> Path:
    """Where a run's listening test lives: ``RUN/listening/``."""
    return Path(run_dir) / "listening"


def build_from_runs(
    run_dirs: Sequence[str | os.PathLike], *, n_per_source: int = 8, tasks: str | Sequence[str] = TASKS,
    seed: int = 0, new_test: bool = False, folder: str | os.PathLike | None = None,
) -> ListeningTest:
    """A blind test of the generators of ``run_dirs`` (latest checkpoints) against the real data of
    the first run, written to ``folder`` (default: the first run's ``listening/``). Generated clips
    come from latents drawn with ``seed``; for tones their class (register) is measured by pitch."""
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise ConfigError("run_dirs is empty: name at least one trained run folder.")
    first = RunFolder(run_dirs[0])
    config = first.config()
    tasks = check_tasks(tasks)
    folder = test_folder(run_dirs[0]) if folder is None else Path(folder)
    names = [d.name for d in run_dirs]
    if len(set(names)) != len(names):
        names = [str(d) for d in run_dirs]
    dataset = datasets.load_dataset(config)
    info = dataset.info
    sources = [Source("real", dataset.clips, True, real_labels(dataset.labels) if "label" in tasks else None)]
    if (folder / TEST_FILE).is_file() and not new_test:
        old = load_test(folder)
        expected = {"sources": ["real", *names], "n_per_source": n_per_source, "tasks": list(tasks), "seed": seed}
        if all(old.settings.get(k) == v for k, v in expected.items()):
            return old  # the same test: keep its clips and answers, skip generating
    for name, run_dir in zip(names, run_dirs, strict=True):
        run_config = RunFolder(run_dir).config()
        if run_config.sample_rate != config.sample_rate:
            raise ConfigError(f"{run_dir} runs at {run_config.sample_rate} Hz but {run_dirs[0]} at "
                              f"{config.sample_rate} Hz; a test compares runs at one sample rate.")
        gan, state = training.restore(str(run_dir))
        clips = training.generate(gan, state, n_per_source, seed=seed)
        labels = measured_labels(clips, config.sample_rate, info) if "label" in tasks else None
        sources.append(Source(name, clips, False, labels))
    return create_test(folder, sources, config.sample_rate, n_per_source=n_per_source, tasks=tasks, seed=seed,
                       new_test=new_test)


def build_mushra_from_run(
    run_dir: str | os.PathLike, *, n_items: int = 8, seed: int = 0, griffin_lim_iters: int = 32,
    new_test: bool = False, folder: str | os.PathLike | None = None,
) -> ListeningTest:
    """A MUSHRA test of a vocoder run (07_vocoder; latest checkpoint): up to ``n_items`` of its held-out
    clips, each as the reference, with the vocoder's and Griffin-Lim's renderings of its mel
    (:func:`audiogan.evaluation.vocoder_eval.resynthesise`) as the systems, written to ``folder``
    (default ``RUN/listening/``). A test already there with the same settings and checkpoint is kept
    with its answers, without rendering anything again."""
    from audiogan.evaluation import vocoder_eval
    from audiogan.training import vocoder_loop
    from audiogan.training.vocoder_config import VocoderConfig

    config = VocoderConfig.load(run_dir)
    folder = test_folder(run_dir) if folder is None else Path(folder)
    run = RunFolder(run_dir)
    try:
        step = run.latest_step()
    finally:
        run.close()
    if step is None:
        raise ConfigError(f"{run_dir} has no checkpoint yet; train the vocoder with 07_vocoder first.")
    made = {"run": Path(run_dir).name, "step": int(step), "griffin_lim_iters": griffin_lim_iters}
    if (folder / TEST_FILE).is_file() and not new_test:
        old = load_test(folder)
        if old.settings.get("kind") == MUSHRA and all(old.settings.get(k) == v for k, v in
                                                       (made | {"n_items": n_items, "seed": seed}).items()):
            return old
    data = vocoder_loop.load_data(config)
    vocoder, state = vocoder_loop.restore(run_dir)
    audio = vocoder_eval.resynthesise(vocoder, state, data.held_out.clips, n_iter=griffin_lim_iters)
    systems = {name: np.clip(audio[name], -1.0, 1.0) for name in ("vocoder", "griffin_lim")}
    return create_mushra(folder, audio["ground_truth"], systems, config.sample_rate, n_items=n_items, seed=seed,
                         settings=made, new_test=new_test)
