"""An LJSpeech-style folder: ``wavs/<id>.wav`` and ``metadata.csv`` with ``id|text|normalised text``.

Each recording listed in ``metadata.csv`` is cut into clips of ``clip_samples`` (``slices="all"``:
every whole clip and a remainder of at least half a clip, zero-padded; ``"first"``: the first only),
labelled with its ``id``, ``text`` and ``normalized_text`` and ``file_index``. HiFi-GAN's file lists
(``training.txt`` and ``validation.txt``, lines ``id|text``) in the folder, when present, give each clip
a ``split`` (``train`` / ``validation``). Clips are peak-normalised and silent ones dropped, as for
any folder (:mod:`audiogan.datasets.folders`).
"""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path

import numpy as np

from audiogan.audio.io import BadFile
from audiogan.datasets.dataset import Dataset
from audiogan.datasets.folders import bad_file, normalise_clips, read_clips
from audiogan.errors import DataError

METADATA = "metadata.csv"
FILE_LISTS = {"training.txt": "train", "validation.txt": "validation"}  # HiFi-GAN's LJSpeech split


def is_ljspeech(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is laid out as LJSpeech: ``metadata.csv`` beside a ``wavs/`` folder."""
    return (Path(folder) / METADATA).is_file() and (Path(folder) / "wavs").is_dir()


def read_metadata(folder: str | os.PathLike) -> list[tuple[str, str, str]]:
    """``(id, text, normalised text)`` per line of ``metadata.csv`` (quotes are part of the text)."""
    path = Path(folder) / METADATA
    if not path.is_file():
        raise DataError(f"{folder} has no {METADATA}: an LJSpeech-style folder holds wavs/<id>.wav and "
                        f"{METADATA} with lines id|text|normalised text.")
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for n, fields in enumerate(csv.reader(f, delimiter="|", quoting=csv.QUOTE_NONE), start=1):
            if not fields or not fields[0].strip():
                continue
            if len(fields) not in (2, 3):
                raise DataError(f"{path}:{n} has {len(fields)} fields; expected id|text|normalised text.")
            ident, text = fields[0].strip(), fields[1]
            rows.append((ident, text, fields[2] if len(fields) == 3 else text))
    return rows


def _splits(folder: Path) -> dict[str, str]:
    split = {}
    for name, part in FILE_LISTS.items():
        listing = folder / name
        if listing.is_file():
            for line in listing.read_text(encoding="utf-8").splitlines():
                ident = Path(line.split("|", 1)[0].strip()).stem
                if ident:
                    split[ident] = part
    return split


def load_ljspeech(
    folder: str | os.PathLike, sample_rate: int, clip_samples: int, slices: str = "all", on_error: str = "skip",
    max_files: int | None = None,
) -> Dataset:
    """The recordings listed in ``folder/metadata.csv`` (``max_files`` first ones) as clips with their transcripts.

    A listed file that is missing or unreadable is skipped and reported in ``info["skipped"]``
    (``on_error="skip"``) or stops the load (``"raise"``).
    """
    folder = Path(folder)
    rows = read_metadata(folder)[:max_files]
    split_of = _splits(folder)
    skipped: list[dict[str, str]] = []
    clips, sources = [], []
    for i, (ident, _, _) in enumerate(rows):
        path = folder / "wavs" / f"{ident}.wav"
        if not path.is_file():
            bad_file(path, "listed in metadata.csv but missing", on_error, skipped)
            continue
        try:
            cut, _ = read_clips(path, sample_rate, clip_samples, slices)
        except BadFile as exc:
            bad_file(path, str(exc), on_error, skipped)
            continue
        clips.append(cut)
        sources.extend([i] * len(cut))
    if not clips:
        raise DataError(f"no usable recordings in {folder}: {len(rows)} listed in {METADATA}, {len(skipped)} skipped.")
    clips_nt, keep = normalise_clips(np.concatenate(clips))
    index = np.asarray(sources, np.int32)[keep]
    if skipped:
        warnings.warn(f"{len(skipped)} file(s) of {folder} were skipped, e.g. {skipped[0]['file']} "
                      f"({skipped[0]['reason']})", stacklevel=2)
    labels = {
        "file_index": index,
        "id": np.asarray([rows[i][0] for i in index]),
        "text": np.asarray([rows[i][1] for i in index]),
        "normalized_text": np.asarray([rows[i][2] for i in index]),
    }
    if split_of:
        labels["split"] = np.asarray([split_of.get(rows[i][0], "train") for i in index])
    info = {"files": [str(folder / "wavs" / f"{r[0]}.wav") for r in rows], "skipped": skipped,
            "silent_clips": int((~keep).sum()), "layout": "ljspeech"}
    return Dataset(name=str(folder), clips=clips_nt, sample_rate=sample_rate, labels=labels, info=info)
