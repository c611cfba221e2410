"""The vocoder's training loop: writes a run folder as it goes, resumes exactly, reads a finished one back.

The run folder is a GAN run's (:class:`audiogan.runs.RunFolder`): ``config.json`` (a
:class:`VocoderConfig`, ``"kind": "vocoder"``), ``dataset.json`` (what the data turned out to be, the
epoch length the rate decays by), ``metrics.csv`` (every ``log_every`` steps: step, time_s, d_loss,
g_loss, d_real, d_fake, g_adv, fm, mel_l1, lr; means over the interval, fetched from the device once
per interval) and ``checkpoints/`` (generator, discriminators with spectral norm's vectors, both
optimisers, step, every ``checkpoint_every`` steps and at the end). A run killed at any instant resumes
from its latest checkpoint and, the segments of a step being fixed by the seed, computes what an
uninterrupted run would have.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable

import jax
import numpy as np
from tqdm.auto import tqdm

from audiogan import datasets
from audiogan.datasets.segments import Segments, hold_out
from audiogan.errors import ConfigError
from audiogan.files import atomic_write_text
from audiogan.runs import RunFolder
from audiogan.training.state import TrainingDiverged
from audiogan.training.vocoder_config import VocoderConfig
from audiogan.training.vocoder_step import (
    Vocoder,
    VocoderState,
    create,
    make_step,
    make_synthesise,
    make_vocode,
)

METRIC_COLUMNS = ("step", "time_s", "d_loss", "g_loss", "d_real", "d_fake", "g_adv", "fm", "mel_l1", "lr")
DATASET_JSON = "dataset.json"
INIT_JSON = "init_from.json"


@dataclasses.dataclass
class VocoderResult:
    vocoder: Vocoder
    state: VocoderState
    history: dict[str, list[float]]  # metrics.csv as columns
    resumed_from: int | None
    loaded: bool = False  # True: the run folder already held the finished run; nothing was trained


@dataclasses.dataclass
class VocoderData:
    """The training clips segments are drawn from, and the held-out clips that judge the vocoder."""

    train: datasets.Dataset
    held_out: datasets.Dataset
    held_out_from: str  # "the test split", "8 clips held out by seed", ...


def load_data(config: VocoderConfig) -> VocoderData:
    """The dataset of ``config`` (any the suite reads, ``clip_samples`` long clips), split into training
    clips and up to ``eval_clips`` held-out clips (:func:`audiogan.datasets.segments.hold_out`)."""
    train_ds, held, where = hold_out(datasets.load_dataset(config), config.eval_clips, config.seed)
    return VocoderData(train_ds, held, where)


def write_config(run: RunFolder, config: VocoderConfig) -> None:
    """Record ``config``; a run folder that holds a run with other settings is refused."""
    run.path.mkdir(parents=True, exist_ok=True)
    if run.exists():
        old = VocoderConfig.load(run.path)
        diff = config.differences(old)
        if diff:
            listed = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in sorted(diff.items()))
            raise ConfigError(f"run_dir={str(run.path)!r} already holds a vocoder run with other settings ({listed}). "
                              "Choose a new run_dir, or use the same settings to resume it.")
    atomic_write_text(run.config_path, json.dumps(config.to_dict(), indent=2) + "\n")


_COMPILED: dict[tuple, Callable] = {}


def compiled_step(vocoder: Vocoder, steps_per_epoch: int) -> Callable:
    """The step of ``vocoder``'s recipe, compiled once per recipe in a process (a notebook run again,
    a resumed run, or a second run with the same settings reuses it)."""
    ignore = VocoderConfig.RESUMABLE_CHANGES | {"init_from"}
    recipe = tuple((k, v) for k, v in sorted(vocoder.config.to_dict().items()) if k not in ignore)
    key = (recipe, steps_per_epoch)
    if key not in _COMPILED:
        _COMPILED[key] = make_step(vocoder)
    return _COMPILED[key]


def _mean_metrics(pending: list[dict]) -> dict[str, float]:
    fetched = jax.device_get(pending)
    return {k: float(np.mean([m[k] for m in fetched])) for k in METRIC_COLUMNS[2:-1]}


def start_from(state: VocoderState, config: VocoderConfig) -> tuple[VocoderState, int]:
    """``state`` with the generator and discriminators (spectral norm's vectors included) of the latest
    checkpoint of ``config.init_from``; the optimisers start afresh. Returns the state and that step."""
    other = VocoderConfig.load(config.init_from)
    mine, theirs = config.architecture(), other.architecture()
    if mine != theirs:
        listed = ", ".join(f"{k}: {theirs[k]!r} there, {mine[k]!r} here" for k in mine if mine[k] != theirs[k])
        raise ConfigError(f"init_from={config.init_from!r} holds a network of another shape ({listed}).")
    run = RunFolder(config.init_from)
    try:
        step = run.latest_step()
        if step is None:
            raise ConfigError(f"init_from={config.init_from!r} holds no checkpoint yet; train it first.")
        _, template = create(other, run.read_json(DATASET_JSON)["steps_per_epoch"])
        theirs_state = run.restore_checkpoint(template, step)
    finally:
        run.close()
    return state.replace(g_params=theirs_state.g_params, d_params=theirs_state.d_params,
                         d_power=theirs_state.d_power), step


def train(
    config: VocoderConfig,
    data: VocoderData | None = None,
    *,
    progress: bool = True,
    on_log: Callable[[dict[str, float]], None] | None = None,
    stop_after: int | None = None,
) -> VocoderResult:
    """Train ``config`` into its run folder, resuming from the latest checkpoint there; with
    ``init_from`` a fresh run starts from that run's networks. A finished run is only loaded.
    ``stop_after`` ends this call after that many steps (the run can be continued later)."""
    if is_finished(config):
        vocoder, state = restore(config.run_dir)
        return VocoderResult(vocoder, state, read_history(config.run_dir), int(state.step), loaded=True)
    run = RunFolder(config.run_dir)
    write_config(run, config)
    data = load_data(config) if data is None else data
    segments = Segments(data.train.clips, config.segment_samples, config.batch_size, config.seed)
    mel = config.mel_settings()
    run.write_json(DATASET_JSON, {
        "name": data.train.name, "clips": len(data.train), "held_out": len(data.held_out),
        "held_out_from": data.held_out_from, "sample_rate": data.train.sample_rate,
        "clip_samples": data.train.clip_samples, "segment_samples": config.segment_samples,
        "steps_per_epoch": segments.per_epoch, "hop": config.hop, "mel": dataclasses.asdict(mel),
    })
    vocoder, state = create(config, segments.per_epoch)
    resumed_from = run.latest_step()
    time_offset = 0.0
    if resumed_from is not None:
        state = run.restore_checkpoint(state, resumed_from)
        run.truncate_metrics(resumed_from)
        times = run.read_metrics().get("time_s", [])
        time_offset = times[-1] if times else 0.0
    elif config.init_from is not None:
        state, their_step = start_from(state, config)
        run.write_json(INIT_JSON, {"run_dir": config.init_from, "step": their_step})
    start = int(state.step)
    end = config.steps if stop_after is None else min(config.steps, start + stop_after)
    step_fn = compiled_step(vocoder, segments.per_epoch)
    schedule_lr = optimiser_lr(config, segments.per_epoch)

    def batch(step: int) -> jax.Array:
        return jax.device_put(segments[step], vocoder.data_sharding)

    pending: list[dict] = []
    t0 = time.perf_counter()
    next_batch = batch(start) if start < end else None
    bar = tqdm(total=end, initial=start, desc=f"training {config.model} {config.variant}", disable=not progress,
               unit="step")
    try:
        for step in range(start, end):
            state, metrics = step_fn(state, next_batch)
            pending.append(metrics)
            s = step + 1
            if s < end:
                next_batch = batch(s)  # prepared while the step runs
            checkpoint = s % config.checkpoint_every == 0 or s == end
            if s % config.log_every == 0 or checkpoint:
                row = {"step": s, "time_s": time_offset + time.perf_counter() - t0} | _mean_metrics(pending)
                row["lr"] = schedule_lr(step)
                pending = []
                bad = [k for k, v in row.items() if not math.isfinite(v)]
                if bad:
                    run.wait()
                    last = run.latest_step()
                    raise TrainingDiverged(
                        f"{', '.join(bad)} became NaN or infinite by step {s} of run {config.run_dir}; training "
                        f"stopped. The last good checkpoint is {f'step {last}' if last else 'none'}. Lower lr.")
                run.append_metrics([row])
                bar.set_postfix(d_loss=f"{row['d_loss']:.3f}", g_loss=f"{row['g_loss']:.3f}",
                                mel_l1=f"{row['mel_l1']:.3f}")
                if on_log is not None:
                    on_log(row)
            if checkpoint:
                run.save_checkpoint(s, state)
            bar.update(1)
    finally:
        bar.close()
        run.close()
    return VocoderResult(vocoder, state, read_history(config.run_dir), resumed_from)


def optimiser_lr(config: VocoderConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """The learning rate the optimiser used at update ``step`` (0-based), for the metrics."""
    def lr(step: int) -> float:
        return float(config.lr * config.lr_decay ** (step // max(1, steps_per_epoch)))
    return lr


# ---------------------------------------------------------------------------- reading a run back
def read_history(run_dir) -> dict[str, list[float]]:
    run = RunFolder(run_dir)
    history = run.read_metrics()
    return {c: history.get(c, []) for c in METRIC_COLUMNS} | history


def is_finished(config: VocoderConfig) -> bool:
    """True when ``config.run_dir`` holds this run with a checkpoint at ``config.steps`` or later."""
    run = RunFolder(config.run_dir)
    try:
        if not run.exists():
            return False
        try:
            if config.differences(VocoderConfig.load(run.path)):
                return False
        except ConfigError:
            return False
        latest = run.latest_step()
        return latest is not None and latest >= config.steps
    finally:
        run.close()


def restore(run_dir, step: int | None = None) -> tuple[Vocoder, VocoderState]:
    """The networks and optimisers of a vocoder run folder at ``step`` (default: the latest checkpoint)."""
    run = RunFolder(run_dir)
    try:
        config = VocoderConfig.load(run_dir)
        vocoder, template = create(config, run.read_json(DATASET_JSON)["steps_per_epoch"])
        state = run.restore_checkpoint(template, step)
    finally:
        run.close()
    return vocoder, state


_INFERENCE: dict[tuple, tuple[Callable, Callable]] = {}


def _inference(vocoder: Vocoder) -> tuple[Callable, Callable]:
    key = tuple(sorted(vocoder.config.architecture().items())) + (("sample_rate", vocoder.config.sample_rate),)
    if key not in _INFERENCE:
        _INFERENCE[key] = (make_vocode(vocoder), make_synthesise(vocoder))
    return _INFERENCE[key]


def vocode(vocoder: Vocoder, state: VocoderState, clips_bt: np.ndarray) -> np.ndarray:
    """The clips through mel and generator: (B, T) -> (B, T // hop * hop) float32."""
    clips_bt = np.asarray(clips_bt, np.float32)
    return np.asarray(_inference(vocoder)[0](state.g_params, clips_bt))


def synthesise(vocoder: Vocoder, state: VocoderState, mel_bft: np.ndarray) -> np.ndarray:
    """Audio from log-mels (B, n_mels, frames) -> (B, frames * hop) float32."""
    return np.asarray(_inference(vocoder)[1](state.g_params, np.asarray(mel_bft, np.float32)))


__all__ = ["METRIC_COLUMNS", "VocoderData", "VocoderResult", "is_finished", "load_data", "read_history",
           "restore", "start_from", "synthesise", "train", "vocode", "write_config"]
