"""Convolutions for the audio GANs, in three numerically equal forms: "lax", "matmul" and "polyphase".

XLA on CPU runs long strided convolutions (WaveGAN's kernel 25, stride 4), their transposes, and above all
the gradient penalty's second derivative through them slower than PyTorch. Two of the forms rewrite every
layer, to every derivative order, as operations XLA runs fast:

- "polyphase" (:mod:`.polyphase`): stride-1 correlations with short kernels on the input cut into blocks of
  ``stride`` samples (space-to-depth), their derivatives routed by hand (:mod:`.correlation`);
- "matmul" (:mod:`.matmul`): one matrix product of patches (slices, pads, reshapes) per layer;
- "lax": ``lax.conv_general_dilated`` / ``lax.conv_transpose``, the native convolution.

Both rewrite a transposed convolution by its output phases (:mod:`.transposed`). ``settings.FORM`` picks the
form: "auto" (the default) is "polyphase" on CPU and GPU, "lax" on TPU; the environment variable
``AUDIOGAN_CONV_FORM=lax|matmul|polyphase|auto`` sets it at import, :func:`use_form` for a block of code, and
every function takes ``form=``. The form is read when a function is traced: a function jitted under one form
keeps it. 2-D convolutions need XLA:CPU's Eigen rather than YNNPACK, its default for them: the package's own
compiled functions pass :func:`compiler_options` (:mod:`audiogan.xla`). The shapes and paddings of
:func:`conv1d`, :func:`conv1d_transpose`, :func:`conv2d` and :func:`conv2d_transpose` are in :mod:`.forms`;
the measurements behind each choice in ``benchmarks/README.md``.
"""

from audiogan.models.conv import settings
from audiogan.models.conv.compiling import compiler_options, jit
from audiogan.models.conv.forms import conv1d, conv1d_transpose, conv2d, conv2d_transpose
from audiogan.models.conv.padding import same_padding
from audiogan.models.conv.settings import FORMS, LONG_KERNEL, polyphase_product, resolve_form, use_form

_LIVE_SETTINGS = ("FORM", "REMAT", "POLYPHASE_ROWS_PER_COLUMN")


def __getattr__(name: str):
    """``conv.FORM``, ``conv.REMAT`` and ``conv.POLYPHASE_ROWS_PER_COLUMN`` read their current value in
    :mod:`.settings` (set them there: ``conv.settings.FORM = ...``, or :func:`use_form`)."""
    if name in _LIVE_SETTINGS:
        return getattr(settings, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FORMS",
    "LONG_KERNEL",
    "compiler_options",
    "conv1d",
    "conv1d_transpose",
    "conv2d",
    "conv2d_transpose",
    "jit",
    "polyphase_product",
    "resolve_form",
    "same_padding",
    "settings",
    "use_form",
]
