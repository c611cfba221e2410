"""Every notebook, run headless by papermill with smoke parameters, and what it wrote."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import soundfile as sf
from papermill.exceptions import PapermillExecutionError

from audiogan import listening
from audiogan.listening import latent
from audiogan.pipeline import NOTEBOOKS, notebooks_dir, run_notebook, run_pipeline
from audiogan.runs import RunFolder

pytestmark = pytest.mark.slow

DATA = {"dataset": "tones", "sample_rate": 8000, "clip_samples": 2048, "n_clips": 256, "seed": 0}
TRAIN = DATA | {
    "model": "mlp", "loss": "ns", "steps": 300, "batch_size": 32, "log_every": 10,
    "preview_every": 100, "checkpoint_every": 50, "n_previews": 2, "live_plot": True,
}
SMOKE = {"01_data": DATA | {"n_show": 4}, "02_train": TRAIN, "03_loss_curves": {},
         "04_listening_test": {"n_samples": 3, "seed": 1, "n_per_source": 3, "n_path": 3}}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("smoke") / "run"
    run_pipeline(run_dir, SMOKE, log=lambda *_: None)
    return run_dir


def errors_in(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [o.get("ename") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "error"]


def test_stored_notebooks_are_clean_and_parameterised():
    for name in NOTEBOOKS:
        nb = nbformat.read(notebooks_dir() / f"{name}.ipynb", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), name
        assert all(not c.outputs and c.execution_count is None for c in code), f"{name} has outputs"
        assert len(code) <= 20, name
        assert nb.cells[-1].cell_type == "markdown" and "Summary" in nb.cells[-1].source, name


def test_pipeline_writes_the_run_folder(smoke_run):
    run = RunFolder(smoke_run)
    for name in NOTEBOOKS:
        assert (smoke_run / f"{name}.ipynb").is_file() and not errors_in(smoke_run / f"{name}.ipynb")
    # 01_data
    summary = json.loads((smoke_run / "data" / "summary.json").read_text())
    assert summary["clips"] == 256 and summary["sample_rate"] == 8000
    assert (smoke_run / "data" / "levels.png").stat().st_size > 1000
    # 02_train
    cfg = run.config()
    assert (cfg.steps, cfg.batch_size, cfg.clip_samples, cfg.label_smoothing) == (300, 32, 2048, 0.9)
    metrics = run.read_metrics()
    assert metrics["step"] == [float(s) for s in range(10, 301, 10)]
    assert all(np.isfinite(metrics["g_loss"]))
    assert run.latest_step() == 300
    wav, sr = sf.read(run.sample_dir(300) / "sample_0.wav")
    assert sr == 8000 and wav.shape == (2048,)
    # 03_loss_curves
    assert (smoke_run / "loss_curves.png").stat().st_size > 1000
    assert (smoke_run / "loss_curves_time.png").stat().st_size > 1000
    # 04_listening_test
    generated = sorted((smoke_run / "generated").glob("sample_*.wav"))
    assert [p.name for p in generated] == ["sample_00.wav", "sample_01.wav", "sample_02.wav"]
    pitch = json.loads((smoke_run / "generated" / "pitch.json").read_text())
    assert pitch["n_clips"] == 3 and pitch["pitch_range_hz"] == pytest.approx([130.81, 523.25], abs=0.01)
    # 04: the blind test (run clips and as many real ones), its page, the analysis of no answers yet,
    # and the latent explorer's saved vectors.
    test = listening.load_test(smoke_run / "listening")
    assert sorted(c["source"] for c in test.clips) == ["real"] * 3 + ["run"] * 3
    assert len(list((smoke_run / "listening" / "clips").glob("c*.wav"))) == 6
    assert (smoke_run / "listening" / "test.html").read_text().count("data:audio/wav;base64,") == 6
    assert json.loads((smoke_run / "listening" / "analysis.json").read_text())["n_answers"] == 0
    assert latent.saved(smoke_run) == ["ends"] and latent.load(smoke_run, "ends").shape == (2, 100)
    # The executed training and listening notebooks show pictures and audio players.
    for name in ("02_train", "04_listening_test"):
        nb = nbformat.read(smoke_run / f"{name}.ipynb", as_version=4)
        outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
        assert "image/png" in outputs and "<audio" in outputs, name


def committed_steps(folder: Path) -> list[int]:
    """Checkpoint steps that orbax has finished writing (it renames a temporary folder when done)."""
    if not folder.is_dir():
        return []
    return [int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / "commit_success.txt").exists()]


def test_killed_training_notebook_resumes_to_the_same_losses(smoke_run, tmp_path):
    """02_train killed with SIGKILL half-way, then run again, ends like the uninterrupted run."""
    run_dir = tmp_path / "killed"
    script = (
        "from audiogan.pipeline import run_notebook; "
        f"run_notebook('02_train', {str(run_dir)!r}, {TRAIN!r})"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run = RunFolder(run_dir)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if max(committed_steps(run_dir / "checkpoints"), default=0) >= 100:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before it could be killed: " + proc.stderr.read().decode()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = run.latest_step()
    assert killed_at is not None and 100 <= killed_at < 300
    run.close()

    output = run_notebook("02_train", run_dir, TRAIN)
    nb_text = output.read_text()
    assert f"resumed from the checkpoint at step {killed_at}" in nb_text
    resumed, whole = RunFolder(run_dir).read_metrics(), RunFolder(smoke_run).read_metrics()
    assert resumed["step"] == whole["step"]
    for col in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert resumed[col] == whole[col], col


@pytest.mark.parametrize(("model", "conditional"), [("wavegan", True), ("specgan", False)])
def test_paper_models_through_train_curves_and_listening_notebooks(model, conditional, tmp_path):
    """02 -> 03 -> 04 for WaveGAN and SpecGAN (WGAN-GP, tiny width): trains, checkpoints, resumes,
    previews, plots the Wasserstein estimate and plays clips loaded from the run folder alone.
    The WaveGAN run is conditional on the tones' notes, so the notebooks are run on one of those too."""
    run_dir = tmp_path / model
    train_params = {"dataset": "tones", "model": model, "d": 2, "batch_size": 8, "n_clips": 32,
                    "steps": 4, "n_critic": 2, "log_every": 2, "preview_every": 4, "checkpoint_every": 2,
                    "n_previews": 2, "live_plot": False, "conditional": conditional}
    run_pipeline(run_dir, {"02_train": train_params,
                           "04_listening_test": {"n_samples": 2, "n_per_source": 2, "n_path": 2}},
                 notebooks=("02_train", "03_loss_curves", "04_listening_test"), log=lambda *_: None)
    run = RunFolder(run_dir)
    cfg = run.config()
    assert (cfg.model, cfg.loss, cfg.gp_weight, cfg.lr, cfg.beta2) == (model, "wgan-gp", 10.0, 1e-4, 0.9)
    assert {"wasserstein", "gp"} <= set(run.read_metrics())
    assert (run.sample_dir(4) / "sample_1.wav").is_file()
    wav, sr = sf.read(run_dir / "generated" / "sample_01.wav")
    assert sr == 16000 and wav.shape == (16384,)
    assert "<audio" in (run_dir / "04_listening_test.ipynb").read_text()
    if conditional:  # the notes the run was trained on are stored with it
        classes = run.read_json("classes.json")
        assert len(classes) >= 2 and all(48 <= int(c) <= 72 for c in classes)
    # Asking for more steps continues the same run from its last checkpoint.
    run_notebook("02_train", run_dir, train_params | {"steps": 6})
    assert "resumed from the checkpoint at step 4" in (run_dir / "02_train.ipynb").read_text()
    assert run.read_metrics()["step"] == [2.0, 4.0, 6.0]


@pytest.mark.parametrize(
    ("notebook", "params", "expected"),
    [
        ("02_train", {"model": "transformer"}, ["model='transformer'", "'mlp'"]),
        ("02_train", {"loss": "wasserstein"}, ["loss='wasserstein'", "'ns'", "'hinge'", "'lsgan'", "'wgan-gp'"]),
        ("02_train", {"model": "wavegan", "clip_samples": 1000}, ["clip_samples=1000", "16384", "65536"]),
        ("01_data", {"dataset": "birdsong"}, ["dataset='birdsong'", "tones", "folder"]),
        ("01_data", {"dataset": "/no/such/folder"}, ["dataset='/no/such/folder'", "tones"]),
        ("01_data", {"dataset": "EMPTY"}, ["holds no audio files"]),
        ("01_data", {"dataset": "BROKEN"}, ["can be read", "not_audio.wav"]),
    ],
)
def test_bad_parameters_stop_at_the_validation_cell(notebook, params, expected, tmp_path):
    if params.get("dataset") == "EMPTY":
        (tmp_path / "empty").mkdir()
        params = {"dataset": str(tmp_path / "empty")}
    elif params.get("dataset") == "BROKEN":
        (tmp_path / "broken").mkdir()
        (tmp_path / "broken" / "not_audio.wav").write_text("this is not a wave file")
        params = {"dataset": str(tmp_path / "broken")}
    with pytest.raises(PapermillExecutionError) as info:
        run_notebook(notebook, tmp_path / "run", params)
    assert info.value.ename == "ConfigError"
    for text in expected:
        assert text in info.value.evalue, (text, info.value.evalue)
    # It stopped in the cell that validates the parameters, before any work was done.
    nb = nbformat.read(tmp_path / "run" / f"{notebook}.ipynb", as_version=4)
    failed = [c for c in nb.cells if c.cell_type == "code" and any(o.get("output_type") == "error" for o in c.outputs)]
    assert len(failed) == 1 and "config_from(globals())" in failed[0].source
    assert not (tmp_path / "run" / "config.json").exists()
