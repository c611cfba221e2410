"""Objective evaluation of a run: the standard GAN audio metrics, read against real-data ceilings.

For N generated clips (default 1,000; the WaveGAN paper used 50,000) and the run's dataset:

| metric | what | better |
|---|---|---|
| ``is`` | Inception Score with our classifier | higher, up to the class count |
| ``mis`` | modified Inception Score (also intra-class diversity) | higher |
| ``am`` | AM score: label marginal against the training set's, plus mean entropy | lower |
| ``fd`` | Fréchet distance of the classifier's penultimate features to the training set's | lower |
| ``ndb_k`` | NDB/K: share of the k-means bins of training features whose share differs (5%) | lower |
| ``d_self`` | mean log-mel distance of each clip to its nearest other generated clip | near real |
| ``d_train`` | mean log-mel distance of each clip to its nearest training clip | near real (lower: copying) |
| ``pitch_accuracy``, ``pitch_distance`` | tones: in-tune share, EMD (semitones) to the real pitches | higher / lower |
| ``flatness`` | noise: median over clips of each clip's median spectral flatness of its loud frames | near real |
| ``flatness_ratio`` | that over the real test clips' (issue 25 keeps a recipe at 3 or less) | near 1 |

IS, mIS, AM, |D|self and |D|train are reported as mean and standard deviation over 10 splits of
the clips; FD and NDB/K use all of them; the pitch metrics the first ``pitch_clips`` (200: pYIN is
slow). **Ceilings**: the same metrics on real training clips and
on real test clips (voices the classifier never heard, for digits), so every score is read against
what real audio gets. They are cached in the classifier's folder as ``ceilings.json``.

Spectral flatness (:func:`metrics.spectral_flatness`: 512-point frames, those above a tenth of the
energy of the clip's own loudest frame) measures hiss: ``eval.json`` carries the generated clips'
``flatness``, the real test clips' ``flatness_real`` and their ``flatness_ratio``.

A mel SpecGAN (``spectrogram="mel"``) with a vocoder is scored both ways from the same latents:
``eval.json``'s ``generated`` is the vocoder's clips, ``paths`` holds ``vocoder`` and ``griffin_lim``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from audiogan import datasets, training
from audiogan.config import RunConfig
from audiogan.errors import ConfigError
from audiogan.evaluation import metrics as M
from audiogan.evaluation.classifier import Classifier, ClassifierSettings, get_classifier, split_indices
from audiogan.files import atomic_write_text
from audiogan.runs import RunFolder
from audiogan.training.loop import with_vocoder

EVAL_FILE = "eval.json"
CEILINGS_FILE = "ceilings.json"
# The table's rows: key, label, which way is better (+1 higher, -1 lower, 0 near the real value).
METRICS = (
    ("is", "Inception Score", +1),
    ("mis", "modified IS", +1),
    ("am", "AM score", -1),
    ("fd", "Fréchet distance", -1),
    ("ndb_k", "NDB/K", -1),
    ("d_self", "|D|self (log-mel)", 0),
    ("d_train", "|D|train (log-mel)", 0),
    ("pitch_accuracy", "pitch accuracy", +1),
    ("pitch_distance", "pitch EMD (semitones)", -1),
    ("accuracy_as_asked", "accuracy as asked", +1),  # conditional runs: the classifier hears the class asked
    ("flatness", "spectral flatness (noise)", 0),
    ("flatness_ratio", "flatness ÷ real test (at most 3)", None),
)
CEILINGS_VERSION = 2  # 2: spectral flatness; cached ceilings of another version are computed again
CHECKPOINTS = ("latest", "best")


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    n_clips: int = 1000  # generated clips per evaluation (the WaveGAN paper: 50,000)
    splits: int = 10
    ndb_bins: int = 50
    reference_clips: int = 5000  # training clips used as the reference (FD, NDB bins, |D|train)
    pitch_clips: int = 200  # tones: clips whose pitch pYIN measures (about 0.1-0.3 s each on a CPU core)
    seed: int = 0  # latents and subsets

    def __post_init__(self):
        for name in ("n_clips", "splits", "ndb_bins", "reference_clips", "pitch_clips"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r} must be a positive whole number.")
        if self.n_clips < 2 * self.splits:
            raise ConfigError(
                f"n_clips={self.n_clips} is too few for {self.splits} splits; use at least {2 * self.splits}."
            )


# ---------------------------------------------------------------------------- the real-data reference
@dataclasses.dataclass
class Reference:
    """What generated clips are compared with: the classifier's view of real training clips."""

    config: RunConfig
    classifier: Classifier
    dataset: datasets.Dataset
    splits: dict[str, np.ndarray]
    train_idx: np.ndarray  # the reference subset of the train split (indices into the dataset)
    train_probs: np.ndarray
    train_feats: np.ndarray
    train_mel: np.ndarray  # flattened log-mel in dB, for the nearest-neighbour distances
    centroids: np.ndarray  # NDB bins
    settings: EvalSettings

    @property
    def midi_range(self) -> tuple[int, int] | None:
        r = self.dataset.info.get("midi_range")
        return (int(r[0]), int(r[1])) if r and "pitch_hz" in self.dataset.labels else None

    def mel(self, clips: np.ndarray) -> np.ndarray:
        s = self.classifier.info["settings"]
        return M.log_mel(clips, self.dataset.sample_rate, s["n_mels"], s["n_frames"]).reshape(len(clips), -1)


def build_reference(
    config: RunConfig, settings: EvalSettings = EvalSettings(), *,
    classifier: Classifier | None = None, dataset: datasets.Dataset | None = None,
    classifier_settings: ClassifierSettings | None = None, root: str | os.PathLike | None = None,
    progress: bool = True,
) -> Reference:
    dataset = datasets.load_dataset(config) if dataset is None else dataset
    if classifier is None:
        classifier = get_classifier(config, classifier_settings, dataset=dataset, progress=progress, root=root)
    s = classifier.info["settings"]
    splits = split_indices(dataset, s["test_fraction"], s["seed"])
    train = splits["train"]
    if len(train) > settings.reference_clips:
        train = np.sort(np.random.default_rng(settings.seed).choice(train, settings.reference_clips, replace=False))
    probs, feats = classifier.predict(dataset.clips[train])
    bins = min(settings.ndb_bins, len(train) // 2)
    ref = Reference(
        config, classifier, dataset, splits, train, probs, feats, np.empty(0), M.kmeans(feats, bins, settings.seed),
        settings,
    )
    ref.train_mel = ref.mel(dataset.clips[train])
    return ref


# ---------------------------------------------------------------------------- scoring a set of clips
def score_clips(
    clips: np.ndarray, ref: Reference, exclude: np.ndarray | None = None, pitch: bool = True,
    asked: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Every metric of ``clips`` against ``ref``. ``exclude[i]`` is the reference row that clip i
    is (for the real-training ceiling, whose clips are in the reference themselves). ``pitch``:
    also the pitch metrics (pYIN, the slowest part), for datasets with pitch labels. ``asked``: the
    class each clip was made for (a conditional run), scored as the fraction the classifier hears so."""
    st = ref.settings
    clips = np.asarray(clips, np.float32)
    if clips.ndim != 2 or clips.shape[1] != ref.dataset.clip_samples:
        raise ConfigError(
            f"clips of shape {clips.shape} do not fit dataset {ref.dataset.name!r} "
            f"({ref.dataset.clip_samples} samples per clip)."
        )
    if not np.all(np.isfinite(clips)):
        raise ConfigError("the clips hold NaN or infinite samples; the generator has diverged.")
    probs, feats = ref.classifier.predict(clips)
    mel = ref.mel(clips)
    n = len(clips)
    if asked is not None and len(asked) != n:
        raise ConfigError(f"asked gives {len(asked)} classes for {n} clips")

    def spread(fn):
        mean, std = M.over_splits(fn, n, st.splits, st.seed)
        return {"mean": mean, "std": std}

    out: dict[str, Any] = {
        "n_clips": n,
        "is": spread(lambda i: M.inception_score(probs[i])),
        "mis": spread(lambda i: M.modified_inception_score(probs[i])),
        "am": spread(lambda i: M.am_score(probs[i], ref.train_probs)),
        "fd": M.frechet_distance(feats, ref.train_feats),
        "ndb_k": M.ndb(ref.train_feats, feats, centroids=ref.centroids)["ndb_k"],
        **({} if asked is None else {"accuracy_as_asked": float(np.mean(
            [str(ref.classifier.classes[t]) == str(a) for t, a in zip(probs.argmax(1), asked, strict=True)]
        ))}),
        "d_self": spread(lambda i: M.nn_diversity(mel[i])),
        "d_train": spread(lambda i: M.nn_memorisation(
            mel[i], ref.train_mel, None if exclude is None else exclude[i])),
        "flatness": M.flatness(clips),
        "class_share": dict(zip(
            [str(c) for c in ref.classifier.classes],
            np.bincount(probs.argmax(1), minlength=len(ref.classifier.classes)).astype(float) / n,
            strict=True,
        )),
    }
    if pitch and ref.midi_range is not None:
        hz, _ = M.median_pitch(clips[:st.pitch_clips], ref.dataset.sample_rate, *_pitch_band(ref))
        real = ref.dataset.labels["pitch_hz"][ref.splits["train"]]
        out["pitch_accuracy"] = M.pitch_accuracy(hz, ref.midi_range)
        out["pitch_distance"] = M.pitch_distribution_distance(hz, real)
    return out


def _pitch_band(ref: Reference) -> tuple[float, float]:
    lo, hi = ref.dataset.info["pitch_range_hz"]
    return lo / 2, min(hi * 2, ref.dataset.sample_rate / 2 - 1)


def _settings_key(ref: Reference) -> str:
    blob = json.dumps([dataclasses.asdict(ref.settings), ref.classifier.info.get("key"), CEILINGS_VERSION],
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def ceilings(ref: Reference, *, use_cache: bool = True) -> dict[str, dict[str, Any]]:
    """The metrics of real training clips and real test clips (as many as ``n_clips``, at most the
    split), cached as ``ceilings.json`` beside the classifier."""
    key = _settings_key(ref)
    path = ref.classifier.path / CEILINGS_FILE if ref.classifier.path is not None else None
    if use_cache and path is not None and path.is_file():
        stored = json.loads(path.read_text())
        if stored.get("key") == key:
            return stored["ceilings"]
    rng = np.random.default_rng(ref.settings.seed + 1)
    n = ref.settings.n_clips
    # Real training clips: drawn from the reference itself, each barred from matching itself.
    pos = np.sort(rng.choice(len(ref.train_idx), min(n, len(ref.train_idx)), replace=False))
    test = ref.splits["test"]
    test = np.sort(rng.choice(test, min(n, len(test)), replace=False))
    out = {
        "real_train": score_clips(ref.dataset.clips[ref.train_idx[pos]], ref, exclude=pos),
        "real_test": score_clips(ref.dataset.clips[test], ref),
    }
    out["real_train"]["classifier_accuracy"] = ref.classifier.info["train_accuracy"]
    out["real_test"]["classifier_accuracy"] = ref.classifier.info["test_accuracy"]
    if path is not None:
        atomic_write_text(path, json.dumps({"key": key, "ceilings": out}, indent=2) + "\n")
    return out


# ---------------------------------------------------------------------------- runs
def restore(run_dir: str | os.PathLike, checkpoint: str = "latest", *, vocoder: str | None = None):
    """The run's networks at its latest checkpoint, or at the best one kept by ``eval_every``; a mel
    SpecGAN decodes through ``vocoder`` (None: the run's own, "": Griffin-Lim)."""
    if checkpoint not in CHECKPOINTS:
        raise ConfigError(f"checkpoint={checkpoint!r} is unknown; choose 'latest' or 'best'.")
    if checkpoint == "latest":
        return training.restore(str(run_dir), vocoder=vocoder)
    run = RunFolder(run_dir)
    try:
        if run.best_step() is None:
            raise ConfigError(
                f"{run_dir} has no best checkpoint: train it with eval_every > 0, or use checkpoint='latest'."
            )
        gan, template = training.create_for_run(run)
        state = run.restore_best_checkpoint(template)
    finally:
        run.close()
    return with_vocoder(gan, gan.config.vocoder if vocoder is None else vocoder), state


def is_mel_specgan(config: RunConfig) -> bool:
    return config.model == "specgan" and config.spectrogram == "mel"


def generate_clips(gan, state, n: int, seed: int, batch_size: int = 250) -> np.ndarray:
    """``n`` clips in batches; a conditional run's clip ``i`` is made for class ``i % len(gan.classes)``
    (:func:`asked_classes`)."""
    labels = gan.class_labels(n)
    return np.concatenate([
        np.asarray(training.generate(gan, state, min(batch_size, n - s), seed=seed * 100003 + s,
                                  classes=None if labels is None else labels[s:s + batch_size]))
        for s in range(0, n, batch_size)
    ])


def asked_classes(gan, n: int) -> list[str] | None:
    """The class names :func:`generate_clips` asks a conditional run for (None: unconditional)."""
    labels = gan.class_labels(n)
    return None if labels is None else [gan.classes[i] for i in labels]


def evaluate_run(
    run_dir: str | os.PathLike, settings: EvalSettings = EvalSettings(), *, checkpoint: str = "latest",
    reference: Reference | None = None, root: str | os.PathLike | None = None, progress: bool = True,
    vocoder: str | None = None,
) -> dict[str, Any]:
    """Score ``settings.n_clips`` clips of a run's generator and write them with the ceilings to
    ``RUN/eval.json``; returns that record.

    A mel SpecGAN with a vocoder (``vocoder``, or by default the run's own) is scored twice from the
    same latents, through the vocoder and by Griffin-Lim: ``paths`` holds both (``vocoder``,
    ``griffin_lim``) and ``generated`` is the vocoder's. ``vocoder`` is ignored for other runs."""
    run = RunFolder(run_dir)
    config = run.config()
    if reference is None:
        reference = build_reference(config, settings, root=root, progress=progress)
    elif _data_of(reference.config) != _data_of(config):
        raise ConfigError(
            f"{run_dir} was trained on other data ({config.dataset}, {config.sample_rate} Hz, "
            f"{config.clip_samples} samples) than the reference ({reference.config.dataset}); evaluate it "
            "with its own reference."
        )
    gan, state = restore(run_dir, checkpoint, vocoder=vocoder if is_mel_specgan(config) else None)
    # The classes asked for are scored when the classifier names the same classes as the run's.
    asked = asked_classes(gan, settings.n_clips)
    if asked is not None and not set(asked) <= {str(c) for c in reference.classifier.classes}:
        asked = None
    ceilings_ = ceilings(reference)
    paths = {"vocoder": gan, "griffin_lim": with_vocoder(gan, "")} if gan.config.vocoder else {"": gan}
    scored = {}
    for path, path_gan in paths.items():
        scored[path] = score_clips(generate_clips(path_gan, state, settings.n_clips, settings.seed), reference,
                                   asked=asked)
        scored[path]["flatness_ratio"] = flatness_ratio(scored[path], ceilings_)
    generated = next(iter(scored.values()))
    record = {
        "run_dir": str(run_dir), "checkpoint": checkpoint, "step": int(state.step),
        "settings": dataclasses.asdict(settings),
        "classifier": {k: reference.classifier.info.get(k) for k in ("dataset", "label", "test_accuracy")}
        | {"path": str(reference.classifier.path)},
        "generated": generated,
        **({"vocoder": gan.config.vocoder, "paths": scored} if gan.config.vocoder else {}),
        "flatness": generated["flatness"],
        "flatness_real": ceilings_["real_test"].get("flatness", float("nan")),
        "flatness_ratio": generated["flatness_ratio"],
        "ceilings": ceilings_,
    }
    run.write_json(EVAL_FILE, _clean(record))
    return record


def flatness_ratio(scores: dict[str, Any], ceilings_: dict[str, dict[str, Any]]) -> float:
    """The generated clips' spectral flatness over the real test clips' (NaN when either is missing)."""
    real = ceilings_["real_test"].get("flatness")
    mine = scores.get("flatness")
    if real is None or mine is None or not real > 0:
        return float("nan")
    return float(mine) / float(real)


def records_of(name: str, record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The table's columns for one eval.json record: ``name (step N)``, or one per path for a mel
    SpecGAN scored through its vocoder and by Griffin-Lim."""
    label = f"{name} (step {record['step']})"
    if "paths" not in record:
        return {label: record["generated"]}
    titles = {"vocoder": "vocoder", "griffin_lim": "Griffin-Lim"}
    return {f"{label}, {titles.get(p, p)}": scores for p, scores in record["paths"].items()}


def _data_of(config: RunConfig) -> dict:
    return datasets.dataset_settings(config)


def _clean(value):
    """NaN as null, so eval.json is strict JSON."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


# ---------------------------------------------------------------------------- reading results
def _value(entry) -> tuple[float, float | None]:
    if isinstance(entry, dict):
        return entry["mean"], entry["std"]
    return (float("nan") if entry is None else entry), None


def table_rows(records: dict[str, dict[str, Any]], ceilings_: dict[str, dict[str, Any]]) -> list[list[str]]:
    """One row per metric: its name, each record's value, then the two ceilings."""
    columns = list(records.values()) + [ceilings_["real_train"], ceilings_["real_test"]]
    rows = []
    for key, label, better in METRICS:
        if not any(key in c for c in columns):
            continue
        arrow = {1: " ↑", -1: " ↓", 0: " ≈ real", None: ""}[better]
        cells = []
        for c in columns:
            if key not in c:
                cells.append("–")
                continue
            mean, std = _value(c[key])
            cells.append(f"{mean:.3g}" + (f" ± {std:.2g}" if std is not None else ""))
        rows.append([label + arrow] + cells)
    return rows


def table_html(records: dict[str, dict[str, Any]], ceilings_: dict[str, dict[str, Any]]) -> str:
    import html

    head = ["metric"] + list(records) + ["real train", "real test"]
    lines = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for row in table_rows(records, ceilings_):
        lines.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    return "\n".join(lines + ["</table>"])


def table_text(records: dict[str, dict[str, Any]], ceilings_: dict[str, dict[str, Any]]) -> str:
    head = ["metric"] + list(records) + ["real train", "real test"]
    rows = [head] + table_rows(records, ceilings_)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def comparison_figure(records: dict[str, dict[str, Any]], ceilings_: dict[str, dict[str, Any]]):
    """One small bar chart per metric: each run's value (with its spread over splits) beside the
    real training and real test clips."""
    from matplotlib.figure import Figure

    columns = {**records, "real train": ceilings_["real_train"], "real test": ceilings_["real_test"]}
    keys = [(k, label) for k, label, _ in METRICS if any(k in c for c in columns.values())]
    cols = min(4, len(keys))
    rows = int(np.ceil(len(keys) / cols))
    fig = Figure(figsize=(3.4 * cols, 2.6 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    names = list(columns)
    colors = ["tab:blue"] * len(records) + ["tab:green", "tab:olive"]
    for ax, (key, label) in zip(axes, keys, strict=False):
        vals = [_value(columns[n].get(key)) for n in names]
        ax.bar(range(len(names)), [v[0] for v in vals], yerr=[v[1] or 0 for v in vals], color=colors, capsize=3)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[len(keys):]:
        ax.set_axis_off()
    return fig


def class_share_figure(records: dict[str, dict[str, Any]], ceilings_: dict[str, dict[str, Any]]):
    """The share of clips the classifier puts in each class: each run beside real test clips."""
    from matplotlib.figure import Figure

    columns = {**records, "real test": ceilings_["real_test"]}
    classes = list(ceilings_["real_test"]["class_share"])
    fig = Figure(figsize=(min(14, 2 + 0.45 * len(classes) * len(columns) ** 0.5), 3), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(columns)
    x = np.arange(len(classes))
    for i, (name, rec) in enumerate(columns.items()):
        share = [rec["class_share"].get(c, 0.0) for c in classes]
        ax.bar(x + i * width - 0.4 + width / 2, share, width, label=name,
               color="tab:green" if name == "real test" else None)
    ax.set_xticks(x, classes, fontsize=7, rotation=90 if len(classes) > 12 else 0)
    ax.set_ylabel("share of clips")
    ax.set_title("predicted classes", fontsize=9)
    ax.legend(fontsize=7)
    return fig


# ---------------------------------------------------------------------------- during training
EVAL_COLUMNS = ("eval_is", "eval_fd", "eval_ndb_k", "eval_d_self")
BEST_FILE = "best.json"


class TrainingScorer:
    """Scores a run every ``eval_every`` steps for ``metrics.csv`` (columns ``EVAL_COLUMNS``, NaN
    on rows in between) and says when the Fréchet distance is the best so far, so the loop keeps
    that checkpoint. The best score survives a restart in ``RUN/best.json``."""

    def __init__(self, config: RunConfig, dataset: datasets.Dataset | None, run, *, root=None, progress=False):
        self.config = config
        self.run = run
        self.settings = EvalSettings(
            n_clips=config.eval_clips, splits=min(10, config.eval_clips // 2),
            ndb_bins=min(50, max(2, config.eval_clips // 10)),
        )
        self.reference = build_reference(config, self.settings, dataset=dataset, root=root, progress=progress)
        best_path = run.path / BEST_FILE
        self.best = json.loads(best_path.read_text()) if best_path.is_file() else None

    def due(self, step: int) -> bool:
        return self.config.eval_every > 0 and step % self.config.eval_every == 0

    def row(self, step: int, gan, state) -> tuple[dict[str, float], bool]:
        """The eval columns for this step's row, and whether this step is the best so far."""
        if not self.due(step):
            return {c: float("nan") for c in EVAL_COLUMNS}, False
        clips = generate_clips(gan, state, self.settings.n_clips, seed=step)
        if not np.all(np.isfinite(clips)):
            return {c: float("nan") for c in EVAL_COLUMNS}, False
        s = score_clips(clips, self.reference, pitch=False)
        row = {"eval_is": s["is"]["mean"], "eval_fd": s["fd"], "eval_ndb_k": s["ndb_k"],
               "eval_d_self": s["d_self"]["mean"]}
        improved = self.best is None or row["eval_fd"] < self.best["eval_fd"]
        if improved:
            self.best = {"step": step, **row}
        return row, improved

    def record_best(self) -> None:
        """Called once the best checkpoint is on disk."""
        self.run.write_json(BEST_FILE, self.best)
