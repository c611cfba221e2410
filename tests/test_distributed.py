"""Training across processes: two processes on localhost (gloo CPU collectives) against one."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from audiogan import training
from audiogan.cli.distributed import parse_settings
from audiogan.config import ConfigError
from audiogan.runs import RunFolder
from audiogan.training import distributed

SETTINGS = {
    "dataset": "tones", "model": "mlp", "steps": 6, "batch_size": 16, "seed": 0, "sample_rate": 8000,
    "clip_samples": 256, "n_clips": 64, "log_every": 2, "preview_every": 100, "checkpoint_every": 6,
    "n_previews": 2,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_reach_the_losses_of_one_with_the_same_global_batch(tmp_path, tiny_config):
    one = training.train(tiny_config.replace(run_dir=str(tmp_path / "one"), **SETTINGS), progress=False)
    two = tmp_path / "two"
    port = free_port()
    words = [f"{k}={v}" for k, v in SETTINGS.items()] + [f"run_dir={two}"]
    env = os.environ | {"JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "audiogan.cli.distributed", "--coordinator", f"localhost:{port}",
             "--num-processes", "2", "--process-id", str(i), "--cpu-collectives", "gloo", "--no-progress",
             *words],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for i in range(2)
    ]
    try:
        outs = [p.communicate(timeout=240)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outs)
    assert "2 processes, 2 devices" in outs[0]

    got = RunFolder(two).read_metrics()
    # Process 0 alone wrote the metrics: one row per logged step, not one per process.
    assert got["step"] == one.history["step"] == [2, 4, 6]
    for k in ("d_loss", "g_loss", "d_real", "d_fake"):
        np.testing.assert_allclose(got[k], one.history[k], rtol=1e-5, err_msg=k)
    # Both processes took part in the checkpoints (orbax coordinates them); the run resumes alone.
    assert RunFolder(two).latest_step() == 6
    assert (two / "samples" / "step_000006").is_dir()


def test_local_rows_of_one_process_are_the_whole_batch(tiny_config):
    gan, _ = training.create(tiny_config)
    rows = distributed.local_rows(gan.data_sharding, (1, 16, 256), axis=1)
    np.testing.assert_array_equal(rows, np.arange(16))


def test_local_rows_follow_the_devices_of_this_process():
    """A process whose devices hold rows 8:12 and 24:28 of a 32-row batch feeds those, in order."""

    class TwoOfEightDevices:
        def addressable_devices_indices_map(self, shape):
            return {"dev3": (slice(None), slice(24, 28)), "dev1": (slice(None), slice(8, 12))}

    rows = distributed.local_rows(TwoOfEightDevices(), (1, 32, 256), axis=1)
    np.testing.assert_array_equal(rows, [8, 9, 10, 11, 24, 25, 26, 27])


def test_bad_process_settings_are_named(monkeypatch):
    with pytest.raises(ConfigError, match="needs num_processes and process_id"):
        distributed.initialize("localhost:1234")
    with pytest.raises(ConfigError, match=r"process_id=2 must lie in \[0, 2\)"):
        distributed.initialize("localhost:1234", 2, 2)
    monkeypatch.setenv("AUDIOGAN_NUM_PROCESSES", "two")
    with pytest.raises(ConfigError, match="AUDIOGAN_NUM_PROCESSES='two'"):
        distributed.initialize("localhost:1234", process_id=0)
    with pytest.raises(ConfigError, match="key=value"):
        parse_settings(["steps"])
    assert parse_settings(["steps=5", "lr=1e-4", "loss=null"]) == {
        "steps": 5, "lr": 1e-4, "loss": None}
