"""The XLA:CPU settings: per-compilation options for audiogan's programs, process flags only on request."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest
from jax import lax

from audiogan import xla
from audiogan.models import conv

_CONV_2D = ("NHWC", "HWIO", "NHWC")


def _ynn_lines(compiled_text: str) -> list[str]:
    """The compiled program's instructions handed to YNNPACK."""
    return [line for line in compiled_text.splitlines() if '"kind":"__ynn_fusion"' in line]


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="an XLA:CPU setting")
def test_compiler_options_send_2d_convolutions_to_eigen_not_ynnpack():
    """XLA:CPU's default hands SpecGAN-sized 2-D convolutions to YNNPACK (slower there); under
    ``conv.compiler_options()`` the same convolution is Eigen's. Where XLA's default does not use YNNPACK
    for it (another CPU or jaxlib) there is nothing to route and the test says so by skipping."""
    x, w = jnp.zeros((2, 34, 34, 64)), jnp.zeros((3, 3, 64, 32))

    def f(x, w):
        return lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=_CONV_2D)

    default = {"xla_cpu_experimental_ynn_fusion_type": ",".join(
        f"LIBRARY_FUSION_TYPE_{t}" for t in ("INDIVIDUAL_DOT", "REDUCE", "INDIVIDUAL_CONVOLUTION"))}
    if not _ynn_lines(jax.jit(f).lower(x, w).compile(compiler_options=default).as_text()):
        pytest.skip("this XLA:CPU does not hand the convolution to YNNPACK by default: nothing to route")
    ours = jax.jit(f, compiler_options=conv.compiler_options()).lower(x, w).compile().as_text()
    assert not _ynn_lines(ours) and "convolution(" in ours
    assert conv.compiler_options()[xla.OPTION] == xla.YNN_FUSION_TYPES


def test_compiler_options_ask_for_the_memory_optimised_order_only_where_xla_knows_it():
    """On CPU the options name XLA:CPU's memory-optimised scheduler and, when asked, its elemental fusion
    emitters, which this jaxlib accepts; an option value XLA does not know is detected and left out instead of
    failing every compilation; other backends get no options."""
    assert xla._accepts_option(xla.SCHEDULER_OPTION, xla.MEMORY_OPTIMIZED)
    assert not xla._accepts_option(xla.SCHEDULER_OPTION, "CPU_SCHEDULER_TYPE_NO_SUCH_ORDER")
    assert xla._accepts_option(xla.EMITTERS_OPTION, False)
    assert xla.compiler_options("cpu") == {
        xla.OPTION: xla.YNN_FUSION_TYPES, xla.SCHEDULER_OPTION: xla.MEMORY_OPTIMIZED}
    assert xla.compiler_options("cpu", elemental_fusions=True) == {
        xla.OPTION: xla.YNN_FUSION_TYPES, xla.SCHEDULER_OPTION: xla.MEMORY_OPTIMIZED,
        xla.EMITTERS_OPTION: False}
    assert xla.compiler_options("gpu") == {} == xla.compiler_options("tpu", elemental_fusions=True)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="an XLA:CPU option")
def test_elemental_fusion_option_reaches_xla_cpu():
    """Compiled through ``conv.jit`` with ``compiler_options(elemental_fusions=True)`` (WaveGAN's and SpecGAN's
    steps), a fused loop is byte for byte the executable XLA:CPU makes with the option set explicitly (a
    serialised executable carries its compile options), and by default the one without it. (How much the
    option changes the machine code depends on the host's vector instructions: with AVX-512 the elemental
    emitter's loop is over 500 bytes smaller, with AVX2 alone about the same size; so only the routing
    is asserted here.)"""
    from jax.experimental.serialize_executable import serialize

    def f(x, y):
        return jnp.tanh(x.T * 2 + y).sum(0)

    x, y = jnp.ones((64, 32)), jnp.ones((32, 64))
    options = conv.compiler_options(elemental_fusions=True)

    def executable(compiled) -> bytes:
        return serialize(compiled)[0]

    ours = executable(conv.jit(f, options=options).lower(x, y).compile())
    default = executable(conv.jit(f).lower(x, y).compile())
    elemental = executable(jax.jit(f).lower(x, y).compile(compiler_options=options))
    mlir = executable(jax.jit(f).lower(x, y).compile(compiler_options=conv.compiler_options()))
    assert options[xla.EMITTERS_OPTION] is False and xla.EMITTERS_OPTION not in conv.compiler_options()
    assert ours == elemental and default == mlir and elemental != mlir


def test_set_process_flags_appends_once_and_leaves_a_users_setting():
    env = {}
    assert xla.set_process_flags(env) and env["XLA_FLAGS"] == f"--{xla.OPTION}={xla.YNN_FUSION_TYPES}"
    assert not xla.set_process_flags(env)  # asked once
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    assert xla.set_process_flags(env)
    assert env["XLA_FLAGS"].split() == [
        "--xla_force_host_platform_device_count=8", f"--{xla.OPTION}={xla.YNN_FUSION_TYPES}"]
    users = {"XLA_FLAGS": f"--{xla.OPTION}="}  # the user's own choice wins
    assert not xla.set_process_flags(users) and users["XLA_FLAGS"] == f"--{xla.OPTION}="
    off = {"AUDIOGAN_XLA_FLAGS": "0"}
    assert not xla.set_process_flags(off) and "XLA_FLAGS" not in off


@pytest.mark.slow
def test_import_audiogan_changes_no_process_wide_setting():
    """``import audiogan`` (every subpackage) leaves ``XLA_FLAGS`` as it found it, set or not."""
    code = (
        "import os; a = os.environ.get('XLA_FLAGS')\n"
        "import audiogan, audiogan.training, audiogan.evaluation, audiogan.listening, audiogan.cli.demo\n"
        "assert os.environ.get('XLA_FLAGS') == a, (a, os.environ.get('XLA_FLAGS'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "AUDIOGAN_XLA_FLAGS")}
    for extra in ({}, {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}):
        out = subprocess.run([sys.executable, "-c", code], env=env | extra, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.skipif(jax.default_backend() != "cpu", reason="an XLA:CPU setting")
def test_set_process_flags_before_jax_starts_sends_a_users_2d_convolutions_to_eigen():
    """An entry point's ``set_process_flags()`` reaches a user's own ``jax.jit`` (no compiler options) when
    it comes before JAX starts its backend; after, it warns that it came too late."""
    code = (
        "import jax, jax.numpy as jnp\n"
        "from jax import lax\n"
        "x, w = jnp.zeros((2, 34, 34, 64)), jnp.zeros((3, 3, 64, 32))\n"
        "f = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), 'VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))\n"
        "print(jax.jit(f).lower(x, w).compile().as_text().count('__ynn_fusion'))\n"
    )
    flags = "from audiogan import xla\nif xla.set_process_flags():\n    xla.warn_if_late()\n"
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "AUDIOGAN_XLA_FLAGS")}

    def ynn_count(source: str, **extra) -> tuple[int, str]:
        out = subprocess.run([sys.executable, "-c", source], env=env | extra, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return int(out.stdout.split()[-1]), out.stderr

    off, _ = ynn_count("import audiogan\n" + code)  # importing asks for nothing: XLA's default
    if off == 0:
        pytest.skip("this XLA:CPU does not hand the convolution to YNNPACK by default: nothing to route")
    late, late_err = ynn_count("import jax, jax.numpy as jnp\njnp.zeros(1).block_until_ready()\n" + flags + code)
    assert "JAX started before audiogan.xla.set_process_flags()" in late_err and late > 0
    assert ynn_count(flags + code)[0] == 0
