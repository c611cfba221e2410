"""What the notebooks call: parameter validation and the displays a person looks at or hears.

Each function is one cell's worth of work, so notebooks stay thin and everything here is tested.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from audiogan.config import RunConfig
from audiogan.datasets import check_source
from audiogan.errors import ConfigError
from audiogan.plots import readable


def config_from(namespace: Mapping[str, Any], **overrides) -> RunConfig:
    """The notebook's parameters as a validated, frozen config; a bad value stops here with a
    message naming it (ConfigError), before anything slow happens."""
    config = RunConfig.from_namespace(namespace, **overrides)
    check_source(config.dataset)
    return config


def run_dirs_from(run_dir: str, run_dirs: str = "") -> list[str]:
    """``run_dirs`` is a comma-separated list (papermill parameters are flat scalars)."""
    dirs = [d.strip() for d in run_dirs.split(",") if d.strip()] or [run_dir]
    from pathlib import Path

    missing = [d for d in dirs if not (Path(d) / "config.json").is_file()]
    if missing:
        raise ConfigError(
            f"run_dirs: {', '.join(missing)} is not a run folder (no config.json); train into it "
            "with 02_train first."
        )
    return dirs


def show_config(config: RunConfig) -> None:
    from IPython.display import HTML, display

    # Settings that do not apply to this model family are None; they are left out.
    rows = "".join(
        f"<tr><td><code>{k}</code></td><td>{html.escape(readable(repr(v)))}</td></tr>"
        for k, v in config.to_dict().items() if v is not None
    )
    display(HTML(f"<table>{rows}</table>"))


def audio_players(
    clips: np.ndarray, sample_rate: int, titles: Sequence[str] | None = None, cols: int = 4,
) -> None:
    """A grid of labelled audio players (one per clip)."""
    from IPython.display import HTML, Audio, display

    cells = []
    for i, clip in enumerate(np.atleast_2d(clips)):
        title = html.escape(readable(titles[i]) if titles else f"clip {i}")
        player = Audio(np.asarray(clip, dtype=np.float32), rate=sample_rate, normalize=False)
        cells.append(f"<div style='margin:4px'><div><b>{title}</b></div>{player._repr_html_()}</div>")
    style = f"display:grid;grid-template-columns:repeat({cols}, 1fr)"
    display(HTML(f"<div style='{style}'>{''.join(cells)}</div>"))
