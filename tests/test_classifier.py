"""The classifier: it learns a labelled dataset, splits by voice, reloads bit-exact, is reused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audiogan import datasets
from audiogan.config import RunConfig
from audiogan.evaluation import classifier as C

SMALL = C.ClassifierSettings(
    n_mels=32, n_frames=16, width=4, features=16, epochs=15, batch_size=16, lr=5e-3, freq_shift=2, mask_mels=2,
)


@pytest.fixture(scope="module")
def three_cs() -> datasets.Dataset:
    """Tones of the three Cs (C3, C4, C5): a three-class problem that needs pitch, not loudness."""
    ds = datasets.make_tones(1000, 8000, 1024, seed=3)
    keep = ds.labels["midi"] % 12 == 0
    return datasets.Dataset("tones", ds.clips[keep], 8000, {k: v[keep] for k, v in ds.labels.items()}, ds.info)


@pytest.fixture(scope="module")
def trained(three_cs, tmp_path_factory):
    root = tmp_path_factory.mktemp("classifiers")
    config = RunConfig(run_dir=str(root / "unused"), dataset="tones", sample_rate=8000, clip_samples=1024)
    clf = C.get_classifier(config, SMALL, root=root, dataset=three_cs, progress=False, log=None)
    return config, root, clf


def test_classifier_learns_pitch_classes(trained, three_cs):
    _, root, clf = trained
    info = clf.info
    assert info["label"] == "midi" and info["classes"] == [48, 60, 72]
    assert info["split_sizes"] == {"train": 94, "test": 24}
    assert info["settings"]["freq_shift"] == 0  # rolling in frequency would change a pitch label
    assert info["final_epoch_loss"] < 0.5 * info["first_epoch_loss"]
    assert info["test_accuracy"] >= 0.9
    probs, feats = clf.predict(three_cs.clips[:10])
    assert probs.shape == (10, 3) and feats.shape == (10, 16)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)


def test_saved_under_dataset_name_and_reloads_bit_exact(trained, three_cs):
    _, root, clf = trained
    folder = root / "tones"
    assert clf.path == folder and (folder / "weights.npz").is_file()
    stored = json.loads((folder / "classifier.json").read_text())
    assert stored["test_accuracy"] == clf.test_accuracy and stored["settings"]["width"] == 4
    again = C.load(folder)
    a, b = clf.predict(three_cs.clips[:20]), again.predict(three_cs.clips[:20])
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_reused_when_present_and_kept_apart_when_settings_differ(trained, three_cs, monkeypatch):
    config, root, _ = trained

    def fail(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(C, "train_classifier", fail)
    assert C.get_classifier(config, SMALL, root=root, dataset=three_cs, log=None).path == root / "tones"
    with pytest.raises(AssertionError, match="trained again"):  # other settings: a new classifier
        C.get_classifier(config, SMALL.__class__(**{**SMALL.__dict__, "width": 8}), root=root,
                         dataset=three_cs, log=None)


def test_damaged_weights_name_the_file(trained, tmp_path):
    _, root, _ = trained
    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / "classifier.json").write_text((root / "tones" / "classifier.json").read_text())
    (folder / "weights.npz").write_bytes(b"not a zip")
    with pytest.raises(C.ClassifierError, match="weights.npz"):
        C.load(folder)


def test_unlabelled_dataset_gets_a_clear_error():
    ds = datasets.Dataset(name="my_folder", clips=np.zeros((10, 256), np.float32), sample_rate=8000,
                      labels={"file_index": np.arange(10)})
    with pytest.raises(C.ClassifierError, match="my_folder.*no class labels"):
        C.pick_label(ds)
    with pytest.raises(C.ClassifierError, match="label='digit'"):
        C.pick_label(ds, "digit")


def test_splits_are_disjoint_by_voice_or_follow_the_dataset():
    n = 300
    labels = {"digit": np.arange(n) % 10, "voice": np.repeat(np.arange(15), 20)}
    ds = datasets.Dataset(name="d", clips=np.zeros((n, 64), np.float32), sample_rate=8000, labels=labels)
    s = C.split_indices(ds, test_fraction=0.2, seed=1)
    train_voices, test_voices = set(labels["voice"][s["train"]]), set(labels["voice"][s["test"]])
    assert not train_voices & test_voices and len(test_voices) == 3
    assert sorted(np.r_[s["train"], s["test"]].tolist()) == list(range(n))
    # A split label of the dataset wins, as names or as codes 0/1/2.
    codes = np.repeat([0, 1, 2], 100)
    ds.labels["split"] = codes
    s = C.split_indices(ds)
    assert [len(s[k]) for k in ("train", "validation", "test")] == [100, 100, 100] and s["test"][0] == 200
    ds.labels["split"] = np.array(["train", "validation", "test"])[codes]
    assert C.split_indices(ds)["validation"][0] == 100


def test_augmentation_rolls_and_masks():
    import jax
    import jax.numpy as jnp

    x = jnp.arange(2 * 8 * 16, dtype=jnp.float32).reshape(2, 8, 16) + 1
    same = C.augment(jax.random.PRNGKey(0), x, C.ClassifierSettings(max_shift=0, freq_shift=0, mask_mels=0,
                                                                       mask_frames=0))
    np.testing.assert_array_equal(same, x)
    s = C.ClassifierSettings(max_shift=3, freq_shift=2, mask_mels=3, mask_frames=3)
    out = np.asarray(C.augment(jax.random.PRNGKey(1), x, s))
    assert out.shape == x.shape
    # Rolled and masked, but nothing invented: every value is 0 (masked) or from the same clip.
    for i in range(2):
        assert set(out[i].ravel()) - {0.0} <= set(np.asarray(x[i]).ravel())
        assert (out[i] == 0).sum() <= 3 * 16 + 3 * 8
