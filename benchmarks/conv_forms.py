"""Time WaveGAN's convolutions in the "lax", "matmul" and "polyphase" forms of ``audiogan.models.conv``.

For each form: generator forward; discriminator forward + backward (gradient of the mean logit w.r.t. the
discriminator's parameters); generator forward + backward through the discriminator (the generator
update's gradient); and the WGAN-GP second derivative (gradient w.r.t. the discriminator's parameters of
the gradient penalty). Each is one ``jax.jit`` over split state, timed after one warm-up call (whose time,
compilation included, is reported too) as the median of ``--repeats`` calls with ``jax.block_until_ready``.

Equal outputs: each fast form in float32 is compared with the lax form (largest difference relative to the
largest magnitude over all outputs), and, unless ``--no-f64``, with the same computation in float64 (run
once per form, untimed). Through the generator's ReLUs float32 rounding can differ by ~1e-3 between any two
orderings of the sums, so the check is that the forms agree in float64 (to 1e-10) and that each fast
form in float32 is no further from the float64 result than the lax form (or within ``--tolerance``).
With the float64 reference everything runs under ``jax.enable_x64`` (the timed arrays stay float32), so that
the phase-shuffle shifts drawn from the same keys are the same in both precisions; the gradient penalty's
mixing weights are drawn once, outside.

    .venv/bin/python benchmarks/conv_forms.py                   # d=16, batch 16, clip 16384
    .venv/bin/python benchmarks/conv_forms.py --d 32 --batch 32 --json runs/conv_forms.json

Figures depend on the machine and its load: on a shared CPU read them as indicative.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from audiogan.models import conv, wavegan

FORMS = ("lax", "matmul", "polyphase")
FAST = FORMS[1:]  # each compared with "lax"
OPS = {
    "g_forward": "generator forward",
    "d_forward_backward": "discriminator forward + backward",
    "g_forward_backward": "generator forward + backward (through D)",
    "gp_second_derivative": "gradient penalty, grad w.r.t. D params",
}


def build(d: int, batch: int, clip_samples: int, seed: int = 0):
    g = wavegan.Generator(wavegan.LATENT_DIM, d, clip_samples, rngs=nnx.Rngs(seed))
    disc = wavegan.Discriminator(d, clip_samples, rngs=nnx.Rngs(seed + 1))
    key_z, key_real, key_d, key_gp = jax.random.split(jax.random.key(seed), 4)
    inputs = {
        "z_bd": wavegan.sample_latent(key_z, batch, wavegan.LATENT_DIM),
        "real_bt": jax.random.uniform(key_real, (batch, clip_samples), jnp.float32, minval=-1.0, maxval=1.0),
        "key_d": key_d,
        "alpha_b1": jax.random.uniform(key_gp, (batch, 1), jnp.float32),  # as losses.gradient_penalty draws it
    }
    return nnx.split(g, nnx.Param), nnx.split(disc, nnx.Param), inputs


def make_ops(g_split, d_split, inputs):
    """The four jitted functions of (generator params, discriminator params), traced under the current form."""
    (g_def, _), (d_def, _) = g_split, d_split
    z_bd, real_bt, key_d, alpha_b1 = inputs["z_bd"], inputs["real_bt"], inputs["key_d"], inputs["alpha_b1"]

    def g_forward(g_params, d_params):
        return nnx.merge(g_def, g_params)(z_bd)

    def d_forward_backward(g_params, d_params):
        return jax.grad(lambda p: nnx.merge(d_def, p)(real_bt, key=key_d).mean())(d_params)

    def g_forward_backward(g_params, d_params):
        disc = nnx.merge(d_def, d_params)
        return jax.grad(lambda p: -disc(nnx.merge(g_def, p)(z_bd), key=key_d).mean())(g_params)

    def gp_second_derivative(g_params, d_params):
        """losses.gradient_penalty's computation, with its mixing weights given."""
        fake_bt = nnx.merge(g_def, g_params)(z_bd)
        x_hat_bt = real_bt + alpha_b1 * (fake_bt - real_bt)

        def gp(p):
            disc = nnx.merge(d_def, p)
            grads_bt = jax.grad(lambda x: jnp.sum(disc(x, key=key_d)))(x_hat_bt)
            return jnp.mean((jnp.sqrt(jnp.sum(grads_bt**2, axis=1) + 1e-12) - 1.0) ** 2)

        return jax.grad(gp)(d_params)

    fns = {
        "g_forward": g_forward,
        "d_forward_backward": d_forward_backward,
        "g_forward_backward": g_forward_backward,
        "gp_second_derivative": gp_second_derivative,
    }
    return {name: jax.jit(fn) for name, fn in fns.items()}


def time_call(fn, args, repeats: int) -> tuple[float, float, list[float], object]:
    """(first call s, median s, all timed calls s, output)."""
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return first, statistics.median(times), times, out


def relative_difference(a, b) -> float:
    """max |a - b| / max |a| over all leaves of two pytrees."""
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    diff = max(float(jnp.abs(x - y).max()) for x, y in zip(leaves_a, leaves_b, strict=True))
    scale = max(float(jnp.abs(x).max()) for x in leaves_a)
    return diff / max(scale, np.finfo(np.float32).tiny)


def _to_float64(tree):
    return jax.tree.map(lambda a: a.astype(jnp.float64) if a.dtype == jnp.float32 else a, tree)


def run(d: int, batch: int, clip_samples: int, repeats: int, ops: list[str], f64: bool) -> dict:
    g_split, d_split, inputs = build(d, batch, clip_samples)
    args = (g_split[1], d_split[1])
    results: dict = {op: {} for op in ops}
    outputs: dict = {op: {} for op in ops}
    for form in FORMS:
        with conv.use_form(form):
            fns = make_ops(g_split, d_split, inputs)
            for op in ops:
                first, median, times, out = time_call(fns[op], args, repeats)
                assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(out)), f"{op} is not float32"
                results[op][form] = {"first_s": first, "median_s": median, "times_s": times}
                outputs[op][form] = out
                print(f"  {form:6s} {OPS[op]}: {median * 1e3:.1f} ms (first call {first:.1f} s)", flush=True)
    for op in ops:
        for form in FAST:
            results[op][f"{form}_speedup"] = results[op]["lax"]["median_s"] / results[op][form]["median_s"]
            results[op][f"{form}_max_rel_diff"] = relative_difference(outputs[op][form], outputs[op]["lax"])
    if not f64:
        return results
    print("  float64 reference (untimed) ...", flush=True)
    g64, d64 = (g_split[0], _to_float64(g_split[1])), (d_split[0], _to_float64(d_split[1]))
    inputs64 = _to_float64(inputs)
    reference = {}
    for form in FORMS:
        with conv.use_form(form):
            fns = make_ops(g64, d64, inputs64)
            reference[form] = {op: jax.block_until_ready(fns[op](g64[1], d64[1])) for op in ops}
    for op in ops:
        truth = reference["lax"][op]
        for form in FAST:
            results[op][f"{form}_f64_rel_diff"] = relative_difference(reference[form][op], truth)
        for form in FORMS:
            results[op][f"{form}_f32_error"] = relative_difference(_to_float64(outputs[op][form]), truth)
    return results


def check(results: dict, tolerance: float) -> bool:
    """Every fast form equal to the lax form: in float32 within ``tolerance``, or (with the float64
    reference) equal in float64 and no less accurate in float32 than the lax form."""
    for r in results.values():
        for form in FAST:
            if r[f"{form}_max_rel_diff"] <= tolerance:
                continue
            if f"{form}_f64_rel_diff" not in r or r[f"{form}_f64_rel_diff"] > 1e-10:
                return False
            if r[f"{form}_f32_error"] > max(r["lax_f32_error"], tolerance):
                return False
    return True


def markdown(results: dict, header: str) -> str:
    f64 = all("lax_f32_error" in r for r in results.values())
    columns = ["operation", *(f"{f} (ms)" for f in FORMS), *(f"lax / {f}" for f in FAST),
               *(f"{f} vs lax (f32)" for f in FAST)]
    if f64:
        columns += [*(f"{f} vs lax (f64)" for f in FAST), *(f"{f} f32 error" for f in FORMS)]
    lines = [header, "", "| " + " | ".join(columns) + " |", "|---" + "|---:" * (len(columns) - 1) + "|"]
    for op, r in results.items():
        cells = [OPS[op], *(f"{r[f]['median_s'] * 1e3:.1f}" for f in FORMS),
                 *(f"{r[f + '_speedup']:.2f}x" for f in FAST), *(f"{r[f + '_max_rel_diff']:.1e}" for f in FAST)]
        if f64:
            cells += [*(f"{r[f + '_f64_rel_diff']:.1e}" for f in FAST), *(f"{r[f + '_f32_error']:.1e}" for f in FORMS)]
        lines.append("| " + " | ".join(cells) + " |")
    if f64:
        lines += ["", "Differences: max |a - b| / max |b| over all outputs; errors: against the float64 lax form."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--d", type=int, default=16, help="model width (paper: 64)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--clip-samples", type=int, default=16384, choices=wavegan.CLIP_SAMPLES)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls after the warm-up (median)")
    parser.add_argument("--ops", nargs="+", default=list(OPS), choices=list(OPS))
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="float32 relative difference always accepted")
    parser.add_argument("--no-f64", dest="f64", action="store_false", help="skip the float64 reference")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    device = jax.devices()[0]
    header = (
        f"WaveGAN d={args.d}, batch {args.batch}, clip {args.clip_samples}; {device.platform} "
        f"({device.device_kind}, {os.cpu_count()} cores), jax {jax.__version__}; median of {args.repeats}"
    )
    print(header, flush=True)
    with jax.enable_x64(args.f64):
        results = run(args.d, args.batch, args.clip_samples, args.repeats, args.ops, args.f64)
    print()
    print(markdown(results, header))
    equal = check(results, args.tolerance)
    print(f"\nEqual outputs: {'yes' if equal else 'NO'}")
    report = {
        "d": args.d, "batch": args.batch, "clip_samples": args.clip_samples, "repeats": args.repeats,
        "platform": device.platform, "device_kind": device.device_kind, "cpu_count": os.cpu_count(),
        "machine": platform.machine(), "jax": jax.__version__, "equal": equal, "tolerance": args.tolerance,
        "results": results,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    raise SystemExit(0 if main()["equal"] else 1)
