"""PyTorch ports of the GAN vocoders, layer for layer the official code, for parameter counts and parity checks.

torch is a benchmark-only dependency (``make bench-torch`` installs it into ``.venv-torch``); the package never
imports this file. The ports follow jik876/hifi-gan ``models.py`` (V1, V2, V3 generator, MPD, MSD) and
descriptinc/melgan-neurips ``mel2wav/modules.py`` (generator, multi-scale discriminator), keep their module
names (so official checkpoints load), and add only width arguments, defaulting to the papers' values, so that
tests can build tiny copies. Layouts are PyTorch's: mel (B, n_mels, frames), wave (B, 1, T).

    python benchmarks/torch_vocoders.py                 # parameter counts -> results/vocoder_params.json
    python benchmarks/torch_vocoders.py --counts-only   # print them as JSON, write nothing
    python benchmarks/torch_vocoders.py --dump OUT.npz  # tiny seeded models: weights, inputs, outputs
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm, weight_norm

warnings.filterwarnings("ignore", message=".*weight_norm.*deprecated", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning, message=".*weight_norm.*")

RESULTS = Path(__file__).parent / "results" / "vocoder_params.json"

# ---------------------------------------------------------------------------- HiFi-GAN (config_v1/v2/v3.json)
HIFIGAN_VARIANTS = {
    "v1": dict(resblock="1", upsample_rates=[8, 8, 2, 2], upsample_kernel_sizes=[16, 16, 4, 4],
               upsample_initial_channel=512, resblock_kernel_sizes=[3, 7, 11],
               resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]]),
    "v2": dict(resblock="1", upsample_rates=[8, 8, 2, 2], upsample_kernel_sizes=[16, 16, 4, 4],
               upsample_initial_channel=128, resblock_kernel_sizes=[3, 7, 11],
               resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]]),
    "v3": dict(resblock="2", upsample_rates=[8, 8, 4], upsample_kernel_sizes=[16, 16, 8],
               upsample_initial_channel=256, resblock_kernel_sizes=[3, 5, 7],
               resblock_dilation_sizes=[[1, 2], [2, 6], [3, 12]]),
}
LRELU_SLOPE = 0.1


def get_padding(kernel_size, dilation=1):
    return (kernel_size * dilation - dilation) // 2


class ResBlock1(nn.Module):
    def __init__(self, channels, kernel_size=3, dilation=(1, 3, 5)):
        super().__init__()
        self.convs1 = nn.ModuleList([
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=get_padding(kernel_size, d)))
            for d in dilation])
        self.convs2 = nn.ModuleList([
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=1, padding=get_padding(kernel_size)))
            for _ in dilation])

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            xt = c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
            x = xt + x
        return x


class ResBlock2(nn.Module):
    def __init__(self, channels, kernel_size=3, dilation=(1, 3)):
        super().__init__()
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d, padding=get_padding(kernel_size, d)))
            for d in dilation])

    def forward(self, x):
        for c in self.convs:
            x = c(F.leaky_relu(x, LRELU_SLOPE)) + x
        return x


class HiFiGANGenerator(nn.Module):
    """mel (B, n_mels, frames) -> wave (B, 1, frames * prod(upsample_rates))."""

    def __init__(self, h: dict, n_mels: int = 80):
        super().__init__()
        self.num_kernels = len(h["resblock_kernel_sizes"])
        self.num_upsamples = len(h["upsample_rates"])
        c0 = h["upsample_initial_channel"]
        self.conv_pre = weight_norm(nn.Conv1d(n_mels, c0, 7, 1, padding=3))
        resblock = ResBlock1 if str(h["resblock"]) == "1" else ResBlock2
        self.ups = nn.ModuleList()
        for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"], strict=True)):
            self.ups.append(weight_norm(nn.ConvTranspose1d(c0 // 2 ** i, c0 // 2 ** (i + 1), k, u,
                                                           padding=(k - u) // 2)))
        self.resblocks = nn.ModuleList()
        for i in range(len(self.ups)):
            ch = c0 // 2 ** (i + 1)
            for k, d in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"], strict=True):
                self.resblocks.append(resblock(ch, k, d))
        self.conv_post = weight_norm(nn.Conv1d(ch, 1, 7, 1, padding=3))
        # The official code then applies init_weights (normal, std 0.01) to m.weight; after weight_norm that
        # tensor is recomputed from weight_g and weight_v at every call, so it changes nothing: left out.

    def forward(self, x):
        x = self.conv_pre(x)
        for i in range(self.num_upsamples):
            x = self.ups[i](F.leaky_relu(x, LRELU_SLOPE))
            xs = None
            for j in range(self.num_kernels):
                y = self.resblocks[i * self.num_kernels + j](x)
                xs = y if xs is None else xs + y
            x = xs / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))  # torch's default slope, 0.01, as the official code
        return torch.tanh(x)


class DiscriminatorP(nn.Module):
    def __init__(self, period, kernel_size=5, stride=3, use_spectral_norm=False,
                 channels=(32, 128, 512, 1024, 1024)):
        super().__init__()
        self.period = period
        norm_f = spectral_norm if use_spectral_norm else weight_norm
        widths = (1, *channels)
        layers = [norm_f(nn.Conv2d(a, b, (kernel_size, 1), (stride, 1), padding=(get_padding(5, 1), 0)))
                  for a, b in zip(widths[:-2], widths[1:-1], strict=True)]
        layers.append(norm_f(nn.Conv2d(widths[-2], widths[-1], (kernel_size, 1), 1, padding=(2, 0))))
        self.convs = nn.ModuleList(layers)
        self.conv_post = norm_f(nn.Conv2d(channels[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x):
        fmap = []
        b, c, t = x.shape
        if t % self.period != 0:
            n_pad = self.period - (t % self.period)
            x = F.pad(x, (0, n_pad), "reflect")
            t = t + n_pad
        x = x.view(b, c, t // self.period, self.period)
        for layer in self.convs:
            x = F.leaky_relu(layer(x), LRELU_SLOPE)
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return torch.flatten(x, 1, -1), fmap


class MultiPeriodDiscriminator(nn.Module):
    """As the official one, but called on one wave: returns ([logits], [fmaps]) like the JAX module."""

    def __init__(self, periods=(2, 3, 5, 7, 11), channels=(32, 128, 512, 1024, 1024)):
        super().__init__()
        self.discriminators = nn.ModuleList([DiscriminatorP(p, channels=channels) for p in periods])

    def forward(self, y):
        outs = [d(y) for d in self.discriminators]
        return [o[0] for o in outs], [o[1] for o in outs]


class DiscriminatorS(nn.Module):
    def __init__(self, use_spectral_norm=False, channels=(128, 128, 256, 512, 1024, 1024, 1024)):
        super().__init__()
        norm_f = spectral_norm if use_spectral_norm else weight_norm
        c = channels
        self.convs = nn.ModuleList([
            norm_f(nn.Conv1d(1, c[0], 15, 1, padding=7)),
            norm_f(nn.Conv1d(c[0], c[1], 41, 2, groups=4, padding=20)),
            norm_f(nn.Conv1d(c[1], c[2], 41, 2, groups=16, padding=20)),
            norm_f(nn.Conv1d(c[2], c[3], 41, 4, groups=16, padding=20)),
            norm_f(nn.Conv1d(c[3], c[4], 41, 4, groups=16, padding=20)),
            norm_f(nn.Conv1d(c[4], c[5], 41, 1, groups=16, padding=20)),
            norm_f(nn.Conv1d(c[5], c[6], 5, 1, padding=2)),
        ])
        self.conv_post = norm_f(nn.Conv1d(c[6], 1, 3, 1, padding=1))

    def forward(self, x):
        fmap = []
        for layer in self.convs:
            x = F.leaky_relu(layer(x), LRELU_SLOPE)
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return torch.flatten(x, 1, -1), fmap


class MultiScaleDiscriminator(nn.Module):
    def __init__(self, channels=(128, 128, 256, 512, 1024, 1024, 1024)):
        super().__init__()
        self.discriminators = nn.ModuleList([
            DiscriminatorS(use_spectral_norm=True, channels=channels),
            DiscriminatorS(channels=channels),
            DiscriminatorS(channels=channels),
        ])
        self.meanpools = nn.ModuleList([nn.AvgPool1d(4, 2, padding=2), nn.AvgPool1d(4, 2, padding=2)])

    def forward(self, y):
        logits, fmaps = [], []
        for i, d in enumerate(self.discriminators):
            if i != 0:
                y = self.meanpools[i - 1](y)
            out, fmap = d(y)
            logits.append(out)
            fmaps.append(fmap)
        return logits, fmaps


# ---------------------------------------------------------------------------- MelGAN (mel2wav/modules.py)
def WNConv1d(*args, **kwargs):
    return weight_norm(nn.Conv1d(*args, **kwargs))


def WNConvTranspose1d(*args, **kwargs):
    return weight_norm(nn.ConvTranspose1d(*args, **kwargs))


class ResnetBlock(nn.Module):
    def __init__(self, dim, dilation=1):
        super().__init__()
        self.block = nn.Sequential(
            nn.LeakyReLU(0.2),
            nn.ReflectionPad1d(dilation),
            WNConv1d(dim, dim, kernel_size=3, dilation=dilation),
            nn.LeakyReLU(0.2),
            WNConv1d(dim, dim, kernel_size=1),
        )
        self.shortcut = WNConv1d(dim, dim, kernel_size=1)

    def forward(self, x):
        return self.shortcut(x) + self.block(x)


class MelGANGenerator(nn.Module):
    """mel (B, n_mels, frames) -> wave (B, 1, frames * prod(ratios)); the official weights_init is left out
    for the reason given in HiFiGANGenerator."""

    def __init__(self, input_size=80, ngf=32, n_residual_layers=3, ratios=(8, 8, 2, 2)):
        super().__init__()
        self.hop_length = int(np.prod(ratios))
        mult = int(2 ** len(ratios))
        model = [nn.ReflectionPad1d(3), WNConv1d(input_size, mult * ngf, kernel_size=7, padding=0)]
        for r in ratios:
            model += [
                nn.LeakyReLU(0.2),
                WNConvTranspose1d(mult * ngf, mult * ngf // 2, kernel_size=r * 2, stride=r,
                                  padding=r // 2 + r % 2, output_padding=r % 2),
            ]
            for j in range(n_residual_layers):
                model += [ResnetBlock(mult * ngf // 2, dilation=3 ** j)]
            mult //= 2
        model += [nn.LeakyReLU(0.2), nn.ReflectionPad1d(3), WNConv1d(ngf, 1, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    def __init__(self, ndf, n_layers, downsampling_factor, max_channels=1024):
        super().__init__()
        model = nn.ModuleDict()
        model["layer_0"] = nn.Sequential(nn.ReflectionPad1d(7), WNConv1d(1, ndf, kernel_size=15), nn.LeakyReLU(0.2))
        nf = ndf
        stride = downsampling_factor
        for n in range(1, n_layers + 1):
            nf_prev = nf
            nf = min(nf * stride, max_channels)
            model[f"layer_{n}"] = nn.Sequential(
                WNConv1d(nf_prev, nf, kernel_size=stride * 10 + 1, stride=stride, padding=stride * 5,
                         groups=nf_prev // 4),
                nn.LeakyReLU(0.2),
            )
        nf = min(nf * 2, max_channels)
        # The official code feeds this layer nf_prev channels, the width so far only once it has reached the cap.
        model[f"layer_{n_layers + 1}"] = nn.Sequential(WNConv1d(nf_prev, nf, kernel_size=5, stride=1, padding=2),
                                                           nn.LeakyReLU(0.2))
        model[f"layer_{n_layers + 2}"] = WNConv1d(nf, 1, kernel_size=3, stride=1, padding=1)
        self.model = model

    def forward(self, x):
        results = []
        for layer in self.model.values():
            x = layer(x)
            results.append(x)
        return results


class MelGANDiscriminator(nn.Module):
    """The official multi-scale discriminator: a list (per scale) of the 7 layer outputs, logits last."""

    def __init__(self, num_D=3, ndf=16, n_layers=4, downsampling_factor=4, max_channels=1024):
        super().__init__()
        self.model = nn.ModuleDict()
        for i in range(num_D):
            self.model[f"disc_{i}"] = NLayerDiscriminator(ndf, n_layers, downsampling_factor, max_channels)
        self.downsample = nn.AvgPool1d(4, stride=2, padding=1, count_include_pad=False)

    def forward(self, x):
        results = []
        for disc in self.model.values():
            results.append(disc(x))
            x = self.downsample(x)
        return results


# ---------------------------------------------------------------------------- counts and dumps
def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def param_counts() -> dict:
    """{model/variant: {generator, mpd, msd}} at 80 mels, the official widths."""
    counts = {}
    mpd, msd = n_params(MultiPeriodDiscriminator()), n_params(MultiScaleDiscriminator())
    for name, h in HIFIGAN_VARIANTS.items():
        counts[f"hifigan/{name}"] = dict(generator=n_params(HiFiGANGenerator(h)), mpd=mpd, msd=msd)
    counts["melgan/base"] = dict(generator=n_params(MelGANGenerator()), msd=n_params(MelGANDiscriminator()))
    return counts


# Tiny versions for the parity tests: the official layer plan at a few channels.
TINY = dict(
    n_mels=8, frames=5, batch=2,
    hifigan=dict(HIFIGAN_VARIANTS, **{v: dict(HIFIGAN_VARIANTS[v], upsample_initial_channel=16)
                                      for v in HIFIGAN_VARIANTS}),
    mpd_channels=[4, 8, 8, 16, 16],
    msd_channels=[16, 16, 32, 32, 32, 32, 32],
    melgan=dict(ngf=4, n_residual_layers=3, ratios=[8, 8, 2, 2], num_D=3, ndf=4, n_layers=3, downsampling_factor=4,
                max_channels=16),
)


def _flat(prefix: str, logits, fmaps) -> dict:
    out = {}
    for i, (lg, fm) in enumerate(zip(logits, fmaps, strict=True)):
        out[f"{prefix}/logits/{i}"] = lg.detach().numpy()
        for j, f in enumerate(fm):
            out[f"{prefix}/fmap/{i}/{j}"] = f.detach().numpy()
    return out


def dump(path: Path, seed: int = 0) -> None:
    """Seeded tiny models in training mode: their state dicts, one input each and what they return."""
    torch.manual_seed(seed)
    t = TINY
    arrays: dict[str, np.ndarray] = {}
    mel = torch.randn(t["batch"], t["n_mels"], t["frames"])
    arrays["mel"] = mel.numpy()

    def save(prefix, module):
        for name, value in module.state_dict().items():
            arrays[f"{prefix}/state/{name}"] = value.detach().numpy().copy()  # the call updates u, v in place

    for v in ("v1", "v2", "v3"):
        g = HiFiGANGenerator(t["hifigan"][v], n_mels=t["n_mels"])
        save(f"hifigan_{v}/generator", g)
        arrays[f"hifigan_{v}/generator/output"] = g(mel).detach().numpy()
    wav = torch.tanh(torch.randn(t["batch"], 1, t["frames"] * 256))
    arrays["wav"] = wav.numpy()
    mpd, msd = MultiPeriodDiscriminator(channels=t["mpd_channels"]), MultiScaleDiscriminator(channels=t["msd_channels"])
    save("hifigan/mpd", mpd)
    save("hifigan/msd", msd)  # before the call: the spectral-norm vectors the call starts from
    arrays.update(_flat("hifigan/mpd", *mpd(wav)))
    arrays.update(_flat("hifigan/msd", *msd(wav)))
    arrays["hifigan/msd/u_after_call"] = msd.discriminators[0].convs[0].weight_u.numpy().copy()

    m = t["melgan"]
    g = MelGANGenerator(t["n_mels"], m["ngf"], m["n_residual_layers"], m["ratios"])
    save("melgan/generator", g)
    arrays["melgan/generator/output"] = g(mel).detach().numpy()
    d = MelGANDiscriminator(m["num_D"], m["ndf"], m["n_layers"], m["downsampling_factor"], m["max_channels"])
    save("melgan/msd", d)
    results = d(wav)
    arrays.update(_flat("melgan/msd", [torch.flatten(r[-1], 1) for r in results], [r[:-1] for r in results]))
    arrays["tiny"] = np.frombuffer(json.dumps(t).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts-only", action="store_true", help="print the counts as JSON, write nothing")
    parser.add_argument("--dump", type=Path, help="write the tiny models' weights, inputs and outputs here")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.dump:
        dump(args.dump)
        return
    counts = param_counts()
    text = json.dumps(counts, indent=2)
    print(text)
    if not args.counts_only:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text + "\n")


if __name__ == "__main__":
    main()
