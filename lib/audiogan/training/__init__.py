"""Training: the GAN objectives (:mod:`.losses`), the state (:mod:`.state`), the jit-compiled step
(:mod:`.step`, with :mod:`.optimiser`'s in-place update and :mod:`.precision`), the loop that writes a
run folder (:mod:`.loop`) and training across hosts (:mod:`.distributed`).

The names a notebook uses are here: ``training.train(config)``, ``training.restore(run_dir)``,
``training.generate(gan, state, n)``.
"""

from audiogan.training.loop import (
    Scorer,
    TrainResult,
    generate,
    is_finished,
    preview,
    restore,
    summary,
    train,
    write_previews,
)
from audiogan.training.state import (
    CLASSES,
    GAN,
    SPECTROGRAM_MOMENTS,
    TrainingDiverged,
    TrainState,
    clip_titles,
    create,
    create_for_run,
    preview_latents,
    preview_titles,
    stored_classes,
)
from audiogan.training.step import compiled, compiler_options, make_generate, make_step, step_flops

__all__ = [
    "CLASSES", "GAN", "SPECTROGRAM_MOMENTS", "Scorer", "TrainResult", "TrainState", "TrainingDiverged",
    "clip_titles", "compiled", "compiler_options", "create", "create_for_run", "generate", "is_finished",
    "make_generate", "make_step", "preview", "preview_latents", "preview_titles", "restore", "step_flops",
    "stored_classes", "summary", "train", "write_previews",
]
