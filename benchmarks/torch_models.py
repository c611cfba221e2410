"""PyTorch versions of audiogan's three model families, for ``train_step.py --vs-torch`` only.

torch is a benchmark-only dependency (``make bench-torch`` installs it into ``.venv-torch``); the
package never imports it. Each family here has the same layers, parameter counts, objective and
optimiser as the JAX recipe in ``audiogan.config.MODEL_DEFAULTS`` (:func:`build` asserts the counts
against :func:`jax_param_counts`, computed from the layer sizes the JAX modules use):

- ``mlp``: the classic GAN, Dense 256 -> 512 -> 1024 -> clip and 1024 -> 512 -> 256 -> 1 with
  LeakyReLU(0.2), Dropout(0.3) in the discriminator, tanh; non-saturating cross-entropy with real labels
  smoothed to 0.9, Adam(2e-4, 0.5, 0.999), z ~ N(0, 1);
- ``wavegan``: ``../shared/reference/wavegan_torch.py`` layer by layer (ConvTranspose1d / Conv1d, kernel
  25, stride 4, PyTorch's symmetric padding 11 | 11, which has the same shapes and FLOPs as TF's 10 | 11),
  phase shuffle radius 2 drawn once per batch (our default, the official code's); WGAN-GP;
- ``specgan``: the DCGAN pattern in 2-D, Conv2d / ConvTranspose2d kernel 5, stride 2, 4 -> 128 and
  back; WGAN-GP.

WGAN-GP (lambda 10) with Adam(1e-4, 0.5, 0.9) for wavegan and specgan; one step is ``n_critic``
discriminator updates then one generator update, as ``audiogan.training.make_step``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

LATENT = 100
SLOPE = 0.2


# ---------------------------------------------------------------------------- parameter counts of the JAX models
def jax_param_counts(model: str, d: int, clip_samples: int = 16384) -> tuple[int, int]:
    """(generator, discriminator) weights of audiogan's model, from its layer sizes (16384-sample clips)."""
    def dense(a, b):
        return a * b + b

    if model == "mlp":
        g = [LATENT, 256, 512, 1024, clip_samples]
        dd = [clip_samples, 1024, 512, 256, 1]
        return (sum(dense(a, b) for a, b in zip(g[:-1], g[1:], strict=True)),
                sum(dense(a, b) for a, b in zip(dd[:-1], dd[1:], strict=True)))
    if model == "wavegan":
        k, g_ch, d_ch = 25, [16 * d, 8 * d, 4 * d, 2 * d, d, 1], [1, d, 2 * d, 4 * d, 8 * d, 16 * d]
        g = dense(LATENT, 256 * d) + sum(k * a * b + b for a, b in zip(g_ch[:-1], g_ch[1:], strict=True))
        dsc = sum(k * a * b + b for a, b in zip(d_ch[:-1], d_ch[1:], strict=True)) + dense(256 * d, 1)
        return g, dsc
    if model == "specgan":
        k, g_ch, d_ch = 25, [16 * d, 8 * d, 4 * d, 2 * d, d, 1], [1, d, 2 * d, 4 * d, 8 * d, 16 * d]
        g = dense(LATENT, 16 * 16 * d) + sum(k * a * b + b for a, b in zip(g_ch[:-1], g_ch[1:], strict=True))
        dsc = sum(k * a * b + b for a, b in zip(d_ch[:-1], d_ch[1:], strict=True)) + dense(16 * 16 * d, 1)
        return g, dsc
    raise ValueError(f"unknown model {model!r}")


# ---------------------------------------------------------------------------- the classic GAN
class MLPGenerator(nn.Module):
    def __init__(self, clip_samples: int):
        super().__init__()
        widths = [LATENT, 256, 512, 1024, clip_samples]
        self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)])

    def forward(self, z):
        h = z
        for layer in self.layers[:-1]:
            h = F.leaky_relu(layer(h), SLOPE)
        return torch.tanh(self.layers[-1](h))


class MLPDiscriminator(nn.Module):
    def __init__(self, clip_samples: int):
        super().__init__()
        widths = [clip_samples, 1024, 512, 256]
        self.hidden = nn.ModuleList([nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)])
        self.out = nn.Linear(256, 1)

    def forward(self, x):
        for layer in self.hidden:
            x = F.dropout(F.leaky_relu(layer(x), SLOPE), 0.3, training=True)
        return self.out(x)[:, 0]


# ---------------------------------------------------------------------------- WaveGAN (the reference's layers)
def phase_shuffle(x, radius: int):
    """One shift k ~ U{-radius..radius} for the batch, reflect padding (the official code's)."""
    if radius == 0:
        return x
    k = int(torch.randint(-radius, radius + 1, ()))
    length = x.shape[-1]
    return F.pad(x, (radius, radius), mode="reflect")[:, :, radius - k: radius - k + length]


class WaveGANGenerator(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.d = d
        self.fc = nn.Linear(LATENT, 256 * d)
        ch = [16 * d, 8 * d, 4 * d, 2 * d, d, 1]
        self.convs = nn.ModuleList(
            [nn.ConvTranspose1d(ch[i], ch[i + 1], 25, 4, padding=11, output_padding=1) for i in range(5)]
        )

    def forward(self, z):
        x = F.relu(self.fc(z).view(z.shape[0], 16 * self.d, 16))
        for i, c in enumerate(self.convs):
            x = c(x)
            x = F.relu(x) if i < 4 else torch.tanh(x)
        return x[:, 0]


class WaveGANDiscriminator(nn.Module):
    def __init__(self, d: int, radius: int = 2):
        super().__init__()
        self.radius = radius
        ch = [1, d, 2 * d, 4 * d, 8 * d, 16 * d]
        self.convs = nn.ModuleList([nn.Conv1d(ch[i], ch[i + 1], 25, 4, padding=11) for i in range(5)])
        self.fc = nn.Linear(256 * d, 1)

    def forward(self, wav_bt):
        x = wav_bt[:, None, :]
        for i, c in enumerate(self.convs):
            x = F.leaky_relu(c(x), SLOPE)
            if i < 4:
                x = phase_shuffle(x, self.radius)
        return self.fc(x.flatten(1))[:, 0]


# ---------------------------------------------------------------------------- SpecGAN
class SpecGANGenerator(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.d = d
        self.fc = nn.Linear(LATENT, 16 * 16 * d)
        ch = [16 * d, 8 * d, 4 * d, 2 * d, d, 1]
        self.convs = nn.ModuleList(
            [nn.ConvTranspose2d(ch[i], ch[i + 1], 5, 2, padding=2, output_padding=1) for i in range(5)]
        )

    def forward(self, z):
        x = F.relu(self.fc(z).view(z.shape[0], 16 * self.d, 4, 4))
        for i, c in enumerate(self.convs):
            x = c(x)
            x = F.relu(x) if i < 4 else torch.tanh(x)
        return x[:, 0]  # (B, 128, 128)


class SpecGANDiscriminator(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        ch = [1, d, 2 * d, 4 * d, 8 * d, 16 * d]
        self.convs = nn.ModuleList([nn.Conv2d(ch[i], ch[i + 1], 5, 2, padding=2) for i in range(5)])
        self.fc = nn.Linear(16 * 16 * d, 1)

    def forward(self, spec_bft):
        x = spec_bft[:, None]
        for c in self.convs:
            x = F.leaky_relu(c(x), SLOPE)
        return self.fc(x.flatten(1))[:, 0]


# ---------------------------------------------------------------------------- recipes
RECIPES = {  # loss, Adam(lr, beta1, beta2), latent distribution
    "mlp": ("ns", 2e-4, 0.5, 0.999, "normal"),
    "wavegan": ("wgan-gp", 1e-4, 0.5, 0.9, "uniform"),
    "specgan": ("wgan-gp", 1e-4, 0.5, 0.9, "uniform"),
}
GP_LAMBDA = 10.0
LABEL_SMOOTHING = 0.9


def example_shape(model: str) -> tuple[int, ...]:
    return (128, 128) if model == "specgan" else (16384,)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class TorchGAN:
    """Both networks, both Adam optimisers, and the training step of one recipe."""

    def __init__(self, model: str, d: int = 64, n_critic: int = 1, seed: int = 0):
        torch.manual_seed(seed)
        if model == "mlp":
            self.g, self.d = MLPGenerator(16384), MLPDiscriminator(16384)
        elif model == "wavegan":
            self.g, self.d = WaveGANGenerator(d), WaveGANDiscriminator(d)
        elif model == "specgan":
            self.g, self.d = SpecGANGenerator(d), SpecGANDiscriminator(d)
        else:
            raise ValueError(f"unknown model {model!r}")
        expected = jax_param_counts(model, d)
        got = (count(self.g), count(self.d))
        assert got == expected, f"{model} d={d}: torch has {got} weights, the JAX model {expected}"
        self.model, self.n_critic = model, n_critic
        self.loss, lr, b1, b2, self.latent = RECIPES[model]
        self.g_opt = torch.optim.Adam(self.g.parameters(), lr=lr, betas=(b1, b2))
        self.d_opt = torch.optim.Adam(self.d.parameters(), lr=lr, betas=(b1, b2))

    def sample_z(self, n: int):
        return torch.randn(n, LATENT) if self.latent == "normal" else torch.rand(n, LATENT) * 2 - 1

    def d_loss(self, real, fake):
        d_real, d_fake = self.d(real), self.d(fake)
        if self.loss == "ns":
            return 0.5 * (F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, LABEL_SMOOTHING))
                          + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        alpha = torch.rand(real.shape[0], *([1] * (real.ndim - 1)))
        x_hat = (real + alpha * (fake - real)).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.d(x_hat).sum(), x_hat, create_graph=True)
        norms = torch.sqrt(grad.pow(2).flatten(1).sum(1) + 1e-12)
        return d_fake.mean() - d_real.mean() + GP_LAMBDA * ((norms - 1) ** 2).mean()

    def g_loss(self, fake_logits):
        if self.loss == "ns":
            return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
        return -fake_logits.mean()

    def d_update(self, real):
        with torch.no_grad():
            fake = self.g(self.sample_z(real.shape[0]))
        loss = self.d_loss(real, fake)
        self.d_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.d_opt.step()
        return loss.detach()

    def g_update(self, batch: int):
        for p in self.d.parameters():
            p.requires_grad_(False)
        loss = self.g_loss(self.d(self.g(self.sample_z(batch))))
        self.g_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.g_opt.step()
        for p in self.d.parameters():
            p.requires_grad_(True)
        return loss.detach()

    def step(self, real_cbt):
        """``n_critic`` discriminator updates (one batch each) then one generator update."""
        for i in range(self.n_critic):
            d_loss = self.d_update(real_cbt[i])
        g_loss = self.g_update(real_cbt.shape[1])
        return {"d_loss": float(d_loss), "g_loss": float(g_loss)}
