"""A run killed mid-way (SIGKILL, a real process) and resumed ends with exactly the parameters of an
uninterrupted run; the logs hold each step once."""

import csv
import os
import subprocess
import sys

import jax
import numpy as np

import mqe
from processes import kill_at_first_checkpoint
from mqe.config import make_config
from mqe.data.dataset import Dataset
from mqe.train import train

OVERRIDES = [
    "batch_size=128", "latent_dim=32", "encoder_hidden_dims=128,128", "actor_hidden_dims=128,128",
    "train.steps=600", "train.updates_per_call=20", "train.log_interval=100",
    "train.checkpoint_interval=20", "train.keep_checkpoints=3", "train.seed=7",
]


def _write_dataset(path):
    rng = np.random.default_rng(0)
    n = 4000
    obs = np.cumsum(rng.normal(size=(n, 3)), axis=0).astype(np.float32)
    act = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    terminals = np.zeros(n, bool)
    terminals[199::200] = True
    Dataset.from_arrays(obs, act, terminals).save_npz(path)


def test_killed_run_resumes_to_identical_parameters(tmp_path):
    data_path = str(tmp_path / "walk.npz")
    _write_dataset(data_path)
    killed_dir = str(tmp_path / "killed")
    cmd = [sys.executable, "-m", "mqe", "train", "--dataset", data_path, "--run-dir", killed_dir,
           "--no-progress"] + [a for o in OVERRIDES for a in ("--set", o)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt_dir = os.path.join(killed_dir, "checkpoints")
    kill_at_first_checkpoint(proc, ckpt_dir)
    steps_at_kill = mqe.load(killed_dir).step
    assert 0 < steps_at_kill < 600, "the kill must land mid-run"

    config = make_config("mqe", None, OVERRIDES, dataset="walk")
    dataset = Dataset.load_npz(data_path)
    resumed = train(config, dataset, killed_dir, progress=False)
    straight = train(config, dataset, str(tmp_path / "straight"), progress=False)
    assert resumed.step == straight.step == 600
    for a, b in zip(jax.tree.leaves(resumed.agent.params), jax.tree.leaves(straight.agent.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(jax.tree.leaves(resumed.agent.opt_state), jax.tree.leaves(straight.agent.opt_state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Logs: every logged step exactly once, in order, and the same values as the straight run.
    with open(os.path.join(killed_dir, "train.csv")) as fh:
        rows = list(csv.DictReader(fh))
    with open(os.path.join(str(tmp_path / "straight"), "train.csv")) as fh:
        rows_straight = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == list(range(100, 601, 100))
    for key in ("total_loss", "critic/backup_loss", "actor/q_mean"):
        np.testing.assert_allclose([float(r[key]) for r in rows], [float(r[key]) for r in rows_straight],
                                   rtol=1e-12)
    # The loaded final checkpoint is the final agent.
    loaded = mqe.load(killed_dir)
    assert loaded.step == 600
    for a, b in zip(jax.tree.leaves(loaded.agent.params), jax.tree.leaves(straight.agent.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_resume_refuses_a_changed_config(tmp_path):
    data_path = str(tmp_path / "walk.npz")
    _write_dataset(data_path)
    small = OVERRIDES[:4] + ["train.steps=40", "train.updates_per_call=20", "train.checkpoint_interval=20",
                             "train.log_interval=20"]
    dataset = Dataset.load_npz(data_path)
    train(make_config("mqe", None, small), dataset, str(tmp_path / "run"), progress=False)
    changed = make_config("mqe", None, small + ["alpha=0.5"])
    try:
        train(changed, dataset, str(tmp_path / "run"), progress=False)
    except ValueError as exc:
        assert "agent.alpha" in str(exc) and "cannot resume" in str(exc)
    else:
        raise AssertionError("a changed config must not silently resume")
