"""audiogan.models.conv: the "matmul" form equals the "lax" form in value, gradient and second derivative."""

from __future__ import annotations

import importlib
import itertools
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

from audiogan.models import conv, wavegan
from audiogan.models.conv import polyphase
from jaxprs import eqns

OUT_RTOL = 1e-5  # largest |difference| relative to the largest |value|
GRAD_RTOL = 1e-5
SECOND_RTOL = 1e-5  # achieved: <= 6e-7 for every case and derivative

# (name, op, x shape, kernel shape, stride, padding); 1-D kernels (K, in, out) / TF transpose (K, out, in),
# 2-D kernels (KH, KW, in, out). Tiny widths, WaveGAN's and SpecGAN's kernels, strides and paddings.
CASES = [
    ("conv1d k25 s4", conv.conv1d, (2, 64, 3), (25, 3, 4), 4, "SAME"),  # 10|11
    ("conv1d k25 s2", conv.conv1d, (2, 32, 2), (25, 2, 3), 2, "SAME"),
    ("conv1d k25 s1", conv.conv1d, (2, 64, 3), (25, 3, 2), 1, "SAME"),  # the 'nn' layers: 12|12
    ("conv1d k512 s1 post filter", conv.conv1d, (2, 1024, 1), (512, 1, 1), 1, "SAME"),  # 255|256, blocked
    ("conv1d k25 s4 explicit", conv.conv1d, (2, 61, 2), (25, 2, 3), 4, (11, 11)),  # PyTorch's padding
    ("conv1d k70 s3 explicit long", conv.conv1d, (2, 200, 2), (70, 2, 3), 3, (5, 30)),  # 23 outputs per row
    ("conv1d_transpose k25 s4", conv.conv1d_transpose, (2, 16, 3), (25, 4, 3), 4, "SAME"),  # 16 -> 64
    ("conv1d_transpose k25 s2", conv.conv1d_transpose, (2, 16, 2), (25, 3, 2), 2, "SAME"),
    ("conv1d_transpose k25 s4 valid", conv.conv1d_transpose, (2, 5, 2), (25, 3, 2), 4, "VALID"),
    ("conv2d k5 s2", conv.conv2d, (2, 16, 16, 2), (5, 5, 2, 3), 2, "SAME"),  # SpecGAN: 1|2
    ("conv2d k5 s2 odd", conv.conv2d, (2, 9, 12, 2), (5, 5, 2, 3), 2, "SAME"),
    ("conv2d k5 s2 one channel", conv.conv2d, (2, 16, 16, 1), (5, 5, 1, 3), 2, "SAME"),  # D's first: blocked
    ("conv2d k5 s2 one channel odd", conv.conv2d, (2, 9, 12, 1), (5, 5, 1, 3), 2, "SAME"),  # 5 x 6: not blocked
    ("conv2d_transpose k5 s2", conv.conv2d_transpose, (2, 8, 8, 3), (5, 5, 3, 2), 2, "SAME"),  # 3|2: 8 -> 16
    ("conv2d_transpose k5 s2 one channel", conv.conv2d_transpose, (2, 8, 8, 3), (5, 5, 3, 1), 2, "SAME"),  # G's last
    ("conv2d_transpose k5 s2 odd", conv.conv2d_transpose, (2, 5, 6, 2), (5, 5, 2, 3), 2, "SAME"),
    ("conv2d_transpose k5 s21 explicit", conv.conv2d_transpose, (2, 4, 6, 2), (5, 5, 2, 3), (2, 1), [(4, 2), (1, 3)]),
    # a padding wider than the kernel: no strided convolution has it as its adjoint (the phase kernel's path)
    ("conv2d_transpose k5 s2 wide pads", conv.conv2d_transpose, (2, 4, 5, 2), (5, 5, 2, 3), 2, [(1, 6), (2, 0)]),
]


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def _inputs(x_shape, k_shape, y_shape, seed=0):
    kx, kk, kr = jax.random.split(jax.random.key(seed), 3)
    return jax.random.normal(kx, x_shape), jax.random.normal(kk, k_shape), jax.random.normal(kr, y_shape)


# ---- numpy float64 references: the semantics both forms must have -----------------------------------------


def _np_conv(x, w, strides, pads):
    """Strided correlation of the zero-padded x with w (*K, in, out), n spatial dims."""
    n = x.ndim - 2
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    out = [(xp.shape[1 + i] - w.shape[i]) // strides[i] + 1 for i in range(n)]
    y = np.zeros((x.shape[0], *out, w.shape[-1]))
    for tap in itertools.product(*(range(k) for k in w.shape[:n])):
        window = tuple(slice(t, t + s * (o - 1) + 1, s) for t, s, o in zip(tap, strides, out, strict=True))
        y += xp[(slice(None), *window)] @ w[tap]
    return y


def _np_reference(op, x, w, stride, padding):
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    if op is conv.conv1d:
        pads = [conv.same_padding(x.shape[1], w.shape[0], stride)] if padding == "SAME" else [padding]
        return _np_conv(x, w, (stride,), pads)
    if op is conv.conv1d_transpose:  # TF: input t scatters the kernel at t * stride, then crop pad_left
        k, length = w.shape[0], x.shape[1]
        full = np.zeros((x.shape[0], (length - 1) * stride + k, w.shape[1]))
        for t in range(length):
            full[:, t * stride : t * stride + k] += np.einsum("bi,koi->bko", x[:, t], w)
        if padding == "VALID":
            return full
        lo, _ = conv.same_padding(stride * length, k, stride)
        return full[:, lo : lo + stride * length]
    strides = (stride, stride) if isinstance(stride, int) else stride
    if op is conv.conv2d:  # 'SAME' is TF's
        pads = [conv.same_padding(n, k, s) for n, k, s in zip(x.shape[1:3], w.shape[:2], strides, strict=True)]
        return _np_conv(x, w, strides, pads)
    # conv2d_transpose: the unflipped kernel on the zero-stuffed input, 'SAME' padding (k + s - 2) split 3|2
    stuffed = np.zeros((x.shape[0], *((n - 1) * s + 1 for n, s in zip(x.shape[1:3], strides, strict=True)), x.shape[3]))
    stuffed[:, :: strides[0], :: strides[1]] = x
    if padding == "SAME":
        padding = [(-(-(k + s - 2) // 2), (k + s - 2) // 2) for k, s in zip(w.shape[:2], strides, strict=True)]
    return _np_conv(stuffed, w, (1, 1), padding)


@pytest.mark.parametrize("form", ["lax", "matmul", "polyphase"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_both_forms_match_the_reference(case, form):
    _, op, x_shape, k_shape, stride, padding = case
    x, w, _ = _inputs(x_shape, k_shape, (1,))
    y = jax.jit(lambda x, w: op(x, w, stride, padding, form=form))(x, w)
    expected = _np_reference(op, x, w, stride, padding)
    assert y.shape == expected.shape and y.dtype == jnp.float32
    assert _rel(y, expected) < OUT_RTOL


# ---- matmul form against lax form: values, gradients, the gradient penalty's second derivative -------------


def _derivatives(op, stride, padding, form):
    """(out, d<out, r>/dx, d<out, r>/dw, d|d<out, r>/dx|^2/dw), one jit."""

    def inner(x, w, r):
        return jnp.sum(op(x, w, stride, padding, form=form) * r)

    def gp(w, x, r):
        return jnp.sum(jax.grad(inner)(x, w, r) ** 2)

    def all_of(x, w, r):
        grad_x, grad_w = jax.grad(inner, argnums=(0, 1))(x, w, r)
        return op(x, w, stride, padding, form=form), grad_x, grad_w, jax.grad(gp)(w, x, r)

    return jax.jit(all_of)


# The networks' own shapes (the odd, explicit and 'VALID' cases above only check values, to save time).
DERIVATIVE_CASES = [c for c in CASES if not any(word in c[0] for word in ("odd", "explicit", "valid"))]


# The polyphase form computes each layer by a native stride-1 convolution or by patches times a matrix,
# whichever its shape favours (conv.settings.polyphase_product): both products are tested on every shape.
FAST_FORMS = {"matmul": None, "polyphase, convolution": 0.0, "polyphase, patches": 1e9}


@pytest.mark.parametrize("form", FAST_FORMS)
@pytest.mark.parametrize("case", DERIVATIVE_CASES, ids=[c[0] for c in DERIVATIVE_CASES])
def test_fast_forms_equal_lax_form_to_the_second_derivative(case, form, monkeypatch):
    _, op, x_shape, k_shape, stride, padding = case
    if FAST_FORMS[form] is not None:
        monkeypatch.setattr(conv.settings, "POLYPHASE_ROWS_PER_COLUMN", FAST_FORMS[form])
    y_shape = jax.eval_shape(lambda x, w: op(x, w, stride, padding, form="lax"), *_inputs(x_shape, k_shape, (1,))[:2])
    x, w, r = _inputs(x_shape, k_shape, y_shape.shape)
    lax_out = _derivatives(op, stride, padding, "lax")(x, w, r)
    mm_out = _derivatives(op, stride, padding, form.split(",")[0])(x, w, r)
    for name, a, b, rtol in zip(
        ["output", "grad x", "grad kernel", "second derivative"], mm_out, lax_out,
        [OUT_RTOL, GRAD_RTOL, GRAD_RTOL, SECOND_RTOL], strict=True,
    ):
        assert a.shape == b.shape, name
        assert _rel(a, b) < rtol, (name, _rel(a, b))


def _conv_kinds(jaxpr) -> set:
    """(dimension numbers, window strides, dilations) of every convolution in a jaxpr, nested ones included."""
    return {(str(e.params["dimension_numbers"]), e.params["window_strides"], e.params["lhs_dilation"],
             e.params["rhs_dilation"]) for e in eqns(jaxpr) if e.primitive.name == "conv_general_dilated"}


@pytest.mark.parametrize("op", [conv.conv1d, conv.conv1d_transpose, conv.conv2d, conv.conv2d_transpose])
def test_polyphase_derivatives_stay_one_kind_of_stride_1_convolution(op, monkeypatch):
    """To the gradient penalty's second derivative, the polyphase form's convolutions are in XLA's canonical
    layout (the kernel gradient too, with channels as batch) and none dilates its input: left to autodiff,
    the derivatives of strided convolutions dilate the input, and the second derivative became convolutions
    windowed over the whole signal, both slow on XLA:CPU. All are stride-1 correlations, except for the 2-D
    strided convolution's own three (polyphase._strided_forward, conv2d_transpose being its input gradient):
    its forward pass, XLA's strided convolution, and its kernel gradient, XLA's convolution with the window
    dilated by the stride."""
    monkeypatch.setattr(conv.settings, "POLYPHASE_ROWS_PER_COLUMN", 0.0)
    two_d = op in (conv.conv2d, conv.conv2d_transpose)
    x_shape, k_shape = ((2, 16, 12, 3), (5, 5, 3, 4)) if two_d else ((2, 64, 3), (25, 3, 4))
    if op is conv.conv1d_transpose:
        k_shape = (25, 4, 3)
    y_shape = jax.eval_shape(lambda x, w: op(x, w, 2 if two_d else 4, "SAME", form="lax"),
                             *_inputs(x_shape, k_shape, (1,))[:2])
    x, w, r = _inputs(x_shape, k_shape, y_shape.shape)
    kinds = _conv_kinds(jax.make_jaxpr(_derivatives(op, 2 if two_d else 4, "SAME", "polyphase"))(x, w, r).jaxpr)
    n = 2 if two_d else 1
    layout = ("NHWC", "HWIO", "NHWC") if two_d else ("NWC", "WIO", "NWC")
    one = (1,) * n
    assert {k[0] for k in kinds} == {str(lax.conv_dimension_numbers((1,) * (n + 2), (1,) * (n + 2), layout))}
    assert {k[2] for k in kinds} == {one}, kinds  # no input dilated
    if two_d:  # conv2d_transpose is the input gradient of the strided convolution it is the adjoint of
        assert {k[1:] for k in kinds} == {(one, one, one), ((2, 2), one, one), (one, one, (2, 2))}, kinds
    else:
        assert {k[1:] for k in kinds} == {(one, one, one)}, kinds


@pytest.mark.slow
def test_one_channel_strided_layers_compute_two_by_two_outputs_at_a_time(monkeypatch):
    """SpecGAN's one-channel layers (the discriminator's first convolution, the generator's last transposed
    one) run output-blocked (polyphase._output_blocked), to the gradient penalty's second derivative: Eigen runs
    their four-channel blocks slowly. Layers with more input channels, or with so many output
    channels that the blocked kernel would be large (d=64), keep the plain polyphase form; the values of both
    are tested against lax above ("one channel" cases)."""
    blocked = []
    real = polyphase._output_blocked
    monkeypatch.setattr(polyphase, "_output_blocked", lambda w, spec: blocked.append(w.shape) or real(w, spec))

    def trace(op, x_shape, k_shape):
        y_shape = jax.eval_shape(lambda x, w: op(x, w, 2, "SAME", form="lax"), *_inputs(x_shape, k_shape, (1,))[:2])
        x, w, r = _inputs(x_shape, k_shape, y_shape.shape)
        blocked.clear()
        jax.make_jaxpr(_derivatives(op, 2, "SAME", "polyphase"))(x, w, r)
        return set(blocked)

    # sizes no other test uses, so that no cached trace hides the calls
    assert trace(conv.conv2d, (2, 12, 20, 1), (5, 5, 1, 16)) == {(5, 5, 1, 16)}  # F, T and T's derivatives
    assert trace(conv.conv2d_transpose, (2, 6, 10, 16), (5, 5, 16, 1)) == {(5, 5, 1, 16)}  # its adjoint's kernel
    assert trace(conv.conv2d, (2, 12, 20, 1), (5, 5, 1, 64)) == set()  # 256 channels blocked: d=64
    assert trace(conv.conv2d, (2, 12, 20, 2), (5, 5, 2, 16)) == set()  # 8 channels per input block
    assert trace(conv.conv2d, (2, 10, 20, 1), (5, 5, 1, 16)) == set()  # 5 output rows: no 2 x 2 blocks


@pytest.mark.parametrize("op", [conv.conv1d, conv.conv1d_transpose, conv.conv2d, conv.conv2d_transpose])
def test_polyphase_form_pads_no_copy_of_the_activations(op, monkeypatch):
    """The polyphase form's zero padding is the convolutions' own (the block convolution's too, its kernel led
    by zero taps), not a padded copy of every activation. To the gradient penalty's second derivative, only
    kernel-sized arrays are padded."""
    monkeypatch.setattr(conv.settings, "POLYPHASE_ROWS_PER_COLUMN", 0.0)
    two_d = op in (conv.conv2d, conv.conv2d_transpose)
    x_shape, k_shape = ((2, 32, 32, 3), (5, 5, 3, 4)) if two_d else ((2, 512, 3), (25, 3, 4))
    if op is conv.conv1d_transpose:
        k_shape = (25, 4, 3)
    stride = 2 if two_d else 4
    y_shape = jax.eval_shape(lambda x, w: op(x, w, stride, "SAME", form="lax"), *_inputs(x_shape, k_shape, (1,))[:2])
    x, w, r = _inputs(x_shape, k_shape, y_shape.shape)
    jaxpr = jax.make_jaxpr(_derivatives(op, stride, "SAME", "polyphase"))(x, w, r).jaxpr
    padded = [e.invars[0].aval.size for e in eqns(jaxpr) if e.primitive.name == "pad"]
    assert padded and max(padded) <= 2 * w.size < min(x.size, math.prod(y_shape.shape)), padded


@pytest.mark.parametrize("op", [conv.conv1d, conv.conv2d, conv.conv2d_transpose])
def test_polyphase_gradients_compile_to_canonical_convolutions_inside_a_loop(op, monkeypatch):
    """The critic updates run in a loop (``lax.fori_loop``). There XLA:CPU compiled a kernel gradient
    written as autodiff's transpose of the correlation to a naive emitted loop (dim_labels f0b_i0o->0bf),
    which is slow: every compiled convolution must be in the layout XLA runs
    through Eigen, batch-spatial-feature."""
    monkeypatch.setattr(conv.settings, "POLYPHASE_ROWS_PER_COLUMN", 0.0)
    two_d = op in (conv.conv2d, conv.conv2d_transpose)
    x_shape, k_shape = ((2, 8, 6, 3), (5, 5, 3, 4)) if two_d else ((2, 64, 3), (25, 3, 4))
    stride = 2 if two_d else 4
    x, w, _ = _inputs(x_shape, k_shape, (1,))

    def updates(w, x):
        def body(_, w):
            return w - 0.1 * jax.grad(lambda w: jnp.sum(op(x, w, stride, "SAME", form="polyphase") ** 2))(w)
        return jax.lax.fori_loop(0, 3, body, w)

    hlo = jax.jit(updates, compiler_options=conv.compiler_options()).lower(w, x).compile().as_text()
    labels = re.findall(r"convolution\(.*?dim_labels=([^,\s]+)", hlo)
    assert labels and set(labels) == {"b01f_01io->b01f" if two_d else "b0f_0io->b0f"}, labels


def test_matmul_form_has_no_convolution_gather_or_scatter():
    """Slices, pads, reshapes, concatenations and dots only, to the second derivative."""
    x, w, r = _inputs((2, 64, 3), (25, 3, 4), (2, 16, 4))
    xt, wt, rt = _inputs((2, 16, 3), (25, 4, 3), (2, 64, 4))
    text = str(jax.make_jaxpr(_derivatives(conv.conv1d, 4, "SAME", "matmul"))(x, w, r))
    text += str(jax.make_jaxpr(_derivatives(conv.conv1d_transpose, 4, "SAME", "matmul"))(xt, wt, rt))
    for primitive in ("conv_general_dilated", "gather", "scatter"):
        assert primitive not in text
    assert "dot_general" in text


# ---- choosing the form ----------------------------------------------------------------------------------------


def test_form_resolution_and_overrides(monkeypatch):
    monkeypatch.setattr(conv.settings, "FORM", "auto")
    assert conv.resolve_form() == ("lax" if jax.default_backend() == "tpu" else "polyphase")
    assert conv.resolve_form("lax") == "lax" and conv.resolve_form("matmul") == "matmul"
    with conv.use_form("lax"):
        assert conv.FORM == "lax" and conv.resolve_form() == "lax" and conv.resolve_form("matmul") == "matmul"
    assert conv.FORM == "auto"
    with pytest.raises(ValueError, match="form must be one of"):
        conv.resolve_form("fft")
    with pytest.raises(ValueError, match="form must be one of"), conv.use_form("fft"):
        pass
    x, w, _ = _inputs((1, 64, 1), (25, 1, 2), (1,))
    with pytest.raises(ValueError, match="padding must be"):
        conv.conv1d(x, w, 4, "same")
    with pytest.raises(ValueError, match="stride must be"):
        conv.conv1d_transpose(x, w, 0)
    monkeypatch.setattr(conv.settings, "FORM", "matmul")
    text = str(jax.make_jaxpr(lambda x, w: conv.conv1d(x, w, 4))(x, w))
    assert "conv_general_dilated" not in text and "conv_general_dilated" in str(
        jax.make_jaxpr(lambda x, w: conv.conv1d(x, w, 4, form="lax"))(x, w)
    )


def test_environment_variable_sets_the_form(monkeypatch):
    original = conv.FORM
    try:
        monkeypatch.setenv("AUDIOGAN_CONV_FORM", "lax")
        assert importlib.reload(conv.settings).FORM == "lax"
        monkeypatch.setenv("AUDIOGAN_CONV_FORM", "gpu")
        with pytest.raises(ValueError, match="AUDIOGAN_CONV_FORM must be one of"):
            importlib.reload(conv.settings)
    finally:
        monkeypatch.undo()  # the environment as it was, then the settings as they were
        importlib.reload(conv.settings)
    assert conv.FORM == original


# ---- whole WaveGAN networks ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["zeros", "nn_post_filter"])
def test_wavegan_networks_are_the_same_in_both_forms(variant):
    kwargs = {"upsample": "nn", "post_filter": 512} if variant == "nn_post_filter" else {}
    g_def, g_params = nnx.split(wavegan.Generator(8, 4, 16384, rngs=nnx.Rngs(0), **kwargs))
    d_def, d_params = nnx.split(wavegan.Discriminator(4, 16384, rngs=nnx.Rngs(1)))
    z_bd = wavegan.sample_latent(jax.random.key(0), 2, 8)
    key = jax.random.key(3)

    def forward(g_params, d_params):
        wav_bt = nnx.merge(g_def, g_params)(z_bd)
        return wav_bt, nnx.merge(d_def, d_params)(wav_bt, key=key)

    outputs = {}
    for form in ("lax", "matmul"):
        with conv.use_form(form):
            outputs[form] = jax.jit(forward)(g_params, d_params)
    (wav_lax, logits_lax), (wav_mm, logits_mm) = outputs["lax"], outputs["matmul"]
    assert wav_mm.shape == (2, 16384) and logits_mm.shape == (2,)
    assert _rel(wav_mm, wav_lax) < OUT_RTOL
    assert _rel(logits_mm, logits_lax) < OUT_RTOL


# ---- memory: shifted outputs and rematerialisation -------------------------------------------------------------


def _jaxpr(op, x, w, stride, padding) -> str:
    return str(jax.make_jaxpr(lambda x, w: op(x, w, stride, padding, form="matmul"))(x, w))


def test_rematerialised_patches_are_not_kept_for_the_backward_pass(monkeypatch):
    """With REMAT the backward pass rebuilds the patches from the layer's input (a remat in the jaxpr)."""
    x, w, r = _inputs((2, 64, 3), (25, 3, 4), (2, 16, 4))
    grad = jax.grad(lambda x, w: jnp.sum(conv.conv1d(x, w, 4, form="matmul") * r), argnums=1)
    assert "remat" in str(jax.make_jaxpr(grad)(x, w)) or "checkpoint" in str(jax.make_jaxpr(grad)(x, w))
    monkeypatch.setattr(conv.settings, "REMAT", False)
    x, w, r = _inputs((3, 64, 3), (25, 3, 4), (3, 16, 4))  # another shape: JAX caches traces by shape
    text = str(jax.make_jaxpr(grad)(x, w))
    assert "remat" not in text and "checkpoint" not in text


# ---- XLA:CPU: every convolution through Eigen ----------------------------------------------------------------
