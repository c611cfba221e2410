"""Sweeps: the grid, a point killed mid-run, a failing point, resuming, the summary, 06_compare."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from audiogan import sweep
from audiogan.config import ConfigError
from audiogan.pipeline import notebooks_dir, run_notebook
from audiogan.runs import RunFolder

SMOKE = Path(__file__).resolve().parents[1] / "sweeps" / "smoke.yaml"


def finished_checkpoints(run_dir: Path) -> list[int]:
    """Checkpoint steps orbax has finished (it renames a temporary folder when one is complete)."""
    folder = run_dir / "checkpoints"
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """The smoke sweep, two points at a time; loss-ns is SIGKILLed after its first checkpoint.
    Then the sweep is run again."""
    out = tmp_path_factory.mktemp("sweep") / "smoke"
    driver = subprocess.Popen(
        [sys.executable, "-m", "audiogan.cli.sweep", str(SMOKE), "--jobs", "2", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    victim = out / "loss-ns"
    try:
        deadline = time.monotonic() + 300
        while not finished_checkpoints(victim) and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        status = json.loads((victim / sweep.POINT_FILE).read_text())
        assert status["status"] == "running" and finished_checkpoints(victim), status
        os.kill(status["pid"], signal.SIGKILL)
        first_log = driver.communicate(timeout=300)[0]
    finally:
        driver.kill()
    first_summary = sweep.read_summary(out)
    lines = []
    second = sweep.run(sweep.load(SMOKE, out), jobs=2, log=lines.append)
    return out, driver.returncode, first_log, first_summary, second, sweep.read_summary(out)


@pytest.mark.slow
def test_a_killed_point_does_not_stop_the_others_and_resumes_from_its_checkpoint(killed_and_resumed):
    out, rc, log, first, second, summary = killed_and_resumed
    assert rc == 1, log  # some points failed
    by_point = {r["point"]: r for r in first}
    assert list(by_point) == ["loss-ns", "loss-hinge", "loss-nonsense"]  # every point, in grid order
    assert by_point["loss-ns"]["status"] == "failed" and "SIGKILL" in by_point["loss-ns"]["error"], log
    assert by_point["loss-hinge"]["status"] == "done" and by_point["loss-hinge"]["step"] == 300

    # Run again: the finished point is skipped, the killed one resumes from its checkpoint.
    assert second.skipped == ["loss-hinge"] and second.done == ["loss-ns"]
    executed = (out / "loss-ns" / "02_train.ipynb").read_text()
    assert "resumed from the checkpoint at step" in executed
    steps = RunFolder(out / "loss-ns").read_metrics()["step"]
    assert steps == sorted(set(steps)) and steps[-1] == 300  # no row twice, none lost at the end
    rows = {r["point"]: r for r in summary}
    assert [rows[p]["status"] for p in ("loss-ns", "loss-hinge", "loss-nonsense")] == ["done", "done", "failed"]
    for p in ("loss-ns", "loss-hinge"):
        assert rows[p]["step"] == 300 and rows[p]["wall_s"] > 0 and rows[p]["train_s"] > 0
        assert isinstance(rows[p]["d_loss"], float) and isinstance(rows[p]["g_loss"], float)
        assert rows[p]["loss"] == p.removeprefix("loss-") and rows[p]["batch_size"] == 16


@pytest.mark.slow
def test_a_failing_point_is_listed_with_the_notebook_that_shows_the_error(killed_and_resumed):
    out, _, log, _, second, summary = killed_and_resumed
    notebook = out / "loss-nonsense" / "02_train.ipynb"
    assert "loss-nonsense: ConfigError: loss='nonsense' is unknown" in log and str(notebook) in log
    assert "nonsense" in second.failed["loss-nonsense"] and str(notebook) in second.failed["loss-nonsense"]
    row = next(r for r in summary if r["point"] == "loss-nonsense")
    assert row["notebook"] == str(notebook) and "ConfigError" in row["error"]
    errors = [o for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors and errors[0]["ename"] == "ConfigError"


@pytest.mark.slow
def test_06_compare_overlays_and_tabulates_the_sweep(killed_and_resumed):
    out = killed_and_resumed[0]
    (out / "loss-hinge" / "eval.json").write_text(json.dumps({"inception_score": 1.5, "per_class": [0.1]}))
    executed = run_notebook("06_compare", out, {"sweep_dir": str(out)})
    nb = nbformat.read(executed, as_version=4)
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "eval_inception_score" in text and "loss-nonsense" in text
    assert (out / "compare_steps.png").stat().st_size > 10_000
    assert (out / "compare_time.png").stat().st_size > 10_000


def test_stored_06_compare_is_clean_and_parameterised():
    nb = nbformat.read(notebooks_dir() / "06_compare.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert nb.cells[-1].cell_type == "markdown" and "Summary" in nb.cells[-1].source


def test_grid_points_and_summary_rows(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("parameters: {steps: 5}\ngrid: {loss: [ns, hinge], lr: [0.001, 2.0e-4]}\n")
    s = sweep.load(spec, tmp_path / "out")
    points = s.points()
    assert [p.name for p in points] == ["loss-ns_lr-0.001", "loss-ns_lr-0.0002", "loss-hinge_lr-0.001",
                                        "loss-hinge_lr-0.0002"]
    assert points[1].parameters == {"steps": 5, "loss": "ns", "lr": 2e-4}
    assert s.name == "s" and s.notebooks == ("02_train",)
    # A point with metrics and eval.json: the last row, and the eval scores, flattened.
    p = points[0]
    RunFolder(p.run_dir).append_metrics([{"step": 5, "time_s": 1.5, "d_loss": 0.5, "g_loss": 2.0,
                                          "d_real": 0.7, "d_fake": 0.2}])
    (p.run_dir / "eval.json").write_text(json.dumps({"fid": 3.0, "classes": {"a": 0.5}, "note": "x"}))
    row = sweep.summary_row(p)
    assert row["status"] == "pending" and row["step"] == 5 and row["g_loss"] == 2.0 and row["train_s"] == 1.5
    assert row["eval_fid"] == 3.0 and row["eval_classes.a"] == 0.5 and "eval_note" not in row
    sweep.write_summary(s.out_dir, [row, sweep.summary_row(points[1])])
    back = sweep.read_summary(s.out_dir)
    assert back[0]["eval_fid"] == 3.0 and back[1]["point"] == "loss-ns_lr-0.0002" and back[1]["step"] == ""


@pytest.mark.parametrize("text, message", [
    ("grid: {loss: ns}", "grid: loss must be a non-empty list"),
    ("parameters: {run_dir: x}", "run_dir is set by the sweep"),
    ("grids: {loss: [ns]}", "unknown key(s) grids"),
    ("notebooks: [07_nothing]", "notebook '07_nothing' does not exist"),
    ("parameters: {loss: ns}\ngrid: {loss: [ns]}", "loss is both in parameters and in grid"),
    ("parameters: {steps: [1, 2]}", "steps: notebook parameters are flat values"),
    ("grid: [", "is not valid YAML"),
])
def test_mistakes_in_a_sweep_file_name_the_file(tmp_path, text, message):
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    with pytest.raises(ConfigError, match="bad.yaml") as e:
        sweep.load(spec)
    assert message in str(e.value)


def test_the_shipped_sweeps_load():
    for path in sorted(SMOKE.parent.glob("*.yaml")):
        s = sweep.load(path)
        assert s.points(), path
    ablation = sweep.load(SMOKE.parent / "loss_ablation.yaml")
    assert [p.parameters["loss"] for p in ablation.points()] == ["ns", "hinge", "lsgan", "wgan-gp"]


def test_a_point_still_running_from_an_earlier_sweep_is_left_alone(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("grid: {loss: [ns]}\n")
    s = sweep.load(spec, tmp_path / "out")
    (point,) = s.points()
    point.write_status(status="running", pid=os.getpid(), parameters=point.parameters)  # alive: this process
    lines = []
    result = sweep.run(s, log=lines.append)
    assert result.done == [] and result.failed == {} and any("still running" in line for line in lines)
    assert point.status()["status"] == "running"
