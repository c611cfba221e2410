"""The XLA:CPU settings audiogan asks for: every convolution through Eigen, and (per compilation, in
:func:`compiler_options`) the memory-optimised instruction order and, for the convolutional models' steps,
the elemental fusion emitters.

XLA:CPU picks a library per operation (``DebugOptions.xla_cpu_experimental_ynn_fusion_type``): by default
YNNPACK for dots, reductions and 2-D convolutions (``INDIVIDUAL_CONVOLUTION``). At SpecGAN's shapes on 2
cores YNNPACK's 2-D convolutions run 5-10x slower than Eigen's (a 3 x 3 stride-1 correlation of 64 x 34 x
34 x 64 to 32 channels: 109 ms against 11 ms); without that type, convolutions go to Eigen, and dots and
reductions keep YNNPACK. 1-D convolutions were Eigen's already: the WaveGAN and classic GAN steps compile to
the same programs either way.

This module imports nothing from JAX: ``import audiogan`` calls :func:`request` before JAX starts its
backend (XLA reads ``XLA_FLAGS`` then, and never again), so that the setting holds for every function
compiled in the process, the training step included. Where JAX had started first, :func:`warn_if_late`
says so and how to mend it; audiogan's own compiled functions (the training step, ``generate``, the
convolution module's and the classifier's, all through :func:`audiogan.models.conv.jit`) pass the setting as
compiler options (:func:`compiler_options`) and get it either way, with the memory-optimised order beside it.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings

YNN_FUSION_TYPES = "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"
OPTION = "xla_cpu_experimental_ynn_fusion_type"
SCHEDULER_OPTION = "xla_cpu_scheduler_type"
MEMORY_OPTIMIZED = "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"
EMITTERS_OPTION = "xla_cpu_use_fusion_emitters"


def request(environ: dict | None = None) -> bool:
    """Append ``--{OPTION}={YNN_FUSION_TYPES}`` to ``XLA_FLAGS`` unless the user set that flag already or
    ``AUDIOGAN_XLA_FLAGS=0``; True if it was appended. Read by JAX when its backend starts, not after."""
    environ = os.environ if environ is None else environ
    flags = environ.get("XLA_FLAGS", "")
    if environ.get("AUDIOGAN_XLA_FLAGS", "1") == "0" or OPTION in flags:
        return False
    environ["XLA_FLAGS"] = f"{flags} --{OPTION}={YNN_FUSION_TYPES}".strip()
    return True


def compiler_options(backend: str, elemental_fusions: bool = False) -> dict[str, str | bool]:
    """Per-compilation options for audiogan's programs on ``backend`` (``jax.jit(..., compiler_options=...)``):
    on CPU, every convolution through Eigen (above), XLA:CPU's memory-optimised instruction order, and with
    ``elemental_fusions`` its elemental fusion emitters (below); on other backends none.

    XLA:CPU orders a program's instructions by default to expose concurrency between independent branches,
    at the price of keeping more intermediate results alive at once. On a laptop's few cores there is
    little such concurrency to gain: the memory-optimised order (a depth-first schedule) gave the same step
    times (0.97-1.03x) with 16-35% fewer temporary bytes in the one-critic-step training step (WaveGAN d=16
    batch 16: 88 -> 69 MiB; SpecGAN d=64: 588 -> 406 MiB; ``benchmarks/README.md``). The boolean flag
    ``xla_cpu_enable_concurrency_optimized_scheduler=false`` does the same only process-wide (in
    ``XLA_FLAGS``): per compilation, XLA merges a false boolean as "unset", so the enum option is used
    here, and only where this jaxlib knows it.

    XLA:CPU writes each fused loop with one of two code generators: by default its MLIR fusion emitters,
    or the older elemental IR emitter (``xla_cpu_use_fusion_emitters=False``). Compiling WaveGAN's d=16
    step, some 900 fused loops, the MLIR emitters took about 270 MiB more at the peak and left some 45
    MiB more resident afterwards, scattered through the heap where the allocator cannot return it (the
    training steps' peak memory at d=16 batch 16: 1.05 of PyTorch's -> 0.88-0.92). The elemental emitter
    compiles 0.1-1.6 s faster and gives the same numbers bit for bit, but its loops are slower: WaveGAN's steps
    1-3%, SpecGAN's 3-7%, the classic GAN's, mostly Adam's update of 35 million weights, 36%. So
    ``elemental_fusions`` is for the convolutional families' programs (:func:`audiogan.train.compiler_options`;
    ``benchmarks/README.md``, "The elemental fusion emitters"). Like the order, it is asked for only where
    this jaxlib knows the option."""
    if backend != "cpu":
        return {}
    options = {OPTION: YNN_FUSION_TYPES}
    if _accepts_option(SCHEDULER_OPTION, MEMORY_OPTIMIZED):
        options[SCHEDULER_OPTION] = MEMORY_OPTIMIZED
    if elemental_fusions and _accepts_option(EMITTERS_OPTION, False):
        options[EMITTERS_OPTION] = False
    return options


@functools.cache
def _accepts_option(option: str, value: str | bool) -> bool:
    """Whether this jaxlib's XLA compiles with ``option=value`` (an older or newer XLA may not know it)."""
    import jax
    import jax.numpy as jnp

    try:
        jax.jit(lambda x: x + 1).lower(jnp.zeros(1)).compile(compiler_options={option: value})
    except Exception:  # XLA reports an unknown option or value as a runtime error of its own kind
        return False
    return True


def warn_if_late() -> bool:
    """Warn (and return True) when :func:`request` came after JAX had started its backend: then it has no
    effect on the functions compiled in this process, and SpecGAN's 2-D convolutions run 5-10x slower."""
    jax = sys.modules.get("jax")
    try:
        started = jax is not None and jax._src.xla_bridge.backends_are_initialized()
    except AttributeError:  # another JAX: cannot tell
        return False
    if started:
        warnings.warn(
            "JAX started before audiogan was imported, so XLA:CPU keeps handing 2-D convolutions to YNNPACK "
            "(5-10x slower for SpecGAN on CPU). Import audiogan before running any JAX code, or set "
            f"XLA_FLAGS='--{OPTION}={YNN_FUSION_TYPES}' before starting Python.",
            stacklevel=3,
        )
    return started
