"""The training state, the compiled step and the loop: learning, checkpoints, resume, NaN guard."""

import os
import re
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from audiogan import datasets, training, xla
from audiogan.config import RunConfig
from audiogan.models import conv
from audiogan.runs import RunFolder
from audiogan.training.optimiser import optimiser_update


def leaves_equal(a, b) -> bool:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(
        np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(la, lb, strict=True)
    )


def update_counts(opt_state) -> set[int]:
    return {int(x) for x in jax.tree.leaves(opt_state) if np.ndim(x) == 0 and np.issubdtype(x.dtype, np.integer)}


def test_step_updates_both_networks_and_compiles_once(tiny_config):
    gan, state = training.create(tiny_config)
    g0, d0 = jax.device_get(state.g_params), jax.device_get(state.d_params)
    step = training.make_step(gan)
    ds = datasets.load_dataset(tiny_config)
    batches = datasets.Batches(ds.clips, tiny_config.batch_size, tiny_config.seed)
    for s in range(3):
        state, metrics = step(state, batches[s][None])
    assert int(state.step) == 3
    assert set(metrics) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(np.shape(v) == () and np.isfinite(v) for v in jax.device_get(metrics).values())
    assert 0 < float(metrics["d_real"]) < 1 and 0 < float(metrics["d_fake"]) < 1
    assert not leaves_equal(g0, state.g_params) and not leaves_equal(d0, state.d_params)
    assert step._cache_size() == 1  # no recompilation as training runs


@pytest.mark.slow
def test_a_recipe_compiles_once_per_process(tiny_config, tmp_path):
    """A second run (or a resumed one) with the same settings reuses the compiled step."""
    first = training.train(tiny_config.replace(run_dir=str(tmp_path / "a"), steps=4), progress=False)
    step, _ = training.compiled(first.gan)
    training.train(tiny_config.replace(run_dir=str(tmp_path / "b"), steps=6, log_every=3), progress=False)
    assert training.compiled(first.gan)[0] is step and step._cache_size() == 1
    other = training.create(tiny_config.replace(lr=1e-3))[0]
    assert training.compiled(other)[0] is not step


@pytest.mark.slow
def test_n_critic_updates_discriminator_that_many_times(tiny_config):
    cfg = tiny_config.replace(n_critic=3)
    gan, state = training.create(cfg)
    step = training.make_step(gan)
    ds = datasets.load_dataset(cfg)
    real_cbt = np.stack([ds.clips[i * 16:(i + 1) * 16] for i in range(3)])
    state, _ = step(state, real_cbt)
    # Adam's count in each optimiser state says how many updates that network made.
    assert update_counts(state.d_opt) == {3}
    assert update_counts(state.g_opt) == {1}


@pytest.mark.slow
def test_discriminator_learns_on_tones_in_200_steps(tmp_path):
    from audiogan.config import RunConfig

    cfg = RunConfig(
        run_dir=str(tmp_path / "learn"), dataset="tones", steps=200, batch_size=32, sample_rate=8000,
        clip_samples=1024, n_clips=256, log_every=10, preview_every=200, checkpoint_every=200, seed=0,
    )
    h = training.train(cfg, progress=False).history
    assert h["step"] == [float(s) for s in range(10, 201, 10)]
    first, last = slice(0, 3), slice(-3, None)
    assert np.mean(h["d_loss"][last]) < np.mean(h["d_loss"][first]) - 0.05
    assert np.mean(h["d_real"][last]) > np.mean(h["d_real"][first]) + 0.05


@pytest.mark.slow
def test_run_folder_contents_and_checkpoint_reloads_bit_exact(tiny_config):
    result = training.train(tiny_config, progress=False)
    run = RunFolder(tiny_config.run_dir)
    assert run.config() == tiny_config
    assert run.read_json("dataset.json")["clips"] == 64
    assert run.read_metrics()["step"] == [10.0, 20.0, 30.0, 40.0]
    for step in (20, 40):
        folder = run.sample_dir(step)
        assert sorted(p.name for p in folder.iterdir()) == ["sample_0.wav", "sample_1.wav", "spectrograms.png"]
    gan, restored = training.restore(tiny_config.run_dir)
    assert int(restored.step) == 40
    assert leaves_equal(restored, result.state)
    # The restored generator makes exactly the previews it made at the end of training.
    np.testing.assert_array_equal(training.preview(gan, restored), training.preview(result.gan, result.state))


@pytest.mark.slow
def test_resume_equals_uninterrupted_run(tiny_config, tmp_path):
    whole = training.train(tiny_config.replace(run_dir=str(tmp_path / "whole")), progress=False)
    parts_cfg = tiny_config.replace(run_dir=str(tmp_path / "parts"))
    first = training.train(parts_cfg, progress=False, stop_after=20)
    assert int(first.state.step) == 20 and first.resumed_from is None
    second = training.train(parts_cfg, progress=False)
    assert second.resumed_from == 20
    for col in ("step", "d_loss", "g_loss", "d_real", "d_fake"):
        assert second.history[col] == whole.history[col], col
    assert leaves_equal(second.state.g_params, whole.state.g_params)


@pytest.mark.slow
def test_resume_drops_rows_logged_after_the_checkpoint(tiny_config):
    training.train(tiny_config.replace(steps=30, checkpoint_every=20), progress=False)
    run = RunFolder(tiny_config.run_dir)
    # Simulate a crash after step 30 was logged but before it was checkpointed.
    import shutil

    run.wait()
    shutil.rmtree(run.checkpoint_dir / "30")
    assert run.read_metrics()["step"] == [10.0, 20.0, 30.0]
    result = training.train(tiny_config, progress=False)
    assert result.resumed_from == 20
    assert result.history["step"] == [10.0, 20.0, 30.0, 40.0]


@pytest.mark.slow
def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tiny_config):
    good = datasets.load_dataset(tiny_config)
    training.train(tiny_config.replace(steps=20), good, progress=False)
    bad = datasets.Dataset("bad", np.full_like(good.clips, np.nan), good.sample_rate)
    with pytest.raises(training.TrainingDiverged, match=r"NaN or infinite by step 30.*step 20"):
        training.train(tiny_config, bad, progress=False)
    run = RunFolder(tiny_config.run_dir)
    assert run.latest_step() == 20
    assert run.read_metrics()["step"] == [10.0, 20.0]
    assert all(np.isfinite(run.read_metrics()["d_loss"]))


def test_changed_recipe_in_same_run_dir_is_refused(tiny_config):
    from audiogan.config import ConfigError

    training.train(tiny_config.replace(steps=10), progress=False)
    with pytest.raises(ConfigError, match="lr"):
        training.train(tiny_config.replace(lr=1e-3), progress=False)


@pytest.mark.slow
def test_same_seed_same_run_other_seed_other_run(tiny_config, tmp_path):
    a = training.train(tiny_config.replace(run_dir=str(tmp_path / "a"), steps=10), progress=False)
    b = training.train(tiny_config.replace(run_dir=str(tmp_path / "b"), steps=10), progress=False)
    c = training.train(tiny_config.replace(run_dir=str(tmp_path / "c"), steps=10, seed=1), progress=False)
    assert a.history["d_loss"] == b.history["d_loss"]
    assert a.history["d_loss"] != c.history["d_loss"]


@pytest.mark.slow
def test_batch_is_sharded_over_eight_devices_with_the_same_result(tiny_config, tmp_path):
    """The same step on eight virtual CPU devices gives the losses of the one-device run."""
    one = training.train(tiny_config.replace(run_dir=str(tmp_path / "one"), steps=10), progress=False)
    script = textwrap.dedent(f"""
        import jax
        from audiogan import training
        from audiogan.config import RunConfig
        assert len(jax.devices()) == 8
        cfg = RunConfig.load({str(tmp_path / 'one')!r}).replace(run_dir={str(tmp_path / 'eight')!r})
        gan, state = training.create(cfg)
        assert len(gan.data_sharding.mesh.devices.ravel()) == 8
        print(training.train(cfg, progress=False).history["d_loss"])
    """)
    env = os.environ | {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    eight = eval(out.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(eight, one.history["d_loss"], rtol=1e-4)


# ---------------------------------------------------------------------------- every family and loss
def family_config(tiny_config, model: str, **changes):
    """Tiny WaveGAN / SpecGAN runs: width 2, batch 8, the paper's clip length."""
    if model == "mlp":
        return tiny_config.replace(**changes)
    return tiny_config.replace(model=model, d=2, batch_size=8, clip_samples=16384, sample_rate=16000,
                               n_clips=32, **changes)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mlp", "wavegan", "specgan"])
@pytest.mark.parametrize("loss", ["wgan-gp", "ns", "hinge", "lsgan"])
def test_every_model_and_loss_trains_checkpoints_resumes_and_previews(tiny_config, model, loss):
    cfg = family_config(tiny_config, model, loss=loss, steps=4, log_every=2, preview_every=4,
                        checkpoint_every=2, n_critic=2 if loss == "wgan-gp" else None)
    assert training.train(cfg, progress=False, stop_after=2).resumed_from is None
    result = training.train(cfg, progress=False)
    assert result.resumed_from == 2
    h = result.history
    assert h["step"] == [2.0, 4.0] and all(np.isfinite(h["d_loss"] + h["g_loss"]))
    assert ("wasserstein" in h and "gp" in h) == (loss == "wgan-gp")
    assert RunFolder(cfg.run_dir).latest_step() == 4 and int(result.state.step) == 4
    wav, sr = __import__("soundfile").read(RunFolder(cfg.run_dir).sample_dir(4) / "sample_0.wav")
    assert sr == cfg.sample_rate and wav.shape == (cfg.clip_samples,)
    gan, state = training.restore(cfg.run_dir)
    clips = training.generate(gan, state, 3)
    assert clips.shape == (3, cfg.clip_samples) and np.all(np.abs(clips) <= 1)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["wavegan", "specgan"])
def test_paper_models_resume_exactly(tiny_config, tmp_path, model):
    """WGAN-GP with 2 critic steps: a run resumed from its checkpoint equals an uninterrupted one."""
    cfg = family_config(tiny_config, model, steps=6, log_every=2, preview_every=6, checkpoint_every=2,
                        n_critic=2)
    whole = training.train(cfg.replace(run_dir=str(tmp_path / "whole")), progress=False)
    parts = cfg.replace(run_dir=str(tmp_path / "parts"))
    training.train(parts, progress=False, stop_after=4)
    resumed = training.train(parts, progress=False)
    assert resumed.resumed_from == 4
    for col in ("d_loss", "g_loss", "wasserstein", "gp"):
        assert resumed.history[col] == whole.history[col], col
    assert leaves_equal(resumed.state, whole.state)


@pytest.mark.slow
def test_specgan_moments_are_stored_with_the_run_and_reused(tiny_config):
    from audiogan.models.specgan import SpectrogramCodec

    cfg = family_config(tiny_config, "specgan", steps=2, log_every=2, preview_every=2, checkpoint_every=2)
    result = training.train(cfg, progress=False)
    stored = SpectrogramCodec.load(RunFolder(cfg.run_dir).path / training.SPECTROGRAM_MOMENTS)
    np.testing.assert_array_equal(stored.mean_f, result.gan.codec.mean_f)
    gan, _ = training.restore(cfg.run_dir)
    np.testing.assert_array_equal(gan.codec.std_f, result.gan.codec.std_f)


@pytest.mark.slow
def test_ema_tracks_the_generator_and_is_used_for_sampling(tiny_config):
    cfg = tiny_config.replace(steps=5, ema_decay=0.5, log_every=5, preview_every=5, checkpoint_every=5)
    result = training.train(cfg, progress=False)
    ema, raw = jax.device_get(result.state.g_ema), jax.device_get(result.state.g_params)
    assert not leaves_equal(ema, raw)
    assert result.state.sampling_params is result.state.g_ema
    # Off: nothing is kept and sampling uses the trained weights.
    off = training.create(tiny_config)[1]
    assert jax.tree.leaves(off.g_ema) == [] and off.sampling_params is off.g_params


@pytest.mark.slow
@pytest.mark.parametrize("model", ["wavegan", "specgan"])
def test_paper_models_learn_in_200_steps(tmp_path, model):
    """A short WGAN-GP run on tones: the critic's Wasserstein estimate rises from its start."""
    from audiogan.config import RunConfig

    cfg = RunConfig(run_dir=str(tmp_path / model), model=model, d=4, batch_size=16, n_critic=1, steps=200,
                    n_clips=128, log_every=10, preview_every=200, checkpoint_every=200)
    h = training.train(cfg, progress=False).history
    assert np.mean(h["wasserstein"][-5:]) > np.mean(h["wasserstein"][:2]) + 0.1


@pytest.mark.slow
def test_stopping_early_checkpoints_where_it_stopped(tiny_config):
    result = training.train(tiny_config, progress=False, stop_after=7)
    run = RunFolder(tiny_config.run_dir)
    assert int(result.state.step) == 7 and run.latest_step() == 7
    assert run.read_metrics()["step"] == [7.0]
    assert training.train(tiny_config, progress=False).resumed_from == 7


@pytest.mark.slow
def test_step_memory_does_not_grow_with_n_critic(tiny_config):
    """The critic updates run in a loop that carries the state, so XLA updates D's weights and Adam
    moments in place. Unrolled, it gave every update fresh buffers: about two copies of D's weights more
    per critic step (WaveGAN d=16, batch 16: 229 MiB of temporaries at 5:1 against 119 at 1:1)."""

    def temporaries(n_critic):
        cfg = tiny_config.replace(n_critic=n_critic)
        gan, state = training.create(cfg)
        real = np.zeros((n_critic, cfg.batch_size, cfg.clip_samples), np.float32)
        compiled = training.make_step(gan).lower(state, real).compile()
        return compiled.memory_analysis().temp_size_in_bytes, sum(x.nbytes for x in jax.tree.leaves(state.d_params))

    (two, d_bytes), (six, _) = temporaries(2), temporaries(6)
    assert six <= two + d_bytes // 2, (two, six, d_bytes)


@pytest.mark.slow
def test_step_flops_count_every_critic_update(tiny_config):
    """XLA's cost analysis counts a loop's body once; ``step_flops`` (the benchmarks' GFLOP/s) must
    count each of the n_critic updates."""
    flops = {}
    for n in (1, 2, 3):
        cfg = tiny_config.replace(n_critic=n)
        gan, state = training.create(cfg)
        flops[n] = training.step_flops(gan, state, np.zeros((n, cfg.batch_size, cfg.clip_samples), np.float32))
    one_critic_update = flops[2] - flops[1]
    assert one_critic_update > 0.3 * flops[1], flops
    assert flops[3] - flops[2] == pytest.approx(one_critic_update, rel=1e-6), flops


def copied_state_leaves(compiled, state) -> set[str]:
    """The state leaves (as key paths) that XLA copies before the compiled step updates them in place."""
    entry = compiled.as_text().split("\nENTRY", 1)[1]
    params = dict(re.findall(r"%([\w.\-]+) = \S+ parameter\((\d+)\)", entry))
    copied = {int(params[name]) for name in re.findall(r"= \S+ copy\(%([\w.\-]+)\)", entry) if name in params}
    paths = [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(state)[0]]
    return {paths[i] for i in copied if i < len(paths)}


@pytest.mark.slow
@pytest.mark.parametrize("n_critic", [1, 2])
def test_step_copies_no_weight_and_no_moment(tiny_config, n_critic):
    """``optimiser_update`` orders each in-place write after every read of the old value; written the
    plain way, XLA copied every first moment of Adam and some weights before updating them."""
    cfg = tiny_config.replace(n_critic=n_critic)
    gan, state = training.create(cfg)
    real = np.zeros((n_critic, cfg.batch_size, cfg.clip_samples), np.float32)
    copied = copied_state_leaves(training.make_step(gan).lower(state, real).compile(), state)
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    arrays = {jax.tree_util.keystr(path) for path, x in leaves if np.size(x) > 1}
    assert not copied & arrays, sorted(copied)


@pytest.mark.slow
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="an XLA:CPU option")
def test_step_compiles_in_the_memory_optimised_order_on_cpu(tmp_path):
    """The step is compiled with XLA:CPU's memory-optimised instruction order (``conv.compiler_options``):
    fewer temporary bytes than XLA's default order for concurrency, for a small WaveGAN at one critic step
    2.3 MB against 3.2 (with a critic loop the two orders come out closer, either way round)."""
    cfg = RunConfig(run_dir=str(tmp_path / "run"), dataset="tones", model="wavegan", d=2, batch_size=4,
                    n_critic=1)
    gan, state = training.create(cfg)
    real = np.zeros((1, 4, cfg.clip_samples), np.float32)

    def temp_bytes(options):
        compiled_step = training.make_step(gan, options=options).lower(state, real).compile()
        return compiled_step.memory_analysis().temp_size_in_bytes

    concurrency_order = {xla.OPTION: xla.YNN_FUSION_TYPES}  # XLA's default order
    assert xla.SCHEDULER_OPTION in conv.compiler_options()
    assert temp_bytes(None) < 0.85 * temp_bytes(concurrency_order)


@pytest.mark.slow
def test_convolutional_steps_compile_with_the_elemental_fusion_emitters_and_the_classic_gan_does_not(
    tmp_path, monkeypatch
):
    """WaveGAN's and SpecGAN's steps and ``generate`` are compiled with XLA:CPU's elemental fusion emitters
    (less memory left behind by compiling their hundreds of fused loops); the classic GAN's keep the MLIR
    ones (its large Adam loops run 36% faster there). ``test_elemental_fusion_option_reaches_xla_cpu`` shows
    that the option changes the code XLA makes."""
    emitters = xla.EMITTERS_OPTION
    passed = []
    jit = conv.jit
    monkeypatch.setattr(conv, "jit", lambda fun, options=None, **kw: passed.append(options) or jit(fun, options, **kw))
    for model, elemental in (("wavegan", True), ("specgan", True), ("mlp", False)):
        cfg = RunConfig(run_dir=str(tmp_path / model), model=model)
        gan = training.GAN(cfg, None, None, None, None, None, None, None, ())
        passed.clear()
        training.make_step(gan), training.make_generate(gan)
        assert passed == [training.compiler_options(cfg)] * 2
        if jax.default_backend() == "cpu":
            assert (training.compiler_options(cfg).get(emitters) is False) == elemental
            assert training.compiler_options(cfg) == conv.compiler_options(elemental_fusions=elemental)


def test_optimiser_update_gives_optax_values():
    key = jax.random.PRNGKey(1)
    params = {"w": jax.random.normal(key, (3, 5)), "b": {"c": jax.random.normal(jax.random.fold_in(key, 1), (5,))}}
    grads = jax.tree.map(lambda p: jnp.sin(3 * p), params)
    tx = optax.adam(1e-3)

    @jax.jit
    def plain(grads, opt_state, params):
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    tied = jax.jit(lambda *args: optimiser_update(tx, *args))
    want = params, tx.init(params)
    got = want
    for _ in range(5):  # XLA may fuse the arithmetic differently: equal but for the last bits
        want, got = plain(grads, *want[::-1]), tied(grads, *got[::-1])
        for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(got), strict=True):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6, atol=0)
