"""OGBench's goal sampler (the baselines' batches): goal mixtures, uniform future goals, rewards and
masks, HIQL's subgoal targets and the n-step windows, checked by decoding every sampled row index
(the observation of row i is i itself)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from mqe.sampling import DeviceData, GoalSamplerConfig, sample_goal_batch

TRAJ, LEN = 100, 100  # 100 trajectories of 100 rows; rows t < f have a successor


def _data():
    n = TRAJ * LEN
    obs = np.arange(n, dtype=np.float32)[:, None]  # the observation is the row index
    final = np.repeat(np.arange(LEN - 1, n, LEN), LEN)
    return DeviceData.from_arrays(obs, np.zeros((n, 1), np.float32), final)


def _sample(config, data=None, seed=0):
    data = data or _data()
    batch = jax.jit(lambda k: sample_goal_batch(k, data, config))(jax.random.PRNGKey(seed))
    idx = {k: np.asarray(v[..., 0]).astype(np.int64) for k, v in batch.items()
           if k in ("observations", "next_observations", "value_goals", "actor_goals", "low_actor_goals",
                    "high_actor_goals", "high_actor_targets", "nstep_next_observations")}
    return batch, idx


def test_value_goal_mixture_proportions():
    cfg = GoalSamplerConfig(batch_size=100_000, value_p_curgoal=0.2, value_p_trajgoal=0.5, value_p_randomgoal=0.3)
    _, idx = _sample(cfg)
    t, g = idx["observations"], idx["value_goals"]
    final = (t // LEN) * LEN + LEN - 1
    n = len(t)
    valid = TRAJ * (LEN - 1)
    # Exact probabilities: a random goal is uniform over the valid rows.
    p_cur = 0.2 + 0.8 * (0.3 / 0.8) / valid
    p_future = 0.8 * (0.5 / 0.8) + 0.8 * (0.3 / 0.8) * np.mean((final - t - 1) / valid)
    for observed, expected in ((np.mean(g == t), p_cur), (np.mean((g > t) & (g <= final)), p_future)):
        assert abs(observed - expected) < 4 * np.sqrt(expected * (1 - expected) / n)
    # Rewards and masks follow the value goal (gc_negative: 0 at the goal, -1 elsewhere).
    batch, _ = _sample(cfg)
    success = np.asarray(batch["value_goals"][:, 0] == batch["observations"][:, 0], np.float32)
    np.testing.assert_array_equal(np.asarray(batch["rewards"]), success - 1.0)
    np.testing.assert_array_equal(np.asarray(batch["masks"]), 1.0 - success)


def test_uniform_future_actor_goal_for_a_fixed_state():
    data = _data()
    t0 = 3 * LEN + 40  # f - t0 = 59 future rows
    data = data.replace(valid_index=jnp.array([t0], jnp.int32))
    _, idx = _sample(GoalSamplerConfig(batch_size=59_000), data)
    offsets = idx["actor_goals"] - t0
    counts = np.bincount(offsets, minlength=60)
    assert counts[0] == 0 and offsets.max() == 59
    assert stats.chisquare(counts[1:]).pvalue > 1e-3


def test_hiql_subgoal_targets():
    cfg = GoalSamplerConfig(batch_size=20_000, subgoal_steps=25, actor_p_trajgoal=0.5, actor_p_randomgoal=0.5)
    _, idx = _sample(cfg)
    t = idx["observations"]
    final = (t // LEN) * LEN + LEN - 1
    np.testing.assert_array_equal(idx["low_actor_goals"], np.minimum(t + 25, final))
    goal, target = idx["high_actor_goals"], idx["high_actor_targets"]
    same_future = (goal > t) & (goal <= final)
    # Future goals: the target is 25 steps on, but never past the goal; random goals (which rarely land
    # ahead of t, ~0.25% here) and other goals: 25 steps towards the trajectory end.
    towards_goal = target == np.minimum(t + 25, goal)
    towards_end = target == np.minimum(t + 25, final)
    assert np.all((towards_goal | towards_end)[same_future])
    assert np.mean(~towards_goal[same_future]) < 0.01
    other = ~same_future
    np.testing.assert_array_equal(target[other], np.minimum(t + 25, final)[other])
    assert 0.45 < np.mean(same_future) < 0.56  # half future goals (random ones rarely land ahead)


@pytest.mark.parametrize("n", [1, 10])
def test_nstep_windows(n):
    cfg = GoalSamplerConfig(batch_size=20_000, value_p_curgoal=0.2, value_p_trajgoal=0.5, value_p_randomgoal=0.3,
                            value_geom_sample=False, nstep=n)
    batch, idx = _sample(cfg)
    t, g = idx["observations"], idx["value_goals"]
    final = (t // LEN) * LEN + LEN - 1
    k = np.asarray(batch["nstep_steps"])
    success = np.asarray(batch["nstep_success"]).astype(bool)
    inside = (g >= t) & (g - t < n) & (g <= final)
    np.testing.assert_array_equal(success, inside)
    np.testing.assert_array_equal(k[inside], (g - t)[inside])  # the window stops at the goal
    np.testing.assert_array_equal(k[~inside], np.minimum(n, final - t)[~inside])  # else n or the end
    np.testing.assert_array_equal(idx["nstep_next_observations"], t + k)
    assert success.mean() > 0.19  # current-state goals (p 0.2) at least


def test_probabilities_must_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        GoalSamplerConfig(value_p_curgoal=0.5, value_p_trajgoal=0.5, value_p_randomgoal=0.5)
