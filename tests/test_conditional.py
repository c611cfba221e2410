"""Class conditioning: the networks, the step, the run folder, generating by class, and learning it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audiogan import datasets, models, training
from audiogan.config import ConfigError, RunConfig
from audiogan.models import conditional
from audiogan.runs import RunFolder
from audiogan.teaching.workshop import judge_digits, judge_tones

N_CLASSES = 3


def tiny(model: str, tmp_path, **changes) -> RunConfig:
    sizes = {"mlp": {"clip_samples": 256, "batch_size": 8},
             "wavegan": {"d": 2, "clip_samples": 4096, "batch_size": 8},
             "specgan": {"d": 2, "clip_samples": 16384, "batch_size": 4}}[model]
    settings = dict(
        run_dir=str(tmp_path / "run"), dataset="tones", model=model, steps=4, sample_rate=8000,
        n_clips=64, log_every=2, preview_every=2, checkpoint_every=2, n_previews=3, conditional=True,
    )
    return RunConfig(**(settings | sizes | changes))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mlp", "wavegan", "specgan"])
def test_both_networks_depend_on_the_class(model, tmp_path):
    cfg = tiny(model, tmp_path)
    g, d = models.build(cfg, n_classes=N_CLASSES)
    assert isinstance(g, conditional.ConditionalGenerator) and isinstance(d, conditional.ProjectionDiscriminator)
    z = models.sample_latent(cfg, jax.random.key(0), 2)
    x0, x1 = g(z, labels=jnp.array([0, 0])), g(z, labels=jnp.array([1, 1]))
    assert x0.shape == x1.shape and not np.allclose(x0, x1)  # the class changes the output
    # D(x, y) = out(phi(x)) + <e_y, phi(x)>: the base logit plus the projection, checked term by term.
    h = d.base.features(x0)
    for y in range(N_CLASSES):
        labels = jnp.full((2,), y)
        expected = d.base.out(h)[:, 0] + (d.embed.embedding[...][y][None] * h).sum(-1)
        np.testing.assert_allclose(d(x0, labels=labels), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(d(x0, labels=jnp.array([0, 0])), d(x0, labels=jnp.array([2, 2])))


def test_unconditional_networks_are_unchanged_and_the_class_count_is_checked(tmp_path):
    cfg = tiny("wavegan", tmp_path, conditional=False)
    g, _ = models.build(cfg)
    g3, _ = models.build(cfg.replace(conditional=True), n_classes=3)
    # The conditional generator's first layer reads 3 more inputs; nothing else changes size.
    assert g3.base.dense.kernel.shape == (g.dense.kernel.shape[0] + 3, g.dense.kernel.shape[1])
    with pytest.raises(ValueError, match="at least 2 classes"):
        models.build(cfg.replace(conditional=True), n_classes=1)
    with pytest.raises(ConfigError, match="conditional=1 must be True or False"):
        cfg.replace(conditional=1)


@pytest.mark.slow  # trains
def test_the_step_trains_the_class_embedding_and_insists_on_labels(tmp_path):
    cfg = tiny("wavegan", tmp_path, loss="wgan-gp", n_critic=2)
    gan, state = training.create(cfg, classes=("a", "b", "c"))
    step = training.make_step(gan)
    real = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 8, 4096)), jnp.float32)
    labels = jnp.asarray(np.random.default_rng(1).integers(0, 3, (2, 8)), jnp.int32)
    e0 = np.asarray(state.d_params["embed"]["embedding"][...])
    g0 = np.asarray(state.g_params["base"]["dense"]["kernel"][...])
    new, metrics = step(state, real, labels)
    assert np.isfinite(float(metrics["d_loss"])) and np.isfinite(float(metrics["gp"]))
    assert not np.allclose(e0, new.d_params["embed"]["embedding"][...])
    # the one-hot rows of the generator's first layer (the last 3 inputs) are trained too
    assert not np.allclose(g0[-3:], new.g_params["base"]["dense"]["kernel"][...][-3:])
    with pytest.raises(ConfigError, match="needs the real clips' classes"):
        step(new, real)
    plain, plain_state = training.create(cfg.replace(conditional=False))
    with pytest.raises(ConfigError, match="not conditional"):
        training.make_step(plain)(plain_state, real, labels)
    with pytest.raises(ConfigError, match="needs the dataset's classes"):
        training.create(cfg)


@pytest.mark.slow  # trains
@pytest.mark.parametrize("model", ["mlp", "wavegan", "specgan"])
def test_a_conditional_run_stores_its_classes_resumes_and_generates_by_class(model, tmp_path):
    cfg = tiny(model, tmp_path)
    first = training.train(cfg, progress=False, stop_after=2)
    classes = first.gan.classes
    tones = datasets.load_dataset(cfg).labels["midi"]
    assert classes == tuple(str(m) for m in np.unique(tones))
    assert RunFolder(cfg.run_dir).read_json("classes.json") == list(classes)
    result = training.train(cfg, progress=False)
    assert result.resumed_from == 2 and int(result.state.step) == 4
    gan, state = training.restore(cfg.run_dir)
    assert gan.classes == classes
    # bit-exact after reloading, by class name, by index and by the number a name spells
    clips = training.generate(gan, state, 4, classes=classes[1])
    np.testing.assert_array_equal(clips, training.generate(result.gan, result.state, 4, classes=1))
    np.testing.assert_array_equal(clips, training.generate(gan, state, 4, classes=int(classes[1])))
    assert clips.shape == (4, cfg.clip_samples)
    assert training.preview_titles(gan)[:2] == [f"z0: {classes[0]}", f"z1: {classes[1]}"]
    assert training.clip_titles(gan, len(classes) + 1)[-1] == f"sample {len(classes)}: {classes[0]}"
    # parameter counts from the dataset before training, or from the run folder after it, agree;
    # the classes add a one-hot input row per class to G's first layer and an embedding to D
    counts = training.summary(cfg, datasets.load_dataset(cfg))
    assert training.summary(cfg) == counts
    plain = training.summary(cfg.replace(conditional=False))
    assert counts["discriminator_params"] > plain["discriminator_params"]
    assert counts["generator_params"] > plain["generator_params"]


@pytest.mark.slow  # trains
def test_generating_every_class_in_turn_and_bad_classes(tmp_path):
    cfg = tiny("mlp", tmp_path, steps=2)
    result = training.train(cfg, progress=False)
    gan, state = result.gan, result.state
    k = len(gan.classes)
    np.testing.assert_array_equal(gan.class_labels(k + 2), list(range(k)) + [0, 1])
    # clip i of the default is clip i of asking for its class explicitly (same latents)
    asked = [gan.classes[i % k] for i in range(k + 2)]
    np.testing.assert_array_equal(training.generate(gan, state, k + 2),
                                  training.generate(gan, state, k + 2, classes=asked))
    with pytest.raises(ConfigError, match="'A4' is not one of this run's classes"):
        training.generate(gan, state, 2, classes="A4")
    with pytest.raises(ConfigError, match="gives 3 classes for 2 clips"):
        training.generate(gan, state, 2, classes=[gan.classes[0]] * 3)
    plain = training.train(cfg.replace(run_dir=str(tmp_path / "plain"), conditional=False), progress=False)
    with pytest.raises(ConfigError, match="conditional=True"):
        training.generate(plain.gan, plain.state, 2, classes=gan.classes[0])


def test_resuming_on_other_classes_and_data_without_classes_are_refused(tmp_path):
    cfg = tiny("mlp", tmp_path, steps=4)
    training.train(cfg, progress=False, stop_after=2)
    ds = datasets.load_dataset(cfg)
    fewer = datasets.Dataset("tones", ds.clips[:40], 8000,
                             labels={"midi": np.where(ds.labels["midi"][:40] > 60, 72, 48)})
    with pytest.raises(ConfigError, match="was trained on the classes .* but the dataset now has 48, 72"):
        training.train(cfg, fewer, progress=False)
    unlabelled = datasets.Dataset("mine", ds.clips, 8000)
    with pytest.raises(datasets.DataError, match="'mine' has none .*conditional=False"):
        training.train(cfg.replace(run_dir=str(tmp_path / "other")), unlabelled, progress=False)
    one = datasets.Dataset("mine", ds.clips, 8000, labels={"word": np.full(len(ds), "yes")})
    with pytest.raises(datasets.DataError, match="at least 2 classes.*'yes'"):
        datasets.class_indices(one)


@pytest.mark.slow  # trains
def test_a_conditional_gan_makes_the_class_it_is_asked_for(tmp_path):
    """Two classes a listener cannot confuse: clips held near +0.5 ("up") and near -0.5 ("down").
    After 300 steps the classic GAN, conditioned, makes each one when asked (an unconditional
    generator would give either at random: about half of each)."""
    rng = np.random.default_rng(0)
    words = np.array(["down", "up"])[np.arange(128) % 2]
    clips = (np.where(words == "up", 0.5, -0.5)[:, None] + 0.05 * rng.standard_normal((128, 64))).astype(np.float32)
    ds = datasets.Dataset("updown", clips, 8000, labels={"word": words})
    cfg = RunConfig(run_dir=str(tmp_path / "run"), dataset="updown", model="mlp", steps=300, batch_size=32,
                    sample_rate=8000, clip_samples=64, log_every=50, preview_every=300, checkpoint_every=300,
                    conditional=True)
    result = training.train(cfg, ds, progress=False)
    assert result.gan.classes == ("down", "up")
    up = training.generate(result.gan, result.state, 100, classes="up").mean(1)
    down = training.generate(result.gan, result.state, 100, classes="down").mean(1)
    assert (up > 0).mean() >= 0.95 and (down < 0).mean() >= 0.95


def test_judges_count_the_clips_heard_as_asked():
    sr = 8000
    t = np.arange(2048) / sr
    a4, c4 = (0.5 * np.sin(2 * np.pi * f * t) for f in (440.0, 261.63))
    clips = np.stack([a4, c4, c4]).astype(np.float32)
    judged = judge_tones(clips, sr, asked=[69, 60, 69])  # the third is in tune, but not the note asked
    assert judged["fraction_recognisable"] == 1.0 and judged["fraction_as_asked"] == pytest.approx(2 / 3)
    assert "fraction_as_asked" not in judge_tones(clips, sr)

    class Fixed:  # a classifier that hears "3" confidently in the first clip, nothing sure in the second
        classes = np.arange(10)

        def predict(self, x):
            probs = np.full((len(x), 10), 0.1)
            probs[0] = np.eye(10)[3] * 0.95 + 0.005
            return probs, None

    judged = judge_digits(Fixed())(np.zeros((2, 16), np.float32), asked=["3", "3"])
    assert judged["digits"] == ["3", None] and judged["fraction_as_asked"] == 0.5
    with pytest.raises(ValueError, match="asked gives 1 classes for 2 clips"):
        judge_digits(Fixed())(np.zeros((2, 16), np.float32), asked=["3"])
