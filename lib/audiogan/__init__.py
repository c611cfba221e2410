"""audiogan: adversarial audio synthesis in JAX, for research and teaching.

Data flows one way, and the packages follow it: ``datasets`` (sources -> clips -> batches) and
``models`` (one module per family) -> ``config`` (a run's settings) -> ``runs`` (the run folder) ->
``training`` (losses, the jit-compiled step, the loop) -> ``evaluation``, ``listening``, ``teaching``
(read run folders) -> ``notebook``, ``pipeline``, ``sweep`` and ``cli`` on top. Importing audiogan
changes no process-wide setting (see :mod:`audiogan.xla`).
"""

from audiogan.config import RunConfig
from audiogan.errors import ConfigError

__version__ = "0.1.0"
__all__ = ["ConfigError", "RunConfig", "__version__"]
