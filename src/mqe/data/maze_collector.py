"""OGBench's maze data-collection policies (point and ant), as collectors for ``mqe.data.generate``.

A BFS oracle picks the next cell towards the goal; the unit direction to that cell's centre goes to a
low-level controller: the identity for the point, the trained ant expert (``mqe.experts.ant``) for
the ant, which sees the maze observation without x, y plus the direction. Gaussian noise (std
``recipe.noise``) is added to every action, then clipped to [-1, 1]. Explore data replaces the
oracle by a random direction held for 10 steps.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

import numpy as np

class MazeOracle:
    """BFS over the maze's cells, cached per goal: the next cell towards a goal, as OGBench's oracle picks it."""

    _MOVES = ((-1, 0), (0, -1), (1, 0), (0, 1))  # OGBench's neighbour order: ties go to the first

    def __init__(self, maze_map: np.ndarray):
        self.maze_map = np.asarray(maze_map)
        self._cache: dict[tuple[int, int], np.ndarray] = {}
        free = np.argwhere(self.maze_map == 0)
        self.free_cells = [tuple(map(int, c)) for c in free]
        self.vertex_cells = [c for c in self.free_cells if not self._is_corridor(c)]

    def _free(self, i, j) -> bool:
        return 0 <= i < self.maze_map.shape[0] and 0 <= j < self.maze_map.shape[1] and self.maze_map[i, j] == 0

    def _is_corridor(self, cell) -> bool:
        i, j = cell
        vertical = self._free(i - 1, j) and self._free(i + 1, j) and not self._free(i, j - 1) and not self._free(i, j + 1)
        horizontal = self._free(i, j - 1) and self._free(i, j + 1) and not self._free(i - 1, j) and not self._free(i + 1, j)
        return vertical or horizontal

    def distances_to(self, goal: tuple[int, int]) -> np.ndarray:
        """BFS cell distances to ``goal`` (-1: wall or unreachable)."""
        if goal not in self._cache:
            dist = np.full(self.maze_map.shape, -1, dtype=np.int64)
            dist[goal] = 0
            queue = deque([goal])
            while queue:
                i, j = queue.popleft()
                for di, dj in self._MOVES:
                    ni, nj = i + di, j + dj
                    if self._free(ni, nj) and dist[ni, nj] < 0:
                        dist[ni, nj] = dist[i, j] + 1
                        queue.append((ni, nj))
            self._cache[goal] = dist
        return self._cache[goal]

    def next_cell(self, cell: tuple[int, int], goal: tuple[int, int]) -> tuple[int, int]:
        """The first neighbour strictly closer to the goal, or the cell itself (at the goal)."""
        dist = self.distances_to(goal)
        for di, dj in self._MOVES:
            ni, nj = cell[0] + di, cell[1] + dj
            if self._free(ni, nj) and 0 <= dist[ni, nj] < dist[cell]:
                return ni, nj
        return cell

    def cells_at_distance(self, start: tuple[int, int], steps: int) -> list[tuple[int, int]]:
        dist = self.distances_to(start)
        return [tuple(map(int, c)) for c in np.argwhere(dist == steps)]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) + 1e-6)


def subgoal_xy(maze, oracle: MazeOracle, xy: np.ndarray, goal_xy: np.ndarray, approach_goal: bool) -> np.ndarray:
    """The centre of the next cell on a shortest path to the goal's cell. Inside the goal's cell: the
    goal itself with ``approach_goal``, else the cell's centre (OGBench's data collector)."""
    cell = tuple(maze.xy_to_ij(xy))
    nxt = oracle.next_cell(cell, tuple(maze.xy_to_ij(goal_xy)))
    if nxt == cell and approach_goal:
        return np.asarray(goal_xy)
    return np.asarray(maze.ij_to_xy(nxt))


class MazeCollector:
    """OGBench's maze data-collection policy for one dataset kind.

    ``low_level(observation, direction) -> action`` turns the oracle's unit direction into an action
    (identity for the point; a trained expert for the ant).
    """

    def __init__(self, recipe, low_level: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None):
        self.recipe = recipe
        self.env_kwargs = {"terminate_at_goal": False, "max_episode_steps": recipe.episode_steps}
        self.low_level = low_level or (lambda observation, direction: direction)
        self.oracle: MazeOracle | None = None
        # goals_reached: goals reached (navigate draws a new goal on each arrival; stitch and explore keep
        # one goal per episode, so an agent resting on it counts once); episodes_reaching_goal: episodes
        # whose first goal was reached.
        self.stats = {"goals_reached": 0, "episodes_reaching_goal": 0}
        self._reached = False

    def reset(self, env, rng: np.random.Generator, seed: int | None) -> np.ndarray:
        """Draws the episode's start and goal cells and resets ``env`` into them."""
        options = self._begin_episode(env, rng)
        ob, _ = env.reset(seed=seed, options=options)
        return ob

    def _begin_episode(self, env, rng: np.random.Generator) -> dict[str, Any]:
        maze = env.unwrapped
        if self.oracle is None:
            self.oracle = MazeOracle(maze.maze_map)
        oracle = self.oracle
        start = oracle.free_cells[rng.integers(len(oracle.free_cells))]
        if self.recipe.kind == "stitch":
            candidates = oracle.cells_at_distance(start, 4)
            goal = candidates[rng.integers(len(candidates))] if candidates else start
        else:
            goal = oracle.vertex_cells[rng.integers(len(oracle.vertex_cells))]
        self._step = 0
        self._direction = np.zeros(2)
        self._reached = False
        return dict(task_info=dict(init_ij=start, goal_ij=goal))

    def act(self, env, observation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        maze = env.unwrapped
        if self.recipe.kind == "explore":
            if self._step % 10 == 0:
                self._direction = _unit(rng.standard_normal(2))
            direction = self._direction
        else:
            xy = maze.get_xy()
            direction = _unit(subgoal_xy(maze, self.oracle, xy, maze.cur_goal_xy, approach_goal=False) - xy)
        self._step += 1
        action = self.low_level(observation, direction)
        return np.clip(action + self.recipe.noise * rng.standard_normal(action.shape), -1.0, 1.0)

    def accept_episode(self, episode: dict[str, np.ndarray]) -> bool:
        return True

    def after_step(self, env, info: dict, rng: np.random.Generator) -> None:
        if info.get("success"):
            if self.recipe.kind == "navigate" or not self._reached:
                self.stats["goals_reached"] += 1
            if not self._reached:
                self.stats["episodes_reaching_goal"] += 1
                self._reached = True
            if self.recipe.kind == "navigate":  # a new random goal on arrival
                oracle = self.oracle
                goal = oracle.vertex_cells[rng.integers(len(oracle.vertex_cells))]
                env.unwrapped.set_goal(goal_ij=goal)


class AntMazeCollector(MazeCollector):
    """The maze recipe with the ant expert as low-level controller (``expert``: an actor .npz, or
    None for the packaged one). Picklable: workers load the actor themselves."""

    def __init__(self, recipe, expert: str | None = None):
        from mqe.experts.ant import AntController, load_actor

        super().__init__(recipe, AntController(load_actor(expert)))


def summarize(env_id: str, arrays: dict[str, np.ndarray]) -> dict[str, int]:
    """Coverage: how many of the maze's free cells the data visits."""
    import gymnasium
    import ogbench  # noqa: F401

    from mqe.envs import colossal  # noqa: F401

    maze = gymnasium.make(env_id).unwrapped
    ij = {tuple(maze.xy_to_ij(xy)) for xy in np.unique(np.round(arrays["qpos"][:, :2], 1), axis=0)}
    visited = sum(1 for i, j in ij if 0 <= i < maze.maze_map.shape[0] and 0 <= j < maze.maze_map.shape[1]
                  and maze.maze_map[i, j] == 0)
    return {"cells_visited": visited, "free_cells": len(MazeOracle(maze.maze_map).free_cells)}


class SubgoalPolicy:
    """The BFS-subgoal controller as a batched evaluation policy ``(observations, goals) -> actions``.

    Each row heads for the centre of the next cell on a shortest path to the goal's cell and, inside
    the goal's cell, for the goal itself (the data collector heads for the cell centre there, as
    OGBench's does). ``low_level(observations, directions)`` maps unit directions to actions (None: the
    point, whose action is the direction); optional Gaussian action noise, clipped to [-1, 1].
    """

    def __init__(self, env_name: str, low_level: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                 noise: float = 0.0, seed: int = 0):
        from mqe.envs.ogbench_envs import make_env

        self.maze = make_env(env_name).unwrapped
        self.oracle = MazeOracle(self.maze.maze_map)
        self.low_level = low_level
        self.noise = noise
        self.rng = np.random.default_rng(seed)

    def directions(self, observations: np.ndarray, goals: np.ndarray) -> np.ndarray:
        out = np.empty((len(observations), 2))
        for row, (xy, goal_xy) in enumerate(zip(observations[:, :2], goals[:, :2])):
            out[row] = _unit(subgoal_xy(self.maze, self.oracle, xy, goal_xy, approach_goal=True) - xy)
        return out

    def __call__(self, observations: np.ndarray, goals: np.ndarray) -> np.ndarray:
        observations = np.asarray(observations)
        directions = self.directions(observations, np.asarray(goals))
        actions = directions if self.low_level is None else self.low_level(observations, directions)
        if self.noise:
            actions = actions + self.noise * self.rng.standard_normal(actions.shape)
        return np.clip(actions, -1.0, 1.0)
