"""The latent explorer's maths and its saved vectors (decoding is exercised by 04_listening_test)."""

import numpy as np
import pytest

from audiogan.config import ConfigError
from audiogan.listening import latent


def test_paths_start_and_end_at_the_two_vectors():
    rng = np.random.default_rng(0)
    z0, z1 = rng.normal(size=100).astype(np.float32), rng.normal(size=100).astype(np.float32)
    for kind in ("lerp", "slerp"):
        path = latent.interpolate(z0, z1, 7, kind)
        assert path.shape == (7, 100) and path.dtype == np.float32
        np.testing.assert_allclose(path[0], z0, atol=1e-5)
        np.testing.assert_allclose(path[-1], z1, atol=1e-5)
    # The straight line's midpoint is the mean and shrinks towards the origin; the arc keeps the
    # norm between the two ends' norms, and its angle to z0 grows evenly along the path.
    lin, arc = latent.lerp(z0, z1, 7), latent.slerp(z0, z1, 7)
    np.testing.assert_allclose(lin[3], (z0 + z1) / 2, atol=1e-6)
    norms = np.linalg.norm(arc, axis=1)
    lo, hi = sorted([np.linalg.norm(z0), np.linalg.norm(z1)])
    assert np.all(norms >= lo - 1e-4) and np.all(norms <= hi + 1e-4)
    assert np.linalg.norm(lin[3]) < 0.8 * norms[3]
    u = z0 / np.linalg.norm(z0)
    along = arc.astype(np.float64) @ u
    angles = np.arctan2(np.linalg.norm(arc - along[:, None] * u, axis=1), along)  # precise near 0
    np.testing.assert_allclose(np.diff(angles), angles[-1] / 6, atol=1e-4)
    # Parallel vectors: no arc to follow, the straight line is used.
    np.testing.assert_allclose(latent.slerp(z0, 2 * z0, 3)[1], 1.5 * z0, rtol=1e-5)
    with pytest.raises(ConfigError, match="interpolation='cubic'"):
        latent.interpolate(z0, z1, 5, "cubic")
    with pytest.raises(ConfigError, match="n_path=1"):
        latent.interpolate(z0, z1, 1)


def test_latents_are_saved_and_recalled_bit_exact(tiny_config, tmp_path):
    z = latent.sample(tiny_config, 3, seed=5)
    assert z.shape == (3, tiny_config.latent_dim)
    np.testing.assert_array_equal(z, latent.sample(tiny_config, 3, seed=5))
    assert not np.array_equal(z, latent.sample(tiny_config, 3, seed=6))
    path = latent.save(tmp_path, "favourites", z)
    assert path == tmp_path / "latents" / "favourites.npy"
    assert latent.load(tmp_path, "favourites").tobytes() == z.astype(np.float32).tobytes()
    assert latent.saved(tmp_path) == ["favourites"]
    with pytest.raises(FileNotFoundError, match="saved latents in this run: favourites"):
        latent.load(tmp_path, "other")
    with pytest.raises(ConfigError, match="latent name '../x'"):
        latent.save(tmp_path, "../x", z)


def test_explorer_slider_shows_each_point():
    import io

    import soundfile as sf

    rng = np.random.default_rng(1)
    clips = rng.uniform(-0.5, 0.5, (3, 512)).astype(np.float32)
    box = latent.explorer(clips, 8000)
    slider, image, player = box.children
    first = image.value
    assert first[:4] == b"\x89PNG"
    slider.value = 2
    assert image.value != first
    wav, sr = sf.read(io.BytesIO(player.value), dtype="float32")
    assert sr == 8000 and np.allclose(wav, clips[2], atol=1 / 32768)
