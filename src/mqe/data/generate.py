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
The validation file holds ``num_episodes // 10`` (at least one) further episodes. Episodes are
collected in fixed-size shards, each with its own random stream from (seed, shard index), in parallel
worker processes; the output depends on the seed only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from collections import deque
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

import mqe.envs  # noqa: F401  (MUJOCO_GL before MuJoCo loads)
from mqe.data.dataset import Dataset
from mqe.io import atomic_write_text, atomic_writer

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


def shard_episodes_for(recipe: Recipe) -> int:
    """Episodes per shard: ~50k environment steps, a function of the recipe only, so the output depends
    on the seed alone (not on the number of workers, nor on interruptions)."""
    return max(1, 50_000 // recipe.episode_steps)


def _collect_shard(env_id: str, recipe: Recipe, collector_factory, seed: int, shard: int,
                   episodes: int) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """``episodes`` episodes with the shard's own random stream: (arrays, collector statistics)."""
    import gymnasium
    import ogbench  # noqa: F401  (registers OGBench's environments)

    from mqe.envs import colossal  # noqa: F401  (registers the colossal mazes)

    collector = collector_factory(recipe)
    env = gymnasium.make(env_id, terminate_at_goal=False, max_episode_steps=recipe.episode_steps)
    # The environment draws its reset noise from numpy's global generator and gymnasium's seeded one.
    stream = np.random.SeedSequence([seed, shard])
    global_seed, reset_seed = (int(v) for v in stream.generate_state(2))
    np.random.seed(global_seed)
    rng = np.random.default_rng(stream)
    steps = recipe.episode_steps
    rows = episodes * steps
    qpos_dim, qvel_dim = env.unwrapped.data.qpos.shape[0], env.unwrapped.data.qvel.shape[0]
    arrays = {
        "observations": np.empty((rows, env.observation_space.shape[0]), np.float32),
        "actions": np.empty((rows, env.action_space.shape[0]), np.float32),
        "terminals": np.zeros(rows, bool),
        "qpos": np.empty((rows, qpos_dim), np.float32),
        "qvel": np.empty((rows, qvel_dim), np.float32),
    }
    row = 0
    for episode in range(episodes):
        options = collector.begin_episode(env, rng)
        ob, _ = env.reset(seed=reset_seed if episode == 0 else None, options=options)
        for _ in range(steps):
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
    env.close()
    return arrays, dict(collector.stats)


def _shard_job(job) -> int:
    """Worker entry point: collects one shard and writes it atomically; returns its index."""
    env_id, recipe, collector_factory, seed, shard, episodes, path = job
    arrays, stats = _collect_shard(env_id, recipe, collector_factory, seed, shard, episodes)
    with atomic_writer(path) as f:
        np.savez(f, **arrays, **{f"stat_{k}": np.int64(v) for k, v in stats.items()})
    return shard


def generate(name: str, dataset_dir: str, *, seed: int = 0, num_episodes: int | None = None,
             collector_factory: Callable[[Recipe], Any] = MazeCollector, workers: int = 1,
             shard_episodes: int | None = None, progress: bool = True) -> tuple[str, str, dict]:
    """Writes ``<name>.npz`` and ``<name>-val.npz`` into ``dataset_dir``; returns (paths..., stats).

    Episodes are collected in shards of a fixed size, each with its own random stream derived from
    ``seed``, by ``workers`` processes; finished shards are kept in ``.<name>.shards/`` until the
    dataset is written, so an interrupted run resumes from them. ``collector_factory(recipe)`` makes
    the data-collection policy in each worker (it must pickle when ``workers > 1``). ``shard_episodes``
    overrides the recipe's shard size (it changes the random streams, hence the data).
    """
    env_id, recipe = recipe_for(name)
    if num_episodes is not None:
        if num_episodes < 1:
            raise GenerationError(f"--num-episodes must be >= 1, got {num_episodes}")
        recipe = dataclasses.replace(recipe, num_episodes=num_episodes)
    if workers < 1:
        raise GenerationError(f"--workers must be >= 1, got {workers}")
    total = recipe.num_episodes + max(1, recipe.num_episodes // 10)  # >= 1 so tiny sets get a val file
    per_shard = shard_episodes or shard_episodes_for(recipe)
    counts = [min(per_shard, total - start) for start in range(0, total, per_shard)]

    shard_dir = os.path.join(dataset_dir, f".{name}.shards")
    manifest = json.dumps({"name": name, "seed": seed, "total_episodes": total, "recipe": dataclasses.asdict(recipe),
                           "shard_episodes": per_shard, "collector": getattr(collector_factory, "__name__",
                                                                               repr(collector_factory))})
    _prepare_shard_dir(shard_dir, manifest)
    paths = [os.path.join(shard_dir, f"shard-{i:05d}.npz") for i in range(len(counts))]
    todo = [(env_id, recipe, collector_factory, seed, i, n, paths[i])
            for i, n in enumerate(counts) if not os.path.exists(paths[i])]
    reused = len(counts) - len(todo)
    bar = tqdm(total=total * recipe.episode_steps, initial=(total - sum(j[5] for j in todo)) * recipe.episode_steps,
               disable=not progress, unit="step", desc=f"generate {name}")
    if workers > 1 and len(todo) > 1:
        from mqe.parallel import imap_unordered

        for shard in imap_unordered(_shard_job, todo, workers):
            bar.update(counts[shard] * recipe.episode_steps)
    else:
        for job in todo:
            bar.update(counts[_shard_job(job)] * recipe.episode_steps)
    bar.close()

    arrays, stats = _concatenate_shards(paths)
    os.makedirs(dataset_dir, exist_ok=True)
    split = recipe.num_episodes * recipe.episode_steps
    out = []
    for suffix, rows in (("", slice(0, split)), ("-val", slice(split, None))):
        part = {k: v[rows] for k, v in arrays.items()}
        dataset = Dataset.from_arrays(part.pop("observations"), part.pop("actions"), part.pop("terminals"),
                                      source=f"generated {name}{suffix}", **part)
        path = os.path.join(dataset_dir, f"{name}{suffix}.npz")
        dataset.save_npz(path, compress=True)
        out.append(path)
    shutil.rmtree(shard_dir, ignore_errors=True)
    maze = _maze(env_id)
    oracle = MazeOracle(maze.maze_map)
    stats = {"episodes": recipe.num_episodes, "val_episodes": total - recipe.num_episodes,
             "episode_steps": recipe.episode_steps, **stats,
             "cells_visited": _cells_visited(maze, arrays["qpos"]), "free_cells": len(oracle.free_cells),
             "shards": len(counts), "shards_reused": reused}
    return out[0], out[1], stats


def _prepare_shard_dir(shard_dir: str, manifest: str) -> None:
    """Keeps the shards of an interrupted run with the same settings; starts afresh otherwise."""
    manifest_path = os.path.join(shard_dir, "manifest.json")
    if os.path.isdir(shard_dir):
        try:
            with open(manifest_path) as f:
                same = f.read() == manifest
        except OSError:
            same = False
        if not same:
            shutil.rmtree(shard_dir)
    os.makedirs(shard_dir, exist_ok=True)
    if not os.path.exists(manifest_path):
        atomic_write_text(manifest_path, manifest)


def _concatenate_shards(paths: list[str]) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    parts = [dict(np.load(p)) for p in paths]
    keys = [k for k in parts[0] if not k.startswith("stat_")]
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in keys}
    stats = {k[5:]: int(sum(int(p[k]) for p in parts)) for k in parts[0] if k.startswith("stat_")}
    return arrays, stats


def _maze(env_id: str):
    import gymnasium
    import ogbench  # noqa: F401

    from mqe.envs import colossal  # noqa: F401

    return gymnasium.make(env_id).unwrapped


def _cells_visited(maze, qpos: np.ndarray) -> int:
    ij = {tuple(maze.xy_to_ij(xy)) for xy in np.unique(np.round(qpos[:, :2], 1), axis=0)}
    return sum(1 for i, j in ij if 0 <= i < maze.maze_map.shape[0] and 0 <= j < maze.maze_map.shape[1]
               and maze.maze_map[i, j] == 0)
