"""HiFi-GAN (Kong, Kim & Bae, "HiFi-GAN: Generative Adversarial Networks for Efficient and High Fidelity Speech
Synthesis", NeurIPS 2020), channels-last, layer for layer the official code (jik876/hifi-gan ``models.py`` and
``config_v1/v2/v3.json``).

Generator, mel_btm (B, frames, n_mels) -> wav_bt (B, frames * prod(upsample_rates)):
    conv_pre (k 7) -> per stage: LeakyReLU(0.1) -> ConvTranspose (kernel k_u, stride u, padding (k_u - u) // 2,
    channels halved) -> MRF, the mean of one residual block per (kernel, dilations) pair
    -> LeakyReLU(0.01, torch's default slope, as the official code) -> conv_post (k 7, 1 channel) -> tanh.
ResBlock1 (V1, V2): for each dilation d, x += conv_1(lrelu(conv_d(lrelu(x)))); ResBlock2 (V3): x += conv_d(lrelu(x)).
Every convolution has weight norm and "same" zero padding.

Discriminators, wav_bt (B, T) -> (logits list, feature maps list of lists); the feature maps include each
sub-discriminator's last (logit) map, since the official feature-matching loss sums over all of them:
- :class:`MultiPeriodDiscriminator`: one :class:`DiscriminatorP` per period (2, 3, 5, 7, 11): reflect-pad T to
  a multiple of p, fold to (B, T / p, p, 1), 2-D convolutions with (5, 1) kernels, stride (3, 1), channels
  32, 128, 512, 1024, then 1024 at stride 1, then conv_post (3, 1) to one channel; weight norm.
- :class:`MultiScaleDiscriminator`: three :class:`DiscriminatorS` on the raw, x2 and x4 average-pooled wave
  (AvgPool1d(4, 2, padding=2)); grouped 1-D convolutions (kernel 15, then 41 with groups 4, 16, 16, 16, 16,
  then 5, then conv_post 3); spectral norm on the first scale, weight norm on the others.
:class:`Discriminator` holds both, as one module, so that one optimiser updates both (as the official
``optim_d`` does).

Parameters with weight norm (80 mels, ``count_params``, equal to the PyTorch ports in
``benchmarks/torch_vocoders.py``): generator V1 13,936,130, V2 928,514, V3 1,464,322 (without the gains, as
for inference, 13,926,017, 925,985 and 1,462,273: the paper's 13.92 M, 0.92 M and 1.46 M); MPD 41,105,770;
MSD 29,618,821.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
from flax import nnx

from audiogan.models.vocoder_blocks import Conv, ConvTranspose1d, avg_pool1d, count_params, remove_weight_norm

__all__ = ["VARIANTS", "RECIPE", "LRELU_SLOPE", "Generator", "ResBlock1", "ResBlock2", "DiscriminatorP",
           "MultiPeriodDiscriminator", "DiscriminatorS", "MultiScaleDiscriminator", "Discriminator", "build",
           "count_params", "resolve_variant", "audio_settings", "torch_name"]

LRELU_SLOPE = 0.1
FINAL_SLOPE = 0.01  # the official generator calls F.leaky_relu(x), torch's default slope, before conv_post

VARIANTS: dict[str, dict] = {
    "v1": dict(resblock=1, upsample_rates=(8, 8, 2, 2), upsample_kernel_sizes=(16, 16, 4, 4),
               upsample_initial_channel=512, resblock_kernel_sizes=(3, 7, 11),
               resblock_dilation_sizes=((1, 3, 5), (1, 3, 5), (1, 3, 5))),
    "v2": dict(resblock=1, upsample_rates=(8, 8, 2, 2), upsample_kernel_sizes=(16, 16, 4, 4),
               upsample_initial_channel=128, resblock_kernel_sizes=(3, 7, 11),
               resblock_dilation_sizes=((1, 3, 5), (1, 3, 5), (1, 3, 5))),
    "v3": dict(resblock=2, upsample_rates=(8, 8, 4), upsample_kernel_sizes=(16, 16, 8),
               upsample_initial_channel=256, resblock_kernel_sizes=(3, 5, 7),
               resblock_dilation_sizes=((1, 2), (2, 6), (3, 12))),
}

# The training recipe of the official train.py and configs, in one place (LJSpeech at 22.05 kHz).
RECIPE: dict = dict(
    loss="least_squares",              # D: (1 - D(y))^2 + D(G(x))^2; G: (1 - D(G(x)))^2, summed over sub-discriminators
    feature_matching_weight=2.0,       # L1 between real and generated feature maps, mean per map, summed
    mel_l1_weight=45.0,                # L1 between log-mel spectrograms of real and generated audio
    optimizer="adamw", learning_rate=2e-4, betas=(0.8, 0.99),
    weight_decay=0.01,                 # torch.optim.AdamW's default, which the official code keeps
    lr_decay=0.999, lr_decay_every="epoch",  # ExponentialLR stepped once per epoch, for G and D
    batch_size=16, segment_size=8192, seed=1234,
    sample_rate=22050, n_fft=1024, num_mels=80, hop_size=256, win_size=1024, fmin=0, fmax=8000,
    fmax_for_loss=None,                # the mel of the L1 loss spans 0 .. sample_rate / 2
    mel_center=False,                  # reflect-pad (n_fft - hop) / 2 each side, then an uncentred STFT
    mel_log="ln(max(mel, 1e-5))",      # magnitude sqrt(re^2 + im^2 + 1e-9), Slaney mel basis (librosa)
    mpd_periods=(2, 3, 5, 7, 11), msd_scales=3, msd_spectral_norm_scales=(0,),
    lrelu_slope=LRELU_SLOPE, variant="v1",
)

_VARIANT_KEYS = tuple(VARIANTS["v1"])


def resolve_variant(variant: str | Mapping) -> dict:
    """A variant name ('v1', 'v2', 'v3') or a mapping of the same keys, checked, as a dict.

    A custom variant must give each upsampling layer a kernel k >= u with k - u even, so that the stage
    makes exactly u samples per input step.
    """
    if isinstance(variant, str):
        if variant not in VARIANTS:
            raise ValueError(f"HiFi-GAN variant must be one of {tuple(VARIANTS)}, got variant={variant!r}")
        return dict(VARIANTS[variant])
    h = dict(variant)
    missing = [k for k in _VARIANT_KEYS if k not in h]
    if missing:
        raise ValueError(f"HiFi-GAN variant lacks {missing}; it needs {_VARIANT_KEYS}")
    if h["resblock"] not in (1, 2, "1", "2"):
        raise ValueError(f"resblock must be 1 or 2, got resblock={h['resblock']!r}")
    h["resblock"] = int(h["resblock"])
    rates, kernels = tuple(h["upsample_rates"]), tuple(h["upsample_kernel_sizes"])
    if len(rates) != len(kernels):
        raise ValueError(f"upsample_kernel_sizes={kernels} needs one kernel per upsample_rates={rates}")
    for u, k in zip(rates, kernels, strict=True):
        if k < u or (k - u) % 2:
            raise ValueError(f"upsample_kernel_sizes={kernels}: each kernel k must be >= its rate u with k - u "
                             f"even (upsample_rates={rates}), or a stage does not make exactly u samples per step")
    if len(h["resblock_kernel_sizes"]) != len(h["resblock_dilation_sizes"]):
        raise ValueError("resblock_dilation_sizes needs one tuple of dilations per resblock_kernel_sizes entry")
    if h["upsample_initial_channel"] % 2 ** len(rates):
        raise ValueError(f"upsample_initial_channel={h['upsample_initial_channel']} must be divisible by "
                         f"2 ** {len(rates)} (it halves at each of the {len(rates)} stages)")
    return h


def audio_settings(variant: str | Mapping = "v1", *, sample_rate: int = RECIPE["sample_rate"],
                   hop_size: int | None = None, segment_size: int | None = None, n_fft: int | None = None,
                   win_size: int | None = None, fmax: float | None = None) -> dict:
    """Mel and segment settings that agree with a generator: hop, segment, n_fft, win, fmax.

    The generator makes exactly prod(upsample_rates) samples per mel frame, so ``hop_size`` must be that
    product, and a training segment must be a whole number of frames. Left out, each value keeps the
    recipe's proportion to the hop (segment 32 hops, n_fft = win = 4 hops) and fmax is 8 kHz or Nyquist,
    whichever is lower. Raises ValueError naming the parameter that disagrees.
    """
    rates = resolve_variant(variant)["upsample_rates"]
    product = math.prod(rates)
    hop = product if hop_size is None else hop_size
    if hop != product:
        raise ValueError(f"hop_size={hop} must equal the product of upsample_rates {tuple(rates)} = {product}: "
                         "the generator makes that many samples per mel frame")
    scale = hop / RECIPE["hop_size"]
    segment = round(RECIPE["segment_size"] * scale) if segment_size is None else segment_size
    if segment <= 0 or segment % hop:
        raise ValueError(f"segment_size={segment} must be a positive multiple of hop_size={hop}")
    n_fft = round(RECIPE["n_fft"] * scale) if n_fft is None else n_fft
    win = round(RECIPE["win_size"] * scale) if win_size is None else win_size
    if win > n_fft:
        raise ValueError(f"win_size={win} must not exceed n_fft={n_fft}")
    if n_fft < hop:
        raise ValueError(f"n_fft={n_fft} must be at least hop_size={hop}")
    nyquist = sample_rate / 2
    fmax = min(RECIPE["fmax"], nyquist) if fmax is None else fmax
    if fmax > nyquist:
        raise ValueError(f"fmax={fmax} must not exceed sample_rate / 2 = {nyquist}")
    return dict(sample_rate=sample_rate, hop_size=hop, segment_size=segment, segment_frames=segment // hop,
                n_fft=n_fft, win_size=win, fmin=RECIPE["fmin"], fmax=fmax, fmax_for_loss=None)


def _same(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


class ResBlock1(nnx.Module):
    """V1/V2 residual block: per dilation d, x += conv(lrelu(conv_d(lrelu(x)))). (B, T, C) -> (B, T, C)."""

    def __init__(self, channels: int, kernel_size: int, dilations, *, rngs: nnx.Rngs):
        self.convs1 = nnx.List([Conv(channels, channels, kernel_size, dilation=d, padding=_same(kernel_size, d),
                                     rngs=rngs) for d in dilations])
        self.convs2 = nnx.List([Conv(channels, channels, kernel_size, padding=_same(kernel_size), rngs=rngs)
                                for _ in dilations])

    def __call__(self, x_btc: jax.Array) -> jax.Array:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            x_btc = x_btc + c2(jax.nn.leaky_relu(c1(jax.nn.leaky_relu(x_btc, LRELU_SLOPE)), LRELU_SLOPE))
        return x_btc


class ResBlock2(nnx.Module):
    """V3 residual block: per dilation d, x += conv_d(lrelu(x)). (B, T, C) -> (B, T, C)."""

    def __init__(self, channels: int, kernel_size: int, dilations, *, rngs: nnx.Rngs):
        self.convs = nnx.List([Conv(channels, channels, kernel_size, dilation=d, padding=_same(kernel_size, d),
                                    rngs=rngs) for d in dilations])

    def __call__(self, x_btc: jax.Array) -> jax.Array:
        for c in self.convs:
            x_btc = x_btc + c(jax.nn.leaky_relu(x_btc, LRELU_SLOPE))
        return x_btc


class Generator(nnx.Module):
    """HiFi-GAN generator: mel_btm (B, frames, n_mels) -> wav_bt (B, frames * hop) in [-1, 1].

    ``variant`` is 'v1', 'v2', 'v3' or a mapping of the same keys (:func:`resolve_variant`); ``hop`` is
    prod(upsample_rates). ``resblocks`` is flat, stage-major, as in the official code, so torch names match.
    """

    def __init__(self, n_mels: int = RECIPE["num_mels"], variant: str | Mapping = "v1", *, rngs: nnx.Rngs):
        h = resolve_variant(variant)
        self.hop = math.prod(h["upsample_rates"])
        self.num_kernels = len(h["resblock_kernel_sizes"])
        channels = h["upsample_initial_channel"]
        self.conv_pre = Conv(n_mels, channels, 7, padding=3, rngs=rngs)
        block = ResBlock1 if h["resblock"] == 1 else ResBlock2
        ups, resblocks = [], []
        for u, k in zip(h["upsample_rates"], h["upsample_kernel_sizes"], strict=True):
            ups.append(ConvTranspose1d(channels, channels // 2, k, u, padding=(k - u) // 2, rngs=rngs))
            channels //= 2
            resblocks += [block(channels, rk, rd, rngs=rngs)
                          for rk, rd in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"], strict=True)]
        self.ups, self.resblocks = nnx.List(ups), nnx.List(resblocks)
        self.conv_post = Conv(channels, 1, 7, padding=3, rngs=rngs)

    def __call__(self, mel_btm: jax.Array) -> jax.Array:
        x_btc = self.conv_pre(mel_btm)
        for i, up in enumerate(self.ups):
            x_btc = up(jax.nn.leaky_relu(x_btc, LRELU_SLOPE))
            mrf = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            x_btc = sum(block(x_btc) for block in mrf) / self.num_kernels
        x_btc = self.conv_post(jax.nn.leaky_relu(x_btc, FINAL_SLOPE))
        return jnp.tanh(x_btc[..., 0])

    def remove_weight_norm(self) -> Generator:
        """Fold weight norm into plain weights, in place, for inference (as the official ``inference.py``)."""
        return remove_weight_norm(self)


class DiscriminatorP(nnx.Module):
    """One period of the MPD: wav_bt (B, T) -> logits (B, n), feature maps [(B, T_l, period, C_l)] * 6.

    The wave is reflect-padded at its end to a multiple of ``period`` and folded to (B, T / p, p, 1), so each
    (k, 1) convolution sees every p-th sample. ``channels`` defaults to the paper's widths.
    """

    def __init__(self, period: int, kernel_size: int = 5, stride: int = 3,
                 channels: tuple[int, ...] = (32, 128, 512, 1024, 1024), use_spectral_norm: bool = False,
                 *, rngs: nnx.Rngs):
        self.period = period
        norm = "spectral" if use_spectral_norm else "weight"
        widths = (1, *channels)
        strides = [(stride, 1)] * (len(channels) - 1) + [1]
        # Padding is get_padding(5, 1) = 2 whatever kernel_size is, as in the official code.
        self.convs = nnx.List([Conv(a, b, (kernel_size, 1), stride=s, padding=(2, 0), norm=norm, rngs=rngs)
                               for a, b, s in zip(widths[:-1], widths[1:], strides, strict=True)])
        self.conv_post = Conv(channels[-1], 1, (3, 1), padding=(1, 0), norm=norm, rngs=rngs)

    def __call__(self, wav_bt: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        b, t = wav_bt.shape
        if t % self.period:
            wav_bt = jnp.pad(wav_bt, ((0, 0), (0, self.period - t % self.period)), mode="reflect")
        x = wav_bt.reshape(b, -1, self.period, 1)  # (B, T / p, p, 1)
        fmaps = []
        for layer in self.convs:
            x = jax.nn.leaky_relu(layer(x), LRELU_SLOPE)
            fmaps.append(x)
        x = self.conv_post(x)
        fmaps.append(x)
        return x.reshape(b, -1), fmaps


class MultiPeriodDiscriminator(nnx.Module):
    """MPD: wav_bt (B, T) -> ([logits (B, n_p)] per period, [feature maps] per period)."""

    def __init__(self, periods: tuple[int, ...] = RECIPE["mpd_periods"],
                 channels: tuple[int, ...] = (32, 128, 512, 1024, 1024), *, rngs: nnx.Rngs):
        self.discriminators = nnx.List([DiscriminatorP(p, channels=channels, rngs=rngs) for p in periods])

    def __call__(self, wav_bt: jax.Array) -> tuple[list[jax.Array], list[list[jax.Array]]]:
        outs = [d(wav_bt) for d in self.discriminators]
        return [o[0] for o in outs], [o[1] for o in outs]


# (kernel, stride, groups, padding) of DiscriminatorS's convolutions before conv_post.
_S_LAYERS = ((15, 1, 1, 7), (41, 2, 4, 20), (41, 2, 16, 20), (41, 4, 16, 20), (41, 4, 16, 20), (41, 1, 16, 20),
             (5, 1, 1, 2))


class DiscriminatorS(nnx.Module):
    """One scale of the MSD: wav_bt (B, T) -> logits (B, n), feature maps [(B, T_l, C_l)] * 8.

    ``channels`` (seven widths) defaults to the paper's 128, 128, 256, 512, 1024, 1024, 1024.
    """

    def __init__(self, use_spectral_norm: bool = False,
                 channels: tuple[int, ...] = (128, 128, 256, 512, 1024, 1024, 1024), *, rngs: nnx.Rngs):
        norm = "spectral" if use_spectral_norm else "weight"
        widths = (1, *channels)
        self.convs = nnx.List([Conv(a, b, k, stride=s, groups=g, padding=p, norm=norm, rngs=rngs)
                               for a, b, (k, s, g, p) in zip(widths[:-1], widths[1:], _S_LAYERS, strict=True)])
        self.conv_post = Conv(channels[-1], 1, 3, padding=1, norm=norm, rngs=rngs)

    def __call__(self, wav_bt: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        x_btc = wav_bt[..., None]
        fmaps = []
        for layer in self.convs:
            x_btc = jax.nn.leaky_relu(layer(x_btc), LRELU_SLOPE)
            fmaps.append(x_btc)
        x_btc = self.conv_post(x_btc)
        fmaps.append(x_btc)
        return x_btc.reshape(x_btc.shape[0], -1), fmaps


class MultiScaleDiscriminator(nnx.Module):
    """MSD: wav_bt (B, T) -> ([logits] per scale, [feature maps] per scale).

    Scale i > 0 sees the wave average-pooled i times by AvgPool1d(4, 2, padding=2) (zeros counted);
    the first scale uses spectral norm.
    """

    def __init__(self, scales: int = RECIPE["msd_scales"],
                 channels: tuple[int, ...] = (128, 128, 256, 512, 1024, 1024, 1024), *, rngs: nnx.Rngs):
        self.discriminators = nnx.List([DiscriminatorS(use_spectral_norm=i == 0, channels=channels, rngs=rngs)
                                        for i in range(scales)])

    def __call__(self, wav_bt: jax.Array) -> tuple[list[jax.Array], list[list[jax.Array]]]:
        logits, fmaps = [], []
        for i, d in enumerate(self.discriminators):
            if i:
                wav_bt = avg_pool1d(wav_bt[..., None], 4, 2, 2)[..., 0]
            out, fmap = d(wav_bt)
            logits.append(out)
            fmaps.append(fmap)
        return logits, fmaps


class Discriminator(nnx.Module):
    """MPD and MSD together: wav_bt (B, T) -> (8 logits, 8 lists of feature maps), the MPD's five first."""

    def __init__(self, mpd: MultiPeriodDiscriminator, msd: MultiScaleDiscriminator):
        self.mpd, self.msd = mpd, msd

    def __call__(self, wav_bt: jax.Array) -> tuple[list[jax.Array], list[list[jax.Array]]]:
        logits_p, fmaps_p = self.mpd(wav_bt)
        logits_s, fmaps_s = self.msd(wav_bt)
        return logits_p + logits_s, fmaps_p + fmaps_s


def build(n_mels: int = RECIPE["num_mels"], variant: str | Mapping | None = None, *,
          rngs: nnx.Rngs) -> tuple[Generator, Discriminator]:
    """The recipe's generator (V1 unless ``variant`` says otherwise) and its MPD + MSD discriminator."""
    generator = Generator(n_mels, RECIPE["variant"] if variant is None else variant, rngs=rngs)
    discriminator = Discriminator(MultiPeriodDiscriminator(rngs=rngs), MultiScaleDiscriminator(rngs=rngs))
    return generator, discriminator


def torch_name(name: str) -> str:
    """Our dotted path for an official ``state_dict`` name: the modules are named alike, so it is the name."""
    return name
