"""Test settings: set before JAX is imported anywhere."""

import os
import subprocess
import tempfile
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_NUMPY_RANK_PROMOTION", "raise")
# Never read or write a developer's data/cache from tests.
os.environ.setdefault("AUDIOGAN_CACHE_DIR", tempfile.mkdtemp(prefix="audiogan-test-cache-"))
# One XLA compilation cache for the session, shared with the notebooks' kernels and subprocesses through
# the environment: the tests build the same programs again and again (a resumed run, a restored
# generator), and compiling dominates their time. It starts empty, so the suite's time is a cold start.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="audiogan-test-xla-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import vocoder_ports  # noqa: E402
from audiogan.config import RunConfig  # noqa: E402


@pytest.fixture
def tiny_config(tmp_path) -> RunConfig:
    """The classic GAN on short tones: fast enough for many steps in a unit test."""
    return RunConfig(
        run_dir=str(tmp_path / "run"), dataset="tones", model="mlp", steps=40, batch_size=16,
        seed=0, sample_rate=8000, clip_samples=256, n_clips=64, log_every=10, preview_every=20,
        checkpoint_every=20, n_previews=2,
    )


FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"


@pytest.fixture(scope="session")
def fsdd() -> Path:
    """``../shared/data/fsdd``, the Free Spoken Digit Dataset: skipped when absent, except in CI (CI=true),
    where it is present and its absence is a failure."""
    if (FSDD / "recordings").is_dir():
        return FSDD
    why = f"the Free Spoken Digit Dataset is not at {FSDD} (clone it there to run this test; see its README)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI must have the FSDD: {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def torch_dump(tmp_path_factory):
    """The PyTorch vocoder ports' weights, inputs and outputs (``benchmarks/torch_vocoders.py --dump``)."""
    python = vocoder_ports.torch_python()
    if python is None:
        pytest.skip("no torch: `make bench-torch` makes .venv-torch")
    path = tmp_path_factory.mktemp("torch") / "vocoders.npz"
    subprocess.run([python, str(vocoder_ports.PORT), "--dump", str(path)], check=True, timeout=600)
    return np.load(path)
