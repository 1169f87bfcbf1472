"""The OGBench evaluation protocol (spec section 5), with batched policy inference.

Each of the environment's 5 tasks is run for ``episodes_per_task`` episodes: reset with the task id (the
goal observation comes from the env), deterministic actions, success = the env's success flag at the
end of the episode. All episodes of all tasks run side by side in separate environment copies, and the
policy is called once per step for all of them (one batched forward pass of a fixed width, so a jitted
policy compiles once), not once per episode step. With ``workers > 0`` the copies are stepped in that
many processes, because on CPU the physics, not the policy, is the cost of a batched evaluation.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import time
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

import mqe.envs  # noqa: F401  (MUJOCO_GL before MuJoCo loads)
from mqe.io import atomic_write_text

PolicyFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
Job = tuple[int, int]  # (task id, reset seed)


class _OwnGlobalRandom:
    """Runs a call with numpy's global random state replaced by one copy's own, then puts it back.

    OGBench draws from numpy's global generator in places: the maze's start and goal noise at reset,
    the teleporter's exit at a step. Shared by all copies of a process, that stream makes an episode's
    outcome depend on which other episodes ran in the same process, and in what order (reported: one
    checkpoint gave 0.36-0.50 on pointmaze-medium-navigate over five evaluations with the same seeds).
    Each copy gets its own stream, seeded by its episode's reset seed."""

    def __init__(self):
        self.state = None

    def seed(self, seed: int) -> None:
        self.state = np.random.RandomState(seed).get_state()

    def __call__(self, fn, *args, **kwargs):
        saved = np.random.get_state()
        np.random.set_state(self.state)
        try:
            return fn(*args, **kwargs)
        finally:
            self.state = np.random.get_state()
            np.random.set_state(saved)


def _pin_action_space(env) -> None:
    """Makes ``env.action_space`` one object, so that seeding it sticks.

    OGBench's manipulation environments build a new ``Box`` on every access of ``action_space`` (a
    property), and each new Box seeds itself from the OS: the random actions their resets take to let
    the scene settle (which shape the goal observation) could not be reproduced. The copy's class is
    swapped for a subclass whose ``action_space`` returns one fixed Box; nothing else changes."""
    cls = type(env)
    if not isinstance(inspect.getattr_static(cls, "action_space", None), property):
        return
    space = env.action_space
    env.__class__ = type(cls.__name__, (cls,), {"action_space": property(lambda self: space),
                                                "__module__": cls.__module__})


def _steps_draw_global_random(env) -> bool:
    """Whether OGBench's step reads numpy's global generator (only the teleport maze does); swapping
    the global state costs ~0.3 ms, so it is done per step only where a step needs it."""
    return getattr(env, "_teleport_info", None) is not None


class EnvGroup:
    """Environment copies stepped in this process. Steps the bare environments and counts the time
    limit itself: gymnasium's wrapper stack costs ~20% of a point-maze step, and nothing in it matters
    here.

    An episode's outcome depends on its (task, reset seed) and the policy only: the reset seed seeds the
    environment's generator, its action space (OGBench's resets take a few random actions; see
    ``_pin_action_space``) and the copy's own numpy global stream (see ``_OwnGlobalRandom``), so the same
    job gives the same episode whichever copy, process or batch runs it."""

    def __init__(self, env_fn: Callable[[], object], size: int):
        self._wrapped = [env_fn() for _ in range(size)]
        self.envs = [env.unwrapped for env in self._wrapped]
        for env in self.envs:
            _pin_action_space(env)
        self._random = [_OwnGlobalRandom() for _ in self.envs]
        self._step_random = [_steps_draw_global_random(env) for env in self.envs]
        spec = self._wrapped[0].spec
        self.limit = spec.max_episode_steps if spec is not None else None

    def reset(self, jobs: Sequence[Job]) -> tuple[np.ndarray, np.ndarray]:
        obs, goals = [], []
        for env, own, (task, seed) in zip(self.envs, self._random, jobs):
            own.seed(seed)
            env.action_space.seed(seed)
            ob, info = own(env.reset, seed=seed, options=dict(task_id=task, render_goal=False))
            obs.append(ob)
            goals.append(info["goal"])
        return np.stack(obs), np.stack(goals)

    def step(self, actions: np.ndarray, active: np.ndarray):
        """Steps the copies where ``active``; returns (observations, terminated, success)."""
        obs, terminated, success = [], np.zeros(len(active), bool), np.zeros(len(active))
        for i, env in enumerate(self.envs[:len(active)]):
            if active[i]:
                step = functools.partial(self._random[i], env.step) if self._step_random[i] else env.step
                ob, _, term, _, info = step(actions[i])
                terminated[i], success[i] = term, float(info.get("success", 0.0))
                obs.append(ob)
            else:
                obs.append(None)
        return obs, terminated, success

    def close(self) -> None:
        for env in self._wrapped:
            env.close()


_REMOTE_GROUP: EnvGroup | None = None  # the copies a worker process owns


def _remote_init(env_fn, size: int):
    global _REMOTE_GROUP
    _REMOTE_GROUP = EnvGroup(env_fn, size)
    return _REMOTE_GROUP.limit


def _remote_reset(jobs):
    return _REMOTE_GROUP.reset(jobs)


def _remote_step(actions, active):
    return _REMOTE_GROUP.step(actions, active)


def _remote_close():
    _REMOTE_GROUP.close()


class WorkerGroups:
    """The copies split over ``workers`` processes (see ``mqe.parallel``), stepped concurrently."""

    def __init__(self, env_fn: Callable[[], object], size: int, workers: int):
        from mqe.parallel import Worker

        self.slices = [s for s in np.array_split(np.arange(size), workers) if len(s)]
        self.workers = [Worker() for _ in self.slices]
        for worker, s in zip(self.workers, self.slices):
            worker.submit(_remote_init, env_fn, len(s))
        self.limit = [worker.result() for worker in self.workers][0]

    def reset(self, jobs: Sequence[Job]):
        for worker, s in zip(self.workers, self.slices):
            worker.submit(_remote_reset, [jobs[i] for i in s])
        parts = [worker.result() for worker in self.workers]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def step(self, actions: np.ndarray, active: np.ndarray):
        for worker, s in zip(self.workers, self.slices):
            worker.submit(_remote_step, actions[s], active[s])
        parts = [worker.result() for worker in self.workers]
        return ([ob for p in parts for ob in p[0]], np.concatenate([p[1] for p in parts]),
                np.concatenate([p[2] for p in parts]))

    def close(self) -> None:
        from mqe.parallel import WorkerError

        for worker in self.workers:
            try:
                worker.call(_remote_close)
            except (WorkerError, OSError):  # a dead worker must not hide the error that killed it
                pass
            finally:
                worker.close()


def evaluate(policy: PolicyFn, env_fn: Callable[[], object], *, episodes_per_task: int = 50,
             num_tasks: int = 5, seed: int = 0, batch: bool = True, workers: int = 0,
             progress: bool = False, video_dir: str | None = None) -> dict[str, float]:
    """Per-task and overall success rates (fractions in [0, 1]).

    ``policy(observations (B, ...), goals (B, ...)) -> actions (B, A)``; ``env_fn()`` makes one copy of
    the environment (it must pickle when ``workers > 0``, e.g. ``functools.partial(make_env, name)``).
    ``batch=False`` runs the same episodes one at a time (the reference the batched evaluator is
    benchmarked against). ``video_dir`` records the first episode of each task, replayed afterwards.
    The same policy and seed give the same episodes for any ``workers`` and ``batch``
    (``evaluate_episodes`` returns them one by one).
    """
    return summarize(evaluate_episodes(policy, env_fn, episodes_per_task=episodes_per_task, num_tasks=num_tasks,
                                       seed=seed, batch=batch, workers=workers, progress=progress,
                                       video_dir=video_dir))


def summarize(successes: np.ndarray) -> dict[str, float]:
    """``{"task1": rate, ..., "overall": mean of the task rates}`` from (num_tasks, episodes) outcomes."""
    per_task = np.asarray(successes, dtype=np.float64).mean(axis=1)
    result = {f"task{t + 1}": float(s) for t, s in enumerate(per_task)}
    result["overall"] = float(per_task.mean())
    return result


def evaluate_episodes(policy: PolicyFn, env_fn: Callable[[], object], *, episodes_per_task: int = 50,
                      num_tasks: int = 5, seed: int = 0, batch: bool = True, workers: int = 0,
                      progress: bool = False, video_dir: str | None = None) -> np.ndarray:
    """Every episode's success (0 or 1), shape (num_tasks, episodes_per_task); episode k of task t
    resets with seed ``seed + 1000 t + k``. Arguments as ``evaluate``."""
    return evaluate_policies(policy, env_fn, 1, episodes_per_task=episodes_per_task, num_tasks=num_tasks,
                             seed=seed, batch=batch, workers=workers, progress=progress, video_dir=video_dir)[0]


def evaluate_policies(policy: PolicyFn, env_fn: Callable[[], object], num_policies: int, *,
                      episodes_per_task: int = 50, num_tasks: int = 5, seed: int = 0, batch: bool = True,
                      workers: int = 0, progress: bool = False, video_dir: str | None = None) -> np.ndarray:
    """Several policies (e.g. the seeds of one training program) on the same episodes, side by side:
    successes of shape (num_policies, num_tasks, episodes_per_task).

    Each policy runs the episodes ``evaluate_episodes`` would give it alone. The copies of all policies
    step together, and ``policy`` is called once per step for every copy: its rows come in
    ``num_policies`` equal blocks, block i being policy i's episodes, and it answers each block with
    policy i (e.g. a ``vmap`` over stacked parameters). ``video_dir`` records policy 0."""
    jobs = [(task, seed + 1000 * task + k) for task in range(1, num_tasks + 1) for k in range(episodes_per_task)]
    copies = jobs * num_policies
    width = len(copies) if batch else 1
    if not batch and num_policies > 1:
        raise ValueError("evaluate_policies: batch=False runs one policy at a time; use num_policies=1")
    group = WorkerGroups(env_fn, width, workers) if workers > 0 and width > 1 else EnvGroup(env_fn, width)
    successes = np.zeros(len(copies))
    bar = tqdm(total=len(copies), disable=not progress, unit="episode", desc="evaluate")
    try:
        for start in range(0, len(copies), width):
            chunk = copies[start:start + width]
            obs, goals = group.reset(chunk)
            successes[start:start + len(chunk)] = _run_episodes(policy, group, obs, goals, bar)
    finally:
        bar.close()
        group.close()
    if video_dir is not None:
        first = lambda o, g: np.asarray(policy(np.repeat(o, num_policies, 0), np.repeat(g, num_policies, 0)))[:1]
        _record_videos(first if num_policies > 1 else policy, env_fn,
                       [(task, seed + 1000 * task) for task in range(1, num_tasks + 1)], video_dir)
    return successes.reshape(num_policies, num_tasks, episodes_per_task)


def _run_episodes(policy: PolicyFn, group, obs: np.ndarray, goals: np.ndarray, bar) -> np.ndarray:
    running = np.ones(len(obs), bool)
    success = np.zeros(len(obs))
    t = 0
    while running.any():
        t += 1
        # Every row, finished or not: one batch shape for the whole evaluation (a jitted policy would
        # otherwise recompile each time an episode ends).
        actions = np.asarray(policy(obs, goals))
        new_obs, terminated, step_success = group.step(actions, running)
        for i in np.flatnonzero(running):
            obs[i] = new_obs[i]
        done = running & (terminated | (group.limit is not None and t >= group.limit))
        success[done] = step_success[done]
        running &= ~done
        bar.update(int(done.sum()))
    return success


def _record_videos(policy: PolicyFn, env_fn, jobs: Sequence[Job], video_dir: str) -> None:
    try:
        import imageio.v2 as imageio
    except ImportError:  # imageio comes with ogbench; without it, skip the optional videos
        return
    os.makedirs(video_dir, exist_ok=True)
    group = EnvGroup(env_fn, 1)
    env = group.envs[0]
    for task, reset_seed in jobs:
        obs, goals = group.reset([(task, reset_seed)])
        frames, t, done = [env.render()], 0, False
        while not done:
            t += 1
            new_obs, terminated, _ = group.step(np.asarray(policy(obs, goals)), np.ones(1, bool))
            obs[0] = new_obs[0]
            frames.append(env.render())
            done = terminated[0] or (group.limit is not None and t >= group.limit)
        path = os.path.join(video_dir, f"task{task}.mp4")
        try:
            imageio.mimsave(path, frames, fps=30, macro_block_size=8)  # 200 x 200 stays 200 x 200
        except Exception:  # mp4 needs imageio-ffmpeg; fall back to a GIF
            imageio.mimsave(path[:-4] + ".gif", frames, duration=1 / 30)
    group.close()


def write_results(path: str, step: int, results: dict[str, float], **extra) -> None:
    atomic_write_text(path, json.dumps({"step": step, **results, **extra, "time": time.time()}, indent=2))
