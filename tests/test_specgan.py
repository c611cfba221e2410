"""SpecGAN: network shapes, parameter counts, gradient flow, and the spectrogram codec."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from audiogan.audio.mel import MelSettings, mel_spectrogram
from audiogan.models import count_params, specgan

LATENT, BATCH, SR = 8, 3, 16000
N = specgan.CLIP_SAMPLES


def expected_param_counts(latent_dim: int, d: int) -> tuple[int, int]:
    """Hand count: Dense z -> 4*4*16d, then 5x5 convolutions (k*k*c_in*c_out weights + c_out biases)."""
    taps = specgan.KERNEL**2
    g_widths = [16 * d, 8 * d, 4 * d, 2 * d, d, 1]
    d_widths = [1, d, 2 * d, 4 * d, 8 * d, 16 * d]
    project = latent_dim * 4 * 4 * 16 * d + 4 * 4 * 16 * d
    g = project + sum(taps * a * b + b for a, b in zip(g_widths[:-1], g_widths[1:], strict=True))
    disc = sum(taps * a * b + b for a, b in zip(d_widths[:-1], d_widths[1:], strict=True)) + 4 * 4 * 16 * d + 1
    return g, disc


@pytest.fixture(scope="module")
def nets():
    return specgan.Generator(LATENT, 2, rngs=nnx.Rngs(0)), specgan.Discriminator(2, rngs=nnx.Rngs(1))


# ---------------------------------------------------------------------------- networks
def test_sample_latent_is_uniform_in_the_unit_box():
    z_bd = specgan.sample_latent(jax.random.key(0), 1000, 4)
    assert z_bd.shape == (1000, 4) and z_bd.dtype == jnp.float32
    assert float(z_bd.min()) >= -1.0 and float(z_bd.max()) <= 1.0
    assert float(z_bd.min()) < -0.99 and float(z_bd.max()) > 0.99
    assert abs(float(z_bd.mean())) < 0.05


def test_generator_shape_and_tanh_range(nets):
    g, _ = nets
    z_bd = specgan.sample_latent(jax.random.key(1), BATCH, LATENT)
    spec_bft = g(z_bd)
    assert spec_bft.shape == (BATCH, 128, 128) and spec_bft.dtype == jnp.float32
    loud = np.asarray(g(z_bd * 1e4))  # saturates the tanh: still within [-1, 1], reaching its edges
    assert np.all(np.abs(loud) <= 1.0) and np.abs(loud).max() > 0.99


def test_discriminator_logits_and_unused_key(nets):
    g, d = nets
    spec_bft = g(specgan.sample_latent(jax.random.key(2), BATCH, LATENT))
    logits_b = d(spec_bft)
    assert logits_b.shape == (BATCH,) and logits_b.dtype == jnp.float32
    np.testing.assert_array_equal(logits_b, d(spec_bft, key=jax.random.key(5)))  # no phase shuffle


@pytest.mark.parametrize("d", [3, 64])
def test_parameter_counts_match_the_hand_count(d):
    g = nnx.eval_shape(lambda: specgan.Generator(specgan.LATENT_DIM, d, rngs=nnx.Rngs(0)))
    disc = nnx.eval_shape(lambda: specgan.Discriminator(d, rngs=nnx.Rngs(0)))
    g_count, d_count = expected_param_counts(specgan.LATENT_DIM, d)
    print(f"SpecGAN d={d}: generator {g_count:,} parameters, discriminator {d_count:,}")
    assert count_params(g) == g_count
    assert count_params(disc) == d_count
    if d == 64:  # the paper's size, counted by hand once more
        assert (g_count, d_count) == (19_065_345, 17_427_969)


@pytest.mark.slow
def test_gradients_reach_every_generator_parameter():
    g, d = specgan.Generator(LATENT, 4, rngs=nnx.Rngs(3)), specgan.Discriminator(4, rngs=nnx.Rngs(4))
    z_bd = specgan.sample_latent(jax.random.key(3), 4, LATENT)
    g_def, g_params, g_rest = nnx.split(g, nnx.Param, ...)

    def loss(params):
        return -jnp.mean(d(nnx.merge(g_def, params, g_rest)(z_bd)))

    grads = jax.grad(loss)(g_params)
    leaves = jax.tree_util.tree_leaves_with_path(grads)
    assert len(leaves) == 2 + 2 * 5  # Dense and five transposed convolutions, kernel and bias each
    for path, leaf in leaves:
        assert np.all(np.isfinite(leaf)), path
        assert np.any(leaf != 0), f"no gradient reaches {jax.tree_util.keystr(path)}"


def test_convolutions_follow_tensorflow_same_padding():
    x = jax.random.normal(jax.random.key(6), (2, 8, 8, 3))
    w = jax.random.normal(jax.random.key(7), (5, 5, 3, 4))
    # Strided 'SAME' on 8 -> 4 pads 1 before and 2 after, as TF does.
    ref = jax.lax.conv_general_dilated(x, w, (2, 2), ((1, 2), (1, 2)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(specgan.conv2d(x, w), ref, atol=1e-5)
    # The transposed convolution is TF's conv2d_transpose (the gradient of that 'SAME' convolution)
    # with a spatially flipped kernel.
    y = jax.random.normal(jax.random.key(8), (2, 4, 4, 4))
    _, vjp = jax.vjp(lambda u: specgan.conv2d(u, w), jnp.zeros((2, 8, 8, 3)))
    w_t = jnp.swapaxes(w[::-1, ::-1], 2, 3)
    up = specgan.conv_transpose2d(y, w_t)
    assert up.shape == (2, 8, 8, 3)
    np.testing.assert_allclose(up, vjp(y)[0], atol=1e-5)


# ---------------------------------------------------------------------------- codec
def harmonic_tones(f0_hz, seed: int, noise: float = 0.01) -> np.ndarray:
    """Steady tones of four harmonics (amplitudes 1/k) over a faint noise floor, peak 0.8."""
    rng = np.random.default_rng(seed)
    t = np.arange(N) / SR
    k = np.arange(1, 5)[:, None]
    clips = []
    for f0 in f0_hz:
        wave = (np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi, (4, 1))) / k).sum(0)
        wave = 0.8 * wave / np.abs(wave).max() + noise * rng.standard_normal(N)
        clips.append(wave)
    return np.asarray(clips, dtype=np.float32)


@pytest.fixture(scope="module")
def train_clips():
    return harmonic_tones(np.random.default_rng(0).uniform(150, 1200, 48), seed=1)


@pytest.fixture(scope="module")
def codec(train_clips):
    return specgan.SpectrogramCodec.fit(train_clips, SR)


def test_frames_follow_tensorflow_pad_end(train_clips):
    clip = train_clips[0].astype(np.float64)
    padded = np.concatenate([clip, np.zeros(128)])  # pad_end: 128 frames, the last from sample 16,256
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(256) / 256)  # periodic, as tf.signal.hann_window
    frames = np.stack([padded[i * 128:i * 128 + 256] * hann for i in range(128)])
    ref_ft = np.log(np.abs(np.fft.rfft(frames, axis=1)) + 1e-6).T
    lmag = specgan.log_magnitude(train_clips[:1])
    assert lmag.shape == (1, 129, 128) and lmag.dtype == np.float32
    np.testing.assert_allclose(lmag[0], ref_ft, atol=2e-3)


def test_encode_shape_dtype_and_range(codec, train_clips):
    spec_bft = codec.encode(train_clips[:5])
    assert spec_bft.shape == (5, 128, 128) and spec_bft.dtype == np.float32
    assert spec_bft.min() >= -1.0 and spec_bft.max() <= 1.0
    assert spec_bft.std() > 0.1


def test_training_set_is_standardised_per_bin(codec, train_clips):
    raw_bft = codec.encode(train_clips, clip=False)  # (log|X| - mean) / std / 3, before clipping
    assert np.abs(raw_bft).max() > 1.0  # so the clip matters
    np.testing.assert_allclose(raw_bft.mean(axis=(0, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(raw_bft.std(axis=(0, 2)), 1 / specgan.CLIP_NSTD, rtol=1e-3)
    np.testing.assert_array_equal(np.clip(raw_bft, -1, 1), codec.encode(train_clips))


def test_fit_is_deterministic(codec, train_clips):
    again = specgan.SpectrogramCodec.fit(train_clips, SR)
    np.testing.assert_array_equal(again.mean_f, codec.mean_f)
    np.testing.assert_array_equal(again.std_f, codec.std_f)
    assert codec.mean_f.shape == codec.std_f.shape == (129,) and codec.sample_rate == SR
    with pytest.raises(ValueError):  # read-only
        codec.mean_f[0] = 0.0


def test_save_load_is_bit_exact(codec, train_clips, tmp_path):
    path = codec.save(tmp_path / "moments.npz")
    assert path == tmp_path / "moments.npz" and sorted(p.name for p in tmp_path.iterdir()) == ["moments.npz"]
    loaded = specgan.SpectrogramCodec.load(path)
    assert loaded.mean_f.dtype == codec.mean_f.dtype and loaded.sample_rate == codec.sample_rate
    np.testing.assert_array_equal(loaded.mean_f, codec.mean_f)
    np.testing.assert_array_equal(loaded.std_f, codec.std_f)
    np.testing.assert_array_equal(loaded.encode(train_clips[:2]), codec.encode(train_clips[:2]))


def test_round_trip_keeps_features_and_pitch(codec):
    f0_hz = np.array([220.0, 330.0, 523.25, 880.0])
    clips = harmonic_tones(f0_hz, seed=2)
    spec_bft = codec.encode(clips)
    wav_bt = codec.decode(spec_bft)
    assert wav_bt.shape == (4, N) and wav_bt.dtype == np.float32
    assert np.abs(wav_bt).max() <= 1.0
    np.testing.assert_array_equal(wav_bt, codec.decode(spec_bft))  # deterministic
    # Only one frame covers the first samples: they fade in rather than blow up (Hann**-2 would).
    assert np.abs(wav_bt[:, :20]).max() < 0.1
    again = codec.encode(wav_bt)
    diff = np.abs(again - spec_bft)
    assert diff.mean() < 0.12, diff.mean()
    assert diff[spec_bft > 0.3].mean() < 0.06  # the tones themselves come back closer still
    # Dominant frequency at the features' resolution (256-point frames: 62.5 Hz bins). Griffin-Lim
    # only sees magnitudes at this resolution, so finer detail of the pitch is not promised.
    bin_hz = SR / specgan.N_FFT

    def dominant_hz(wav_bt):
        return bin_hz * np.argmax(np.exp(specgan.log_magnitude(wav_bt)).mean(axis=2), axis=1)

    np.testing.assert_array_equal(dominant_hz(clips), bin_hz * np.round(f0_hz / bin_hz))
    np.testing.assert_array_equal(dominant_hz(wav_bt), dominant_hz(clips))


def test_decode_generator_output(codec, nets):
    g, _ = nets
    spec_bft = np.asarray(g(specgan.sample_latent(jax.random.key(9), 2, LATENT)))
    wav_bt = codec.decode(spec_bft, n_iter=2)
    assert wav_bt.shape == (2, N) and wav_bt.dtype == np.float32 and np.all(np.isfinite(wav_bt))
    with pytest.raises(ValueError):
        codec.decode(spec_bft[:, :64])


@pytest.mark.parametrize("shape", [(2, 16000), (2, 16385), (N,)])
def test_wrong_clip_length_names_clip_samples(codec, shape):
    clips = np.zeros(shape, dtype=np.float32)
    with pytest.raises(ValueError, match="clip_samples"):
        codec.encode(clips)
    with pytest.raises(ValueError, match="clip_samples"):
        specgan.SpectrogramCodec.fit(clips, SR)


@pytest.mark.slow
def test_encoding_is_fast(codec):
    clips = np.random.default_rng(3).uniform(-0.5, 0.5, (2048, N)).astype(np.float32)
    start = time.perf_counter()
    spec_bft = codec.encode(clips)
    elapsed = time.perf_counter() - start
    assert spec_bft.shape == (2048, 128, 128)
    assert elapsed < 10.0, f"encoding 2,048 clips took {elapsed:.1f} s"


# ---------------------------------------------------------------------------- mel SpecGAN
MEL = MelSettings(sample_rate=8000, n_fft=128, hop=32, win=128, n_mels=16, fmin=0.0, fmax=4000.0)
MEL_SAMPLES = 1024  # 32 frames of hop 32


@pytest.mark.parametrize(("shape", "reduced"), [((80, 64), (3, 2)), ((16, 32), (1, 1)), ((128, 128), (4, 4))])
def test_networks_take_any_spectrogram_shape(shape, reduced):
    """The generator crops its (32 ceil(H / 32), 32 ceil(W / 32)) output; the discriminator halves, rounding up."""
    def run():
        g = specgan.Generator(LATENT, 2, shape=shape, rngs=nnx.Rngs(0))
        d = specgan.Discriminator(2, shape=shape, rngs=nnx.Rngs(1))
        spec_bft = g(specgan.sample_latent(jax.random.key(0), 2, LATENT))
        return spec_bft, d(spec_bft), d.features(spec_bft)

    spec_bft, logits_b, feats_bd = jax.eval_shape(run)
    assert spec_bft.shape == (2, *shape) and logits_b.shape == (2,)
    assert feats_bd.shape == (2, reduced[0] * reduced[1] * 16 * 2)


def tone_clips(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(MEL_SAMPLES) / MEL.sample_rate
    f0 = rng.uniform(200, 1500, (n, 1))
    return (0.5 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal((n, MEL_SAMPLES))).astype(np.float32)


@pytest.fixture(scope="module")
def mel_codec():
    return specgan.MelCodec.fit(tone_clips(24, 0), MEL)


def test_mel_codec_makes_the_vocoders_log_mel_standardised_per_band(mel_codec):
    clips = tone_clips(24, 0)
    log_mel = mel_codec.log_mel(clips)
    np.testing.assert_array_equal(log_mel, np.asarray(mel_spectrogram(clips, MEL)))
    raw = mel_codec.encode(clips, clip=False)
    assert raw.shape == (24, 16, 32) and raw.dtype == np.float32
    np.testing.assert_allclose(raw.mean(axis=(0, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(raw.std(axis=(0, 2)), 1 / specgan.CLIP_NSTD, rtol=1e-3)
    # Features back to the log-mel, exactly where nothing was clipped.
    np.testing.assert_allclose(mel_codec.to_log_mel(raw), log_mel, atol=1e-4)


def test_mel_codec_decodes_by_griffin_lim_or_through_a_vocoder(mel_codec):
    spec_bft = mel_codec.encode(tone_clips(3, 1))
    wav_bt = mel_codec.decode(spec_bft, n_iter=8)
    assert wav_bt.shape == (3, MEL_SAMPLES) and wav_bt.dtype == np.float32 and np.abs(wav_bt).max() <= 1
    # Griffin-Lim keeps the tone: its log-mel comes back close in the loud bands.
    again = mel_codec.encode(wav_bt)
    assert np.abs(again - spec_bft)[spec_bft > 0.3].mean() < 0.15
    seen = []

    def vocoder(mel_bft):
        seen.append(mel_bft)
        return np.full((len(mel_bft), mel_bft.shape[2] * MEL.hop), 2.0, np.float32)

    through = mel_codec.with_vocoder(vocoder)
    out = through.decode(spec_bft)
    np.testing.assert_allclose(seen[0], mel_codec.to_log_mel(spec_bft))  # the vocoder gets log-mels
    assert out.shape == wav_bt.shape and np.all(out == 1.0)  # clipped to [-1, 1]
    np.testing.assert_array_equal(through.griffin_lim(spec_bft, 8), wav_bt)
    assert mel_codec.vocoder is None


def test_mel_codec_saves_its_settings_and_loads_as_a_mel_codec(mel_codec, tmp_path):
    loaded = specgan.SpectrogramCodec.load(mel_codec.save(tmp_path / "moments.npz"))
    assert isinstance(loaded, specgan.MelCodec) and loaded.mel == MEL
    np.testing.assert_array_equal(loaded.mean_f, mel_codec.mean_f)
    np.testing.assert_array_equal(loaded.encode(tone_clips(2, 3)), mel_codec.encode(tone_clips(2, 3)))


def test_mel_codec_wants_whole_hops(mel_codec):
    with pytest.raises(ValueError, match="multiple of hop=32"):
        mel_codec.encode(np.zeros((2, 1000), np.float32))
    with pytest.raises(ValueError, match=r"\(N, 16, frames\)"):
        mel_codec.decode(np.zeros((2, 8, 32), np.float32))
