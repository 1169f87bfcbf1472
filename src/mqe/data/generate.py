"""Generating OGBench datasets ourselves, in OGBench's exact on-disk layout (``mqe generate NAME``).

The writer (``generate``) is independent of the data-collection policy: a *collector* chooses each
episode's start and goal, each step's action, and what happens after a step (e.g. a new goal). Maze
collectors follow OGBench's published recipes; the point agent's low-level controller is the identity
on the oracle direction, and another agent (the ant) plugs in a learned direction-following controller
through ``MazeCollector(low_level=...)``.

Recipes (OGBench's generation commands; episodes x stored rows per episode, action noise std):
  pointmaze-*-navigate   1000 x 1001 (giant: 500 x 2001), noise 0.5: BFS oracle to a random vertex
                         cell; on success a new random vertex goal
  pointmaze-*-stitch     5000 x 201, noise 0.5: goal exactly 4 cells (BFS) from the start
  pointmaze-*-explore    10000 x 501, noise 1.0: a random direction held for 10 steps. OGBench has
                         no pointmaze explore data; this follows its antmaze explore recipe.
The validation file holds ``num_episodes // 10`` (at least one) further episodes from the same random
stream.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections import deque
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

import mqe.envs  # noqa: F401  (MUJOCO_GL before MuJoCo loads)
from mqe.data.dataset import Dataset

NAME = re.compile(r"^(?P<agent>point|ant)maze-(?P<maze>medium|large|giant|teleport|colossal)-"
                  r"(?P<kind>navigate|stitch|explore)-v0$")


class GenerationError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Recipe:
    num_episodes: int
    episode_steps: int  # stored rows per episode (= environment steps per episode)
    noise: float  # std of the Gaussian action noise
    kind: str  # navigate | stitch | explore


def recipe_for(name: str) -> tuple[str, Recipe]:
    """(environment id, recipe) for a dataset name; clear error for names we cannot generate."""
    match = NAME.match(name)
    if not match:
        raise GenerationError(
            f"cannot generate {name!r}: supported names are "
            "pointmaze-{medium,large,giant,teleport,colossal}-{navigate,stitch,explore}-v0"
        )
    agent, maze, kind = match["agent"], match["maze"], match["kind"]
    if agent != "point":
        raise GenerationError(
            f"cannot generate {name!r} yet: ant datasets need a trained locomotion expert "
            "(a later capability); point-maze datasets are supported"
        )
    if kind == "navigate":
        recipe = Recipe(500, 2001, 0.5, kind) if maze in ("giant", "colossal") else Recipe(1000, 1001, 0.5, kind)
    elif kind == "stitch":
        recipe = Recipe(5000, 201, 0.5, kind)
    else:
        recipe = Recipe(10000, 501, 1.0, kind)
    return f"{agent}maze-{maze}-v0", recipe


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


class MazeCollector:
    """OGBench's maze data-collection policy for one dataset kind.

    ``low_level(observation, direction) -> action`` turns the oracle's unit direction into an action
    (identity for the point; a trained expert for the ant).
    """

    def __init__(self, recipe: Recipe, low_level: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None):
        self.recipe = recipe
        self.low_level = low_level or (lambda observation, direction: direction)
        self.oracle: MazeOracle | None = None
        # goals_reached: success events (navigate draws a new goal at each); episodes_reaching_goal:
        # episodes whose (first) goal was reached at least once.
        self.stats = {"goals_reached": 0, "episodes_reaching_goal": 0}
        self._reached = False

    def begin_episode(self, env, rng: np.random.Generator) -> dict[str, Any]:
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
            nxt = self.oracle.next_cell(tuple(maze.xy_to_ij(xy)), tuple(maze.xy_to_ij(maze.cur_goal_xy)))
            direction = _unit(np.asarray(maze.ij_to_xy(nxt)) - xy)
        self._step += 1
        action = self.low_level(observation, direction) + self.recipe.noise * rng.standard_normal(2)
        return np.clip(action, -1.0, 1.0)

    def after_step(self, env, info: dict, rng: np.random.Generator) -> None:
        if info.get("success"):
            self.stats["goals_reached"] += 1
            if not self._reached:
                self.stats["episodes_reaching_goal"] += 1
                self._reached = True
            if self.recipe.kind == "navigate":  # a new random goal on arrival
                oracle = self.oracle
                goal = oracle.vertex_cells[rng.integers(len(oracle.vertex_cells))]
                env.unwrapped.set_goal(goal_ij=goal)


def generate(name: str, dataset_dir: str, *, seed: int = 0, num_episodes: int | None = None,
             collector: MazeCollector | None = None, progress: bool = True) -> tuple[str, str, dict]:
    """Writes ``<name>.npz`` and ``<name>-val.npz`` into ``dataset_dir``; returns (paths..., stats)."""
    import gymnasium
    import ogbench  # noqa: F401  (registers OGBench's environments)

    from mqe.envs import colossal  # noqa: F401  (registers the colossal mazes)

    env_id, recipe = recipe_for(name)
    if num_episodes is not None:
        if num_episodes < 1:
            raise GenerationError(f"--num-episodes must be >= 1, got {num_episodes}")
        recipe = dataclasses.replace(recipe, num_episodes=num_episodes)
    collector = collector or MazeCollector(recipe)
    env = gymnasium.make(env_id, terminate_at_goal=False, max_episode_steps=recipe.episode_steps)
    # The environment draws its reset noise from numpy's global generator and gymnasium's seeded one.
    np.random.seed(seed)
    rng = np.random.default_rng(seed)
    total = recipe.num_episodes + max(1, recipe.num_episodes // 10)  # >= 1 so tiny sets get a val file
    steps = recipe.episode_steps
    obs_dim = env.observation_space.shape[0]
    qpos_dim, qvel_dim = env.unwrapped.data.qpos.shape[0], env.unwrapped.data.qvel.shape[0]
    arrays = {
        "observations": np.empty((total * steps, obs_dim), np.float32),
        "actions": np.empty((total * steps, env.action_space.shape[0]), np.float32),
        "terminals": np.zeros(total * steps, bool),
        "qpos": np.empty((total * steps, qpos_dim), np.float32),
        "qvel": np.empty((total * steps, qvel_dim), np.float32),
    }
    bar = tqdm(total=total * steps, disable=not progress, unit="step", desc=f"generate {name}")
    row = 0
    for episode in range(total):
        options = collector.begin_episode(env, rng)
        ob, _ = env.reset(seed=seed if episode == 0 else None, options=options)
        for t in range(steps):
            action = collector.act(env, ob, rng)
            next_ob, _, terminated, truncated, info = env.step(action)
            arrays["observations"][row] = ob
            arrays["actions"][row] = action
            arrays["terminals"][row] = terminated or truncated
            arrays["qpos"][row] = info["prev_qpos"]
            arrays["qvel"][row] = info["prev_qvel"]
            collector.after_step(env, info, rng)
            ob = next_ob
            row += 1
        if not arrays["terminals"][row - 1]:
            raise GenerationError(f"{env_id}: episode {episode} did not end after {steps} steps")
        bar.update(steps)
    bar.close()
    env.close()

    os.makedirs(dataset_dir, exist_ok=True)
    split = recipe.num_episodes * steps
    paths = []
    for suffix, rows in (("", slice(0, split)), ("-val", slice(split, None))):
        part = {k: v[rows] for k, v in arrays.items()}
        dataset = Dataset.from_arrays(part.pop("observations"), part.pop("actions"), part.pop("terminals"),
                                      source=f"generated {name}{suffix}", **part)
        path = os.path.join(dataset_dir, f"{name}{suffix}.npz")
        dataset.save_npz(path, compress=True)
        paths.append(path)
    stats = {"episodes": recipe.num_episodes, "val_episodes": total - recipe.num_episodes,
             "episode_steps": steps, **collector.stats,
             "cells_visited": _cells_visited(env.unwrapped, arrays["qpos"]),
             "free_cells": len(collector.oracle.free_cells) if collector.oracle else 0}
    return paths[0], paths[1], stats


def _cells_visited(maze, qpos: np.ndarray) -> int:
    ij = {tuple(maze.xy_to_ij(xy)) for xy in np.unique(np.round(qpos[:, :2], 1), axis=0)}
    return sum(1 for i, j in ij if 0 <= i < maze.maze_map.shape[0] and 0 <= j < maze.maze_map.shape[1]
               and maze.maze_map[i, j] == 0)
