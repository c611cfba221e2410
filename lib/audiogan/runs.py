"""The run folder: the one place where a training run is written and read back.

```
runs/NAME/config.json     every setting of the run, dataset included (written atomically)
runs/NAME/dataset.json    what the dataset turned out to be: clip count, labels, source, skipped files
runs/NAME/metrics.csv     one row per logged step (appended and flushed row by row)
runs/NAME/checkpoints/    orbax checkpoints; the latest one resumes the run
runs/NAME/samples/        fixed-latent previews per logged step: step_XXXXXX/sample_K.wav and .png
runs/NAME/.lock           the writer's lock (flock) and who holds it: one training process at a time
```
A run killed at any instant resumes from its last checkpoint, and its metrics file stays readable:
rows are appended whole and a torn last line is ignored when reading. A damaged checkpoint is
skipped for the newest intact one. Only one process writes a run folder at a time (:meth:`RunFolder.writer`,
an OS lock the kernel releases when its holder dies); reading one needs no lock.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import shutil
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orbax.checkpoint as ocp

try:
    import fcntl
except ImportError:  # native Windows: msvcrt locks a byte range instead of the whole file
    fcntl = None
    import msvcrt

from audiogan.audio import write_wav
from audiogan.config import RunConfig
from audiogan.errors import ConfigError
from audiogan.files import atomic_write_text

METRIC_COLUMNS = ("step", "time_s", "d_loss", "g_loss", "d_real", "d_fake")
LOCK = ".lock"  # flock'ed by the one process writing the run folder; holds its pid, host and start
DAMAGED = "damaged_checkpoints"  # where a writer moves checkpoints that no longer restore


class RunFolderBusy(RuntimeError):
    """Another process is writing (training into) this run folder; the message names it."""


class CheckpointDamaged(RuntimeError):
    """No checkpoint of a run folder restores; the message names the folder and the first error."""


class RunFolder:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._checkpoints: ocp.CheckpointManager | None = None
        self._best: ocp.CheckpointManager | None = None

    # ------------------------------------------------------------------ paths
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    def sample_dir(self, step: int) -> Path:
        return self.samples_dir / f"step_{step:06d}"

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK

    def exists(self) -> bool:
        return self.config_path.is_file()

    # ------------------------------------------------------------------ one writer at a time
    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        """Hold the run folder's writer lock for the block: an exclusive ``flock`` on ``RUN/.lock``,
        which records the holder's pid, host and start time. Another holder (in this or any other
        process) makes it raise :class:`RunFolderBusy` naming that holder. The kernel drops the lock
        when its process dies, so a killed run leaves no stale lock behind."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _try_lock(fd, retry_s=0.5):  # check_not_busy holds a lock for an instant to probe
                raise RunFolderBusy(self._busy_message(fd))
            holder = {"pid": os.getpid(), "host": socket.gethostname(),
                      "since": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime())}
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(holder) + "\n").encode())
            os.fsync(fd)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)  # released: no holder to name (the kernel unlocks on close)
        finally:
            os.close(fd)

    def check_not_busy(self) -> None:
        """Raise :class:`RunFolderBusy` if another process holds the writer lock; writes nothing."""
        try:
            fd = os.open(self.lock_path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            if not _try_lock(fd, shared=True):
                raise RunFolderBusy(self._busy_message(fd))
        finally:
            os.close(fd)  # also releases the shared lock taken to probe

    def _busy_message(self, fd: int) -> str:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            holder = json.loads(os.read(fd, 4096).decode())
            who = f"pid {holder['pid']} on host {holder['host']}, since {holder['since']}"
            stop = f"stop it (kill {holder['pid']} on {holder['host']})"
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):  # the holder is still writing its name
            who, stop = "a process that is just starting", "stop it"
        return (
            f"run_dir={str(self.path)!r} is being trained by another process ({who}); two writers "
            f"would interleave its metrics and break its checkpoints. Wait for that run to finish or "
            f"{stop}, then start again (it resumes from the last checkpoint), or choose another run_dir. "
            "Reading the run (restore, evaluation, the notebooks) does not need to wait."
        )

    # ------------------------------------------------------------------ config
    def config(self) -> RunConfig:
        return RunConfig.load(self.path)

    def check_config(self, config: RunConfig) -> None:
        """Raise :class:`ConfigError` if the folder already holds a run with another recipe; writes nothing."""
        if self.exists():
            old = self.config()
            diff = config.differences(old)
            if diff:
                listed = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in sorted(diff.items()))
                raise ConfigError(
                    f"run_dir={str(self.path)!r} already holds a run with other settings ({listed}). "
                    "Choose a new run_dir, or use the same settings to resume it."
                )

    def write_config(self, config: RunConfig) -> None:
        """Record ``config``; a run folder that already has a different recipe is refused."""
        self.check_config(config)
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config_path, json.dumps(config.to_dict(), indent=2) + "\n")

    def write_json(self, name: str, value: Any) -> Path:
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(value, indent=2, default=str) + "\n")
        return path

    def read_json(self, name: str) -> Any:
        return json.loads((self.path / name).read_text())

    # ------------------------------------------------------------------ metrics
    def append_metrics(self, rows: list[dict[str, float]]) -> None:
        """Append whole rows and flush them to disk, so a crash loses at most the row in flight."""
        if not rows:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        if self.metrics_path.is_file():
            self._repair_tail()
        new = not self.metrics_path.is_file() or self.metrics_path.stat().st_size == 0
        columns = list(rows[0])
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        if new:
            writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(v) for k, v in row.items()})
        with open(self.metrics_path, "a") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())

    def _repair_tail(self) -> None:
        """If a crash left a torn last line, cut it off so the next row starts on a line of its own."""
        data = self.metrics_path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.metrics_path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)

    def read_metrics(self) -> dict[str, list[float]]:
        """Columns of ``metrics.csv`` as lists of floats; rows that are torn or malformed are
        skipped, so a file written up to the instant a run was killed still reads."""
        if not self.metrics_path.is_file():
            return {c: [] for c in METRIC_COLUMNS}
        text = self.metrics_path.read_text()
        lines = text.splitlines()
        if lines and not text.endswith("\n"):
            lines = lines[:-1]  # torn by a crash mid-write: a row is complete only with its newline
        if not lines:
            return {c: [] for c in METRIC_COLUMNS}
        header = lines[0].split(",")
        columns: dict[str, list[float]] = {c: [] for c in header}
        for line in lines[1:]:
            fields = line.split(",")
            if len(fields) != len(header):
                continue
            try:
                values = [float(x) for x in fields]
            except ValueError:
                continue
            for c, v in zip(header, values, strict=True):
                columns[c].append(v)
        return columns

    def truncate_metrics(self, last_step: int) -> None:
        """Drop rows after ``last_step`` (logged after the checkpoint a run resumes from)."""
        if not self.metrics_path.is_file():
            return
        cols = self.read_metrics()
        keep = [i for i, s in enumerate(cols.get("step", [])) if s <= last_step]
        header = list(cols)
        lines = [",".join(header)] + [",".join(_fmt(cols[c][i]) for c in header) for i in keep]
        atomic_write_text(self.metrics_path, "\n".join(lines) + "\n")

    def write_clips(self, subdir: str, clips, sample_rate: int, prefix: str = "sample") -> list[Path]:
        """Clips as numbered WAV files in ``RUN/subdir/``."""
        return [
            write_wav(self.path / subdir / f"{prefix}_{i:02d}.wav", clip, sample_rate)
            for i, clip in enumerate(clips)
        ]

    # ------------------------------------------------------------------ checkpoints
    @staticmethod
    def _manager(folder: Path, keep: int) -> ocp.CheckpointManager:
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        return ocp.CheckpointManager(folder.resolve(), options=options)

    @property
    def checkpoints(self) -> ocp.CheckpointManager:
        if self._checkpoints is None:
            self._checkpoints = self._manager(self.checkpoint_dir, keep=3)
        return self._checkpoints

    def latest_step(self) -> int | None:
        if not self.checkpoint_dir.is_dir():
            return None
        return self.checkpoints.latest_step()

    def save_checkpoint(self, step: int, state: Any) -> None:
        """Save asynchronously; orbax writes to a temporary folder and renames it when complete."""
        self.checkpoints.save(step, args=ocp.args.StandardSave(state))

    def restore_checkpoint(self, template: Any, step: int | None = None) -> Any:
        """The state of checkpoint ``step``, or by default of the newest one that restores
        (see :meth:`restore_latest`)."""
        if step is None:
            return self.restore_latest(template)[0]
        return self.checkpoints.restore(step, args=ocp.args.StandardRestore(template))

    def restore_latest(self, template: Any) -> tuple[Any, int, list[int]]:
        """(state, its step, the newer steps that were skipped) for the newest checkpoint that
        restores. A damaged one (a truncated array file, garbled metadata) is skipped with a warning
        that names its step and the error; :class:`CheckpointDamaged` when none restores."""
        steps = sorted(self.checkpoints.all_steps(), reverse=True) if self.checkpoint_dir.is_dir() else []
        if not steps:
            raise FileNotFoundError(
                f"{self.checkpoint_dir} holds no checkpoint yet: train {self.path} first."
            )
        errors: list[str] = []
        for i, step in enumerate(steps):
            try:
                state = self.checkpoints.restore(step, args=ocp.args.StandardRestore(template))
            except Exception as exc:  # noqa: BLE001 - orbax, tensorstore and json each fail their own way
                why = " ".join(f"{type(exc).__name__}: {exc}".split())
                why = why if len(why) <= 300 else why[:300] + "..."
                errors.append(f"step {step}: {why}")
                nxt = f"trying step {steps[i + 1]}" if i + 1 < len(steps) else "no older checkpoint is left"
                warnings.warn(
                    f"skipped the checkpoint of step {step} in {self.checkpoint_dir}: it does not restore "
                    f"({why}); {nxt}.", stacklevel=2,
                )
                continue
            return state, step, steps[:i]
        raise CheckpointDamaged(
            f"no checkpoint in {self.checkpoint_dir} restores ({'; '.join(errors)}). If the settings in "
            f"{self.config_path} changed by hand, put them back; otherwise the run cannot resume: "
            "train into a new run_dir."
        )

    def set_aside(self, steps: list[int]) -> Path:
        """Move the checkpoints of ``steps`` (damaged ones) to ``RUN/damaged_checkpoints/``, so the run
        can save those steps again; the writer calls this, holding the lock."""
        self.wait()
        aside = self.path / DAMAGED
        for step in steps:
            source = self.checkpoint_dir / str(step)
            if not source.exists():
                continue
            aside.mkdir(parents=True, exist_ok=True)
            target, n = aside / str(step), 1
            while target.exists():
                target, n = aside / f"{step}.{n}", n + 1
            shutil.move(source, target)
        if self._checkpoints is not None:  # the manager caches the steps it found
            self._checkpoints.close()
            self._checkpoints = None
        return aside

    # The best checkpoint by the training-time evaluation (eval_every), kept apart from the latest
    # ones so that neither rotation removes the other.
    @property
    def best_checkpoint_dir(self) -> Path:
        return self.path / "best_checkpoint"

    @property
    def best_checkpoints(self) -> ocp.CheckpointManager:
        if self._best is None:
            self._best = self._manager(self.best_checkpoint_dir, keep=1)
        return self._best

    def best_step(self) -> int | None:
        if not self.best_checkpoint_dir.is_dir():
            return None
        return self.best_checkpoints.latest_step()

    def save_best_checkpoint(self, step: int, state: Any) -> None:
        """Replace the best checkpoint with ``step``'s state; returns once it is on disk."""
        self.best_checkpoints.save(step, args=ocp.args.StandardSave(state), force=True)
        self.best_checkpoints.wait_until_finished()

    def restore_best_checkpoint(self, template: Any) -> Any:
        step = self.best_step()
        if step is None:
            raise FileNotFoundError(f"{self.best_checkpoint_dir} holds no checkpoint: train with eval_every > 0.")
        return self.best_checkpoints.restore(step, args=ocp.args.StandardRestore(template))

    def wait(self) -> None:
        """Block until every checkpoint that is being written is on disk."""
        if self._checkpoints is not None:
            self._checkpoints.wait_until_finished()

    def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.wait_until_finished()
            self._checkpoints.close()
            self._checkpoints = None
        if self._best is not None:
            self._best.wait_until_finished()
            self._best.close()
            self._best = None


_WINDOWS_LOCK_BYTE = 1 << 20  # msvcrt locks this byte, past the holder's note, so others can read it


def _try_lock(fd: int, shared: bool = False, retry_s: float = 0.0) -> bool:
    """Take an flock on ``fd``, trying for up to ``retry_s``; False when another open file holds it.
    Windows has no shared lock: a probe there holds an exclusive one for an instant."""
    deadline = time.monotonic() + retry_s
    while True:
        try:
            if fcntl is not None:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            else:
                os.lseek(fd, _WINDOWS_LOCK_BYTE, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError as exc:
            if fcntl is not None and exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _fmt(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))
