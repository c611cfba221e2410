"""MelGAN: shapes, parameter counts and layer-for-layer agreement with the PyTorch port of the official code."""

import json
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from audiogan.models import melgan
from audiogan.models.vocoder_blocks import avg_pool1d, load_torch_state
from vocoder_ports import COUNTS, PORT, abstract, output_shape, torch_python, torch_state


def test_recipe_holds_the_official_training_settings():
    r, v = melgan.RECIPE, melgan.VARIANTS["base"]
    assert (r["loss"], r["feature_matching_weight"], r["optimizer"], r["learning_rate"], r["betas"]) == (
        "hinge", 10.0, "adam", 1e-4, (0.5, 0.9))
    assert (r["hop_size"], r["num_mels"], r["segment_size"]) == (256, 80, 8192)
    assert (v["ngf"], v["ratios"], v["n_residual_layers"]) == (32, (8, 8, 2, 2), 3)
    assert (v["num_D"], v["ndf"], v["n_layers"], v["downsampling_factor"]) == (3, 16, 4, 4)


@pytest.mark.parametrize("frames", [1, 3, 32])
def test_generator_output_is_frames_times_hop(frames):
    g = abstract(lambda: melgan.Generator(80, rngs=nnx.Rngs(0)))
    wav = output_shape(g, jax.ShapeDtypeStruct((2, frames, 80), jnp.float32))
    assert g.hop == 256 and wav.shape == (2, frames * 256)


def test_odd_ratios_still_make_exactly_hop_samples_per_frame():
    g = abstract(lambda: melgan.Generator(8, ngf=4, n_residual_layers=1, ratios=(5, 3), rngs=nnx.Rngs(0)))
    assert output_shape(g, jax.ShapeDtypeStruct((1, 7, 8), jnp.float32)).shape == (1, 7 * 15)


def test_residual_blocks_dilate_by_powers_of_three():
    g = abstract(lambda: melgan.Generator(80, rngs=nnx.Rngs(0)))
    assert [b.dilation for b in g.resblocks[0]] == [1, 3, 9]


def test_parameter_counts_equal_the_pytorch_port():
    stored = json.loads(COUNTS.read_text())["melgan/base"]
    g, d = abstract(lambda: melgan.build(80, rngs=nnx.Rngs(0)))
    assert dict(generator=melgan.count_params(g), msd=melgan.count_params(d)) == stored
    assert stored["generator"] == 4_266_050


@pytest.mark.slow
def test_parameter_counts_equal_the_pytorch_port_recomputed():
    python = torch_python()
    if python is None:
        pytest.skip("no torch: `make bench-torch` makes .venv-torch")
    out = subprocess.run([python, str(PORT), "--counts-only"], check=True, capture_output=True, text=True,
                         timeout=600).stdout
    g, d = abstract(lambda: melgan.build(80, rngs=nnx.Rngs(0)))
    assert json.loads(out)["melgan/base"] == dict(generator=melgan.count_params(g), msd=melgan.count_params(d))


def test_weight_norm_starts_with_the_weight_equal_to_v():
    g = melgan.Generator(8, ngf=2, n_residual_layers=1, ratios=(2,), rngs=nnx.Rngs(0))
    for layer in (g.conv_pre, g.ups[0], g.resblocks[0][0].conv1, g.conv_post):
        np.testing.assert_allclose(layer.kernel(), layer.weight_v[...], rtol=1e-6)


@pytest.mark.parametrize("ratios", [(8, 2), (5, 3)])
def test_generator_without_weight_norm_equals_the_training_forward_pass(ratios):
    g = melgan.Generator(8, ngf=4, n_residual_layers=2, ratios=ratios, rngs=nnx.Rngs(0))
    for layer in (g.conv_pre, g.ups[0], g.ups[1], g.conv_post):  # gains away from ||v||
        layer.weight_g[...] = 0.5 * layer.weight_g[...]
    mel_btm = jax.random.normal(jax.random.key(1), (1, 5, 8))
    graph, params = nnx.split(g)
    wav_bt = jax.jit(lambda params, mel: nnx.merge(graph, params)(mel))(params, mel_btm)
    g.remove_weight_norm()
    assert not any(path[-1] in ("weight_g", "weight_v") for path, _ in nnx.to_flat_state(nnx.state(g)))
    assert wav_bt.shape == (1, 5 * g.hop)
    np.testing.assert_allclose(nnx.jit(lambda g, mel: g(mel))(g, mel_btm), wav_bt, rtol=1e-5, atol=1e-6)


def test_discriminator_returns_three_scales_of_six_feature_maps():
    d = abstract(lambda: melgan.Discriminator(rngs=nnx.Rngs(0)))
    logits, fmaps = output_shape(d, jax.ShapeDtypeStruct((2, 8192), jnp.float32))
    assert len(logits) == 3 and [len(f) for f in fmaps] == [6] * 3
    assert [f.shape[-1] for f in fmaps[0]] == [16, 64, 256, 1024, 1024, 1024]
    # AvgPool1d(4, 2, padding=1) halves 8192 and 4096 exactly; four stride-4 layers divide by 256.
    assert [lg.shape for lg in logits] == [(2, 32), (2, 16), (2, 8)]


def test_average_pool_leaves_the_padding_out_of_the_count():
    ones_btc = jnp.ones((1, 8, 1))
    # MelGAN's AvgPool1d(4, 2, padding=1, count_include_pad=False) keeps a constant wave constant ...
    np.testing.assert_allclose(avg_pool1d(ones_btc, 4, 2, 1, count_include_pad=False)[0, :, 0], 1.0)
    # ... where HiFi-GAN's AvgPool1d(4, 2, padding=2) counts the zeros at the edges.
    np.testing.assert_allclose(avg_pool1d(ones_btc, 4, 2, 2)[0, :, 0], [0.5, 1, 1, 1, 0.5])


@pytest.mark.slow
def test_gradients_flow_from_a_discriminator_loss_into_every_generator_parameter():
    gen = melgan.Generator(8, ngf=4, n_residual_layers=2, ratios=(4, 4), rngs=nnx.Rngs(0))
    disc = melgan.Discriminator(num_D=2, ndf=4, n_layers=2, max_channels=16, rngs=nnx.Rngs(1))
    mel = jax.random.normal(jax.random.key(2), (2, 8, 8))

    def generator_loss(gen, disc):
        logits, _ = disc(gen(mel))
        return -sum(jnp.mean(lg) for lg in logits)  # hinge loss, generator side

    grads = nnx.jit(nnx.grad(generator_loss))(gen, disc)
    for path, g in nnx.to_flat_state(grads):
        g = np.asarray(g[...])
        assert np.all(np.isfinite(g)), path
        assert np.any(g != 0), path


def test_unknown_variant_is_named_with_the_choices():
    with pytest.raises(ValueError, match="'base'"):
        melgan.build(80, "large", rngs=nnx.Rngs(0))


def test_official_state_dict_names_map_onto_our_layers():
    names = {"model.1.weight_g": "conv_pre.weight_g", "model.3.weight_v": "ups.0.weight_v",
             "model.4.block.2.bias": "resblocks.0.0.conv1.bias", "model.6.shortcut.weight_g":
             "resblocks.0.2.shortcut.weight_g", "model.9.block.4.weight_v": "resblocks.1.0.conv2.weight_v",
             "model.24.bias": "conv_post.bias", "model.disc_2.model.layer_0.1.weight_g":
             "discriminators.2.layers.0.weight_g", "model.disc_0.model.layer_6.bias": "discriminators.0.layers.6.bias"}
    assert {k: melgan.torch_name(k) for k in names} == names


@pytest.mark.slow
def test_generator_and_discriminator_match_the_pytorch_port(torch_dump):
    t = json.loads(bytes(torch_dump["tiny"]).decode())
    m = t["melgan"]
    g = melgan.Generator(t["n_mels"], m["ngf"], m["n_residual_layers"], tuple(m["ratios"]), rngs=nnx.Rngs(0))
    load_torch_state(g, torch_state(torch_dump, "melgan/generator"),
                     lambda name: melgan.torch_name(name, m["n_residual_layers"]))
    wav_bt = g(jnp.asarray(torch_dump["mel"]).transpose(0, 2, 1))
    np.testing.assert_allclose(wav_bt, torch_dump["melgan/generator/output"][:, 0], atol=1e-5)

    d = melgan.Discriminator(m["num_D"], m["ndf"], m["n_layers"], m["downsampling_factor"], m["max_channels"],
                             rngs=nnx.Rngs(0))
    load_torch_state(d, torch_state(torch_dump, "melgan/msd"), melgan.torch_name)
    logits, fmaps = d(jnp.asarray(torch_dump["wav"])[:, 0])
    for i, (lg, fm) in enumerate(zip(logits, fmaps, strict=True)):
        np.testing.assert_allclose(lg, torch_dump[f"melgan/msd/logits/{i}"], atol=1e-5)
        assert f"melgan/msd/fmap/{i}/{len(fm)}" not in torch_dump.files
        for j, f in enumerate(fm):
            np.testing.assert_allclose(f, np.moveaxis(torch_dump[f"melgan/msd/fmap/{i}/{j}"], 1, -1), atol=1e-5)
