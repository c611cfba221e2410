"""What the vocoder tests share: the PyTorch ports' parameter counts and outputs, and shapes without weights."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import jax
from flax import nnx

ROOT = Path(__file__).resolve().parents[1]
PORT = ROOT / "benchmarks" / "torch_vocoders.py"
COUNTS = ROOT / "benchmarks" / "results" / "vocoder_params.json"


def torch_python() -> str | None:
    """A Python with torch: this one, or the benchmark venv ``make bench-torch`` makes."""
    if importlib.util.find_spec("torch") is not None:
        return sys.executable
    venv = ROOT / ".venv-torch" / "bin" / "python"
    return str(venv) if venv.exists() else None


def abstract(make):
    """The module with shapes only: no weights drawn, nothing compiled."""
    return nnx.eval_shape(make)


def output_shape(module, *args):
    graphdef, state = nnx.split(module)
    return jax.eval_shape(lambda s, *a: nnx.merge(graphdef, s)(*a), state, *args)


def torch_state(dump, prefix: str) -> dict:
    start = f"{prefix}/state/"
    return {k[len(start):]: dump[k] for k in dump.files if k.startswith(start)}
