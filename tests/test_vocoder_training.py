"""The vocoder's config, its training segments and held-out clips, its step and loop."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from audiogan.datasets import Dataset
from audiogan.datasets.segments import Segments, active_lengths, hold_out
from audiogan.errors import ConfigError
from audiogan.runs import RunFolder
from audiogan.training import vocoder_loop, vocoder_step
from audiogan.training.vocoder_config import VocoderConfig

TINY = dict(dataset="tones", model="hifigan", variant="tiny", batch_size=4, seed=0, sample_rate=8000,
            segment_samples=256, clip_samples=1024, n_clips=48, eval_clips=4, log_every=5, checkpoint_every=10)


def tiny(run_dir, **changes) -> VocoderConfig:
    return VocoderConfig(run_dir=str(run_dir), **(TINY | {"steps": 30} | changes))


# ---------------------------------------------------------------------------- config
def test_recipe_values_fill_what_is_left_at_none():
    hifi = VocoderConfig(sample_rate=22050)
    assert (hifi.variant, hifi.loss, hifi.lr, hifi.beta1, hifi.beta2) == ("v1", "lsgan", 2e-4, 0.8, 0.99)
    assert (hifi.lr_decay, hifi.fm_weight, hifi.mel_weight, hifi.n_mels, hifi.batch_size) == (0.999, 2.0, 45.0, 80, 16)
    assert (hifi.hop, hifi.segment_samples, hifi.clip_samples) == (256, 8192, 22016)
    mel = VocoderConfig(model="melgan")
    assert (mel.variant, mel.loss, mel.lr, mel.beta1, mel.beta2, mel.mel_weight) == ("base", "hinge", 1e-4, 0.5, 0.9, 0)
    assert mel.fm_weight == pytest.approx(10 * 4 / 5 / 3)
    assert VocoderConfig(lr=1e-3, fm_weight=0).lr == 1e-3
    swapped = hifi.replace(model="melgan")  # the recipe of the new model, not the old one's values
    assert (swapped.variant, swapped.loss, swapped.lr, swapped.sample_rate) == ("base", "hinge", 1e-4, 22050)


def test_mel_settings_follow_the_generator_at_any_rate():
    for rate in (8000, 16000, 22050, 24000):
        cfg = VocoderConfig(sample_rate=rate, variant="v3")
        mel = cfg.mel_settings()
        assert (mel.hop, mel.n_fft, mel.win) == (256, 1024, 1024) and mel.f_max == min(8000, rate / 2)
        assert cfg.loss_mel_settings().f_max == rate / 2
    small = VocoderConfig(variant="tiny", sample_rate=8000)
    assert (small.hop, small.n_mels, small.mel_settings().n_fft, small.segment_samples) == (32, 16, 128, 1024)


@pytest.mark.parametrize(("changes", "expected"), [
    ({"model": "wavegan"}, "model='wavegan' is not a vocoder; choose one of 'hifigan', 'melgan'"),
    ({"variant": "v4"}, "variant='v4' is not a hifigan variant; choose one of 'v1', 'v2', 'v3', 'tiny'"),
    ({"model": "melgan", "variant": "v1"}, "choose one of 'base', 'tiny'"),
    ({"segment_samples": 1000}, "segment_samples=1000 must be a multiple of hop=256"),
    ({"segment_samples": 8192, "clip_samples": 4096}, "clip_samples=4096 must be at least segment_samples=8192"),
    ({"loss": "wgan"}, "loss='wgan' is unknown; choose one of 'lsgan', 'hinge'"),
    ({"lr": 2}, "lr=2.0 must lie between 0 and 1"),
    ({"lr_decay": 0}, "lr_decay=0.0 must lie in (0, 1]"),
    ({"batch_size": 0}, "batch_size=0 must be a whole number >= 1"),
    ({"n_mels": 400}, "n_mels=400"),
    ({"init_from": "runs/vocoder"}, "is this run's own run_dir"),
])
def test_bad_settings_are_refused_naming_the_parameter(changes, expected):
    with pytest.raises(ConfigError) as caught:
        VocoderConfig(**changes)
    assert expected in str(caught.value)


def test_config_round_trips_through_its_json(tmp_path):
    cfg = tiny(tmp_path / "run")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(cfg.to_dict()))
    assert VocoderConfig.load(tmp_path / "run") == cfg
    (tmp_path / "run" / "config.json").write_text(json.dumps({"model": "mlp"}))
    with pytest.raises(ConfigError, match="GAN run, not a vocoder run"):
        VocoderConfig.load(tmp_path / "run")


# ---------------------------------------------------------------------------- data
def test_segments_are_fixed_by_seed_and_step_and_lie_within_the_sound():
    clips = np.zeros((10, 1000), np.float32)
    for i in range(10):
        clips[i, : 300 + 50 * i] = np.arange(1, 301 + 50 * i)  # sound, then zero padding
    assert active_lengths(clips).tolist() == [300 + 50 * i for i in range(10)]
    a, b = Segments(clips, 128, 4, seed=3), Segments(clips, 128, 4, seed=3)
    for step in (7, 0, 2, 7):  # any order: a resumed run asks for step k first
        np.testing.assert_array_equal(a[step], b[step])
        index, start = a.locate(step)
        assert len(set(index.tolist())) == 4 and np.all(start + 128 <= 300 + 50 * index)
        assert np.all(np.diff(a[step], axis=1) == 1)  # contiguous samples of one clip
    assert not np.array_equal(a[1], Segments(clips, 128, 4, seed=4)[1])
    assert a.per_epoch == 2
    with pytest.raises(ConfigError, match="segment_samples=2000 is longer than the clips"):
        Segments(clips, 2000, 4, seed=0)


def test_held_out_clips_come_from_the_test_split_or_are_held_out_by_seed():
    clips = np.random.default_rng(0).standard_normal((20, 64)).astype(np.float32)
    plain = Dataset("plain", clips, 8000, {"n": np.arange(20)})
    train, held, where = hold_out(plain, 5, seed=1)
    assert len(train) == 15 and len(held) == 5 and "held out by seed" in where
    assert sorted(train.labels["n"].tolist() + held.labels["n"].tolist()) == list(range(20))
    assert hold_out(plain, 5, seed=1)[1].labels["n"].tolist() == held.labels["n"].tolist()
    split = np.array(["train"] * 14 + ["validation"] * 3 + ["test"] * 3)
    labelled = Dataset("split", clips, 8000, {"n": np.arange(20), "split": split})
    train, held, where = hold_out(labelled, 5, seed=1)
    assert len(train) == 14 and held.labels["n"].tolist() == [17, 18, 19] and where == "the test split"


# ---------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def whole_run(tmp_path_factory) -> vocoder_loop.VocoderResult:
    """30 uninterrupted steps of the tiny HiFi-GAN."""
    return vocoder_loop.train(tiny(tmp_path_factory.mktemp("vocoder") / "whole"), progress=False)


@pytest.mark.slow
def test_a_tiny_run_writes_its_folder_and_its_mel_loss_falls(whole_run):
    run_dir = Path(whole_run.vocoder.config.run_dir)
    history = whole_run.history
    assert history["step"] == [5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
    assert list(history)[:10] == list(vocoder_loop.METRIC_COLUMNS)
    assert all(np.isfinite(v).all() for v in history.values())
    assert np.mean(history["mel_l1"][-2:]) < 0.9 * history["mel_l1"][0]  # 3.08 -> 2.46 when written
    assert history["lr"][0] == pytest.approx(2e-4 * 0.999 ** (4 // 11))
    dataset = json.loads((run_dir / "dataset.json").read_text())
    assert (dataset["clips"], dataset["held_out"], dataset["steps_per_epoch"], dataset["hop"]) == (44, 4, 11, 32)
    assert RunFolder(run_dir).latest_step() == 30
    assert vocoder_loop.is_finished(whole_run.vocoder.config)
    again = vocoder_loop.train(whole_run.vocoder.config, progress=False)
    assert again.loaded and int(again.state.step) == 30


@pytest.mark.slow
def test_the_vocoder_makes_hop_times_frames_samples(whole_run):
    v, state = vocoder_loop.restore(whole_run.vocoder.config.run_dir)
    clips = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 1000)).astype(np.float32)
    out = vocoder_loop.vocode(v, state, clips)
    assert out.shape == (2, 1000 // 32 * 32) and np.all(np.abs(out) <= 1)
    assert vocoder_loop.synthesise(v, state, np.zeros((1, 16, 7), np.float32)).shape == (1, 7 * 32)
    leaves = zip(jax.tree.leaves(state.g_params), jax.tree.leaves(whole_run.state.g_params), strict=True)
    assert all(np.array_equal(a, b) for a, b in leaves)


def committed_steps(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    return [int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / "commit_success.txt").exists()]


@pytest.mark.slow
def test_a_run_killed_after_its_first_checkpoint_resumes_to_the_same_losses(whole_run, tmp_path):
    cfg = tiny(tmp_path / "killed")
    script = ("import json; from audiogan.training import vocoder_loop; "
              "from audiogan.training.vocoder_config import VocoderConfig; "
              f"vocoder_loop.train(VocoderConfig.from_dict(json.loads({json.dumps(cfg.to_dict())!r})), progress=False)")
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not committed_steps(tmp_path / "killed" / "checkpoints"):
        time.sleep(0.02)
    assert proc.poll() is None, "training ended before it could be killed: " + proc.stderr.read().decode()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    run = RunFolder(cfg.run_dir)
    killed_at = run.latest_step()
    run.close()
    assert killed_at is not None and 10 <= killed_at < 30
    resumed = vocoder_loop.train(cfg, progress=False)
    assert resumed.resumed_from == killed_at
    whole = whole_run.history
    assert resumed.history["step"] == whole["step"]
    for column in vocoder_loop.METRIC_COLUMNS[2:]:  # bit for bit: same segments, same keys, same program
        assert resumed.history[column] == whole[column], column
    for a, b in zip(jax.tree.leaves(resumed.state), jax.tree.leaves(whole_run.state), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_init_from_starts_from_the_other_runs_networks(whole_run, tmp_path):
    other = whole_run.vocoder.config.run_dir
    cfg = tiny(tmp_path / "fine", init_from=other, lr=1e-4, dataset="drums")
    started = vocoder_loop.train(cfg, progress=False, stop_after=0)
    assert int(started.state.step) == 0
    for name in ("g_params", "d_params", "d_power"):
        mine, theirs = getattr(started.state, name), getattr(whole_run.state, name)
        for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(theirs), strict=True):
            np.testing.assert_array_equal(a, b)
    assert json.loads((tmp_path / "fine" / "init_from.json").read_text()) == {"run_dir": other, "step": 30}
    with pytest.raises(ConfigError, match="network of another shape"):
        vocoder_loop.train(tiny(tmp_path / "bad", init_from=other, n_mels=12), progress=False, stop_after=0)


@pytest.mark.slow
def test_melgan_trains_with_the_hinge_loss(tmp_path):
    result = vocoder_loop.train(tiny(tmp_path / "melgan", model="melgan", steps=10), progress=False)
    cfg = result.vocoder.config
    assert (cfg.loss, cfg.mel_weight) == ("hinge", 0.0)
    assert all(np.isfinite(v).all() for v in result.history.values())
    assert result.history["step"] == [5.0, 10.0]


def test_inference_folds_weight_norm_once_and_matches_the_training_generator(tmp_path):
    """vocode / synthesise run the generator with weight norm folded (as the official inference does):
    the same audio as the generator trained, folded again when the weights change."""
    config = tiny(tmp_path / "run")
    vocoder, state = vocoder_step.create(config, steps_per_epoch=4)
    mel_bft = np.random.default_rng(0).normal(-4, 1, (2, config.n_mels, 9)).astype(np.float32)
    fold = vocoder_step.FoldedGenerator(vocoder)
    synthesise = vocoder_step.make_synthesise(vocoder)
    for scale in (1.0, 0.5):  # new weights: the cached fold must not be reused
        g_params = jax.tree.map(lambda a, s=scale: a * s, state.g_params)
        trained = nnx.merge(vocoder.g_def, g_params)(mel_bft.transpose(0, 2, 1))
        out = synthesise(g_params, mel_bft)
        assert out.shape == (2, 9 * vocoder.config.hop)
        np.testing.assert_allclose(out, trained, atol=1e-5)
    graph, params = fold(state.g_params)
    assert fold(state.g_params)[1] is params  # the same weights are folded once
    names = {str(p[-1]) for p, _ in jax.tree_util.tree_flatten_with_path(nnx.to_pure_dict(params))[0]}
    assert "weight_v" not in names and "weight_g" not in names
