"""Seconds per training step, compile time and peak memory of one configuration.

    python benchmarks/train_step.py --model wavegan --d 64 --batch 64 --n-critic 5 --steps 3

One step is the whole compiled update: ``n_critic`` discriminator updates then one generator update,
on random clips of the model's length. Reported: compile time (tracing + XLA compilation, timed
apart from running), the median of ``--steps`` timed steps after ``--warmup`` untimed ones, and the
process's peak resident memory (and the accelerator's peak memory in use, where it reports one).
Results are appended to ``benchmarks/results/train_step.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from audiogan import train
from audiogan.config import RunConfig
from audiogan.models import conv


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="wavegan", choices=["mlp", "wavegan", "specgan"])
    ap.add_argument("--loss", default=None)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--n-critic", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "train_step.jsonl"))
    args = ap.parse_args(argv)

    arch = {"d": args.d} if args.model != "mlp" else {}
    cfg = RunConfig(run_dir=tempfile.mkdtemp(), model=args.model, loss=args.loss, batch_size=args.batch,
                    n_critic=args.n_critic, **arch)
    gan, state = train.create(cfg)
    step = train.make_step(gan)
    rng = np.random.default_rng(0)
    shape = (cfg.n_critic, cfg.batch_size) + ((128, 128) if cfg.model == "specgan" else (cfg.clip_samples,))
    real = jax.device_put(rng.uniform(-0.5, 0.5, shape).astype(np.float32), gan.data_sharding)

    t0 = time.perf_counter()
    step = step.lower(state, real).compile()  # trace + XLA compilation, timed on its own
    compile_s = time.perf_counter() - t0
    for _ in range(args.warmup):
        state, metrics = step(state, real)
    jax.block_until_ready(metrics)
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        state, metrics = step(state, real)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    device_stats = jax.devices()[0].memory_stats() or {}  # accelerators report their own memory
    record = {
        "model": cfg.model, "loss": cfg.loss, "d": cfg.d, "batch": cfg.batch_size, "n_critic": cfg.n_critic,
        "clip_samples": cfg.clip_samples, "jax_s": median, "times_s": times,
        "compile_s": compile_s,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_device_mib": device_stats["peak_bytes_in_use"] / 2**20 if "peak_bytes_in_use" in device_stats else None,
        "conv_form": conv.resolve_form(),
        "machine": {"backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
                    "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "jax": jax.__version__, "python": sys.version.split()[0]},
        "losses": {k: float(v) for k, v in jax.device_get(metrics).items()},
    }
    print(json.dumps({k: v for k, v in record.items() if k != "machine"}, indent=1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a") as f:
        f.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
