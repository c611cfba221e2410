"""07_vocoder run headless by papermill at a tiny size, and what it wrote."""

import json

import nbformat
import numpy as np
import pytest
from papermill.exceptions import PapermillExecutionError

from audiogan.pipeline import notebooks_dir, run_notebook
from audiogan.runs import RunFolder

SMOKE = {"dataset": "tones", "model": "hifigan", "variant": "tiny", "steps": 20, "batch_size": 4, "seed": 0,
         "sample_rate": 8000, "segment_samples": 256, "clip_samples": 8192, "n_clips": 40, "eval_clips": 3,
         "log_every": 5, "checkpoint_every": 10, "n_show": 2}
METRICS = {"mrstft", "mel_l1", "lsd", "si_sdr", "stoi"}


def test_the_stored_notebook_is_clean_and_parameterised():
    nb = nbformat.read(notebooks_dir() / "07_vocoder.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert all(not c.outputs and c.execution_count is None for c in code) and len(code) <= 20
    assert nb.cells[-1].cell_type == "markdown" and "Summary" in nb.cells[-1].source
    for name in ("run_dir", "dataset", "model", "variant", "steps", "batch_size", "sample_rate", "segment_samples",
                 "seed"):
        assert f"\n{name} = " in "\n" + code[0].source, name


@pytest.mark.slow
def test_the_notebook_trains_scores_against_griffin_lim_and_then_only_loads(tmp_path):
    run_dir = tmp_path / "vocoder"
    output = run_notebook("07_vocoder", run_dir, SMOKE)
    run = RunFolder(run_dir)
    assert run.latest_step() == 20
    assert run.read_metrics()["step"] == [5.0, 10.0, 15.0, 20.0]
    scores = json.loads((run_dir / "vocoder_eval.json").read_text())
    assert set(scores) >= {"ground_truth", "vocoder", "griffin_lim"}
    for condition in ("ground_truth", "vocoder", "griffin_lim"):
        assert set(scores[condition]) == METRICS and all(np.isfinite(list(scores[condition].values())))
    assert scores["ground_truth"]["mrstft"] == 0 and scores["ground_truth"]["si_sdr"] > 100
    assert scores["vocoder"]["mrstft"] > 0 and scores["griffin_lim"]["mrstft"] > 0
    assert (scores["clips"], scores["samples"], scores["griffin_lim_iters"]) == (3, 8192, 32)
    text = output.read_text()
    assert "image/png" in text and "<audio" in text
    again = run_notebook("07_vocoder", run_dir, SMOKE)
    assert "loaded the finished run" in again.read_text()


@pytest.mark.slow
def test_a_bad_variant_stops_at_the_validation_cell(tmp_path):
    with pytest.raises(PapermillExecutionError, match="variant='v4' is not a hifigan variant"):
        run_notebook("07_vocoder", tmp_path / "bad", SMOKE | {"variant": "v4"})
