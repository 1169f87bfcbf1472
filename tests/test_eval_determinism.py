"""One checkpoint, one seed: the same episodes, observation for observation, however the evaluation is run
(again, in this process, in one worker process or in several)."""

import functools

import numpy as np
import pytest

pytest.importorskip("ogbench")

import mqe  # noqa: E402
from mqe.cli import main  # noqa: E402
from mqe.data.generate import generate  # noqa: E402
from mqe.envs.ogbench_envs import make_env  # noqa: E402
from mqe.evaluation import evaluate_episodes  # noqa: E402

NAME = "pointmaze-medium-navigate-v0"
TINY = ["--set", "batch_size=32", "--set", "latent_dim=32", "--set", "encoder_hidden_dims=32,32",
        "--set", "actor_hidden_dims=32,32", "--set", "train.updates_per_call=50"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("determinism")
    generate(NAME, str(root / "data"), num_episodes=3, progress=False)
    run = root / "run"
    assert main(["train", "--dataset", NAME, "--dataset-dir", str(root / "data"), "--no-download",
                 "--steps", "100", "--eval-episodes", "0", "--run-dir", str(run), "--no-progress", *TINY]) == 0
    return mqe.load(run)


def _recorded(model, **kwargs):
    """Every episode's success and the exact observations the policy was shown, step by step."""
    seen = []

    def policy(obs, goals):
        seen.append(np.array(obs, copy=True))
        return model.act(obs, goals)

    successes = evaluate_episodes(policy, functools.partial(make_env, NAME), episodes_per_task=2, **kwargs)
    return successes, seen


def test_same_checkpoint_same_seed_same_episodes_with_one_worker_or_several(checkpoint):
    successes, seen = _recorded(checkpoint)
    for kwargs in ({}, {"workers": 1}, {"workers": 2}):
        again, seen_again = _recorded(checkpoint, **kwargs)
        np.testing.assert_array_equal(again, successes)
        assert len(seen_again) == len(seen)
        for step, (a, b) in enumerate(zip(seen, seen_again)):
            np.testing.assert_array_equal(a, b, err_msg=f"observations differ at step {step} with {kwargs}")
    # Another seed is another set of starts (the noise really is seeded, not switched off).
    _, other = _recorded(checkpoint, seed=1)
    assert not np.array_equal(other[0], seen[0])


def test_mqe_eval_twice_writes_the_same_episodes(checkpoint, tmp_path):
    import json
    import os

    run = os.path.dirname(os.path.dirname(checkpoint.path))
    results = []
    for workers, name in ((0, "a.json"), (2, "b.json")):
        out = str(tmp_path / name)
        assert main(["eval", run, "--episodes", "2", "--eval-workers", str(workers), "--out", out,
                     "--no-progress"]) == 0
        results.append(json.load(open(out)))
    a, b = results
    assert a["episodes"] == b["episodes"] and len(a["episodes"]) == 5 and len(a["episodes"][0]) == 2
    assert a["env"] == NAME and a["seed"] == 0
    assert {k: a[k] for k in a if k.startswith("task")} == {k: b[k] for k in b if k.startswith("task")}


@pytest.mark.parametrize("name", ["antmaze-medium-navigate-v0", "scene-play-v0"])
def test_ant_and_manipulation_episodes_repeat_exactly(name):
    """Their resets take random actions (the ant settles; scene's objects are placed with random arm moves)
    and the ant's start is noised through numpy's global generator: all seeded per episode."""
    env = make_env(name)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    weights = np.random.default_rng(0).normal(size=(2 * obs_dim, act_dim)) / np.sqrt(2 * obs_dim)

    def run(workers):
        seen = []

        def policy(obs, goals):
            seen.append(np.array(obs, copy=True))
            return np.tanh(np.concatenate([obs, goals], axis=1) @ weights)

        evaluate_episodes(policy, functools.partial(make_env, name), episodes_per_task=1, num_tasks=2,
                          workers=workers)
        return np.stack(seen)

    first = run(0)
    np.testing.assert_array_equal(first, run(2))
    assert not np.array_equal(first[0], first[-1]), "the policy moved something"
