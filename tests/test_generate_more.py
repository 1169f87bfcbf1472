"""AntMaze (with an ant actor) and manipulation datasets: OGBench's loader and ours read them, the
recipe's sizes hold, and the scene rejection rule is OGBench's."""

import jax
import numpy as np
import pytest

ogbench = pytest.importorskip("ogbench")

from mqe.data.dataset import Dataset  # noqa: E402
from mqe.data.generate import generate  # noqa: E402
from mqe.data.manip_collector import ManipCollector  # noqa: E402
from mqe.experts.sac import NumpyActor, SACAgent, SACConfig  # noqa: E402


def _check_loads(name, out, episodes, rows, extra_keys=()):
    env, train, val = ogbench.make_env_and_datasets(name, dataset_dir=str(out), compact_dataset=True, add_info=True)
    assert train["observations"].shape[0] == episodes * rows
    assert val["observations"].shape[0] == max(1, episodes // 10) * rows
    assert train["observations"].shape[1] == env.observation_space.shape[0]
    assert train["actions"].shape[1] == env.action_space.shape[0]
    assert np.abs(train["actions"]).max() <= 1.0
    for key in ("qpos", "qvel", *extra_keys):
        assert key in train
    ours = Dataset.load_npz(str(out / f"{name}.npz"))
    assert ours.num_trajectories == episodes and set(ours.trajectory_lengths) == {rows}
    return train


@pytest.fixture(scope="module")
def untrained_ant_actor(tmp_path_factory):
    config = SACConfig()
    agent = SACAgent.create(jax.random.PRNGKey(0), np.zeros((1, 27)), np.zeros((1, 2)), np.zeros((1, 8)), config)
    path = tmp_path_factory.mktemp("expert") / "actor.npz"
    np.savez(path, **NumpyActor(jax.device_get(agent.params["actor"])).to_arrays())
    return str(path)


def test_antmaze_stitch_with_an_ant_actor(tmp_path, untrained_ant_actor):
    name = "antmaze-medium-stitch-v0"
    _, _, stats = generate(name, str(tmp_path), num_episodes=10, expert=untrained_ant_actor, progress=False)
    train = _check_loads(name, tmp_path, 10, 201)
    assert train["observations"].shape[1] == 29 and train["qpos"].shape[1] == 15
    np.testing.assert_allclose(train["observations"][:, :15], train["qpos"], atol=1e-6)  # obs = (qpos, qvel)
    # An untrained actor barely moves: its 0.2-std noise is all that acts; coverage stays local.
    assert stats["cells_visited"] <= stats["free_cells"]


def test_cube_play_loads_and_oracles_succeed(tmp_path):
    _, _, stats = generate("cube-single-play-v0", str(tmp_path), num_episodes=1, progress=False)
    _check_loads("cube-single-play-v0", tmp_path, 1, 1001)
    assert stats["tasks_done"] >= 5 and stats["tasks_succeeded"] >= 0.8 * stats["tasks_done"]
    assert stats["table_bins_visited"] > 10


def test_puzzle_noisy_stores_button_states(tmp_path):
    _, _, stats = generate("puzzle-3x3-noisy-v0", str(tmp_path), num_episodes=1, progress=False)
    train = _check_loads("puzzle-3x3-noisy-v0", tmp_path, 1, 1001, extra_keys=("button_states",))
    assert train["button_states"].dtype == np.int64 and train["button_states"].shape[1] == 9
    assert set(np.unique(train["button_states"])) <= {0, 1}
    assert stats["button_patterns_visited"] > 5  # presses toggle lights-out patterns
    # The single-task variants relabel from button_states through OGBench's loader.
    _, single, _ = ogbench.make_env_and_datasets("puzzle-3x3-noisy-singletask-task1-v0", dataset_dir=str(tmp_path))
    assert "rewards" in single


def test_scene_rejects_episodes_where_the_cube_leaves_the_table():
    collector = ManipCollector.__new__(ManipCollector)
    collector.is_scene = True
    qpos = np.zeros((5, 25), np.float32)
    qpos[:, 14:17] = (0.4, 0.0, 0.02)
    assert collector.accept_episode({"qpos": qpos})
    in_drawer = qpos.copy()
    in_drawer[2, 14:17] = (0.33, -0.31, 0.066)  # left of the table but inside the drawer
    assert collector.accept_episode({"qpos": in_drawer})
    fallen = qpos.copy()
    fallen[3, 14:17] = (0.33, -0.31, 0.02)  # left of the table, at table height: off the usable area
    assert not collector.accept_episode({"qpos": fallen})
    far = qpos.copy()
    far[4, 15] = 0.29
    assert not collector.accept_episode({"qpos": far})
    collector.is_scene = False
    assert collector.accept_episode({"qpos": fallen})


def test_table_coverage_bins_partition_the_work_area():
    from mqe.data.manip_collector import TABLE_BIN, TABLE_X, TABLE_Y, table_bins

    centres = np.stack(np.meshgrid(np.arange(TABLE_X[0] + TABLE_BIN / 2, TABLE_X[1], TABLE_BIN),
                                   np.arange(TABLE_Y[0] + TABLE_BIN / 2, TABLE_Y[1], TABLE_BIN)), -1).reshape(-1, 2)
    visited, total = table_bins(centres)
    assert total == 10 * 24 and visited == total  # one point per bin fills every bin
    corners = np.array([[TABLE_X[0], TABLE_Y[0]], [TABLE_X[1], TABLE_Y[1]], [TABLE_X[1], TABLE_Y[0]]])
    assert table_bins(corners) == (3, total)  # the far edges belong to the last bins, not to new ones
    outside = np.array([[0.29, 0.0], [0.4, 0.31], [0.4, -0.35]])  # off the table; -0.35: inside the drawer
    assert table_bins(outside) == (0, total)
    assert table_bins(np.concatenate([centres, centres + 0.001]))[0] == total  # union over cubes, not a sum
