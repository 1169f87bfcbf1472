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
