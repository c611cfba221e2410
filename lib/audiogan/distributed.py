"""Training across processes and hosts: ``jax.distributed`` set-up and process-local batches.

One process runs per host (or per GPU); together they see every device of every host as one
``Mesh``. Each process loads only its own rows of the global batch and hands them to
``jax.make_array_from_process_local_data``; the parameters stay replicated, so the compiled step is
the one that runs on a single device, and XLA adds the all-reduce of the gradients. Only process 0
writes the run folder's files (config, metrics, previews); checkpoints are written by orbax, which
coordinates the processes itself and needs a folder that every host can reach.

    python -m audiogan.distributed --coordinator HOST:PORT --num-processes N --process-id I \\
        run_dir=runs/big model=wavegan steps=20000

Without ``--coordinator`` the values come from ``AUDIOGAN_COORDINATOR``, ``AUDIOGAN_NUM_PROCESSES``
and ``AUDIOGAN_PROCESS_ID``, and failing those from JAX's own detection of the cluster (Slurm,
Cloud TPU VMs, Open MPI, Kubernetes), so ``srun python -m audiogan.distributed ...`` needs no flags.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Sharding

from audiogan.config import ConfigError, RunConfig

ENV = {"coordinator": "AUDIOGAN_COORDINATOR", "num_processes": "AUDIOGAN_NUM_PROCESSES",
       "process_id": "AUDIOGAN_PROCESS_ID"}


def is_main_process() -> bool:
    """True in the one process that writes the run folder's files (process 0)."""
    return jax.process_index() == 0


def initialize(
    coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None,
    *, cpu_collectives: str | None = None,
) -> None:
    """Join the processes of one training job: arguments first, then ``AUDIOGAN_*`` variables,
    then JAX's cluster auto-detection (Slurm, Cloud TPU, Open MPI, Kubernetes).

    ``cpu_collectives="gloo"`` lets CPU-only processes exchange gradients (tests, laptops).
    Must run before anything touches a JAX device.
    """
    given = {"coordinator": coordinator, "num_processes": num_processes, "process_id": process_id}
    for name, var in ENV.items():
        if given[name] is None and os.environ.get(var):
            given[name] = os.environ[var] if name == "coordinator" else _int(var, os.environ[var])
    if given["coordinator"] is not None and None in (given["num_processes"], given["process_id"]):
        raise ConfigError(
            f"coordinator={given['coordinator']!r} needs num_processes and process_id too "
            f"(--num-processes/--process-id or {ENV['num_processes']}/{ENV['process_id']})."
        )
    if given["num_processes"] is not None and given["process_id"] is not None:
        if not 0 <= given["process_id"] < given["num_processes"]:
            raise ConfigError(
                f"process_id={given['process_id']} must lie in [0, {given['num_processes']}) "
                "(one id per process, starting at 0)."
            )
    if cpu_collectives:
        jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    jax.distributed.initialize(
        coordinator_address=given["coordinator"], num_processes=given["num_processes"],
        process_id=given["process_id"],
    )


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} must be a whole number.") from None


def local_rows(sharding: Sharding, global_shape: tuple[int, ...], axis: int) -> np.ndarray:
    """The indices along ``axis`` of a ``global_shape`` array that this process's devices hold,
    in the order ``jax.make_array_from_process_local_data`` expects them (all of them on one
    process)."""
    starts = set()
    for index in sharding.addressable_devices_indices_map(global_shape).values():
        s = index[axis] if index is not None and len(index) > axis else slice(None)
        starts.add((s.start or 0, global_shape[axis] if s.stop is None else s.stop))
    return np.concatenate([np.arange(a, b) for a, b in sorted(starts)])


def replicate(tree: Any, sharding: Sharding) -> Any:
    """``tree`` placed on every device of ``sharding``; across processes every process must pass
    the same values (they do: the same seed builds the same networks)."""
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(jax.device_get(x))), tree
    )


def parse_settings(items: Sequence[str]) -> dict[str, Any]:
    """``key=value`` words as settings; values are read as YAML scalars (``8000``, ``1e-4``, ``null``)."""
    import yaml

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
    parser = argparse.ArgumentParser(
        description="Train one run across several processes (one per host or GPU).",
        epilog="Settings are RunConfig fields as key=value, e.g. run_dir=runs/big model=mlp steps=5000.",
    )
    parser.add_argument("settings", nargs="*", help="run settings as key=value")
    parser.add_argument("--coordinator", help=f"HOST:PORT of process 0 (or ${ENV['coordinator']})")
    parser.add_argument("--num-processes", type=int, help=f"number of processes (or ${ENV['num_processes']})")
    parser.add_argument("--process-id", type=int, help=f"this process, 0..N-1 (or ${ENV['process_id']})")
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
    initialize(args.coordinator, args.num_processes, args.process_id, cpu_collectives=args.cpu_collectives)

    from audiogan import train

    result = train.train(config, progress=not args.no_progress and is_main_process())
    if is_main_process():
        last = {k: v[-1] for k, v in result.history.items() if v}
        print(f"[audiogan] {jax.process_count()} processes, {jax.device_count()} devices: step "
              f"{int(last.get('step', 0))}, d_loss {last.get('d_loss', float('nan')):.6g}, "
              f"g_loss {last.get('g_loss', float('nan')):.6g}; run folder {config.run_dir}")
    jax.distributed.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
