"""Checkpoints under faults: every read checks the SHA-256 written with the contents, a damaged newest
checkpoint is named and skipped (kept aside) when a run resumes, the resumed run equals an uninterrupted one
from that step bit for bit, and loading names the good checkpoint that exists."""

import os
import warnings

import jax
import numpy as np
import pytest

import mqe
from mqe import checkpoint as ckpt
from mqe.config import make_config
from mqe.data.dataset import Dataset
from mqe.train import train

STEPS = ["train.updates_per_call=10", "train.log_interval=10", "train.checkpoint_interval=10",
         "train.keep_checkpoints=3"]


def _dataset(n=300):
    rng = np.random.default_rng(0)
    obs = np.cumsum(rng.normal(size=(n, 3)), 0).astype(np.float32)
    terminals = np.zeros(n, bool)
    terminals[99::100] = True
    return Dataset.from_arrays(obs, rng.uniform(-1, 1, (n, 2)).astype(np.float32), terminals)


def _params(agent):
    return [np.asarray(x) for x in jax.tree.leaves(agent.params)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 30-step MQE run (checkpoints at 10, 20, 30) and the same run's parameters at 30."""
    run = str(tmp_path_factory.mktemp("ckpt") / "run")
    result = train(make_config("mqe", "tiny", STEPS + ["train.steps=30"]), _dataset(), run, progress=False)
    return run, _params(result.agent)


def test_a_flipped_byte_anywhere_is_detected(trained):
    run, _ = trained
    path = ckpt.checkpoint_path(os.path.join(run, "checkpoints"), 30)
    data = open(path, "rb").read()
    rng = np.random.default_rng(0)
    for position in rng.choice(len(data), size=25, replace=False):
        damaged = bytearray(data)
        damaged[position] ^= 1 << int(rng.integers(8))
        copy = path + ".test"
        open(copy, "wb").write(bytes(damaged))
        with pytest.raises(ckpt.CheckpointError, match="ckpt_0000000030.msgpack.test"):
            ckpt.read_checkpoint(copy)
        os.remove(copy)
    assert ckpt.read_checkpoint(path)["step"] == 30


def test_a_truncated_newest_checkpoint_is_skipped_and_the_resume_is_bit_for_bit(trained, tmp_path):
    run, uninterrupted = trained
    import shutil

    copy = str(tmp_path / "run")
    shutil.copytree(run, copy)
    newest = ckpt.checkpoint_path(os.path.join(copy, "checkpoints"), 30)
    data = open(newest, "rb").read()
    open(newest, "wb").write(data[: len(data) // 2])  # a crash mid-write on a disk without atomic renames

    with pytest.raises(ckpt.CheckpointError) as loading:
        mqe.load(copy)
    assert "ckpt_0000000030.msgpack" in str(loading.value)
    assert "the newest good checkpoint there is" in str(loading.value) and "ckpt_0000000020" in str(loading.value)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = train(make_config("mqe", "tiny", STEPS + ["train.steps=30"]), _dataset(), copy, progress=False)
    said = " ".join(str(w.message) for w in caught)
    assert "ckpt_0000000030.msgpack" in said and "ckpt_0000000020.msgpack" in said, said
    assert resumed.start_step == 20
    kept = os.path.join(copy, "checkpoints", ckpt.CORRUPT_DIR, "ckpt_0000000030.msgpack")
    assert open(kept, "rb").read() == data[: len(data) // 2], "the damaged file is kept aside, not deleted"
    for a, b in zip(_params(resumed.agent), uninterrupted):
        np.testing.assert_array_equal(a, b)


def test_every_checkpoint_damaged_stops_the_resume_with_their_names(tmp_path):
    run = str(tmp_path / "run")
    config = make_config("mqe", "tiny", STEPS + ["train.steps=20"])
    train(config, _dataset(), run, progress=False)
    for _, path in ckpt.list_checkpoints(os.path.join(run, "checkpoints")):
        open(path, "ab").write(b"\0")  # trailing garbage: the outer msgpack no longer parses as one object
        data = bytearray(open(path, "rb").read())
        data[len(data) // 2] ^= 0xFF
        open(path, "wb").write(bytes(data))
    with pytest.raises(ckpt.CheckpointError, match="every checkpoint is damaged"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train(make_config("mqe", "tiny", STEPS + ["train.steps=30"]), _dataset(), run, progress=False)


def test_a_dataset_without_episode_ends_says_so():
    obs = np.zeros((50, 2), np.float32)
    with pytest.warns(UserWarning, match="marks no row as an episode's end"):
        Dataset.from_arrays(obs, np.zeros((50, 2), np.float32), np.zeros(50, bool), source="mine.npz")
