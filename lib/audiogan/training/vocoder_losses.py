"""Vocoder GAN objectives: pure functions over the outputs of several discriminators.

A vocoder has several discriminators (HiFi-GAN: 5 periods + 3 scales; MelGAN: 3 scales), so each
adversarial loss takes a list with one score array per discriminator and sums the per-discriminator
means, as both reference implementations do. Feature maps are a list (per discriminator) of lists
(per layer) of arrays. The weights that combine the terms belong to each model's recipe:
HiFi-GAN's generator minimises ``lsgan_g_loss + 2 * feature_matching_loss + 45 * mel_l1`` (mel up
to Nyquist, ``settings.for_loss()``); MelGAN's ``hinge_g_loss + 10 * 4 / ((n_layers + 1) * num_D) *
feature_matching_loss`` over every layer but the last.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from audiogan.audio.mel import MelSettings, mel_spectrogram


def _per_discriminator(name: str, outputs) -> list:
    """``outputs`` as a list of arrays; a bare array would silently iterate over its rows."""
    if not isinstance(outputs, Sequence) or isinstance(outputs, str) or not outputs:
        kind = type(outputs).__name__
        raise ValueError(f"{name} must be a non-empty list with one array per discriminator, got {kind}")
    return list(outputs)


def _paired(real_name: str, real, fake_name: str, fake) -> list[tuple]:
    real, fake = _per_discriminator(real_name, real), _per_discriminator(fake_name, fake)
    if len(real) != len(fake):
        raise ValueError(f"{fake_name} has {len(fake)} discriminators but {real_name} has {len(real)}")
    return list(zip(real, fake, strict=True))


def lsgan_d_loss(real_outputs: Sequence[jax.Array], fake_outputs: Sequence[jax.Array]) -> jax.Array:
    """Least-squares discriminator loss: sum over discriminators of mean (1 - D(x))^2 + mean D(G(s))^2."""
    pairs = _paired("real_outputs", real_outputs, "fake_outputs", fake_outputs)
    return sum(jnp.mean((1 - r) ** 2) + jnp.mean(f**2) for r, f in pairs)


def lsgan_g_loss(fake_outputs: Sequence[jax.Array]) -> jax.Array:
    """Least-squares generator loss: sum over discriminators of mean (1 - D(G(s)))^2."""
    return sum(jnp.mean((1 - f) ** 2) for f in _per_discriminator("fake_outputs", fake_outputs))


def hinge_d_loss(real_outputs: Sequence[jax.Array], fake_outputs: Sequence[jax.Array]) -> jax.Array:
    """Hinge discriminator loss: sum over discriminators of mean relu(1 - D(x)) + mean relu(1 + D(G(s)))."""
    pairs = _paired("real_outputs", real_outputs, "fake_outputs", fake_outputs)
    return sum(jnp.mean(jax.nn.relu(1 - r)) + jnp.mean(jax.nn.relu(1 + f)) for r, f in pairs)


def hinge_g_loss(fake_outputs: Sequence[jax.Array]) -> jax.Array:
    """Hinge generator loss: sum over discriminators of -mean D(G(s))."""
    return sum(-jnp.mean(f) for f in _per_discriminator("fake_outputs", fake_outputs))


def feature_matching_loss(
    fmaps_real: Sequence[Sequence[jax.Array]], fmaps_fake: Sequence[Sequence[jax.Array]]
) -> jax.Array:
    """Sum over discriminators and layers of mean |real - fake|; the real maps are fixed targets.

    Unweighted: HiFi-GAN multiplies it by 2, MelGAN by its per-layer weight (see the module doc).
    """
    total = jnp.zeros((), jnp.float32)
    for d, (layers_real, layers_fake) in enumerate(_paired("fmaps_real", fmaps_real, "fmaps_fake", fmaps_fake)):
        layers = _paired(f"fmaps_real[{d}]", layers_real, f"fmaps_fake[{d}]", layers_fake)
        for k, (r, f) in enumerate(layers):
            if jnp.shape(r) != jnp.shape(f):
                raise ValueError(f"fmaps_fake[{d}][{k}] has shape {jnp.shape(f)}, fmaps_real[{d}][{k}] {jnp.shape(r)}")
            total = total + jnp.mean(jnp.abs(jax.lax.stop_gradient(r) - f))
    return total


def mel_l1(wav_real_bt: jax.Array, wav_fake_bt: jax.Array, settings: MelSettings) -> jax.Array:
    """Mean |log-mel(real) - log-mel(fake)| over clips (B, T), bins and frames (HiFi-GAN's mel loss)."""
    if jnp.shape(wav_real_bt) != jnp.shape(wav_fake_bt):
        raise ValueError(f"wav_fake_bt has shape {jnp.shape(wav_fake_bt)}, wav_real_bt {jnp.shape(wav_real_bt)}")
    mel_real_bft = jax.lax.stop_gradient(mel_spectrogram(wav_real_bt, settings))
    return jnp.mean(jnp.abs(mel_real_bft - mel_spectrogram(wav_fake_bt, settings)))
