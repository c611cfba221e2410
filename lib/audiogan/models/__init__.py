"""Model families, one module each: ``Generator``, ``Discriminator``, ``sample_latent``, the paper's
``RECIPE``, ``check(config)`` and ``build(config, n_in, rngs)``; ``ELEMENTAL_FUSIONS`` says how XLA:CPU
compiles the family's step (:mod:`audiogan.xla`).

Models know nothing of losses or training. :func:`build` makes both networks of a run from any object
with a run's settings (a :class:`audiogan.config.RunConfig`).
"""

from __future__ import annotations

from types import ModuleType

import jax
from flax import nnx

from audiogan.models import conditional, mlp, specgan, wavegan

FAMILIES: dict[str, ModuleType] = {"mlp": mlp, "wavegan": wavegan, "specgan": specgan}
RECIPES: dict[str, dict] = {name: module.RECIPE for name, module in FAMILIES.items()}


def family(name: str) -> ModuleType:
    return FAMILIES[name]


def build(config, seed: int | None = None, n_classes: int = 0) -> tuple[nnx.Module, nnx.Module]:
    """The generator and discriminator of ``config``, initialised from its seed; with
    ``config.conditional`` both are conditioned on ``n_classes`` classes (:mod:`.conditional`)."""
    if config.conditional and n_classes < 2:
        raise ValueError(f"a conditional model needs at least 2 classes, got n_classes={n_classes}")
    rngs = nnx.Rngs(config.seed if seed is None else seed)
    n_in = config.latent_dim + (n_classes if config.conditional else 0)  # the generator's input
    g, d = family(config.model).build(config, n_in, rngs)
    if config.conditional:
        g = conditional.ConditionalGenerator(g, n_classes)
        d = conditional.ProjectionDiscriminator(d, n_classes, rngs=rngs)
    return g, d


def sample_latent(config, key: jax.Array, n: int) -> jax.Array:
    """``n`` latents of the distribution ``config``'s family draws from: (n, latent_dim)."""
    return family(config.model).sample_latent(key, n, config.latent_dim)


def count_params(module: nnx.Module) -> int:
    return sum(x.size for x in jax.tree.leaves(nnx.state(module, nnx.Param)))


def summary(config, n_classes: int = 0) -> dict[str, int]:
    """Parameter counts of both networks of ``config`` (conditional: on ``n_classes`` classes)."""
    g, d = nnx.eval_shape(lambda: build(config, n_classes=n_classes))
    return {"generator_params": count_params(g), "discriminator_params": count_params(d)}
