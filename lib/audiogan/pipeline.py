"""Running the notebooks headless with papermill, one after another, into a run folder.

Notebook names and parameters are checked before anything runs: a name is one of the notebooks in
``notebooks/`` (no path parts), and each parameter is one that papermill's inspection finds in the
notebook's ``parameters`` cell, with a plain scalar value. papermill itself only warns about an
unknown parameter and writes it into the notebook as ``KEY = VALUE``.
"""

from __future__ import annotations

import keyword
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audiogan.errors import ConfigError

NOTEBOOKS = ("01_data", "02_train", "03_loss_curves", "04_listening_test")
SCALARS = (str, int, float, bool, type(None))


def notebooks_dir() -> Path:
    """``$AUDIOGAN_NOTEBOOKS``, else ``notebooks/`` of this checkout."""
    if os.environ.get("AUDIOGAN_NOTEBOOKS"):
        return Path(os.environ["AUDIOGAN_NOTEBOOKS"])
    return Path(__file__).resolve().parents[2] / "notebooks"


def available_notebooks() -> list[str]:
    """The names of the notebooks in :func:`notebooks_dir` (``02_train``, ...), sorted."""
    return sorted(p.stem for p in notebooks_dir().glob("*.ipynb") if p.is_file() and not p.name.startswith("."))


def notebook_path(name: Any) -> Path:
    """``notebooks/NAME.ipynb`` for the name of one of the notebooks there; anything else (a path,
    ``../x``, a name that is not there) is a ConfigError listing the notebooks."""
    known = available_notebooks()
    if not isinstance(name, str) or name not in known:
        raise ConfigError(f"notebook {name!r} does not exist in {notebooks_dir()}; give the name of one of "
                          f"its notebooks without a folder or .ipynb: {', '.join(known)}.")
    return notebooks_dir() / f"{name}.ipynb"


_inspected: dict[tuple[str, int, int], tuple[str, ...]] = {}


def notebook_parameters(name: str) -> tuple[str, ...]:
    """The parameters of a notebook, in order, as papermill's inspection reads its ``parameters``
    cell (the names papermill can replace)."""
    import nbformat
    from papermill.translators import papermill_translators
    from papermill.utils import nb_kernel_name, nb_language

    path = notebook_path(name)
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _inspected:
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        names: tuple[str, ...] = ()
        if cells:
            translator = papermill_translators.find_translator(nb_kernel_name(nb, None), nb_language(nb, None))
            names = tuple(p.name for p in translator.inspect(cells[0]))
        _inspected[key] = names
    return _inspected[key]


def check_parameter_name(key: Any, where: str = "") -> str:
    """A parameter's name must be a Python identifier (papermill writes ``KEY = VALUE`` into the
    notebook, so anything else would be code that runs)."""
    if not isinstance(key, str) or not key.isidentifier() or keyword.iskeyword(key):
        raise ConfigError(f"{where}{key!r} is not a parameter name: parameters are Python names such as "
                          "steps or run_dir.")
    return key


def check_value(key: str, value: Any, where: str = "") -> Any:
    if not isinstance(value, SCALARS):
        raise ConfigError(f"{where}{key}: notebook parameters are flat values (numbers, text, true/false, "
                          f"null), got {type(value).__name__} {value!r}.")
    return value


def check_parameters(name: str, parameters: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """``parameters`` checked against the notebook ``name``: each key one of its parameters (a
    ConfigError names the key and lists the notebook's parameters), each value a plain scalar."""
    known = notebook_parameters(name)
    for key, value in parameters.items():
        check_parameter_name(key, where)
        if key not in known:
            raise ConfigError(f"{where}{key} is not a parameter of {name}; its parameters are "
                              f"{', '.join(known) or '(none)'}.")
        check_value(key, value, where)
    return dict(parameters)


def run_notebook(
    name: str, run_dir: str | os.PathLike, parameters: Mapping[str, Any] | None = None,
    *, progress: bool = False, kernel_name: str | None = None,
) -> Path:
    """Execute ``notebooks/NAME.ipynb`` with ``parameters`` (``run_dir`` added where the notebook
    has it) and store the executed copy as ``RUN_DIR/NAME.ipynb``; never writes into ``notebooks/``.
    An unknown notebook or parameter, or a value that is not a plain scalar, is a ConfigError
    before anything is written."""
    import papermill as pm

    source = notebook_path(name)
    run_dir = Path(run_dir)
    params = ({"run_dir": str(run_dir)} if "run_dir" in notebook_parameters(name) else {}) | dict(parameters or {})
    check_parameters(name, params)
    run_dir.mkdir(parents=True, exist_ok=True)
    output = run_dir / f"{name}.ipynb"
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
    wall time of each in seconds. Every notebook's parameters are checked before the first runs."""
    for name in notebooks:
        check_parameters(name, parameters.get(name, {}))
    times = {}
    for name in notebooks:
        log(f"[audiogan] running {name} ...")
        t0 = time.perf_counter()
        run_notebook(name, run_dir, parameters.get(name, {}))
        times[name] = time.perf_counter() - t0
        log(f"[audiogan] {name} done in {times[name]:.0f} s -> {Path(run_dir) / name}.ipynb")
    return times
