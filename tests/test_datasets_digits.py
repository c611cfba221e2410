"""The embedded spoken digits: eSpeak NG voices, balanced labels, splits disjoint by speaker, seeded bytes."""

import dataclasses

import numpy as np
import pytest

from audiogan import RunConfig, datasets
from audiogan.datasets import DataError, Dataset, digits, espeak, label_counts, load_dataset, summarise

SR, CLIP = 16000, 16384


@pytest.fixture(scope="module")
def small() -> Dataset:
    return digits.make_digits(40, SR, CLIP, seed=3)


def test_all_english_accents_and_variants_are_used():
    accents = espeak.english_accents()
    assert {"en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc"} <= set(accents)
    assert "en-shaw" not in accents
    speakers = digits.speakers()
    assert "" in speakers and {"m3", "f2", "klatt", "croak"} <= set(speakers) and len(speakers) > 100
    split = digits.split_speakers()
    assert sorted(s for names in split.values() for s in names) == sorted(speakers)


@pytest.mark.slow  # eSpeak speaks every clip
def test_shapes_labels_and_balance(small):
    assert small.clips.shape == (60, CLIP) and small.clips.dtype == np.float32  # 40 + 10 + 10
    assert small.sample_rate == SR
    np.testing.assert_allclose(np.abs(small.clips).max(axis=1), digits.PEAK, rtol=1e-6)
    assert {"digit", "voice", "split"} <= set(small.labels)
    counts = label_counts(small)
    assert list(counts) == ["train", "validation", "test"]
    assert counts["train"] == {str(d): 4 for d in range(10)}
    assert counts["test"] == {str(d): 1 for d in range(10)}
    # Every voice is an English accent, optionally with a variant, and eSpeak knows it.
    for voice in small.labels["voice"]:
        accent = voice.split("+")[0]
        assert accent in espeak.english_accents()


@pytest.mark.slow  # eSpeak speaks every clip
def test_splits_are_disjoint_by_voice_and_speaker(small):
    split = small.labels["split"]
    for label in ("voice", "speaker"):
        groups = {s: set(small.labels[label][split == s]) for s in ("train", "validation", "test")}
        assert not groups["train"] & groups["validation"]
        assert not groups["train"] & groups["test"]
        assert not groups["validation"] & groups["test"]


@pytest.mark.slow  # eSpeak speaks every clip
def test_each_clip_holds_one_centred_word(small):
    for clip in small.clips[:12]:
        loud = np.nonzero(np.abs(clip) > 0.01)[0]
        assert 0.15 * SR < loud[-1] - loud[0] < CLIP  # a word of 0.15 s or more, inside the clip
        assert loud[0] > 0 and loud[-1] < CLIP - 1  # with silence on both sides


@pytest.mark.slow  # eSpeak speaks every clip
def test_same_seed_same_bytes_whatever_the_worker_count(small):
    again = digits.make_digits(40, SR, CLIP, seed=3, workers=1)
    assert again.clips.tobytes() == small.clips.tobytes()
    for name, values in small.labels.items():
        np.testing.assert_array_equal(again.labels[name], values)
    # Another seed draws other digits, voices, rates and pitches.
    assert digits._plan(40, seed=4) != digits._plan(40, seed=3)


@pytest.mark.slow  # eSpeak speaks every clip
def test_load_dataset_digits_default_size_and_subset(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOGAN_CACHE_DIR", str(tmp_path))
    calls = []
    real = digits.make_digits

    def spy(n_train, *args, **kwargs):
        calls.append(n_train)
        return real(20, *args, **kwargs)  # build small whatever is asked

    monkeypatch.setitem(datasets.SOURCES, "digits", dataclasses.replace(datasets.SOURCES["digits"], make=spy))
    data = load_dataset(RunConfig(dataset="digits", sample_rate=8000, clip_samples=8192))
    assert calls == [digits.DEFAULT_TRAIN_CLIPS] and digits.DEFAULT_TRAIN_CLIPS >= 5000
    cached = load_dataset(RunConfig(dataset="digits", sample_rate=8000, clip_samples=8192))
    assert cached.info["from_cache"] and calls == [digits.DEFAULT_TRAIN_CLIPS]
    assert cached.labels["voice"].tolist() == data.labels["voice"].tolist()
    train = cached.subset("train")
    assert len(train) == 20 and set(train.labels["split"]) == {"train"}
    summary = summarise(cached)
    assert summary["splits"] == {"train": 20, "validation": 10, "test": 10}
    assert summary["class_label"] == "digit"
    with pytest.raises(DataError, match="validation"):
        Dataset("x", np.zeros((2, 4), np.float32), 8000).subset("validation")


@pytest.mark.parametrize("dataset", ["tones", "digits", "drums"])
def test_demo_parameters_are_valid_runs(dataset):
    from audiogan.cli.demo import demo_parameters

    params = demo_parameters(10, dataset)
    config = RunConfig(**params["02_train"])
    assert config.dataset == params["01_data"]["dataset"] == dataset
    assert (config.sample_rate, config.clip_samples) == (params["01_data"]["sample_rate"],
                                                         params["01_data"]["clip_samples"])
