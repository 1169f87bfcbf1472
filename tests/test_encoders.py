"""Image encoders, random-crop augmentation and MQE's frozen encoder inside L_I (paper Eq. 17)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mqe.agents import AGENTS
from mqe.config import make_config
from mqe.encoders import AugmentedSampler, augment_batch, check_encoder, make_encoder, random_crop
from mqe.networks import jitted_init
from mqe.sampling import DeviceData


def _param_count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_impala_small_has_ogbenchs_size_and_keeps_leading_axes():
    enc = make_encoder("impala_small")
    shapes = lambda channels: jax.eval_shape(enc.init, jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, channels)))
    # OGBench's impala_small on 64x64: 1,105,056 parameters on 3 channels, 1,105,488 on 6 (obs || goal).
    assert _param_count(shapes(3)) == 1_105_056 and _param_count(shapes(6)) == 1_105_488
    frames = np.random.default_rng(0).integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)
    params = jitted_init(enc)(jax.random.PRNGKey(0), frames[0])["params"]
    apply = jax.jit(lambda x: enc.apply({"params": params}, x))
    out = apply(frames)
    assert out.shape == (2, 3, 512) and out.dtype == jnp.float32
    # uint8 frames are scaled inside: the same numbers as float frames in [0, 255].
    np.testing.assert_array_equal(np.asarray(out), np.asarray(apply(frames.astype(np.float32))))
    with pytest.raises(ValueError, match="unknown encoder 'resnet'"):
        make_encoder("resnet")


def test_random_crop_shifts_with_edge_padding():
    img = np.arange(2 * 6 * 5 * 1, dtype=np.uint8).reshape(2, 6, 5, 1)
    same = random_crop(jnp.asarray(img), jnp.array([[3, 3], [3, 3]]), 3)
    np.testing.assert_array_equal(np.asarray(same), img)  # offset = padding: the image itself
    shifted = np.asarray(random_crop(jnp.asarray(img), jnp.array([[0, 0], [6, 1]]), 3))
    assert shifted.dtype == np.uint8
    ys, xs = np.arange(6), np.arange(5)
    # out[y, x] = img[clip(y + dy - 3), clip(x + dx - 3)]: edge pixels replicated.
    np.testing.assert_array_equal(shifted[0], img[0][np.clip(ys - 3, 0, 5)][:, np.clip(xs - 3, 0, 4)])
    np.testing.assert_array_equal(shifted[1], img[1][np.clip(ys + 3, 0, 5)][:, np.clip(xs - 2, 0, 4)])


def test_augmentation_statistics():
    b, trials = 64, 300
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (b, 12, 12, 3), dtype=np.uint8)
    batch = {"observations": jnp.asarray(frames), "goals": jnp.asarray(frames), "actions": jnp.ones((b, 2))}
    aug = jax.jit(lambda k: augment_batch(k, batch, 0.5, 3))
    pad = np.pad(frames, ((0, 0), (3, 3), (3, 3), (0, 0)), mode="edge")
    applied, offsets = 0, []
    for i in range(trials):
        out = aug(jax.random.PRNGKey(i))
        obs = np.asarray(out["observations"])
        # One offset per sample, shared by every image entry; other entries untouched.
        np.testing.assert_array_equal(obs, np.asarray(out["goals"]))
        np.testing.assert_array_equal(np.asarray(out["actions"]), np.ones((b, 2)))
        if np.array_equal(obs, frames):
            continue
        applied += 1
        if applied <= 20:  # recover each sample's offset from its crop
            for j in range(b):
                found = [(dy, dx) for dy in range(7) for dx in range(7)
                         if np.array_equal(pad[j, dy:dy + 12, dx:dx + 12], obs[j])]
                offsets.append(found[0])
    # One coin per batch with p = 0.5: binomial(300, 0.5) has sd 8.7, so +-35 is beyond 4 sd.
    assert abs(applied - trials / 2) < 35
    counts = np.bincount(np.array(offsets).ravel(), minlength=7)  # 2 * 20 * 64 draws over {0..6}
    expected = counts.sum() / 7
    assert counts.shape == (7,) and np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))
    assert augment_batch(jax.random.PRNGKey(0), batch, 0.0, 3) is batch  # off: nothing done
    with pytest.raises(ValueError, match="crop probability"):
        AugmentedSampler(None, 1.5)


def test_encoder_and_observation_shape_must_match():
    images, states = make_config("gcbc", None, ["encoder=impala_small"]), make_config("gcbc", None, [])
    check_encoder(images.agent, (64, 64, 3))
    check_encoder(states.agent, (29,))
    with pytest.raises(ValueError, match=r"images of shape \(64, 64, 3\), so agent.encoder must name"):
        check_encoder(states.agent, (64, 64, 3))
    with pytest.raises(ValueError, match="needs image observations"):
        check_encoder(images.agent, (29,))


def _mqe_on_images():
    config = make_config("mqe", None, ["batch_size=8", "latent_dim=16", "encoder_hidden_dims=16",
                                       "actor_hidden_dims=16", "encoder=impala_debug"]).agent
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (60, 16, 16, 3), dtype=np.uint8)
    actions = rng.uniform(-1, 1, (60, 2)).astype(np.float32)
    data = DeviceData.from_arrays(frames, actions, np.repeat(np.arange(19, 60, 20), 20))
    agent = AGENTS["mqe"].agent_class.create(jax.random.PRNGKey(0), frames[:1], actions[:1], config)
    return agent, config.sampler().sample(jax.random.PRNGKey(1), data)


def _norms(grads):
    return {name: max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(tree)) for name, tree in grads.items()}


def test_mqe_invariance_loss_leaves_the_encoder_alone():
    agent, batch = _mqe_on_images()
    assert batch["observations"].dtype == jnp.uint8  # frames stay uint8 up to the encoder
    terms = ("critic/invariance_loss", "critic/backup_loss", "critic/invariance_distance")

    def stacked(params):
        metrics = agent.critic_loss(params, batch)[1]
        return jnp.stack([metrics[t] for t in terms])

    rows = jax.jit(jax.jacrev(stacked))(agent.params)
    invariance, backup, unfrozen = (_norms(jax.tree.map(lambda g: g[i], rows)) for i in range(3))
    assert invariance["encoder"] == 0.0 and invariance["actor"] == 0.0  # Eq. 17: sg on the encoder's output
    assert invariance["phi"] > 0.0 and invariance["psi"] > 0.0  # ... while the heads still learn from L_I
    assert backup["encoder"] > 0.0  # L_T trains the encoder
    # Control: the same matched distance d(psi(f(s)), phi(f(s), a)) without the stop-gradient (the release
    # code's L_I; also logged as critic/invariance_distance) does reach the encoder.
    assert unfrozen["encoder"] > 0.0
