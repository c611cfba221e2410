"""The run folder: metrics that survive a crash, checkpoints that reload bit-exact."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from audiogan.runs import METRIC_COLUMNS, RunFolder


def _row(step: int) -> dict[str, float]:
    return {"step": step, "time_s": 0.5 * step, "d_loss": 0.1 + step, "g_loss": 1 / 3 + step,
            "d_real": 0.75, "d_fake": float(np.float32(0.1))}


def test_metrics_round_trip(tmp_path):
    run = RunFolder(tmp_path / "run")
    assert run.read_metrics() == {c: [] for c in METRIC_COLUMNS}
    run.append_metrics([_row(1), _row(2)])
    run.append_metrics([_row(3)])
    run.append_metrics([])
    cols = run.read_metrics()
    assert list(cols) == list(METRIC_COLUMNS)
    assert cols["step"] == [1.0, 2.0, 3.0]
    for c in METRIC_COLUMNS:  # floats come back exactly (repr round-trips)
        assert cols[c] == [float(_row(s)[c]) for s in (1, 2, 3)]
    lines = run.metrics_path.read_text().splitlines()
    assert lines[0] == ",".join(METRIC_COLUMNS)  # one header only
    assert len(lines) == 4


def test_metrics_keep_nan_and_inf(tmp_path):
    run = RunFolder(tmp_path)
    run.append_metrics([{"step": 1, "d_loss": float("nan"), "g_loss": float("inf")}])
    cols = run.read_metrics()
    assert cols["step"] == [1.0]
    assert np.isnan(cols["d_loss"][0]) and cols["g_loss"] == [float("inf")]


def test_torn_last_line_is_skipped_and_next_append_reads(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.append_metrics([_row(1), _row(2)])
    with open(run.metrics_path, "a") as f:
        f.write("3,1.5,0.6")  # a crash mid-row: no newline, fields missing
    assert run.read_metrics()["step"] == [1.0, 2.0]
    run.append_metrics([_row(4)])
    cols = run.read_metrics()
    assert cols["step"] == [1.0, 2.0, 4.0]
    assert cols["g_loss"][-1] == _row(4)["g_loss"]
    with open(run.metrics_path, "a") as f:
        f.write("5,x")
    run.append_metrics([_row(6), _row(7)])
    assert run.read_metrics()["step"] == [1.0, 2.0, 4.0, 6.0, 7.0]


def test_torn_last_line_cut_inside_a_number_is_skipped(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.append_metrics([_row(1), _row(2)])
    with open(run.metrics_path, "a") as f:
        f.write("3,1.5,3.1,3.3,0.75,0.4"[:-1])  # torn inside the last field: '...,0.'
    assert run.read_metrics()["step"] == [1.0, 2.0]
    run.append_metrics([_row(4)])
    assert run.read_metrics()["step"] == [1.0, 2.0, 4.0]


def test_truncate_metrics_drops_later_rows(tmp_path):
    run = RunFolder(tmp_path)
    run.truncate_metrics(5)  # no file yet: nothing to do
    assert not run.metrics_path.exists()
    run.append_metrics([_row(s) for s in (10, 20, 30, 40)])
    run.truncate_metrics(25)
    cols = run.read_metrics()
    assert cols["step"] == [10.0, 20.0]
    assert cols["d_loss"] == [_row(10)["d_loss"], _row(20)["d_loss"]]
    run.append_metrics([_row(30)])  # the resumed run logs again from there
    assert run.read_metrics()["step"] == [10.0, 20.0, 30.0]


def test_json_round_trip(tmp_path):
    run = RunFolder(tmp_path / "run")
    run.write_json("eval/pitch.json", {"a": [1, 2.5, None], "p": tmp_path})
    assert run.read_json("eval/pitch.json") == {"a": [1, 2.5, None], "p": str(tmp_path)}


def _state():
    rng = np.random.default_rng(0)
    return {
        "params": {"w": rng.normal(size=(3, 5)).astype(np.float32),
                   "b": rng.normal(size=(5,)).astype(np.float32)},
        "opt": {"count": np.array(7, np.int32), "mu": rng.normal(size=(4,)).astype(np.float16)},
        "step": np.array(123, np.int32),
        "key": np.array([1, 2**32 - 1], np.uint32),
        "jax": jnp.asarray(rng.normal(size=(2, 2)).astype(np.float32)),
    }


def _assert_bit_exact(restored, original):
    flat_r = _leaves(restored)
    flat_o = _leaves(original)
    assert sorted(flat_r) == sorted(flat_o)
    for name, leaf in flat_o.items():
        got = np.asarray(flat_r[name])
        assert got.dtype == np.asarray(leaf).dtype, name
        assert np.array_equal(got, np.asarray(leaf)), name


def _leaves(tree, prefix=""):
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(_leaves(v, f"{prefix}/{k}"))
        return out
    return {prefix: tree}


def test_checkpoint_round_trip_is_bit_exact(tmp_path):
    run = RunFolder(tmp_path / "run")
    assert run.latest_step() is None
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        run.restore_checkpoint(_state())
    state = _state()
    run.save_checkpoint(10, state)
    later = dict(state, step=np.array(20, np.int32))
    run.save_checkpoint(20, later)
    run.wait()
    assert run.latest_step() == 20
    _assert_bit_exact(run.restore_checkpoint(_state()), later)
    _assert_bit_exact(run.restore_checkpoint(_state(), step=10), state)
    run.close()

    # A new process (a resumed run) finds the same checkpoints.
    again = RunFolder(tmp_path / "run")
    assert again.latest_step() == 20
    _assert_bit_exact(again.restore_checkpoint(_state()), later)
    again.close()
