"""The 1-D GAN of notebook 00_gan_intuition: data, networks, the step, training, pictures."""

import json

import jax
import nbformat
import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from audiogan.config import ConfigError
from audiogan.pipeline import notebooks_dir, run_notebook
from audiogan.teaching import intuition


def test_wasserstein_agrees_with_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 5000), rng.normal(0.7, 2, 5000)
    assert intuition.wasserstein(a, b) == pytest.approx(wasserstein_distance(a, b), rel=1e-9)
    assert intuition.wasserstein(a, a) == 0.0
    with pytest.raises(ValueError, match="same size"):
        intuition.wasserstein(a, b[:10])


def test_mixture_samples_and_density_agree():
    mixture = intuition.Mixture()
    x = intuition.real_samples(mixture, 40000)
    shares = intuition.mode_shares(x, mixture)
    assert shares == pytest.approx(mixture.weights, abs=0.01)
    xs = mixture.grid(4000)
    assert np.trapezoid(mixture.density(xs), xs) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ConfigError, match="stds"):
        intuition.Mixture(means=(0.0,), stds=(-1.0,), weights=(1.0,))


def test_bad_settings_name_the_parameter():
    with pytest.raises(ConfigError, match="batch_size=250 must be a multiple of pack=4"):
        intuition.IntuitionConfig(batch_size=250, pack=4)
    with pytest.raises(ConfigError, match="steps=0"):
        intuition.IntuitionConfig(steps=0)
    with pytest.raises(ConfigError, match="pack=1 must be a whole number >= 2"):
        intuition.configs_from({"steps": 100, "pack": 1})
    plain, cured = intuition.configs_from({"steps": 100, "frames": 5, "pack": 4, "unrelated": "x"})
    assert (plain.pack, cured.pack, cured.steps, cured.frames) == (1, 4, 100, 5)


def test_one_step_updates_both_networks():
    game, state = intuition.create(intuition.IntuitionConfig(batch_size=32, pack=4))
    d_scores = intuition.scores(game, state["d"], np.zeros(32))
    assert d_scores.shape == (8,) and np.all((d_scores > 0) & (d_scores < 1))  # one per pack of 4
    new, metrics = jax.jit(intuition.make_step(game))(state)
    assert int(new["step"]) == 1 and set(metrics) == {"d_loss", "g_loss", "d_real", "d_fake"}
    for net in ("g", "d"):
        before, after = jax.tree.leaves(state[net]), jax.tree.leaves(new[net])
        assert any(not np.allclose(a, b) for a, b in zip(before, after, strict=True)), net
    snapshot = intuition.Snapshot(1, new["g"], new["d"])
    curve = intuition.discriminator_curve(game, snapshot, np.linspace(-3, 3, 7))
    assert curve.shape == (7,) and np.all((curve > 0) & (curve < 1))


def test_training_brings_the_generator_to_the_data():
    history = intuition.train(intuition.IntuitionConfig(steps=1000, frames=2))
    assert [s.step for s in history.snapshots] == [0, 500, 1000]
    d = intuition.distances(history)
    assert d[-1] < 0.5 * d[0], d
    assert history.metrics["d_loss"].shape == (1000,) and np.all(np.isfinite(history.metrics["g_loss"]))


@pytest.mark.slow
def test_plain_game_collapses_and_packing_cures_it_at_the_notebook_defaults():
    """What the notebook tells its readers, checked: with the default settings the plain GAN
    misses modes, the packed discriminator finds all four and ends closer to the data."""
    plain = intuition.summary(intuition.train(intuition.IntuitionConfig(frames=1)))
    packed = intuition.summary(intuition.train(intuition.IntuitionConfig(frames=1, pack=4)))
    assert plain["modes_found"] < 4 and packed["modes_found"] == 4, (plain, packed)
    assert packed["wasserstein_end"] < plain["wasserstein_end"] < plain["wasserstein_start"]


@pytest.mark.slow
def test_notebook_runs_headless_and_ends_closer_to_the_data(tmp_path):
    nb = nbformat.read(notebooks_dir() / "00_gan_intuition.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []) and len(code) <= 20
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert nb.cells[-1].cell_type == "markdown" and "Summary" in nb.cells[-1].source
    assert sum("aside" in c.source.lower() for c in nb.cells if c.cell_type == "markdown") == 1

    out = run_notebook("00_gan_intuition", tmp_path / "run", {"steps": 600, "frames": 3})
    results = json.loads((tmp_path / "run" / "intuition.json").read_text())
    for name in ("plain", "packed"):
        assert results[name]["steps"] == 600
        assert results[name]["wasserstein_end"] < results[name]["wasserstein_start"], results[name]
    for name in ("plain_game.html", "packed_game.html"):
        assert (tmp_path / "run" / name).read_text().count("data:image/png;base64") == 4
    assert (tmp_path / "run" / "plain_vs_packed.png").stat().st_size > 10_000
    executed = nbformat.read(out, as_version=4)
    html_outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs
                    if "text/html" in o.get("data", {}) and "data:image/png;base64" in o["data"]["text/html"]]
    assert len(html_outputs) == 2  # both animations are embedded in the executed notebook
