"""The evaluator on a manipulation environment, with a positive and a negative control: a scripted
agent that solves the cube tasks must score on every task, and an agent that never moves must not."""

import numpy as np
import pytest

pytest.importorskip("ogbench")

from mqe.envs.task_oracle import CubeTaskPolicy, CubeTaskSolver  # noqa: E402
from mqe.evaluation import evaluate  # noqa: E402


def test_scripted_cube_agent_solves_every_task_through_the_evaluator():
    policy = CubeTaskPolicy("cube-single-play-v0", seed=0)
    result = evaluate(policy, policy.make_env, episodes_per_task=1, seed=3)
    assert len(policy.solvers) == 5  # one environment copy per episode, batched
    assert result == {"task1": 1.0, "task2": 1.0, "task3": 1.0, "task4": 1.0, "task5": 1.0, "overall": 1.0}


def test_an_agent_that_never_moves_scores_zero():
    from functools import partial

    from mqe.envs.ogbench_envs import make_env

    result = evaluate(lambda obs, goals: np.zeros((len(obs), 5), np.float32),
                      partial(make_env, "cube-single-play-v0"), episodes_per_task=1, seed=3)
    assert result["overall"] == 0.0


def test_solver_refuses_a_non_cube_environment():
    from mqe.envs.ogbench_envs import make_env

    with pytest.raises(ValueError, match="cube environment"):
        CubeTaskSolver(make_env("puzzle-3x3-play-v0"))
