"""Seconds per training step, compile time and peak memory of one configuration, or JAX against PyTorch.

    python benchmarks/train_step.py --model wavegan --d 64 --batch 64 --n-critic 5 --steps 3
    python benchmarks/train_step.py --vs-torch [--models wavegan] [--d 16 32] [--precision bfloat16]

One step is the whole compiled update: ``n_critic`` discriminator updates then one generator update,
on random clips of the model's length. Reported: compile time (tracing + XLA compilation, timed
apart from running), the median of ``--steps`` timed steps after ``--warmup`` untimed ones, and the
process's peak resident memory (and the accelerator's peak memory in use, where it reports one).
Results are appended to ``benchmarks/results/train_step.jsonl``.

``--vs-torch`` runs the grid (wavegan, specgan at d 16/32/64 x batch 16/64 x n_critic 1/5; mlp at batch
16/64/128 x n_critic 1/5, or the subset given) against the PyTorch versions in ``torch_models.py``
(``make bench-torch`` first): per configuration a fresh JAX worker and a fresh PyTorch worker
(``worker.py``, 2 threads for torch) set up, warm up, then take turns step by step, so both see the
same load on a shared machine and each peak memory is its own process's. They take at least ``--steps``
turns, and more until each has timed ``--min-seconds`` (10): the medians of a 0.15 s step then span some
60 turns, not 5 inside one slow spell of a shared machine. One JSON record per
configuration goes to ``results/vs_torch.jsonl`` and the table of the latest record of each to
``results/vs_torch.md``. GFLOP/s is XLA's cost analysis of the compiled step (the matmul form's
zero taps included) over the step time, against the best float32 GEMM of the machine (2048^3).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from audiogan import training
from audiogan.config import RunConfig
from audiogan.models import conv

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
WORKER = Path(__file__).resolve().parent / "worker.py"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="wavegan", choices=["mlp", "wavegan", "specgan"])
    ap.add_argument("--loss", default=None)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--n-critic", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--min-seconds", type=float, default=10.0,
                    help="--vs-torch: keep taking turns past --steps until each framework has timed this long")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--precision", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--vs-torch", action="store_true", help="JAX against PyTorch over a grid, alternating")
    ap.add_argument("--models", nargs="+", default=["wavegan", "specgan", "mlp"])
    ap.add_argument("--ds", nargs="+", type=int, default=[16, 32, 64], help="--vs-torch: widths")
    ap.add_argument("--batches", nargs="+", type=int, default=None, help="--vs-torch: batch sizes")
    ap.add_argument("--n-critics", nargs="+", type=int, default=[1, 5], help="--vs-torch: critic steps")
    ap.add_argument("--torch-python", default=str(ROOT / ".venv-torch" / "bin" / "python"))
    ap.add_argument("--table-only", action="store_true", help="--vs-torch: rewrite the table from the JSON")
    args = ap.parse_args(argv)
    if args.vs_torch:
        return vs_torch(args)
    args.out = args.out or str(RESULTS / "train_step.jsonl")

    arch = {"d": args.d} if args.model != "mlp" else {}
    cfg = RunConfig(run_dir=tempfile.mkdtemp(), model=args.model, loss=args.loss, batch_size=args.batch,
                    n_critic=args.n_critic, precision=args.precision, **arch)
    gan, state = training.create(cfg)
    step = training.make_step(gan)
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
        "clip_samples": cfg.clip_samples, "precision": cfg.precision, "jax_s": median, "times_s": times,
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


# ---------------------------------------------------------------------------- --vs-torch
class Worker:
    """A worker.py process: one JSON command in, one JSON reply out."""

    def __init__(self, python: str, framework: str, script: list[str] | None = None):
        """Runs ``python *script framework``; ``script`` is ``[worker.py]`` unless given (vocoder_step.py's)."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.framework = framework
        script = [str(WORKER)] if script is None else script
        self.proc = subprocess.Popen([python, *script, framework], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=env, text=True, cwd=str(ROOT))

    def __call__(self, cmd: str, **kw) -> dict:
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.framework} worker died (exit code {self.proc.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.framework} worker: {reply['error']}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def grid(args) -> list[tuple[str, int | None, int, int]]:
    configs = []
    for model in args.models:
        batches = args.batches or ([16, 64, 128] if model == "mlp" else [16, 64])
        for d in ([None] if model == "mlp" else args.ds):
            for batch in batches:
                for n_critic in args.n_critics:
                    configs.append((model, d, batch, n_critic))
    return configs


def machine() -> dict:
    model_name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model_name, "cpus": os.cpu_count(), "python": sys.version.split()[0],
            "load_avg_1min": os.getloadavg()[0], "commit": commit()}


def commit() -> str | None:
    """The code measured: HEAD's hash, with ``+changes`` when tracked files other than the results differ."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)benchmarks/results"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+changes" if dirty else "")


def measure(args, config, peaks) -> dict:
    model, d, batch, n_critic = config
    load_before = os.getloadavg()[0]
    workers = {"jax": Worker(sys.executable, "jax"), "torch": Worker(args.torch_python, "torch")}
    try:
        setup = {f: w("setup", model=model, d=d or 64, batch=batch, n_critic=n_critic, precision=args.precision)
                 for f, w in workers.items()}
        for _ in range(args.warmup - 1):  # set-up ran the first step
            for w in workers.values():
                w("step")
        for w in workers.values():
            w("reset_peak")
        times = {"jax": [], "torch": []}
        order = list(workers)
        i = 0
        while i < args.steps or min(sum(t) for t in times.values()) < args.min_seconds:
            for f in order if i % 2 == 0 else order[::-1]:  # take turns, the first mover alternating
                times[f].append(workers[f]("step")["s"])
            i += 1
        done = {f: w("finish") for f, w in workers.items()}
    finally:
        for w in workers.values():
            w.close()
    jax_s, torch_s = statistics.median(times["jax"]), statistics.median(times["torch"])
    flops = setup["jax"]["flops"]
    return {
        "model": model, "d": d, "batch": batch, "n_critic": n_critic, "precision": args.precision,
        "loss": setup["jax"]["loss"], "jax_s": jax_s, "torch_s": torch_s, "ratio": jax_s / torch_s,
        "ratio_per_turn": statistics.median(a / b for a, b in zip(times["jax"], times["torch"], strict=True)),
        "compile_s": setup["jax"]["compile_s"], "torch_first_step_s": setup["torch"]["first_step_s"],
        "jax_peak_rss_mib": done["jax"]["peak_rss_mib"], "torch_peak_rss_mib": done["torch"]["peak_rss_mib"],
        "jax_steps_peak_rss_mib": done["jax"]["steps_peak_rss_mib"],
        "torch_steps_peak_rss_mib": done["torch"]["steps_peak_rss_mib"],
        "jax_first_step_s": setup["jax"]["first_step_s"],
        "jax_baseline_rss_mib": setup["jax"].get("baseline_rss_mib"),
        "torch_baseline_rss_mib": setup["torch"].get("baseline_rss_mib"),
        "xla_memory_mib": setup["jax"]["xla_memory_mib"], "conv_form": setup["jax"]["conv_form"],
        "step_gflop": flops / 1e9 if flops else None,
        "jax_gflops": flops / jax_s / 1e9 if flops else None,
        "torch_gflops": flops / torch_s / 1e9 if flops else None,
        "peak_gemm_gflops": peaks["jax"]["gemm_gflops"], "torch_gemm_gflops": peaks["torch"]["gemm_gflops"],
        "jax_times_s": times["jax"], "torch_times_s": times["torch"],
        "params": setup["torch"]["params"],
        "jax_losses": done["jax"]["losses"], "torch_losses": done["torch"]["losses"],
        "steps": len(times["jax"]), "min_seconds": args.min_seconds, "warmup": args.warmup,
        "load_avg_1min": [load_before, os.getloadavg()[0]],
        "machine": machine() | {"jax": peaks["jax"]["jax"], "torch": peaks["torch"]["torch"],
                                "torch_threads": peaks["torch"]["threads"]},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def mib(x) -> str:
    return "-" if x is None else f"{x:.0f}"


def above(r: dict, framework: str) -> str:
    """Peak resident memory over the steps less the process's memory before the model was built."""
    peak, base = r.get(f"{framework}_steps_peak_rss_mib"), r.get(f"{framework}_baseline_rss_mib")
    return "-" if peak is None or base is None else f"{peak - base:.0f}"


def write_table(jsonl: Path, md: Path) -> None:
    latest = {}
    for line in jsonl.read_text().splitlines():
        r = json.loads(line)
        latest[(r["model"], r["d"], r["batch"], r["n_critic"], r["precision"])] = r
    order = {"wavegan": 0, "specgan": 1, "mlp": 2}
    rows = sorted(latest.values(), key=lambda r: (r["precision"], order[r["model"]], r["d"] or 0, r["batch"],
                                                  r["n_critic"]))
    lines = [
        "| model | precision | d | batch | n_critic | JAX s/step | PyTorch s/step | JAX / PyTorch "
        "| timed steps each | compile s "
        "| peak RSS MiB, steps: JAX / PyTorch | of which above the import baseline: JAX / PyTorch "
        "| peak RSS MiB, whole process: JAX / PyTorch | JAX GFLOP/s "
        "| GEMM GFLOP/s at the time | % of that peak | load (1 min) | measured | CPU | commit |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|",
    ]
    for r in rows:
        pct = 100 * r["jax_gflops"] / r["peak_gemm_gflops"] if r["jax_gflops"] else float("nan")
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['d'] or '-'} | {r['batch']} | {r['n_critic']} "
            f"| {r['jax_s']:.3f} | {r['torch_s']:.3f} | {r['ratio']:.2f} | {len(r['jax_times_s'])} "
            f"| {r['compile_s']:.1f} "
            f"| {mib(r.get('jax_steps_peak_rss_mib'))} / {mib(r.get('torch_steps_peak_rss_mib'))} "
            f"| {above(r, 'jax')} / {above(r, 'torch')} "
            f"| {r['jax_peak_rss_mib']:.0f} / {r['torch_peak_rss_mib']:.0f} | {r['jax_gflops'] or 0:.1f} "
            f"| {r['peak_gemm_gflops']:.0f} | {pct:.0f}% "
            f"| {' - '.join(f'{x:.1f}' for x in r.get('load_avg_1min', []))} | {r['when']} "
            f"| {r['machine'].get('cpu')} | {r['machine'].get('commit') or '-'} |"
        )
    m = rows[-1]["machine"] if rows else {}
    cpus = sorted({r["machine"].get("cpu") for r in rows})
    head = (f"JAX against PyTorch, one training step (n_critic critic updates + 1 generator update), median of "
            f"the timed steps after warm-up, the two frameworks taking turns step by step. Machines: "
            f"{', '.join(cpus)} (each row names its own), "
            f"{m.get('cpus')} cores (shared with other work: load in each record), jax {m.get('jax')}, "
            f"torch {m.get('torch')} with {m.get('torch_threads')} threads. The machine's peak is a float32 "
            f"2048^3 matrix product in JAX, measured at the start of each run under the same load (best: "
            f"{max(r['peak_gemm_gflops'] for r in rows):.0f} GFLOP/s).\n\n" if rows else "")
    md.write_text(head + "\n".join(lines) + "\n")


def vs_torch(args) -> int:
    jsonl = Path(args.out or RESULTS / "vs_torch.jsonl")
    md = jsonl.with_suffix(".md")
    if args.table_only:
        write_table(jsonl, md)
        print(md.read_text())
        return 0
    if not Path(args.torch_python).exists():
        raise SystemExit(f"{args.torch_python} does not exist: run `make bench-torch` first (or pass --torch-python)")
    peaks = {}
    for f, python in (("jax", sys.executable), ("torch", args.torch_python)):
        w = Worker(python, f)
        try:
            peaks[f] = w("peak")
        finally:
            w.close()
    print(f"float32 GEMM: JAX {peaks['jax']['gemm_gflops']:.1f} GFLOP/s, torch {peaks['torch']['gemm_gflops']:.1f}",
          flush=True)
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    for config in grid(args):
        try:
            record = measure(args, config, peaks)
        except RuntimeError as e:
            print(f"{config}: FAILED {e}", flush=True)
            continue
        with open(jsonl, "a") as f:
            f.write(json.dumps(record) + "\n")
        write_table(jsonl, md)
        print(f"{record['model']} d={record['d']} b={record['batch']} n_critic={record['n_critic']} "
              f"{record['precision']}: jax {record['jax_s']:.3f} s, torch {record['torch_s']:.3f} s, "
              f"ratio {record['ratio']:.2f}, compile {record['compile_s']:.1f} s, peak RSS jax "
              f"{record['jax_peak_rss_mib']:.0f} / torch {record['torch_peak_rss_mib']:.0f} MiB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
