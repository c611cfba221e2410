"""Train one run across several processes (one per host or GPU): ``python -m audiogan.cli.distributed``.

See :mod:`audiogan.training.distributed` for how the processes find each other and share the work.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import jax
import yaml

from audiogan import training, xla
from audiogan.config import RunConfig
from audiogan.errors import ConfigError
from audiogan.evaluation import TrainingScorer
from audiogan.training import distributed


def parse_settings(items: Sequence[str]) -> dict[str, Any]:
    """``key=value`` words as settings; values are read as YAML scalars (``8000``, ``1e-4``, ``null``)."""
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{item!r} is not a setting; write key=value, e.g. steps=5000.")
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str):  # YAML 1.1 reads 1e-4 as text
            try:
                parsed = float(parsed)
            except ValueError:
                pass
        settings[key.strip()] = parsed
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    xla.set_process_flags()
    parser = argparse.ArgumentParser(
        description="Train one run across several processes (one per host or GPU).",
        epilog="Settings are RunConfig fields as key=value, e.g. run_dir=runs/big model=mlp steps=5000.",
    )
    parser.add_argument("settings", nargs="*", help="run settings as key=value")
    parser.add_argument("--coordinator", help=f"HOST:PORT of process 0 (or ${distributed.ENV['coordinator']})")
    parser.add_argument("--num-processes", type=int,
                        help=f"number of processes (or ${distributed.ENV['num_processes']})")
    parser.add_argument("--process-id", type=int, help=f"this process, 0..N-1 (or ${distributed.ENV['process_id']})")
    parser.add_argument("--config", help="a run folder or config.json to start from; settings override it")
    parser.add_argument("--cpu-collectives", choices=["gloo", "mpi"],
                        help="collectives for CPU-only processes (gloo on a laptop or in tests)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    settings = parse_settings(args.settings)
    if args.config:
        path = args.config[: -len("config.json")] if args.config.endswith("config.json") else args.config
        config = RunConfig.load(path or ".").replace(**settings)
    else:
        config = RunConfig.from_dict(settings)
    distributed.initialize(args.coordinator, args.num_processes, args.process_id, cpu_collectives=args.cpu_collectives)

    result = training.train(config, progress=not args.no_progress and distributed.is_main_process(),
                            scorer=TrainingScorer)
    if distributed.is_main_process():
        last = {k: v[-1] for k, v in result.history.items() if v}
        print(f"[audiogan] {jax.process_count()} processes, {jax.device_count()} devices: step "
              f"{int(last.get('step', 0))}, d_loss {last.get('d_loss', float('nan')):.6g}, "
              f"g_loss {last.get('g_loss', float('nan')):.6g}; run folder {config.run_dir}")
    jax.distributed.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
