"""Showing and tabulating a vocoder's comparison with the recordings and Griffin-Lim."""

import numpy as np

from audiogan.evaluation import vocoder_eval


def test_clips_are_interleaved_clip_by_clip_and_clipped_for_listening():
    audio = {c: np.full((4, 64), k, np.float32) for k, c in enumerate(vocoder_eval.CONDITIONS)}
    audio["griffin_lim"][1, 3] = 1.7
    clips, titles = vocoder_eval.interleave(audio, 2)
    assert clips.shape == (6, 64) and clips[:, 0].tolist() == [0, 1, 1, 0, 1, 1]
    assert clips.max() == 1.0
    assert titles[:4] == ["clip 0: ground truth", "clip 0: vocoder", "clip 0: Griffin-Lim", "clip 1: ground truth"]


def test_the_table_has_a_row_per_condition():
    scores = {c: {"mrstft": 0.5, "stoi": 0.9} for c in vocoder_eval.CONDITIONS}
    lines = vocoder_eval.table(scores).splitlines()
    assert len(lines) == 4 and lines[0].split() == ["mrstft", "stoi"]
    assert lines[3].startswith("Griffin-Lim") and lines[3].split()[-2:] == ["0.500", "0.900"]
