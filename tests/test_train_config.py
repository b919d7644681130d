"""Typed training config: YAML + overrides, type checks, unknown keys, round trip."""

import pytest

from rawmamba.errors import RawMambaError
from rawmamba.train.config import TrainConfig, load_config, parse_overrides, save_config


def test_defaults_follow_the_paper():
    config = TrainConfig()
    assert (config.lr, config.lr_step_epochs, config.lr_gamma, config.ssim_weight) == (2e-4, 20, 0.1, 0.5)
    assert (config.patch_size, config.batch_size, config.epochs) == (128, 64, 80)


def test_yaml_then_overrides_with_types(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("task: video\nepochs: 3\nmodel_args: {dim: 24}\n")
    config = load_config(path, parse_overrides(["--lr=1e-3", "batch-size=2", "--cameras=[sony]"]))
    assert config.task == "video" and config.epochs == 3 and config.model_args == {"dim": 24}
    assert config.lr == pytest.approx(1e-3) and isinstance(config.lr, float)
    assert config.batch_size == 2 and config.cameras == ["sony"]


@pytest.mark.parametrize(
    "pairs, message",
    [
        (["--epochs=two"], "epochs must be int"),
        (["--learning_rate=1"], "unknown config key"),
        (["--task=audio"], "task must be one of"),
        (["--epochs"], "--key=value"),
        (["--raw_channels=5"], "raw_channels must be one of"),
        (["--batch_size=true"], "batch_size must be int"),
    ],
)
def test_bad_overrides_are_clear_errors(pairs, message):
    with pytest.raises(RawMambaError, match=message):
        load_config(None, parse_overrides(pairs))


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(RawMambaError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n- not a mapping\n")
    with pytest.raises(RawMambaError, match="bad.yaml"):
        load_config(bad)


def test_saved_config_reloads_identically(tmp_path):
    config = load_config(None, {"epochs": "7", "out_dir": "x/y", "model_args": "{depth: 1}"})
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config
