"""Sources of audio, turned into fixed-length clips, cached once, served as shuffled batches.

A dataset is named by ``dataset=`` in a run's config: an embedded generator (``"digits"``,
``"tones"``, ``"drums"``), made on the spot so nothing is downloaded, or a folder of audio files
(wav, flac, ogg, mp3, searched recursively, read in blocks; ``"sc09:/path"`` for the SC09 layout).
Either way the result is a :class:`Dataset` of float32 clips in [-1, 1], all at one sample rate and
one length, with per-clip labels (``digit``, ``voice``, ``split`` ...), cached as ``.npy`` under
the cache folder and keyed by every setting that made it (and, for folders, by each file's path,
size and modification time). The generators and the folder reader live in ``audiogan.datasets``;
``data/README.md`` describes each dataset.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from audiogan.audio import AUDIO_EXTENSIONS, rms_db
from audiogan.config import ConfigError, RunConfig
from audiogan.datasets import folders
from audiogan.files import atomic_path, atomic_write_text

PEAK = 0.95  # clips are peak-normalised to this level
SILENCE_DB = -60.0  # clips quieter than this (RMS, dBFS, before normalising) are dropped

# The embedded tones: integer MIDI notes drawn uniformly from TONE_MIDI_RANGE (inclusive), i.e.
# C3 (130.8 Hz) to C5 (523.3 Hz), equal temperament with A4 = 440 Hz.
TONE_MIDI_RANGE = (48, 72)
EMBEDDED = ("tones", "digits", "drums")
# n_clips=None gives each embedded dataset this size (for digits: the training clips; validation
# and test add 10% each).
DEFAULT_SIZES = {"tones": 2048, "digits": 5000, "drums": 2048}


class DataError(ValueError):
    """A dataset cannot be built; the message names the folder or file and what to do."""


@dataclasses.dataclass
class Dataset:
    """Fixed-length mono clips and what is known about each one."""

    name: str
    clips: np.ndarray  # (n, clip_samples) float32 in [-1, 1]
    sample_rate: int
    labels: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # per-clip arrays
    info: dict[str, Any] = dataclasses.field(default_factory=dict)  # settings, sources, skipped

    def __len__(self) -> int:
        return len(self.clips)

    def subset(self, split: str) -> Dataset:
        """The clips of one split (``"train"``, ``"validation"``, ``"test"``) with their labels;
        a dataset without splits is all training data, so it comes back whole for ``"train"``."""
        if "split" not in self.labels:
            if split == "train":
                return self
            raise DataError(f"dataset {self.name!r} has no {split!r} split; it is all training data.")
        keep = self.labels["split"] == split
        if not keep.any():
            raise DataError(f"dataset {self.name!r} has no clips in split {split!r}.")
        return Dataset(
            name=self.name, clips=self.clips[keep], sample_rate=self.sample_rate,
            labels={k: v[keep] for k, v in self.labels.items()}, info=self.info | {"subset": split},
        )

    @property
    def clip_samples(self) -> int:
        return self.clips.shape[1]

    @property
    def duration_s(self) -> float:
        return self.clips.size / self.sample_rate


def midi_to_hz(midi) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69) / 12)


# ---------------------------------------------------------------------------- embedded sources
def make_tones(
    n_clips: int, sample_rate: int, clip_samples: int, seed: int = 0,
    midi_range: tuple[int, int] = TONE_MIDI_RANGE,
) -> Dataset:
    """Harmonic tones with a random pitch, timbre and envelope, labelled with their pitch.

    Pitch distribution: the MIDI note of each clip is drawn independently and uniformly from the
    integers in ``midi_range`` (inclusive; by default 48-72, i.e. the 25 equal-tempered notes C3 =
    130.8 Hz to C5 = 523.3 Hz with A4 = 440 Hz, each with probability 1/25), so pitch is uniform
    on a log-frequency (semitone) scale. Labels: ``midi`` (int32) and ``pitch_hz`` (float32).

    Each clip: its note; 1-8 harmonics with amplitudes
    falling as k**-rolloff (rolloff uniform in [1, 2]) and random phases, harmonics above Nyquist
    left out; an attack of 5-50 ms, an exponential decay towards a sustain level of 0.3-1, and a
    10 ms release at the end of the clip. Peak-normalised to 0.95.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(clip_samples) / sample_rate
    midi = rng.integers(midi_range[0], midi_range[1] + 1, size=n_clips)
    f0 = midi_to_hz(midi)
    clips = np.empty((n_clips, clip_samples), dtype=np.float32)
    for i in range(n_clips):
        n_harm = int(rng.integers(1, 9))
        rolloff = rng.uniform(1.0, 2.0)
        k = np.arange(1, n_harm + 1)
        k = k[k * f0[i] < sample_rate / 2]
        phase = rng.uniform(0, 2 * np.pi, size=len(k))
        wave = ((k[:, None] ** -rolloff) * np.sin(2 * np.pi * f0[i] * k[:, None] * t + phase[:, None])).sum(0)
        attack = rng.uniform(0.005, 0.05)
        sustain = rng.uniform(0.3, 1.0)
        decay = rng.uniform(0.05, 0.5)
        env = np.where(t < attack, t / attack, sustain + (1 - sustain) * np.exp(-(t - attack) / decay))
        release = np.clip((t[-1] - t) / 0.01, 0, 1)
        clip = wave * env * release
        clips[i] = PEAK * clip / np.max(np.abs(clip))
    return Dataset(
        name="tones", clips=clips, sample_rate=sample_rate,
        labels={"midi": midi.astype(np.int32), "pitch_hz": f0.astype(np.float32)},
        info={"midi_range": list(midi_range),
              "pitch_range_hz": [float(midi_to_hz(m)) for m in midi_range]},
    )


# ---------------------------------------------------------------------------- folders
SC09_PREFIX = "sc09:"


def list_audio_files(folder: str | os.PathLike) -> list[Path]:
    """Audio files under ``folder``, recursively (links followed, loops cut), in a stable order."""
    return folders.scan(folder).files


def slice_clips(wav: np.ndarray, clip_samples: int, mode: str = "first") -> np.ndarray:
    """Cut one recording into clips of ``clip_samples``.

    ``"first"``: the first clip only. ``"all"``: every whole clip, plus the remainder when it is at
    least half a clip. A recording shorter than one clip is zero-padded at the end.
    """
    n = len(wav)
    if n <= clip_samples:
        return np.pad(wav, (0, clip_samples - n))[None, :]
    if mode == "first":
        return wav[None, :clip_samples]
    n_whole = n // clip_samples
    clips = [wav[i * clip_samples:(i + 1) * clip_samples] for i in range(n_whole)]
    rest = wav[n_whole * clip_samples:]
    if len(rest) and len(rest) >= clip_samples // 2:
        clips.append(np.pad(rest, (0, clip_samples - len(rest))))
    return np.stack(clips)


def normalise_clips(clips: np.ndarray, silence_db: float = SILENCE_DB) -> tuple[np.ndarray, np.ndarray]:
    """Drop near-silent clips and peak-normalise the rest; returns (clips, kept mask)."""
    keep = rms_db(clips) >= silence_db
    kept = clips[keep].astype(np.float32)
    peak = np.max(np.abs(kept), axis=1, keepdims=True) if len(kept) else np.ones((0, 1))
    return (PEAK * kept / peak).astype(np.float32), keep


def parse_source(dataset: str) -> tuple[Path, str | None]:
    """``"sc09:/path"`` -> (folder, "sc09"); a plain path -> (folder, None)."""
    if dataset.lower().startswith(SC09_PREFIX):
        return Path(dataset[len(SC09_PREFIX):]).expanduser(), "sc09"
    return Path(dataset).expanduser(), None


def _bad(path, reason: str, on_error: str, report: list[dict[str, str]]) -> None:
    if on_error == "raise":
        raise DataError(
            f"{path}: {reason}. Fix or remove this file, or set on_error='skip' to leave bad files out "
            "and list them in the dataset's report."
        )
    report.append({"file": str(path), "reason": reason})


def load_folder(
    folder: str | os.PathLike, sample_rate: int, clip_samples: int, slices: str = "first",
    files: list[Path] | None = None, on_error: str = "skip", layout: str | None = None,
) -> Dataset:
    """Every audio file under ``folder`` as clips, read in blocks (see ``audiogan.datasets.folders``).

    A file that cannot be used is skipped and listed with its reason in ``info["skipped"]``
    (``on_error="skip"``), or stops the load with a :class:`DataError` naming it (``"raise"``);
    so are files whose every clip is silent. Files that were used with a caveat (a truncated WAV)
    are listed in ``info["notes"]``. When every file follows the SC09 or Speech Commands layout
    (or ``layout="sc09"`` demands it) the clips are labelled ``word`` (and ``digit`` when all
    words are digits), ``speaker`` and, where the layout says, ``split``.
    """
    from tqdm.auto import tqdm

    folder = Path(folder)
    skipped: list[dict[str, str]] = []
    notes: list[dict[str, str]] = []
    if files is None:
        found = folders.scan(folder)
        files = found.files
        for problem in found.problems:
            _bad(problem["file"], problem["reason"], on_error, skipped)
    files, labelled = _apply_layout(folder, files, layout, on_error, skipped, notes)
    clips, sources, silent_files = [], [], 0
    for i, path in enumerate(tqdm(files, desc=f"reading {folder.name}", disable=len(files) < 200)):
        try:
            cut, note = folders.read_clips(path, sample_rate, clip_samples, slices)
        except folders.BadFile as exc:
            _bad(path, str(exc), on_error, skipped)
            continue
        if note:
            notes.append({"file": str(path), "reason": note})
        keep = rms_db(cut) >= SILENCE_DB
        if not keep.any():
            silent_files += 1
            _bad(path, f"silent: every clip is below {SILENCE_DB:.0f} dBFS RMS", on_error, skipped)
        clips.append(cut)
        sources.extend([i] * len(cut))
    if clips:
        clips_arr, keep = normalise_clips(np.concatenate(clips))
        sources_arr = np.asarray(sources, dtype=np.int32)[keep]
    else:
        clips_arr, sources_arr = np.zeros((0, clip_samples), np.float32), np.zeros(0, np.int32)
    n_silent = len(sources) - len(sources_arr)
    if len(clips_arr) == 0:
        reasons = "; ".join(f"{s['file']}: {s['reason']}" for s in skipped[:5])
        raise DataError(
            f"no usable audio in {folder}: {len(files)} audio file(s) found, "
            f"{len(skipped) - silent_files} unreadable, {n_silent} clip(s) silent. {reasons} Put readable "
            f"{'/'.join(e[1:] for e in AUDIO_EXTENSIONS)} files there or choose another dataset."
        )
    if skipped:
        warnings.warn(
            f"{len(skipped)} file(s) in {folder} were skipped, e.g. {skipped[0]['file']} "
            f"({skipped[0]['reason']}); the dataset's report lists them all", stacklevel=2,
        )
    labels = {"file_index": sources_arr}
    info: dict[str, Any] = {"files": [str(p) for p in files], "skipped": skipped, "notes": notes,
                            "silent_clips": n_silent}
    if labelled:
        info["layout"] = labelled["layout"]
        for name in ("word", "speaker", "split", "digit"):
            if name in labelled:
                labels[name] = np.asarray(labelled[name])[sources_arr]
    return Dataset(name=str(folder), clips=clips_arr, sample_rate=sample_rate, labels=labels, info=info)


def _apply_layout(folder, files, layout, on_error, skipped, notes):
    """The files to read and their labels when the folder follows the SC09 / Speech Commands layout."""
    background = [f for f in files if folders.BACKGROUND in f.relative_to(folder).parts]
    if background:
        notes.append({"file": str(folder / folders.BACKGROUND),
                      "reason": f"{len(background)} background-noise recording(s), not words: left out"})
        files = [f for f in files if f not in background]
    if layout == "sc09":
        kept = []
        for path in files:
            found = folders.file_label(path.relative_to(folder))
            if found is None:
                _bad(path, "its name and folder follow neither the SC09 (Seven_1a2b3c4d_nohash_0.wav) nor "
                     "the Speech Commands (seven/1a2b3c4d_nohash_0.wav) layout", on_error, skipped)
            elif found[0] in folders.DIGIT_WORDS:
                kept.append(path)
        if len(kept) < len(files):
            n_other = len(files) - len(kept) - sum(1 for s in skipped if s["reason"].startswith("its name"))
            if n_other:
                notes.append({"file": str(folder), "reason": f"{n_other} file(s) of words other than the "
                              "ten digits: left out of SC09"})
        files = kept
    labelled = folders.detect_layout(folder, files)
    if labelled is None:
        return files, None
    if layout == "sc09":
        labelled["layout"] = "sc09"
    if all(w in folders.DIGIT_WORDS for w in labelled["word"]):
        labelled["digit"] = [folders.DIGIT_WORDS.index(w) for w in labelled["word"]]
    if any(s is not None for s in labelled["split"]):
        labelled["split"] = [s or "train" for s in labelled["split"]]
    else:
        del labelled["split"]
    return files, labelled


# ---------------------------------------------------------------------------- naming and caching
def check_source(dataset: str) -> str:
    """Validate ``dataset=``: an embedded name, or a folder (``"sc09:"`` + folder for the SC09
    layout) with at least one readable file."""
    if dataset in EMBEDDED:
        return dataset
    folder, _ = parse_source(dataset)
    if not folder.exists():
        raise ConfigError(
            f"dataset={dataset!r} is neither an embedded dataset ({', '.join(EMBEDDED)}) nor an "
            "existing folder. Choose an embedded name or give the path of a folder of audio files "
            "('sc09:/path' for the SC09 layout)."
        )
    if not folder.is_dir():
        raise ConfigError(f"dataset={dataset!r} is a file; give the folder that holds audio files.")
    files = list_audio_files(folder)
    if not files:
        raise ConfigError(
            f"dataset={dataset!r}: the folder holds no audio files "
            f"({', '.join(AUDIO_EXTENSIONS)}, searched recursively)."
        )
    for path in files[:50]:
        try:
            next(folders.read_blocks(path, 8000, max_frames=64))
            return dataset
        except (folders.BadFile, StopIteration):
            continue
    raise ConfigError(
        f"dataset={dataset!r}: none of the first {min(len(files), 50)} audio file(s) in the folder "
        f"can be read (e.g. {files[0]}). Check that they are real, non-empty audio files."
    )


def cache_dir() -> Path:
    """``$AUDIOGAN_CACHE_DIR``, else ``data/cache`` of this checkout, else ``~/.cache/audiogan``."""
    if os.environ.get("AUDIOGAN_CACHE_DIR"):
        return Path(os.environ["AUDIOGAN_CACHE_DIR"])
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "data").is_dir() and (checkout / "pyproject.toml").is_file():
        return checkout / "data" / "cache"
    return Path.home() / ".cache" / "audiogan"


def _cache_key(settings: dict[str, Any]) -> str:
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def dataset_size(config: RunConfig) -> int:
    """``n_clips``, or the embedded dataset's default size when it is None."""
    return config.n_clips if config.n_clips is not None else DEFAULT_SIZES.get(config.dataset, 0)


def dataset_settings(config: RunConfig) -> dict[str, Any]:
    """Everything that decides a dataset's contents, for the cache key and ``config.json``."""
    settings: dict[str, Any] = {
        "dataset": config.dataset, "sample_rate": config.sample_rate,
        "clip_samples": config.clip_samples, "format": 2,
    }
    if config.dataset == "tones":
        settings.update(n_clips=dataset_size(config), seed=config.seed, midi_range=list(TONE_MIDI_RANGE))
    elif config.dataset == "digits":
        from audiogan.datasets import digits

        settings.update(n_clips=dataset_size(config), seed=config.seed, version=digits.VERSION)
    elif config.dataset == "drums":
        settings.update(n_clips=dataset_size(config), seed=config.seed, version=1)
    else:
        folder, layout = parse_source(config.dataset)
        folder = folder.resolve()
        settings.update(dataset=str(folder), slices=config.slices, peak=PEAK, silence_db=SILENCE_DB,
                        layout=layout, reader=2)
        settings["files"] = [
            [str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns]
            for p in list_audio_files(folder)
        ]
    return settings


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_cache(clips_path: Path, labels_path: Path, meta_path: Path, settings: dict, sample_rate: int) -> Dataset:
    """The cached dataset; raises when any of its three files is missing, damaged or stale."""
    meta = json.loads(meta_path.read_text())
    if meta["settings"] != json.loads(json.dumps(settings)):
        raise ValueError("its settings do not match")
    for name, path in (("clips", clips_path), ("labels", labels_path)):
        if _sha256(path) != meta["sha256"][name]:
            raise ValueError(f"{path.name} does not match its checksum")
    clips = np.load(clips_path)
    with np.load(labels_path) as stored:
        labels = {k: stored[k] for k in stored.files}
    if clips.shape != tuple(meta["shape"]) or any(len(v) != len(clips) for v in labels.values()):
        raise ValueError(f"shape {clips.shape} instead of {tuple(meta['shape'])}")
    return Dataset(name=meta["name"], clips=clips, sample_rate=sample_rate, labels=labels,
                   info=meta["info"] | {"cache": str(clips_path), "from_cache": True})


def load_dataset(config: RunConfig, use_cache: bool = True) -> Dataset:
    """Build the dataset a run asks for, or read it from the cache when it was built before."""
    check_source(config.dataset)
    settings = dataset_settings(config)
    stem = (config.dataset if config.dataset in EMBEDDED else parse_source(config.dataset)[0].name) + "-"
    key = stem + _cache_key(settings)
    folder = cache_dir()
    clips_path, labels_path = folder / f"{key}.npy", folder / f"{key}.labels.npz"
    meta_path = folder / f"{key}.json"
    if use_cache and clips_path.is_file() and meta_path.is_file():
        try:
            cached = _read_cache(clips_path, labels_path, meta_path, settings, config.sample_rate)
        except Exception as exc:  # noqa: BLE001 - a damaged cache is rebuilt
            why = f"{type(exc).__name__}: {exc}" if isinstance(exc, KeyError) else str(exc)
            warnings.warn(f"cache {clips_path} is damaged ({why}); rebuilding it", stacklevel=2)
        else:
            if config.on_error == "raise" and cached.info.get("skipped"):
                bad = cached.info["skipped"][0]
                _bad(bad["file"], bad["reason"], "raise", [])
            return cached
    if config.dataset == "tones":
        data = make_tones(dataset_size(config), config.sample_rate, config.clip_samples, config.seed)
    elif config.dataset == "digits":
        from audiogan.datasets.digits import make_digits

        data = make_digits(dataset_size(config), config.sample_rate, config.clip_samples, config.seed)
    elif config.dataset == "drums":
        from audiogan.datasets.drums import make_drums

        data = make_drums(dataset_size(config), config.sample_rate, config.clip_samples, config.seed)
    else:
        data = load_folder(
            settings["dataset"], config.sample_rate, config.clip_samples, config.slices,
            on_error=config.on_error, layout=settings["layout"],
        )
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(clips_path) as tmp:
        np.save(tmp, data.clips)
    with atomic_path(labels_path) as tmp:
        np.savez(tmp, **data.labels)
    # The settings file goes last: a cache without it is incomplete and is rebuilt. Its checksums
    # catch a damaged clips or labels file.
    meta = {"name": data.name, "shape": list(data.clips.shape), "settings": settings, "info": data.info,
            "sha256": {"clips": _sha256(clips_path), "labels": _sha256(labels_path)}}
    atomic_write_text(meta_path, json.dumps(meta))
    data.info = data.info | {"cache": str(clips_path), "from_cache": False}
    return data


# ---------------------------------------------------------------------------- batches
class Batches:
    """Seeded, shuffled batches of distinct clips, addressable by training step.

    Step ``s`` reads batch ``s % per_epoch`` of epoch ``s // per_epoch``, whose order is a
    permutation drawn from ``(seed, epoch)``. The batch for a step is therefore fixed by the seed
    alone, so a resumed run sees exactly the batches an uninterrupted one would.
    """

    def __init__(self, clips: np.ndarray, batch_size: int, seed: int):
        if len(clips) < batch_size:
            raise ConfigError(
                f"batch_size={batch_size} is larger than the dataset ({len(clips)} clips); every "
                "example of a batch must be a different clip. Lower batch_size or use more clips "
                "(n_clips for embedded datasets)."
            )
        self.clips = clips
        self.batch_size = batch_size
        self.seed = seed
        self.per_epoch = len(clips) // batch_size
        self._epoch, self._order = -1, None

    def indices(self, step: int) -> np.ndarray:
        epoch, i = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self._order = np.random.default_rng([self.seed, epoch]).permutation(len(self.clips))
            self._epoch = epoch
        return self._order[i * self.batch_size:(i + 1) * self.batch_size]

    def __getitem__(self, step: int) -> np.ndarray:
        return self.clips[self.indices(step)]

    def iterate(self, start: int = 0) -> Iterator[np.ndarray]:
        step = start
        while True:
            yield self[step]
            step += 1


# ---------------------------------------------------------------------------- describing
# Labels that name a class, in the order of preference for "the" label of a clip.
CLASS_LABELS = ("digit", "word", "drum", "midi")


def class_label(dataset: Dataset) -> str | None:
    """The name of the label that says what a clip is (``digit``, ``word``, ``drum``, ``midi``)."""
    return next((name for name in CLASS_LABELS if name in dataset.labels), None)


def class_indices(dataset: Dataset) -> tuple[tuple[str, ...], np.ndarray]:
    """The dataset's classes (the values of its class label, sorted, as text) and each clip's class
    as an index into them, for a run with ``conditional=True``."""
    name = class_label(dataset)
    if name is None:
        raise DataError(
            f"conditional=True needs clips that carry a class, but dataset {dataset.name!r} has none "
            f"(its labels: {', '.join(sorted(dataset.labels)) or 'none'}). Use an embedded dataset "
            "(tones, digits, drums) or a folder in the Speech Commands layout (word/file.wav), or set "
            "conditional=False."
        )
    values, index = np.unique(dataset.labels[name], return_inverse=True)
    if len(values) < 2:
        raise DataError(
            f"conditional=True needs at least 2 classes, but every clip of dataset {dataset.name!r} "
            f"has {name} {values[0]!r}; set conditional=False."
        )
    return tuple(str(v) for v in values.tolist()), index.astype(np.int32)


def label_counts(dataset: Dataset) -> dict[str, dict[str, int]]:
    """Clips per class and split: ``{split: {class: count}}`` (split ``"all"`` when there are none)."""
    name = class_label(dataset)
    splits = dataset.labels.get("split", np.full(len(dataset), "all"))
    classes = dataset.labels[name] if name else np.full(len(dataset), "(unlabelled)")
    counts: dict[str, dict[str, int]] = {}
    for split in dict.fromkeys(splits.tolist()):  # first-seen order: train, validation, test
        values, n = np.unique(classes[splits == split], return_counts=True)
        counts[str(split)] = {str(v): int(c) for v, c in zip(values.tolist(), n.tolist(), strict=True)}
    return counts


def summarise(dataset: Dataset) -> dict[str, Any]:
    """Counts, durations and levels of a dataset, as 01_data shows and stores them."""
    levels = rms_db(dataset.clips)
    summary: dict[str, Any] = {
        "name": dataset.name,
        "clips": len(dataset),
        "sample_rate": dataset.sample_rate,
        "clip_samples": dataset.clip_samples,
        "clip_seconds": dataset.clip_samples / dataset.sample_rate,
        "total_minutes": round(dataset.duration_s / 60, 2),
        "rms_db": {"min": float(levels.min()), "median": float(np.median(levels)),
                   "max": float(levels.max())},
        "labels": sorted(dataset.labels),
        "from_cache": dataset.info.get("from_cache"),
        "cache": dataset.info.get("cache"),
    }
    summary["class_label"] = class_label(dataset)
    summary["counts"] = label_counts(dataset)
    if "split" in dataset.labels:
        summary["splits"] = {k: sum(v.values()) for k, v in summary["counts"].items()}
    if "voice" in dataset.labels:
        summary["voices"] = {
            split: int(len(np.unique(dataset.labels["voice"][dataset.labels["split"] == split])))
            for split in summary["splits"]
        }
    if "build_seconds" in dataset.info:
        summary["build_seconds"] = dataset.info["build_seconds"]
    if "pitch_hz" in dataset.labels:
        pitch = dataset.labels["pitch_hz"]
        summary["pitch_hz"] = {"min": float(pitch.min()), "max": float(pitch.max()),
                               "distinct": int(len(np.unique(pitch)))}
        summary["pitch_range_hz"] = dataset.info.get("pitch_range_hz")
    if "files" in dataset.info:
        summary["files"] = len(dataset.info["files"])
        summary["skipped_files"] = dataset.info.get("skipped", [])
        summary["silent_clips_dropped"] = dataset.info.get("silent_clips", 0)
    return summary


def clip_titles(dataset: Dataset, indices) -> list[str]:
    """A short human label for each clip: its pitch for tones, its file for folders."""
    titles = []
    for i in indices:
        if "digit" in dataset.labels and "voice" in dataset.labels:
            split = f" ({dataset.labels['split'][i]})" if "split" in dataset.labels else ""
            titles.append(f"#{i}: {dataset.labels['digit'][i]}, {dataset.labels['voice'][i]}{split}")
        elif "drum" in dataset.labels:
            titles.append(f"#{i}: {dataset.labels['drum'][i]}")
        elif "midi" in dataset.labels:
            titles.append(f"#{i}: MIDI {dataset.labels['midi'][i]}, {dataset.labels['pitch_hz'][i]:.1f} Hz")
        elif "file_index" in dataset.labels and "files" in dataset.info:
            titles.append(f"#{i}: {Path(dataset.info['files'][dataset.labels['file_index'][i]]).name}")
        else:
            titles.append(f"#{i}")
    return titles
