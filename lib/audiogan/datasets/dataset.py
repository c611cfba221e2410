"""The :class:`Dataset` type: fixed-length mono clips at one sample rate, with per-clip labels."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from audiogan.audio import rms_db
from audiogan.errors import DataError

PEAK = 0.95  # clips are peak-normalised to this level


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
