"""MelGAN (Kumar et al., "MelGAN: Generative Adversarial Networks for Conditional Waveform Synthesis",
NeurIPS 2019), channels-last, layer for layer the official code (descriptinc/melgan-neurips ``mel2wav/modules.py``).

Generator, mel_btm (B, frames, n_mels) -> wav_bt (B, frames * prod(ratios)), ngf = 32, ratios 8, 8, 2, 2:
    reflect-pad 3 -> conv_pre (k 7, 16 ngf channels) -> per ratio r: LeakyReLU(0.2) -> ConvTranspose (kernel
    2r, stride r, channels halved) -> 3 residual blocks with dilations 1, 3, 9
    -> LeakyReLU(0.2) -> reflect-pad 3 -> conv_post (k 7, 1 channel) -> tanh.
Residual block: shortcut_1x1(x) + conv_1x1(lrelu(conv_d(reflect_pad_d(lrelu(x))))), kernel 3, dilation d.

Discriminator, wav_bt (B, T) -> (3 logits, 3 lists of 6 feature maps): three identical :class:`NLayerDiscriminator`
on the raw wave and on it average-pooled once and twice (AvgPool1d(4, 2, padding=1), the padding not counted).
Each: reflect-pad 7 -> conv k 15 (ndf = 16) -> 4 grouped convolutions (kernel 41, stride 4, groups
in_channels / 4, channels x4 up to ``max_channels`` = 1024) -> conv k 5 -> conv k 3 to one channel (the
logits); LeakyReLU(0.2) after all but the last. The feature maps are every layer's output but the logits,
as the official feature-matching loss reads them. Every convolution has weight norm.

Parameters (80 mels): generator 4,266,050 (the paper's 4.26 M), discriminator 16,924,086, both equal to the
PyTorch port in ``benchmarks/torch_vocoders.py``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from audiogan.models.vocoder_blocks import (
    Conv,
    ConvTranspose1d,
    avg_pool1d,
    count_params,
    reflect_pad,
    remove_weight_norm,
)

__all__ = ["VARIANTS", "RECIPE", "LRELU_SLOPE", "Generator", "ResnetBlock", "NLayerDiscriminator", "Discriminator",
           "build", "count_params", "torch_name"]

LRELU_SLOPE = 0.2

VARIANTS: dict[str, dict] = {
    "base": dict(ngf=32, n_residual_layers=3, ratios=(8, 8, 2, 2), num_D=3, ndf=16, n_layers=4,
                 downsampling_factor=4),
}

# The training recipe of the official scripts/train.py (LJSpeech at 22.05 kHz).
RECIPE: dict = dict(
    loss="hinge",                      # D: relu(1 - D(y)) + relu(1 + D(G(x))); G: -D(G(x)); means, summed over scales
    feature_matching_weight=10.0,      # lambda_feat, times each L1 term's weight below
    feature_matching_layer_weight=4.0 / (4 + 1) / 3,  # 4 / (n_layers + 1) / num_D per (scale, layer) L1 mean
    optimizer="adam", learning_rate=1e-4, betas=(0.5, 0.9),
    batch_size=16, segment_size=8192,
    sample_rate=22050, n_fft=1024, num_mels=80, hop_size=256, win_size=1024, fmin=0, fmax=None,
    mel_center=False,                  # reflect-pad (n_fft - hop) / 2 each side, then an uncentred STFT
    mel_log="log10(max(mel, 1e-5))",   # magnitude sqrt(re^2 + im^2), Slaney mel basis (librosa)
    lrelu_slope=LRELU_SLOPE, variant="base",
)


def _variant(variant: str | None) -> dict:
    variant = RECIPE["variant"] if variant is None else variant
    if variant not in VARIANTS:
        raise ValueError(f"MelGAN variant must be one of {tuple(VARIANTS)}, got variant={variant!r}")
    return VARIANTS[variant]


class ResnetBlock(nnx.Module):
    """(B, T, C) -> (B, T, C): shortcut(x) + conv2(lrelu(conv1(reflect_pad(lrelu(x))))), conv1 dilated."""

    def __init__(self, dim: int, dilation: int = 1, *, rngs: nnx.Rngs):
        self.dilation = dilation
        self.conv1 = Conv(dim, dim, 3, dilation=dilation, rngs=rngs)
        self.conv2 = Conv(dim, dim, 1, rngs=rngs)
        self.shortcut = Conv(dim, dim, 1, rngs=rngs)

    def __call__(self, x_btc: jax.Array) -> jax.Array:
        h_btc = self.conv1(reflect_pad(jax.nn.leaky_relu(x_btc, LRELU_SLOPE), self.dilation))
        return self.shortcut(x_btc) + self.conv2(jax.nn.leaky_relu(h_btc, LRELU_SLOPE))


class Generator(nnx.Module):
    """MelGAN generator: mel_btm (B, frames, n_mels) -> wav_bt (B, frames * hop), hop = prod(ratios)."""

    def __init__(self, n_mels: int = RECIPE["num_mels"], ngf: int = 32, n_residual_layers: int = 3,
                 ratios: tuple[int, ...] = (8, 8, 2, 2), *, rngs: nnx.Rngs):
        self.hop = math.prod(ratios)
        mult = 2 ** len(ratios)
        self.conv_pre = Conv(n_mels, mult * ngf, 7, rngs=rngs)
        ups, resblocks = [], []
        for r in ratios:
            ups.append(ConvTranspose1d(mult * ngf, mult * ngf // 2, 2 * r, r, padding=r // 2 + r % 2,
                                       output_padding=r % 2, rngs=rngs))
            resblocks.append(nnx.List([ResnetBlock(mult * ngf // 2, 3 ** j, rngs=rngs)
                                       for j in range(n_residual_layers)]))
            mult //= 2
        self.ups, self.resblocks = nnx.List(ups), nnx.List(resblocks)
        self.conv_post = Conv(ngf, 1, 7, rngs=rngs)

    def __call__(self, mel_btm: jax.Array) -> jax.Array:
        x_btc = self.conv_pre(reflect_pad(mel_btm, 3))
        for up, blocks in zip(self.ups, self.resblocks, strict=True):
            x_btc = up(jax.nn.leaky_relu(x_btc, LRELU_SLOPE))
            for block in blocks:
                x_btc = block(x_btc)
        x_btc = self.conv_post(reflect_pad(jax.nn.leaky_relu(x_btc, LRELU_SLOPE), 3))
        return jnp.tanh(x_btc[..., 0])

    def remove_weight_norm(self) -> Generator:
        """Fold weight norm into plain weights, in place, for inference (as the official ``inference.py``)."""
        return remove_weight_norm(self)


class NLayerDiscriminator(nnx.Module):
    """One scale: wav_bt (B, T) -> logits (B, T'), feature maps [(B, T_l, C_l)] * (n_layers + 2)."""

    def __init__(self, ndf: int = 16, n_layers: int = 4, downsampling_factor: int = 4, max_channels: int = 1024,
                 *, rngs: nnx.Rngs):
        stride = downsampling_factor
        layers = [Conv(1, ndf, 15, rngs=rngs)]
        nf = ndf
        for _ in range(n_layers):
            nf_prev, nf = nf, min(nf * stride, max_channels)
            layers.append(Conv(nf_prev, nf, stride * 10 + 1, stride=stride, padding=stride * 5,
                               groups=nf_prev // 4, rngs=rngs))
        # The official code feeds this layer nf_prev channels, which is nf in every setting it can run.
        layers.append(Conv(nf, min(nf * 2, max_channels), 5, padding=2, rngs=rngs))
        layers.append(Conv(min(nf * 2, max_channels), 1, 3, padding=1, rngs=rngs))
        self.layers = nnx.List(layers)

    def __call__(self, wav_bt: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        x_btc = reflect_pad(wav_bt[..., None], 7)
        fmaps = []
        for layer in self.layers[:-1]:
            x_btc = jax.nn.leaky_relu(layer(x_btc), LRELU_SLOPE)
            fmaps.append(x_btc)
        logits = self.layers[-1](x_btc)
        return logits[..., 0], fmaps


class Discriminator(nnx.Module):
    """Multi-scale discriminator: wav_bt (B, T) -> ([logits (B, T_s)] per scale, [feature maps] per scale)."""

    def __init__(self, num_D: int = 3, ndf: int = 16, n_layers: int = 4, downsampling_factor: int = 4,
                 max_channels: int = 1024, *, rngs: nnx.Rngs):
        self.discriminators = nnx.List([NLayerDiscriminator(ndf, n_layers, downsampling_factor, max_channels,
                                                            rngs=rngs)
                                        for _ in range(num_D)])

    def __call__(self, wav_bt: jax.Array) -> tuple[list[jax.Array], list[list[jax.Array]]]:
        logits, fmaps = [], []
        for i, d in enumerate(self.discriminators):
            if i:
                wav_bt = avg_pool1d(wav_bt[..., None], 4, 2, 1, count_include_pad=False)[..., 0]
            out, fmap = d(wav_bt)
            logits.append(out)
            fmaps.append(fmap)
        return logits, fmaps


def build(n_mels: int = RECIPE["num_mels"], variant: str | None = None, *,
          rngs: nnx.Rngs) -> tuple[Generator, Discriminator]:
    """The paper's generator and multi-scale discriminator."""
    h = _variant(variant)
    generator = Generator(n_mels, h["ngf"], h["n_residual_layers"], h["ratios"], rngs=rngs)
    discriminator = Discriminator(h["num_D"], h["ndf"], h["n_layers"], h["downsampling_factor"], rngs=rngs)
    return generator, discriminator


def torch_name(name: str, n_residual_layers: int = 3) -> str:
    """Our dotted path for an official ``state_dict`` name (``model.3.weight_g`` -> ``ups.0.weight_g``).

    The official generator is one ``nn.Sequential`` (pad, conv, then per ratio LeakyReLU, ConvTranspose and
    the residual blocks, then LeakyReLU, pad, conv, tanh); the discriminator names layers ``layer_<n>``.
    """
    parts = name.split(".")
    if parts[0] == "model" and parts[1].startswith("disc_"):  # model.disc_i.model.layer_n[.k].leaf
        scale, layer = int(parts[1][5:]), int(parts[3][6:])
        return f"discriminators.{scale}.layers.{layer}.{parts[-1]}"
    index, rest = int(parts[1]), parts[2:]
    per_stage = 2 + n_residual_layers
    if index == 1:
        return f"conv_pre.{rest[-1]}"
    stage, offset = divmod(index - 2, per_stage)
    if len(rest) > 1:  # inside a residual block: block.2, block.4 or shortcut
        sub = {"block.2": "conv1", "block.4": "conv2", "shortcut": "shortcut"}[".".join(rest[:-1])]
        return f"resblocks.{stage}.{offset - 2}.{sub}.{rest[-1]}"
    if offset == 1:
        return f"ups.{stage}.{rest[-1]}"
    return f"conv_post.{rest[-1]}"
