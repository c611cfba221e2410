"""Whether ``make demo``'s tones cover the dataset: distinct notes and in-tune clips among its 16.

    python benchmarks/demo_tones.py [--steps 2500] [--set conditional=True ...] [--run-dir runs/bench_demo]

Trains ``audiogan.cli.demo``'s recipe (with ``--set`` changes) into a fresh run folder, makes the 16 clips
``04_listening_test`` makes (``training.generate(..., 16, seed=1)``) and judges them with pYIN
(``audiogan.teaching.workshop.judge_tones``: voiced in at least half the frames and within 25 cents of a
dataset note). Appends one JSON record to ``results/demo_tones.jsonl``: the settings, the training time
(wall and this process's CPU), the distinct notes and the clips in tune.
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
from audiogan.cli.demo import demo_parameters
from audiogan.config import RunConfig
from audiogan.teaching.workshop import judge_tones

RESULTS = Path(__file__).parent / "results" / "demo_tones.jsonl"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--run-dir", default="runs/bench_demo")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="changes to the demo's recipe")
    args = parser.parse_args(argv)
    xla.set_process_flags()
    changes = {k: parse_value(v) for k, v in (item.split("=", 1) for item in args.set)}
    shutil.rmtree(args.run_dir, ignore_errors=True)
    params = demo_parameters(args.steps)["02_train"] | changes | {"run_dir": args.run_dir}
    config = RunConfig(**params)
    wall, cpu = time.perf_counter(), time.process_time()
    result = training.train(config, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    clips = training.generate(result.gan, result.state, 16, seed=1)
    judged = judge_tones(clips, config.sample_rate)
    record = {
        "machine": platform.node(), "cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "changes": changes, "steps": args.steps, "train_wall_s": round(wall, 1), "train_cpu_s": round(cpu, 1),
        "load_avg": os.getloadavg()[0], "distinct_notes": judged["distinct_notes"],
        "in_tune": int(round(judged["fraction_recognisable"] * judged["n_clips"])), "notes": judged["notes"],
        "cents": judged["cents"],
    }
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
