"""GPU figures of the training step in one device call: forms side by side, FLOP/s against measured peaks,
bfloat16, and a profile. ``gpu_session.sh`` starts several of these at once, one per group of configurations.

    python benchmarks/gpu_bench.py --group wavegan-f32 --out results/ [--profile] [--n-groups 4]

Each process compiles its group's steps, then waits for the other groups' compiles to finish (a barrier of
marker files in ``--out``) so that XLA's autotuning on the GPU does not overlap a timing, and times its steps
while holding a lock on ``--out/timing.lock``, so only one process times at a time. A record per configuration
is appended to ``--out/train_step_gpu.jsonl`` as it is measured:

- ``jax_s``: median seconds of a step called and waited for (``block_until_ready``), of ``--steps`` after
  ``--warmup``; ``pipelined_s``: seconds per step of ``--steps`` steps dispatched back to back and waited for
  once, as a training loop runs them (no host synchronisation between steps); ``steps_per_s`` from it;
- ``flops_useful``: XLA's cost analysis of the step as written with native convolutions (the "lax" form: each
  convolution counted at its true size), so it is the same work whatever form runs it; ``flops_executed``:
  the same analysis of the form that runs (the matmul and polyphase forms multiply some zeros);
- ``tflops``: useful FLOP/s; ``of_peak``: that over the measured peak of the precision the products run
  in (measured by the first group to time: an 8192^3 matrix product in bfloat16, and in float32 at JAX's
  default precision, which on this GPU uses TF32 tensor cores, and at "highest");
- ``xla_memory_mib``: XLA's memory plan of the compiled step (temporaries, arguments, outputs), per
  executable, since the process's peak covers every configuration of the group.

``--profile`` traces 3 pipelined steps of the group's fastest float32 configuration with ``jax.profiler`` and
writes where the GPU's time goes, by kernel and by the JAX operation it came from, to ``--out/profile_<group>.txt``.
"""

from __future__ import annotations

import argparse
import collections
import fcntl
import glob
import gzip
import json
import os
import re
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import audiogan  # noqa: F401  (before JAX starts)
from audiogan import training
from audiogan.config import RunConfig
from audiogan.models import conv

GROUPS = {
    # (model, d, batch, n_critic, form, precision); d ignored for mlp
    "wavegan-f32": [("wavegan", 64, 64, 5, f, "float32") for f in ("polyphase", "matmul")],
    "wavegan-bf16": [("wavegan", 64, 64, 5, f, "bfloat16") for f in ("polyphase", "matmul")],
    "specgan-f32": [("specgan", 64, 64, 5, f, "float32") for f in ("polyphase", "matmul")],
    "specgan-bf16": [("specgan", 64, 64, 5, f, "bfloat16") for f in ("polyphase", "matmul")],
    "small": [("mlp", None, 128, 1, "polyphase", p) for p in ("float32", "bfloat16")]
    + [("wavegan", 16, 16, 1, f, "float32") for f in ("polyphase", "matmul")],
    "wavegan-polyphase": [("wavegan", 64, 64, 5, "polyphase", p) for p in ("float32", "bfloat16")],
    "specgan-polyphase": [("specgan", 64, 64, 5, "polyphase", p) for p in ("float32", "bfloat16")],
    "cpu-check": [("wavegan", 16, 4, 1, "polyphase", "float32"), ("mlp", None, 16, 1, "polyphase", "bfloat16")],
}


def log(group: str, *msg) -> None:
    print(f"[{time.strftime('%H:%M:%S')} {group}]", *msg, flush=True)


def real_data(model: str, n_critic: int, batch: int) -> np.ndarray:
    shape = (n_critic, batch) + ((128, 128) if model == "specgan" else (16384,))
    return np.random.default_rng(0).uniform(-0.5, 0.5, shape).astype(np.float32)


def timed(fn, n: int) -> float:
    t0 = time.perf_counter()
    fn(n)
    return time.perf_counter() - t0


def peaks(n: int = 8192) -> dict:
    """Measured matrix-product rates, TFLOP/s (best of 10 after warm-up, fresh random operands)."""
    out = {}
    key = jax.random.PRNGKey(1)
    for name, dtype, precision in (("bfloat16", jnp.bfloat16, None), ("float32", jnp.float32, None),
                                   ("float32_highest", jnp.float32, "highest")):
        a, b = (jax.random.normal(k, (n, n), jnp.float32).astype(dtype) for k in jax.random.split(key))
        mm = jax.jit(lambda x, y, p=precision: jnp.matmul(x, y, precision=p))
        mm(a, b).block_until_ready()
        times = []
        for _ in range(10):
            t0 = time.perf_counter()
            mm(a, b).block_until_ready()
            times.append(time.perf_counter() - t0)
        out[name] = 2 * n**3 / min(times) / 1e12
    return out


class Config:
    def __init__(self, model, d, batch, n_critic, form, precision):
        self.key = dict(model=model, d=d, batch=batch, n_critic=n_critic, conv_form=form, precision=precision)
        arch = {"d": d} if model != "mlp" else {}
        self.cfg = RunConfig(run_dir=tempfile.mkdtemp(), model=model, batch_size=batch, n_critic=n_critic,
                             precision=precision, **arch)
        self.form = form
        with conv.use_form(form):
            self.gan, self.state = training.create(self.cfg)
            self.real = jax.device_put(real_data(model, n_critic, batch), self.gan.data_sharding)
            t0 = time.perf_counter()
            self.step = training.make_step(self.gan).lower(self.state, self.real).compile()
            self.compile_s = time.perf_counter() - t0
            self.flops_executed = training.step_flops(self.gan, self.state, self.real)
        with conv.use_form("lax"):
            self.flops_useful = training.step_flops(self.gan, self.state, self.real)
        mem = self.step.memory_analysis()
        self.xla_mib = None if mem is None else {
            k: getattr(mem, f"{k}_size_in_bytes") / 2**20 for k in ("temp", "argument", "output")}

    def run(self, n: int) -> None:
        state = self.state
        for _ in range(n):
            state, metrics = self.step(state, self.real)
        jax.block_until_ready(metrics)
        self.state, self.metrics = state, metrics

    def measure(self, steps: int, warmup: int, peak: dict | None) -> dict:
        self.run(warmup)
        latency = [timed(self.run, 1) for _ in range(steps)]
        pipelined = statistics.median(timed(self.run, steps) / steps for _ in range(3))
        useful = self.flops_useful / pipelined / 1e12 if self.flops_useful else None
        ref = None if peak is None else peak["bfloat16" if self.key["precision"] == "bfloat16" else "float32"]
        return self.key | {
            "jax_s": statistics.median(latency), "times_s": latency, "pipelined_s": pipelined,
            "steps_per_s": 1 / pipelined, "compile_s": self.compile_s,
            "flops_useful": self.flops_useful, "flops_executed": self.flops_executed, "tflops": useful,
            "of_peak": useful / ref if useful and ref else None, "peak_tflops": peak,
            "xla_memory_mib": self.xla_mib, "loss": self.cfg.loss,
            "losses": {k: float(v) for k, v in jax.device_get(self.metrics).items()},
        }


def profile(config: Config, out: Path, group: str) -> None:
    """Where the GPU's time goes in 3 pipelined steps: kernels by name and by the JAX operation (the HLO
    instruction's op_name) they came from; device busy time against the wall time of the steps."""
    hlo_meta = {}
    for line in config.step.as_text().splitlines():
        m = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = .*?op_name=\"([^\"]*)\"", line)
        if m:
            hlo_meta[m.group(1)] = re.sub(r"^jit\(step\)/", "", m.group(2))
    tmp = tempfile.mkdtemp()
    t0 = time.perf_counter()
    with jax.profiler.trace(tmp, create_perfetto_trace=True):
        config.run(3)
    wall = time.perf_counter() - t0
    path = glob.glob(tmp + "/**/*.trace.json.gz", recursive=True)[0]
    trace = json.load(gzip.open(path))
    names = {}
    for e in trace["traceEvents"]:
        if e.get("ph") == "M" and e.get("name") == "process_name":
            names[e["pid"]] = e["args"]["name"]
    by_kernel, by_op, by_process = collections.Counter(), collections.Counter(), collections.Counter()
    for e in trace["traceEvents"]:
        if e.get("ph") != "X":
            continue
        pname = names.get(e["pid"], str(e["pid"]))
        by_process[pname] += e.get("dur", 0)
        if "GPU" not in pname and "gpu" not in pname:
            continue
        args = e.get("args", {})
        hlo = args.get("hlo_op") or args.get("long_name") or ""
        by_kernel[e["name"][:90]] += e["dur"]
        op = hlo_meta.get(hlo, hlo_meta.get(re.sub(r"\.\d+$", "", hlo), hlo))
        by_op[re.sub(r"\[.*", "", op)[:150] or e["name"][:60]] += e["dur"]
    gpu_us = sum(by_kernel.values())
    lines = [f"profile of {config.key}: 3 pipelined steps, wall {wall * 1e3:.1f} ms under the profiler "
             f"(unprofiled pipelined step: see the record); GPU kernel time {gpu_us / 3e3:.2f} ms a step",
             "event time by trace process (ms a step): "
             + ", ".join(f"{k}: {v / 3e3:.1f}" for k, v in by_process.most_common()), "",
             "top kernels (ms a step, share of GPU kernel time):"]
    lines += [f"{v / 3e3:9.3f}  {100 * v / max(gpu_us, 1):5.1f}%  {k}" for k, v in by_kernel.most_common(25)]
    lines += ["", "by JAX operation (ms a step, share):"]
    lines += [f"{v / 3e3:9.3f}  {100 * v / max(gpu_us, 1):5.1f}%  {k}" for k, v in by_op.most_common(30)]
    (out / f"profile_{group}.txt").write_text("\n".join(lines) + "\n")
    log(group, "\n".join(lines[:12]))
    if os.path.getsize(path) < 15 * 2**20:
        (out / f"trace_{group}.json.gz").write_bytes(Path(path).read_bytes())


def barrier(out: Path, group: str, n_groups: int, deadline: float) -> None:
    (out / f"compiled.{group}").touch()
    while len(glob.glob(str(out / "compiled.*"))) < n_groups and time.time() < deadline:
        time.sleep(1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--group", required=True, choices=sorted(GROUPS))
    ap.add_argument("--label", default="", help="names this process's code in its records and files (A/B runs)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n-groups", type=int, default=1)
    ap.add_argument("--barrier-s", type=float, default=240, help="the longest wait for the other groups' compiles")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--peak-n", type=int, default=8192, help="the peaks' matrix size")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = args.group + (f"-{args.label}" if args.label else "")
    start = time.time()
    log(name, "jax", jax.__version__, jax.devices())
    configs = []
    try:
        for spec in GROUPS[args.group]:
            try:
                configs.append(Config(*spec))
                log(name, spec, f"compiled in {configs[-1].compile_s:.1f} s")
            except Exception:  # a configuration that fails is reported; the others still run
                log(name, spec, "FAILED\n" + traceback.format_exc(limit=4))
    finally:
        barrier(out, name, args.n_groups, start + args.barrier_s)
    with open(out / "timing.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (out / "peaks.json").exists():
            peak = json.loads((out / "peaks.json").read_text())
        else:  # the first group to time measures them
            peak = peaks(args.peak_n)
            (out / "peaks.json").write_text(json.dumps(peak))
            log(name, "peaks TFLOP/s", peak)
        records = []
        for c in configs:
            try:
                r = c.measure(args.steps, args.warmup, peak)
                r["label"] = args.label
                r["machine"] = {"backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
                                "device_kind": jax.devices()[0].device_kind, "jax": jax.__version__,
                                "python": sys.version.split()[0], "cpus": os.cpu_count(),
                                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                records.append((r, c))
                with open(out / "train_step_gpu.jsonl", "a") as f:
                    f.write(json.dumps(r) + "\n")
                log(name, {k: r[k] for k in ("model", "d", "batch", "n_critic", "conv_form", "precision",
                                                  "jax_s", "pipelined_s", "tflops", "of_peak")})
            except Exception:
                log(name, c.key, "FAILED\n" + traceback.format_exc(limit=4))
        if args.profile and records:
            f32 = [rc for rc in records if rc[0]["precision"] == "float32"]
            fastest = min(f32, key=lambda rc: rc[0]["pipelined_s"], default=None)
            if fastest:
                try:
                    profile(fastest[1], out, name)
                except Exception:
                    log(name, "profile FAILED\n" + traceback.format_exc(limit=4))
    return 0


if __name__ == "__main__":
    sys.exit(main())
