"""Generating OGBench datasets ourselves, in OGBench's exact on-disk layout (``mqe generate NAME``).

The writer (``generate``) is independent of the data-collection policy: a *collector* resets each
episode, chooses each step's action, reacts after a step (a new goal, a new manipulation task) and may
reject a finished episode (OGBench re-collects some scene episodes). Collectors:
``mqe.data.maze_collector`` (point and ant mazes: BFS oracle + low-level controller) and
``mqe.data.manip_collector`` (cube, scene, puzzle: the scripted oracles from the ``ogbench`` wheel).

Recipes (OGBench's generation commands; episodes x stored rows per episode):
  {point,ant}maze-*-navigate  1000 x 1001 (giant, colossal: 500 x 2001); noise 0.5 (point) / 0.2 (ant):
                              BFS oracle to a random vertex cell, a new one on arrival
  {point,ant}maze-*-stitch    5000 x 201, same noise: goal exactly 4 cells (BFS) from the start
  {point,ant}maze-*-explore   10000 x 501, noise 1.0: a random direction held for 10 steps (OGBench has
                              explore data only for antmaze medium/large/teleport; the other mazes,
                              and the point, follow that recipe)
  *maze-colossal-*            the MQE paper's own maze (not in OGBench), with the giant maze's recipe
  cube-{single,double}-*      1000 x 1001; cube-triple-* 3000 x 1001
  scene-*, puzzle-{3x3,4x4}-* 1000 x 1001
  *-play: plan oracles; *-noisy: Markov oracles with Gaussian noise and random actions (probability
  0.1; puzzle 0.2)
The validation file holds ``num_episodes // 10`` (at least one) further episodes. Episodes are
collected in fixed-size shards, each with its own random stream from (seed, shard index), in parallel
worker processes; the output depends on the seed only.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import shutil
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

import mqe.envs  # noqa: F401  (MUJOCO_GL before MuJoCo loads)
from mqe.data.dataset import Dataset
from mqe.errors import MQEError
from mqe.io import atomic_write_text, atomic_writer

MAZE_NAME = re.compile(r"^(?P<agent>point|ant)maze-(?P<maze>medium|large|giant|teleport|colossal)-"
                       r"(?P<kind>navigate|stitch|explore)-v0$")
MANIP_NAME = re.compile(r"^(?P<env>cube-(?:single|double|triple)|scene|puzzle-(?:3x3|4x4))-(?P<kind>play|noisy)-v0$")
SUPPORTED = ("{point,ant}maze-{medium,large,giant,teleport,colossal}-{navigate,stitch,explore}-v0, "
             "cube-{single,double,triple}-{play,noisy}-v0, scene-{play,noisy}-v0, puzzle-{3x3,4x4}-{play,noisy}-v0")


class GenerationError(MQEError, ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Recipe:
    num_episodes: int
    episode_steps: int  # stored rows per episode (= environment steps per episode)
    noise: float  # mazes: std of the Gaussian action noise; noisy manipulation: the largest noise scale
    kind: str  # navigate | stitch | explore | play | noisy
    p_random_action: float = 0.0  # probability of a uniformly random action (noisy manipulation)


def recipe_for(name: str) -> tuple[str, Recipe]:
    """(environment id, recipe) for a dataset name; clear error for names we cannot generate."""
    match = MAZE_NAME.match(name)
    if match:
        agent, maze, kind = match["agent"], match["maze"], match["kind"]
        noise = 1.0 if kind == "explore" else (0.5 if agent == "point" else 0.2)
        if kind == "navigate":
            long = maze in ("giant", "colossal")
            recipe = Recipe(500, 2001, noise, kind) if long else Recipe(1000, 1001, noise, kind)
        elif kind == "stitch":
            recipe = Recipe(5000, 201, noise, kind)
        else:
            recipe = Recipe(10000, 501, noise, kind)
        return f"{agent}maze-{maze}-v0", recipe
    match = MANIP_NAME.match(name)
    if match:
        env, kind = match["env"], match["kind"]
        episodes = 3000 if env == "cube-triple" else 1000
        p_random = 0.0 if kind == "play" else (0.2 if env.startswith("puzzle") else 0.1)
        return f"{env}-v0", Recipe(episodes, 1001, 0.1, kind, p_random)
    if name.startswith("humanoidmaze-"):
        raise GenerationError(
            f"cannot generate {name!r}: HumanoidMaze data needs a humanoid locomotion expert (OGBench trained "
            "its own with SAC for ~40M environment steps and large critics: ~300 h on a 2-core CPU, a few "
            "GPU-days); place OGBench's official files in --dataset-dir instead")
    if name.startswith("visual-"):
        raise GenerationError(
            f"{name!r} is a pixel dataset: it is rendered from its state dataset by mqe.data.visual.generate_visual "
            f"(`mqe generate {name}`), not collected")
    raise GenerationError(f"cannot generate {name!r}: supported names are {SUPPORTED}")


def collector_for(name: str, expert: str | None = None) -> tuple[Callable[[Recipe], Any], str]:
    """(picklable collector factory, identity string) for a dataset name. The identity goes into the
    shard manifest, so shards are reused only with the same data-collection policy."""
    from mqe.data import manip_collector, maze_collector

    if name.startswith("pointmaze-"):
        return maze_collector.MazeCollector, "MazeCollector"
    if name.startswith("antmaze-"):
        from mqe.experts.ant import load_actor, packaged_paths

        from mqe.experts.online import ExpertError

        path = expert or packaged_paths()[0]
        try:
            load_actor(path)  # a clear error now rather than in every worker
        except ExpertError as exc:
            raise GenerationError(str(exc)) from None
        with open(path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()[:16]
        return functools.partial(maze_collector.AntMazeCollector, expert=path), f"AntMazeCollector:{digest}"
    recipe_for(name)
    return manip_collector.ManipCollector, "ManipCollector"


def shard_episodes_for(recipe: Recipe) -> int:
    """Episodes per shard: ~50k environment steps, a function of the recipe only, so the output depends
    on the seed alone (not on the number of workers, nor on interruptions)."""
    return max(1, 50_000 // recipe.episode_steps)


def _collect_shard(env_id: str, recipe: Recipe, collector_factory, seed: int, shard: int,
                   episodes: int) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """``episodes`` accepted episodes with the shard's own random stream: (arrays, collector statistics)."""
    import gymnasium
    import ogbench  # noqa: F401  (registers OGBench's environments)

    from mqe.envs import colossal  # noqa: F401  (registers the colossal mazes)

    collector = collector_factory(recipe)
    env = gymnasium.make(env_id, **collector.env_kwargs)
    # The environment draws from its own seeded generator; OGBench's oracles (and some wrappers) from
    # numpy's global one: seed both from (seed, shard).
    stream = np.random.SeedSequence([seed, shard])
    global_seed, reset_seed = (int(v) for v in stream.generate_state(2))
    np.random.seed(global_seed)
    rng = np.random.default_rng(stream)
    steps = recipe.episode_steps
    rows = episodes * steps
    unwrapped = env.unwrapped
    arrays = {
        "observations": np.empty((rows, env.observation_space.shape[0]), np.float32),
        "actions": np.empty((rows, env.action_space.shape[0]), np.float32),
        "terminals": np.zeros(rows, bool),
        "qpos": np.empty((rows, unwrapped.data.qpos.shape[0]), np.float32),
        "qvel": np.empty((rows, unwrapped.data.qvel.shape[0]), np.float32),
    }
    if hasattr(unwrapped, "_cur_button_states"):  # scene and puzzle
        arrays["button_states"] = np.empty((rows, len(unwrapped._cur_button_states)), np.int64)
    row, accepted, rejected = 0, 0, 0
    while accepted < episodes:
        begin = row
        ob = collector.reset(env, rng, reset_seed if row == 0 and rejected == 0 else None)
        for _ in range(steps):
            action = collector.act(env, ob, rng)
            next_ob, _, terminated, truncated, info = env.step(action)
            arrays["observations"][row] = ob
            arrays["actions"][row] = action
            arrays["terminals"][row] = terminated or truncated
            arrays["qpos"][row] = info["prev_qpos"]
            arrays["qvel"][row] = info["prev_qvel"]
            if "button_states" in arrays:
                arrays["button_states"][row] = info["prev_button_states"]
            collector.after_step(env, info, rng)
            ob = next_ob
            row += 1
        if not arrays["terminals"][row - 1]:
            raise GenerationError(f"{env_id}: episode {accepted} did not end after {steps} steps")
        if collector.accept_episode({k: v[begin:row] for k, v in arrays.items()}):
            accepted += 1
        else:
            row, rejected = begin, rejected + 1
    env.close()
    return arrays, {**collector.stats, "episodes_rejected": rejected}


def _shard_job(job) -> int:
    """Worker entry point: collects one shard and writes it atomically; returns its index."""
    env_id, recipe, collector_factory, seed, shard, episodes, path = job
    arrays, stats = _collect_shard(env_id, recipe, collector_factory, seed, shard, episodes)
    with atomic_writer(path) as f:
        np.savez(f, **arrays, **{f"stat_{k}": np.int64(v) for k, v in stats.items()})
    return shard


def generate(name: str, dataset_dir: str, *, seed: int = 0, num_episodes: int | None = None,
             collector_factory: Callable[[Recipe], Any] | None = None, expert: str | None = None,
             workers: int = 1, shard_episodes: int | None = None, progress: bool = True) -> tuple[str, str, dict]:
    """Writes ``<name>.npz`` and ``<name>-val.npz`` into ``dataset_dir``; returns (paths..., stats).

    Episodes are collected in shards of a fixed size, each with its own random stream derived from
    ``seed``, by ``workers`` processes; finished shards are kept in ``.<name>.shards/`` until the
    dataset is written, so an interrupted run resumes from them. ``collector_factory(recipe)`` makes
    the data-collection policy in each worker (it must pickle when ``workers > 1``; default: the name's
    own, ``collector_for``); ``expert`` is the ant actor for antmaze names (default: packaged). ``shard_episodes``
    overrides the recipe's shard size (it changes the random streams, hence the data).
    """
    env_id, recipe = recipe_for(name)
    if collector_factory is None:
        collector_factory, collector_id = collector_for(name, expert)
    else:
        collector_id = getattr(collector_factory, "__name__", repr(collector_factory))
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
                           "shard_episodes": per_shard, "collector": collector_id})
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
    stats = {"episodes": recipe.num_episodes, "val_episodes": total - recipe.num_episodes,
             "episode_steps": recipe.episode_steps, **stats, **_summarize(env_id, arrays),
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


def _summarize(env_id: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Coverage statistics of the whole (train + validation) data."""
    from mqe.data import manip_collector, maze_collector

    module = maze_collector if "maze" in env_id else manip_collector
    return module.summarize(env_id, arrays)
