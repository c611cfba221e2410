"""Whether ``make demo``'s tones cover the dataset: distinct notes and in-tune clips among its 16.

    python benchmarks/demo_tones.py [--steps N] [--recipe conditional|classic] [--set KEY=VALUE ...]
                                    [--judge-every N] [--run-dir runs/bench_demo]

Trains ``audiogan.cli.demo``'s ``--recipe`` (with ``--set`` changes) into a fresh run folder,
makes the 16 clips ``04_listening_test`` makes (``training.generate(..., 16, seed=1)``; a conditional
run asks for every note in turn, MIDI 48 to 63) and judges them with pYIN
(``audiogan.teaching.workshop.judge_tones``: voiced in at least half the frames and within 25 cents of a
dataset note). Appends one JSON record to ``results/demo_tones.jsonl``: the settings, the training time
(wall and this process's CPU, with the load average beside them), the distinct notes and the clips in
tune. With ``--judge-every N`` it trains in pieces of N steps and judges after each piece (one record
per piece; the times then include restarting each piece from its checkpoint).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

from workshop_preset import parse_value  # the same KEY=VALUE reading as its --set

from audiogan import training, xla
from audiogan.cli.demo import RECIPES, demo_parameters
from audiogan.config import RunConfig
from audiogan.teaching.workshop import judge_tones

RESULTS = Path(__file__).parent / "results" / "demo_tones.jsonl"


def judge(result, config: RunConfig) -> dict:
    """``judge_tones`` of the 16 clips ``04_listening_test`` makes of a trained run."""
    clips = training.generate(result.gan, result.state, 16, seed=1)
    labels = result.gan.class_labels(16)  # a conditional run's notes, asked for in turn
    asked = None if labels is None else [int(result.gan.classes[i]) for i in labels]
    return judge_tones(clips, config.sample_rate, asked=asked)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="default: the demo's")
    parser.add_argument("--recipe", default=next(iter(RECIPES)), choices=list(RECIPES))
    parser.add_argument("--judge-every", type=int, default=0, help="judge every N steps (0: at the end only)")
    parser.add_argument("--run-dir", default="runs/bench_demo")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="changes to the demo's recipe")
    args = parser.parse_args(argv)
    xla.set_process_flags()
    changes = {k: parse_value(v) for k, v in (item.split("=", 1) for item in args.set)}
    shutil.rmtree(args.run_dir, ignore_errors=True)
    params = demo_parameters(args.steps, recipe=args.recipe)["02_train"] | changes | {"run_dir": args.run_dir}
    config = RunConfig(**params)
    piece = args.judge_every or config.steps
    wall = cpu = 0.0
    while True:
        w0, c0 = time.perf_counter(), time.process_time()
        result = training.train(config, progress=False, stop_after=piece)
        wall, cpu = wall + time.perf_counter() - w0, cpu + time.process_time() - c0
        step = int(result.state.step)
        judged = judge(result, config)
        record = {
            "machine": platform.node(), "cpus": os.cpu_count(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "recipe": args.recipe,
            "changes": changes, "steps": config.steps, "step": step, "pieces": args.judge_every or None,
            "train_wall_s": round(wall, 1), "train_cpu_s": round(cpu, 1),
            "load_avg": [round(x, 2) for x in os.getloadavg()], "distinct_notes": judged["distinct_notes"],
            "in_tune": int(round(judged["fraction_recognisable"] * judged["n_clips"])),
            "as_asked": judged.get("fraction_as_asked"), "notes": judged["notes"], "cents": judged["cents"],
        }
        RESULTS.parent.mkdir(exist_ok=True)
        with RESULTS.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)
        if step >= config.steps:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
