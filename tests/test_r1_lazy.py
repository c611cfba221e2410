"""Lazy R1 (``r1_every``): the penalty every k-th step, k times over; the other steps skip it."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from audiogan import training
from audiogan.config import RunConfig
from audiogan.errors import ConfigError
from audiogan.models import mlp
from audiogan.training import losses

GAMMA, K = 10.0, 4
STEPS = (0, 2 * K, K + 1, 2 * K - 1)  # the state's step: two divisible by K, two not


def sgd_steps(gan, state, config: RunConfig, steps: tuple[int, ...], real_bt: np.ndarray) -> list[tuple]:
    """For each of ``steps``, the discriminator's weights before and after one training step of
    ``config`` from ``state`` with its step set to it, and the step's metrics; under SGD with learning
    rate 1, so that the weights' change is minus the gradient."""
    gan = dataclasses.replace(gan, config=config, d_tx=optax.sgd(1.0), g_tx=optax.sgd(0.0))
    state = state.replace(d_opt=gan.d_tx.init(state.d_params), g_opt=gan.g_tx.init(state.g_params))
    step_fn, before = training.make_step(gan), jax.device_get(state.d_params)
    out = []
    for step in steps:
        fresh = jax.tree.map(jnp.copy, state).replace(step=jnp.int32(step))  # the step donates its state
        after, metrics = step_fn(fresh, real_bt[None])
        out.append((before, jax.device_get(after.d_params), jax.device_get(metrics)))
    return out


def change(before, after) -> np.ndarray:
    pairs = zip(jax.tree.leaves(after), jax.tree.leaves(before), strict=True)
    return np.concatenate([np.ravel(a - b) for a, b in pairs])


@pytest.fixture(scope="module")
def updates(tmp_path_factory):
    """The same steps with no penalty, R1 on every step and lazy R1 every K steps, on the classic
    discriminator without dropout (so that R1 can be computed by hand without the step's keys); and
    R1 and its gradient written out from the formula, with no step code."""
    config = RunConfig(
        run_dir=str(tmp_path_factory.mktemp("r1") / "run"), dataset="tones", model="mlp", batch_size=16,
        sample_rate=8000, clip_samples=256, n_clips=64,
    )
    real_bt = np.random.default_rng(0).uniform(-0.5, 0.5, (16, 256)).astype(np.float32)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mlp, "DROPOUT", 0.0)
        gan, state = training.create(config)  # the penalty does not change the networks or their weights
        every = config.replace(r1_weight=GAMMA)
        runs = {name: sgd_steps(gan, state, c, STEPS, real_bt) for name, c in
                (("plain", config), ("every", every), ("lazy", every.replace(r1_every=K)))}
        d_def = gan.d_def

    def r1(params):
        return losses.r1_penalty(nnx.merge(d_def, params), jnp.asarray(real_bt))

    before = runs["plain"][0][0]
    grad = np.concatenate([np.ravel(g) for g in jax.tree.leaves(jax.grad(r1)(before))])
    return runs, float(r1(before)), grad


def test_r1_every_1_charges_half_gamma_times_r1_on_every_step(updates):
    # The step as it was before r1_every: the penalty's share of the update is gamma/2 x grad R1.
    runs, r1, r1_grad = updates
    assert RunConfig().r1_every == 1
    for plain, (before, after, metrics) in zip(runs["plain"], runs["every"], strict=True):
        penalty_share = change(*plain[:2]) - change(before, after)
        expected = 0.5 * GAMMA * r1_grad
        assert np.abs(expected).max() > 1e-4  # the penalty moves the weights: the check can fail
        np.testing.assert_allclose(penalty_share, expected, rtol=0, atol=2e-3 * np.abs(expected).max())
        assert float(metrics["r1"]) == pytest.approx(r1, rel=1e-5)


def test_lazy_r1_is_k_times_the_penalty_on_steps_divisible_by_k_and_nothing_between(updates):
    runs, r1, _ = updates
    for step, plain, full, (before, after, metrics) in zip(STEPS, *runs.values(), strict=True):
        base = change(*plain[:2])
        full_share, lazy_share = base - change(*full[:2]), base - change(before, after)
        if step % K == 0:  # K x the every-step penalty: the same on average
            np.testing.assert_allclose(lazy_share, K * full_share, rtol=0, atol=2e-3 * K * np.abs(full_share).max())
            assert float(metrics["r1"]) == pytest.approx(K * r1, rel=1e-5)  # the penalty as charged
        else:  # the discriminator moves as if there were no penalty
            np.testing.assert_array_equal(change(before, after), base)
            assert float(metrics["r1"]) == 0.0


def test_lazy_r1_steps_branch_on_the_step_and_r1_every_1_does_not(tiny_config):
    # lax.cond: the off steps run the zeros branch only, not the penalty's second derivative.
    gan, state = training.create(tiny_config)
    real = jnp.zeros((1, tiny_config.batch_size, tiny_config.clip_samples))

    def step_jaxpr(**changes):
        step = training.make_step(dataclasses.replace(gan, config=tiny_config.replace(**changes)))
        return str(jax.make_jaxpr(step)(state, real))

    assert " cond[" in step_jaxpr(r1_weight=GAMMA, r1_every=8)
    assert " cond[" not in step_jaxpr(r1_weight=GAMMA)


@pytest.mark.slow
def test_lazy_r1_trains_and_logs_the_mean_penalty(tiny_config):
    # each log_every = 10 holds two steps of r1_every = 5 that charge the penalty: no row reads 0
    config = tiny_config.replace(r1_weight=GAMMA, r1_every=5, steps=20, log_every=10, preview_every=10**6)
    result = training.train(config, progress=False)
    assert int(result.state.step) == 20
    assert all(np.isfinite(v) and v > 0 for v in result.history["r1"])


@pytest.mark.parametrize("bad", [0, -16, 2.0, True, "16", None])
def test_a_bad_r1_every_is_refused_naming_it(tiny_config, bad):
    with pytest.raises(ConfigError, match=r"r1_every="):
        tiny_config.replace(r1_every=bad)
