"""An LJSpeech-style folder read with its transcripts."""

import numpy as np
import pytest
import soundfile as sf

from audiogan.config import RunConfig
from audiogan.datasets import load_dataset
from audiogan.datasets.ljspeech import load_ljspeech, read_metadata
from audiogan.errors import DataError


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "wavs").mkdir()
    t = np.arange(8000 * 2 + 3000) / 8000
    for n, (ident, seconds) in enumerate((("LJ001-0001", 2.375), ("LJ001-0002", 0.5))):
        wav = 0.3 * np.sin(2 * np.pi * (200 + 100 * n) * t[: int(8000 * seconds)])
        sf.write(tmp_path / "wavs" / f"{ident}.wav", wav, 8000)
    (tmp_path / "metadata.csv").write_text(
        'LJ001-0001|Printing, in the "only" sense|Printing, in the "only" sense\n'
        "LJ001-0002|In 1465 Sweynheim|In fourteen sixty-five Sweynheim\n"
        "LJ001-0003|missing|missing\n"
    )
    return tmp_path


def test_each_clip_carries_its_recordings_transcript(folder):
    assert read_metadata(folder)[0] == ("LJ001-0001", 'Printing, in the "only" sense', 'Printing, in the "only" sense')
    with pytest.warns(UserWarning, match="1 file"):
        ds = load_ljspeech(folder, 8000, 8000)
    # 2.375 s: two whole clips and a remainder of 3000 samples (under half a clip: dropped); 0.5 s: one padded clip
    assert ds.clips.shape == (3, 8000) and ds.labels["file_index"].tolist() == [0, 0, 1]
    assert ds.labels["id"].tolist() == ["LJ001-0001", "LJ001-0001", "LJ001-0002"]
    assert ds.labels["normalized_text"][2] == "In fourteen sixty-five Sweynheim"
    assert ds.info["skipped"][0]["reason"] == "listed in metadata.csv but missing" and "split" not in ds.labels
    assert np.abs(ds.clips).max() == pytest.approx(0.95)


def test_hifigans_file_lists_give_the_split(folder):
    (folder / "validation.txt").write_text("LJ001-0002|In 1465 Sweynheim\n")
    ds = load_ljspeech(folder, 8000, 4000, slices="first", max_files=2)
    assert ds.labels["split"].tolist() == ["train", "validation"]


def test_a_folder_without_metadata_is_refused(tmp_path):
    with pytest.raises(DataError, match="no metadata.csv"):
        load_ljspeech(tmp_path, 8000, 4000)


def test_load_dataset_reads_an_ljspeech_folder_by_its_layout(folder):
    with pytest.warns(UserWarning, match="1 file"):
        ds = load_dataset(RunConfig(dataset=str(folder), sample_rate=8000, clip_samples=8000, slices="all"))
    assert ds.labels["id"].tolist() == ["LJ001-0001", "LJ001-0001", "LJ001-0002"]
    assert ds.labels["normalized_text"][2] == "In fourteen sixty-five Sweynheim"
