"""Config resolution (presets as data, overrides) and the CLI's error surface."""

import subprocess
import sys

import numpy as np
import pytest

from mqe.agents import AGENTS
from mqe.cli import main
from mqe.config import ConfigError, RunConfig, alpha_for_dataset, make_config


def test_presets_and_overrides_resolve():
    config = make_config("mqe", "paper", ["train.steps=100", "encoder_hidden_dims=64,64", "invariance=squared"],
                         dataset="antmaze-large-explore-v0")
    assert config.agent.alpha == 0.003  # Table 3 by dataset name
    assert config.agent.encoder_hidden_dims == (64, 64)
    assert config.train.steps == 100 and config.train.log_interval == 5000
    assert RunConfig.from_dict(config.to_dict()) == config
    bridge = make_config("mqe", "paper-bridge")
    assert (bridge.agent.batch_size, bridge.agent.latent_dim, bridge.agent.discount) == (128, 256, 0.98)


@pytest.mark.parametrize("name, alpha", [
    ("antmaze-giant-navigate-v0", 0.1), ("antmaze-giant-stitch-v0", 0.03), ("humanoidmaze-giant-stitch-v0", 0.01),
    ("pointmaze-giant-navigate-v0", 0.03), ("cube-double-play-v0", 1.0), ("scene-noisy-v0", 0.1),
    ("visual-cube-triple-play-v0", 3.0), ("visual-antmaze-giant-stitch-v0", 0.3), ("my-own-data", None),
])
def test_alpha_table(name, alpha):
    assert alpha_for_dataset(name) == alpha


def test_agents_command_lists_every_agent(capsys):
    assert main(["agents"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == list(AGENTS)


@pytest.mark.parametrize("override, message", [
    ("alpah=0.1", "did you mean alpha"),
    ("alpha", "key=value"),
    ("batch_size=many", "agent.batch_size"),
    ("invariance=huber", "invariance must be one of"),
    ("train.log_interval=150", "multiple of train.updates_per_call"),
    ("model.alpha=1", "section must be"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        make_config("mqe", None, [override])


def test_unknown_preset_and_agent():
    with pytest.raises(ConfigError, match="unknown preset 'papr'"):
        make_config("mqe", "papr")
    with pytest.raises(ConfigError, match="unknown agent"):
        make_config("nope")


def test_cli_reports_bad_dataset_without_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, observations=np.zeros((10, 3), np.float32), actions=np.zeros((9, 2), np.float32),
             terminals=np.zeros(10, bool))
    assert main(["train", "--dataset", str(bad), "--steps", "100", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "bad.npz" in err and "'actions'" in err and "Traceback" not in err


def test_cli_reports_bad_override(tmp_path, capsys):
    good = tmp_path / "good.npz"
    np.savez(good, observations=np.zeros((10, 3), np.float32), actions=np.zeros((10, 2), np.float32),
             terminals=np.arange(10) == 9)
    assert main(["train", "--dataset", str(good), "--set", "gamma=2"]) == 2
    assert "gamma" in capsys.readouterr().err


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "mqe", "--help"], capture_output=True, text=True, check=True)
    assert "train" in out.stdout and "demo" in out.stdout


def test_the_pixel_preset_sets_the_encoder_on_image_data_of_any_name():
    """--preset paper-pixel on a file not named visual-* gets what every visual-* run gets (the encoder, and the
    baselines' batch size), with its source; a visual-* name keeps its own per-dataset values."""
    mine = make_config("mqe", "paper-pixel", dataset="/data/frames.npz")
    assert mine.agent.encoder == "impala_small" and "every pixel run" in mine.changed["agent.encoder"]["source"]
    baseline = make_config("gciql", "paper-pixel", dataset="/data/frames.npz")
    assert (baseline.agent.encoder, baseline.agent.batch_size) == ("impala_small", 256)
    named = make_config("mqe", "paper-pixel", dataset="visual-cube-single-play-v0")
    assert (named.agent.encoder, named.agent.crop_prob) == ("impala_small", 0.5)
    assert make_config("mqe", "paper", dataset="/data/frames.npz").agent.encoder is None
