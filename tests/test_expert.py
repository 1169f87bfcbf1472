"""The SAC locomotion expert: the numpy actor equals the Flax one, and training resumes bit for bit."""

import dataclasses

import jax
import numpy as np
import pytest

from mqe.experts import ant
from mqe.experts.online import train_expert
from mqe.experts.sac import NumpyActor, SACAgent, SACConfig

TINY = SACConfig(batch_size=32, actor_hidden_dims=(32, 32), value_hidden_dims=(32, 32), total_steps=1200,
                 random_steps=200, updates_per_chunk=50)


@pytest.mark.parametrize("layer_norm", [False, True])
def test_numpy_actor_matches_flax(layer_norm):
    config = dataclasses.replace(TINY, layer_norm=layer_norm)
    agent = SACAgent.create(jax.random.PRNGKey(3), np.zeros((1, 27)), np.zeros((1, 2)), np.zeros((1, 8)), config)
    # Perturb the parameters away from their tiny initial output scale so the comparison means something.
    params = jax.tree.map(lambda x: x + 0.3 * np.sin(np.arange(x.size).reshape(x.shape)), agent.params["actor"])
    rng = np.random.default_rng(0)
    states, commands = rng.normal(size=(64, 27)).astype(np.float32), rng.normal(size=(64, 2)).astype(np.float32)
    mean, log_std = agent.networks["actor"].apply({"params": params}, states, commands)
    actor = NumpyActor(jax.device_get(params), layer_norm)
    np_mean, np_log_std = actor.mean_log_std(states, commands)
    np.testing.assert_allclose(np_mean, mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np_log_std, log_std, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(actor.act(states, commands), np.tanh(mean), atol=1e-4)
    # The .npz round trip keeps every array.
    again = NumpyActor.from_arrays(actor.to_arrays())
    np.testing.assert_array_equal(again.act(states, commands), actor.act(states, commands))


def test_killed_expert_training_resumes_bit_for_bit(tmp_path):
    task = ant.task(max_episode_steps=100)
    whole = train_expert(task, str(tmp_path / "whole"), TINY, seed=1, eval_every=600, eval_episodes=1,
                         checkpoint_every=10_000, progress=False)
    assert whole["finished"] and whole["environment_steps"] == 1200
    part = train_expert(task, str(tmp_path / "split"), TINY, seed=1, until=550, eval_every=600, eval_episodes=1,
                        checkpoint_every=10_000, progress=False)
    assert not part["finished"] and 550 <= part["step"] < 1200
    resumed = train_expert(task, str(tmp_path / "split"), TINY, seed=1, eval_every=600, eval_episodes=1,
                           checkpoint_every=10_000, progress=False)
    assert resumed["finished"]
    a, b = np.load(tmp_path / "whole" / "actor.npz"), np.load(tmp_path / "split" / "actor.npz")
    assert sorted(a.files) == sorted(b.files)
    for name in a.files:
        np.testing.assert_array_equal(a[name], b[name])
    assert whole["final_eval"] == resumed["final_eval"]
    # A different seed gives a different actor (the comparison above can fail).
    train_expert(task, str(tmp_path / "other"), TINY, seed=2, eval_every=600, eval_episodes=1,
                         checkpoint_every=10_000, progress=False)
    c = np.load(tmp_path / "other" / "actor.npz")
    assert not np.array_equal(a["dense_0/kernel"], c["dense_0/kernel"])


def test_resume_with_other_settings_is_refused(tmp_path):
    task = ant.task(max_episode_steps=100)
    train_expert(task, str(tmp_path / "run"), TINY, seed=1, until=300, eval_every=600, progress=False)
    with pytest.raises(ValueError, match="other settings"):
        train_expert(task, str(tmp_path / "run"), dataclasses.replace(TINY, learning_rate=3e-4), seed=1,
                     progress=False)


def test_expert_cli_rejects_bad_input(capsys, tmp_path):
    from mqe.cli import main

    assert main(["expert", "train", "ant", "--steps", "1234", "--out", str(tmp_path / "x")]) == 2
    assert "--steps" in capsys.readouterr().err
    assert main(["expert", "eval", "ant", "--actor", str(tmp_path / "missing.npz")]) == 2
    assert "no ant expert at" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    np.savez(bad, something=np.zeros(3))
    assert main(["expert", "eval", "ant", "--actor", str(bad)]) == 2
    assert "not an ant actor file" in capsys.readouterr().err


def test_packaged_ant_expert_walks_where_it_is_told():
    from mqe.experts.online import evaluate_actor

    record = ant.packaged_record()
    assert record["environment_steps"] == 400_000 and record["task"] == "ant"
    actor = ant.load_actor()  # the packaged actor.npz
    # Two 300-step episodes, commands redrawn every 100 steps: the return is the distance walked along
    # the commanded directions. A still or random ant scores about 0; the record says what 1000 steps give.
    result = evaluate_actor(ant.task(max_episode_steps=300), actor, episodes=2, seed=0)
    per_step = record["final_eval"]["eval/return_mean"] / 1000
    assert result["eval/length_mean"] == 300, "the ant must not fall over"
    assert result["eval/return_mean"] > 0.5 * per_step * 300
