"""The OGBench evaluation protocol (spec section 5), with batched policy inference.

Each of the environment's 5 tasks is run for ``episodes_per_task`` episodes: reset with the task id (the
goal observation comes from the env), deterministic actions, success = the env's success flag at the
end of the episode. All episodes of all tasks run side by side in separate environment copies, and the
policy is called once per step for every running episode (one batched forward pass), not once per
episode step.
"""

from __future__ import annotations

import json
import os
import time
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

import mqe.envs  # noqa: F401  (MUJOCO_GL before MuJoCo loads)
from mqe.io import atomic_write_text

PolicyFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def evaluate(policy: PolicyFn, env_fn: Callable[[], object], *, episodes_per_task: int = 50,
             num_tasks: int = 5, seed: int = 0, batch: bool = True, progress: bool = False,
             video_dir: str | None = None) -> dict[str, float]:
    """Per-task and overall success rates (fractions in [0, 1]).

    ``policy(observations (B, ...), goals (B, ...)) -> actions (B, A)``; ``env_fn()`` makes one copy of
    the environment. ``batch=False`` runs the same episodes one at a time (the reference the batched
    evaluator is benchmarked against).
    """
    jobs = [(task, k) for task in range(1, num_tasks + 1) for k in range(episodes_per_task)]
    width = len(jobs) if batch else 1
    wrapped = [env_fn() for _ in range(width)]
    limit = wrapped[0].spec.max_episode_steps if wrapped[0].spec is not None else None
    # Step the bare environments and count the time limit ourselves: gymnasium's wrapper stack costs
    # ~20% of a point-maze step, and nothing else in it matters here.
    envs = [env.unwrapped for env in wrapped]
    successes = np.zeros(len(jobs))
    bar = tqdm(total=len(jobs), disable=not progress, unit="episode", desc="evaluate")
    frames: dict[int, list[np.ndarray]] = {}
    for start in range(0, len(jobs), width):
        group = jobs[start:start + width]
        obs, goals = [], []
        for env, (task, k) in zip(envs, group):
            ob, info = env.reset(seed=seed + 1000 * task + k, options=dict(task_id=task, render_goal=False))
            obs.append(ob)
            goals.append(info["goal"])
        obs, goals = np.stack(obs), np.stack(goals)
        running = np.ones(len(group), bool)
        final_success = np.zeros(len(group))
        t = 0
        while running.any():
            t += 1
            idx = np.flatnonzero(running)
            actions = np.asarray(policy(obs[idx], goals[idx]))
            for row, i in enumerate(idx):
                ob, _, terminated, truncated, info = envs[i].step(actions[row])
                truncated = truncated or (limit is not None and t >= limit)
                obs[i] = ob
                if video_dir is not None and group[i][1] == 0:
                    frames.setdefault(group[i][0], []).append(envs[i].render())
                if terminated or truncated:
                    running[i] = False
                    final_success[i] = float(info.get("success", 0.0))
                    bar.update(1)
        successes[start:start + len(group)] = final_success
    bar.close()
    for env in wrapped:
        env.close()
    if video_dir is not None:
        _write_videos(frames, video_dir)
    per_task = successes.reshape(num_tasks, episodes_per_task).mean(axis=1)
    result = {f"task{t + 1}": float(s) for t, s in enumerate(per_task)}
    result["overall"] = float(per_task.mean())
    return result


def _write_videos(frames: dict[int, list[np.ndarray]], video_dir: str) -> None:
    try:
        import imageio.v2 as imageio
    except ImportError:  # imageio comes with ogbench; without it, skip the optional videos
        return
    os.makedirs(video_dir, exist_ok=True)
    for task, task_frames in frames.items():
        try:
            imageio.mimsave(os.path.join(video_dir, f"task{task}.mp4"), task_frames, fps=30)
        except Exception:  # mp4 needs imageio-ffmpeg; fall back to a GIF
            imageio.mimsave(os.path.join(video_dir, f"task{task}.gif"), task_frames, duration=1 / 30)


def write_results(path: str, step: int, results: dict[str, float], **extra) -> None:
    atomic_write_text(path, json.dumps({"step": step, **results, **extra, "time": time.time()}, indent=2))
