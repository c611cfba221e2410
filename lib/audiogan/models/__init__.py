"""Model families: each module has a ``Generator``, a ``Discriminator``, ``sample_latent`` and
``ELEMENTAL_FUSIONS`` (how XLA:CPU compiles its training step: :func:`audiogan.train.compiler_options`).

Models know nothing of losses. :func:`build` makes both networks of a run from its config.
"""

from __future__ import annotations

from types import ModuleType

import jax
from flax import nnx

from audiogan.config import RunConfig
from audiogan.models import conditional, mlp, specgan, wavegan

FAMILIES: dict[str, ModuleType] = {"mlp": mlp, "wavegan": wavegan, "specgan": specgan}


def family(name: str) -> ModuleType:
    return FAMILIES[name]


def build(config: RunConfig, seed: int | None = None, n_classes: int = 0) -> tuple[nnx.Module, nnx.Module]:
    """The generator and discriminator of ``config``, initialised from its seed; with
    ``config.conditional`` both are conditioned on ``n_classes`` classes (:mod:`.conditional`)."""
    if config.conditional and n_classes < 2:
        raise ValueError(f"a conditional model needs at least 2 classes, got n_classes={n_classes}")
    rngs = nnx.Rngs(config.seed if seed is None else seed)
    n_in = config.latent_dim + (n_classes if config.conditional else 0)  # the generator's input
    if config.model == "mlp":
        g = mlp.Generator(n_in, config.clip_samples, rngs=rngs)
        d = mlp.Discriminator(config.clip_samples, rngs=rngs)
    elif config.model == "wavegan":
        g = wavegan.Generator(
            n_in, config.d, config.clip_samples, upsample=config.upsample,
            post_filter=config.post_filter, rngs=rngs,
        )
        d = wavegan.Discriminator(
            config.d, config.clip_samples, phase_shuffle=config.phase_shuffle,
            per_example=config.phase_shuffle_per_example, rngs=rngs,
        )
    elif config.model == "specgan":
        g = specgan.Generator(n_in, config.d, rngs=rngs)
        d = specgan.Discriminator(config.d, rngs=rngs)
    else:
        raise KeyError(config.model)
    if config.conditional:
        g = conditional.ConditionalGenerator(g, n_classes)
        d = conditional.ProjectionDiscriminator(d, n_classes, rngs=rngs)
    return g, d


def sample_latent(config: RunConfig, key: jax.Array, n: int) -> jax.Array:
    return family(config.model).sample_latent(key, n, config.latent_dim)


def count_params(module: nnx.Module) -> int:
    return sum(x.size for x in jax.tree.leaves(nnx.state(module, nnx.Param)))


def summary(config: RunConfig, n_classes: int = 0) -> dict[str, int]:
    """Parameter counts of both networks of ``config`` (conditional: on ``n_classes`` classes)."""
    g, d = nnx.eval_shape(lambda: build(config, n_classes=n_classes))
    return {"generator_params": count_params(g), "discriminator_params": count_params(d)}
