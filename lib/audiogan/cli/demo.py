"""``make demo``: notebooks 01 -> 04 headless on the embedded tones, sized for 2 CPU cores.

    python -m audiogan.cli.demo --run-dir runs/demo [--steps N] [--dataset tones|digits|drums] [--recipe classic]

The default stays ``tones``, the fastest to train at this size; ``--dataset digits`` runs the same
recipe on the spoken digits at 8 kHz x 8,192 samples (``benchmarks/README.md`` has the step times).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from audiogan import xla
from audiogan.pipeline import run_pipeline

# Half-second clips at 8 kHz, sized for two cores; what each recipe adds is in RECIPES.
DEMO = {
    "dataset": "tones", "sample_rate": 8000, "clip_samples": 4096, "n_clips": 2048, "seed": 0,
    "log_every": 50, "preview_every": 500, "checkpoint_every": 500, "steps": 2500,
}
# The default first. "conditional": the classic fully connected GAN told which note to make (a projection
# discriminator), with an R1 penalty that keeps the discriminator from winning outright; 11-13 notes,
# 12-15 of 16 in tune after 2,500 steps, run to run (benchmarks/README.md). "classic": the plain
# classic GAN (4.4 M generator weights), which collapses onto one note on the tones: where the
# workshop teaches mode collapse.
RECIPES = {
    "conditional": {"model": "mlp", "loss": "ns", "batch_size": 128, "conditional": True, "r1_weight": 10.0},
    "classic": {"model": "mlp", "loss": "ns", "batch_size": 128},
}


# What changes for the other embedded datasets (same recipe and schedule).
DATASETS = {
    "tones": {},
    "digits": {"dataset": "digits", "sample_rate": 8000, "clip_samples": 8192, "n_clips": 5000},
    "drums": {"dataset": "drums", "sample_rate": 8000, "clip_samples": 4096, "n_clips": 2048},
}


def demo_parameters(steps: int | None = None, dataset: str = "tones", recipe: str = "conditional") -> dict[str, dict]:
    """Each notebook's parameters; ``steps`` None: the demo's 2,500."""
    demo = DEMO | RECIPES[recipe] | DATASETS[dataset]
    if steps is not None:
        demo["steps"] = steps
    data = {k: demo[k] for k in ("dataset", "sample_rate", "clip_samples", "n_clips", "seed")}
    return {
        "01_data": data,
        "02_train": demo,
        "03_loss_curves": {},
        "04_listening_test": {"n_samples": 16, "seed": 1},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="runs/demo")
    parser.add_argument("--steps", type=int, default=DEMO["steps"])
    parser.add_argument("--dataset", default="tones", choices=sorted(DATASETS))
    parser.add_argument("--recipe", default="conditional", choices=list(RECIPES),
                        help="classic: the plain classic GAN, which collapses onto one note")
    args = parser.parse_args(argv)
    xla.set_process_flags()  # inherited by the notebooks' kernels
    run_dir = Path(args.run_dir)
    t0 = time.perf_counter()
    times = run_pipeline(run_dir, demo_parameters(args.steps, args.dataset, args.recipe))
    total = time.perf_counter() - t0
    n_generated = demo_parameters(0)["04_listening_test"]["n_samples"]
    print(f"""
[audiogan] demo finished in {total / 60:.1f} min ({', '.join(f'{k} {v:.0f} s' for k, v in times.items())}).
Look in {run_dir}/:
  01_data.ipynb ... 04_listening_test.ipynb   the executed notebooks, with every plot and player
  metrics.csv, loss_curves.png                losses and D(real)/D(fake) as training went
  samples/step_XXXXXX/                        fixed-latent previews (WAV + spectrograms) during training
  generated/                                  {n_generated} clips from the final generator, pitch.json
  checkpoints/                                orbax checkpoints; running the demo again resumes
Listen: open the executed notebooks in JupyterLab (make lab) and press play, or play a WAV,
e.g. `aplay {run_dir}/generated/sample_00.wav` (any audio player works).
""")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
