"""Running the notebooks headless with papermill, one after another, into a run folder."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

NOTEBOOKS = ("01_data", "02_train", "03_loss_curves", "04_listening_test")


def notebooks_dir() -> Path:
    """``$AUDIOGAN_NOTEBOOKS``, else ``notebooks/`` of this checkout."""
    if os.environ.get("AUDIOGAN_NOTEBOOKS"):
        return Path(os.environ["AUDIOGAN_NOTEBOOKS"])
    return Path(__file__).resolve().parents[2] / "notebooks"


def run_notebook(
    name: str, run_dir: str | os.PathLike, parameters: Mapping[str, Any] | None = None,
    *, progress: bool = False, kernel_name: str | None = None,
) -> Path:
    """Execute ``notebooks/NAME.ipynb`` with ``parameters`` (``run_dir`` added) and store the
    executed copy as ``RUN_DIR/NAME.ipynb``; never writes into ``notebooks/``."""
    import papermill as pm

    source = notebooks_dir() / f"{name}.ipynb"
    if not source.is_file():
        raise FileNotFoundError(f"no notebook {source}; known notebooks are {', '.join(NOTEBOOKS)}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    output = run_dir / f"{name}.ipynb"
    params = {"run_dir": str(run_dir), **(parameters or {})}
    pm.execute_notebook(
        str(source), str(output), parameters=params, progress_bar=progress,
        kernel_name=kernel_name, cwd=str(Path.cwd()),
    )
    return output


def run_pipeline(
    run_dir: str | os.PathLike, parameters: Mapping[str, Mapping[str, Any]],
    notebooks: tuple[str, ...] = NOTEBOOKS, log=print,
) -> dict[str, float]:
    """Run ``notebooks`` in order; ``parameters[name]`` holds each one's parameters. Returns the
    wall time of each in seconds."""
    times = {}
    for name in notebooks:
        log(f"[audiogan] running {name} ...")
        t0 = time.perf_counter()
        run_notebook(name, run_dir, parameters.get(name, {}))
        times[name] = time.perf_counter() - t0
        log(f"[audiogan] {name} done in {times[name]:.0f} s -> {Path(run_dir) / name}.ipynb")
    return times
