"""A run knows its data: the fingerprint in config.json and every checkpoint, resuming on other data is
refused, unknown names list the known ones, actions outside [-1, 1] are counted, and `--preset none`."""

import json
import os
import warnings

import numpy as np
import pytest

from mqe import checkpoint as ckpt
from mqe.cli import main
from mqe.data.dataset import Dataset, DatasetWarning
from mqe.data.fingerprint import fingerprint_file

TINY = ["--set", "batch_size=16", "--set", "latent_dim=16", "--set", "encoder_hidden_dims=16",
        "--set", "actor_hidden_dims=16", "--set", "train.updates_per_call=10", "--set", "train.checkpoint_interval=10",
        "--no-progress"]

TINY_QRL = ["--set", "batch_size=16", "--set", "latent_dim=16", "--set", "value_hidden_dims=16",
            "--set", "dynamics_hidden_dims=16", "--set", "actor_hidden_dims=16", "--set", "train.updates_per_call=10",
            "--no-progress"]


def _walk(path, seed=0, n=600, scale=1.0, compress=False):
    rng = np.random.default_rng(seed)
    obs = np.cumsum(rng.normal(size=(n, 3)), axis=0).astype(np.float32)
    act = (scale * rng.uniform(-1, 1, (n, 2))).astype(np.float32)
    terminals = np.zeros(n, bool)
    terminals[99::100] = True
    Dataset.from_arrays(obs, act, terminals).save_npz(path, compress=compress)
    return str(path)


def test_fingerprint_sees_content_not_compression(tmp_path):
    a = _walk(tmp_path / "a.npz")
    assert fingerprint_file(a) == fingerprint_file(_walk(tmp_path / "a_zipped.npz", compress=True))
    assert fingerprint_file(a) != fingerprint_file(_walk(tmp_path / "b.npz", seed=1))
    assert fingerprint_file(a).startswith("npz-crc:")
    # One changed value anywhere changes it (the CRC-32 covers every byte of every array).
    arrays = dict(np.load(a))
    arrays["observations"][300, 1] += 1e-3
    np.savez(tmp_path / "c.npz", **arrays)
    assert fingerprint_file(tmp_path / "c.npz") != fingerprint_file(a)
    assert Dataset.load_npz(a).fingerprint == fingerprint_file(a)


def test_run_records_its_data_and_refuses_other_data(tmp_path, capsys):
    a, b = _walk(tmp_path / "a.npz"), _walk(tmp_path / "b.npz", seed=1)
    run = str(tmp_path / "run")
    assert main(["train", "--dataset", a, "--run-dir", run, "--steps", "20", *TINY]) == 0
    saved = json.load(open(os.path.join(run, "config.json")))
    assert saved["dataset"] == a and saved["dataset_fingerprint"] == fingerprint_file(a)
    for _, path in ckpt.list_checkpoints(os.path.join(run, "checkpoints")):
        assert ckpt.read_checkpoint(path)["config"]["dataset_fingerprint"] == fingerprint_file(a)
    capsys.readouterr()
    assert main(["train", "--dataset", b, "--run-dir", run, "--steps", "40", *TINY]) == 2
    err = capsys.readouterr().err
    assert a in err and b in err and fingerprint_file(a) in err and fingerprint_file(b) in err
    assert json.load(open(os.path.join(run, "config.json"))) == saved, "config.json keeps the run's lineage"
    # The same data (even a copy under another name) continues the run.
    copy = tmp_path / "copy.npz"
    copy.write_bytes(open(a, "rb").read())
    assert main(["train", "--dataset", str(copy), "--run-dir", run, "--steps", "40", *TINY]) == 0


def test_unknown_dataset_name_lists_the_known_names(tmp_path, capsys):
    assert main(["train", "--dataset", "pointmaze-huge-navigate-v0", "--dataset-dir", str(tmp_path),
                 "--no-download"]) == 2
    err = capsys.readouterr().err
    assert "'pointmaze-huge-navigate-v0' is not a dataset name we know" in err
    assert "pointmaze-giant-stitch-v0" in err and "antmaze-colossal-navigate-v0" in err
    assert "mqe generate" not in err
    assert main(["train", "--dataset", _walk(tmp_path / "a.npz"), "--env", "antmaze-tiny-v0"]) == 2
    assert "--env 'antmaze-tiny-v0' is not a dataset name we know" in capsys.readouterr().err


def test_known_name_that_cannot_be_generated_says_why(tmp_path, capsys):
    assert main(["train", "--dataset", "humanoidmaze-giant-stitch-v0", "--dataset-dir", str(tmp_path),
                 "--no-download"]) == 2
    err = capsys.readouterr().err
    assert "cannot be generated here" in err and "humanoid" in err and "mqe generate" not in err


def test_actions_outside_the_unit_box_are_counted(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)  # writing it warns too
        path = _walk(tmp_path / "wide.npz", scale=1.5)
    with pytest.warns(DatasetWarning, match=r"'actions' has \d+ values in \d+ of 600 rows outside \[-1, 1\]"):
        Dataset.load_npz(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Dataset.load_npz(_walk(tmp_path / "ok.npz"))


def test_a_file_with_env_gets_the_names_settings_and_preset_none_the_defaults(tmp_path, capsys):
    path = _walk(tmp_path / "mine.npz")
    run = str(tmp_path / "run")
    argv = ["train", "--dataset", path, "--env", "antmaze-large-explore-v0", "--agent", "qrl", "--run-dir", run,
            "--steps", "10", "--eval-episodes", "0", *TINY_QRL]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "preset paper" in out and "agent.alpha = 0.001" in out and "OGBench impls/hyperparameters.sh" in out
    saved = json.load(open(os.path.join(run, "config.json")))
    assert saved["env"] == "antmaze-large-explore-v0" and saved["preset"] == "paper"
    assert saved["agent"]["alpha"] == 0.001 and saved["agent"]["actor_p_randomgoal"] == 1.0
    assert saved["changed_from_defaults"]["agent.alpha"] == {
        "default": 0.003, "value": 0.001,
        "source": "OGBench impls/hyperparameters.sh; antmaze-*-explore-*"}
    # Without --env, a file of the user's gets no per-dataset setting and no preset.
    run2 = str(tmp_path / "run2")
    assert main(["train", "--dataset", path, "--agent", "qrl", "--run-dir", run2, "--steps", "10", *TINY_QRL]) == 0
    assert json.load(open(os.path.join(run2, "config.json")))["preset"] == ""
    run3 = str(tmp_path / "run3")
    assert main(argv + ["--preset", "none", "--run-dir", run3]) == 0
    none = json.load(open(os.path.join(run3, "config.json")))
    assert none["preset"] == "" and none["agent"]["alpha"] == 0.003 and none["env"] == "antmaze-large-explore-v0"


def test_config_command_prints_settings_with_sources(capsys):
    assert main(["config", "--agent", "hiql", "--dataset", "antmaze-medium-explore-v0"]) == 0
    out = capsys.readouterr().out
    assert "preset paper" in out
    assert "agent.high_alpha = 10.0 (default 3.0; OGBench impls/hyperparameters.sh; *-explore-*)" in out
    assert main(["config", "--agent", "hiql", "--dataset", "antmaze-medium-explore-v0", "--preset", "none"]) == 0
    assert "(none: every value is the agent's default)" in capsys.readouterr().out
    assert main(["config", "--dataset", "foo-v0"]) == 2
