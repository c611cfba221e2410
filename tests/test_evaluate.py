"""Evaluation of runs: scores against real-data ceilings, eval.json, eval_every and the best checkpoint."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest

from audiogan import datasets, training
from audiogan.config import ConfigError, RunConfig
from audiogan.evaluation import classifier as C
from audiogan.evaluation import evaluate as E
from audiogan.pipeline import notebooks_dir, run_notebook
from audiogan.runs import RunFolder

SMALL = C.ClassifierSettings(n_mels=32, n_frames=16, width=4, features=16, epochs=4, batch_size=16, lr=5e-3)
TINY = E.EvalSettings(n_clips=12, splits=2, ndb_bins=5)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny classifier for short tones, and a classic GAN trained 30 steps with eval_every=10."""
    tmp = tmp_path_factory.mktemp("evaluate")
    root = tmp / "classifiers"
    config = RunConfig(
        run_dir=str(tmp / "run"), dataset="tones", model="mlp", steps=20, batch_size=16, seed=0,
        sample_rate=8000, clip_samples=1024, n_clips=160, log_every=5, preview_every=20,
        checkpoint_every=10, n_previews=2, eval_every=10, eval_clips=40,
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("AUDIOGAN_CLASSIFIER_DIR", str(root))
    clf = C.get_classifier(config, SMALL, progress=False, log=None)
    training.train(config, progress=False, scorer=E.TrainingScorer)
    yield config, clf, root
    mp.undo()


def test_eval_every_without_a_scorer_is_refused_before_anything_is_written(tmp_path):
    config = RunConfig(run_dir=str(tmp_path / "run"), dataset="tones", model="mlp", steps=4, batch_size=16,
                       sample_rate=8000, clip_samples=1024, n_clips=32, eval_every=2, eval_clips=20)
    with pytest.raises(ConfigError, match="eval_every=2 needs a scorer: pass scorer=audiogan.evaluation"):
        training.train(config, progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_training_scores_every_eval_every_steps_and_keeps_the_best(setup):
    config, clf, _ = setup
    assert clf.path.parent.name == "classifiers"  # the pre-trained tiny classifier was reused, not a new one
    assert len(list(clf.path.parent.iterdir())) == 1
    run = RunFolder(config.run_dir)
    m = run.read_metrics()
    assert m["step"] == [5, 10, 15, 20]
    for col in E.EVAL_COLUMNS:
        values = np.array(m[col])
        assert np.all(np.isfinite(values[[1, 3]])) and np.all(np.isnan(values[[0, 2]])), col
    best = run.read_json(E.BEST_FILE)
    fds = dict(zip(m["step"], m["eval_fd"], strict=True))
    assert best["step"] == min((10, 20), key=lambda s: fds[s])
    assert best["eval_fd"] == pytest.approx(fds[best["step"]], rel=1e-6)
    assert run.best_step() == best["step"]
    run.close()
    gan, state = E.restore(config.run_dir, "best")
    assert int(state.step) == best["step"]
    # metrics.csv's columns depend on eval_every, so a run cannot be resumed with another value.
    with pytest.raises(ConfigError, match="eval_every"):
        training.train(config.replace(eval_every=0, steps=40), progress=False)


@pytest.mark.slow
def test_evaluate_run_writes_eval_json_with_ceilings(setup):
    config, _, _ = setup
    record = E.evaluate_run(config.run_dir, TINY, progress=False)
    stored = json.loads((RunFolder(config.run_dir).path / E.EVAL_FILE).read_text())
    assert stored["step"] == 20 and stored["checkpoint"] == "latest"
    for row in ("generated",):
        for key in ("is", "mis", "am", "fd", "ndb_k", "d_self", "d_train", "pitch_accuracy", "pitch_distance"):
            assert key in stored[row], key
    assert stored["generated"]["is"]["std"] >= 0 and stored["generated"]["n_clips"] == 12
    real_train, real_test = record["ceilings"]["real_train"], record["ceilings"]["real_test"]
    # Real tones are in tune, and real training clips are not matched with themselves.
    assert real_train["pitch_accuracy"] >= 0.9 and real_test["pitch_accuracy"] >= 0.9
    assert real_train["d_train"]["mean"] > 0
    assert real_test["classifier_accuracy"] == pytest.approx(C.load(record["classifier"]["path"]).test_accuracy)
    text = E.table_text({"run": record["generated"]}, record["ceilings"])
    assert "Inception Score" in text and "real test" in text and "pitch accuracy" in text
    assert E.comparison_figure({"run": record["generated"]}, record["ceilings"]) is not None
    # The ceilings are cached beside the classifier, keyed by the settings.
    assert (C.load(record["classifier"]["path"]).path / E.CEILINGS_FILE).is_file()


@pytest.mark.slow
def test_collapsed_clips_score_worse_than_real_ones(setup):
    config, clf, _ = setup
    ref = E.build_reference(config, TINY, classifier=clf)
    real = ref.dataset.clips[ref.splits["test"][:12]]
    collapsed = np.repeat(real[:1], 12, axis=0)
    s_real, s_col = E.score_clips(real, ref, pitch=False), E.score_clips(collapsed, ref, pitch=False)
    # Copies of one clip are (next to) no distance apart: the batched mel filterbank's matrix product may
    # round the same clip differently in another row of the batch (1.7e-6 dB apart on an AMD EPYC).
    assert s_col["d_self"]["mean"] < 1e-6 * s_real["d_self"]["mean"]
    assert s_col["is"]["mean"] == pytest.approx(1.0, abs=1e-6) and s_real["is"]["mean"] > 1.0
    assert s_col["ndb_k"] > s_real["ndb_k"]
    assert s_col["fd"] > s_real["fd"]
    with pytest.raises(ConfigError, match="NaN"):
        E.score_clips(np.full_like(real, np.nan), ref)
    with pytest.raises(ConfigError, match="1024 samples"):
        E.score_clips(real[:, :512], ref)


@pytest.mark.slow
def test_clips_made_for_a_class_are_scored_against_it(setup, tmp_path):
    config, clf, _ = setup
    ref = E.build_reference(config, TINY, classifier=clf)
    real = ref.dataset.clips[ref.splits["test"][:12]]
    heard = [str(clf.classes[t]) for t in clf.predict(real)[0].argmax(1)]
    other = [str(clf.classes[(list(map(str, clf.classes)).index(h) + 1) % len(clf.classes)]) for h in heard]
    assert E.score_clips(real, ref, pitch=False, asked=heard)["accuracy_as_asked"] == 1.0
    assert E.score_clips(real, ref, pitch=False, asked=other)["accuracy_as_asked"] == 0.0
    assert "accuracy_as_asked" not in E.score_clips(real, ref, pitch=False)
    with pytest.raises(ConfigError, match="asked gives 2 classes for 12 clips"):
        E.score_clips(real, ref, pitch=False, asked=heard[:2])
    # A conditional run on the same data: eval.json scores the notes it was asked for, in turn.
    cond = config.replace(run_dir=str(tmp_path / "cond"), conditional=True, eval_every=0)
    training.train(cond, progress=False)
    record = E.evaluate_run(cond.run_dir, TINY, progress=False)
    assert 0.0 <= record["generated"]["accuracy_as_asked"] <= 1.0
    gan, _ = training.restore(cond.run_dir)
    assert E.asked_classes(gan, 3) == list(gan.classes[:3])
    assert "accuracy as asked" in E.table_text({"run": record["generated"]}, record["ceilings"])


def test_best_checkpoint_needs_eval_every(tiny_config):
    RunFolder(tiny_config.run_dir).write_config(tiny_config)  # a run folder trained without eval_every
    with pytest.raises(ConfigError, match="eval_every"):
        E.restore(tiny_config.run_dir, "best")
    with pytest.raises(ConfigError, match="'latest' or 'best'"):
        E.restore(tiny_config.run_dir, "newest")


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="n_clips=5"):
        E.EvalSettings(n_clips=5)
    with pytest.raises(ConfigError, match="eval_every"):
        RunConfig(eval_every=-1)


def test_reference_uses_the_dataset_splits():
    ds = datasets.make_tones(100, 8000, 512, seed=1)
    ds.labels["split"] = np.array(["train"] * 60 + ["validation"] * 20 + ["test"] * 20)
    s = C.split_indices(ds)
    assert len(s["train"]) == 60 and s["test"].min() == 80


def test_stored_notebook_is_clean_and_parameterised():
    nb = nbformat.read(notebooks_dir() / "05_evaluate.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert len(code) <= 20 and "Summary" in nb.cells[-1].source


@pytest.mark.slow
def test_notebook_evaluates_a_run_and_prints_the_table(setup, tmp_path):
    config, _, root = setup
    run_dir = tmp_path / "out"
    params = {"run_dirs": config.run_dir, "n_clips": 12, "splits": 2, "ndb_bins": 5, "classifier_dir": str(root)}
    executed = run_notebook("05_evaluate", run_dir, params)
    nb = nbformat.read(executed, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "Inception Score" in text and "Fréchet distance" in text and "real test" in text
    assert "run (step 20)" in text
    assert (RunFolder(config.run_dir).path / "eval.png").stat().st_size > 1000
    assert json.loads((RunFolder(config.run_dir).path / E.EVAL_FILE).read_text())["settings"]["n_clips"] == 12
