"""The dataset cache: clips, labels and the settings that made them, checked on every read.

Three files per dataset under :func:`cache_dir`: ``KEY.npy`` (clips), ``KEY.labels.npz`` and
``KEY.json`` (settings, shape, info and both files' SHA-256), the settings file written last so
that a cache without it is incomplete and rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from audiogan.datasets.dataset import Dataset
from audiogan.files import atomic_path, atomic_write_text


def cache_dir() -> Path:
    """``$AUDIOGAN_CACHE_DIR``, else ``data/cache`` of this checkout, else ``~/.cache/audiogan``."""
    if os.environ.get("AUDIOGAN_CACHE_DIR"):
        return Path(os.environ["AUDIOGAN_CACHE_DIR"])
    checkout = Path(__file__).resolve().parents[3]
    if (checkout / "data").is_dir() and (checkout / "pyproject.toml").is_file():
        return checkout / "data" / "cache"
    return Path.home() / ".cache" / "audiogan"


def cache_key(settings: dict[str, Any]) -> str:
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


class CachePaths:
    """The three files of one cached dataset."""

    def __init__(self, key: str, folder: Path | None = None):
        folder = cache_dir() if folder is None else folder
        self.clips, self.labels, self.meta = (folder / f"{key}.npy", folder / f"{key}.labels.npz",
                                              folder / f"{key}.json")

    def complete(self) -> bool:
        return self.clips.is_file() and self.meta.is_file()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified_bytes(path: Path, sha256: str) -> bytearray:
    """``path``'s bytes, read once; raises when they do not match ``sha256``. The arrays are then
    parsed from these very bytes, so a file replaced during the read can never pass the check with
    one version and deliver another."""
    with open(path, "rb") as f:
        data = bytearray(os.fstat(f.fileno()).st_size)  # writable, so the clips are too
        del data[f.readinto(data):]  # shrunk since fstat: the checksum then fails
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{path.name} does not match its checksum")
    return data


def _npy_from_bytes(data: bytearray) -> np.ndarray:
    """The array of a ``.npy`` file's bytes, sharing their memory (no second copy of the clips)."""
    header = io.BytesIO(data)
    version = np.lib.format.read_magic(header)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in read_header:
        raise ValueError(f".npy format version {version} is not one np.save writes for clips")
    shape, fortran, dtype = read_header[version](header)
    if dtype.hasobject:
        raise ValueError("holds Python objects, which a cache never does")
    count = int(np.prod(shape, dtype=np.int64))
    array = np.frombuffer(data, dtype, count=count, offset=header.tell())
    return array.reshape(shape, order="F" if fortran else "C")


def read(paths: CachePaths, settings: dict, sample_rate: int) -> Dataset:
    """The cached dataset; raises when any of its three files is missing, damaged or stale."""
    meta = json.loads(paths.meta.read_text())
    if meta["settings"] != json.loads(json.dumps(settings)):
        raise ValueError("its settings do not match")
    clips = _npy_from_bytes(_verified_bytes(paths.clips, meta["sha256"]["clips"]))
    with np.load(io.BytesIO(_verified_bytes(paths.labels, meta["sha256"]["labels"]))) as stored:
        labels = {k: stored[k] for k in stored.files}
    if clips.shape != tuple(meta["shape"]) or any(len(v) != len(clips) for v in labels.values()):
        raise ValueError(f"shape {clips.shape} instead of {tuple(meta['shape'])}")
    return Dataset(name=meta["name"], clips=clips, sample_rate=sample_rate, labels=labels,
                   info=meta["info"] | {"cache": str(paths.clips), "from_cache": True})


def write(paths: CachePaths, data: Dataset, settings: dict) -> None:
    """Store ``data`` atomically, the settings file with both checksums last."""
    paths.clips.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(paths.clips) as tmp:
        np.save(tmp, data.clips)
    with atomic_path(paths.labels) as tmp:
        np.savez(tmp, **data.labels)
    meta = {"name": data.name, "shape": list(data.clips.shape), "settings": settings, "info": data.info,
            "sha256": {"clips": _sha256(paths.clips), "labels": _sha256(paths.labels)}}
    atomic_write_text(paths.meta, json.dumps(meta))
