"""01_data headless (papermill) on digits, tones, drums and a folder with bad files: counts per
class and split, examples to hear, and the skipped-file report."""

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest
import soundfile as sf

from audiogan.pipeline import run_notebook

pytestmark = pytest.mark.slow
TINY = {"sample_rate": 8000, "clip_samples": 2048, "n_show": 3}


def _outputs(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("output_type") == "error"]
    return json.dumps([c.get("outputs", []) for c in nb.cells])


def test_digits(tmp_path):
    run_dir = tmp_path / "run"
    run_notebook("01_data", run_dir, TINY | {"dataset": "digits", "n_clips": 20})
    summary = json.loads((run_dir / "data" / "summary.json").read_text())
    assert summary["splits"] == {"train": 20, "validation": 10, "test": 10}
    assert summary["counts"]["train"] == {str(d): 2 for d in range(10)}
    outputs = _outputs(run_dir / "01_data.ipynb")
    assert outputs.count("<audio") == 3 and "image/png" in outputs
    assert "<th>digit</th><th>train</th><th>validation</th><th>test</th><th>all</th>" in outputs
    assert "no files were read" in outputs


# tones and drums run the same cells; their tables and picks are checked without a kernel here.
@pytest.mark.parametrize(("dataset", "n_clips", "label"), [("tones", 30, "midi"), ("drums", 12, "drum")])
def test_tables_and_examples_of_tones_and_drums(dataset, n_clips, label, tmp_path, monkeypatch):
    from audiogan import RunConfig
    from audiogan.datasets import load_dataset, report

    monkeypatch.setenv("AUDIOGAN_CACHE_DIR", str(tmp_path))
    ds = load_dataset(RunConfig(dataset=dataset, n_clips=n_clips, sample_rate=8000, clip_samples=256))
    table = report.counts_html(ds)
    assert f"<th>{label}</th><th>all</th><th>all</th>" in table
    assert f"<td>total</td><td>{n_clips}</td><td>{n_clips}</td>" in table
    pick = report.pick_examples(ds, 5, seed=0)
    assert len(set(pick.tolist())) == 5
    if dataset == "drums":  # one of each kind first
        assert sorted(ds.labels["drum"][pick[:3]].tolist()) == ["hat", "kick", "snare"]
    assert "no files were read" in report.skipped_html(ds)


def test_folder_with_bad_files(tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    for k in range(3):
        sf.write(folder / f"take{k}.wav", 0.3 * np.sin(np.arange(6000) * (0.05 + 0.02 * k)), 16000)
    (folder / "notes.wav").write_text("meeting notes, saved with the wrong name")
    sf.write(folder / "quiet.flac", np.zeros(3000), 16000)
    run_dir = tmp_path / "run"
    run_notebook("01_data", run_dir, TINY | {"dataset": str(folder)})
    skipped = json.loads((run_dir / "data" / "skipped.json").read_text())["skipped"]
    assert sorted(Path(s["file"]).name for s in skipped) == ["notes.wav", "quiet.flac"]
    outputs = _outputs(run_dir / "01_data.ipynb")
    assert "notes.wav" in outputs and "not a readable audio file" in outputs and "silent" in outputs
    assert outputs.count("<audio") == 3
