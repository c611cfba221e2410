"""The training loop: writes a run folder as it goes, and reads a finished one back.

Every ``log_every`` steps a row of ``metrics.csv``; every ``preview_every`` steps fixed-latent previews;
every ``checkpoint_every`` steps an orbax checkpoint, from which a killed run resumes exactly (the batch
for a step is fixed by the seed). Metrics are fetched from the device once per logging interval. A
scorer (a callable, e.g. :class:`audiogan.evaluation.TrainingScorer`) adds evaluation columns and keeps
the best checkpoint; the loop knows nothing of how it scores.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import warnings
from collections.abc import Callable
from typing import Protocol

import jax
import numpy as np
from tqdm.auto import tqdm

from audiogan import datasets, models, plots
from audiogan.audio import write_wav
from audiogan.config import MEL_FIELDS, RunConfig
from audiogan.errors import ConfigError
from audiogan.models import specgan
from audiogan.models.specgan import MelCodec, SpectrogramCodec
from audiogan.runs import METRIC_COLUMNS, RunFolder
from audiogan.training import distributed, vocoder_loop
from audiogan.training.state import (
    CLASSES,
    GAN,
    SPECTROGRAM_MOMENTS,
    TrainingDiverged,
    TrainState,
    create,
    create_for_run,
    preview_latents,
    preview_titles,
    stored_classes,
)
from audiogan.training.step import compiled


class Scorer(Protocol):
    """What the loop asks of a scorer: whether step ``s`` is due, its columns and whether it is the best."""

    def due(self, step: int) -> bool: ...

    def row(self, step: int, gan: GAN, state: TrainState) -> tuple[dict[str, float], bool]: ...

    def record_best(self) -> None: ...


@dataclasses.dataclass
class TrainResult:
    gan: GAN
    state: TrainState
    history: dict[str, list[float]]  # metrics.csv as columns
    resumed_from: int | None
    loaded: bool = False  # True: the run folder already held the finished run; nothing was trained


def _mean_metrics(pending: list[dict]) -> dict[str, float]:
    """Means over the steps since the last log, in the column order of ``metrics.csv``."""
    fetched = jax.device_get(pending)
    names = [c for c in METRIC_COLUMNS if c in fetched[0]] + sorted(set(fetched[0]) - set(METRIC_COLUMNS))
    return {k: float(np.mean([m[k] for m in fetched])) for k in names}


def prepare_features(config: RunConfig, dataset: datasets.Dataset, run: RunFolder):
    """What the discriminator sees of the dataset, and the codec that makes it; reads the run folder
    but writes nothing (:func:`record_start` stores the codec).

    Waveform models train on the clips themselves. SpecGAN trains on normalised spectrograms (STFT or,
    ``spectrogram="mel"``, a vocoder's log-mel) whose per-bin moments are computed once over the training
    set and stored in the run folder, so a resumed run and the notebooks decode with exactly the same
    moments. A mel SpecGAN's previews go through ``config.vocoder`` when it names one.
    """
    if config.model != "specgan":
        return dataset.clips, None
    path = run.path / SPECTROGRAM_MOMENTS
    codec = SpectrogramCodec.load(path) if path.is_file() else specgan.fit_codec(config, dataset.clips,
                                                                                  dataset.sample_rate)
    features = codec.encode(dataset.clips)
    return features, _attach_vocoder(codec, config.vocoder)


# ---------------------------------------------------------------------------- a mel SpecGAN's vocoder
VOCODER_CHUNK = 16  # log-mels per vocoder call: one compiled shape (the last chunk is padded), bounded memory


def vocoder_decoder(vocoder_dir: str) -> Callable[[np.ndarray], np.ndarray]:
    """``decode(mel_bft) -> wav_bt``: log-mels (B, n_mels, frames) through the generator of the vocoder
    run ``vocoder_dir`` at its latest checkpoint, (B, frames * hop) float32."""
    try:
        vocoder, state = vocoder_loop.restore(vocoder_dir)
    except FileNotFoundError as exc:
        raise ConfigError(f"vocoder={vocoder_dir!r} holds no checkpoint yet; train it first ({exc}).") from exc

    def decode(mel_bft: np.ndarray) -> np.ndarray:
        mel_bft = np.asarray(mel_bft, np.float32)
        out = []
        for start in range(0, len(mel_bft), VOCODER_CHUNK):
            chunk = mel_bft[start:start + VOCODER_CHUNK]
            padded = np.pad(chunk, ((0, VOCODER_CHUNK - len(chunk)), (0, 0), (0, 0)), mode="edge")
            out.append(vocoder_loop.synthesise(vocoder, state, padded)[:len(chunk)])
        return np.concatenate(out) if out else np.zeros((0, mel_bft.shape[2] * vocoder.config.hop), np.float32)

    return decode


def _attach_vocoder(codec, vocoder_dir: str):
    """``codec`` decoding through the vocoder run ``vocoder_dir`` ("": Griffin-Lim)."""
    if not isinstance(codec, MelCodec):
        return codec
    return codec.with_vocoder(vocoder_decoder(vocoder_dir) if vocoder_dir else None)


def with_vocoder(gan: GAN, vocoder: str) -> GAN:
    """A mel SpecGAN's ``gan`` turning its log-mels into sound through the vocoder run ``vocoder``, or by
    Griffin-Lim with ``""``; the vocoder must have been trained on the run's mel (:class:`ConfigError`
    naming what differs). Any other run: ``vocoder`` must be ``""``."""
    config = gan.config
    if vocoder != config.vocoder:  # checked against the run's mel settings, which stay as they are
        pinned = {name: getattr(config, name) for name in MEL_FIELDS} if isinstance(gan.codec, MelCodec) else {}
        config = config.replace(vocoder=vocoder, **pinned)
    return dataclasses.replace(gan, config=config, codec=_attach_vocoder(gan.codec, config.vocoder))


def prepare_classes(
    config: RunConfig, dataset: datasets.Dataset, run: RunFolder,
) -> tuple[tuple[str, ...], np.ndarray | None]:
    """A conditional run's class names and each clip's class index (unconditional: ``()``, None).

    A resumed run must find the classes stored in the run folder, since its networks were built for
    them; writes nothing (:func:`record_start` stores them)."""
    if not config.conditional:
        return (), None
    classes, index = datasets.class_indices(dataset)
    if (run.path / CLASSES).is_file():
        stored = stored_classes(run)
        if stored != classes:
            raise ConfigError(
                f"{config.run_dir} was trained on the classes {', '.join(stored)}, but the dataset now "
                f"has {', '.join(classes)}; use a new run_dir for this dataset."
            )
    return classes, index


def record_start(run: RunFolder, config: RunConfig, dataset: datasets.Dataset, codec, classes) -> None:
    """The run folder's first writes, once every check has passed: the config (refused if another
    recipe is there), what the dataset turned out to be, SpecGAN's moments, a conditional run's classes."""
    run.write_config(config)
    run.write_json("dataset.json", {
        "name": dataset.name, "clips": len(dataset), "sample_rate": dataset.sample_rate,
        "clip_samples": dataset.clip_samples, "labels": sorted(dataset.labels),
        "info": {k: v for k, v in dataset.info.items() if k != "files"},
    })
    if codec is not None and not (run.path / SPECTROGRAM_MOMENTS).is_file():
        codec.save(run.path / SPECTROGRAM_MOMENTS)  # every process fits the same moments; one writes them
    if classes and not (run.path / CLASSES).is_file():
        run.write_json(CLASSES, list(classes))


def write_previews(run: RunFolder, gan: GAN, clips: np.ndarray, step: int) -> None:
    sr = gan.config.sample_rate
    folder = run.sample_dir(step)
    for i, clip in enumerate(clips):
        write_wav(folder / f"sample_{i}.wav", clip, sr)
    fig = plots.spectrogram_grid(clips, sr, preview_titles(gan, step))
    plots.save(fig, folder / "spectrograms.png")


def train(
    config: RunConfig,
    dataset: datasets.Dataset | None = None,
    *,
    progress: bool = True,
    on_log: Callable[[dict[str, float]], None] | None = None,
    stop_after: int | None = None,
    scorer: Callable[..., Scorer] | None = None,
) -> TrainResult:
    """Train ``config`` into its run folder, resuming from the latest checkpoint there.

    Every ``log_every`` steps a row of ``metrics.csv`` (means over the interval) is written and
    passed to ``on_log``; every ``preview_every`` steps fixed-latent previews go to ``samples/``;
    every ``checkpoint_every`` steps and at the end an orbax checkpoint is saved. ``stop_after``
    ends this call after that many steps (the run can be continued later), e.g. for a workshop.
    With ``config.eval_every``, ``scorer(config, reference_dataset_or_None, run)`` makes the
    :class:`Scorer` that adds evaluation columns every ``eval_every`` steps and picks the best checkpoint
    (:class:`audiogan.evaluation.TrainingScorer`; the notebooks and ``audiogan.cli`` pass it).
    """
    if config.eval_every and scorer is None:
        raise ConfigError(
            f"eval_every={config.eval_every} needs a scorer: pass scorer=audiogan.evaluation.TrainingScorer "
            "(as notebook 02_train does), or set eval_every=0."
        )
    if is_finished(config):  # a class opens the notebook and sees the result at once
        with warnings.catch_warnings(record=True) as skipped:
            warnings.simplefilter("always")
            gan, state = restore(config.run_dir)
        if int(state.step) >= config.steps:
            for w in skipped:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            if gan.config.vocoder != config.vocoder:  # the vocoder asked for now, not the one stored
                gan = with_vocoder(gan, config.vocoder)
            run = RunFolder(config.run_dir)
            return TrainResult(gan, state, run.read_metrics(), int(state.step), loaded=True)
        # The finished checkpoint is damaged: resume from the intact one below (which warns again).
    run = RunFolder(config.run_dir)
    main = distributed.is_main_process()  # across processes only process 0 writes the files
    # Every check that can fail comes before the run folder's first write, so a failed start leaves
    # nothing behind that would refuse corrected settings as "another run".
    if main:
        run.check_not_busy()  # before the slow part: the dataset, the classifier
        run.check_config(config)
    dataset = datasets.load_dataset(config) if dataset is None else dataset
    dataset = dataset.subset("train")  # datasets with splits (digits) train on the training split only
    if dataset.clip_samples != config.clip_samples:
        raise ConfigError(
            f"the dataset's clips have {dataset.clip_samples} samples but clip_samples="
            f"{config.clip_samples}; build the dataset with the run's config."
        )
    features, codec = prepare_features(config, dataset, run)
    classes, class_index = prepare_classes(config, dataset, run)
    batches = datasets.Batches(features, config.batch_size, config.seed)
    gan, state = create(config, codec, classes)
    if config.eval_every:  # the classifier is trained (or loaded) before the clock starts
        # The reference needs the whole dataset (its test split too), not the training subset.
        scorer = scorer(config, None if "split" in dataset.labels else dataset, run)
    else:
        scorer = None
    with contextlib.ExitStack() as held:
        if main:  # one writer per run folder, until the last checkpoint is on disk
            held.enter_context(run.writer())
            record_start(run, config, dataset, codec, classes)
        held.callback(run.close)
        return _train_loop(config, run, gan, state, features=features, class_index=class_index,
                           batches=batches, scorer=scorer, main=main, progress=progress, on_log=on_log,
                           stop_after=stop_after)


def _train_loop(config: RunConfig, run: RunFolder, gan: GAN, state: TrainState, *, features, class_index,
                batches, scorer, main, progress, on_log, stop_after) -> TrainResult:
    """Resume from the newest intact checkpoint and train to ``config.steps`` (or ``stop_after``)."""
    resumed_from = None
    if run.latest_step() is not None:
        state, resumed_from, damaged = run.restore_latest(state)
        if damaged and main:
            aside = run.set_aside(damaged)
            warnings.warn(f"moved the damaged checkpoint(s) of step {', '.join(map(str, damaged))} to "
                          f"{aside}; the run resumes from step {resumed_from}", stacklevel=3)
    if main:  # rows logged after the checkpoint (all of them when a run died before its first one)
        run.truncate_metrics(resumed_from or 0)
    times = run.read_metrics().get("time_s", []) if resumed_from else []
    time_offset = times[-1] if times else 0.0
    start = int(state.step)
    end = config.steps if stop_after is None else min(config.steps, start + stop_after)

    step_fn, generate = compiled(gan)
    z_preview = distributed.replicate(preview_latents(config), gan.replicated)
    preview_labels = gan.class_labels(config.n_previews)
    n_critic = config.n_critic

    # Each process loads only the rows of the global batch that its devices hold (all of them
    # when there is one process) and JAX assembles the global, batch-sharded array.
    global_shape = (n_critic, config.batch_size) + features.shape[1:]
    rows = distributed.local_rows(gan.data_sharding, global_shape, axis=1)

    def real_batch(step: int) -> tuple[jax.Array, ...]:
        """The step's real clips (and, conditional, their classes) as the step's arguments."""
        index_cb = np.stack([batches.indices(step * n_critic + i)[rows] for i in range(n_critic)])
        cbt = jax.make_array_from_process_local_data(gan.data_sharding, features[index_cb], global_shape)
        if class_index is None:
            return (cbt,)
        return cbt, jax.make_array_from_process_local_data(
            gan.data_sharding, class_index[index_cb], global_shape[:2]
        )

    def is_checkpoint(s):  # also where this call stops early, so no finished step is lost
        return s % config.checkpoint_every == 0 or s == end

    pending: list[dict] = []
    t0 = time.perf_counter()
    next_real = real_batch(start) if start < end else None
    bar = tqdm(total=end, initial=start, desc=f"training {config.model}", disable=not progress,
               unit="step")
    try:
        for step in range(start, end):
            state, metrics = step_fn(state, *next_real)
            pending.append(metrics)
            s = step + 1
            if s < end:
                next_real = real_batch(s)  # prepared while the step runs
            best = False
            if s % config.log_every == 0 or is_checkpoint(s) or (scorer and scorer.due(s)):
                row = {"step": s, "time_s": time_offset + time.perf_counter() - t0}
                row |= _mean_metrics(pending)
                pending = []
                bad = [k for k, v in row.items() if not math.isfinite(v)]
                if scorer:  # eval columns are NaN on rows between evaluations
                    evaluated, best = scorer.row(s, gan, state)
                    row |= evaluated
                if bad:
                    run.wait()
                    last = run.latest_step()
                    where = f"step {last} in {run.checkpoint_dir}" if last else "none was saved yet"
                    raise TrainingDiverged(
                        f"{', '.join(bad)} became NaN or infinite by step {s} of run "
                        f"{config.run_dir}; training stopped. The last good checkpoint is {where}. "
                        "Lower lr, check the data for NaN, or change the loss."
                    )
                if main:
                    run.append_metrics([row])
                bar.set_postfix(d_loss=f"{row['d_loss']:.3f}", g_loss=f"{row['g_loss']:.3f}")
                if on_log is not None:
                    on_log(row)
            if s % config.preview_every == 0 or s == config.steps:
                out = generate(state.sampling_params, z_preview, preview_labels)  # every process runs it
                if main:
                    write_previews(run, gan, gan.to_audio(out), s)
            if is_checkpoint(s):
                run.save_checkpoint(s, state)
            if best:
                run.save_best_checkpoint(s, state)
                scorer.record_best()
            bar.update(1)
    finally:
        bar.close()
        run.close()  # every checkpoint on disk before the caller releases the lock
    return TrainResult(gan, state, run.read_metrics(), resumed_from)


# ---------------------------------------------------------------------------- reading a run back
def is_finished(config: RunConfig) -> bool:
    """True when ``config.run_dir`` holds a run with the same settings whose latest checkpoint is
    at ``config.steps`` or later: then training is skipped and the run is only loaded."""
    run = RunFolder(config.run_dir)
    try:
        if not run.exists() or config.differences(run.config()):
            return False
        latest = run.latest_step()
        return latest is not None and latest >= config.steps
    finally:
        run.close()


def restore(run_dir: str, step: int | None = None, *, vocoder: str | None = None) -> tuple[GAN, TrainState]:
    """The networks and optimisers of a run folder at ``step`` (default: the latest checkpoint). A mel
    SpecGAN decodes through ``vocoder`` (None: the run's own, "": Griffin-Lim; :func:`with_vocoder`)."""
    run = RunFolder(run_dir)
    try:
        gan, template = create_for_run(run)
        state = run.restore_checkpoint(template, step)
    finally:
        run.close()
    return with_vocoder(gan, gan.config.vocoder if vocoder is None else vocoder), state


def preview(gan: GAN, state: TrainState) -> np.ndarray:
    """The generator's clips for the run's fixed preview latents (as in ``samples/``)."""
    n = gan.config.n_previews
    return gan.to_audio(compiled(gan)[1](state.sampling_params, preview_latents(gan.config), gan.class_labels(n)))


def generate(gan: GAN, state: TrainState, n: int, seed: int = 0, classes=None) -> np.ndarray:
    """``n`` clips from the generator of ``state`` with latents drawn from ``seed``.

    A conditional run makes the ``classes`` asked for: one class name (or index) for all clips, or
    one per clip; by default every class in turn (clip ``i`` is class ``i % len(gan.classes)``)."""
    labels = gan.class_labels(n, classes)
    z_bd = models.sample_latent(gan.config, jax.random.PRNGKey(seed), n)
    return gan.to_audio(compiled(gan)[1](state.sampling_params, z_bd, labels))


def summary(config: RunConfig, dataset: datasets.Dataset | None = None) -> dict[str, int]:
    """Parameter counts of both networks of ``config``. A conditional run's networks depend on its
    number of classes: they come from ``dataset``, or, when it is None, from the run folder."""
    n_classes = 0
    if config.conditional:
        if dataset is not None:
            n_classes = len(datasets.class_indices(dataset.subset("train"))[0])
        else:
            run = RunFolder(config.run_dir)
            try:
                n_classes = len(stored_classes(run))
            finally:
                run.close()
    return models.summary(config, n_classes)
