"""A mel SpecGAN: its settings checked against a vocoder run, trained, and heard through the vocoder and
by Griffin-Lim, each scored by the evaluation."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from audiogan import training
from audiogan.audio.mel import MelSettings
from audiogan.config import VOCODER_DATA, VOCODER_KIND, ConfigError, RunConfig
from audiogan.evaluation import classifier as C
from audiogan.evaluation import evaluate as E
from audiogan.models import specgan
from audiogan.runs import RunFolder
from audiogan.training import vocoder_config, vocoder_loop
from audiogan.training.loop import with_vocoder
from audiogan.training.vocoder_config import VocoderConfig

# The tiny HiFi-GAN: hop 32, 16 mel bands, fmax 4 kHz at 8 kHz; clips of 1024 samples are 32 frames.
TINY_MEL = MelSettings(sample_rate=8000, n_fft=128, hop=32, win=128, n_mels=16, fmin=0.0, fmax=4000.0)
GAN = dict(dataset="tones", model="specgan", spectrogram="mel", d=2, batch_size=8, steps=2, n_clips=32,
           sample_rate=8000, clip_samples=1024, loss="hinge", log_every=2, preview_every=2, checkpoint_every=2,
           n_previews=2)


def fake_vocoder(folder, mel: MelSettings = TINY_MEL, kind: str = VOCODER_KIND):
    """The two files RunConfig reads of a vocoder run folder (no networks: enough for the checks)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"kind": kind}))
    (folder / VOCODER_DATA).write_text(json.dumps({"mel": dataclasses.asdict(mel)}))
    return str(folder)


# ---------------------------------------------------------------------------- settings
def test_the_names_of_a_vocoder_run_are_the_vocoder_loops():
    assert VOCODER_KIND == vocoder_config.KIND and VOCODER_DATA == vocoder_loop.DATASET_JSON


def test_a_mel_specgan_without_a_vocoder_takes_hifigans_front_end():
    cfg = RunConfig(model="specgan", spectrogram="mel", sample_rate=16000, clip_samples=16384)
    assert (cfg.n_mels, cfg.hop, cfg.fmax, cfg.vocoder) == (80, 256, 8000.0, "")
    assert specgan.spec_shape(cfg) == (80, 64)
    mel = specgan.mel_settings(cfg)
    assert (mel.n_fft, mel.win, mel.fmin) == (1024, 1024, 0.0)
    assert RunConfig(model="specgan", sample_rate=8000, spectrogram="mel").fmax == 4000.0  # Nyquist
    paper = RunConfig(model="specgan")
    assert (paper.spectrogram, paper.n_mels, paper.hop, paper.fmax) == ("stft", None, None, None)
    assert specgan.spec_shape(paper) == (128, 128)


def test_a_mel_specgan_takes_its_vocoders_settings(tmp_path):
    cfg = RunConfig(**GAN, vocoder=fake_vocoder(tmp_path / "voc"))
    assert (cfg.n_mels, cfg.hop, cfg.fmax) == (16, 32, 4000.0)
    assert specgan.mel_settings(cfg) == TINY_MEL and specgan.spec_shape(cfg) == (16, 32)
    # MelGAN's mel reaches the Nyquist frequency (fmax None): taken as a number.
    melgan = fake_vocoder(tmp_path / "melgan", dataclasses.replace(TINY_MEL, fmax=None))
    assert RunConfig(**GAN, vocoder=melgan).fmax == 4000.0


@pytest.mark.parametrize(("changes", "expected"), [
    ({"n_mels": 20}, "n_mels=20 does not match vocoder="),
    ({"hop": 64}, "hop=64 does not match vocoder="),
    ({"fmax": 3000}, "fmax=3000.0 does not match vocoder="),
    ({"sample_rate": 16000}, "sample_rate=16000 does not match vocoder="),
])
def test_settings_that_differ_from_the_vocoders_are_refused_naming_them(tmp_path, changes, expected):
    with pytest.raises(ConfigError) as caught:
        RunConfig(**(GAN | changes), vocoder=fake_vocoder(tmp_path / "voc"))
    assert expected in str(caught.value)
    name = next(iter(changes))
    assert f"Set {name}=" in str(caught.value)


def test_a_vocoder_front_end_unlike_the_suites_is_refused(tmp_path):
    odd = fake_vocoder(tmp_path / "odd", dataclasses.replace(TINY_MEL, n_fft=256, win=256))
    with pytest.raises(ConfigError, match="n_fft=256"):
        RunConfig(**GAN, vocoder=odd)


def test_a_vocoder_folder_that_is_missing_or_not_a_vocoder_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"vocoder='.*nowhere' does not exist"):
        RunConfig(**GAN, vocoder=str(tmp_path / "nowhere"))
    gan_run = tmp_path / "gan"
    RunFolder(gan_run).write_config(RunConfig(run_dir=str(gan_run)))
    with pytest.raises(ConfigError, match=r"vocoder='.*gan' is not a vocoder run folder"):
        RunConfig(**GAN, vocoder=str(gan_run))
    untrained = tmp_path / "untrained"
    fake_vocoder(untrained)
    (untrained / VOCODER_DATA).unlink()
    with pytest.raises(ConfigError, match=r"vocoder='.*untrained' has not been trained yet"):
        RunConfig(**GAN, vocoder=str(untrained))


def test_mel_settings_and_a_vocoder_belong_to_a_mel_specgan_only(tmp_path):
    voc = fake_vocoder(tmp_path / "voc")
    with pytest.raises(ConfigError, match="vocoder=.* needs model='specgan' and spectrogram='mel'"):
        RunConfig(**(GAN | {"spectrogram": "stft", "clip_samples": 16384}), vocoder=voc)
    with pytest.raises(ConfigError, match="vocoder=.* needs model='specgan'"):
        RunConfig(model="wavegan", vocoder=voc)
    with pytest.raises(ConfigError, match="n_mels=16 applies to a mel SpecGAN"):
        RunConfig(model="specgan", n_mels=16)
    with pytest.raises(ConfigError, match="spectrogram='mel' does not apply to model='mlp'"):
        RunConfig(model="mlp", spectrogram="mel")
    with pytest.raises(ConfigError, match="spectrogram='cqt' is unknown; choose one of 'stft', 'mel'"):
        RunConfig(model="specgan", spectrogram="cqt")


def test_a_mel_specgans_clips_are_whole_hops():
    with pytest.raises(ConfigError, match="clip_samples=1000 must be a multiple of hop=32.*Use 992 or 1024"):
        RunConfig(**(GAN | {"clip_samples": 1000, "hop": 32, "n_mels": 16}))
    with pytest.raises(ConfigError, match="n_mels=400"):
        RunConfig(**(GAN | {"n_mels": 400, "hop": 32}))


def test_the_vocoder_is_a_decoding_choice_a_resumed_run_may_change(tmp_path):
    a = RunConfig(**GAN, vocoder=fake_vocoder(tmp_path / "a"))
    b = a.replace(vocoder=fake_vocoder(tmp_path / "b"))
    assert a.differences(b) == {}
    assert a.differences(RunConfig(**GAN, n_mels=16, hop=32)) == {}  # Griffin-Lim only: the same run


# ---------------------------------------------------------------------------- a trained mel SpecGAN
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny HiFi-GAN trained 2 steps, and a mel SpecGAN trained 2 steps that decodes through it."""
    tmp = tmp_path_factory.mktemp("mel_specgan")
    voc = VocoderConfig(run_dir=str(tmp / "vocoder"), dataset="tones", model="hifigan", variant="tiny", steps=2,
                        batch_size=4, sample_rate=8000, segment_samples=256, clip_samples=1024, n_clips=24,
                        eval_clips=4, log_every=2, checkpoint_every=2)
    vocoder_loop.train(voc, progress=False)
    cfg = RunConfig(**GAN, run_dir=str(tmp / "gan"), vocoder=voc.run_dir)
    result = training.train(cfg, progress=False)
    return tmp, voc, cfg, result


@pytest.mark.slow
def test_a_mel_specgan_trains_and_sounds_through_its_vocoder_and_by_griffin_lim(runs):
    tmp, voc, cfg, result = runs
    assert result.history["step"] == [2.0] and np.isfinite(result.history["d_loss"][0])
    assert isinstance(result.gan.codec, specgan.MelCodec) and result.gan.codec.vocoder is not None
    stored = specgan.SpectrogramCodec.load(RunFolder(cfg.run_dir).path / training.SPECTROGRAM_MOMENTS)
    assert isinstance(stored, specgan.MelCodec) and stored.mel == TINY_MEL
    wav, sr = __import__("soundfile").read(RunFolder(cfg.run_dir).sample_dir(2) / "sample_0.wav")
    assert sr == 8000 and wav.shape == (1024,)
    gan, state = training.restore(cfg.run_dir)  # the run's own vocoder
    assert gan.config.vocoder == voc.run_dir and gan.codec.vocoder is not None
    through = training.generate(gan, state, 3, seed=1)
    gl_gan, _ = training.restore(cfg.run_dir, vocoder="")
    assert gl_gan.codec.vocoder is None
    by_griffin_lim = training.generate(gl_gan, state, 3, seed=1)
    assert through.shape == by_griffin_lim.shape == (3, 1024)
    assert np.all(np.isfinite(through)) and np.abs(by_griffin_lim).max() <= 1
    assert not np.allclose(through, by_griffin_lim)
    # A finished run opened again with another vocoder choice decodes as asked, without training.
    again = training.train(cfg.replace(vocoder="", n_mels=16, hop=32), progress=False)
    assert again.loaded and again.gan.codec.vocoder is None


@pytest.mark.slow
def test_a_real_vocoder_run_with_other_settings_is_refused(runs):
    _, voc, cfg, _ = runs
    with pytest.raises(ConfigError, match="n_mels=20 does not match vocoder="):
        RunConfig(**(GAN | {"n_mels": 20}), vocoder=voc.run_dir)
    gan, _ = training.restore(cfg.run_dir, vocoder="")
    with pytest.raises(ConfigError, match=r"vocoder='.*nowhere' does not exist"):
        with_vocoder(gan, str(cfg.run_dir) + "/nowhere")


@pytest.mark.slow
def test_the_evaluation_scores_both_paths_side_by_side(runs, monkeypatch):
    tmp, voc, cfg, _ = runs
    monkeypatch.setenv("AUDIOGAN_CLASSIFIER_DIR", str(tmp / "classifiers"))
    small = C.ClassifierSettings(n_mels=16, n_frames=8, width=4, features=8, epochs=1, batch_size=16, lr=5e-3)
    C.get_classifier(cfg, small, progress=False, log=None)
    settings = E.EvalSettings(n_clips=8, splits=2, ndb_bins=3, pitch_clips=4)
    record = E.evaluate_run(cfg.run_dir, settings, progress=False)
    assert record["vocoder"] == voc.run_dir and set(record["paths"]) == {"vocoder", "griffin_lim"}
    for scores in record["paths"].values():
        for key in ("is", "fd", "d_self", "flatness", "flatness_ratio"):
            assert key in scores, key
    assert record["generated"] is record["paths"]["vocoder"]
    stored = json.loads((RunFolder(cfg.run_dir).path / E.EVAL_FILE).read_text())
    assert stored["flatness"] == pytest.approx(record["paths"]["vocoder"]["flatness"])
    assert stored["flatness_ratio"] == pytest.approx(stored["flatness"] / stored["flatness_real"])
    columns = E.records_of("mel", record)
    assert list(columns) == ["mel (step 2), vocoder", "mel (step 2), Griffin-Lim"]
    text = E.table_text(columns, record["ceilings"])
    assert "spectral flatness" in text and "Griffin-Lim" in text
    # Griffin-Lim only: one path, as for any other run.
    alone = E.evaluate_run(cfg.run_dir, settings, progress=False, vocoder="")
    assert "paths" not in alone and list(E.records_of("mel", alone)) == ["mel (step 2)"]
