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
from collections.abc import Iterator
from pathlib import Path

import numpy as np

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
BLOCK_FRAMES = 1 << 16  # frames read at once (per channel): 64 Ki, e.g. 4 s at 16 kHz

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


class BadFile(Exception):
    """One file cannot be used; ``str()`` is the reason, in words a person can act on."""


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


def _open(path: Path):
    return open(path, "rb")  # noqa: SIM115 - closed by the caller's with-block


class _Cutter:
    """Collects a stream of mono samples into clips, with :func:`audiogan.data.slice_clips`'s rules."""

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


def read_blocks(path: Path, sample_rate: int, max_frames: int | None = None,
                block_frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
    """Mono float32 blocks of ``path`` at ``sample_rate``, read ``block_frames`` at a time."""
    import soundfile as sf
    import soxr

    try:
        fh = _open(path)
    except PermissionError as exc:
        raise BadFile(f"cannot be read: permission denied ({exc.strerror})") from exc
    except OSError as exc:
        raise BadFile(f"cannot be read: {exc.strerror or exc}") from exc
    with fh:
        try:
            audio = sf.SoundFile(fh)
        except Exception as exc:  # noqa: BLE001 - libsndfile's many ways of saying "not audio"
            if path.stat().st_size == 0:
                raise BadFile("empty file (0 bytes)") from exc
            message = str(exc).split(": ", 1)[-1] if ": " in str(exc) else str(exc)
            raise BadFile(f"not a readable audio file ({message.strip()})") from exc
        with audio:
            if audio.frames == 0:
                raise BadFile("no samples (the header says the audio is 0 frames long)")
            if audio.samplerate <= 0:
                raise BadFile(f"invalid sample rate {audio.samplerate}")
            frames = audio.frames if max_frames is None else min(audio.frames, max_frames)
            stream = None if audio.samplerate == sample_rate else soxr.ResampleStream(
                audio.samplerate, sample_rate, 1, dtype="float32")
            read = 0
            while read < frames:
                try:
                    block = audio.read(min(block_frames, frames - read), dtype="float32", always_2d=True)
                except Exception as exc:  # noqa: BLE001 - a decoding error half-way through
                    raise BadFile(f"decoding failed after {read} frames ({exc})") from exc
                if len(block) == 0:
                    break
                read += len(block)
                mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
                if not np.all(np.isfinite(mono)):
                    raise BadFile("holds NaN or infinite samples")
                last = read >= frames
                yield mono if stream is None else stream.resample_chunk(mono, last=last)
            if stream is not None and read < frames:  # stopped early: flush the resampler
                yield stream.resample_chunk(np.zeros(0, np.float32), last=True)


def read_clips(path: str | os.PathLike, sample_rate: int, clip_samples: int, slices: str = "first",
               block_frames: int = BLOCK_FRAMES) -> tuple[np.ndarray, str | None]:
    """``path`` cut into clips (see :func:`audiogan.data.slice_clips`), read in blocks; returns
    (clips, a note for the report or None). Raises :class:`BadFile` with the reason."""
    import soundfile as sf

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
