"""HiFi-GAN: shapes, parameter counts and layer-for-layer agreement with the PyTorch port of the official code."""

import json
import math
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from audiogan.models import hifigan
from audiogan.models.vocoder_blocks import Conv, ConvTranspose1d, PowerIteration, load_torch_state, torch_layout
from vocoder_ports import COUNTS, PORT, abstract, output_shape, torch_python, torch_state

MPD_TINY = (4, 8, 8, 16, 16)
MSD_TINY = (16, 16, 32, 32, 32, 32, 32)


def tiny(variant: str) -> dict:
    """The official variant's layer plan at 16 initial channels."""
    return dict(hifigan.VARIANTS[variant], upsample_initial_channel=16)


def test_variants_are_the_official_configs():
    v1, v2, v3 = (hifigan.VARIANTS[v] for v in ("v1", "v2", "v3"))
    assert (v1["upsample_rates"], v1["upsample_kernel_sizes"], v1["upsample_initial_channel"]) == (
        (8, 8, 2, 2), (16, 16, 4, 4), 512)
    assert v1["resblock"] == v2["resblock"] == 1 and v3["resblock"] == 2
    assert v2["upsample_initial_channel"] == 128 and v3["upsample_initial_channel"] == 256
    assert v1["resblock_kernel_sizes"] == (3, 7, 11) and v1["resblock_dilation_sizes"] == ((1, 3, 5),) * 3
    assert (v3["upsample_rates"], v3["upsample_kernel_sizes"]) == ((8, 8, 4), (16, 16, 8))
    assert v3["resblock_kernel_sizes"] == (3, 5, 7) and v3["resblock_dilation_sizes"] == ((1, 2), (2, 6), (3, 12))
    assert all(math.prod(v["upsample_rates"]) == hifigan.RECIPE["hop_size"] for v in hifigan.VARIANTS.values())


def test_recipe_holds_the_official_training_settings():
    r = hifigan.RECIPE
    assert (r["loss"], r["feature_matching_weight"], r["mel_l1_weight"]) == ("least_squares", 2.0, 45.0)
    assert (r["optimizer"], r["learning_rate"], r["betas"], r["lr_decay"]) == ("adamw", 2e-4, (0.8, 0.99), 0.999)
    assert (r["segment_size"], r["n_fft"], r["num_mels"], r["hop_size"], r["win_size"]) == (8192, 1024, 80, 256, 1024)
    assert (r["sample_rate"], r["fmin"], r["fmax"], r["mpd_periods"], r["msd_scales"]) == (
        22050, 0, 8000, (2, 3, 5, 7, 11), 3)


@pytest.mark.parametrize("variant", ["v1", "v2", "v3"])
@pytest.mark.parametrize("frames", [1, 3, 32])
def test_generator_output_is_frames_times_hop_for_each_variant(variant, frames):
    g = abstract(lambda: hifigan.Generator(80, variant, rngs=nnx.Rngs(0)))
    wav = output_shape(g, jax.ShapeDtypeStruct((2, frames, 80), jnp.float32))
    assert g.hop == 256 and wav.shape == (2, frames * 256)


@pytest.mark.slow
def test_tiny_generator_runs_and_stays_in_minus_one_to_one():
    g = hifigan.Generator(8, tiny("v3"), rngs=nnx.Rngs(0))
    wav_bt = g(jax.random.normal(jax.random.key(1), (2, 3, 8)))
    assert wav_bt.shape == (2, 768) and bool(jnp.all(jnp.abs(wav_bt) <= 1)) and float(jnp.std(wav_bt)) > 0


def jax_counts() -> dict:
    counts = {}
    mpd = hifigan.count_params(abstract(lambda: hifigan.MultiPeriodDiscriminator(rngs=nnx.Rngs(0))))
    msd = hifigan.count_params(abstract(lambda: hifigan.MultiScaleDiscriminator(rngs=nnx.Rngs(0))))
    for v in ("v1", "v2", "v3"):
        g = hifigan.count_params(abstract(lambda v=v: hifigan.Generator(80, v, rngs=nnx.Rngs(0))))
        counts[f"hifigan/{v}"] = dict(generator=g, mpd=mpd, msd=msd)
    return counts


def test_parameter_counts_equal_the_pytorch_ports():
    stored = json.loads(COUNTS.read_text())
    ours = jax_counts()
    assert ours == {k: stored[k] for k in ours}
    assert ours["hifigan/v1"]["generator"] == 13_936_130


@pytest.mark.slow
def test_parameter_counts_equal_the_pytorch_port_recomputed():
    python = torch_python()
    if python is None:
        pytest.skip("no torch: `make bench-torch` makes .venv-torch")
    out = subprocess.run([python, str(PORT), "--counts-only"], check=True, capture_output=True, text=True,
                         timeout=600).stdout
    torch_counts = json.loads(out)
    ours = jax_counts()
    assert ours == {k: torch_counts[k] for k in ours}


def test_weight_norm_starts_with_the_weight_equal_to_v():
    conv = Conv(6, 4, 5, dilation=2, padding=4, rngs=nnx.Rngs(0))
    up = ConvTranspose1d(8, 4, 16, 8, padding=4, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(conv.kernel(), conv.weight_v[...], rtol=1e-6)
    np.testing.assert_allclose(up.kernel(), up.weight_v[...], rtol=1e-6)


def test_weight_norm_gains_follow_torchs_first_axis():
    conv = Conv(6, 4, 5, rngs=nnx.Rngs(0))
    up = ConvTranspose1d(8, 4, 16, 8, padding=4, rngs=nnx.Rngs(0))
    # torch's weight_norm(dim=0) keeps one gain per row of its weight: out channels for a convolution,
    # in channels for a transposed one ((in, out, k)).
    assert conv.weight_g.shape == (4,) and up.weight_g.shape == (8,)
    conv.weight_g[...] = 2 * conv.weight_g[...]
    np.testing.assert_allclose(conv.kernel(), 2 * conv.weight_v[...], rtol=1e-6)


def test_transposed_convolution_makes_stride_samples_per_step():
    up = ConvTranspose1d(4, 2, 16, 8, padding=4, rngs=nnx.Rngs(0))
    assert up(jnp.ones((1, 5, 4))).shape == (1, 40, 2)


@pytest.mark.parametrize(("kernel", "stride", "padding", "output_padding"),
                         [(16, 8, 4, 0), (8, 4, 2, 0), (4, 2, 1, 0), (6, 3, 2, 1), (5, 2, 1, 0), (5, 3, 0, 2)])
def test_transposed_convolution_without_weight_norm_gives_the_same_samples(kernel, stride, padding, output_padding):
    up = ConvTranspose1d(3, 5, kernel, stride, padding, output_padding, rngs=nnx.Rngs(0))
    x_btc = jax.random.normal(jax.random.key(1), (2, 7, 3))
    y_btc, kernel_kio = up(x_btc), up.kernel()
    up.remove_weight_norm()
    assert set(nnx.state(up, nnx.Param).keys()) == {"weight_phases", "bias"}
    np.testing.assert_array_equal(up.kernel(), kernel_kio)
    np.testing.assert_allclose(up(x_btc), y_btc, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("resblock", [1, 2])
def test_generator_without_weight_norm_equals_the_training_forward_pass(resblock):
    variant = dict(resblock=resblock, upsample_rates=(8, 2), upsample_kernel_sizes=(16, 4), upsample_initial_channel=8,
                   resblock_kernel_sizes=(3, 5), resblock_dilation_sizes=((1, 3), (2, 6)))  # V1's / V3's blocks, small
    g = hifigan.Generator(8, variant, rngs=nnx.Rngs(0))
    for layer in (g.conv_pre, g.ups[0], g.conv_post):  # gains away from ||v||, so that folding them matters
        layer.weight_g[...] = 1.5 * layer.weight_g[...]
    mel_btm = jax.random.normal(jax.random.key(1), (1, 5, 8))
    graph, params = nnx.split(g)
    forward = jax.jit(lambda params, mel: nnx.merge(graph, params)(mel))
    wav_bt = forward(params, mel_btm)
    n_gains = sum(p.size for path, p in nnx.to_flat_state(params) if path[-1] == "weight_g")
    g.remove_weight_norm()
    assert not any(path[-1] in ("weight_g", "weight_v") for path, _ in nnx.to_flat_state(nnx.state(g)))
    assert hifigan.count_params(g) == hifigan.count_params(nnx.merge(graph, params)) - n_gains
    np.testing.assert_allclose(nnx.jit(lambda g, mel: g(mel))(g, mel_btm), wav_bt, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no weight norm"):
        g.conv_pre.remove_weight_norm()


def test_spectral_norm_drives_the_largest_singular_value_to_one():
    conv = Conv(4, 16, 41, stride=2, groups=4, padding=20, norm="spectral", rngs=nnx.Rngs(0))
    x_btc = jnp.ones((1, 64, 4))
    for _ in range(30):
        conv(x_btc)
    conv.eval()
    w_oi = torch_layout(conv.kernel()).reshape(16, -1)
    assert np.linalg.svd(np.asarray(w_oi), compute_uv=False)[0] == pytest.approx(1.0, rel=1e-3)


def test_spectral_norm_vectors_are_state_that_eval_freezes():
    conv = Conv(4, 8, 3, norm="spectral", rngs=nnx.Rngs(0))
    params = nnx.state(conv, nnx.Param)
    assert set(params.keys()) == {"weight_orig", "bias"}
    assert set(nnx.state(conv, PowerIteration).keys()) == {"u", "v"}
    u0 = conv.u[...]
    conv(jnp.ones((1, 8, 4)))
    assert not np.allclose(conv.u[...], u0)
    conv.eval()
    u1 = conv.u[...]
    conv(jnp.ones((1, 8, 4)))
    np.testing.assert_array_equal(conv.u[...], u1)


def test_discriminators_return_the_official_logits_and_feature_maps():
    wav = jax.ShapeDtypeStruct((2, 8192), jnp.float32)
    mpd = abstract(lambda: hifigan.MultiPeriodDiscriminator(rngs=nnx.Rngs(0)))
    msd = abstract(lambda: hifigan.MultiScaleDiscriminator(rngs=nnx.Rngs(0)))
    logits, fmaps = output_shape(mpd, wav)
    assert len(logits) == 5 and [len(f) for f in fmaps] == [6] * 5
    # period 3: 8192 reflect-padded to 8193, 2731 rows, then four stride-3 layers.
    assert fmaps[1][0].shape == (2, 911, 3, 32) and logits[1].shape == (2, 34 * 3)
    logits, fmaps = output_shape(msd, wav)
    assert len(logits) == 3 and [len(f) for f in fmaps] == [8] * 3
    assert [f.shape[1] for f in fmaps[0]] == [8192, 4096, 2048, 512, 128, 128, 128, 128]
    assert fmaps[1][0].shape == (2, 4097, 128)  # AvgPool1d(4, 2, padding=2) makes T / 2 + 1
    assert logits[2].shape == (2, 33)


def test_combined_discriminator_returns_mpd_then_msd():
    d = abstract(lambda: hifigan.build(80, "v2", rngs=nnx.Rngs(0))[1])
    logits, fmaps = output_shape(d, jax.ShapeDtypeStruct((1, 1024), jnp.float32))
    assert len(logits) == 8 and [len(f) for f in fmaps] == [6] * 5 + [8] * 3


@pytest.mark.slow
def test_gradients_flow_from_a_discriminator_loss_into_every_generator_parameter():
    gen = hifigan.Generator(8, tiny("v3"), rngs=nnx.Rngs(0))
    disc = hifigan.Discriminator(hifigan.MultiPeriodDiscriminator(channels=MPD_TINY, rngs=nnx.Rngs(1)),
                                 hifigan.MultiScaleDiscriminator(channels=MSD_TINY, rngs=nnx.Rngs(2)))
    mel = jax.random.normal(jax.random.key(3), (2, 4, 8))

    def generator_loss(gen, disc):
        logits, fmaps = disc(gen(mel))
        return sum(jnp.mean(jnp.square(1 - lg)) for lg in logits)

    grads = nnx.jit(nnx.grad(generator_loss))(gen, disc)
    for path, g in nnx.to_flat_state(grads):
        g = np.asarray(g[...])
        assert np.all(np.isfinite(g)), path
        assert np.any(g != 0), path


def test_audio_settings_follow_the_upsampling_product():
    assert hifigan.audio_settings("v1") == dict(
        sample_rate=22050, hop_size=256, segment_size=8192, segment_frames=32, n_fft=1024, win_size=1024,
        fmin=0, fmax=8000, fmax_for_loss=None)
    small = dict(tiny("v3"), upsample_rates=(4, 4, 4), upsample_kernel_sizes=(8, 8, 8))
    s = hifigan.audio_settings(small, sample_rate=8000)
    assert (s["hop_size"], s["segment_size"], s["n_fft"], s["win_size"], s["fmax"]) == (64, 2048, 256, 256, 4000)


@pytest.mark.parametrize(("kwargs", "name"), [
    (dict(hop_size=200), "hop_size"),
    (dict(segment_size=8000), "segment_size"),
    (dict(win_size=2048), "win_size"),
    (dict(sample_rate=8000, fmax=8000), "fmax"),
])
def test_audio_settings_name_the_parameter_that_disagrees(kwargs, name):
    with pytest.raises(ValueError, match=name):
        hifigan.audio_settings("v1", **kwargs)


def test_a_variant_that_would_not_make_exactly_hop_samples_is_refused():
    with pytest.raises(ValueError, match="upsample_kernel_sizes"):
        hifigan.resolve_variant(dict(tiny("v1"), upsample_kernel_sizes=(15, 16, 4, 4)))
    with pytest.raises(ValueError, match="v4"):
        hifigan.Generator(80, "v4", rngs=nnx.Rngs(0))


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["v1", "v2", "v3"])
def test_generator_matches_the_pytorch_port(torch_dump, variant):
    t = json.loads(bytes(torch_dump["tiny"]).decode())
    g = hifigan.Generator(t["n_mels"], t["hifigan"][variant], rngs=nnx.Rngs(0))
    load_torch_state(g, torch_state(torch_dump, f"hifigan_{variant}/generator"), hifigan.torch_name)
    wav_bt = g(jnp.asarray(torch_dump["mel"]).transpose(0, 2, 1))
    np.testing.assert_allclose(wav_bt, torch_dump[f"hifigan_{variant}/generator/output"][:, 0], atol=1e-5)


def assert_same_outputs(dump, prefix, logits, fmaps):
    for i, (lg, fm) in enumerate(zip(logits, fmaps, strict=True)):
        np.testing.assert_allclose(lg, dump[f"{prefix}/logits/{i}"], atol=1e-5)
        for j, f in enumerate(fm):
            np.testing.assert_allclose(f, np.moveaxis(dump[f"{prefix}/fmap/{i}/{j}"], 1, -1), atol=1e-5)
        assert f"{prefix}/fmap/{i}/{len(fm)}" not in dump.files


@pytest.mark.slow
def test_discriminators_match_the_pytorch_port(torch_dump):
    t = json.loads(bytes(torch_dump["tiny"]).decode())
    wav_bt = jnp.asarray(torch_dump["wav"])[:, 0]
    mpd = hifigan.MultiPeriodDiscriminator(channels=tuple(t["mpd_channels"]), rngs=nnx.Rngs(0))
    load_torch_state(mpd, torch_state(torch_dump, "hifigan/mpd"), hifigan.torch_name)
    assert_same_outputs(torch_dump, "hifigan/mpd", *mpd(wav_bt))
    msd = hifigan.MultiScaleDiscriminator(channels=tuple(t["msd_channels"]), rngs=nnx.Rngs(0))
    load_torch_state(msd, torch_state(torch_dump, "hifigan/msd"), hifigan.torch_name)
    assert_same_outputs(torch_dump, "hifigan/msd", *msd(wav_bt))
    # one power iteration per call, from the same vectors, as torch's spectral_norm in training mode
    np.testing.assert_allclose(msd.discriminators[0].convs[0].u[...], torch_dump["hifigan/msd/u_after_call"],
                               atol=1e-6)
