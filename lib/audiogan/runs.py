"""The run folder: the one place where a training run is written and read back.

```
runs/NAME/config.json     every setting of the run, dataset included (written atomically)
runs/NAME/dataset.json    what the dataset turned out to be: clip count, labels, source, skipped files
runs/NAME/metrics.csv     one row per logged step (appended and flushed row by row)
runs/NAME/checkpoints/    orbax checkpoints; the latest one resumes the run
runs/NAME/samples/        fixed-latent previews per logged step: step_XXXXXX/sample_K.wav and .png
```
A run killed at any instant resumes from its last checkpoint, and its metrics file stays readable:
rows are appended whole and a torn last line is ignored when reading.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import orbax.checkpoint as ocp

from audiogan.audio import write_wav
from audiogan.config import RunConfig
from audiogan.errors import ConfigError
from audiogan.files import atomic_write_text

METRIC_COLUMNS = ("step", "time_s", "d_loss", "g_loss", "d_real", "d_fake")


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

    def exists(self) -> bool:
        return self.config_path.is_file()

    # ------------------------------------------------------------------ config
    def config(self) -> RunConfig:
        return RunConfig.load(self.path)

    def write_config(self, config: RunConfig) -> None:
        """Record ``config``; a run folder that already has a different recipe is refused."""
        self.path.mkdir(parents=True, exist_ok=True)
        if self.exists():
            old = self.config()
            diff = config.differences(old)
            if diff:
                listed = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in sorted(diff.items()))
                raise ConfigError(
                    f"run_dir={str(self.path)!r} already holds a run with other settings ({listed}). "
                    "Choose a new run_dir, or use the same settings to resume it."
                )
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
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(
                f"{self.checkpoint_dir} holds no checkpoint yet: train {self.path} first."
            )
        return self.checkpoints.restore(step, args=ocp.args.StandardRestore(template))

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


def _fmt(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))
