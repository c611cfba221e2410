"""Run a sweep file: ``python -m audiogan.cli.sweep sweeps/NAME.yaml [--jobs 2] [--out DIR]`` (see
:mod:`audiogan.sweep`); ``--run-point`` is the worker that runs one point."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from audiogan import sweep, xla
from audiogan.errors import ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a grid of notebook parameters through papermill.")
    parser.add_argument("sweep", nargs="?", help="a sweep file, e.g. sweeps/loss_ablation.yaml")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="points run at once (default 1)")
    parser.add_argument("--out", help="the sweep's folder (default: out_dir in the file, or runs/sweeps/NAME)")
    parser.add_argument("--run-point", help=argparse.SUPPRESS)  # the worker of one point
    args = parser.parse_args(argv)
    xla.set_process_flags()  # inherited by the notebooks' kernels
    if args.run_point:
        return sweep.run_point(args.run_point)
    if not args.sweep:
        parser.error("name a sweep file, e.g. python -m audiogan.cli.sweep sweeps/loss_ablation.yaml")
    try:
        spec = sweep.load(args.sweep, args.out)
        result = sweep.run(spec, jobs=args.jobs)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 1 if result.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
