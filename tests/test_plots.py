"""Pictures: the right panels for each kind of run, and smoothing that is a real moving average."""

import numpy as np
import pytest

from audiogan import plots

GAN_COLS = {"step": [1, 2, 3], "time_s": [0.1, 0.2, 0.3], "d_loss": [1.0, 0.8, 0.7],
            "g_loss": [0.7, 0.9, 1.0], "d_real": [0.5, 0.6, 0.7], "d_fake": [0.5, 0.4, 0.3]}


def test_loss_curves_add_a_wasserstein_panel_only_for_runs_that_log_it():
    fig = plots.loss_curves({"a": GAN_COLS})
    assert [ax.get_title() for ax in fig.axes] == ["losses", "discriminator output"]
    wgan = GAN_COLS | {"wasserstein": [0.1, 0.2, 0.3], "gp": [1.0, 0.5, 0.2]}
    fig = plots.loss_curves({"a": GAN_COLS, "b": wgan}, x="time_s")
    assert fig.axes[2].get_title() == "Wasserstein estimate and penalties"
    labels = [line.get_label() for line in fig.axes[2].get_lines()]
    assert labels == ["b: wasserstein", "b: gp"]
    assert fig.axes[0].get_xlabel() == "wall time (s)"
    assert len(plots.to_png(fig)) > 1000


def test_smooth_is_a_bias_corrected_moving_average():
    np.testing.assert_allclose(plots.smooth([2.0, 2.0, 2.0], 0.9), [2.0, 2.0, 2.0])
    np.testing.assert_allclose(plots.smooth([1.0, 3.0], 0.0), [1.0, 3.0])
    assert plots.smooth([0.0, 10.0], 0.5)[1] == pytest.approx(5 / 0.75)


def test_grids_have_one_panel_per_clip():
    clips = np.sin(np.linspace(0, 400, 2048))[None].repeat(3, 0)
    fig = plots.spectrogram_grid(clips, 8000, ["a", "b", "c"], cols=2)
    visible = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in visible] == ["a", "b", "c"]
    assert len(plots.waveform_grid(clips, 8000).axes) == 3
