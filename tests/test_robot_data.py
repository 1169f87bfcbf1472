"""Robot trajectories in the NumPy episode format: read, checked, normalised, turned into an image dataset."""

import json
import os

import numpy as np
import pytest

from mqe.cli import main
from mqe.data.dataset import DatasetError
from mqe.data.dataset import Dataset
from mqe.data.robot import (ActionNormalization, dataset_to_episodes, episodes_to_dataset, read_episodes,
                            read_numpy_episodes, write_numpy_episodes)


def _episodes(lengths=(5, 7, 4), seed=0):
    rng = np.random.default_rng(seed)
    return [{"images": rng.integers(0, 256, (t, 6, 8, 3), dtype=np.uint8),
             "actions": np.column_stack([rng.normal(scale=0.02, size=(t, 3)), rng.integers(0, 2, (t, 1)),
                                         np.full((t, 1), 0.5)]).astype(np.float32),
             "proprio": rng.normal(size=(t, 7)).astype(np.float32)} for t in lengths]


def test_episodes_round_trip_into_an_image_dataset(tmp_path):
    episodes = _episodes()
    write_numpy_episodes(episodes, str(tmp_path / "eps"))
    assert sorted(os.listdir(tmp_path / "eps")) == [f"episode_{i:06d}.npz" for i in range(3)]
    read = read_numpy_episodes(str(tmp_path / "eps"))
    for a, b in zip(read, episodes):
        assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)
    dataset, norm = episodes_to_dataset(read, source="eps")
    assert dataset.observations.dtype == np.uint8 and dataset.observations.shape == (16, 6, 8, 3)
    np.testing.assert_array_equal(dataset.observations, np.concatenate([e["images"] for e in episodes]))
    assert np.flatnonzero(dataset.terminals).tolist() == [4, 11, 15]  # each episode's last row
    assert dataset.extras["proprio"].shape == (16, 7)
    raw = np.concatenate([e["actions"] for e in episodes])
    assert np.abs(dataset.actions).max() <= 1.0
    # Inside the q01-q99 bounds the map is exact and invertible; the constant dimension maps to 0 and back.
    inside = np.all((raw >= np.array(norm.low) - 1e-7) & (raw <= np.array(norm.high) + 1e-7), axis=1)
    np.testing.assert_allclose(norm.denormalize(dataset.actions)[inside], raw[inside], atol=1e-6)
    assert np.all(dataset.actions[:, 4] == 0.0)
    np.testing.assert_allclose(norm.denormalize(dataset.actions)[:, 4], 0.5)
    # The binary gripper dimension becomes exactly -1 / +1.
    assert set(np.unique(dataset.actions[:, 3])) == {-1.0, 1.0}


def test_normalization_statistics_clip_outliers_and_survive_the_run_directory(tmp_path):
    actions = np.concatenate([np.linspace(-1, 1, 1000)[:, None], np.full((1000, 1), 3.0)], axis=1)
    actions[0, 0] = -50.0  # one outlier below q01
    norm = ActionNormalization.fit(actions)
    assert norm.low[0] == pytest.approx(np.percentile(actions[:, 0], 1)) and norm.high[1] == 3.0
    x = norm.normalize(actions)
    assert x[0, 0] == -1.0 and np.abs(x).max() <= 1.0
    norm.save(str(tmp_path))
    assert json.loads((tmp_path / "action_normalization.json").read_text())["kind"] == "q01-q99"
    again = ActionNormalization.load(str(tmp_path))
    assert again == norm
    np.testing.assert_allclose(again.denormalize(np.array([[1.0, 0.3]])), [[norm.high[0], 3.0]], rtol=1e-6)
    assert ActionNormalization.load(str(tmp_path / "elsewhere")) is None
    with pytest.raises(ValueError, match="2 dimensions; the actions have 3"):
        norm.normalize(np.zeros((1, 3)))


@pytest.mark.parametrize("change, message", [
    (lambda e: e.pop("actions"), r"'actions' is missing"),
    (lambda e: e.update(images=e["images"].astype(np.float32)), r"'images' has dtype float32 .* expected uint8"),
    (lambda e: e.update(actions=e["actions"][:-1]), r"'actions' has 4 steps for 5 images"),
    (lambda e: e.update(actions=np.full_like(e["actions"], np.nan)), r"'actions' holds NaN"),
    (lambda e: e.update(reward=np.zeros(5)), r"'reward' is not a key of the episode format"),
])
def test_a_malformed_episode_is_named(tmp_path, change, message):
    episodes = _episodes()
    change(episodes[0])
    write_numpy_episodes(episodes, str(tmp_path))
    with pytest.raises(DatasetError, match="episode_000000.npz: " + message):
        read_numpy_episodes(str(tmp_path))


def test_episodes_of_different_image_sizes_are_refused(tmp_path):
    episodes = _episodes()
    episodes[2]["images"] = np.zeros((4, 6, 6, 3), np.uint8)
    write_numpy_episodes(episodes, str(tmp_path))
    with pytest.raises(DatasetError, match=r"episode_000002.npz: 'images' differs from episode_000000.npz's"):
        read_numpy_episodes(str(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty: no episode .npz files"):
        read_numpy_episodes(str(tmp_path / "empty"))


def test_mqe_train_on_an_episode_folder_keeps_the_normalisation_in_the_run(tmp_path, capsys):
    episodes = _episodes(lengths=(30, 30))
    write_numpy_episodes(episodes, str(tmp_path / "robot"))
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(tmp_path / "robot"), "--agent", "gcbc", "--preset", "none",
                 "--run-dir", str(run), "--steps", "2", "--no-progress", "--set", "batch_size=4",
                 "--set", "encoder=impala_debug", "--set", "actor_hidden_dims=16,16",
                 "--set", "train.updates_per_call=2"]) == 0
    assert "60 rows, 2 trajectories, obs (6, 8, 3)" in capsys.readouterr().out
    saved = ActionNormalization.load(str(run))
    assert saved == ActionNormalization.fit(np.concatenate([e["actions"] for e in episodes]))
    assert json.loads((run / "config.json").read_text())["dataset"] == str(tmp_path / "robot")
    (tmp_path / "robot" / "episode_000001.npz").write_bytes(b"not an npz")
    assert main(["train", "--dataset", str(tmp_path / "robot"), "--run-dir", str(tmp_path / "r2")]) == 2
    assert "episode_000001.npz: not a readable .npz episode" in capsys.readouterr().err


def test_mqe_generate_robot_writes_a_visual_datasets_trajectories_as_episodes(tmp_path, capsys):
    """robot-<name> from an existing visual-<name> file (rendering it is tests/test_visual_generate.py's):
    the episodes hold its frames, actions and the arm's proprioception row for row, in both formats, and
    read back into the same dataset."""
    episodes = _episodes(lengths=(10, 7))
    for e in episodes:
        e.pop("proprio")
    visual, _ = episodes_to_dataset(episodes, ActionNormalization(low=(-1.0,) * 5, high=(1.0,) * 5))
    qpos = np.random.default_rng(1).uniform(-1, 1, (17, 9)).astype(np.float32)
    Dataset.from_arrays(visual.observations, visual.actions, visual.terminals, qpos=qpos).save_npz(
        str(tmp_path / "visual-cube-single-play-v0.npz"))
    assert main(["generate", "robot-cube-single-play-v0", "--dataset-dir", str(tmp_path), "--episode-steps", "4"]) == 0
    out = capsys.readouterr().out
    assert "5 episodes, 20 steps, frames (6, 8, 3) uint8, actions 5-d, proprio 7-d" in out and "(RLDS" in out
    read = read_numpy_episodes(str(tmp_path / "robot-cube-single-play-v0"))
    # pieces of 4 rows overlapping by one (each starts at the previous one's final frame: no transition lost)
    starts = [0, 3, 6, 10, 13]  # trajectory of 10 rows -> 0:4, 3:7, 6:10; of 7 rows (10..16) -> 10:14, 13:17
    assert [len(e["images"]) for e in read] == [4] * 5
    loaded = Dataset.load_npz(str(tmp_path / "visual-cube-single-play-v0.npz"))
    for episode, a in zip(read, starts, strict=True):
        np.testing.assert_array_equal(episode["images"], loaded.observations[a:a + 4])
        np.testing.assert_array_equal(episode["actions"], loaded.actions[a:a + 4])
        proprio = episode["proprio"]
        np.testing.assert_array_equal(proprio[:, :6], qpos[a:a + 4, :6])  # the six arm joints
        np.testing.assert_allclose(proprio[:, 6], np.clip(qpos[a:a + 4, 6] / 0.8, 0, 1), rtol=1e-6)  # gripper
    rlds = read_episodes(str(tmp_path / "robot-cube-single-play-v0-rlds" / "robot_cube_single_play_v0"))
    for a, b in zip(rlds, read, strict=True):
        for key in ("images", "actions", "proprio"):
            np.testing.assert_array_equal(a[key], b[key])
    whole = dataset_to_episodes(loaded)
    assert [len(e["images"]) for e in whole] == [10, 7]
    assert main(["generate", "robot-pointmaze", "--dataset-dir", str(tmp_path)]) == 2
