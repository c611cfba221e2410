"""``make demo``'s recipes: the classic GAN one setting away, every setting a notebook parameter.

Whether the demo's tones cover the dataset (issue 25: >= 10 notes, >= 14 of 16 in tune) is measured by
``benchmarks/demo_tones.py``, not asserted here: the recipe does not reach it reliably yet (15 of 16 in
tune on 2026-12-03, 12 of 16 on 2026-12-08; benchmarks/README.md)."""

import pytest

from audiogan import pipeline
from audiogan.cli.demo import RECIPES, demo_parameters
from audiogan.config import RunConfig


def test_the_classic_gan_is_one_setting_away_from_the_demo():
    classic = RunConfig(**demo_parameters(recipe="classic")["02_train"])
    demo = RunConfig(**demo_parameters()["02_train"])
    assert classic.model == demo.model == "mlp" and not classic.conditional and classic.r1_weight == 0
    assert set(RECIPES) >= {"conditional", "classic"}


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_every_demo_parameter_is_a_parameter_of_its_notebook(recipe):
    # make demo hands these to papermill; a setting the notebook lacks stops it before 01_data runs.
    for name, params in demo_parameters(recipe=recipe).items():
        pipeline.check_parameters(name, params)
