"""Where clips come from, one module per source, and the one function a run calls: :func:`load_dataset`.

A dataset is named by ``dataset=`` in a run's config: an embedded source made on the spot so nothing
is downloaded (:data:`SOURCES`: ``tones``, ``digits`` through eSpeak NG, ``drums``), or a folder of
audio files (``folders``: wav, flac, ogg, mp3, searched recursively, read in blocks; ``"sc09:/path"``
for the SC09 layout; a folder with ``wavs/`` and ``metadata.csv`` in the LJSpeech layout, with its
transcripts (``ljspeech``); ``"fsdd:/path"``, or any folder named that way, for the Free Spoken Digit
Dataset, labelled from its file names by ``naming``). Either way the result is a :class:`Dataset` of
float32 clips in [-1, 1] at one sample rate and length, with per-clip labels, cached (``cache``)
under a key of every setting that made it (for folders, each file's path, size and modification
time). ``data/README.md`` describes each dataset. Functions here read a run's config by its data
fields only (``dataset``, ``sample_rate``, ``clip_samples``, ``n_clips``, ``seed``, ``slices``,
``on_error``, ``name_pattern``).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from audiogan.audio import AUDIO_EXTENSIONS
from audiogan.datasets import cache, digits, drums, folders, ljspeech, naming
from audiogan.datasets.batches import Batches
from audiogan.datasets.dataset import (
    CLASS_LABELS,
    PEAK,
    Dataset,
    class_indices,
    class_label,
    clip_titles,
    label_counts,
    summarise,
)
from audiogan.datasets.folders import SILENCE_DB, list_audio_files, load_folder, parse_source, slice_clips
from audiogan.datasets.naming import NamePattern
from audiogan.datasets.tones import TONE_MIDI_RANGE, make_tones, midi_to_hz
from audiogan.errors import ConfigError, DataError


@dataclasses.dataclass(frozen=True)
class Source:
    """An embedded dataset: ``make(n_clips, sample_rate, clip_samples, seed) -> Dataset``, its default
    size, and the settings beyond those that decide its contents (part of the cache key)."""

    make: Callable[..., Dataset]
    default_size: int
    version: dict[str, Any]


SOURCES: dict[str, Source] = {
    "tones": Source(make_tones, 2048, {"midi_range": list(TONE_MIDI_RANGE)}),
    "digits": Source(digits.make_digits, digits.DEFAULT_TRAIN_CLIPS, {"version": digits.VERSION}),
    "drums": Source(drums.make_drums, 2048, {"version": 1}),
}
EMBEDDED = tuple(SOURCES)


def source_of(dataset: str, name_pattern: str | None = None) -> tuple[Path, str | None, NamePattern | None]:
    """A folder source: the folder, its layout for the folder reader (``"sc09"`` or None) and the
    pattern its file names are labelled by (``"fsdd:PATH"``, or ``name_pattern``)."""
    if dataset.lower().startswith(naming.FSDD_PREFIX):
        return Path(dataset[len(naming.FSDD_PREFIX):]).expanduser(), None, naming.FSDD
    folder, layout = folders.parse_source(dataset)
    return folder, layout, (NamePattern(name_pattern) if name_pattern else None)


def check_source(dataset: str) -> str:
    """Validate ``dataset=``: an embedded name, or a folder (``"sc09:"`` + folder for the SC09
    layout, ``"fsdd:"`` + folder for the Free Spoken Digit Dataset) with at least one readable file."""
    if dataset in EMBEDDED:
        return dataset
    folder, _, _ = source_of(dataset)
    if not folder.exists():
        raise ConfigError(
            f"dataset={dataset!r} is neither an embedded dataset ({', '.join(EMBEDDED)}) nor an "
            "existing folder. Choose an embedded name or give the path of a folder of audio files "
            "('sc09:/path' for the SC09 layout, 'fsdd:/path' for the Free Spoken Digit Dataset)."
        )
    if not folder.is_dir():
        raise ConfigError(f"dataset={dataset!r} is a file; give the folder that holds audio files.")
    files = folders.list_audio_files(folder)
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


def dataset_size(config) -> int:
    """``n_clips``, or the embedded dataset's default size when it is None."""
    if config.n_clips is not None:
        return config.n_clips
    return SOURCES[config.dataset].default_size if config.dataset in SOURCES else 0


def dataset_settings(config) -> dict[str, Any]:
    """Everything that decides a dataset's contents, for the cache key and ``config.json``."""
    settings: dict[str, Any] = {
        "dataset": config.dataset, "sample_rate": config.sample_rate,
        "clip_samples": config.clip_samples, "format": 2,
    }
    if config.dataset in SOURCES:
        settings.update(n_clips=dataset_size(config), seed=config.seed, **SOURCES[config.dataset].version)
    else:
        folder, layout, pattern = source_of(config.dataset, getattr(config, "name_pattern", None))
        folder = folder.resolve()
        files = folders.list_audio_files(folder)
        if layout is None and ljspeech.is_ljspeech(folder):
            layout = "ljspeech"
        if pattern is None and layout is None:
            pattern = naming.detect(files)
        settings.update(dataset=str(folder), slices=config.slices, peak=PEAK, silence_db=SILENCE_DB,
                        layout=layout, reader=2)
        if pattern is not None:
            settings["naming"] = dataclasses.asdict(pattern)
        settings["files"] = [[str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    return settings


def _label_by_name(data: Dataset, pattern: NamePattern) -> Dataset:
    """``data``'s clips labelled from their files' names; clips of files that do not match are left
    out and their files listed in ``info["skipped"]``."""
    files = data.info["files"]
    by_file, unmatched = pattern.labels(files)
    if not by_file:
        raise DataError(f"no file name in {data.name} matches name_pattern={pattern.regex!r} "
                        f"(e.g. {Path(files[0]).name}); fix the pattern or leave it out.")
    row = np.full(len(files), -1)
    row[[i for i in range(len(files)) if i not in set(unmatched)]] = np.arange(len(files) - len(unmatched))
    keep = row[data.labels["file_index"]] >= 0
    rows = row[data.labels["file_index"][keep]]
    skipped = [{"file": files[i], "reason": f"its name does not match name_pattern={pattern.regex!r}"}
               for i in unmatched]
    labels = {k: v[keep] for k, v in data.labels.items()} | {k: v[rows] for k, v in by_file.items()}
    info = data.info | {"skipped": data.info.get("skipped", []) + skipped, "naming": pattern.regex}
    return Dataset(name=data.name, clips=data.clips[keep], sample_rate=data.sample_rate, labels=labels, info=info)


def load_dataset(config, use_cache: bool = True) -> Dataset:
    """Build the dataset a run asks for, or read it from the cache when it was built before."""
    check_source(config.dataset)
    settings = dataset_settings(config)
    stem = config.dataset if config.dataset in SOURCES else Path(settings["dataset"]).name
    paths = cache.CachePaths(f"{stem}-{cache.cache_key(settings)}")
    if use_cache and paths.complete():
        try:
            cached = cache.read(paths, settings, config.sample_rate)
        except Exception as exc:  # noqa: BLE001 - a damaged cache is rebuilt
            why = f"{type(exc).__name__}: {exc}" if isinstance(exc, KeyError) else str(exc)
            warnings.warn(f"cache {paths.clips} is damaged ({why}); rebuilding it", stacklevel=2)
        else:
            if config.on_error == "raise" and cached.info.get("skipped"):
                bad = cached.info["skipped"][0]
                folders.bad_file(bad["file"], bad["reason"], "raise", [])
            return cached
    if config.dataset in SOURCES:
        data = SOURCES[config.dataset].make(dataset_size(config), config.sample_rate, config.clip_samples,
                                            config.seed)
    elif settings["layout"] == "ljspeech":
        data = ljspeech.load_ljspeech(settings["dataset"], config.sample_rate, config.clip_samples, config.slices,
                                      on_error=config.on_error)
    else:
        data = load_folder(
            settings["dataset"], config.sample_rate, config.clip_samples, config.slices,
            on_error=config.on_error, layout=settings["layout"],
        )
        if "naming" in settings:
            data = _label_by_name(data, NamePattern(**settings["naming"]))
    cache.write(paths, data, settings)
    data.info = data.info | {"cache": str(paths.clips), "from_cache": False}
    return data


__all__ = [
    "CLASS_LABELS", "EMBEDDED", "PEAK", "SILENCE_DB", "SOURCES", "TONE_MIDI_RANGE", "Batches", "ConfigError",
    "DataError", "Dataset", "NamePattern", "Source", "check_source", "class_indices", "class_label", "clip_titles",
    "dataset_settings", "dataset_size", "label_counts", "list_audio_files", "load_dataset", "load_folder",
    "make_tones", "midi_to_hz", "parse_source", "slice_clips", "source_of", "summarise",
]
