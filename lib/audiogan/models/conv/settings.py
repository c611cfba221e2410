"""Which form a convolution takes, and how the polyphase form computes a layer: the package's settings.

Read from the environment at import (``AUDIOGAN_CONV_FORM``, ``AUDIOGAN_CONV_REMAT``,
``AUDIOGAN_POLYPHASE_ROWS``) and kept here only, so that a test or a script changes them in one place. The
other modules read them as ``settings.FORM`` when a function is traced, never as a copy taken at import.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import jax

FORMS = ("auto", "lax", "matmul", "polyphase")
# The polyphase form runs a layer as XLA's convolution where its product has at least this many output rows
# (batch x positions) per output column, else as patches times the weight matrix (polyphase_product).
POLYPHASE_ROWS_PER_COLUMN = float(os.environ.get("AUDIOGAN_POLYPHASE_ROWS", "4"))
LONG_KERNEL = 64  # 1-D kernels at least this long compute ~K / stride outputs per matrix row


def _check_form(form: str, source: str) -> str:
    if form not in FORMS:
        raise ValueError(f"{source} must be one of {FORMS}, got {form!r}")
    return form


FORM = _check_form(os.environ.get("AUDIOGAN_CONV_FORM", "auto"), "AUDIOGAN_CONV_FORM")
# Recompute the matmul form's patches in the backward pass rather than keep them (matmul._rematerialised).
REMAT = os.environ.get("AUDIOGAN_CONV_REMAT", "1") != "0"


def resolve_form(form: str | None = None) -> str:
    """The form a call uses: ``form``, else ``FORM``; "auto" is "polyphase" on CPU and GPU (measured fastest
    there, see benchmarks/README.md), "lax" on TPU (not measured)."""
    form = _check_form(FORM if form is None else form, "form")
    if form == "auto":
        backend = jax.default_backend()
        return "lax" if backend == "tpu" else "polyphase"
    return form


@contextlib.contextmanager
def use_form(form: str) -> Iterator[None]:
    """Set ``FORM`` for the block (for functions traced inside it)."""
    global FORM
    previous, FORM = FORM, _check_form(form, "form")
    try:
        yield
    finally:
        FORM = previous


def polyphase_product(n_rows: int, n_cols: int, rows_per_column: float | None = None) -> str:
    """How the polyphase form computes a layer whose product has ``n_rows`` output rows (batch x positions)
    and ``n_cols`` output columns: "conv" (XLA's stride-1 convolution) where the activations outweigh the
    kernel (``n_rows >= POLYPHASE_ROWS_PER_COLUMN * n_cols``), "matmul" (patches times the weight matrix),
    whose patches are then small, where the kernel does. At 4 rows per column (the default) WaveGAN d=64
    batch 16 runs its last two discriminator and first two generator layers as products of patches."""
    rows_per_column = POLYPHASE_ROWS_PER_COLUMN if rows_per_column is None else rows_per_column
    return "conv" if n_rows >= rows_per_column * n_cols else "matmul"
