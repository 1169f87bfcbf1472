"""The MQE paper's Bridge model (appendix C, Table 4): ResNet backbones per network with FiLM goal
conditioning, ImageNet weights loaded into every backbone, and the paper-bridge preset for MQE, GCBC and
GCIQL. (ResNet-34 against an independent NumPy reference: test_resnet.py; the contract on image data for
every agent: test_agent_contract.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mqe.config import ConfigError, make_config
from mqe.data.dataset import Dataset
from mqe.encoders import make_encoder
from mqe.encoders.resnet import ResNetEncoder, is_backbone, load_pretrained
from mqe.train import initial_state
from test_resnet import torchvision_resnet34_state

DEBUG = dict(stages=(1, 1, 1, 1), widths=(4, 4, 8, 8))  # resnet_debug's layout
TINY = {"mqe": ["latent_dim=16", "encoder_hidden_dims=16", "actor_hidden_dims=16"],
        "gcbc": ["actor_hidden_dims=16"], "gciql": ["actor_hidden_dims=16", "value_hidden_dims=16"],
        "tra": ["latent_dim=16", "value_hidden_dims=16", "actor_hidden_dims=16"]}


def _frames(n, seed=0, size=32):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_film_starts_as_the_identity_and_then_lets_the_goal_steer_the_features():
    backbone = make_encoder("resnet_debug")
    obs, goals = _frames(3, size=16), _frames(3, seed=1, size=16)
    plain = jax.jit(lambda p, o: backbone.apply({"params": p}, o))
    conditioned = jax.jit(lambda p, o, g: backbone.apply({"params": p}, o, backbone.apply({"params": p}, g)))
    params = jax.jit(lambda o, g: backbone.init(jax.random.PRNGKey(0), o, jnp.zeros((len(g), 8))))(obs, goals)["params"]
    films = [k for k in params if k.startswith("film")]
    assert len(films) == 4 and all(np.all(np.asarray(x) == 0) for k in films for x in jax.tree.leaves(params[k]))
    # zero-initialised: the goal-conditioned pass is exactly the plain backbone
    np.testing.assert_allclose(conditioned(params, obs, goals), plain(params, obs), rtol=1e-6)
    moved, key = jax.tree.map(lambda x: x, params), jax.random.PRNGKey(2)
    for name in films:
        for part in ("scale", "shift"):
            key, sub = jax.random.split(key)
            moved[name][part]["kernel"] = 0.1 * jax.random.normal(sub, params[name][part]["kernel"].shape)
    a, b = conditioned(moved, obs, goals), conditioned(moved, obs, goals[::-1])
    assert not np.allclose(a, b, atol=1e-4)  # another goal, other features of the same observation


@pytest.mark.parametrize("agent", ["mqe", "gciql", "tra"])  # GCBC's one backbone is the actor's, as here
def test_imagenet_weights_go_into_every_backbone_and_training_starts_from_them(tmp_path, agent):
    state = torchvision_resnet34_state(seed=3, **DEBUG)
    path = str(tmp_path / "resnet.npz")
    np.savez(path, **state)
    frames = _frames(8, size=16)
    dataset = Dataset.from_arrays(frames, np.zeros((8, 2), np.float32), (np.arange(8) % 4 == 3).astype(np.float32))
    config = make_config(agent, "none", ["encoder=resnet_debug", "goal_conditioning=film", f"encoder_weights={path}",
                                         "batch_size=4", *TINY[agent]])
    agent_state, _ = initial_state(config, dataset)
    pretrained = load_pretrained(path, ResNetEncoder(stage_sizes=DEBUG["stages"], widths=DEBUG["widths"]))
    backbones = []

    def walk(tree, where):
        if is_backbone(tree):
            backbones.append(where)
            for name in pretrained:
                for got, want in zip(jax.tree.leaves(tree[name]), jax.tree.leaves(pretrained[name])):
                    np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=f"{where}/{name}")
        elif isinstance(tree, dict):
            for k, v in tree.items():
                walk(v, f"{where}/{k}")

    walk(agent_state.params, "params")
    walk(getattr(agent_state, "target_params", {}), "target_params")
    expected = {"mqe": ["params/actor/encoder", "params/encoder"], "gcbc": ["params/actor/encoder"],
                "gciql": ["params/actor/encoder", "params/critic/encoder", "params/value/encoder",
                          "target_params/critic/encoder"],
                "tra": ["params/actor/encoder", "params/phi/encoder", "params/psi/encoder"]}[agent]
    assert sorted(backbones) == expected  # actor and critic not shared (paper C.1); targets too
    actor = agent_state.params["actor"]["encoder"]  # FiLM: one backbone, a 3-channel stem
    assert "film4_0" in actor and actor["conv1"]["kernel"].shape[2] == 3
    actions = agent_state.sample_actions(frames[:2], frames[2:4])  # the policy's own path through FiLM
    assert actions.shape == (2, 2) and np.all(np.isfinite(np.asarray(actions)))
    # Without the file, the same config starts elsewhere: the weights were really loaded.
    fresh, _ = initial_state(make_config(agent, "none", ["encoder=resnet_debug", "goal_conditioning=film",
                                                         "batch_size=4", *TINY[agent]]), dataset)
    assert not np.array_equal(np.asarray(fresh.params["actor"]["encoder"]["conv1"]["kernel"]),
                              np.asarray(agent_state.params["actor"]["encoder"]["conv1"]["kernel"]))


def test_encoder_settings_that_do_not_fit_get_a_clear_error(tmp_path):
    np.savez(tmp_path / "w.npz", **torchvision_resnet34_state(seed=0, **DEBUG))
    dataset = Dataset.from_arrays(_frames(4), np.zeros((4, 2), np.float32), np.array([0, 0, 0, 1], np.float32))
    with pytest.raises(ConfigError, match="goal_conditioning=film needs a ResNet encoder"):
        make_config("mqe", "none", ["encoder=impala_debug", "goal_conditioning=film"])
    with pytest.raises(ConfigError, match="goal_conditioning must be one of"):
        make_config("gcbc", "none", ["goal_conditioning=late"])
    with pytest.raises(ConfigError, match="encoder_weights=.* needs encoder=resnet34"):
        make_config("gciql", "none", ["encoder=impala_small", f"encoder_weights={tmp_path / 'w.npz'}"])
    # goal-stacked (6-channel) stems cannot take 3-channel ImageNet weights
    config = make_config("gcbc", "none", ["encoder=resnet_debug", f"encoder_weights={tmp_path / 'w.npz'}",
                                          "actor_hidden_dims=8", "batch_size=4"])
    with pytest.raises(ConfigError, match="6-channel stem cannot take ImageNet's 3-channel weights: use goal_conditioning=film"):
        initial_state(config, dataset)
    config = make_config("gcbc", "none", ["encoder=resnet_debug", "goal_conditioning=film",
                                          f"encoder_weights={tmp_path / 'missing.npz'}", "batch_size=4"])
    with pytest.raises(ConfigError, match="missing.npz'?: no such file"):
        initial_state(config, dataset)  # before any network is built


def test_the_paper_bridge_preset_is_table_4_for_mqe_and_its_baselines():
    mqe = make_config("mqe", "paper-bridge").agent
    assert (mqe.latent_dim, mqe.encoder_hidden_dims, mqe.actor_hidden_dims, mqe.encoder_layer_norm) == \
        (256, (256, 256, 256), (256, 256, 256), True)
    assert (mqe.num_components, mqe.discount, mqe.waypoint_discount, mqe.next_state_prob) == (8, 0.98, 0.95, 0.2)
    assert (mqe.batch_size, mqe.encoder, mqe.goal_conditioning) == (128, "resnet34", "film")
    assert make_config("mqe", "paper-bridge").train.steps == 500_000
    for name in ("gcbc", "gciql", "tra"):  # TRA-g: its actor's own ResNet, FiLM by psi(g) (C.1)
        config = make_config(name, "paper-bridge")
        assert (config.agent.batch_size, config.agent.encoder, config.agent.goal_conditioning,
                config.agent.actor_hidden_dims) == (128, "resnet34", "film", (256, 256, 256))
        assert config.train.steps == 500_000
        assert all("paper-bridge" in entry["source"] for entry in config.changed.values())
    assert make_config("gciql", "paper-bridge").agent.value_hidden_dims == (256, 256, 256)


def test_a_bridge_model_trains_a_few_updates_on_frames(tmp_path):
    """A FiLM ResNet actor through training's own compiled loop (GCBC: one backbone, so a short compile; MQE's
    backbones are built and loaded above, and its update is the contract test's)."""
    from mqe.train import train

    frames = _frames(24, size=16)
    dataset = Dataset.from_arrays(frames, np.random.default_rng(0).uniform(-1, 1, (24, 3)).astype(np.float32),
                                  (np.arange(24) % 8 == 7).astype(np.float32))
    config = make_config("gcbc", "none", ["encoder=resnet_debug", "goal_conditioning=film", "batch_size=4",
                                          "train.steps=4", "train.updates_per_call=2", *TINY["gcbc"]])
    result = train(config, dataset, str(tmp_path / "run"), progress=False)
    assert result.step == 4 and np.isfinite(result.train_metrics["total_loss"])
