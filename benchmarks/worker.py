"""One framework's side of ``train_step.py --vs-torch``: a process that builds one configuration and
times single training steps when asked, so the two frameworks can take turns on the same machine.

    python benchmarks/worker.py jax|torch     (JSON lines on stdin, one JSON reply per line on stdout)

Commands: ``{"cmd": "setup", "model", "d", "batch", "n_critic", "precision"}`` builds the networks and
optimisers, compiles (JAX) and runs a first, untimed step; ``{"cmd": "step"}`` runs and times one
step; ``{"cmd": "reset_peak"}`` restarts the kernel's peak-memory count (after set-up and warm-up);
``{"cmd": "finish"}`` replies with the last losses, the process's peak resident memory over its life and
over the steps since ``reset_peak``, then the worker exits; ``{"cmd": "peak"}`` measures float32 GEMM
GFLOP/s. Each configuration gets fresh workers, so each peak memory is that configuration's own.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

GEMM_N = 2048


def peak_rss_mib() -> float:
    """The process's peak resident memory since it started (compilation included)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> bool:
    """Return freed heap to the system and restart the kernel's peak-RSS count (Linux: VmHWM), so that
    :func:`steps_peak_rss_mib` measures the training steps alone, not compilation or set-up."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_mib(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def steps_peak_rss_mib() -> float | None:
    return _status_mib("VmHWM")


def baseline_rss_mib() -> float | None:
    """Resident memory once the framework and the model code are imported, before any model is built:
    what the process holds whatever it trains (JAX with audiogan's imports: about 460 MiB; PyTorch: 230)."""
    return _status_mib("VmRSS")


def real_data(model: str, n_critic: int, batch: int) -> np.ndarray:
    shape = (n_critic, batch) + ((128, 128) if model == "specgan" else (16384,))
    return np.random.default_rng(0).uniform(-0.5, 0.5, shape).astype(np.float32)


class JaxSide:
    def __init__(self):
        import jax

        import audiogan  # noqa: F401  (before JAX starts: its XLA:CPU flags, audiogan.xla)

        self.jax = jax

    def peak(self) -> dict:
        jax, jnp = self.jax, self.jax.numpy
        a = jax.random.normal(jax.random.PRNGKey(0), (GEMM_N, GEMM_N), jnp.float32)
        mm = jax.jit(lambda x: x @ x)
        mm(a).block_until_ready()
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            mm(a).block_until_ready()
            times.append(time.perf_counter() - t0)
        return {"gemm_gflops": 2 * GEMM_N**3 / min(times) / 1e9, "gemm_n": GEMM_N,
                "jax": jax.__version__, "backend": jax.default_backend()}

    def setup(self, model: str, d: int, batch: int, n_critic: int, precision: str) -> dict:
        import tempfile

        from audiogan import training
        from audiogan.config import RunConfig
        from audiogan.models import conv

        self.jax.numpy.zeros(1).block_until_ready()  # the backend up, as PyTorch's is at import
        baseline = baseline_rss_mib()
        jax = self.jax
        arch = {"d": d} if model != "mlp" else {}
        cfg = RunConfig(run_dir=tempfile.mkdtemp(), model=model, batch_size=batch, n_critic=n_critic,
                        precision=precision, **arch)
        gan, self.state = training.create(cfg)
        self.real = jax.device_put(real_data(model, n_critic, batch), gan.data_sharding)
        t0 = time.perf_counter()
        self.step_fn = training.make_step(gan).lower(self.state, self.real).compile()
        compile_s = time.perf_counter() - t0
        mem = self.step_fn.memory_analysis()
        xla_mib = None
        if mem is not None:
            xla_mib = {k: getattr(mem, f"{k}_size_in_bytes") / 2**20
                       for k in ("temp", "argument", "output", "generated_code")}
        t0 = time.perf_counter()
        self.step()
        first_step_s = time.perf_counter() - t0
        flops = training.step_flops(gan, self.state, self.real)
        return {"compile_s": compile_s, "first_step_s": first_step_s, "flops": flops, "baseline_rss_mib": baseline,
                "xla_memory_mib": xla_mib, "conv_form": conv.resolve_form(), "loss": cfg.loss}

    def step(self) -> dict:
        t0 = time.perf_counter()
        self.state, self.metrics = self.step_fn(self.state, self.real)
        self.jax.block_until_ready(self.metrics)
        return {"s": time.perf_counter() - t0}

    def finish(self) -> dict:
        return {"losses": {k: float(v) for k, v in self.jax.device_get(self.metrics).items()}}


class TorchSide:
    def __init__(self, threads: int = 2):
        import torch

        torch.set_num_threads(threads)
        self.torch = torch

    def peak(self) -> dict:
        torch = self.torch
        a = torch.randn(GEMM_N, GEMM_N)
        a @ a
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            a @ a
            times.append(time.perf_counter() - t0)
        return {"gemm_gflops": 2 * GEMM_N**3 / min(times) / 1e9, "gemm_n": GEMM_N, "torch": torch.__version__,
                "threads": torch.get_num_threads()}

    def setup(self, model: str, d: int, batch: int, n_critic: int, precision: str) -> dict:
        from torch_models import TorchGAN, count

        del precision  # PyTorch runs the float32 reference
        baseline = baseline_rss_mib()
        self.gan = TorchGAN(model, d, n_critic)
        self.real = self.torch.from_numpy(real_data(model, n_critic, batch))
        t0 = time.perf_counter()
        self.metrics = self.gan.step(self.real)
        return {"first_step_s": time.perf_counter() - t0, "params": [count(self.gan.g), count(self.gan.d)],
                "baseline_rss_mib": baseline,
                "torch": self.torch.__version__, "threads": self.torch.get_num_threads()}

    def step(self) -> dict:
        t0 = time.perf_counter()
        self.metrics = self.gan.step(self.real)
        return {"s": time.perf_counter() - t0}

    def finish(self) -> dict:
        return {"losses": self.metrics}


def serve(side, commands: tuple[str, ...] = ()) -> None:
    """Answer commands for ``side`` ("jax", "torch", or a side object, e.g. ``vocoder_step.py``'s) until
    ``finish`` or an error; ``commands`` names further methods of the side it may be asked to run."""
    if isinstance(side, str):
        side = JaxSide() if side == "jax" else TorchSide()
    out = sys.stdout
    sys.stdout = sys.stderr  # library prints must not corrupt the reply stream
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg.pop("cmd")
        try:
            if cmd == "setup":
                reply = side.setup(**msg)
            elif cmd == "step":
                reply = side.step()
            elif cmd == "peak":
                reply = side.peak()
            elif cmd == "reset_peak":
                reply = {"reset": reset_peak()}
            elif cmd == "finish":
                reply = side.finish() | {"steps_peak_rss_mib": steps_peak_rss_mib()}
            elif cmd in commands:
                reply = getattr(side, cmd)(**msg)
            else:
                raise ValueError(f"unknown command {cmd!r}")
            reply["peak_rss_mib"] = peak_rss_mib()
        except Exception as e:  # reported to the parent, which records the failure
            reply = {"error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()
        if cmd == "finish" or "error" in reply:
            return


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("jax", "torch"):
        raise SystemExit("usage: worker.py jax|torch")
    serve(sys.argv[1])
