"""WaveGAN: shapes for every clip length, parameter counts, phase shuffle, TF padding, and gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

from audiogan.models import count_params, wavegan
from jaxprs import eqns

LATENT, BATCH = 8, 2


def test_sample_latent_is_uniform_in_minus_one_one():
    z_bd = wavegan.sample_latent(jax.random.key(0), 4096, 100)
    assert z_bd.shape == (4096, 100) and z_bd.dtype == jnp.float32
    assert float(z_bd.min()) >= -1.0 and float(z_bd.max()) <= 1.0
    assert float(z_bd.min()) < -0.99 and float(z_bd.max()) > 0.99
    assert abs(float(z_bd.mean())) < 0.01


@pytest.mark.parametrize("clip_samples", wavegan.CLIP_SAMPLES)
@pytest.mark.parametrize("upsample", wavegan.UPSAMPLES)
def test_generator_and_discriminator_shapes(clip_samples, upsample):
    z_bd = wavegan.sample_latent(jax.random.key(0), BATCH, LATENT)
    g = wavegan.Generator(LATENT, 2, clip_samples, upsample=upsample, rngs=nnx.Rngs(0))
    wav_bt = g(z_bd)
    assert wav_bt.shape == (BATCH, clip_samples) and wav_bt.dtype == jnp.float32
    loud_bt = np.asarray(g(z_bd * 1e4))  # saturates the tanh: inside [-1, 1] and reaching its edges
    assert np.all(np.abs(loud_bt) <= 1.0) and np.abs(loud_bt).max() > 0.99

    gp = wavegan.Generator(LATENT, 2, clip_samples, upsample=upsample, post_filter=16, rngs=nnx.Rngs(0))
    filtered_bt = np.asarray(gp(z_bd * 1e4))
    assert filtered_bt.shape == (BATCH, clip_samples)
    # The filter follows the tanh (as in the official code): bounded by the filter's L1 norm, not by 1.
    bound = float(jnp.abs(gp.post_filter.kernel[...]).sum())
    assert np.all(np.isfinite(filtered_bt)) and np.abs(filtered_bt).max() <= bound + 1e-5
    assert not np.allclose(filtered_bt, loud_bt)

    d = wavegan.Discriminator(2, clip_samples, rngs=nnx.Rngs(1))
    assert d(wav_bt).shape == (BATCH,)
    assert d(wav_bt, key=jax.random.key(2)).shape == (BATCH,)


def test_parameter_counts_at_paper_size():
    g = nnx.eval_shape(lambda: wavegan.Generator(100, 64, 16384, rngs=nnx.Rngs(0)))
    d = nnx.eval_shape(lambda: wavegan.Discriminator(64, 16384, rngs=nnx.Rngs(0)))
    assert count_params(g) == 19_065_345
    assert count_params(d) == 17_427_969
    g_nn = nnx.eval_shape(lambda: wavegan.Generator(100, 64, 16384, upsample="nn", rngs=nnx.Rngs(0)))
    assert count_params(g_nn) == 19_065_345  # same kernels, only the upsampling differs
    g_pp = nnx.eval_shape(lambda: wavegan.Generator(100, 64, 16384, post_filter=512, rngs=nnx.Rngs(0)))
    assert count_params(g_pp) == 19_065_345 + 512


@pytest.mark.parametrize("bad", [16000, 2048, 12288])
def test_unknown_clip_samples_is_refused(bad):
    with pytest.raises(ValueError, match=f"clip_samples.*{bad}"):
        wavegan.Generator(LATENT, 2, bad, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=f"clip_samples.*{bad}"):
        wavegan.Discriminator(2, bad, rngs=nnx.Rngs(0))


@pytest.mark.parametrize(
    ("clip_samples", "dense", "channels", "strides"),
    [
        (4096, 8, [4, 2, 1, 1], [4, 4, 4, 4]),  # one layer fewer than the paper's 16384
        (8192, 16, [8, 4, 2, 1, 1], [4, 4, 4, 4, 2]),
        (16384, 16, [8, 4, 2, 1, 1], [4] * 5),  # the paper's plans, as the paper gives them
        (32768, 32, [16, 8, 4, 2, 1, 1], [4] * 5 + [2]),
        (65536, 32, [16, 8, 4, 2, 1, 1], [4] * 6),
    ],
)
def test_layer_plans_for_every_clip_length(clip_samples, dense, channels, strides):
    """Widths in units of d (the last generator layer has one channel whatever d is)."""
    d = 8
    g_dense, g_channels, g_strides = wavegan._generator_plan(d, clip_samples)
    assert g_dense == dense * d and g_strides == strides
    assert g_channels == [c * d for c in channels[:-1]] + [1]
    d_channels, d_strides = wavegan._discriminator_plan(d, clip_samples)
    assert d_strides == strides and d_channels == [d * 2**i for i in range(len(strides))]
    assert d_channels[-1] == dense * d  # the discriminator mirrors the generator
    assert 16 * np.prod(strides) == clip_samples


# ---- phase shuffle ---------------------------------------------------------------------------------

RAMP_B, RAMP_T, RADIUS = 8, 16, 2


def _ramp_btc() -> np.ndarray:
    """x[b, t, c] = t * (c + 1) + 100 b: distinct values, so a shift and a repeated edge are both visible."""
    t = np.arange(RAMP_T, dtype=np.float32)
    return np.stack([np.stack([t + 100 * b, 2 * t + 100 * b], axis=-1) for b in range(RAMP_B)])


def _reflect_shift(x_tc: np.ndarray, k: int) -> np.ndarray:
    """out[t] = x[reflect(t - k)] written out by hand: index -m -> m, index T - 1 + m -> T - 1 - m."""
    idx = np.arange(RAMP_T) - k
    idx = np.where(idx < 0, -idx, idx)
    idx = np.where(idx >= RAMP_T, 2 * (RAMP_T - 1) - idx, idx)
    return x_tc[idx]


def _shifts(x_btc: np.ndarray, out_btc: np.ndarray) -> list[int]:
    found = []
    for x_tc, out_tc in zip(x_btc, out_btc, strict=True):
        matches = [k for k in range(-RADIUS, RADIUS + 1) if np.array_equal(out_tc, _reflect_shift(x_tc, k))]
        assert len(matches) == 1, "output is not the input shifted by |k| <= radius with reflected edges"
        found.append(matches[0])
    return found


shuffle = jax.jit(wavegan.phase_shuffle, static_argnames=("radius", "per_example"))


def test_phase_shuffle_reflects_without_repeating_the_edge():
    x_btc = _ramp_btc()
    np.testing.assert_array_equal(_reflect_shift(x_btc[0], 2)[:3, 0], [2, 1, 0])
    np.testing.assert_array_equal(_reflect_shift(x_btc[0], -2)[-3:, 0], [15, 14, 13])
    seen = set()
    for seed in range(12):
        out_btc = np.asarray(shuffle(x_btc, jax.random.key(seed), radius=RADIUS, per_example=False))
        ks = _shifts(x_btc, out_btc)
        assert len(set(ks)) == 1, "per_example=False must shift the whole batch by one k"
        seen |= set(ks)
    assert seen == set(range(-RADIUS, RADIUS + 1))  # every shift occurs, none beyond the radius


def test_phase_shuffle_per_example_draws_several_shifts():
    x_btc = _ramp_btc()
    distinct = []
    for seed in range(4):
        out_btc = np.asarray(shuffle(x_btc, jax.random.key(seed), radius=RADIUS, per_example=True))
        distinct.append(len(set(_shifts(x_btc, out_btc))))
    assert max(distinct) > 1


def _slice_form(x_btc, key, radius):
    """Phase shuffle written plainly, as a reflect pad and a dynamic slice (JAX derives it by itself)."""
    k = jax.random.randint(key, (), -radius, radius + 1)
    padded_btc = jnp.pad(x_btc, ((0, 0), (radius, radius), (0, 0)), mode="reflect")
    return lax.dynamic_slice_in_dim(padded_btc, radius - k, x_btc.shape[1], axis=1)


def _penalty(shuffle_fn, key):
    """A gradient-penalty-like function of w: the input gradient's norm, through tanh and the shuffle."""
    def score(x_btc, w_c):
        weights_1t1 = jnp.arange(1.0, RAMP_T + 1)[None, :, None]
        return jnp.sum(jnp.tanh(shuffle_fn(x_btc * w_c[None, None], key, RADIUS)) ** 2 * weights_1t1)

    def penalty(w_c, x_btc):
        return jnp.sum(jax.grad(score)(x_btc, w_c) ** 2)

    return penalty


@pytest.mark.slow
def test_phase_shuffle_derivatives_are_the_slice_forms_to_the_second_order():
    x_btc = jax.random.normal(jax.random.key(0), (BATCH, RAMP_T, 3))
    w_c = jnp.asarray([0.5, -1.0, 2.0])
    shifts = set()
    for seed in range(12):
        key = jax.random.key(seed)
        shifts.add(int(jax.random.randint(key, (), -RADIUS, RADIUS + 1)))
        np.testing.assert_array_equal(wavegan.phase_shuffle(x_btc, key, RADIUS), _slice_form(x_btc, key, RADIUS))
        ours, plain = _penalty(wavegan.phase_shuffle, key), _penalty(_slice_form, key)
        np.testing.assert_allclose(ours(w_c, x_btc), plain(w_c, x_btc), rtol=1e-6)
        np.testing.assert_allclose(jax.grad(ours)(w_c, x_btc), jax.grad(plain)(w_c, x_btc), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(jax.grad(ours, argnums=1)(w_c, x_btc), jax.grad(plain, argnums=1)(w_c, x_btc),
                                   rtol=1e-5, atol=1e-6)
    assert shifts == set(range(-RADIUS, RADIUS + 1))


def test_phase_shuffle_derivatives_write_into_no_buffer_of_zeros():
    """JAX's own derivative of a dynamic slice writes the cotangent into zeros (dynamic_update_slice);
    XLA:CPU kept one such buffer per layer alive at the step's peak (100 MiB at WaveGAN d=64, batch 16)."""
    x_btc = jax.random.normal(jax.random.key(0), (BATCH, RAMP_T, 3))
    w_c = jnp.ones(3)

    def writes(shuffle_fn) -> int:
        jaxpr = jax.make_jaxpr(jax.grad(_penalty(shuffle_fn, jax.random.key(1))))(w_c, x_btc).jaxpr
        return sum(e.primitive.name == "dynamic_update_slice" for e in eqns(jaxpr))

    assert writes(_slice_form) > 0  # the check can see them: the plain form has some
    assert writes(wavegan.phase_shuffle) == 0


def test_phase_shuffle_identity_without_key_or_radius():
    x_btc = jnp.asarray(_ramp_btc())
    assert wavegan.phase_shuffle(x_btc, None, RADIUS) is x_btc
    assert wavegan.phase_shuffle(x_btc, jax.random.key(0), 0) is x_btc
    d = wavegan.Discriminator(2, 16384, rngs=nnx.Rngs(0))
    wav_bt = jax.random.uniform(jax.random.key(1), (BATCH, 16384), minval=-1, maxval=1)
    np.testing.assert_array_equal(d(wav_bt), d(wav_bt))  # no key: deterministic
    d0 = wavegan.Discriminator(2, 16384, phase_shuffle=0, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(d0(wav_bt, key=jax.random.key(3)), d(wav_bt))


# ---- TensorFlow 'SAME' padding ---------------------------------------------------------------------


def _numpy_conv(x_bti: np.ndarray, w_kio: np.ndarray, stride: int, pad: tuple[int, int]) -> np.ndarray:
    xp = np.pad(x_bti, ((0, 0), pad, (0, 0)))
    k = w_kio.shape[0]
    n_out = (xp.shape[1] - k) // stride + 1
    return np.stack([np.einsum("bki,kio->bo", xp[:, t * stride : t * stride + k], w_kio) for t in range(n_out)], 1)


def test_strided_conv_pads_like_tensorflow():
    rng = np.random.default_rng(0)
    x_bti = rng.normal(size=(2, 32, 3)).astype(np.float32)
    w_kio = rng.normal(size=(25, 3, 5)).astype(np.float32)
    assert wavegan.same_padding(32, 25, 4) == (10, 11)
    assert wavegan.same_padding(16384, 25, 4) == (10, 11)
    out = np.asarray(wavegan.conv1d(jnp.asarray(x_bti), jnp.asarray(w_kio), 4))
    assert out.shape == (2, 8, 5)
    np.testing.assert_allclose(out, _numpy_conv(x_bti, w_kio, 4, (10, 11)), rtol=1e-5, atol=1e-4)
    assert not np.allclose(out, _numpy_conv(x_bti, w_kio, 4, (11, 11))[:, :8], atol=1e-2)  # not PyTorch's 11|11
    # Stride 1 (the 'nn' layers, the post filter): 12|12 for kernel 25, 255|256 for the even 512.
    assert wavegan.same_padding(64, 25, 1) == (12, 12) and wavegan.same_padding(64, 512, 1) == (255, 256)
    out1 = np.asarray(wavegan.conv1d(jnp.asarray(x_bti), jnp.asarray(w_kio), 1))
    np.testing.assert_allclose(out1, _numpy_conv(x_bti, w_kio, 1, (12, 12)), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("stride", [4, 2])
def test_transposed_conv_is_tensorflows(stride):
    """TF's conv2d_transpose: each input sample scatters the kernel at t * stride - pad_left; and it is
    exactly the adjoint of the 'SAME' strided convolution."""
    rng = np.random.default_rng(1)
    length, k = 8, 25
    x_bti = rng.normal(size=(2, length, 3)).astype(np.float32)
    w_koi = rng.normal(size=(k, 5, 3)).astype(np.float32)
    out = np.asarray(wavegan.conv1d_transpose(jnp.asarray(x_bti), jnp.asarray(w_koi), stride))
    assert out.shape == (2, stride * length, 5)

    full = np.zeros((2, (length - 1) * stride + k, 5), np.float32)
    for t in range(length):
        full[:, t * stride : t * stride + k] += np.einsum("bi,koi->bko", x_bti[:, t], w_koi)
    lo, _ = wavegan.same_padding(stride * length, k, stride)
    np.testing.assert_allclose(out, full[:, lo : lo + stride * length], rtol=1e-5, atol=1e-4)

    y_bto = jnp.zeros((2, stride * length, 5))
    _, vjp = jax.vjp(lambda y: wavegan.conv1d(y, jnp.asarray(w_koi), stride), y_bto)
    np.testing.assert_allclose(out, vjp(jnp.asarray(x_bti))[0], rtol=1e-5, atol=1e-4)


# ---- gradients -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_gradients_reach_every_generator_parameter_through_the_discriminator():
    g = wavegan.Generator(LATENT, 4, 16384, rngs=nnx.Rngs(0))
    d = wavegan.Discriminator(4, 16384, rngs=nnx.Rngs(1))
    g_def, g_params = nnx.split(g, nnx.Param)
    z_bd = wavegan.sample_latent(jax.random.key(0), BATCH, LATENT)

    def loss(params):
        return -d(nnx.merge(g_def, params)(z_bd), key=jax.random.key(5)).mean()

    grads = jax.jit(jax.grad(loss))(g_params)
    leaves = jax.tree.leaves_with_path(grads)
    norms = {jax.tree_util.keystr(path): float(jnp.linalg.norm(leaf)) for path, leaf in leaves}
    assert len(norms) == 2 + 2 * 5  # dense and five transposed convolutions, kernel and bias each
    assert all(np.isfinite(n) and n > 0 for n in norms.values()), norms


@pytest.mark.slow
@pytest.mark.parametrize("per_example", [False, True])
def test_second_derivative_through_phase_shuffle_is_finite(per_example):
    d = wavegan.Discriminator(2, 16384, per_example=per_example, rngs=nnx.Rngs(0))
    d_def, d_params = nnx.split(d, nnx.Param)
    wav_bt = jax.random.uniform(jax.random.key(1), (BATCH, 16384), minval=-1, maxval=1)
    key = jax.random.key(7)

    def slope_norm(params):
        d_of_x = lambda x_bt: nnx.merge(d_def, params)(x_bt, key=key).sum()  # noqa: E731
        g_bt = jax.grad(d_of_x)(wav_bt)
        return jnp.sqrt(jnp.sum(g_bt**2) + 1e-12)

    grads = jax.jit(jax.grad(slope_norm))(d_params)
    leaves = jax.tree.leaves(grads)
    assert len(leaves) == 2 * 5 + 2
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves)
    assert sum(float(jnp.abs(leaf).sum()) for leaf in leaves) > 0
