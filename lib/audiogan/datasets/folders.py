"""Folders of audio files: found safely, read in blocks, labelled when the layout is known.

- **Finding** (:func:`scan`): every ``.wav``, ``.flac``, ``.ogg``, ``.mp3`` below the folder,
  recursively, following symbolic links to folders but never twice into the same folder (so a
  link loop ends), in a stable sorted order. Broken or looping links, folders that cannot be
  listed and second links to an already-found file are reported, not fatal.
- **Reading** (:func:`read_clips`): soundfile (libsndfile: WAV incl. RF64 and big-endian RIFX,
  8/16/24/32-bit PCM, u-law, A-law, 32/64-bit float, FLAC, OGG, MP3), any sample rate, any
  number of channels (averaged to mono), streamed in blocks of ``BLOCK_FRAMES`` frames and
  resampled on the fly (soxr), so a file hours long is never held whole: with ``slices="first"``
  only the frames the first clip needs are read at all.
- **Bad files** raise :class:`BadFile` with a one-line reason; the folder loader skips them
  (``on_error="skip"``) and lists them, or stops on the first (``on_error="raise"``).
- **Layouts** (:func:`detect_layout`): SC09 (``Seven_0a2b400e_nohash_0.wav``, labels from the
  file name) and Speech Commands (``seven/0a2b400e_nohash_0.wav``, labels from the parent
  folder), with splits from ``train/ valid/ test/`` folders (SC09) or from
  ``validation_list.txt`` / ``testing_list.txt`` (Speech Commands).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from audiogan.audio.features import rms_db
from audiogan.audio.io import AUDIO_EXTENSIONS, BLOCK_FRAMES, BadFile, read_blocks
from audiogan.datasets.dataset import PEAK, Dataset
from audiogan.errors import DataError

SILENCE_DB = -60.0  # clips quieter than this (RMS, dBFS, before normalising) are dropped


DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# The 35 words of Speech Commands v0.02 (Warden 2018); SC09 is its ten digits.
SPEECH_COMMANDS_WORDS = DIGIT_WORDS + (
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "bed", "bird", "cat",
    "dog", "happy", "house", "marvin", "sheila", "tree", "wow", "backward", "forward", "follow",
    "learn", "visual",
)
_SC09_NAME = re.compile(r"^([A-Za-z]+)_([0-9a-fA-F]{8})_nohash_\d+$")
_SC_NAME = re.compile(r"^([0-9a-fA-F]{8})_nohash_\d+$")
BACKGROUND = "_background_noise_"  # Speech Commands' folder of long noise recordings, not words
SPLIT_FOLDERS = {"train": "train", "valid": "validation", "validation": "validation", "test": "test"}


@dataclasses.dataclass
class Scan:
    """What :func:`scan` found: the audio files, and the paths it could not use, with reasons."""

    files: list[Path]
    problems: list[dict[str, str]]


# ---------------------------------------------------------------------------- finding
def scan(folder: str | os.PathLike) -> Scan:
    folder = Path(folder)
    files, problems, seen_dirs, seen_files = [], [], set(), {}

    def on_error(exc: OSError) -> None:
        problems.append({"file": str(exc.filename or folder), "reason": f"folder cannot be listed: {exc.strerror}"})

    for root, dirs, names in os.walk(folder, onerror=on_error, followlinks=True):
        st = os.stat(root)
        if (st.st_dev, st.st_ino) in seen_dirs:  # reached again through a link: a loop or a duplicate
            problems.append({"file": root, "reason": "symbolic-link loop or second link to a folder "
                             "already read; not read again"})
            dirs[:] = []
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        dirs.sort()
        for name in sorted(names) + [d for d in dirs if d.lower().endswith(AUDIO_EXTENSIONS)]:
            if not name.lower().endswith(AUDIO_EXTENSIONS):
                continue
            path = Path(root) / name
            try:
                st = path.stat()
            except OSError as exc:
                reason = ("symbolic-link loop" if exc.errno == errno.ELOOP
                          else "broken symbolic link" if path.is_symlink() else f"cannot be read: {exc.strerror}")
                problems.append({"file": str(path), "reason": reason})
                continue
            if not path.is_file():
                continue  # a folder named like a sound file; os.walk goes into it
            key = (st.st_dev, st.st_ino)
            if key in seen_files:
                problems.append({"file": str(path), "reason": f"same file as {seen_files[key]}; read once"})
                continue
            seen_files[key] = str(path)
            files.append(path)
    return Scan(sorted(files), problems)


# ---------------------------------------------------------------------------- reading
def _declared_wav_data(path: Path) -> tuple[int, int] | None:
    """(bytes the WAV header declares for its audio, bytes present after it), or None when the
    file is not a plain RIFF/RIFX WAV or declares no size (RF64, streamed files)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None
        endian = "<" if head[:4] == b"RIFF" else ">"
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk_id, chunk_size = struct.unpack(endian + "4sI", fh.read(8))
            if chunk_id == b"data":
                if chunk_size in (0, 0xFFFFFFFF):
                    return None
                return chunk_size, size - pos - 8
            pos += 8 + chunk_size + (chunk_size & 1)
    return None


class _Cutter:
    """Collects a stream of mono samples into clips, with :func:`audiogan.datasets.slice_clips`'s rules."""

    def __init__(self, clip_samples: int, slices: str):
        self.clip_samples, self.slices = clip_samples, slices
        self.clips: list[np.ndarray] = []
        self.pending: list[np.ndarray] = []
        self.n_pending = 0
        self.total = 0

    @property
    def done(self) -> bool:
        return self.slices == "first" and bool(self.clips)

    def add(self, samples: np.ndarray) -> None:
        self.total += len(samples)
        while len(samples) and not self.done:
            take = min(len(samples), self.clip_samples - self.n_pending)
            self.pending.append(samples[:take])
            self.n_pending += take
            samples = samples[take:]
            if self.n_pending == self.clip_samples:
                self.clips.append(np.concatenate(self.pending).astype(np.float32))
                self.pending, self.n_pending = [], 0

    def finish(self) -> np.ndarray:
        rest = np.concatenate(self.pending) if self.pending else np.zeros(0, np.float32)
        if not self.clips or (self.slices == "all" and len(rest) and len(rest) >= self.clip_samples // 2):
            self.clips.append(np.pad(rest, (0, self.clip_samples - len(rest))).astype(np.float32))
        return np.stack(self.clips)


def read_clips(path: str | os.PathLike, sample_rate: int, clip_samples: int, slices: str = "first",
               block_frames: int = BLOCK_FRAMES) -> tuple[np.ndarray, str | None]:
    """``path`` cut into clips (see :func:`audiogan.datasets.slice_clips`), read in blocks; returns
    (clips, a note for the report or None). Raises :class:`BadFile` with the reason."""
    path = Path(path)
    max_frames = None
    if slices == "first":
        try:
            rate_in = sf.info(str(path)).samplerate
            # What the first clip needs at the file's rate, plus room for the resampler's delay.
            max_frames = int(np.ceil(clip_samples * rate_in / sample_rate)) + rate_in // 10 + 64
        except Exception:  # noqa: BLE001 - read_blocks gives the reason
            pass
    cutter = _Cutter(clip_samples, slices)
    for block in read_blocks(path, sample_rate, max_frames, block_frames):
        cutter.add(block)
        if cutter.done:
            break
    if cutter.total == 0 and not cutter.clips:
        raise BadFile("no samples")
    note = None
    if path.suffix.lower() == ".wav":
        declared = _declared_wav_data(path)
        if declared and declared[0] > declared[1]:
            note = (f"truncated: the header declares {declared[0]} bytes of audio, the file holds "
                    f"{declared[1]}; the audio present was used")
    return cutter.finish(), note


# ---------------------------------------------------------------------------- layouts
def _split_of(rel: Path, lists: dict[str, str]) -> str | None:
    if rel.as_posix() in lists:
        return lists[rel.as_posix()]
    for part in rel.parts[:-1]:
        if part.lower() in SPLIT_FOLDERS:
            return SPLIT_FOLDERS[part.lower()]
    return None


def file_label(rel: Path) -> tuple[str, str] | None:
    """(word, speaker) from an SC09 file name or a Speech Commands parent folder, else None."""
    match = _SC09_NAME.match(rel.stem)
    if match and match.group(1).lower() in SPEECH_COMMANDS_WORDS:
        return match.group(1).lower(), match.group(2).lower()
    parent = rel.parent.name.lower()
    if parent in SPEECH_COMMANDS_WORDS:
        speaker = _SC_NAME.match(rel.stem)
        return parent, speaker.group(1).lower() if speaker else ""
    return None


def detect_layout(folder: Path, files: list[Path]) -> dict | None:
    """Labels per file when every file follows the SC09 or Speech Commands layout, else None.

    Returns ``{"layout", "word", "speaker", "split"}`` with one entry per file (split None where
    neither split folders nor split lists say).
    """
    rels = [f.relative_to(folder) for f in files]
    if not rels:
        return None
    found = [file_label(r) for r in rels]
    if any(f is None for f in found):
        return None
    lists = {}
    for name, split in (("validation_list.txt", "validation"), ("testing_list.txt", "test")):
        listing = folder / name
        if listing.is_file():
            lists.update({line.strip(): split for line in listing.read_text().splitlines() if line.strip()})
    by_name = all(_SC09_NAME.match(r.stem) for r in rels)
    return {
        "layout": "sc09" if by_name else "speech_commands",
        "word": [w for w, _ in found], "speaker": [s for _, s in found],
        "split": [_split_of(r, lists) for r in rels],
    }


# ---------------------------------------------------------------------------- loading
SC09_PREFIX = "sc09:"


def list_audio_files(folder: str | os.PathLike) -> list[Path]:
    """Audio files under ``folder``, recursively (links followed, loops cut), in a stable order."""
    return scan(folder).files


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


def bad_file(path, reason: str, on_error: str, report: list[dict[str, str]]) -> None:
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
    folder = Path(folder)
    skipped: list[dict[str, str]] = []
    notes: list[dict[str, str]] = []
    if files is None:
        found = scan(folder)
        files = found.files
        for problem in found.problems:
            bad_file(problem["file"], problem["reason"], on_error, skipped)
    files, labelled = _apply_layout(folder, files, layout, on_error, skipped, notes)
    clips, sources, silent_files = [], [], 0
    for i, path in enumerate(tqdm(files, desc=f"reading {folder.name}", disable=len(files) < 200)):
        try:
            cut, note = read_clips(path, sample_rate, clip_samples, slices)
        except BadFile as exc:
            bad_file(path, str(exc), on_error, skipped)
            continue
        if note:
            notes.append({"file": str(path), "reason": note})
        keep = rms_db(cut) >= SILENCE_DB
        if not keep.any():
            silent_files += 1
            bad_file(path, f"silent: every clip is below {SILENCE_DB:.0f} dBFS RMS", on_error, skipped)
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
    background = [f for f in files if BACKGROUND in f.relative_to(folder).parts]
    if background:
        notes.append({"file": str(folder / BACKGROUND),
                      "reason": f"{len(background)} background-noise recording(s), not words: left out"})
        files = [f for f in files if f not in background]
    if layout == "sc09":
        kept = []
        for path in files:
            found = file_label(path.relative_to(folder))
            if found is None:
                bad_file(path, "its name and folder follow neither the SC09 (Seven_1a2b3c4d_nohash_0.wav) nor "
                     "the Speech Commands (seven/1a2b3c4d_nohash_0.wav) layout", on_error, skipped)
            elif found[0] in DIGIT_WORDS:
                kept.append(path)
        if len(kept) < len(files):
            n_other = len(files) - len(kept) - sum(1 for s in skipped if s["reason"].startswith("its name"))
            if n_other:
                notes.append({"file": str(folder), "reason": f"{n_other} file(s) of words other than the "
                              "ten digits: left out of SC09"})
        files = kept
    labelled = detect_layout(folder, files)
    if labelled is None:
        return files, None
    if layout == "sc09":
        labelled["layout"] = "sc09"
    if all(w in DIGIT_WORDS for w in labelled["word"]):
        labelled["digit"] = [DIGIT_WORDS.index(w) for w in labelled["word"]]
    if any(s is not None for s in labelled["split"]):
        labelled["split"] = [s or "train" for s in labelled["split"]]
    else:
        del labelled["split"]
    return files, labelled
