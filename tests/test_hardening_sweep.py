"""Sweep files and notebook parameters are untrusted input: a key is a parameter of the notebook it
goes to, a notebook is one of notebooks/, a value is a plain scalar, and every point stays inside
the sweep's folder. Nothing is written before all of that is checked."""

import ast
import logging
from pathlib import Path

import nbformat
import papermill
import pytest
import yaml

from audiogan import pipeline, sweep
from audiogan.cli import sweep as sweep_cli
from audiogan.errors import ConfigError
from audiogan.pipeline import notebooks_dir, run_notebook

INJECTION = "x = 1\nimport pathlib; pathlib.Path('PWNED').write_text('ran')\ny"


@pytest.fixture(autouse=True)
def nothing_runs(tmp_path, monkeypatch):
    """Each test in a folder of its own, where neither a notebook nor a point's process can start."""
    monkeypatch.chdir(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("something was started")

    monkeypatch.setattr(papermill, "execute_notebook", refuse)
    monkeypatch.setattr(sweep.subprocess, "Popen", refuse)


def write_spec(tmp_path: Path, text: str) -> Path:
    spec = tmp_path / "hostile.yaml"
    spec.write_text(text)
    return spec


def nothing_written(tmp_path: Path) -> bool:
    return sorted(p.name for p in tmp_path.rglob("*")) == ["hostile.yaml"]


# ---------------------------------------------------------------------------- papermill's inspection
def assigned_names(cell_source: str) -> list[str]:
    names = []
    for node in ast.parse(cell_source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


@pytest.mark.parametrize("path", sorted(notebooks_dir().glob("*.ipynb")), ids=lambda p: p.stem)
def test_papermill_inspection_finds_every_parameter_of_every_notebook(path, caplog):
    nb = nbformat.read(path, as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])][:1]
    with caplog.at_level(logging.WARNING, logger="papermill"):
        found = list(papermill.inspect_notebook(str(path)))
    assert not [r.getMessage() for r in caplog.records if "Unable to parse" in r.getMessage()]
    assert found == assigned_names(cell.source)
    assert list(pipeline.notebook_parameters(path.stem)) == found


# ---------------------------------------------------------------------------- sweep files
def test_a_hostile_grid_key_is_refused_and_no_file_is_written(tmp_path):
    spec = write_spec(tmp_path, yaml.safe_dump({"out_dir": str(tmp_path / "out"), "grid": {INJECTION: [1]}}))
    with pytest.raises(ConfigError, match="is not a parameter name") as e:
        sweep.load(spec)
    assert "hostile.yaml" in str(e.value)
    assert nothing_written(tmp_path) and not (tmp_path / "PWNED").exists()
    # The command line says so and exits 2, writing nothing either.
    assert sweep_cli.main([str(spec)]) == 2
    assert nothing_written(tmp_path)


@pytest.mark.parametrize("where", ["parameters", "grid"])
def test_a_key_that_is_python_but_no_parameter_is_refused(tmp_path, where):
    value = "[1]" if where == "grid" else "1"
    spec = write_spec(tmp_path, f"{where}: {{__import__: {value}}}\n")
    with pytest.raises(ConfigError, match="__import__ is not a parameter of 02_train; their parameters are "
                                          r"batch_size, checkpoint_every, .*steps"):
        sweep.load(spec, tmp_path / "out")
    assert nothing_written(tmp_path)


def test_a_sweep_made_by_hand_is_checked_before_anything_is_written(tmp_path):
    s = sweep.Sweep("x", tmp_path / "out", ("02_train",), {}, {INJECTION: [1]}, {})
    with pytest.raises(ConfigError, match="is not a parameter name"):
        sweep.run(s, log=lambda *_: None)
    assert not (tmp_path / "out").exists()


def test_a_key_with_dot_dot_cannot_put_a_point_outside_the_sweep(tmp_path):
    spec = write_spec(tmp_path, "grid: {'../../escape': [1]}\n")
    with pytest.raises(ConfigError, match="'../../escape' is not a parameter name"):
        sweep.load(spec, tmp_path / "out")
    assert nothing_written(tmp_path)
    # Even a Sweep that skipped the checks keeps its points' folders inside its own.
    s = sweep.Sweep("x", tmp_path / "out", ("02_train",), {}, {"../../escape": [1]}, {})
    with pytest.raises(ConfigError, match="would write outside"):
        s.points()


def test_grid_values_become_slugs_inside_the_sweep_folder(tmp_path):
    spec = write_spec(tmp_path, "grid: {dataset: ['../../etc', '/abs/path', 'x/../../y', '" + "w" * 300 + "']}\n")
    s = sweep.load(spec, tmp_path / "out")
    for p in s.points():
        assert p.run_dir.resolve().parent == (tmp_path / "out").resolve() and len(p.name) <= 120
        assert p.parameters["dataset"] == p.varied["dataset"]  # the value itself is passed on unchanged
    assert [p.name for p in s.points()][:2] == ["dataset-..-..-etc", "dataset-abs-path"]


def test_two_grid_values_that_share_a_folder_are_refused(tmp_path):
    spec = write_spec(tmp_path, "grid: {dataset: ['a b', 'a-b']}\n")
    with pytest.raises(ConfigError, match="give the same folder 'dataset-a-b'"):
        sweep.load(spec, tmp_path / "out")


@pytest.mark.parametrize("notebook", ["../notebooks/02_train", "02_train.ipynb", "/etc/passwd", "..", ""])
def test_a_notebook_is_named_not_given_as_a_path(tmp_path, notebook):
    spec = write_spec(tmp_path, f"notebooks: [{notebook!r}]\n")
    with pytest.raises(ConfigError, match=f"notebook {notebook!r} does not exist in .*: 00_gan_intuition, "):
        sweep.load(spec, tmp_path / "out")
    assert nothing_written(tmp_path)


@pytest.mark.parametrize(("text", "message"), [
    ("name: ../../elsewhere", "name='../../elsewhere' must be a plain name"),
    ("notebook_parameters: {04_listening_test: {n_samples: 4}}",
     "'04_listening_test' is not one of the sweep's notebooks (02_train)"),
    ("notebooks: [02_train, 04_listening_test]\nnotebook_parameters: {04_listening_test: {steps: 4}}",
     "notebook_parameters: 04_listening_test: steps is not a parameter of 04_listening_test; its parameters "
     "are run_dir, n_samples"),
    ("notebook_parameters: {02_train: {run_dir: x}}", "run_dir is set by the sweep"),
    ("parameters: {seed: 2020-01-01}", "seed: notebook parameters are flat values"),
    ("parameters: {dataset: !!binary aGVsbG8=}", "dataset: notebook parameters are flat values"),
    ("grid: {seed: [1, {a: 1}]}", "seed: notebook parameters are flat values"),
    ("grid: {seed: [1, 2], lr: [1, 2], steps: [1, 2], d: [1, 2], n_critic: " + str(list(range(2000))) + "}",
     "the grid has 32000 points; a sweep runs at most 10000"),
])
def test_other_hostile_or_mistaken_sweeps_are_named(tmp_path, text, message):
    spec = write_spec(tmp_path, text + "\n")
    with pytest.raises(ConfigError) as e:
        sweep.load(spec, tmp_path / "out")
    assert message in str(e.value) and "hostile.yaml" in str(e.value)
    assert nothing_written(tmp_path)


def test_a_default_name_from_the_file_name_is_a_slug(tmp_path):
    spec = tmp_path / "my sweep (2).yaml"
    spec.write_text("grid: {seed: [0]}\n")
    assert sweep.load(spec).name == "my-sweep-2"


def test_each_notebook_of_a_point_gets_only_its_own_parameters():
    ablation = sweep.load(Path(sweep.__file__).resolve().parents[2] / "sweeps" / "loss_ablation.yaml")
    point = ablation.points()[0]
    listen = sweep.parameters_for("04_listening_test", point.parameters,
                                  ablation.notebook_parameters["04_listening_test"])
    assert listen == {"seed": 1, "n_samples": 8}  # no dataset, model, loss or steps
    train = sweep.parameters_for("02_train", point.parameters, {})
    assert train["loss"] == "ns" and train["steps"] == 500


# ---------------------------------------------------------------------------- run_notebook
@pytest.mark.parametrize(("name", "params", "message"), [
    ("02_train", {"stepz": 5}, "stepz is not a parameter of 02_train; its parameters are run_dir, preset,"),
    ("02_train", {INJECTION: 1}, "is not a parameter name"),
    ("02_train", {"steps": [1, 2]}, "steps: notebook parameters are flat values"),
    ("02_train", {"steps": Path("x")}, "steps: notebook parameters are flat values"),
    ("06_compare", {"run_dir": "x"}, "run_dir is not a parameter of 06_compare"),
    ("../notebooks/02_train", {}, "notebook '../notebooks/02_train' does not exist"),
    ("02_train.ipynb", {}, "notebook '02_train.ipynb' does not exist"),
])
def test_run_notebook_refuses_unknown_notebooks_and_parameters_before_writing(tmp_path, name, params, message):
    with pytest.raises(ConfigError) as e:
        run_notebook(name, tmp_path / "run", params)
    assert message in str(e.value)
    assert not (tmp_path / "run").exists() and not (tmp_path / "PWNED").exists()


def test_run_pipeline_checks_every_notebook_before_the_first_runs(tmp_path):
    with pytest.raises(ConfigError, match="n_sample is not a parameter of 04_listening_test"):
        pipeline.run_pipeline(tmp_path / "run", {"01_data": {}, "04_listening_test": {"n_sample": 3}},
                              log=lambda *_: None)
    assert not (tmp_path / "run").exists()


def test_summary_values_a_spreadsheet_would_run_are_stored_as_text(tmp_path):
    spec = write_spec(tmp_path, "grid: {dataset: ['=HYPERLINK(\"x\")', '-1', '@SUM(A1)']}\n")
    s = sweep.load(spec, tmp_path / "out")
    s.out_dir.mkdir()
    sweep.write_summary(s.out_dir, [sweep.summary_row(p) for p in s.points()])
    text = (s.out_dir / sweep.SUMMARY).read_text()
    assert "'=HYPERLINK" in text and ",'-1," in text and ",'@SUM(A1)," in text
    assert [r["dataset"] for r in sweep.read_summary(s.out_dir)] == ['=HYPERLINK("x")', -1, "@SUM(A1)"]
