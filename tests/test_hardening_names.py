"""File and run names are shown literally: a ``$`` is not mathtext, and bytes that are not UTF-8 (a
Linux file name Python keeps as lone surrogates) appear as backslash escapes, in every figure and
HTML table of 01_data and in the listening analysis."""

import json
import os
import types
from pathlib import Path

import nbformat
import numpy as np
import pytest
import soundfile as sf

from audiogan import listening, notebook, plots
from audiogan.datasets import report
from audiogan.pipeline import run_notebook

UNDECODABLE = os.fsdecode(b"take\xff\xfe.wav")  # 'take\udcff\udcfe.wav'
NAMES = [r"$\frac{$", "a_$x^2$ costs $5", "price$", UNDECODABLE, "tab\there"]
SHOWN = [r"$\frac{$", "a_$x^2$ costs $5", "price$", r"take\xff\xfe.wav", r"tab\there"]
CLIPS = np.sin(np.linspace(0, 400, 1024))[None].repeat(len(NAMES), 0) * 0.5


def rendered(text_artist) -> str:
    """What matplotlib draws for a Text: its string after mathtext's preprocessing (no math)."""
    shown, is_math = text_artist._preprocess_math(text_artist.get_text())
    assert not is_math, text_artist.get_text()
    return shown


def test_readable_escapes_what_is_not_utf8_and_control_characters():
    assert plots.readable(UNDECODABLE) == r"take\xff\xfe.wav"
    assert plots.readable(b"by\xfetes") == r"by\xfetes"
    assert plots.readable("\ud800 lone") == r"\ud800 lone"
    assert plots.readable("a\x00b\nc") == "a\\x00b\nc"
    assert plots.readable("naïve $x$") == "naïve $x$"
    assert plots.plot_text("$x$") == r"\$x\$"


@pytest.mark.parametrize("grid", [plots.spectrogram_grid, plots.waveform_grid])
def test_clip_grids_show_names_literally(grid):
    fig = grid(CLIPS, 8000, NAMES, cols=3)
    plots.to_png(fig)  # draws every title; a mathtext error or an undecodable byte would raise here
    assert [rendered(ax.title) for ax in fig.axes if ax.axison] == SHOWN


def test_level_histogram_and_loss_curves_show_names_literally():
    fig = plots.level_histogram(np.linspace(-40, -3, 50), title=NAMES[0])
    plots.to_png(fig)
    assert rendered(fig.axes[0].title) == SHOWN[0]
    cols = {"step": [1, 2], "time_s": [0.1, 0.2], "d_loss": [1.0, 0.8], "g_loss": [0.7, 0.9],
            "d_real": [0.5, 0.6], "d_fake": [0.5, 0.4]}
    fig = plots.loss_curves({name: cols for name in NAMES})
    plots.to_png(fig)
    legend = [rendered(t) for t in fig.axes[0].get_legend().get_texts()]
    assert legend[::2] == [f"{s}: D loss" for s in SHOWN]


def test_01_data_html_tables_escape_names():
    dataset = types.SimpleNamespace(info={
        "files": NAMES + ["<b>bold</b>.wav"], "silent_clips": 0,
        "skipped": [{"file": name, "reason": "not a readable audio file"} for name in NAMES],
        "notes": [{"file": "<b>bold</b>.wav", "reason": "resampled"}],
    })
    page = report.skipped_html(dataset)
    page.encode("utf-8")  # what a notebook stores: lone surrogates could not be written
    assert r"take\xff\xfe.wav" in page and "$\\frac{$" in page
    assert "&lt;b&gt;bold&lt;/b&gt;.wav" in page and "<b>bold" not in page


def test_audio_players_escape_titles(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj.data))
    notebook.audio_players(CLIPS[:2], 8000, [UNDECODABLE, "<i>x</i>"])
    (page,) = shown
    page.encode("utf-8")
    assert r"take\xff\xfe.wav" in page and "&lt;i&gt;x&lt;/i&gt;" in page


def test_listening_analysis_figure_and_tables_show_source_names_literally(tmp_path):
    rng = np.random.default_rng(0)
    real, run = "real $1$", "run" + os.fsdecode(b"\xff") + r"$\frac{$"
    sources = [listening.Source(real, rng.uniform(-0.5, 0.5, (8, 64)).astype(np.float32), True),
               listening.Source(run, rng.uniform(-0.5, 0.5, (4, 64)).astype(np.float32), False)]
    folder = tmp_path / "listening"
    listening.create_test(folder, sources, 8000, n_per_source=4, tasks="real_or_fake,quality", seed=0)
    session = listening.ListeningSession(folder, "$ann$")
    while (item := session.next_item()) is not None:
        session.answer(item["choices"][-1])
    analysis = listening.analyse(listening.scored_answers(folder))
    fig = listening.plot_analysis(analysis)
    plots.to_png(fig)
    ticks = {rendered(t) for ax in fig.axes for t in ax.get_xticklabels()}
    assert {"real $1$", r"run\xff$\frac{$"} <= ticks
    page = listening.tables_html(analysis)
    page.encode("utf-8")
    assert r"run\xff$\frac{$" in page and "$ann$" in page


@pytest.mark.slow
def test_01_data_runs_headless_on_a_folder_of_hostile_file_names(tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    names = [b"take $1$.wav", b"$\\frac{$.wav", b"caf\xe9\xff.wav"]  # the last is not UTF-8
    for k, name in enumerate(names):
        sf.write(folder / "tmp.wav", 0.3 * np.sin(np.arange(6000) * (0.05 + 0.02 * k)), 16000)
        os.rename(folder / "tmp.wav", os.path.join(os.fsencode(folder), name))  # soundfile cannot name it
    (folder / "broken $x$.wav").write_text("not audio")
    run_dir = tmp_path / "run"
    run_notebook("01_data", run_dir, {"dataset": str(folder), "sample_rate": 8000, "clip_samples": 2048,
                                      "n_show": 3})
    nb = nbformat.read(run_dir / "01_data.ipynb", as_version=4)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("output_type") == "error"]
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "caf\\\\xe9\\\\xff.wav" in outputs and "broken $x$.wav" in outputs and outputs.count("<audio") == 3
    assert (Path(run_dir) / "data" / "spectrograms.png").stat().st_size > 10_000
