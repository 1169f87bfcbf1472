"""The MQE paper's antmaze-colossal maze, built on OGBench's own maze machinery (spec section 7).

An ant (or point) maze 50% larger than 'giant' in each dimension: 18 x 24 cells, maze unit 4,
2000-step episodes. Importing this module registers with gymnasium:

    antmaze-colossal-v0, pointmaze-colossal-v0          (states)
so that OGBench's dataset names ``antmaze-colossal-{navigate,stitch}-v0`` resolve through
``ogbench.make_env_and_datasets`` like any built-in maze.
"""

from __future__ import annotations

import functools

import gymnasium
import numpy as np

# 1 = wall, row by row (spec section 7).
COLOSSAL_MAP = (
    "111111111111111111111111",
    "100000001000000000000001",
    "101011101011101110111101",
    "101000100010101000100001",
    "101110101110101011101101",
    "100010100000101010100101",
    "111010111110101010101101",
    "101010000010101010000001",
    "101011111010101010111101",
    "100010000010100010000101",
    "101110111110111111010101",
    "101000000010000000010101",
    "101011111011101111110101",
    "101010000010001000100101",
    "101010101110101010001101",
    "101010101010101010100101",
    "100000100000100011100001",
    "111111111111111111111111",
)

# (start (row, col), goal (row, col)); BFS cell distances 40, 38, 40, 39, 32.
COLOSSAL_TASKS = (
    ((1, 1), (16, 22)),
    ((1, 14), (16, 3)),
    ((9, 1), (7, 17)),
    ((9, 8), (2, 22)),
    ((9, 14), (11, 14)),
)

EPISODE_STEPS = 2000


def colossal_map() -> np.ndarray:
    return np.array([[int(c) for c in row] for row in COLOSSAL_MAP], dtype=np.int64)


@functools.cache
def _colossal_class(loco_env_type: str):
    from ogbench.locomaze.maze import make_maze_env

    # OGBench defines its maze class inside a factory; build its smallest maze once to get the class.
    base = type(make_maze_env(loco_env_type, "maze", maze_type="arena"))

    class ColossalMazeEnv(base):
        """OGBench's maze environment with the colossal layout and the paper's five tasks."""

        def update_tree(self, tree):
            # Called by the base constructor before the MuJoCo model is built: swap the layout in.
            self.maze_map = colossal_map()
            self._maze_type = "colossal"
            super().update_tree(tree)

        def set_tasks(self):
            self.task_infos = [
                dict(task_name=f"task{i + 1}", init_ij=start, init_xy=self.ij_to_xy(start),
                     goal_ij=goal, goal_xy=self.ij_to_xy(goal))
                for i, (start, goal) in enumerate(COLOSSAL_TASKS)
            ]
            if self._reward_task_id == 0:
                self._reward_task_id = 1

    ColossalMazeEnv.__name__ = f"Colossal{loco_env_type.capitalize()}MazeEnv"
    return ColossalMazeEnv


def make_colossal_env(loco_env_type: str = "ant", **kwargs):
    """Gymnasium entry point. ``maze_type`` is fixed to the colossal layout."""
    kwargs.pop("maze_type", None)
    # The base constructor validates maze_type against OGBench's list; the layout is replaced anyway.
    return _colossal_class(loco_env_type)(maze_type="giant", **kwargs)


def register() -> None:
    """Registers the colossal environments with gymnasium (idempotent)."""
    for loco in ("ant", "point"):
        env_id = f"{loco}maze-colossal-v0"
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id,
                entry_point="mqe.envs.colossal:make_colossal_env",
                max_episode_steps=EPISODE_STEPS,
                kwargs=dict(loco_env_type=loco),
            )


register()
