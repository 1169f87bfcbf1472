"""The evaluation protocol on a real OGBench maze: an oracle succeeds, a still policy fails at the time
limit, and batched, one-at-a-time and multi-process evaluation agree episode for episode."""

import functools

import numpy as np
import pytest

pytest.importorskip("ogbench")

from mqe.data.maze_collector import SubgoalPolicy  # noqa: E402
from mqe.envs.ogbench_envs import make_env  # noqa: E402
from mqe.evaluation import evaluate  # noqa: E402

NAME = "pointmaze-medium-navigate-v0"


def _oracle_policy():
    oracle = SubgoalPolicy(NAME)

    def policy(obs, goals):
        calls.append(len(obs))
        return oracle(obs, goals)

    calls = []
    return policy, calls


def test_oracle_succeeds_everywhere_and_batching_changes_nothing():
    policy, calls = _oracle_policy()
    batched = evaluate(policy, lambda: make_env(NAME), episodes_per_task=2)
    assert batched == {"task1": 1.0, "task2": 1.0, "task3": 1.0, "task4": 1.0, "task5": 1.0, "overall": 1.0}
    assert max(calls) == 10, "all 10 episodes share one policy call per step"
    calls.clear()
    assert evaluate(policy, lambda: make_env(NAME), episodes_per_task=2, batch=False) == batched
    assert max(calls) == 1
    calls.clear()
    in_workers = evaluate(policy, functools.partial(make_env, NAME), episodes_per_task=2, workers=2)
    assert in_workers == batched
    assert set(calls) == {10}, "one fixed batch width: a jitted policy compiles once"


def test_still_policy_fails_at_the_time_limit():
    steps = []

    def still(obs, goals):
        steps.append(1)
        return np.zeros((len(obs), 2), np.float32)

    result = evaluate(still, lambda: make_env(NAME), episodes_per_task=1)
    assert result["overall"] == 0.0
    assert len(steps) == make_env(NAME).spec.max_episode_steps  # every episode ran to the limit


def _short_episodes(name, steps):
    """The environment with a shorter time limit (software rendering makes every frame costly here)."""
    import gymnasium

    return gymnasium.wrappers.TimeLimit(make_env(name).unwrapped, max_episode_steps=steps)


def test_video_dir_gets_one_mp4_per_task_of_the_first_policy(tmp_path):
    import imageio.v2 as imageio

    from mqe.evaluation import evaluate_policies

    def two_policies(obs, goals):  # policy 0 pushes right, policy 1 stays still
        half = len(obs) // 2
        return np.concatenate([np.tile([1.0, 0.0], (half, 1)), np.zeros((half, 2))]).astype(np.float32)

    out = evaluate_policies(two_policies, functools.partial(_short_episodes, "pointmaze-medium-navigate-v0", 15),
                            2, episodes_per_task=1, num_tasks=2, video_dir=str(tmp_path))
    assert out.shape == (2, 2, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["task1.mp4", "task2.mp4"]
    frames = imageio.mimread(str(tmp_path / "task1.mp4"), memtest=False)
    assert len(frames) == 16 and frames[0].shape == (200, 200, 3)  # the reset frame and 15 steps
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).max() > 50  # policy 0 moved
