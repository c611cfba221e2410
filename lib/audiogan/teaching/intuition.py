"""GAN intuition: the adversarial game on a one-dimensional mixture of Gaussians.

Notebook ``00_gan_intuition`` walks through the five steps of GAN training on numbers instead of
sound, where everything fits on one axis: the data's density, the generator's density and the
discriminator's output D(x).

1. initialise both networks (:func:`create`);
2. turn noise into samples (``Generator``, :func:`fake_samples`);
3. let the discriminator score real and generated samples (``Discriminator``, :func:`scores`);
4. update the discriminator, then the generator (:func:`make_step`);
5. repeat (:func:`train`, which keeps snapshots of both networks for :func:`animation`).

Plain GANs often drop some of the data's modes (mode collapse). ``pack > 1`` is the cure shown
here (PacGAN, Lin et al. 2018): the discriminator judges ``pack`` samples at once, so a set of
samples that all look alike, which real data rarely gives, is easy for it to reject, and the
generator is pushed to spread over every mode.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from matplotlib.figure import Figure

from audiogan.errors import ConfigError


# ---------------------------------------------------------------------------- the data
@dataclasses.dataclass(frozen=True)
class Mixture:
    """A mixture of Gaussians on the real line: the "real data" of the game."""

    means: tuple[float, ...] = (-6.0, -2.0, 2.0, 6.0)
    stds: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25)
    weights: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25)

    def __post_init__(self):
        if not (len(self.means) == len(self.stds) == len(self.weights) >= 1):
            raise ConfigError("a Mixture needs as many means, stds and weights, at least one of each.")
        if min(self.stds) <= 0 or min(self.weights) < 0 or not np.isclose(sum(self.weights), 1.0):
            raise ConfigError("Mixture stds must be > 0 and its weights >= 0, summing to 1.")

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        k_which, k_noise = jax.random.split(key)
        which = jax.random.choice(k_which, len(self.means), (n,), p=jnp.asarray(self.weights))
        noise = jax.random.normal(k_noise, (n,))
        return jnp.asarray(self.means)[which] + jnp.asarray(self.stds)[which] * noise

    def density(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)[..., None]
        m, s, w = (np.asarray(v) for v in (self.means, self.stds, self.weights))
        return (w * np.exp(-0.5 * ((x - m) / s) ** 2) / (s * np.sqrt(2 * np.pi))).sum(-1)

    def grid(self, n: int = 400) -> np.ndarray:
        """Points spanning the data with a margin, for drawing."""
        lo = min(m - 4 * s for m, s in zip(self.means, self.stds, strict=True)) - 1.0
        hi = max(m + 4 * s for m, s in zip(self.means, self.stds, strict=True)) + 1.0
        return np.linspace(lo, hi, n)


# ---------------------------------------------------------------------------- the networks
class Generator(nnx.Module):
    """The forger: noise z -> a number x, through a small fully connected network."""

    def __init__(self, latent_dim: int, width: int, *, rngs: nnx.Rngs):
        self.l1 = nnx.Linear(latent_dim, width, rngs=rngs)
        self.l2 = nnx.Linear(width, width, rngs=rngs)
        self.out = nnx.Linear(width, 1, rngs=rngs)

    def __call__(self, z_bd: jax.Array) -> jax.Array:
        h = nnx.leaky_relu(self.l1(z_bd), 0.2)
        h = nnx.leaky_relu(self.l2(h), 0.2)
        return self.out(h)[:, 0]  # x_b


class Discriminator(nnx.Module):
    """The appraiser: ``pack`` numbers -> one logit, its belief that they are real
    (D = sigmoid(logit)). With ``pack=1`` it judges each number on its own."""

    def __init__(self, width: int, pack: int, *, rngs: nnx.Rngs):
        self.pack = pack
        self.l1 = nnx.Linear(pack, width, rngs=rngs)
        self.l2 = nnx.Linear(width, width, rngs=rngs)
        self.out = nnx.Linear(width, 1, rngs=rngs)

    def __call__(self, x_b: jax.Array) -> jax.Array:
        """Logits, one per group of ``pack`` consecutive samples: shape (batch // pack,)."""
        h = x_b.reshape(-1, self.pack)
        h = nnx.leaky_relu(self.l1(h), 0.2)
        h = nnx.leaky_relu(self.l2(h), 0.2)
        return self.out(h)[:, 0]


# ---------------------------------------------------------------------------- settings and state
@dataclasses.dataclass(frozen=True)
class IntuitionConfig:
    """Settings of the 1-D game. The defaults train in seconds on two CPU cores."""

    steps: int = 6000
    batch_size: int = 256
    seed: int = 1
    latent_dim: int = 1
    width: int = 32
    lr: float = 1e-3
    beta1: float = 0.5
    pack: int = 1  # samples the discriminator judges together; 1 = a plain GAN, 4 = PacGAN's cure
    frames: int = 40  # snapshots kept for the animation, evenly spaced over training

    def __post_init__(self):
        for name in ("steps", "batch_size", "seed", "latent_dim", "width", "pack", "frames"):
            value = getattr(self, name)
            low = 0 if name == "seed" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name}={value!r} must be a whole number >= {low}.")
        if self.batch_size % self.pack:
            raise ConfigError(
                f"batch_size={self.batch_size} must be a multiple of pack={self.pack}, since the "
                "discriminator judges the batch in groups of pack samples."
            )
        if not 0 < self.lr < 1:
            raise ConfigError(f"lr={self.lr!r} must lie between 0 and 1 (e.g. 1e-3).")
        if not 0 <= self.beta1 < 1:
            raise ConfigError(f"beta1={self.beta1!r} must lie in [0, 1).")
        if self.frames > self.steps:
            raise ConfigError(f"frames={self.frames} cannot exceed steps={self.steps}.")


def configs_from(namespace: dict) -> tuple[IntuitionConfig, IntuitionConfig]:
    """The notebook's flat parameters as two validated configs: the plain game (pack=1) and the
    cured one (``pack`` samples judged together). A bad value stops here with a ConfigError."""
    names = ("steps", "batch_size", "seed", "latent_dim", "width", "lr", "beta1", "frames")
    plain = IntuitionConfig(**{k: namespace[k] for k in names if k in namespace})
    pack = namespace.get("pack", 4)
    if isinstance(pack, bool) or not isinstance(pack, int) or pack < 2:
        raise ConfigError(f"pack={pack!r} must be a whole number >= 2: the cure judges several samples at once.")
    return plain, dataclasses.replace(plain, pack=pack)


@dataclasses.dataclass(frozen=True)
class Game:
    """The static half of the game: the data, both graph definitions and both optimisers."""

    config: IntuitionConfig
    mixture: Mixture
    g_def: nnx.GraphDef
    d_def: nnx.GraphDef
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation

    def generator(self, g_params) -> Generator:
        return nnx.merge(self.g_def, g_params)

    def discriminator(self, d_params) -> Discriminator:
        return nnx.merge(self.d_def, d_params)


def count_params(params) -> int:
    return int(sum(np.size(x) for x in jax.tree.leaves(params)))


def create(config: IntuitionConfig, mixture: Mixture | None = None) -> tuple[Game, dict]:
    """Step 1: initialise both networks and their optimisers from the seed."""
    rngs = nnx.Rngs(config.seed)
    g_def, g_params = nnx.split(Generator(config.latent_dim, config.width, rngs=rngs), nnx.Param)
    d_def, d_params = nnx.split(Discriminator(config.width, config.pack, rngs=rngs), nnx.Param)
    g_tx = optax.adam(config.lr, b1=config.beta1)
    d_tx = optax.adam(config.lr, b1=config.beta1)
    game = Game(config, mixture or Mixture(), g_def, d_def, g_tx, d_tx)
    state = {
        "g": g_params, "d": d_params, "g_opt": g_tx.init(g_params), "d_opt": d_tx.init(d_params),
        "step": jnp.zeros((), jnp.int32), "key": jax.random.PRNGKey(config.seed),
    }
    return game, state


def sample_noise(key: jax.Array, n: int, latent_dim: int) -> jax.Array:
    return jax.random.normal(key, (n, latent_dim))


def fake_samples(game: Game, g_params, n: int = 20000, seed: int = 1) -> np.ndarray:
    """Step 2: ``n`` samples from the generator (fixed noise, so snapshots are comparable)."""
    z_bd = sample_noise(jax.random.PRNGKey(seed), n, game.config.latent_dim)
    return np.asarray(game.generator(g_params)(z_bd))


def real_samples(mixture: Mixture, n: int = 20000, seed: int = 2) -> np.ndarray:
    return np.asarray(mixture.sample(jax.random.PRNGKey(seed), n))


def scores(game: Game, d_params, x_b: np.ndarray) -> np.ndarray:
    """Step 3: the discriminator's D for ``x_b`` (one value per group of ``pack`` samples)."""
    return np.asarray(jax.nn.sigmoid(game.discriminator(d_params)(jnp.asarray(x_b, jnp.float32))))


# ---------------------------------------------------------------------------- the step
def _bce(logits: jax.Array, target: float) -> jax.Array:
    return optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target)).mean()


def make_step(game: Game):
    """Steps 2-4 as one pure function ``step(state) -> (state, metrics)``: noise becomes samples,
    the discriminator scores real and generated samples and is updated, then the generator is
    updated against the new discriminator (non-saturating loss: it wants D(fake) to be 1)."""
    cfg = game.config

    def d_loss_fn(d_params, g_params, real_b, z_bd):
        g, d = game.generator(g_params), game.discriminator(d_params)
        fake_b = jax.lax.stop_gradient(g(z_bd))
        real_logits, fake_logits = d(real_b), d(fake_b)
        loss = _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)  # the appraiser: real -> 1, fake -> 0
        return loss, (jax.nn.sigmoid(real_logits).mean(), jax.nn.sigmoid(fake_logits).mean())

    def g_loss_fn(g_params, d_params, z_bd):
        g, d = game.generator(g_params), game.discriminator(d_params)
        return _bce(d(g(z_bd)), 1.0)  # the forger: have its samples called real

    def d_update(state, real_b, z_bd):
        (loss, (d_real, d_fake)), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
            state["d"], state["g"], real_b, z_bd
        )
        updates, d_opt = game.d_tx.update(grads, state["d_opt"], state["d"])
        state = state | {"d": optax.apply_updates(state["d"], updates), "d_opt": d_opt}
        return state, {"d_loss": loss, "d_real": d_real, "d_fake": d_fake}

    def g_update(state, z_bd):
        loss, grads = jax.value_and_grad(g_loss_fn)(state["g"], state["d"], z_bd)
        updates, g_opt = game.g_tx.update(grads, state["g_opt"], state["g"])
        state = state | {"g": optax.apply_updates(state["g"], updates), "g_opt": g_opt}
        return state, {"g_loss": loss}

    def step(state):
        key = jax.random.fold_in(state["key"], state["step"])
        k_real, k_zd, k_zg = jax.random.split(key, 3)
        real_b = game.mixture.sample(k_real, cfg.batch_size)
        state, d_metrics = d_update(state, real_b, sample_noise(k_zd, cfg.batch_size, cfg.latent_dim))
        state, g_metrics = g_update(state, sample_noise(k_zg, cfg.batch_size, cfg.latent_dim))
        return state | {"step": state["step"] + 1}, d_metrics | g_metrics

    return step


# ---------------------------------------------------------------------------- step 5: repeat
@dataclasses.dataclass
class Snapshot:
    step: int
    g_params: nnx.State
    d_params: nnx.State


@dataclasses.dataclass
class History:
    game: Game
    snapshots: list[Snapshot]  # the first is the untrained pair (step 0), the last the final one
    metrics: dict[str, np.ndarray]  # one value per step
    seconds: float  # wall time of training, compilation included

    @property
    def final(self) -> Snapshot:
        return self.snapshots[-1]


def train(config: IntuitionConfig, mixture: Mixture | None = None) -> History:
    """Repeat the step ``config.steps`` times, keeping ``config.frames`` evenly spaced snapshots of
    both networks (and the untrained pair). The steps between two snapshots run inside one compiled
    ``lax.scan``, so the whole game takes seconds on a laptop."""
    t0 = time.perf_counter()
    game, state = create(config, mixture)
    step = make_step(game)
    # One compiled scan per chunk length (at most two lengths, since the bounds are rounded).
    run = jax.jit(lambda s, n: jax.lax.scan(lambda c, _: step(c), s, None, length=n), static_argnums=1)
    bounds = np.linspace(0, config.steps, config.frames + 1).round().astype(int)
    snapshots = [Snapshot(0, state["g"], state["d"])]
    chunks = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        state, metrics = run(state, int(b - a))
        chunks.append(metrics)
        snapshots.append(Snapshot(int(b), state["g"], state["d"]))
    metrics = {k: np.concatenate([np.asarray(c[k]) for c in chunks]) for k in chunks[0]}
    return History(game, snapshots, metrics, time.perf_counter() - t0)


# ---------------------------------------------------------------------------- measuring
def wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """The 1-D Wasserstein-1 distance between two samples of equal size: the mean gap between
    their sorted values, i.e. how far, on average, probability mass must move to turn one into
    the other (the same number as ``scipy.stats.wasserstein_distance``)."""
    a, b = np.sort(np.ravel(a).astype(np.float64)), np.sort(np.ravel(b).astype(np.float64))
    if a.shape != b.shape:
        raise ValueError(f"the samples must have the same size, got {a.size} and {b.size}")
    return float(np.abs(a - b).mean())


def mode_shares(samples: np.ndarray, mixture: Mixture, within: float = 3.0) -> np.ndarray:
    """Fraction of ``samples`` within ``within`` standard deviations of each mode's mean."""
    samples = np.asarray(samples)[:, None]
    m, s = np.asarray(mixture.means), np.asarray(mixture.stds)
    return (np.abs(samples - m) <= within * s).mean(0)


def modes_found(history: History, min_share: float | None = None) -> int:
    """How many modes hold at least ``min_share`` (default: a third of their fair share) of the
    final generator's samples."""
    weights = np.asarray(history.game.mixture.weights)
    share = mode_shares(fake_samples(history.game, history.final.g_params), history.game.mixture)
    return int((share >= (weights / 3 if min_share is None else min_share)).sum())


def distances(history: History, n: int = 20000) -> np.ndarray:
    """Wasserstein distance from the generator's samples to the data, at every snapshot."""
    real = real_samples(history.game.mixture, n)
    return np.array([wasserstein(fake_samples(history.game, s.g_params, n), real) for s in history.snapshots])


def summary(history: History) -> dict:
    """What a run achieved, as numbers (written to the run folder by the notebook)."""
    game, d = history.game, distances(history)
    final_fake = fake_samples(game, history.final.g_params)
    return {
        "pack": game.config.pack, "steps": history.final.step, "seed": game.config.seed,
        "train_seconds": round(history.seconds, 2),
        "wasserstein_start": round(float(d[0]), 4), "wasserstein_end": round(float(d[-1]), 4),
        "mode_means": list(game.mixture.means),
        "mode_shares": [round(float(c), 3) for c in mode_shares(final_fake, game.mixture)],
        "modes_found": modes_found(history),
        "mean_d_real": round(float(history.metrics["d_real"][-200:].mean()), 3),
        "mean_d_fake": round(float(history.metrics["d_fake"][-200:].mean()), 3),
    }


def discriminator_curve(game: Game, snapshot: Snapshot, xs: np.ndarray, n_packs: int = 64) -> np.ndarray:
    """D(x) on the grid ``xs``. A packed discriminator judges groups, so there each x is put in a
    group with ``pack - 1`` samples of the same snapshot's generator, and D is averaged over
    ``n_packs`` such groups: how real x looks when it turns up among the forger's current work."""
    d = game.discriminator(snapshot.d_params)
    xs = jnp.asarray(xs, jnp.float32)
    if d.pack == 1:
        return np.asarray(jax.nn.sigmoid(d(xs)))
    others = fake_samples(game, snapshot.g_params, n_packs * (d.pack - 1), seed=3).reshape(n_packs, d.pack - 1)
    groups = jnp.concatenate([
        jnp.broadcast_to(xs[:, None, None], (len(xs), n_packs, 1)),
        jnp.broadcast_to(jnp.asarray(others)[None], (len(xs), n_packs, d.pack - 1)),
    ], axis=-1)
    return np.asarray(jax.nn.sigmoid(d(groups.reshape(-1))).reshape(len(xs), n_packs).mean(-1))


# ---------------------------------------------------------------------------- pictures
def _draw(ax, game: Game, snapshot: Snapshot, xs: np.ndarray, title: str = "") -> None:
    """Data density (grey), generator density (blue histogram), D(x) (orange, right axis)."""
    ax.clear()
    data_pdf = game.mixture.density(xs)
    ax.fill_between(xs, data_pdf, color="0.8", label="data")
    fake = fake_samples(game, snapshot.g_params)
    edges = np.linspace(xs[0], xs[-1], 161)
    ax.hist(np.clip(fake, xs[0], xs[-1]), bins=edges, density=True, histtype="step", color="tab:blue",
            linewidth=1.5, label="generator")
    ax.set_ylim(0, 1.6 * data_pdf.max())
    ax.set_xlim(xs[0], xs[-1])
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.set_title(title or f"step {snapshot.step}")
    twin = getattr(ax, "_d_axis", None) or ax.twinx()
    ax._d_axis = twin
    twin.clear()  # clear() also moves the axis back to the left
    twin.yaxis.tick_right()
    twin.yaxis.set_label_position("right")
    twin.plot(xs, discriminator_curve(game, snapshot, xs), color="tab:orange", label="D(x)")
    twin.axhline(0.5, color="tab:orange", linestyle=":", linewidth=1)
    twin.set_ylim(0, 1)
    twin.set_ylabel("D(x)", color="tab:orange")
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8)


def data_figure(mixture: Mixture, n: int = 20000) -> Figure:
    """The data: the mixture's density and a histogram of samples drawn from it."""
    fig = Figure(figsize=(7, 2.5), layout="constrained")
    ax = fig.subplots()
    xs = mixture.grid()
    ax.fill_between(xs, mixture.density(xs), color="0.8", label="density of the data")
    ax.hist(real_samples(mixture, n), bins=np.linspace(xs[0], xs[-1], 161), density=True, histtype="step",
            color="k", linewidth=1, label=f"histogram of {n:,} samples")
    ax.set_xlim(xs[0], xs[-1])
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def frame(history_or_game, snapshot: Snapshot | None = None, title: str = "") -> Figure:
    """One picture of the game: the final snapshot of a History, or ``snapshot`` of a Game."""
    game = history_or_game.game if isinstance(history_or_game, History) else history_or_game
    snapshot = snapshot or history_or_game.final
    fig = Figure(figsize=(7, 3), layout="constrained")
    _draw(fig.subplots(), game, snapshot, game.mixture.grid(), title)
    return fig


def compare(histories: dict[str, History]) -> Figure:
    """The final snapshot of several runs side by side, with their Wasserstein curves below."""
    fig = Figure(figsize=(5 * len(histories), 5.5), layout="constrained")
    axes = fig.subplots(2, len(histories), squeeze=False, height_ratios=(3, 2))
    for i, (name, h) in enumerate(histories.items()):
        _draw(axes[0, i], h.game, h.final, h.game.mixture.grid(), f"{name}: step {h.final.step}")
        axes[1, i].plot([s.step for s in h.snapshots], distances(h, 5000), color="tab:blue")
        axes[1, i].set_xlabel("step")
        axes[1, i].set_ylabel("Wasserstein distance to data")
        axes[1, i].set_ylim(bottom=0)
    return fig


def animation(history: History, dpi: int = 72) -> str:
    """The game over training as a self-contained HTML animation (matplotlib's jshtml): one frame
    per snapshot, showing the data, the generator's density and D(x)."""
    from matplotlib.animation import FuncAnimation

    fig = Figure(figsize=(7, 3), dpi=dpi)  # fixed margins: a layout engine per frame doubles the time
    fig.subplots_adjust(left=0.09, right=0.91, bottom=0.16, top=0.9)
    ax = fig.subplots()
    xs = history.game.mixture.grid()

    def draw(i):
        _draw(ax, history.game, history.snapshots[i], xs)
        return []

    anim = FuncAnimation(fig, draw, frames=len(history.snapshots), interval=150, blit=False)
    return anim.to_jshtml(default_mode="once")
