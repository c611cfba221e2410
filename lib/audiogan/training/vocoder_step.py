"""A vocoder's state and its jit-compiled training step, a pure function over the split state.

``step(state, wav_bt) -> (state, metrics)``: the mel of the real segments is the generator's input;
the discriminator update (HiFi-GAN: MPD + MSD, least squares; MelGAN: its multi-scale D, hinge) comes
first, then the generator update (adversarial + ``fm_weight`` x feature matching + ``mel_weight`` x
mel L1), both from one generator pass, each with AdamW whose rate decays by ``lr_decay`` once per
epoch. Real and generated clips go through a discriminator as one batch of 2B. Spectral norm's power-iteration vectors
(:class:`PowerIteration`) are state the step carries: each discriminator call advances them once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from audiogan.audio.mel import mel_spectrogram
from audiogan.errors import ConfigError
from audiogan.models import conv, hifigan, melgan
from audiogan.models.vocoder_blocks import PowerIteration, count_params
from audiogan.training import distributed, vocoder_losses
from audiogan.training.vocoder_config import TINY, VocoderConfig


@struct.dataclass
class VocoderState:
    g_params: nnx.State
    d_params: nnx.State
    d_power: nnx.State  # spectral norm's u and v (empty without spectral norm)
    g_opt: optax.OptState
    d_opt: optax.OptState
    step: jax.Array  # int32 scalar: updates done
    key: jax.Array  # uint32[2]: the run's base key (kept for what a step may draw)


@dataclasses.dataclass(frozen=True)
class Vocoder:
    """The static half of a vocoder run: graph definitions, optimisers, sharding."""

    config: VocoderConfig
    g_def: nnx.GraphDef
    d_def: nnx.GraphDef
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    mesh: Mesh

    def generator(self, state: VocoderState) -> nnx.Module:
        return nnx.merge(self.g_def, state.g_params)

    def discriminator(self, state: VocoderState) -> nnx.Module:
        return nnx.merge(self.d_def, state.d_params, state.d_power)

    @property
    def data_sharding(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec("data"))

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec())


def build_networks(config: VocoderConfig, seed: int | None = None) -> tuple[nnx.Module, nnx.Module]:
    """The generator and the discriminator of ``config`` (HiFi-GAN: MPD and MSD as one module)."""
    rngs = nnx.Rngs(config.seed if seed is None else seed)
    if config.model == "hifigan":
        generator = hifigan.Generator(config.n_mels, config.hifigan_variant(), rngs=rngs)
        mpd_kw, msd_kw = {}, {}
        if config.variant == "tiny":
            t = TINY["hifigan"]
            mpd_kw, msd_kw = dict(periods=t["mpd_periods"], channels=t["mpd_channels"]), dict(
                scales=t["msd_scales"], channels=t["msd_channels"])
        mpd = hifigan.MultiPeriodDiscriminator(**mpd_kw, rngs=rngs)
        msd = hifigan.MultiScaleDiscriminator(**msd_kw, rngs=rngs)
        return generator, hifigan.Discriminator(mpd, msd)
    h = config.melgan_variant()
    generator = melgan.Generator(config.n_mels, h["ngf"], h["n_residual_layers"], tuple(h["ratios"]), rngs=rngs)
    discriminator = melgan.Discriminator(h["num_D"], h["ndf"], h["n_layers"], h["downsampling_factor"],
                                         h["max_channels"], rngs=rngs)
    return generator, discriminator


def summary(config: VocoderConfig) -> dict[str, int]:
    """Trainable weights of both networks (spectral norm's vectors not counted)."""
    g, d = nnx.eval_shape(lambda: build_networks(config))
    return {"generator_params": count_params(g), "discriminator_params": count_params(d)}


def optimiser(config: VocoderConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """AdamW(lr, (beta1, beta2), weight_decay), the rate times ``lr_decay`` after each epoch."""
    schedule = optax.exponential_decay(config.lr, transition_steps=max(1, steps_per_epoch),
                                       decay_rate=config.lr_decay, staircase=True)
    return optax.adamw(schedule, b1=config.beta1, b2=config.beta2, weight_decay=config.weight_decay)


def create(config: VocoderConfig, steps_per_epoch: int) -> tuple[Vocoder, VocoderState]:
    """Both networks, both optimisers and the key of a fresh run, placed on all devices."""
    devices = jax.devices()
    if config.batch_size % len(devices):
        raise ConfigError(f"batch_size={config.batch_size} must be a multiple of the {len(devices)} devices "
                          "it is split over.")
    g_abs, d_abs = nnx.eval_shape(lambda: build_networks(config))
    g_def = nnx.split(g_abs, nnx.Param)[0]
    d_def = nnx.split(d_abs, nnx.Param, PowerIteration)[0]
    g_tx, d_tx = optimiser(config, steps_per_epoch), optimiser(config, steps_per_epoch)
    vocoder = Vocoder(config, g_def, d_def, g_tx, d_tx, Mesh(np.asarray(devices), ("data",)))

    def initial_state() -> VocoderState:
        g, d = build_networks(config)
        g_params = nnx.split(g, nnx.Param)[1]
        _, d_params, d_power = nnx.split(d, nnx.Param, PowerIteration)
        return VocoderState(g_params=g_params, d_params=d_params, d_power=d_power,
                            g_opt=g_tx.init(g_params), d_opt=d_tx.init(d_params),
                            step=jnp.zeros((), jnp.int32), key=jax.random.PRNGKey(config.seed))

    return vocoder, distributed.replicate(jax.jit(initial_state)(), vocoder.replicated)


def _halves(outputs):
    """A discriminator's outputs on [real; fake] as (on real, on fake), per sub-discriminator (and layer)."""
    logits, fmaps = outputs
    n = logits[0].shape[0] // 2
    return ([x[:n] for x in logits], [x[n:] for x in logits],
            [[f[:n] for f in layers] for layers in fmaps], [[f[n:] for f in layers] for layers in fmaps])


def make_step(vocoder: Vocoder) -> Callable[[VocoderState, jax.Array], tuple[VocoderState, dict]]:
    """The compiled ``step(state, wav_bt)``: one D update, then one G update; the state is donated."""
    cfg = vocoder.config
    mel, loss_mel = cfg.mel_settings(), cfg.loss_mel_settings()
    d_loss_of = vocoder_losses.lsgan_d_loss if cfg.loss == "lsgan" else vocoder_losses.hinge_d_loss
    g_loss_of = vocoder_losses.lsgan_g_loss if cfg.loss == "lsgan" else vocoder_losses.hinge_g_loss

    def judge(d_params, d_power, real_bt, fake_bt):
        d = nnx.merge(vocoder.d_def, d_params, d_power, copy=True)  # fresh Variables: u, v change in this trace
        outputs = d(jnp.concatenate([real_bt, fake_bt]))
        return _halves(outputs), nnx.state(d, PowerIteration)

    def d_loss_fn(d_params, d_power, real_bt, fake_bt):
        (real, fake, _, _), d_power = judge(d_params, d_power, real_bt, fake_bt)
        aux = {"d_real": jnp.mean(jnp.stack([r.mean() for r in real])),
               "d_fake": jnp.mean(jnp.stack([f.mean() for f in fake])), "d_power": d_power}
        return d_loss_of(real, fake), aux

    def g_loss_fn(fake_bt, d_params, d_power, real_bt):
        (_, fake, fmaps_real, fmaps_fake), d_power = judge(d_params, d_power, real_bt, fake_bt)
        adversarial = g_loss_of(fake)
        fm = vocoder_losses.feature_matching_loss(fmaps_real, fmaps_fake)
        mel_l1 = vocoder_losses.mel_l1(real_bt, fake_bt, loss_mel)
        if cfg.mel_weight == 0:  # logged, not trained on
            mel_l1 = jax.lax.stop_gradient(mel_l1)
        total = adversarial + cfg.fm_weight * fm + cfg.mel_weight * mel_l1
        return total, {"g_adv": adversarial, "fm": fm, "mel_l1": mel_l1, "d_power": d_power}

    def d_update(state: VocoderState, real_bt, fake_bt):
        (loss, aux), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(state.d_params, state.d_power,
                                                                         real_bt, fake_bt)
        updates, d_opt = vocoder.d_tx.update(grads, state.d_opt, state.d_params)
        state = state.replace(d_params=optax.apply_updates(state.d_params, updates), d_opt=d_opt,
                              d_power=aux.pop("d_power"))
        return state, {"d_loss": loss} | aux

    def g_update(state: VocoderState, real_bt, fake_bt, g_vjp):
        (loss, aux), dloss_dfake = jax.value_and_grad(g_loss_fn, has_aux=True)(fake_bt, state.d_params,
                                                                               state.d_power, real_bt)
        (grads,) = g_vjp(dloss_dfake)
        updates, g_opt = vocoder.g_tx.update(grads, state.g_opt, state.g_params)
        state = state.replace(g_params=optax.apply_updates(state.g_params, updates), g_opt=g_opt,
                              d_power=aux.pop("d_power"))
        return state, {"g_loss": loss} | aux

    def step(state: VocoderState, wav_bt: jax.Array):
        mel_btm = mel_spectrogram(wav_bt, mel).transpose(0, 2, 1)  # (B, frames, n_mels)
        # One generator pass serves both updates, as y_g_hat does in the official loop: D learns from it
        # detached, then G's loss (through the updated D) is pulled back through it.
        fake_bt, g_vjp = jax.vjp(lambda g_params: nnx.merge(vocoder.g_def, g_params)(mel_btm), state.g_params)
        state, d_metrics = d_update(state, wav_bt, jax.lax.stop_gradient(fake_bt))
        state, g_metrics = g_update(state, wav_bt, fake_bt, g_vjp)
        return state.replace(step=state.step + 1), d_metrics | g_metrics

    return conv.jit(step, options=conv.compiler_options(), donate_argnums=0)


class FoldedGenerator:
    """``g_params`` -> (graph, params) of the generator with weight norm folded into plain weights
    (``Generator.remove_weight_norm``, as the official inference), for inference only: the same outputs
    without recomputing the norm or rearranging transposed kernels at every call. The last fold is kept,
    so calls with the same ``g_params`` object fold once."""

    def __init__(self, vocoder: Vocoder):
        self.vocoder = vocoder
        self.graph = None
        self.last: tuple[nnx.State, nnx.State] | None = None  # (g_params, folded params)

    def _fold(self, g_params):
        g = nnx.merge(self.vocoder.g_def, g_params)
        g.remove_weight_norm()
        return nnx.split(g)

    def __call__(self, g_params: nnx.State):
        if self.last is None or self.last[0] is not g_params:
            if self.graph is None:  # eagerly once: the folded graph is static
                self.graph, folded = self._fold(g_params)
                self._fold_params = jax.jit(lambda p: self._fold(p)[1])
            else:
                folded = self._fold_params(g_params)
            self.last = (g_params, folded)
        return self.graph, self.last[1]


def make_vocode(vocoder: Vocoder) -> Callable[[nnx.State, jax.Array], jax.Array]:
    """Compiled ``vocode(g_params, wav_bt) -> wav_bt``: the generator (weight norm folded) on the clips'
    own mels, (B, T) -> (B, T // hop * hop)."""
    mel = vocoder.config.mel_settings()
    fold = FoldedGenerator(vocoder)

    def vocode(graph, params, wav_bt):
        return nnx.merge(graph, params)(mel_spectrogram(wav_bt, mel).transpose(0, 2, 1))

    compiled = conv.jit(vocode, options=conv.compiler_options(), static_argnums=0)
    return lambda g_params, wav_bt: compiled(*fold(g_params), wav_bt)


def make_synthesise(vocoder: Vocoder) -> Callable[[nnx.State, jax.Array], jax.Array]:
    """Compiled ``synthesise(g_params, mel_bft) -> wav_bt``: mels (B, n_mels, frames) -> (B, frames * hop),
    through the generator with weight norm folded."""
    fold = FoldedGenerator(vocoder)

    def synthesise(graph, params, mel_bft):
        return nnx.merge(graph, params)(mel_bft.transpose(0, 2, 1))

    compiled = conv.jit(synthesise, options=conv.compiler_options(), static_argnums=0)
    return lambda g_params, mel_bft: compiled(*fold(g_params), mel_bft)
