"""One contract, run against every registered agent: create / update / total_loss / sample_actions,
checkpoint round trip through ``mqe.load``, and determinism by seed."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mqe
from mqe import checkpoint as ckpt
from mqe.agents import AGENTS
from mqe.config import load_presets, make_config
from mqe.data.dataset import Dataset
from mqe.sampling import DeviceData, sample_batch
from mqe.train import initial_state, train



def _dataset(obs_dim=3, action_dim=2, n=600):
    rng = np.random.default_rng(0)
    obs = np.cumsum(rng.normal(size=(n, obs_dim)), 0).astype(np.float32)
    act = rng.uniform(-1, 1, (n, action_dim)).astype(np.float32)
    terminals = np.zeros(n, bool)
    terminals[99::100] = True
    return Dataset.from_arrays(obs, act, terminals)


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_agent_contract(name, tmp_path):
    assert name in load_presets()["presets"]["tiny"]["agents"], f"add agent {name!r} to the tiny preset"
    config = make_config(name, "tiny", ["train.steps=40", "train.updates_per_call=20",
                                                   "train.log_interval=20", "train.checkpoint_interval=20"])
    ds = _dataset()
    spec = AGENTS[name]
    agent = spec.agent_class.create(jax.random.PRNGKey(0), ds.observations[:1], ds.actions[:1], config.agent)
    batch = config.agent.sampler().sample(jax.random.PRNGKey(1), DeviceData.from_dataset(ds))
    # Compiled, as training runs them (op-by-op dispatch would compile every op on its own).
    act_fn = jax.jit(lambda a, o, g: a.sample_actions(o, g))
    loss, metrics = jax.jit(lambda a, b: a.total_loss(a.params, b))(agent, batch)
    assert np.isfinite(float(loss))
    assert all("/" in k for k in metrics if k not in ("total_loss", "grad_norm")), "namespaced metrics"

    # update() through training's own compiled chunk (a jit of update alone would double the compile time),
    # checked against the run's own step-0 agent.
    result = train(config, ds, str(tmp_path / "a"), progress=False)
    assert int(result.agent.step) == 40
    first, _ = initial_state(config, ds)
    unchanged = [jax.tree_util.keystr(path) for (path, a), b in zip(
        jax.tree_util.tree_leaves_with_path(first.params), jax.tree.leaves(result.agent.params))
        if np.array_equal(a, b)]
    assert not unchanged, f"updates must move every parameter (a parameter no gradient reaches stays put): {unchanged}"
    actions = act_fn(result.agent, ds.observations[:5], ds.observations[5:10])
    assert actions.shape == (5, ds.action_dim) and float(jnp.max(jnp.abs(actions))) <= 1.0
    again = train(config, ds, str(tmp_path / "b"), progress=False)
    for a, b in zip(jax.tree.leaves(result.agent.params), jax.tree.leaves(again.agent.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # one seed, bit for bit

    loaded = mqe.load(tmp_path / "a")
    obs, goals = ds.observations[:7], ds.observations[10:17]
    actions = np.asarray(act_fn(result.agent, obs, goals))
    np.testing.assert_allclose(loaded.act(obs, goals), actions, atol=1e-6, rtol=1e-6)
    if name != "gcbc":  # every agent but behaviour cloning learns how close a goal is
        value = np.asarray(jax.jit(lambda a, o, g: a.value_estimate(o, g))(result.agent, obs, goals))
        assert value.shape == (7,) and np.isfinite(value).all()
    if hasattr(result.agent, "distance"):
        d = loaded.distance(obs, goals)
        assert d.shape == (7,) and (d >= 0).all()
        assert np.all(loaded.distance(obs, obs) == 0), "d(s, s) = 0 through the public API"
        direct = jax.jit(lambda a, o, g: a.distance(o, g))(result.agent, obs, goals)
        np.testing.assert_allclose(d, np.asarray(direct).mean(0), rtol=1e-5, atol=1e-6)
        assert loaded.distance(obs, goals, reduce="none").shape == (getattr(config.agent, "ensemble_size", 1), 7)

    # A policy checkpoint holds exactly POLICY_NETWORKS (float32: the same numbers), and one stored as
    # float16 acts like the full agent up to float16 rounding of the weights.
    policy = {k: result.agent.params[k] for k in spec.agent_class.POLICY_NETWORKS}
    for stored in ("float32", "float16"):
        ckpt.save_policy(str(tmp_path / stored), step=40, config=config.to_dict(), params=policy,
                         observation_shape=ds.observation_shape, action_dim=ds.action_dim, stored_dtype=stored)
    saved = ckpt.read_checkpoint(ckpt.checkpoint_at(str(tmp_path / "float32"), 40))["state"]["agent"]["params"]
    assert sorted(saved) == sorted(policy)
    for a, b in zip(jax.tree.leaves(saved), jax.tree.leaves(policy)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    only_policy = mqe.load(tmp_path / "float16")
    assert only_policy.policy_only and only_policy.step == 40
    np.testing.assert_allclose(only_policy.act(obs, goals), actions, atol=1e-2, rtol=0)
    if hasattr(result.agent, "distance"):
        with pytest.raises(TypeError, match="policy checkpoint"):
            only_policy.distance(obs, goals)


# Every invariance loss on MRN; on IQE the default and all_pairs, the one that calls the quasimetric on
# extra leading axes (the others see the same (E, B, D) shapes whichever quasimetric computes them).
@pytest.mark.parametrize("invariance,quasimetric", [
    *[(kind, "mrn") for kind in ("exp_squared", "squared", "all_pairs", "expectile", "none")],
    ("exp_squared", "iqe"), ("all_pairs", "iqe")])
def test_mqe_variants_train(invariance, quasimetric):
    config = make_config("mqe", "tiny", [f"invariance={invariance}", f"quasimetric={quasimetric}"])
    ds = _dataset()
    agent = AGENTS["mqe"].agent_class.create(jax.random.PRNGKey(0), ds.observations[:1], ds.actions[:1],
                                             config.agent)
    batch = sample_batch(jax.random.PRNGKey(1), DeviceData.from_dataset(ds), config.agent.sampler())
    step = jax.jit(lambda a, b: a.update(b))
    for _ in range(3):
        agent, metrics = step(agent, batch)
    assert np.isfinite(float(metrics["total_loss"]))
    if invariance == "none":
        assert float(metrics["critic/invariance_loss"]) == 0.0
    else:
        assert float(metrics["critic/invariance_loss"]) > 0.0


def test_actor_loss_does_not_update_the_critic():
    config = make_config("mqe", "tiny")
    ds = _dataset()
    agent = AGENTS["mqe"].agent_class.create(jax.random.PRNGKey(0), ds.observations[:1], ds.actions[:1],
                                             config.agent)
    batch = sample_batch(jax.random.PRNGKey(1), DeviceData.from_dataset(ds), config.agent.sampler())
    grads = jax.jit(jax.grad(lambda p: agent.actor_loss(p, batch)[0]))(agent.params)
    for name in ("phi", "psi"):
        assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in jax.tree.leaves(grads[name]))
    assert any(float(jnp.max(jnp.abs(g))) > 0.0 for g in jax.tree.leaves(grads["actor"]))
    # And the critic loss never reaches the actor.
    grads = jax.jit(jax.grad(lambda p: agent.critic_loss(p, batch)[0]))(agent.params)
    assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in jax.tree.leaves(grads["actor"]))


def test_hiql_gradient_is_finite_for_an_all_zero_state_and_goal():
    # Zero input + zero biases give a goal representation of exactly 0 at initialisation; its
    # normalisation must still have a finite gradient (a plain norm's is NaN there).
    config = make_config("hiql", "tiny")
    ds = _dataset()
    agent = AGENTS["hiql"].agent_class.create(jax.random.PRNGKey(0), ds.observations[:1], ds.actions[:1], config.agent)
    batch = config.agent.sampler().sample(jax.random.PRNGKey(1), DeviceData.from_dataset(ds))
    batch = {k: (jnp.zeros_like(v) if v.ndim == 2 and k != "actions" else v) for k, v in batch.items()}
    grads = jax.grad(lambda p: agent.total_loss(p, batch)[0])(agent.params)
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))


PIXEL_TINY = ["batch_size=4", "encoder=impala_debug", "crop_prob=0.5"]


def _image_dataset(n=120, size=8):
    """uint8 frames (a bright square that moves with the state), episodes of 40 steps."""
    rng = np.random.default_rng(0)
    pos = np.clip(np.cumsum(rng.integers(-1, 2, (n, 2)), 0) % size, 0, size - 2)
    frames = np.zeros((n, size, size, 3), np.uint8)
    for i, (y, x) in enumerate(pos):
        frames[i, y:y + 2, x:x + 2] = (255, 128, 0)
    terminals = np.zeros(n, bool)
    terminals[39::40] = True
    return Dataset.from_arrays(frames, rng.uniform(-1, 1, (n, 2)).astype(np.float32), terminals)


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_agent_contract_on_images(name, tmp_path):
    """The contract on uint8 frames: every network with an encoder, crops on, frames uint8 up to the
    encoder, a short training run through ``train`` and the checkpoint acting the same through ``mqe.load``."""
    config = make_config(name, "tiny", PIXEL_TINY + ["train.steps=4", "train.updates_per_call=2",
                                                               "train.log_interval=2", "train.checkpoint_interval=4"])
    ds = _image_dataset()
    assert ds.observations.dtype == np.uint8
    result = train(config, ds, str(tmp_path), progress=False)
    first, _ = initial_state(config, ds)  # the run's own step-0 agent
    leaves = lambda agent: jax.tree.leaves(agent.params)
    assert any("encoder" in jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_leaves_with_path(first.params))
    assert all(not np.array_equal(a, b) for a, b in zip(leaves(first), leaves(result.agent))), \
        "training moves every parameter, encoders included"
    obs, goals = ds.observations[:3], ds.observations[50:53]
    actions = np.asarray(jax.jit(lambda a, o, g: a.sample_actions(o, g))(result.agent, obs, goals))
    assert actions.shape == (3, 2) and np.abs(actions).max() <= 1.0
    np.testing.assert_allclose(mqe.load(tmp_path).act(obs, goals), actions, atol=1e-6, rtol=1e-6)
    if name != "gcbc":
        value = jax.jit(lambda a, o, g: a.value_estimate(o, g))(result.agent, obs, goals)
        assert value.shape == (3,) and np.isfinite(np.asarray(value)).all()
