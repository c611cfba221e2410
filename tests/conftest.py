"""Test settings: set before JAX is imported anywhere."""

import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_NUMPY_RANK_PROMOTION", "raise")
# Never read or write a developer's data/cache from tests.
os.environ.setdefault("AUDIOGAN_CACHE_DIR", tempfile.mkdtemp(prefix="audiogan-test-cache-"))

import pytest  # noqa: E402

from audiogan.config import RunConfig  # noqa: E402


@pytest.fixture
def tiny_config(tmp_path) -> RunConfig:
    """The classic GAN on short tones: fast enough for many steps in a unit test."""
    return RunConfig(
        run_dir=str(tmp_path / "run"), dataset="tones", model="mlp", steps=40, batch_size=16,
        seed=0, sample_rate=8000, clip_samples=256, n_clips=64, log_every=10, preview_every=20,
        checkpoint_every=20, n_previews=2,
    )
