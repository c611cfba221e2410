"""audiogan: adversarial audio synthesis in JAX, for research and teaching.

Data flows one way: ``audiogan.data`` (sources -> clips -> batches) -> ``audiogan.train`` (the
jit-compiled step and the loop, using ``audiogan.models`` and ``audiogan.losses``) ->
``audiogan.runs`` (the run folder) -> ``audiogan.plots`` and ``audiogan.metrics``.
"""

from audiogan import xla_flags

if xla_flags.request():  # before JAX starts: every convolution through Eigen on CPU
    xla_flags.warn_if_late()

from audiogan.config import ConfigError, RunConfig  # noqa: E402

__version__ = "0.1.0"
__all__ = ["ConfigError", "RunConfig", "__version__"]
