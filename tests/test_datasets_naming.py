"""Folders labelled from their file names: the Free Spoken Digit Dataset and any pattern with named groups."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from audiogan.config import RunConfig
from audiogan.datasets import ConfigError, NamePattern, class_label, load_dataset, naming, summarise

SR = 8000


def _config(dataset: str, **kw) -> SimpleNamespace:
    """The data fields of a run's config."""
    values = dict(dataset=dataset, sample_rate=SR, clip_samples=2048, n_clips=None, seed=0, slices="first",
                  on_error="skip", name_pattern=None)
    return SimpleNamespace(**values | kw)


def _write(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        sf.write(str(folder / name), (0.3 * rng.standard_normal(SR // 4)).astype(np.float32), SR)
    return folder


def test_a_folder_named_like_fsdd_is_labelled_by_digit_speaker_and_take(tmp_path):
    names = [f"{d}_{s}_{i}.wav" for d in (3, 7) for s in ("ann", "bob") for i in (0, 4, 5, 9)]
    folder = _write(tmp_path / "digits", names)
    data = load_dataset(_config(str(folder)))
    assert class_label(data) == "digit" and data.info["naming"] == naming.FSDD.regex
    by_file = {f.split("/")[-1]: i for i, f in enumerate(data.info["files"])}
    row = int(np.flatnonzero(data.labels["file_index"] == by_file["7_bob_4.wav"])[0])
    assert data.labels["digit"][row] == 7 and data.labels["speaker"][row] == "bob"
    assert data.labels["split"][row] == "test"  # takes 0-4 are the test set
    assert summarise(data)["splits"] == {"test": 8, "train": 8}
    assert load_dataset(_config(f"fsdd:{folder}")).labels["digit"].tolist() == data.labels["digit"].tolist()


def test_any_naming_scheme_is_read_with_a_pattern_and_strays_are_reported(tmp_path):
    folder = _write(tmp_path / "words", ["yes-ann-train.wav", "no-bob-test.wav", "no-cy-train.wav", "README.wav"])
    data = load_dataset(_config(str(folder), name_pattern=r"(?P<word>[a-z]+)-(?P<speaker>[a-z]+)-(?P<split>\w+)"))
    assert sorted(data.labels["word"].tolist()) == ["no", "no", "yes"] and len(data) == 3
    assert sorted(data.labels["split"].tolist()) == ["test", "train", "train"]
    assert [s["file"].split("/")[-1] for s in data.info["skipped"]] == ["README.wav"]
    assert "does not match name_pattern" in data.info["skipped"][0]["reason"]


@pytest.mark.parametrize("pattern, message", [
    ("(?P<digit>\\d", "is not a regular expression"),
    ("(\\d)_(\\w+)", "has no named group"),
])
def test_a_bad_pattern_names_name_pattern(pattern, message):
    with pytest.raises(ConfigError, match=f"name_pattern=.*{message}"):
        NamePattern(pattern)


@pytest.mark.slow
def test_the_free_spoken_digit_dataset_has_its_official_split(fsdd):
    data = load_dataset(_config(f"fsdd:{fsdd}", clip_samples=8192))
    counts = summarise(data)["counts"]
    assert len(data) == 3000 and summarise(data)["splits"] == {"test": 300, "train": 2700}
    assert all(counts["test"][str(d)] == 30 and counts["train"][str(d)] == 270 for d in range(10))
    assert len(set(data.labels["speaker"].tolist())) == 6
    auto = load_dataset(_config(str(fsdd / "recordings"), clip_samples=8192))
    assert class_label(auto) == "digit" and np.array_equal(auto.labels["digit"], data.labels["digit"])


def test_a_run_config_carries_the_pattern_and_refuses_a_bad_one(tmp_path):
    folder = _write(tmp_path / "words", ["yes-ann.wav", "no-bob.wav"])
    config = RunConfig(dataset=str(folder), sample_rate=SR, clip_samples=2048,
                       name_pattern=r"(?P<word>[a-z]+)-(?P<speaker>[a-z]+)")
    assert sorted(load_dataset(config).labels["word"].tolist()) == ["no", "yes"]
    with pytest.raises(ConfigError, match="name_pattern='\\(' is not a regular expression"):
        RunConfig(dataset=str(folder), name_pattern="(")
