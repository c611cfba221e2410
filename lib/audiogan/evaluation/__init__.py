"""Objective evaluation, read from run folders: the dataset's classifier (:mod:`.classifier`), the GAN
audio metrics (:mod:`.metrics`) and a run's scores against real-data ceilings (:mod:`.evaluate`),
including :class:`TrainingScorer`, which the training loop calls every ``eval_every`` steps."""

from audiogan.evaluation.evaluate import EvalSettings, TrainingScorer, evaluate_run

__all__ = ["EvalSettings", "TrainingScorer", "evaluate_run"]
