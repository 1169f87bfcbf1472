"""Agents answer for themselves: one name for the discount, and one method for the distance in steps that
``mqe.load`` and the planner both use (checked for MQE, TMD and QRL); runs and checkpoints written when MQE
called its discount ``gamma`` still load and resume."""

import json
import math
import os

import flax.serialization
import numpy as np
import pytest

import mqe
from mqe import checkpoint as ckpt
from mqe.agents import AGENTS
from mqe.config import make_config
from mqe.data.dataset import Dataset
from mqe.planning import steps_functions
from mqe.train import train

STEPS = ["train.steps=20", "train.updates_per_call=10", "train.log_interval=10", "train.checkpoint_interval=10"]


def _dataset(n=300):
    rng = np.random.default_rng(0)
    obs = np.cumsum(rng.normal(size=(n, 3)), 0).astype(np.float32)
    act = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    terminals = np.zeros(n, bool)
    terminals[99::100] = True
    return Dataset.from_arrays(obs, act, terminals)


def test_every_agent_calls_its_discount_discount():
    for name, spec in AGENTS.items():
        fields = {f for f in spec.config_class.__dataclass_fields__}
        assert "gamma" not in fields, f"{name}: the discount is called `discount`"
        if name not in ("gcbc", "qrl"):  # behaviour cloning and QRL's one-step constraint have no discount
            assert "discount" in fields, name


@pytest.mark.parametrize("name, unit", [("mqe", 1.0 / abs(math.log(0.99))), ("tmd", 1.0 / abs(math.log(0.99))),
                                        ("qrl", 1.0)])
def test_load_and_the_planner_count_steps_the_same_way(name, unit, tmp_path):
    discount = [] if name == "qrl" else ["discount=0.99"]
    config = make_config(name, "tiny", STEPS + discount)
    ds = _dataset()
    result = train(config, ds, str(tmp_path), progress=False)
    model = mqe.load(tmp_path)
    assert model.step_distance == pytest.approx(1.0 / unit)
    obs, goals = ds.observations[:9], ds.observations[50:59]
    steps = model.steps(obs, goals)
    assert steps.shape == (9,) and np.all(np.isfinite(steps))
    np.testing.assert_allclose(steps, model.distance(obs, goals) / model.step_distance, rtol=1e-5, atol=1e-5)
    fns = steps_functions(result.agent)
    planned = np.asarray(fns.steps(fns.embed_state(obs), fns.embed_goal(goals)))
    np.testing.assert_allclose(steps, planned, rtol=1e-5, atol=1e-5)


def test_a_value_agent_has_steps_but_no_distance(tmp_path):
    config = make_config("gciql", "tiny", STEPS)
    ds = _dataset()
    train(config, ds, str(tmp_path), progress=False)
    model = mqe.load(tmp_path)
    assert np.all(model.steps(ds.observations[:4], ds.observations[10:14]) >= 0)
    with pytest.raises(TypeError, match="no learned distance"):
        model.step_distance


def test_runs_written_with_gamma_still_load_and_resume(tmp_path):
    """A run directory and checkpoint whose config says `gamma` (MQE before the rename) loads with the same
    discount and resumes to the same parameters as a run that never had the old name."""
    ds = _dataset()
    config = make_config("mqe", "tiny", STEPS + ["discount=0.97"])
    old, new = str(tmp_path / "old"), str(tmp_path / "new")
    short = make_config("mqe", "tiny", STEPS[1:] + ["train.steps=10", "discount=0.97"])
    train(short, ds, old, progress=False)
    # Rewrite the run as the old code wrote it: `gamma` in config.json and inside the checkpoint.
    for path in [os.path.join(old, "config.json")]:
        data = json.load(open(path))
        data["agent"]["gamma"] = data["agent"].pop("discount")
        json.dump(data, open(path, "w"))
    latest = ckpt.latest_checkpoint(os.path.join(old, "checkpoints"))
    payload = ckpt.read_checkpoint(latest)  # written again in the old layout (format version 1, no digest)
    payload["config"]["agent"]["gamma"] = payload["config"]["agent"].pop("discount")
    old_layout = {**payload, "version": 1, "config": json.dumps(payload["config"]),
                  "observation_shape": list(payload["observation_shape"]), "extra": json.dumps(payload["extra"])}
    open(latest, "wb").write(flax.serialization.msgpack_serialize(old_layout))
    assert "gamma" in ckpt.read_checkpoint(latest)["config"]["agent"]

    loaded = mqe.load(old)
    assert loaded.config.agent.discount == 0.97 and loaded.step_distance == pytest.approx(abs(math.log(0.97)))
    resumed = train(config, ds, old, progress=False)  # the old run continues under the new name
    fresh = train(config, ds, new, progress=False)
    for a, b in zip(flax.traverse_util.flatten_dict(resumed.agent.params).values(),
                    flax.traverse_util.flatten_dict(fresh.agent.params).values()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "run-0.2.0-mqe")


def test_a_run_written_by_mqe_0_2_0_loads_acts_the_same_and_resumes(tmp_path):
    """tests/fixtures/run-0.2.0-mqe: a tiny MQE run written by mqe 0.2.0 (commit 9433eb7: `gamma` in its
    config, no target_params in its checkpoint), with the actions it gave for five fixed pairs."""
    import shutil

    model = mqe.load(FIXTURE)
    assert model.step == 20 and model.config.agent.discount == 0.97
    walk = Dataset.load_npz(os.path.join(FIXTURE, "walk.npz"))
    obs = walk.observations
    # (the recorded actions came from the eager policy, these from the compiled one: float tolerance)
    np.testing.assert_allclose(model.act(obs[:5], obs[50:55]), np.load(os.path.join(FIXTURE, "actions.npy")),
                               rtol=1e-5, atol=1e-6)
    run = str(tmp_path / "run")
    shutil.copytree(FIXTURE, run)
    config = make_config("mqe", "tiny", ["discount=0.97", "train.steps=30", "train.updates_per_call=10",
                                                     "train.log_interval=10", "train.checkpoint_interval=10"])
    result = train(config, walk, run, progress=False)
    assert result.start_step == 20 and int(result.agent.step) == 30
