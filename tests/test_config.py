"""RunConfig: validation with messages that name the bad setting, model defaults, round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audiogan.config import LOSSES, MODEL_DEFAULTS, MODELS, SLICE_MODES, ConfigError, RunConfig
from audiogan.runs import RunFolder


# ---------------------------------------------------------------------------- choices
@pytest.mark.parametrize(
    ("name", "bad", "choices"),
    [("model", "transformer", MODELS), ("loss", "wasserstein", LOSSES), ("slices", "middle", SLICE_MODES)],
)
def test_unknown_choice_names_value_and_lists_choices(name, bad, choices):
    with pytest.raises(ConfigError) as err:
        RunConfig(**{name: bad})
    message = str(err.value)
    assert name in message
    assert repr(bad) in message
    for choice in choices:
        assert repr(choice) in message


@pytest.mark.parametrize(
    "name",
    ["steps", "batch_size", "sample_rate", "clip_samples", "n_critic", "latent_dim", "n_clips",
     "log_every", "preview_every", "checkpoint_every", "n_previews"],
)
@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8"])
def test_non_positive_or_non_integer_counts_are_rejected(name, bad):
    with pytest.raises(ConfigError, match=rf"^{name}="):
        RunConfig(**{name: bad})


@pytest.mark.parametrize("bad", [-1, 1.5, True, 2**32, 2**64, 10**30])
def test_bad_seed_is_rejected(bad):
    with pytest.raises(ConfigError, match=r"^seed="):
        RunConfig(seed=bad)


def test_seed_limit_is_what_the_prng_key_keeps():
    """PRNGKey keeps 32 bits, so 2**32 would silently repeat seed 0: the largest seed is 2**32 - 1."""
    assert RunConfig(seed=2**32 - 1).seed == 2**32 - 1
    with pytest.raises(ConfigError, match=r"^seed=4294967296 must be a whole number from 0 to 4294967295"):
        RunConfig(seed=2**32)


@pytest.mark.parametrize("name", ["lr", "beta1", "beta2", "label_smoothing", "gp_weight", "r1_weight", "ema_decay"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), 10**400])
def test_nan_and_infinite_numbers_are_refused_naming_the_setting(name, bad):
    """A NaN penalty weight passed every range check and silently turned the penalty off."""
    with pytest.raises(ConfigError, match=rf"^{name}=\S+ must be a finite number, not NaN or infinite"):
        RunConfig(loss="wgan-gp", **{name: bad})


@pytest.mark.parametrize("bad", [0, 0.0, -1e-4, 1, 3.0, float("nan")])
def test_bad_lr_is_rejected_naming_it(bad):
    with pytest.raises(ConfigError, match=r"^lr="):
        RunConfig(lr=bad)


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.01, float("nan")])
def test_bad_label_smoothing_is_rejected_naming_it(bad):
    with pytest.raises(ConfigError, match=r"^label_smoothing="):
        RunConfig(label_smoothing=bad)


@pytest.mark.parametrize(("name", "bad"), [("beta1", 1.0), ("beta1", -0.1), ("beta2", 1.5)])
def test_bad_betas_are_rejected_naming_them(name, bad):
    with pytest.raises(ConfigError, match=rf"^{name}="):
        RunConfig(**{name: bad})


@pytest.mark.parametrize("bad", ["fast", "2e-4"])
def test_non_numeric_lr_is_a_config_error_naming_it(bad):
    with pytest.raises(ConfigError, match=r"^lr="):
        RunConfig(lr=bad)


def test_limits_on_sample_rate_and_clip_length():
    with pytest.raises(ConfigError, match="sample_rate"):
        RunConfig(sample_rate=500)
    with pytest.raises(ConfigError, match="clip_samples"):
        RunConfig(clip_samples=32)
    with pytest.raises(ConfigError, match="dataset"):
        RunConfig(dataset="  ")


def test_label_smoothing_of_one_turns_smoothing_off_and_is_allowed():
    assert RunConfig(label_smoothing=1.0).label_smoothing == 1.0


# ---------------------------------------------------------------------------- defaults
def test_mlp_defaults_fill_unset_fields():
    config = RunConfig(model="mlp")
    assert config.loss == "ns"
    assert config.lr == 2e-4
    assert config.beta1 == 0.5
    assert config.n_critic == 1
    assert config.latent_dim == 100
    assert config.label_smoothing == 0.9
    for name, value in MODEL_DEFAULTS["mlp"].items():
        assert getattr(config, name) == value


def test_explicit_values_win_over_model_defaults():
    config = RunConfig(loss="hinge", lr=1e-3, latent_dim=8, label_smoothing=1.0)
    assert (config.loss, config.lr, config.latent_dim, config.label_smoothing) == (
        "hinge", 1e-3, 8, 1.0,
    )
    assert config.beta1 == 0.5  # still the default


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        RunConfig().steps = 5  # type: ignore[misc]


# ---------------------------------------------------------------------------- construction
def test_from_namespace_takes_known_names_and_ignores_the_rest():
    namespace = {"steps": 7, "seed": 3, "np": object(), "some_plot": 1, "__name__": "__main__"}
    config = RunConfig.from_namespace(namespace, batch_size=4)
    assert (config.steps, config.seed, config.batch_size) == (7, 3, 4)


def test_from_namespace_still_validates():
    with pytest.raises(ConfigError, match="model='nope'"):
        RunConfig.from_namespace({"model": "nope", "other": 1})


def test_from_dict_rejects_unknown_keys_naming_them():
    with pytest.raises(ConfigError, match="learning_rate") as err:
        RunConfig.from_dict({"steps": 3, "learning_rate": 0.1})
    assert "steps" in str(err.value)  # the known settings are listed


def test_save_load_round_trip(tmp_path):
    config = RunConfig(
        run_dir=str(tmp_path / "run"), steps=11, batch_size=4, clip_samples=256, lr=3e-4,
        loss="lsgan", n_clips=16, slices="all",
    )
    run = RunFolder(config.run_dir)
    run.write_config(config)
    assert json.loads(run.config_path.read_text())["lr"] == 3e-4
    loaded = RunConfig.load(config.run_dir)
    assert loaded == config
    assert run.config() == config


def test_load_of_missing_run_folder_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        RunConfig.load(tmp_path / "nothing")


def test_path_run_dir_can_be_written(tmp_path):
    config = RunConfig(run_dir=tmp_path / "run")
    RunFolder(tmp_path / "run").write_config(config)
    assert RunConfig.load(tmp_path / "run").run_dir == str(tmp_path / "run")


# ---------------------------------------------------------------------------- resuming
def test_differences_ignore_bookkeeping_but_report_lr():
    base = RunConfig()
    more = base.replace(steps=base.steps * 2, log_every=7, preview_every=9, checkpoint_every=3,
                        n_previews=2, run_dir="elsewhere")
    assert base.differences(more) == {}
    changed = base.replace(lr=1e-3)
    assert changed.differences(base) == {"lr": (2e-4, 1e-3)}
    assert set(base.replace(seed=1, clip_samples=128).differences(base)) == {"seed", "clip_samples"}


def test_write_config_allows_resuming_with_more_steps(tmp_path):
    run = RunFolder(tmp_path / "run")
    config = RunConfig(run_dir=str(run.path), steps=10)
    run.write_config(config)
    run.write_config(config.replace(steps=20, log_every=5))
    assert RunConfig.load(run.path).steps == 20


def test_write_config_refuses_other_settings_naming_them(tmp_path):
    run = RunFolder(tmp_path / "run")
    config = RunConfig(run_dir=str(run.path))
    run.write_config(config)
    with pytest.raises(ConfigError, match="lr") as err:
        run.write_config(config.replace(lr=1e-3))
    assert "run_dir" in str(err.value)
    assert RunConfig.load(run.path) == config  # the recorded recipe is untouched
    assert Path(run.config_path).is_file()
