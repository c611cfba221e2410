"""How fast data reaches training: the time to build ``digits``, to load it from the cache, and
batches per second served from the cached clips.

    python benchmarks/data_loading.py [--n-train 5000] [--batch 64] [--batches 300]

Builds the default ``digits`` set (16 kHz, 16,384 samples) into a fresh temporary cache, loads it
back (checksums verified), then times ``audiogan.datasets.Batches`` drawing ``--batches`` shuffled
batches of ``--batch`` x 16,384 float32 samples (a gather into a new array, as the training loop
reads them), and the same with ``jax.device_put`` of each batch. Appends one JSON record to
``benchmarks/results/data_loading.jsonl``; the load average is recorded because the 2 cores are
shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=None, help="digits training clips (default: the dataset's)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batches", type=int, default=300)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "data_loading.jsonl"))
    args = ap.parse_args(argv)
    cache = tempfile.mkdtemp(prefix="audiogan-bench-cache-")
    os.environ["AUDIOGAN_CACHE_DIR"] = cache

    import jax

    from audiogan.config import RunConfig
    from audiogan.datasets import Batches, load_dataset

    config = RunConfig(dataset="digits", n_clips=args.n_train, sample_rate=16000, clip_samples=16384)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    data = load_dataset(config)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cached = load_dataset(config)
    load_s = time.perf_counter() - t0
    assert cached.info["from_cache"] and cached.clips.tobytes() == data.clips.tobytes()
    train = cached.subset("train")
    batches = Batches(train.clips, args.batch, seed=0)
    batches[0]  # first permutation drawn
    t0 = time.perf_counter()
    for step in range(args.batches):
        batch = batches[step]
    gather_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for step in range(args.batches):
        batch = jax.device_put(batches[step])
    jax.block_until_ready(batch)
    device_s = time.perf_counter() - t0
    cache_bytes = sum(p.stat().st_size for p in Path(cache).iterdir())
    record = {
        "dataset": "digits", "clips": len(data), "splits": data.info["splits"],
        "build_s": round(build_s, 2), "speech_s": data.info["speech_seconds"],
        "cache_load_s": round(load_s, 2), "cache_mib": round(cache_bytes / 2**20, 1),
        "batch": args.batch, "clip_samples": config.clip_samples, "batches": args.batches,
        "batches_per_s": round(args.batches / gather_s, 1),
        "batches_per_s_device_put": round(args.batches / device_s, 1),
        "mib_per_s": round(args.batches * args.batch * config.clip_samples * 4 / gather_s / 2**20, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_average_before": round(load_before, 2),
        "machine": {"cpus": os.cpu_count(), "processor": platform.machine(), "python": sys.version.split()[0],
                    "jax_backend": jax.default_backend()},
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    print(json.dumps(record, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as f:
        f.write(json.dumps(record) + "\n")
    for p in Path(cache).iterdir():
        p.unlink()
    Path(cache).rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
