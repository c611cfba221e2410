"""A classifier of our own for scoring generated audio: a compact CNN on log-mel spectrograms.

Papers score audio GANs with a classifier trained on the real data (the WaveGAN authors trained
one on SC09). Nothing may be downloaded here, so :func:`get_classifier` trains one on any labelled
dataset (the label it uses is picked by :func:`pick_label`: digits, drum kinds, tone pitches as
MIDI notes, a labelled folder) with one call, and stores it under ``runs/classifiers/<dataset>/``:

```
classifier.json   settings (dataset, label, classes, features, network, training), split sizes,
                  train/test accuracy, log-mel normalisation; written last, so its presence means
                  the folder is complete
weights.npz       the parameters, written atomically (audiogan.files)
```
A second call with the same settings loads it instead of training again.

The network: four 3x3 convolutions (width w, 2w, 4w, 4w, ReLU; the first three each followed by
2x2 max pooling) on the normalised log-mel (mels x frames), the mean and the maximum over time
that keep the frequency axis (pitch is a position on it), a dense layer of ``features`` units (the penultimate
features the Fréchet distance and NDB use) and a dense layer to the classes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from audiogan import datasets
from audiogan.config import RunConfig
from audiogan.errors import ConfigError
from audiogan.evaluation.metrics import log_mel
from audiogan.files import atomic_path, atomic_write_text
from audiogan.models import conv

DEFAULT_ROOT = "runs/classifiers"
# Which label of a dataset the classifier learns, in order of preference.
LABEL_PREFERENCE = datasets.CLASS_LABELS + ("label", "class")
SPLIT_NAMES = ("train", "validation", "test")
# Labels that are a pitch: rolling a spectrogram in frequency would change them, so the frequency
# rolls of the augmentation are off for these (tones test accuracy: 100% without, 82% with rolls of 4 bands).
PITCH_LABELS = ("midi",)


class ClassifierError(ValueError):
    """A dataset cannot train a classifier (no labels, too few clips); the message says why."""


@dataclasses.dataclass(frozen=True)
class ClassifierSettings:
    """Everything that decides a trained classifier, besides its dataset."""

    label: str | None = None  # None: the first of LABEL_PREFERENCE the dataset has
    n_mels: int = 64
    n_frames: int = 32  # about 32 ms per frame for a second of audio
    width: int = 16
    features: int = 128
    epochs: int = 15
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    # Augmentation of training clips (SpecAugment-like): each is rolled in time by up to max_shift
    # frames and in frequency by up to freq_shift mel bands (other voices, other pitches), and one
    # band of up to mask_mels mels and one stretch of up to mask_frames frames are blanked.
    max_shift: int = 4
    freq_shift: int = 4
    mask_mels: int = 8
    mask_frames: int = 4
    clip_norm: bool = False  # subtract each clip's mean per mel band (removes a voice's timbre; not for pitch)
    test_fraction: float = 0.2  # when the dataset has no splits of its own
    seed: int = 0

    def __post_init__(self):
        for name in ("n_mels", "n_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 8 or value % 8:
                raise ConfigError(f"{name}={value!r} must be a multiple of 8 (the network pools three times).")
        for name in ("width", "features", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r} must be a positive whole number.")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"test_fraction={self.test_fraction!r} must lie in (0, 1).")


# ---------------------------------------------------------------------------- labels and splits
def pick_label(dataset: datasets.Dataset, label: str | None = None) -> str:
    """The name of the label to learn: ``label`` if given, else the first known one present."""
    if label is not None:
        if label not in dataset.labels:
            raise ClassifierError(
                f"label={label!r} is not a label of dataset {dataset.name!r}; it has "
                f"{', '.join(sorted(dataset.labels)) or 'no labels'}."
            )
        return label
    for name in LABEL_PREFERENCE:
        if name in dataset.labels:
            return name
    raise ClassifierError(
        f"dataset {dataset.name!r} has no class labels ({', '.join(sorted(dataset.labels)) or 'none'}); "
        f"a classifier needs one of {', '.join(LABEL_PREFERENCE)}. Use a labelled dataset "
        "(digits, drums, tones, or a folder in the SC09 / Speech Commands layout)."
    )


def split_indices(dataset: datasets.Dataset, test_fraction: float = 0.2, seed: int = 0) -> dict[str, np.ndarray]:
    """Clip indices of the train / (valid) / test splits.

    A dataset's own splits win (a ``split`` label of names or of codes 0, 1, 2 = train,
    validation, test); else clips are split by ``voice`` (or ``speaker``) so no voice is in two splits; else
    a seeded shuffle puts ``test_fraction`` of the clips in test.
    """
    n = len(dataset)
    if "split" in dataset.labels:
        split = np.asarray(dataset.labels["split"])
        if split.dtype.kind in "iu":
            names = dataset.info.get("splits") or list(SPLIT_NAMES)
            split = np.asarray(names)[split]
        out = {name: np.flatnonzero(split == name) for name in SPLIT_NAMES}
    else:
        group = next((dataset.labels[g] for g in ("voice", "speaker") if g in dataset.labels), None)
        rng = np.random.default_rng(seed)
        if group is not None:
            groups = np.unique(group)
            rng.shuffle(groups)
            n_test = max(1, int(round(test_fraction * len(groups))))
            test = np.isin(group, groups[:n_test])
            out = {"train": np.flatnonzero(~test), "test": np.flatnonzero(test)}
        else:
            order = rng.permutation(n)
            n_test = max(1, int(round(test_fraction * n)))
            out = {"train": np.sort(order[n_test:]), "test": np.sort(order[:n_test])}
    out = {k: v for k, v in out.items() if len(v)}
    if "train" not in out or "test" not in out:
        raise ClassifierError(
            f"dataset {dataset.name!r} ({n} clips) gives an empty train or test split; use more clips."
        )
    return out


# ---------------------------------------------------------------------------- the network
def _max_pool(x_bhwc: jax.Array) -> jax.Array:
    b, h, w, c = x_bhwc.shape
    return x_bhwc.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class _Conv(nnx.Module):
    def __init__(self, c_in: int, c_out: int, *, rngs: nnx.Rngs):
        init = nnx.initializers.he_normal()
        self.kernel = nnx.Param(init(rngs.params(), (3, 3, c_in, c_out), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((c_out,), jnp.float32))

    def __call__(self, x_bhwc: jax.Array) -> jax.Array:
        y = conv.conv2d(x_bhwc, self.kernel[...], 1, "SAME")
        return jax.nn.relu(y + self.bias[...].reshape(1, 1, 1, -1))


class Net(nnx.Module):
    """Log-mel (batch, mels, frames), normalised -> class logits; :meth:`embed` gives the
    penultimate features."""

    def __init__(self, n_mels: int, n_classes: int, width: int, features: int, *, rngs: nnx.Rngs):
        w = width
        self.convs = nnx.List([
            _Conv(1, w, rngs=rngs), _Conv(w, 2 * w, rngs=rngs), _Conv(2 * w, 4 * w, rngs=rngs),
            _Conv(4 * w, 4 * w, rngs=rngs),
        ])
        self.hidden = nnx.Linear((n_mels // 8) * 8 * w, features, rngs=rngs)
        self.out = nnx.Linear(features, n_classes, rngs=rngs)

    def embed(self, mel_bft: jax.Array) -> jax.Array:
        x = mel_bft[..., None]
        for i, layer in enumerate(self.convs):
            x = layer(x)
            if i < 3:
                x = _max_pool(x)
        # Mean and max over time; frequency stays: (batch, mels / 8, 2 x channels).
        x = jnp.concatenate([x.mean(axis=2), x.max(axis=2)], axis=-1)
        return jax.nn.relu(self.hidden(x.reshape(x.shape[0], -1)))

    def __call__(self, mel_bft: jax.Array) -> jax.Array:
        return self.out(self.embed(mel_bft))


def _build(n_mels: int, n_classes: int, width: int, features: int, seed: int) -> Net:
    """A freshly initialised network: the structure from ``nnx.eval_shape`` (nothing computed),
    the weights drawn on the host (He normal, zero biases), since initialising eagerly in JAX compiles
    every initialiser on its own."""
    net = nnx.eval_shape(lambda: Net(n_mels, n_classes, width, features, rngs=nnx.Rngs(0)))
    rng = np.random.default_rng(seed)
    leaves, treedef = jax.tree_util.tree_flatten(nnx.state(net))
    values = [
        jnp.asarray(rng.normal(size=x.shape) * np.sqrt(2.0 / np.prod(x.shape[:-1])), jnp.float32)
        if len(x.shape) > 1 else jnp.zeros(x.shape, jnp.float32)
        for x in leaves
    ]
    nnx.update(net, jax.tree_util.tree_unflatten(treedef, values))
    return net


# ---------------------------------------------------------------------------- the trained classifier
@dataclasses.dataclass
class Classifier:
    """A trained network with what it needs to read clips: its settings, classes, normalisation."""

    net: Net
    info: dict[str, Any]  # classifier.json
    path: Path | None = None

    def __post_init__(self):
        graphdef, state = nnx.split(self.net)

        def apply(state, mel_bft):
            net = nnx.merge(graphdef, state)
            feats = net.embed(mel_bft)
            return jax.nn.softmax(net.out(feats)), feats

        self._apply = conv.jit(apply)
        self._state = state

    @property
    def classes(self) -> list:
        return self.info["classes"]

    @property
    def test_accuracy(self) -> float:
        return self.info["test_accuracy"]

    def mel(self, clips: np.ndarray) -> np.ndarray:
        """Normalised log-mel input (clips, mels, frames); clips must be at the dataset's rate."""
        s = self.info["settings"]
        clips = np.atleast_2d(np.asarray(clips, np.float32))
        if clips.shape[1] != self.info["clip_samples"]:
            raise ClassifierError(
                f"the classifier in {self.path} reads clips of {self.info['clip_samples']} samples, "
                f"got {clips.shape[1]}; evaluate clips of the dataset it was trained on."
            )
        mel = _clip_norm(log_mel(clips, self.info["sample_rate"], s["n_mels"], s["n_frames"]), s.get("clip_norm"))
        return (mel - self.info["mel_mean"]) / self.info["mel_std"]

    def predict(self, clips: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities (clips, classes) and penultimate features (clips, features)."""
        probs, feats = [], []
        for s in range(0, len(clips), batch_size):
            mel = self.mel(clips[s:s + batch_size])
            n = len(mel)
            mel = np.pad(mel, [(0, batch_size - n), (0, 0), (0, 0)])  # one compiled shape for any count
            p, f = self._apply(self._state, jnp.asarray(mel))
            probs.append(np.asarray(p, np.float64)[:n])
            feats.append(np.asarray(f, np.float64)[:n])
        return np.concatenate(probs), np.concatenate(feats)

    def accuracy(self, clips: np.ndarray, labels: np.ndarray) -> float:
        probs, _ = self.predict(clips)
        index = {c: i for i, c in enumerate(self.classes)}
        target = np.array([index[_plain(v)] for v in labels])
        return float((probs.argmax(1) == target).mean())


def _clip_norm(mel_bft: np.ndarray, on: bool | None) -> np.ndarray:
    return mel_bft - mel_bft.mean(axis=-1, keepdims=True) if on else mel_bft


def _plain(value):
    """A label as a JSON value (numpy ints and strings become Python's)."""
    return value.item() if isinstance(value, np.generic) else value


# ---------------------------------------------------------------------------- training
def augment(key: jax.Array, x_bft: jax.Array, settings: ClassifierSettings) -> jax.Array:
    """Random rolls in time and frequency and one blanked band and stretch per clip (0 is the
    training mean after normalisation)."""
    b, f, t = x_bft.shape
    k_t, k_f, k_mf, k_mt = jax.random.split(key, 4)

    def rand(k, hi, lo=None):
        lo = -hi if lo is None else lo
        return jax.random.randint(k, (b,), lo, hi + 1)

    def mask(k, size, width):  # (b, size): True inside one random stretch of up to `width`
        k1, k2 = jax.random.split(k)
        w = jax.random.randint(k1, (b, 1), 0, width + 1)
        start = jax.random.randint(k2, (b, 1), 0, size)
        pos = jnp.arange(size).reshape(1, size)
        return (pos >= start) & (pos < start + w)

    roll = jax.vmap(lambda x, s_f, s_t: jnp.roll(jnp.roll(x, s_f, axis=0), s_t, axis=1))
    x_bft = roll(x_bft, rand(k_f, settings.freq_shift), rand(k_t, settings.max_shift))
    keep = ~(mask(k_mf, f, settings.mask_mels)[:, :, None] | mask(k_mt, t, settings.mask_frames)[:, None, :])
    return jnp.where(keep, x_bft, 0.0)


def train_classifier(
    dataset: datasets.Dataset, settings: ClassifierSettings = ClassifierSettings(),
    *, progress: bool = True, log=None,
) -> Classifier:
    """Train on the dataset's train split and measure accuracy on its test split (voices never
    seen in training, for digits)."""
    from tqdm.auto import tqdm

    label = pick_label(dataset, settings.label)
    if label in PITCH_LABELS and settings.freq_shift:
        settings = dataclasses.replace(settings, freq_shift=0)
    splits = split_indices(dataset, settings.test_fraction, settings.seed)
    values = np.asarray(dataset.labels[label])
    classes = [_plain(c) for c in np.unique(values)]
    if len(classes) < 2:
        raise ClassifierError(f"label {label!r} of dataset {dataset.name!r} has only one class.")
    y_all = np.searchsorted(np.unique(values), values).astype(np.int32)
    mel_all = _clip_norm(log_mel(dataset.clips, dataset.sample_rate, settings.n_mels, settings.n_frames),
                         settings.clip_norm)
    train_idx = splits["train"]
    mean, std = float(mel_all[train_idx].mean()), float(mel_all[train_idx].std() + 1e-6)
    x_all = ((mel_all - mean) / std).astype(np.float32)
    if len(train_idx) < settings.batch_size:
        raise ClassifierError(
            f"the train split of {dataset.name!r} has {len(train_idx)} clips, fewer than "
            f"batch_size={settings.batch_size}; use more clips."
        )

    net = _build(settings.n_mels, len(classes), settings.width, settings.features, settings.seed)
    graphdef, params = nnx.split(net)
    steps_per_epoch = len(train_idx) // settings.batch_size
    total = steps_per_epoch * settings.epochs
    schedule = optax.cosine_decay_schedule(settings.lr, max(total, 1))
    tx = optax.adamw(schedule, weight_decay=settings.weight_decay)
    opt_state = tx.init(params)

    def loss_fn(params, x_bft, y_b):
        logits = nnx.merge(graphdef, params)(x_bft)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y_b).mean()

    @conv.jit
    def step(params, opt_state, x_bft, y_b, key):
        x_bft = augment(key, x_bft, settings)
        loss, grads = jax.value_and_grad(loss_fn)(params, x_bft, y_b)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    key = jax.random.PRNGKey(settings.seed)
    t0 = time.perf_counter()
    bar = tqdm(total=total, desc=f"classifier on {dataset.name} ({label})", disable=not progress, unit="step")
    losses = []
    for epoch in range(settings.epochs):
        order = np.random.default_rng([settings.seed, epoch]).permutation(train_idx)
        for i in range(steps_per_epoch):
            b = order[i * settings.batch_size:(i + 1) * settings.batch_size]
            k = jax.random.fold_in(key, epoch * steps_per_epoch + i)
            params, opt_state, loss = step(params, opt_state, jnp.asarray(x_all[b]), jnp.asarray(y_all[b]), k)
            losses.append(loss)
            bar.update(1)
        epoch_loss = float(np.mean(jax.device_get(losses[-steps_per_epoch:])))
        bar.set_postfix(loss=f"{epoch_loss:.3f}")
        if log is not None:
            log(f"epoch {epoch + 1}/{settings.epochs}: loss {epoch_loss:.4f}")
    bar.close()
    train_seconds = time.perf_counter() - t0
    nnx.update(net, params)

    info = {
        "dataset": dataset.name, "label": label, "classes": classes,
        "sample_rate": int(dataset.sample_rate), "clip_samples": int(dataset.clip_samples),
        "settings": dataclasses.asdict(settings) | {"label": label},
        "mel_mean": mean, "mel_std": std,
        "split_sizes": {k: int(len(v)) for k, v in splits.items()},
        "first_epoch_loss": float(np.mean(jax.device_get(losses[:steps_per_epoch]))),
        "final_epoch_loss": float(np.mean(jax.device_get(losses[-steps_per_epoch:]))),
        "train_seconds": round(train_seconds, 1),
    }
    clf = Classifier(net, info)
    for name, idx in splits.items():
        info[f"{name}_accuracy"] = clf.accuracy(dataset.clips[idx], values[idx])
    return clf


# ---------------------------------------------------------------------------- storing and reusing
def _flat(state) -> tuple[list[str], list[np.ndarray], Any]:
    leaves, treedef = jax.tree_util.tree_flatten_with_path(state)
    return [jax.tree_util.keystr(p) for p, _ in leaves], [v for _, v in leaves], treedef


def save(clf: Classifier, folder: str | os.PathLike) -> Path:
    """Weights first (atomic), then ``classifier.json`` (atomic): the json marks a whole folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names, arrays, _ = _flat(nnx.state(clf.net))
    with atomic_path(folder / "weights.npz") as tmp:
        np.savez(tmp, **{f"p{i:03d}": np.asarray(a) for i, a in enumerate(arrays)})
    clf.info["parameters"] = names
    atomic_write_text(folder / "classifier.json", json.dumps(clf.info, indent=2) + "\n")
    clf.path = folder
    return folder


def load(folder: str | os.PathLike) -> Classifier:
    folder = Path(folder)
    meta = folder / "classifier.json"
    if not meta.is_file():
        raise FileNotFoundError(f"{meta} does not exist: no classifier was trained into {folder}.")
    info = json.loads(meta.read_text())
    s = info["settings"]
    net = nnx.eval_shape(lambda: Net(s["n_mels"], len(info["classes"]), s["width"], s["features"], rngs=nnx.Rngs(0)))
    names, template, treedef = _flat(nnx.state(net))
    try:
        with np.load(folder / "weights.npz") as stored:
            arrays = [stored[f"p{i:03d}"] for i in range(len(names))]
    except (OSError, KeyError, ValueError) as exc:
        raise ClassifierError(
            f"{folder / 'weights.npz'} is missing or damaged ({exc}); delete {folder} to train again."
        ) from exc
    shapes_differ = any(tuple(a.shape) != tuple(t.shape) for a, t in zip(arrays, template, strict=True))
    if names != info.get("parameters") or shapes_differ:
        raise ClassifierError(f"{folder / 'weights.npz'} does not match {meta}; delete {folder} to train again.")
    nnx.update(net, jax.tree_util.tree_unflatten(treedef, [jnp.asarray(a) for a in arrays]))
    return Classifier(net, info, folder)


def dataset_key(config: RunConfig) -> dict[str, Any]:
    """What identifies a classifier's data: the dataset's settings (a folder's file list hashed)."""
    settings = datasets.dataset_settings(config)
    if "files" in settings:
        settings["files"] = hashlib.sha256(json.dumps(settings["files"]).encode()).hexdigest()[:16]
    return settings


def classifier_name(config: RunConfig) -> str:
    return config.dataset if config.dataset in datasets.EMBEDDED else Path(config.dataset).expanduser().name


def classifier_root(root: str | os.PathLike | None = None) -> Path:
    """``root``, else ``$AUDIOGAN_CLASSIFIER_DIR``, else ``runs/classifiers``."""
    return Path(root if root is not None else os.environ.get("AUDIOGAN_CLASSIFIER_DIR", DEFAULT_ROOT))


def get_classifier(
    config: RunConfig, settings: ClassifierSettings | None = None, *,
    root: str | os.PathLike | None = None, dataset: datasets.Dataset | None = None,
    progress: bool = True, log=print,
) -> Classifier:
    """The classifier for ``config``'s dataset, trained once and reused.

    It is loaded from ``root/<dataset>/`` (or ``root/<dataset>-<hash>/``) when one trained on the
    same data is there, with the same ``settings`` (``None``: any settings; the defaults when a
    new one must be trained); else it is trained (one call) and saved there. A folder holding a
    classifier of other settings is left alone; the new one goes to ``<dataset>-<hash>``.
    """
    data_key = dataset_key(config)
    train_settings = settings or ClassifierSettings()
    wanted = {"data": data_key, "classifier": dataclasses.asdict(train_settings)}
    key = hashlib.sha256(json.dumps(wanted, sort_keys=True, default=str).encode()).hexdigest()[:10]
    root = classifier_root(root)
    name = classifier_name(config)
    plain = json.loads(json.dumps(data_key, default=str))
    found = sorted(root.glob(f"{name}-*/classifier.json")) if root.is_dir() else []
    for meta in [root / name / "classifier.json", *found]:
        if meta.is_file():
            stored = json.loads(meta.read_text())
            if stored.get("key") == key or (settings is None and stored.get("data_settings") == plain):
                return load(meta.parent)
    target = root / name if not (root / name / "classifier.json").is_file() else root / f"{name}-{key}"
    dataset = datasets.load_dataset(config) if dataset is None else dataset
    if log:
        log(f"training a classifier on {dataset.name} into {target} ...")
    clf = train_classifier(dataset, train_settings, progress=progress, log=log)
    clf.info["key"] = key
    clf.info["data_settings"] = plain
    save(clf, target)
    if log:
        log(f"classifier saved in {target}: test accuracy {clf.test_accuracy:.2%}")
    return clf
