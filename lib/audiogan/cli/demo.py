"""``make demo``: notebooks 01 -> 04 headless on the embedded tones, sized for 2 CPU cores.

    python -m audiogan.cli.demo --run-dir runs/demo [--steps N] [--dataset tones|digits|drums]

The default stays ``tones``, the fastest to train at this size; ``--dataset digits`` runs the same
recipe on the spoken digits at 8 kHz x 8,192 samples (``benchmarks/README.md`` has the step times).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from audiogan import xla
from audiogan.pipeline import run_pipeline

# Half-second clips at 8 kHz keep the classic GAN (4.4 M generator weights) at about a tenth of a
# second per step on two cores, so the demo trains long enough to make audible tones.
DEMO = {
    "dataset": "tones", "model": "mlp", "loss": "ns", "sample_rate": 8000, "clip_samples": 4096,
    "batch_size": 128, "n_clips": 2048, "seed": 0, "log_every": 50, "preview_every": 500,
    "checkpoint_every": 500,
}


# What changes for the other embedded datasets (same model, loss and schedule).
DATASETS = {
    "tones": {},
    "digits": {"dataset": "digits", "sample_rate": 8000, "clip_samples": 8192, "n_clips": 5000},
    "drums": {"dataset": "drums", "sample_rate": 8000, "clip_samples": 4096, "n_clips": 2048},
}


def demo_parameters(steps: int, dataset: str = "tones") -> dict[str, dict]:
    demo = DEMO | DATASETS[dataset]
    data = {k: demo[k] for k in ("dataset", "sample_rate", "clip_samples", "n_clips", "seed")}
    return {
        "01_data": data,
        "02_train": demo | {"steps": steps},
        "03_loss_curves": {},
        "04_listening_test": {"n_samples": 16, "seed": 1},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="runs/demo")
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--dataset", default="tones", choices=sorted(DATASETS))
    args = parser.parse_args(argv)
    xla.set_process_flags()  # inherited by the notebooks' kernels
    run_dir = Path(args.run_dir)
    t0 = time.perf_counter()
    times = run_pipeline(run_dir, demo_parameters(args.steps, args.dataset))
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
