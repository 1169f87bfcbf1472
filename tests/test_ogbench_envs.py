"""OGBench environments through our factory, and the paper's colossal maze."""

import pytest

pytest.importorskip("ogbench")

from mqe.envs.colossal import COLOSSAL_MAP, COLOSSAL_TASKS  # noqa: E402
from mqe.envs.gridworld import GridMaze  # noqa: E402
from mqe.envs.ogbench_envs import UnknownEnvironmentError, make_env  # noqa: E402


def test_colossal_maze_builds_and_tasks_reset_into_the_right_cells():
    env = make_env("antmaze-colossal-navigate-v0")
    maze = env.unwrapped
    assert maze.maze_map.shape == (18, 24)
    assert env.spec.max_episode_steps == 2000
    assert maze.num_tasks == 5
    for task_id, (start, goal) in enumerate(COLOSSAL_TASKS, start=1):
        ob, info = env.reset(seed=task_id, options=dict(task_id=task_id))
        assert ob.shape == (29,)
        assert tuple(maze.xy_to_ij(maze.get_xy())) == start
        assert tuple(maze.xy_to_ij(info["goal"][:2])) == goal
    _, _, _, _, info = env.step(env.action_space.sample())
    assert info["success"] == 0.0
    env.close()


def test_colossal_task_distances():
    layout = ["".join("#" if c == "1" else "." for c in row) for row in COLOSSAL_MAP]
    grid = GridMaze(layout, tasks=COLOSSAL_TASKS)
    assert grid.task_distances.tolist() == [40, 38, 40, 39, 32]


def test_pointmaze_factory_and_bad_name():
    env = make_env("pointmaze-medium-navigate-v0")
    assert env.unwrapped.maze_map.shape == (8, 8)
    env.close()
    with pytest.raises(UnknownEnvironmentError, match="pointmaze-huge-navigate-v0"):
        make_env("pointmaze-huge-navigate-v0")


def test_importing_mqe_envs_registers_colossal_for_ogbenchs_own_loader():
    import subprocess
    import sys

    # A fresh interpreter: in this one, other tests have imported the colossal module already.
    code = ("import mqe.envs, gymnasium, ogbench; assert 'antmaze-colossal-v0' in gymnasium.registry; "
            "env = ogbench.make_env_and_datasets('antmaze-colossal-stitch-v0', env_only=True); "
            "assert env.unwrapped.maze_map.shape == (18, 24)")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
