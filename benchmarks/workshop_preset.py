"""How fast ``preset="workshop"`` makes recognisable tones on this machine.

    python benchmarks/workshop_preset.py [--seconds 300] [--clock wall|cpu] [--run-dir runs/bench_workshop]
        [--set loss=hinge ...]

Trains the workshop preset on the embedded tones for at most ``--seconds`` of training time on
``--clock`` (wall, or this process's CPU time, which a busy shared machine does not inflate;
dataset build, compilation and checkpoint restarts included), judging 16 generated clips every
``--judge-every`` steps with pYIN (``audiogan.teaching.workshop.judge_tones``: voiced in at least half the
frames and within 25 cents of a dataset note). Appends one JSON record to
``results/workshop_preset.jsonl`` with the machine, the settings and the judgement over time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

from audiogan.config import RunConfig
from audiogan.teaching.workshop import train_against_clock

RESULTS = Path(__file__).parent / "results" / "workshop_preset.jsonl"


def parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"None": None, "True": True, "False": False}.get(text, text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: count this process's CPU seconds (robust to a shared machine)")
    parser.add_argument("--judge-every", type=int, default=250)
    parser.add_argument("--run-dir", default="runs/bench_workshop")
    parser.add_argument("--set", nargs="*", default=[], help="NAME=VALUE overrides of the preset")
    parser.add_argument("--note", default="", help="e.g. 'machine busy with other work'")
    parser.add_argument("--dataset", choices=("tones", "digits"), default="tones",
                        help="digits: judged by the project's digit classifier (trained first, outside the clock)")
    parser.add_argument("--n-clips", type=int, default=16, help="generated clips judged after each piece")
    args = parser.parse_args(argv)
    overrides = {k: parse_value(v) for k, v in (s.split("=", 1) for s in args.set)}
    shutil.rmtree(args.run_dir, ignore_errors=True)
    overrides.setdefault("dataset", args.dataset)
    config = RunConfig(run_dir=args.run_dir, preset="workshop", steps=100_000, **overrides)
    judge, classifier_info = None, None
    if config.dataset == "digits":
        from audiogan.evaluation.classifier import get_classifier
        from audiogan.teaching.workshop import judge_digits

        classifier = get_classifier(config)
        judge = judge_digits(classifier)
        classifier_info = {"path": str(classifier.path), "test_accuracy": classifier.test_accuracy}
        print(json.dumps({"classifier": classifier_info}), flush=True)
    t0 = time.perf_counter()
    records = train_against_clock(config, args.seconds, judge_every=args.judge_every, clock=args.clock,
                                  n_clips=args.n_clips, judge=judge, log=lambda r: print(json.dumps(r), flush=True))
    out = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(), "load_avg_1min_at_end": os.getloadavg()[0], "note": args.note,
        "overrides": overrides, "config": {k: v for k, v in config.to_dict().items() if v is not None},
        "classifier": classifier_info, "clock": args.clock, "wall_s_total": round(time.perf_counter() - t0, 1),
        "records": records,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a") as f:
        f.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
