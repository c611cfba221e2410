"""The XLA:CPU settings audiogan's programs compile with, per compilation and never process-wide on import.

Three settings, each asked for only where this jaxlib knows it:
- every convolution through Eigen rather than YNNPACK (``xla_cpu_experimental_ynn_fusion_type`` keeps
  YNNPACK for dots and reductions): YNNPACK's 2-D convolutions are several times slower at SpecGAN's shapes;
- the memory-optimised instruction order: the same step time with fewer temporaries on a laptop's cores;
- for the convolutional families' steps, the elemental fusion emitters: less memory to compile and hold.

:func:`compiler_options` gives them to ``jax.jit`` (through :func:`audiogan.models.conv.jit`), so they reach
audiogan's own programs whatever the process's flags. Functions a user compiles themselves get the first one
only from ``XLA_FLAGS``, which XLA reads once, when JAX starts: the project's entry points (``make``
targets, ``python -m audiogan.cli...``, the notebooks' set-up cell) call :func:`set_process_flags` first;
``benchmarks/README.md`` has the measurements behind each choice.
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


def set_process_flags(environ: dict | None = None) -> bool:
    """Append ``--{OPTION}={YNN_FUSION_TYPES}`` to ``XLA_FLAGS`` unless the user set that flag already or
    ``AUDIOGAN_XLA_FLAGS=0``; True if it was appended. Only entry points call this, before JAX starts."""
    environ = os.environ if environ is None else environ
    flags = environ.get("XLA_FLAGS", "")
    if environ.get("AUDIOGAN_XLA_FLAGS", "1") == "0" or OPTION in flags:
        return False
    environ["XLA_FLAGS"] = f"{flags} --{OPTION}={YNN_FUSION_TYPES}".strip()
    return True


def compiler_options(backend: str, elemental_fusions: bool = False) -> dict[str, str | bool]:
    """Per-compilation options for audiogan's programs on ``backend`` (``jax.jit(..., compiler_options=...)``):
    on CPU, convolutions through Eigen, the memory-optimised order and, with ``elemental_fusions``, the
    elemental fusion emitters; on other backends none."""
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
    """Warn (and return True) when JAX had started its backend before :func:`set_process_flags`: then the
    flag has no effect on functions the user compiles in this process (audiogan's own still get it)."""
    jax = sys.modules.get("jax")
    try:
        started = jax is not None and jax._src.xla_bridge.backends_are_initialized()
    except AttributeError:  # another JAX: cannot tell
        return False
    if started:
        warnings.warn(
            "JAX started before audiogan.xla.set_process_flags(), so XLA:CPU keeps handing your own 2-D "
            "convolutions to YNNPACK (audiogan's compiled programs are unaffected). Call it before any JAX "
            "code, or set "
            f"XLA_FLAGS='--{OPTION}={YNN_FUSION_TYPES}' before starting Python.",
            stacklevel=3,
        )
    return started
