"""The workshop: preset="workshop", judging generated tones, and notebooks that load a finished run."""

import dataclasses

import nbformat
import numpy as np
import pytest

from audiogan import training
from audiogan.config import PRESETS, ConfigError, RunConfig
from audiogan.pipeline import run_notebook
from audiogan.runs import RunFolder
from audiogan.teaching import workshop
from audiogan.training import loop, step


# ---------------------------------------------------------------------------- the preset
def test_workshop_preset_fills_the_settings_left_at_their_defaults():
    cfg = RunConfig(preset="workshop")
    plain = RunConfig()
    assert (cfg.model, cfg.sample_rate, cfg.clip_samples, cfg.batch_size) == ("mlp", 8000, 2048, 64)
    assert RunConfig(preset="workshop", dataset="digits").clip_samples == 4096  # a spoken digit needs 0.5 s
    assert cfg.sample_rate < plain.sample_rate and cfg.clip_samples < plain.clip_samples
    assert cfg.batch_size < plain.batch_size and cfg.loss == "ns"


def test_explicit_values_win_over_the_preset():
    cfg = RunConfig(preset="workshop", sample_rate=11025, clip_samples=2048, loss="hinge", steps=77)
    assert (cfg.sample_rate, cfg.clip_samples, cfg.loss, cfg.steps) == (11025, 2048, "hinge", 77)
    assert cfg.batch_size == 64  # what was not given still comes from the preset


def test_preset_adapts_to_an_explicitly_chosen_model():
    wave = RunConfig(preset="workshop", model="wavegan")
    assert (wave.clip_samples, wave.d, wave.loss, wave.n_critic, wave.sample_rate) == (16384, 16, "hinge", 1, 8000)
    assert RunConfig(model="wavegan").d == 64  # without the preset: the paper's width


def test_preset_makes_spoken_digits_with_a_conditional_wavegan_unless_told_otherwise():
    cfg = RunConfig(preset="workshop", dataset="digits")
    assert (cfg.model, cfg.clip_samples, cfg.batch_size, cfg.d, cfg.loss) == ("wavegan", 4096, 32, 16, "hinge")
    assert cfg.conditional and cfg.ema_decay == 0.999 and cfg.sample_rate == 8000
    assert (cfg.steps, cfg.preview_every, cfg.checkpoint_every) == (20000, 1000, 1000)  # thirty minutes
    mlp = RunConfig(preset="workshop", dataset="digits", model="mlp")  # an explicit model wins
    assert (mlp.model, mlp.clip_samples, mlp.batch_size, mlp.conditional) == ("mlp", 4096, 64, False)
    assert not RunConfig(preset="workshop", dataset="digits", conditional=False).conditional
    assert RunConfig(preset="workshop").model == "mlp" and not RunConfig(preset="workshop").conditional
    assert (RunConfig().model, RunConfig().conditional) == ("mlp", False)  # without a preset
    # the resolved values are what the run folder stores, so reloading gives the same config
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_unknown_preset_names_the_choices():
    with pytest.raises(ConfigError, match=r"preset='laptop' is unknown; choose one of 'workshop'"):
        RunConfig(preset="laptop")
    assert set(PRESETS) == {"workshop"}


def test_preset_config_round_trips_through_the_run_folder(tmp_path):
    cfg = RunConfig(run_dir=str(tmp_path / "r"), preset="workshop", loss="lsgan", sample_rate=16000 + 1)
    RunFolder(cfg.run_dir).write_config(cfg)
    again = RunFolder(cfg.run_dir).config()
    assert again == cfg and again.preset == "workshop"
    assert cfg.replace(steps=10).sample_rate == 16001 and cfg.replace(steps=10).batch_size == 64


# ---------------------------------------------------------------------------- judging tones
def test_judge_tones_accepts_in_tune_tones_and_rejects_the_rest():
    sr, t = 8000, np.arange(4096) / 8000
    def tone(hz):
        return 0.5 * np.sin(2 * np.pi * hz * t) + 0.2 * np.sin(4 * np.pi * hz * t)
    c4, sharp = 261.63, 261.63 * 2 ** (45 / 1200)  # C4, and a pitch 45 cents above it: nearly a quarter tone
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, t.size)
    clips = np.stack([tone(c4), tone(440.0), tone(sharp), noise]).astype(np.float32)
    errors = workshop.tone_pitch_errors(clips, sr)
    assert list(errors["nearest_midi"][:2]) == [60, 69]
    assert abs(errors["cents"][0]) < 15 and abs(errors["cents"][1]) < 15
    verdict = workshop.judge_tones(clips, sr)
    assert verdict["notes"][:2] == [60, 69] and verdict["notes"][2:] == [None, None]
    assert verdict["fraction_recognisable"] == 0.5 and verdict["distinct_notes"] == 2
    assert 35 < verdict["cents"][2] < 55 and verdict["voiced"][3] < 0.5  # the sharp tone, the noise


def test_judge_digits_counts_the_clips_the_classifier_is_sure_of():
    class Known:  # a classifier whose probabilities are given: clip i gets row i
        classes = list(range(10))

        def predict(self, clips):
            probs = np.full((4, 10), 0.01)
            probs[0, 3], probs[1, 3], probs[2, 7] = 0.91, 0.95, 0.92  # sure: 3, 3, 7
            probs[3, 5] = 0.6  # unsure: not a recognisable digit
            return probs / probs.sum(1, keepdims=True), None

    verdict = workshop.judge_digits(Known())(np.zeros((4, 64), np.float32))
    assert verdict["digits"] == ["3", "3", "7", None]
    assert verdict["fraction_recognisable"] == 0.75 and verdict["distinct_digits"] == 2
    assert 1.0 < verdict["inception_score"] < 10.0


# ---------------------------------------------------------------------------- a finished run is loaded
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """conftest's tiny_config, trained to the end once for this module's tests (which only read it)."""
    cfg = RunConfig(
        run_dir=str(tmp_path_factory.mktemp("finished") / "run"), dataset="tones", model="mlp", steps=40,
        batch_size=16, seed=0, sample_rate=8000, clip_samples=256, n_clips=64, log_every=10,
        preview_every=20, checkpoint_every=20, n_previews=2,
    )
    training.train(cfg, progress=False)
    return cfg


@pytest.mark.slow
def test_a_finished_run_is_loaded_not_trained(finished_run, monkeypatch):
    cfg = finished_run
    run = RunFolder(cfg.run_dir)
    metrics_before = run.metrics_path.read_bytes()
    reference = training.restore(cfg.run_dir)[1]
    assert training.is_finished(cfg)

    def forbidden(*_, **__):
        raise AssertionError("a finished run must not load data or compile a training step")

    monkeypatch.setattr(loop.datasets, "load_dataset", forbidden)
    monkeypatch.setattr(step, "make_step", forbidden)
    monkeypatch.setattr(loop, "compiled", forbidden)
    result = training.train(cfg, progress=False)
    assert result.loaded and int(result.state.step) == cfg.steps == result.resumed_from
    assert run.metrics_path.read_bytes() == metrics_before
    assert result.history["step"][-1] == cfg.steps
    for a, b in zip(jax_leaves(result.state.g_params), jax_leaves(reference.g_params), strict=True):
        np.testing.assert_array_equal(a, b)


def test_more_steps_or_other_settings_are_not_finished(finished_run):
    cfg = finished_run
    assert not training.is_finished(cfg.replace(steps=cfg.steps + 20))  # continues training
    assert not training.is_finished(cfg.replace(lr=1e-3))  # another recipe: write_config refuses it
    assert not training.is_finished(dataclasses.replace(cfg, run_dir=cfg.run_dir + "_elsewhere"))


@pytest.mark.slow
def test_train_notebook_opens_a_finished_run_without_training(finished_run):
    cfg = finished_run
    run = RunFolder(cfg.run_dir)
    metrics_before = run.metrics_path.read_bytes()
    checkpoints_before = sorted(p.name for p in run.checkpoint_dir.iterdir())
    params = {k: v for k, v in cfg.to_dict().items() if v is not None and k in (
        "dataset", "model", "steps", "batch_size", "seed", "sample_rate", "clip_samples", "n_clips",
        "log_every", "preview_every", "checkpoint_every", "n_previews")} | {"live_plot": False}
    out = run_notebook("02_train", cfg.run_dir, params)
    text = "\n".join(o.get("text", "") for c in nbformat.read(out, as_version=4).cells
                     if c.cell_type == "code" for o in c.outputs)
    assert "loaded the finished run" in text and "it is loaded, not trained again" in text
    assert run.metrics_path.read_bytes() == metrics_before
    assert sorted(p.name for p in run.checkpoint_dir.iterdir()) == checkpoints_before


def jax_leaves(tree):
    import jax

    return [np.asarray(x) for x in jax.tree.leaves(tree)]
