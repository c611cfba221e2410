"""Sweeps: a grid of notebook parameters, each point run headless by papermill into its own folder.

    python -m audiogan.cli.sweep sweeps/loss_ablation.yaml [--jobs 2] [--out runs/sweeps/NAME]

A sweep file (YAML)::

    name: loss_ablation                 # optional: the file's name
    out_dir: runs/sweeps/loss_ablation  # optional: runs/sweeps/NAME
    notebooks: [02_train]               # run in this order for every point
    parameters: {model: mlp, steps: 600, ...}   # the same for every point
    grid: {loss: [ns, hinge, lsgan, wgan-gp], seed: [0, 1]}  # every combination is one point
    notebook_parameters: {04_listening_test: {n_samples: 4}}  # optional, for one notebook only

What it writes::

    OUT/sweep.yaml          the sweep as it was run
    OUT/summary.csv         one row per point: status, parameters, final losses, times, eval scores,
                            the notebook to open; rewritten (atomically) each time a point ends
    OUT/POINT/              the point's run folder (``loss-ns_seed-0``): executed notebooks,
                            config.json, metrics.csv, checkpoints/, ...
    OUT/POINT/point.json    the point's status: pending, running (with its process id), done, failed
    OUT/POINT/sweep.log     what the point's process printed

A sweep file is checked before anything is written: notebooks are names of notebooks in
``notebooks/``; every key of ``parameters``, ``grid`` and ``notebook_parameters`` is a parameter
that papermill finds in the ``parameters`` cell of the notebook(s) it goes to (a key of
``parameters`` or ``grid`` goes to each notebook that has it); values are plain scalars; each
point's folder is a slug of its grid values directly inside the sweep's folder.

Each point runs in a process of its own, ``--jobs`` of them at once, so one that fails or is
killed does not stop the others. Running the sweep again skips the points that are done (with the
same parameters) and runs the others again; training resumes from each run folder's latest
checkpoint, so an interrupted point loses at most ``checkpoint_every`` steps. Raising ``steps`` in
the file and running again continues every point.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from audiogan.errors import ConfigError
from audiogan.files import atomic_write_text
from audiogan.listening.answers import from_spreadsheet, spreadsheet_safe
from audiogan.pipeline import (
    check_parameter_name,
    check_parameters,
    check_value,
    notebook_parameters,
    notebook_path,
    run_notebook,
)
from audiogan.runs import METRIC_COLUMNS, RunFolder

POINT_FILE = "point.json"
SUMMARY = "summary.csv"
MAX_POINTS = 10_000
SPEC_KEYS = ("name", "out_dir", "notebooks", "parameters", "grid", "notebook_parameters")


@dataclasses.dataclass(frozen=True)
class Sweep:
    name: str
    out_dir: Path
    notebooks: tuple[str, ...]
    parameters: dict[str, Any]
    grid: dict[str, list[Any]]
    notebook_parameters: dict[str, dict[str, Any]]

    def points(self) -> list[Point]:
        """Every combination of the grid's values, in the order the file lists them; each point's
        folder is a slug directly inside ``out_dir`` (two points in one folder are a ConfigError)."""
        keys = list(self.grid)
        n = math.prod(len(self.grid[k]) for k in keys)
        if n > MAX_POINTS:
            raise ConfigError(f"the grid has {n} points; a sweep runs at most {MAX_POINTS}.")
        points: dict[str, Point] = {}
        out = self.out_dir.resolve()
        for values in itertools.product(*(self.grid[k] for k in keys)):
            varied = dict(zip(keys, values, strict=True))
            name = _point_name(varied)
            run_dir = self.out_dir / name
            if run_dir.resolve().parent != out:  # a slug has no path parts; this is the last guard
                raise ConfigError(f"point {name!r} would write outside {self.out_dir}.")
            if name in points:
                raise ConfigError(f"grid values {points[name].varied} and {varied} give the same folder "
                                  f"{name!r}; make the values differ in letters or digits.")
            points[name] = Point(name, run_dir, self.parameters | varied, varied)
        return list(points.values())

    def check(self) -> None:
        """Every notebook is one of notebooks/, every key a parameter of the notebook(s) it goes to,
        every value a plain scalar, every point's folder inside ``out_dir``; a ConfigError otherwise."""
        check_sweep_name(self.name)
        for nb in self.notebooks:
            notebook_path(nb)
        known = {nb: notebook_parameters(nb) for nb in self.notebooks}
        shared = sorted({p for params in known.values() for p in params} - {"run_dir"})
        for where, flat in (("parameters: ", self.parameters), ("grid: ", self.grid)):
            for key, value in flat.items():
                check_parameter_name(key, where)
                if key == "run_dir":
                    raise ConfigError("run_dir is set by the sweep (one folder per point under out_dir); remove it.")
                for v in value if flat is self.grid else [value]:
                    check_value(key, v, where)
                if key not in shared:
                    raise ConfigError(f"{where}{key} is not a parameter of {', '.join(self.notebooks)}; "
                                      f"their parameters are {', '.join(shared)}.")
        for nb, flat in self.notebook_parameters.items():
            if nb not in self.notebooks:
                raise ConfigError(f"notebook_parameters: {nb!r} is not one of the sweep's notebooks "
                                  f"({', '.join(self.notebooks)}).")
            if "run_dir" in flat:
                raise ConfigError("run_dir is set by the sweep (one folder per point under out_dir); remove it.")
            check_parameters(nb, flat, f"notebook_parameters: {nb}: ")
        self.points()


def parameters_for(notebook: str, parameters: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """What ``notebook`` gets at a point: the point's parameters that it has, then its own."""
    known = notebook_parameters(notebook)
    return {k: v for k, v in parameters.items() if k in known} | dict(own)


def check_sweep_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"name={name!r} must be a plain name (letters, digits, . _ + -, no folders), "
                          "e.g. loss_ablation.")
    return name


@dataclasses.dataclass(frozen=True)
class Point:
    name: str
    run_dir: Path
    parameters: dict[str, Any]  # every notebook parameter of this point (fixed and varied)
    varied: dict[str, Any]  # the grid's values for this point

    @property
    def status_path(self) -> Path:
        return self.run_dir / POINT_FILE

    def status(self) -> dict[str, Any]:
        try:
            return json.loads(self.status_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def write_status(self, **fields) -> dict[str, Any]:
        status = self.status() | fields
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.status_path, json.dumps(status, indent=2, default=str) + "\n")
        return status

    def is_done(self) -> bool:
        s = self.status()
        return s.get("status") == "done" and s.get("parameters") == _jsonable(self.parameters)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}")
_POINT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
_MAX_POINT_NAME = 120  # a folder name, well under the file systems' 255 bytes


def _slug(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-") or "x"


def _point_name(varied: Mapping[str, Any]) -> str:
    """``loss-ns_seed-0``: letters, digits and ``. _ + -`` only (the keys are checked to be Python
    names), so never a path; a long name is cut and ends in a hash of the whole."""
    name = "_".join(f"{k}-{_slug(v)}" for k, v in varied.items()) or "run"  # keys are Python names
    if len(name) > _MAX_POINT_NAME:
        name = name[: _MAX_POINT_NAME - 9] + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return name


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# ---------------------------------------------------------------------------- reading a sweep file
def load(path: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Sweep:
    """The sweep described by a YAML file; a mistake in it is a ConfigError naming the file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no sweep file {path}; sweeps/ holds the examples (e.g. sweeps/loss_ablation.yaml).")
    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None

    def bad(msg: str) -> ConfigError:
        return ConfigError(f"{path}: {msg}")

    if not isinstance(spec, dict):
        raise bad("the file must be a mapping with keys such as notebooks, parameters, grid.")
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise bad(f"unknown key(s) {', '.join(unknown)}; known keys are {', '.join(SPEC_KEYS)}.")
    name = spec.get("name") or _slug(path.stem)
    notebooks = spec.get("notebooks", ["02_train"])
    if isinstance(notebooks, str):
        notebooks = [notebooks]
    if not isinstance(notebooks, list) or not notebooks:
        raise bad("notebooks must be a list of notebook names, e.g. [02_train].")
    parameters = spec.get("parameters") or {}
    grid = spec.get("grid") or {}
    per_notebook = spec.get("notebook_parameters") or {}
    for key, value in (("parameters", parameters), ("grid", grid), ("notebook_parameters", per_notebook)):
        if not isinstance(value, dict):
            raise bad(f"{key} must be a mapping of name: value.")
    for nb, value in per_notebook.items():
        if not isinstance(value, dict):
            raise bad(f"notebook_parameters: {nb} must be a mapping of name: value.")
    for k, values in grid.items():
        if not isinstance(values, list) or not values:
            raise bad(f"grid: {k} must be a non-empty list of values, e.g. {k}: [a, b].")
    both = sorted(map(str, set(grid) & set(parameters)))
    if both:
        raise bad(f"{', '.join(both)} is both in parameters and in grid; keep it in one of them.")
    out = Path(out_dir or spec.get("out_dir") or Path("runs") / "sweeps" / str(name))
    sweep = Sweep(name, out, tuple(notebooks), parameters, grid, {k: dict(v) for k, v in per_notebook.items()})
    try:
        sweep.check()
    except ConfigError as e:
        raise bad(str(e)) from None
    return sweep


# ---------------------------------------------------------------------------- one point
def run_point(run_dir: str | os.PathLike) -> int:
    """Run one point's notebooks (the worker process); its status goes to ``point.json``."""
    from papermill.exceptions import PapermillExecutionError


    run_dir = Path(run_dir)
    status = json.loads((run_dir / POINT_FILE).read_text())
    point = Point(run_dir.name, run_dir, status["parameters"], status.get("varied", {}))
    t0 = time.perf_counter()
    for nb in status["notebooks"]:
        notebook = run_dir / f"{nb}.ipynb"
        point.write_status(status="running", pid=os.getpid(), notebook=str(notebook), error=None)
        try:
            params = parameters_for(nb, point.parameters, status.get("notebook_parameters", {}).get(nb, {}))
            run_notebook(nb, run_dir, params)
        except PapermillExecutionError as e:
            point.write_status(status="failed", error=f"{e.ename}: {e.evalue}"[:500],
                               wall_s=time.perf_counter() - t0)
            return 1
        except Exception as e:  # the kernel died, the notebook could not start, ...
            point.write_status(status="failed", error=f"{type(e).__name__}: {e}"[:500],
                               wall_s=time.perf_counter() - t0)
            return 1
    point.write_status(status="done", error=None, wall_s=time.perf_counter() - t0)
    return 0


# ---------------------------------------------------------------------------- the summary
def summary_row(point: Point) -> dict[str, Any]:
    """What summary.csv says about a point: status, parameters, final metrics, times, eval scores."""
    status = point.status()
    row: dict[str, Any] = {"point": point.name, "status": status.get("status", "pending")}
    row |= {k: _cell(v) for k, v in point.parameters.items()}
    metrics = RunFolder(point.run_dir).read_metrics()
    if metrics.get("step"):
        last = {k: v[-1] for k, v in metrics.items() if v}
        row |= {k: last[k] for k in METRIC_COLUMNS if k in last and k != "time_s"}
        row |= {k: v for k, v in last.items() if k not in METRIC_COLUMNS}
        row["train_s"] = round(last.get("time_s", float("nan")), 2)
    if status.get("wall_s") is not None:
        row["wall_s"] = round(status["wall_s"], 2)
    eval_path = point.run_dir / "eval.json"
    if eval_path.is_file():
        try:
            row |= {f"eval_{k}": v for k, v in _flatten(json.loads(eval_path.read_text())).items()}
        except json.JSONDecodeError:
            row["eval_error"] = f"{eval_path} is not valid JSON"
    row["notebook"] = status.get("notebook", "")
    row["error"] = status.get("error") or ""
    return row


def _cell(value: Any) -> Any:
    return "" if value is None else value


def _flatten(value: Any, prefix: str = "") -> dict[str, float]:
    """The numbers in a JSON value, keyed by their path (``fid``, ``per_class.3``)."""
    if isinstance(value, bool):
        return {}
    if isinstance(value, int | float):
        return {prefix or "value": value}
    out: dict[str, float] = {}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        out |= _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    return out


def write_summary(out_dir: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """``summary.csv``: one row per point, the columns of every row (in order of appearance)."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    columns = [c for c in columns if c not in ("notebook", "error")] + ["notebook", "error"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    # A text value a spreadsheet would run as a formula (a grid value "=...") is stored as text.
    writer.writerows({k: spreadsheet_safe(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows)
    path = Path(out_dir) / SUMMARY
    atomic_write_text(path, buf.getvalue())
    return path


def read_summary(out_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """``summary.csv`` of a sweep folder as rows, numbers as numbers."""
    path = Path(out_dir) / SUMMARY
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run the sweep first (python -m audiogan.cli.sweep FILE).")
    with open(path, newline="") as f:
        return [{k: _number(from_spreadsheet(v)) for k, v in row.items()} for row in csv.DictReader(f)]


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            pass
    return text


def refresh_summary(out_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Read every point of a sweep folder again (metrics, status, and ``eval.json`` files written
    since, e.g. by ``05_evaluate``), rewrite ``summary.csv`` and return its rows."""
    out_dir = Path(out_dir)
    if not (out_dir / "sweep.yaml").is_file():
        raise FileNotFoundError(
            f"{out_dir} is not a sweep folder (no sweep.yaml): run the sweep first (python -m audiogan.cli.sweep FILE)."
        )
    points = load(out_dir / "sweep.yaml", out_dir).points()
    write_summary(out_dir, [summary_row(p) for p in points])
    return read_summary(out_dir)


def grid_keys(out_dir: str | os.PathLike) -> list[str]:
    """The parameters a sweep folder's points differ in (its grid), read from ``sweep.yaml``."""
    import yaml

    path = Path(out_dir) / "sweep.yaml"
    return list((yaml.safe_load(path.read_text()) or {}).get("grid") or {}) if path.is_file() else []


def histories(out_dir: str | os.PathLike) -> dict[str, dict[str, list[float]]]:
    """``metrics.csv`` of every point that logged something, keyed by point name (for plots)."""
    out = {}
    for row in read_summary(out_dir):
        if not _POINT.fullmatch(str(row["point"])):  # a point's folder is a slug inside the sweep's
            continue
        metrics = RunFolder(Path(out_dir) / str(row["point"])).read_metrics()
        if metrics.get("step"):
            out[str(row["point"])] = metrics
    return out


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, sort_by: str = ""):
    """The summary as an HTML table (for a notebook), sorted by ``sort_by`` when given."""
    import html

    from IPython.display import HTML

    if not rows:
        return HTML("<p>no points yet</p>")
    columns = list(columns or rows[0])
    if sort_by:
        if sort_by not in rows[0]:
            raise ConfigError(
                f"sort_by={sort_by!r} is not a column of the summary; choose one of {', '.join(rows[0])}."
            )
        rows = sorted(rows, key=lambda r: (not isinstance(r[sort_by], int | float), r[sort_by]))

    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{fmt(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows)
    return HTML(f"<table><tr>{head}</tr>{body}</table>")


# ---------------------------------------------------------------------------- the driver
@dataclasses.dataclass
class SweepResult:
    out_dir: Path
    done: list[str]
    failed: dict[str, str]  # point -> "error (see NOTEBOOK)"
    skipped: list[str]
    summary: Path


def run(sweep: Sweep, jobs: int = 1, log=print, poll_s: float = 0.5) -> SweepResult:
    """Run every point that is not done yet, ``jobs`` at a time, each in its own process."""
    if jobs < 1:
        raise ConfigError(f"jobs={jobs} must be 1 or more.")
    sweep.check()  # a Sweep made by hand is checked like one read from a file, before anything is written
    import yaml

    out = sweep.out_dir
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "sweep.yaml", yaml.safe_dump({
        "name": sweep.name, "out_dir": str(out), "notebooks": list(sweep.notebooks),
        "parameters": sweep.parameters, "grid": sweep.grid, "notebook_parameters": sweep.notebook_parameters,
    }, sort_keys=False))
    points = sweep.points()
    skipped = [p.name for p in points if p.is_done()]
    # A point whose process outlived an earlier sweep (that sweep was killed) is left to finish:
    # two trainings in one run folder would write over each other.
    busy = [p.name for p in points if p.status().get("status") == "running" and _alive(p.status().get("pid"))]
    for name in busy:
        log(f"[sweep] {name} is still running from an earlier sweep ({sweep.out_dir / name / POINT_FILE}); "
            "left alone")
    todo = [p for p in points if p.name not in skipped and p.name not in busy]
    for p in todo:
        p.write_status(status="pending", parameters=_jsonable(p.parameters), varied=_jsonable(p.varied),
                       notebooks=list(sweep.notebooks), notebook_parameters=sweep.notebook_parameters,
                       error=None, pid=None)
    summary = write_summary(out, [summary_row(p) for p in points])
    log(f"[sweep] {sweep.name}: {len(points)} points, {len(skipped)} done already, {len(todo)} to run "
        f"({jobs} at a time) -> {out}")

    running: dict[str, tuple[Point, subprocess.Popen, Any]] = {}
    done, failed = [], {}
    queue = list(todo)
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    try:
        while queue or running:
            while queue and len(running) < jobs:
                p = queue.pop(0)
                logf = open(p.run_dir / "sweep.log", "a")  # noqa: SIM115  closed when the point ends
                proc = subprocess.Popen([sys.executable, "-m", "audiogan.cli.sweep", "--run-point", str(p.run_dir)],
                                        stdout=logf, stderr=subprocess.STDOUT, env=env)
                p.write_status(status="running", pid=proc.pid)
                running[p.name] = (p, proc, logf)
                log(f"[sweep] started {p.name} (process {proc.pid})")
            time.sleep(poll_s)
            for name in [n for n, (_, proc, _) in running.items() if proc.poll() is not None]:
                p, proc, logf = running.pop(name)
                logf.close()
                status = p.status()
                if proc.returncode != 0 and status.get("status") != "failed":
                    how = (f"signal {signal.Signals(-proc.returncode).name}" if proc.returncode < 0
                           else f"exit code {proc.returncode}")
                    status = p.write_status(status="failed", error=f"the point's process ended with {how}")
                if status.get("status") == "done":
                    done.append(name)
                    log(f"[sweep] done {name} in {status.get('wall_s', 0):.0f} s")
                else:
                    failed[name] = f"{status.get('error')} (see {status.get('notebook') or p.run_dir / 'sweep.log'})"
                    log(f"[sweep] FAILED {name}: {failed[name]}")
                write_summary(out, [summary_row(q) for q in points])
    finally:
        for p, proc, logf in running.values():  # interrupted: stop the points in flight
            proc.terminate()
            proc.wait()
            logf.close()
            p.write_status(status="failed", error="the sweep was interrupted")
        write_summary(out, [summary_row(q) for q in points])
    log(f"[sweep] {len(done)} done, {len(skipped)} skipped (done before), {len(failed)} failed; "
        f"summary in {summary}")
    for name, why in failed.items():
        log(f"[sweep]   {name}: {why}")
    if failed:
        log("[sweep] run the sweep again to retry the failed points; they resume from their checkpoints.")
    return SweepResult(out, done, failed, skipped, summary)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
