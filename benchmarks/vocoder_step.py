"""HiFi-GAN and MelGAN against their PyTorch ports: seconds per training step, and inference x real time.

    python benchmarks/vocoder_step.py --vs-torch                                  # hifigan/v1, hifigan/v3, melgan/base
    python benchmarks/vocoder_step.py --vs-torch --models hifigan/v3 --min-seconds 20 --steps 3
    python benchmarks/vocoder_step.py --vs-torch --inference-only --infer-rounds 12   # inference alone, minutes

Training step: the official recipe on random segments of ``--segment-samples`` (8192, HiFi-GAN's config_v1
at 22.05 kHz, hop 256; MelGAN's ``segment_length`` likewise) at ``--batch`` 16. JAX runs
``audiogan.training.vocoder_step.make_step``; PyTorch runs :class:`TorchVocoder` below, the official loops
(jik876/hifi-gan ``train.py``; descriptinc/melgan-neurips ``scripts/train.py``) on the ports in
``torch_vocoders.py``: HiFi-GAN, one D update with the least-squares loss on MPD + MSD, then one G update
with LS adversarial + 2 x feature matching + 45 x mel L1, both AdamW(2e-4, betas 0.8 / 0.99); MelGAN, hinge D
then hinge G + 10 x the weighted feature matching, both Adam(1e-4, betas 0.5 / 0.9). Both frameworks
compute the mels of the real segments inside the step. As in ``torch_models.py``, the PyTorch G update
freezes D's weights (the official loop also computes D's weight gradients there and throws them away: the
freeze only makes the reference faster).

Inference: the generator alone, batch 1, one second of mel at 22.05 kHz (86 frames, 22,016 samples), warm,
the two frameworks taking ``--infer-rounds`` turns of ``--infer-runs`` calls each (the first mover
alternating), the median of all calls; ``rtf`` is seconds of audio made per second (x real time). Both
remove weight norm first, as the official ``inference.py``: PyTorch with ``remove_weight_norm`` and
``eval()`` under ``torch.inference_mode()``, JAX with ``Generator.remove_weight_norm()`` (which also keeps
each transposed convolution's kernel in the output-phase layout it runs fastest in), one ``jit`` of the
whole generator compiled once. ``--jax-weight-norm`` times JAX's generator as it trains instead (weight norm
and the polyphase transposed convolutions computed at every call: the inference path before 2026-12-08).

Both run the way ``train_step.py --vs-torch`` runs them: a fresh JAX worker and a fresh PyTorch worker
(2 threads) per configuration, taking turns step by step (the first mover alternating) until each has
taken ``--steps`` steps and timed ``--min-seconds``; the workers are this file (``--worker jax|torch``)
serving ``worker.py``'s protocol. One record per configuration is appended to
``results/vocoder_vs_torch.jsonl`` with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SAMPLE_RATE = 22050
HOP = 256
INFER_FRAMES = SAMPLE_RATE // HOP  # 86 frames: one second of audio, to a whole hop
MODELS = ("hifigan/v1", "hifigan/v3", "melgan/base")


def segments(batch: int, samples: int, seed: int = 0) -> np.ndarray:
    """Random segments (B, T) in [-0.5, 0.5], the same for both frameworks."""
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (batch, samples)).astype(np.float32)


def infer_mel(n_mels: int = 80, seed: int = 1) -> np.ndarray:
    """One second of log-mel (1, n_mels, frames), values in a log-mel's range."""
    return np.random.default_rng(seed).uniform(-11.5, 2.0, (1, n_mels, INFER_FRAMES)).astype(np.float32)


def median_time(fn, runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


# ---------------------------------------------------------------------------- the PyTorch side
class TorchVocoder:
    """The official training loop's body of one model, on the ports in ``torch_vocoders.py``."""

    def __init__(self, model: str, variant: str, mel_path: str, seed: int = 0):
        import torch
        import torch_vocoders as tv

        torch.manual_seed(seed)
        self.torch, self.model = torch, model
        mels = np.load(mel_path)
        self.basis = torch.from_numpy(mels["basis"])  # (80, 513): the generator's input mel
        self.loss_basis = torch.from_numpy(mels["loss_basis"])  # HiFi-GAN's fmax_for_loss = None
        self.window = torch.hann_window(1024)
        if model == "hifigan":
            self.make_g = lambda: tv.HiFiGANGenerator(tv.HIFIGAN_VARIANTS[variant])  # noqa: E731
            self.g = self.make_g()
            self.mpd, self.msd = tv.MultiPeriodDiscriminator(), tv.MultiScaleDiscriminator()
            self.d_params = [*self.mpd.parameters(), *self.msd.parameters()]
            make = lambda params: torch.optim.AdamW(params, 2e-4, betas=(0.8, 0.99))  # noqa: E731
        else:
            self.make_g = tv.MelGANGenerator
            self.g, self.d = self.make_g(), tv.MelGANDiscriminator()
            self.d_params = list(self.d.parameters())
            make = lambda params: torch.optim.Adam(params, 1e-4, betas=(0.5, 0.9))  # noqa: E731
        self.g_opt, self.d_opt = make(self.g.parameters()), make(self.d_params)
        self.params = {"generator": tv.n_params(self.g), "discriminator": sum(p.numel() for p in self.d_params)}

    def mel(self, y, basis, log10: bool = False):
        """The official mel_spectrogram (HiFi-GAN's meldataset.py; MelGAN's Audio2Mel): y (B, T) -> (B, 80, T / hop)."""
        torch = self.torch
        pad = (1024 - HOP) // 2
        y = torch.nn.functional.pad(y.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(y, 1024, hop_length=HOP, win_length=1024, window=self.window, center=False,
                          pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
        if log10:  # MelGAN: |X|, log10
            return torch.log10(torch.clamp(torch.matmul(basis, spec.abs()), min=1e-5))
        spec = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)
        return torch.log(torch.clamp(torch.matmul(basis, spec), min=1e-5))

    def freeze_d(self, frozen: bool) -> None:
        for p in self.d_params:
            p.requires_grad_(not frozen)

    def step(self, y_bt) -> dict:
        return self.hifigan_step(y_bt) if self.model == "hifigan" else self.melgan_step(y_bt)

    def hifigan_step(self, y_bt) -> dict:
        """jik876/hifi-gan train.py, one iteration (the mels computed here rather than in the data loader)."""
        torch, F = self.torch, self.torch.nn.functional
        with torch.no_grad():
            x = self.mel(y_bt, self.basis)
            y_mel = self.mel(y_bt, self.loss_basis)
        y = y_bt.unsqueeze(1)
        y_g_hat = self.g(x)
        y_g_hat_mel = self.mel(y_g_hat.squeeze(1), self.loss_basis)

        self.d_opt.zero_grad(set_to_none=True)
        loss_disc_all = 0
        for disc in (self.mpd, self.msd):
            (real, _), (fake, _) = disc(y), disc(y_g_hat.detach())
            loss_disc_all = loss_disc_all + sum(torch.mean((1 - r) ** 2) + torch.mean(g**2)
                                                for r, g in zip(real, fake, strict=True))
        loss_disc_all.backward()
        self.d_opt.step()

        self.g_opt.zero_grad(set_to_none=True)
        self.freeze_d(True)
        loss_mel = F.l1_loss(y_mel, y_g_hat_mel) * 45
        loss_gen_all = loss_mel
        for disc in (self.mpd, self.msd):
            (_, fmap_r), (fake, fmap_g) = disc(y), disc(y_g_hat)
            loss_fm = 2 * sum(torch.mean(torch.abs(rl - gl)) for dr, dg in zip(fmap_r, fmap_g, strict=True)
                              for rl, gl in zip(dr, dg, strict=True))
            loss_gen_all = loss_gen_all + loss_fm + sum(torch.mean((1 - g) ** 2) for g in fake)
        loss_gen_all.backward()
        self.g_opt.step()
        self.freeze_d(False)
        return {"d_loss": loss_disc_all.item(), "g_loss": loss_gen_all.item(), "mel_l1": loss_mel.item() / 45}

    def melgan_step(self, x_t) -> dict:
        """melgan-neurips scripts/train.py, one iteration (n_layers_D 4, num_D 3, lambda_feat 10)."""
        torch, F = self.torch, self.torch.nn.functional
        x_t = x_t.unsqueeze(1)
        s_t = self.mel(x_t.squeeze(1), self.loss_basis, log10=True).detach()  # fmax None, as Audio2Mel
        x_pred_t = self.g(s_t)
        with torch.no_grad():
            s_error = F.l1_loss(s_t, self.mel(x_pred_t.squeeze(1).detach(), self.loss_basis, log10=True)).item()

        d_fake_det = self.d(x_pred_t.detach())
        d_real = self.d(x_t)
        loss_d = sum(F.relu(1 + scale[-1]).mean() for scale in d_fake_det)
        loss_d = loss_d + sum(F.relu(1 - scale[-1]).mean() for scale in d_real)
        self.d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.d_opt.step()

        self.freeze_d(True)
        d_fake = self.d(x_pred_t)
        loss_g = sum(-scale[-1].mean() for scale in d_fake)
        wt = 1.0 / 3 * 4.0 / (4 + 1)
        loss_feat = sum(wt * F.l1_loss(d_fake[i][j], d_real[i][j].detach())
                        for i in range(3) for j in range(len(d_fake[i]) - 1))
        self.g.zero_grad(set_to_none=True)
        (loss_g + 10 * loss_feat).backward()
        self.g_opt.step()
        self.freeze_d(False)
        return {"d_loss": loss_d.item(), "g_loss": loss_g.item(), "fm": loss_feat.item(), "mel_l1": s_error}

    def inference_generator(self):
        """A copy of the generator without weight norm, in eval mode, as the official inference scripts."""
        from torch.nn.utils import remove_weight_norm

        g = self.make_g()
        g.load_state_dict(self.g.state_dict())
        g.eval()
        for m in g.modules():
            if hasattr(m, "weight_g"):
                remove_weight_norm(m)
        return g


def _worker_sides():
    sys.path.insert(0, str(HERE))
    import worker

    class JaxVocoderSide(worker.JaxSide):
        def setup(self, model: str, variant: str, batch: int, segment_samples: int, train: bool = True,
                  warmup: bool = True) -> dict:
            from audiogan.models import conv
            from audiogan.training import vocoder_step
            from audiogan.training.vocoder_config import VocoderConfig

            jax = self.jax
            jax.numpy.zeros(1).block_until_ready()
            baseline = worker.baseline_rss_mib()
            cfg = VocoderConfig(model=model, variant=variant, batch_size=batch, sample_rate=SAMPLE_RATE,
                                segment_samples=segment_samples)
            self.vocoder, self.state = vocoder_step.create(cfg, steps_per_epoch=1000)
            reply = {"baseline_rss_mib": baseline, "conv_form": conv.resolve_form(),
                     "params": vocoder_step.summary(cfg), "loss": cfg.loss}
            if train:
                self.real = jax.device_put(segments(batch, segment_samples), self.vocoder.data_sharding)
                t0 = time.perf_counter()
                lowered = vocoder_step.make_step(self.vocoder).lower(self.state, self.real)
                cost = lowered.cost_analysis()
                cost = cost[0] if isinstance(cost, list | tuple) else cost
                self.step_fn = lowered.compile()
                reply["compile_s"] = time.perf_counter() - t0
                reply["flops"] = float(cost["flops"]) if cost and "flops" in cost else None
                if warmup:
                    reply["first_step_s"] = self.step()["s"]
            return reply

        def infer(self, runs: int, weight_norm: bool = False) -> dict:
            """``runs`` timed calls; the first call also prepares and compiles the generator (untimed)."""
            if not hasattr(self, "synthesise"):
                self.compile_s = self.prepare_infer(weight_norm)
            median, times = median_time(self.synthesise, runs)
            return {"s": median, "times_s": times, "compile_s": self.compile_s}

        def prepare_infer(self, weight_norm: bool) -> float:
            from flax import nnx

            from audiogan.models import conv

            generator = self.vocoder.generator(self.state)
            if not weight_norm:
                generator.remove_weight_norm()
            graph, params = nnx.split(generator)
            mel = self.jax.device_put(infer_mel(self.vocoder.config.n_mels))
            fn = conv.jit(lambda params, mel_bft: nnx.merge(graph, params)(mel_bft.transpose(0, 2, 1)))
            t0 = time.perf_counter()
            compiled = fn.lower(params, mel).compile()
            compile_s = time.perf_counter() - t0
            self.synthesise = lambda: compiled(params, mel).block_until_ready()
            self.synthesise()
            return compile_s

        def finish(self) -> dict:
            metrics = getattr(self, "metrics", {})
            return {"losses": {k: float(v) for k, v in self.jax.device_get(metrics).items() if np.ndim(v) == 0}}

    class TorchVocoderSide(worker.TorchSide):
        def setup(self, model: str, variant: str, batch: int, segment_samples: int, mel_path: str,
                  train: bool = True, warmup: bool = True) -> dict:
            baseline = worker.baseline_rss_mib()
            self.vocoder = TorchVocoder(model, variant, mel_path)
            self.real = self.torch.from_numpy(segments(batch, segment_samples))
            reply = {"baseline_rss_mib": baseline, "params": self.vocoder.params, "torch": self.torch.__version__,
                     "threads": self.torch.get_num_threads()}
            if train and warmup:
                reply["first_step_s"] = self.step()["s"]
            return reply

        def step(self) -> dict:
            t0 = time.perf_counter()
            self.metrics = self.vocoder.step(self.real)
            return {"s": time.perf_counter() - t0}

        def infer(self, runs: int) -> dict:
            torch = self.torch
            if not hasattr(self, "g"):
                self.g, self.mel = self.vocoder.inference_generator(), torch.from_numpy(infer_mel())
                with torch.inference_mode():
                    self.g(self.mel)
            with torch.inference_mode():
                median, times = median_time(lambda: self.g(self.mel), runs)
            return {"s": median, "times_s": times}

        def finish(self) -> dict:
            return {"losses": getattr(self, "metrics", {})}

    return worker, JaxVocoderSide, TorchVocoderSide


def serve(framework: str) -> None:
    worker, jax_side, torch_side = _worker_sides()
    worker.serve(jax_side() if framework == "jax" else torch_side(), commands=("infer",))


# ---------------------------------------------------------------------------- the parent
def write_mels(path: Path) -> None:
    """The mel bases both frameworks use (librosa's Slaney filters, via audiogan), for the torch worker."""
    from audiogan.audio.mel import MelSettings, mel_filters

    settings = MelSettings.hifigan()
    np.savez(path, basis=mel_filters(settings), loss_basis=mel_filters(settings.for_loss()))


def measure(args, name: str, peaks: dict, mel_path: Path) -> dict:
    from train_step import Worker, machine

    model, variant = name.split("/")
    load_before = os.getloadavg()
    script = [str(Path(__file__).resolve()), "--worker"]
    workers = {"jax": Worker(sys.executable, "jax", script=script),
               "torch": Worker(args.torch_python, "torch", script=script)}
    train = not args.no_train
    try:
        common = dict(model=model, variant=variant, batch=args.batch, segment_samples=args.segment_samples,
                      train=train, warmup=args.warmup > 0)
        setup = {"jax": workers["jax"]("setup", **common),
                 "torch": workers["torch"]("setup", **common, mel_path=str(mel_path))}
        times = {"jax": [], "torch": []}
        loads = [os.getloadavg()[0]]
        infer_compile_s = None
        if train:
            for w in workers.values():
                w("reset_peak")
            order, i = list(workers), 0
            while i < args.steps or min(sum(t) for t in times.values()) < args.min_seconds:
                for f in order if i % 2 == 0 else order[::-1]:
                    times[f].append(workers[f]("step")["s"])
                loads.append(os.getloadavg()[0])
                i += 1
        infer = {"jax": [], "torch": []}
        turns = {"jax": [], "torch": []}
        order = ["torch", "jax"] if args.infer_torch_first else ["jax", "torch"]
        kw = {"jax": {"weight_norm": args.jax_weight_norm}, "torch": {}}
        for i in range(args.infer_rounds):
            for f in order if i % 2 == 0 else order[::-1]:
                reply = workers[f]("infer", runs=args.infer_runs, **kw[f])
                infer[f] += reply["times_s"]
                turns[f].append(reply["s"])
                infer_compile_s = reply.get("compile_s", infer_compile_s)
            loads.append(os.getloadavg()[0])
        done = {f: w("finish") for f, w in workers.items()}
    finally:
        for w in workers.values():
            w.close()
    record = {"model": model, "variant": variant, "batch": args.batch, "segment_samples": args.segment_samples,
              "loss": setup["jax"]["loss"]}
    if train:
        jax_s, torch_s = statistics.median(times["jax"]), statistics.median(times["torch"])
        flops = setup["jax"].get("flops")
        record |= {
            "jax_s": jax_s, "torch_s": torch_s, "ratio": jax_s / torch_s,
            "ratio_per_turn": statistics.median(a / b for a, b in zip(times["jax"], times["torch"], strict=True)),
            "steps": len(times["jax"]), "compile_s": setup["jax"]["compile_s"],
            "jax_first_step_s": setup["jax"].get("first_step_s"),
            "torch_first_step_s": setup["torch"].get("first_step_s"), "warmup": args.warmup,
            "step_gflop": flops / 1e9 if flops else None,
            "jax_gflops": flops / jax_s / 1e9 if flops else None,
            "torch_gflops": flops / torch_s / 1e9 if flops else None,
            "jax_times_s": times["jax"], "torch_times_s": times["torch"],
            "jax_steps_peak_rss_mib": done["jax"]["steps_peak_rss_mib"],
            "torch_steps_peak_rss_mib": done["torch"]["steps_peak_rss_mib"],
        }
    seconds = INFER_FRAMES * HOP / SAMPLE_RATE
    infer_s = {f: statistics.median(t) for f, t in infer.items()}
    record |= {
        "rtf_jax": seconds / infer_s["jax"], "rtf_torch": seconds / infer_s["torch"],
        "infer_jax_s": infer_s["jax"], "infer_torch_s": infer_s["torch"],
        "infer_ratio_per_turn": statistics.median(a / b for a, b in zip(turns["jax"], turns["torch"], strict=True)),
        "infer_compile_s": infer_compile_s, "infer_runs": args.infer_runs, "infer_rounds": args.infer_rounds,
        "infer_jax_form": "weight_norm" if args.jax_weight_norm else "folded",
        "infer_jax_times_s": infer["jax"], "infer_torch_times_s": infer["torch"],
        "infer_batch": 1, "infer_samples": INFER_FRAMES * HOP, "sample_rate": SAMPLE_RATE,
        "jax_peak_rss_mib": done["jax"]["peak_rss_mib"], "torch_peak_rss_mib": done["torch"]["peak_rss_mib"],
        "jax_baseline_rss_mib": setup["jax"]["baseline_rss_mib"],
        "torch_baseline_rss_mib": setup["torch"]["baseline_rss_mib"],
        "params_jax": setup["jax"]["params"], "params_torch": setup["torch"]["params"],
        "jax_losses": done["jax"]["losses"], "torch_losses": done["torch"]["losses"],
        "conv_form": setup["jax"]["conv_form"], "min_seconds": args.min_seconds,
        "peak_gemm_gflops": peaks["jax"]["gemm_gflops"], "torch_gemm_gflops": peaks["torch"]["gemm_gflops"],
        "load_avg": {"before": list(load_before), "after": list(os.getloadavg()),
                     "median_1min": statistics.median(loads), "max_1min": max(loads)},
        "machine": machine() | {"jax": peaks["jax"]["jax"], "torch": peaks["torch"]["torch"],
                                "torch_threads": peaks["torch"]["threads"]},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return record


def vs_torch(args) -> int:
    sys.path.insert(0, str(HERE))
    import tempfile

    from train_step import Worker

    if not Path(args.torch_python).exists():
        raise SystemExit(f"{args.torch_python} does not exist: run `make bench-torch` first (or pass --torch-python)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    peaks = {}
    for f, python in (("jax", sys.executable), ("torch", args.torch_python)):
        w = Worker(python, f)
        try:
            peaks[f] = w("peak")
        finally:
            w.close()
    with tempfile.TemporaryDirectory() as tmp:
        mel_path = Path(tmp) / "mels.npz"
        write_mels(mel_path)
        for name in args.models:
            try:
                record = measure(args, name, peaks, mel_path)
            except RuntimeError as e:
                print(f"{name}: FAILED {e}", flush=True)
                continue
            with open(out, "a") as f:
                f.write(json.dumps(record) + "\n")
            print(summary_line(record), flush=True)
    return 0


def summary_line(r: dict) -> str:
    train = (f"jax {r['jax_s']:.2f} s, torch {r['torch_s']:.2f} s, ratio {r['ratio']:.2f} over {r['steps']} turns, "
             f"compile {r['compile_s']:.0f} s; " if "jax_s" in r else "")
    return (f"{r['model']}/{r['variant']} b{r['batch']}: {train}rtf jax {r['rtf_jax']:.2f}x ({r['infer_jax_form']}), "
            f"torch {r['rtf_torch']:.2f}x, jax/torch per turn {r['infer_ratio_per_turn']:.3f} over "
            f"{r['infer_rounds']} x {r['infer_runs']} calls; load {r['load_avg']['median_1min']:.1f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vs-torch", action="store_true", help="JAX against PyTorch, alternating (the only mode)")
    ap.add_argument("--worker", choices=["jax", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=[*MODELS, "hifigan/v2"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--segment-samples", type=int, default=8192)
    ap.add_argument("--steps", type=int, default=3, help="at least this many timed turns each")
    ap.add_argument("--min-seconds", type=float, default=20.0, help="and more until each has timed this long")
    ap.add_argument("--warmup", type=int, choices=[0, 1], default=1,
                    help="an untimed first step each (0: none; for steps of minutes the first is as long as the rest)")
    ap.add_argument("--infer-runs", type=int, default=5, help="timed inference calls per turn")
    ap.add_argument("--infer-rounds", type=int, default=10, help="inference turns each, alternating")
    ap.add_argument("--infer-torch-first", action="store_true", help="PyTorch takes the first inference turn")
    ap.add_argument("--jax-weight-norm", action="store_true",
                    help="JAX infers with the training generator (weight norm computed at every call)")
    ap.add_argument("--inference-only", "--no-train", dest="no_train", action="store_true",
                    help="time inference alone, without the training steps (minutes each)")
    ap.add_argument("--torch-python", default=str(HERE.parent / ".venv-torch" / "bin" / "python"))
    ap.add_argument("--out", default=str(RESULTS / "vocoder_vs_torch.jsonl"))
    args = ap.parse_args(argv)
    if args.worker:
        serve(args.worker)
        return 0
    if not args.vs_torch:
        ap.error("give --vs-torch")
    return vs_torch(args)


if __name__ == "__main__":
    raise SystemExit(main())
