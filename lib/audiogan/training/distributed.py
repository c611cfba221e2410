"""Training across processes and hosts: ``jax.distributed`` set-up and process-local batches.

One process runs per host (or per GPU); together they see every device of every host as one
``Mesh``. Each process loads only its own rows of the global batch and hands them to
``jax.make_array_from_process_local_data``; the parameters stay replicated, so the compiled step is
the one that runs on a single device, and XLA adds the all-reduce of the gradients. Only process 0
writes the run folder's files (config, metrics, previews); checkpoints are written by orbax, which
coordinates the processes itself and needs a folder that every host can reach.

    python -m audiogan.cli.distributed --coordinator HOST:PORT --num-processes N --process-id I \\
        run_dir=runs/big model=wavegan steps=20000

Without ``--coordinator`` the values come from ``AUDIOGAN_COORDINATOR``, ``AUDIOGAN_NUM_PROCESSES``
and ``AUDIOGAN_PROCESS_ID``, and failing those from JAX's own detection of the cluster (Slurm,
Cloud TPU VMs, Open MPI, Kubernetes), so ``srun python -m audiogan.cli.distributed ...`` needs no flags.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Sharding

from audiogan.errors import ConfigError

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
