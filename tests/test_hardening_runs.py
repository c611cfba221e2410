"""A run folder under stress: two writers, a killed writer, damaged checkpoints, a failed start."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from audiogan import datasets, training
from audiogan.config import ConfigError
from audiogan.runs import DAMAGED, CheckpointDamaged, RunFolder, RunFolderBusy

# orbax reading a truncated file leaves a callback on a closed event loop: noise, not a failure
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def _child(code: str, *args: str) -> subprocess.Popen:
    """A Python process running ``code`` (it prints a line when ready), environment inherited."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_ready(child: subprocess.Popen, word: str) -> None:
    line = child.stdout.readline()
    if word not in line:
        child.kill()
        raise AssertionError(f"child not ready ({line!r}): {child.stderr.read()[-3000:]}")


def _kill(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)  # no cleanup: only the kernel can release its lock
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL


HOLD_LOCK = """
    import sys, time
    from audiogan.runs import RunFolder
    with RunFolder(sys.argv[1]).writer():
        print("locked", flush=True)
        time.sleep(600)
"""


# ---------------------------------------------------------------------------- one writer at a time
def test_a_lock_held_by_another_process_refuses_a_writer_naming_it_until_that_process_is_killed(tmp_path):
    run = RunFolder(tmp_path / "run")
    child = _child(HOLD_LOCK, str(run.path))
    try:
        _wait_ready(child, "locked")
        holder = json.loads(run.lock_path.read_text())
        assert holder["pid"] == child.pid and holder["host"] == socket.gethostname()
        with pytest.raises(RunFolderBusy) as err, run.writer():
            pass
        message = str(err.value)
        assert f"pid {child.pid} on host {socket.gethostname()}, since {holder['since']}" in message
        assert "another run_dir" in message and f"kill {child.pid}" in message
        with pytest.raises(RunFolderBusy, match=f"pid {child.pid}"):
            run.check_not_busy()
    finally:
        _kill(child)
    # The killed holder left its name in .lock, but the kernel released the lock: it is taken over.
    assert json.loads(run.lock_path.read_text())["pid"] == child.pid
    with run.writer():
        assert json.loads(run.lock_path.read_text())["pid"] == os.getpid()
        with pytest.raises(RunFolderBusy, match=f"pid {os.getpid()}"), RunFolder(run.path).writer():
            pass  # a second writer in the same process is refused too
    run.check_not_busy()
    with run.writer():  # released on leaving the block
        pass


TRAIN_AND_HANG = """
    import json, sys, time
    from audiogan import datasets, training
    from audiogan.config import RunConfig

    def hang(row):
        if row["step"] == 20:  # logged; step 10 is checkpointed, step 20 not yet
            print("training", flush=True)
            time.sleep(600)

    training.train(RunConfig.from_dict(json.loads(sys.argv[1])), progress=False, on_log=hang)
"""


def test_a_second_training_process_is_refused_and_a_killed_one_is_resumed(tiny_config):
    """Before the lock, the second writer crashed inside orbax and metrics.csv ended with steps
    interleaved and repeated."""
    config = tiny_config.replace(checkpoint_every=10)
    child = _child(TRAIN_AND_HANG, json.dumps(config.to_dict()))
    try:
        _wait_ready(child, "training")
        before = RunFolder(config.run_dir).metrics_path.read_bytes()
        with pytest.raises(RunFolderBusy) as err:
            training.train(config, progress=False)
        assert f"(pid {child.pid} on host {socket.gethostname()}, since " in str(err.value)
        assert RunFolder(config.run_dir).metrics_path.read_bytes() == before  # nothing written
        assert not training.is_finished(config)  # readers need no lock
    finally:
        _kill(child)
    result = training.train(config, progress=False)
    assert result.resumed_from in (None, 10)  # the last checkpoint that reached the disk
    assert result.history["step"] == [10.0, 20.0, 30.0, 40.0]
    run = RunFolder(config.run_dir)
    lines = run.metrics_path.read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == ["step", "10", "20", "30", "40"]


def test_training_holds_the_lock_for_its_whole_call_and_readers_need_none(tiny_config):
    seen = []

    def during(row):
        with pytest.raises(RunFolderBusy, match=f"pid {os.getpid()}"), RunFolder(tiny_config.run_dir).writer():
            pass
        seen.append((row["step"], training.is_finished(tiny_config),
                     RunFolder(tiny_config.run_dir).read_metrics()["step"][-1]))

    training.train(tiny_config, progress=False, on_log=during)
    assert seen == [(10, False, 10.0), (20, False, 20.0), (30, False, 30.0), (40, False, 40.0)]
    with RunFolder(tiny_config.run_dir).writer():  # released when train() returns
        pass
    assert training.is_finished(tiny_config)


# ---------------------------------------------------------------------------- damaged checkpoints
def _truncate_the_array_files(step_dir: Path) -> None:
    """Cut every data file of the checkpoint's OCDBT stores to half (a disk filled up mid-save)."""
    data = [p for p in step_dir.rglob("*") if p.is_file() and p.parent.name == "d"]
    assert data
    for path in data:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garble_metadata(step_dir: Path) -> None:
    path = step_dir / "default" / "_METADATA"
    json.loads(path.read_text())  # it is JSON before
    path.write_text('{"tree_metadata": {"garbled')


DAMAGE = {"truncated_arrays": _truncate_the_array_files, "garbled_metadata": _garble_metadata}


def _state(step: int) -> dict:
    return {"w": np.arange(300, dtype=np.float32) + step, "step": np.array(step, np.int32)}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_latest_checkpoint_is_skipped_for_the_newest_intact_one(tmp_path, damage):
    run = RunFolder(tmp_path / "run")
    for step in (10, 20, 30):
        run.save_checkpoint(step, _state(step))
    run.close()
    DAMAGE[damage](run.checkpoint_dir / "30")
    again = RunFolder(run.path)
    with pytest.warns(UserWarning, match=r"skipped the checkpoint of step 30 .*trying step 20"):
        state, step, skipped = again.restore_latest(_state(0))
    assert (step, skipped) == (20, [30])
    np.testing.assert_array_equal(state["w"], _state(20)["w"])
    with pytest.warns(UserWarning, match="step 30"):
        assert int(again.restore_checkpoint(_state(0))["step"]) == 20  # what restore() reads
    DAMAGE[damage](run.checkpoint_dir / "20")
    DAMAGE[damage](run.checkpoint_dir / "10")
    with pytest.warns(UserWarning), pytest.raises(CheckpointDamaged, match=r"no checkpoint in .* restores"):
        again.restore_latest(_state(0))
    again.close()


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_training_resumes_from_the_checkpoint_before_a_damaged_latest_one(tiny_config, damage):
    first = training.train(tiny_config, progress=False)  # checkpoints at 20 and 40
    run = RunFolder(tiny_config.run_dir)
    DAMAGE[damage](run.checkpoint_dir / "40")
    with pytest.warns(UserWarning, match="step 40"):
        _, state = training.restore(tiny_config.run_dir)  # a reader falls back too
    assert int(state.step) == 20
    with pytest.warns(UserWarning, match=r"skipped the checkpoint of step 40") as caught:
        result = training.train(tiny_config, progress=False)
    assert any("moved the damaged checkpoint(s) of step 40" in str(w.message) for w in caught)
    assert result.resumed_from == 20 and not result.loaded and int(result.state.step) == 40
    # The rows after step 20 were dropped and trained again, exactly as before (the batch is seeded).
    for col in ("step", "d_loss", "g_loss"):
        assert result.history[col] == first.history[col], col
    assert (Path(tiny_config.run_dir) / DAMAGED / "40").is_dir()
    assert sorted(RunFolder(tiny_config.run_dir).checkpoints.all_steps()) == [20, 40]
    assert training.train(tiny_config, progress=False).loaded  # the new step 40 restores


# ---------------------------------------------------------------------------- a failed start
def test_a_failed_start_writes_nothing_so_corrected_settings_train(tiny_config):
    """Before, config.json was written before the batch size was checked against the dataset, and the
    corrected settings were refused as another run."""
    with pytest.raises(ConfigError, match="batch_size=128 is larger than the dataset"):
        training.train(tiny_config.replace(batch_size=128), progress=False)
    assert not Path(tiny_config.run_dir).exists()
    wrong_length = datasets.load_dataset(tiny_config.replace(clip_samples=512))
    with pytest.raises(ConfigError, match="clip_samples"):
        training.train(tiny_config, wrong_length, progress=False)
    assert not Path(tiny_config.run_dir).exists()
    result = training.train(tiny_config, progress=False, stop_after=10)
    assert int(result.state.step) == 10 and (Path(tiny_config.run_dir) / "config.json").is_file()
