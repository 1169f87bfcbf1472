"""Goal and waypoint sampling (spec section 2), as pure JAX functions that run inside the compiled step.

Index arithmetic on a dataset in OGBench's raw layout: trajectories stored back to back, row t + 1
follows row t, and ``final_index[t]`` is the last row of t's trajectory. Nothing crosses a trajectory
boundary because every index is capped by ``final_index[t]``.

For a state index t (uniform over rows that have a successor, t < f = final_index[t]):

- value goal:   K ~ Geometric(1 - gamma) on {1, 2, ...};  goal = min(t + K, f)
- waypoint:     k ~ (waypoint distribution);  waypoint = min(t + k, f, goal);  k' = waypoint - t
- next-state mixing: with probability p the waypoint is t + 1 and k' = 1
- actor goal:   uniform over [t + 1, f]
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from mqe.settings import WAYPOINT_DISTRIBUTIONS, GoalSamplerConfig, SamplerConfig  # noqa: F401  (re-exported)

@flax.struct.dataclass
class DeviceData:
    """A dataset resident on the device: what the compiled training step samples from."""

    observations: jax.Array  # (N, *obs_shape)
    actions: jax.Array  # (N, action_dim)
    final_index: jax.Array  # (N,) int32, last row of each row's trajectory
    valid_index: jax.Array  # (M,) int32, rows t with t < final_index[t]

    @classmethod
    def from_arrays(cls, observations, actions, final_index) -> "DeviceData":
        final_index = np.asarray(final_index, dtype=np.int32)
        valid = np.nonzero(np.arange(len(final_index)) < final_index)[0].astype(np.int32)
        # device_put, not jnp.asarray: one transfer and no intermediate copy; on CPU an aligned array
        # (as Dataset.load_npz makes them) is used in place, so a pixel dataset is not held twice.
        return cls(
            observations=jax.device_put(np.asarray(observations)),
            actions=jnp.asarray(actions, dtype=jnp.float32),
            final_index=jnp.asarray(final_index),
            valid_index=jnp.asarray(valid),
        )

    @classmethod
    def from_dataset(cls, dataset) -> "DeviceData":
        return cls.from_arrays(dataset.observations, dataset.actions, dataset.final_index)


def geometric(key: jax.Array, success_prob: float, shape) -> jax.Array:
    """Geometric(success_prob) on {1, 2, ...} by inversion: ceil(log U / log(1 - p)), U in (0, 1]."""
    u = jax.random.uniform(key, shape, minval=jnp.finfo(jnp.float32).tiny, maxval=1.0)
    draws = jnp.ceil(jnp.log(u) / jnp.log1p(-success_prob))
    # Clamp keeps the int cast defined for astronomically unlikely tails; max(1) handles u == 1.
    return jnp.clip(draws, 1, 2**30).astype(jnp.int32)


def uniform_int(key: jax.Array, low: jax.Array, high: jax.Array) -> jax.Array:
    """Uniform integer in [low, high] (inclusive, elementwise, high >= low)."""
    span = (high - low + 1).astype(jnp.float32)
    offset = jnp.floor(jax.random.uniform(key, low.shape) * span).astype(jnp.int32)
    return low + jnp.minimum(offset, high - low)


def sample_indices(key: jax.Array, data: DeviceData, config: SamplerConfig) -> dict[str, jax.Array]:
    """Draws one batch of row indices and step counts (all int32, shape (batch_size,))."""
    keys = jax.random.split(key, 6)
    b = config.batch_size
    t = data.valid_index[jax.random.randint(keys[0], (b,), 0, data.valid_index.shape[0])]
    final = data.final_index[t]

    goal = jnp.minimum(t + geometric(keys[1], 1.0 - config.gamma, (b,)), final)

    dist = config.waypoint_distribution
    if dist == "geometric":
        k = geometric(keys[2], 1.0 - config.waypoint_discount, (b,))
    elif dist == "uniform_to_goal":
        k = uniform_int(keys[2], jnp.ones_like(t), goal - t)
    elif dist == "uniform":
        k = uniform_int(keys[2], jnp.ones_like(t), jnp.full_like(t, config.waypoint_steps))
    else:  # "fixed"
        k = jnp.full_like(t, config.waypoint_steps)
    waypoint = jnp.minimum(jnp.minimum(t + k, final), goal)
    use_next = jax.random.uniform(keys[3], (b,)) < config.next_state_prob
    waypoint = jnp.where(use_next, t + 1, waypoint)

    actor_goal = uniform_int(keys[4], t + 1, final)
    return {
        "state": t,
        "next_state": t + 1,
        "goal": goal,
        "waypoint": waypoint,
        "waypoint_steps": waypoint - t,
        "actor_goal": actor_goal,
    }


def gather_batch(data: DeviceData, idx: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Looks the sampled indices up in the device-resident arrays."""
    obs = data.observations
    return {
        "observations": obs[idx["state"]],
        "actions": data.actions[idx["state"]],
        "next_observations": obs[idx["next_state"]],
        "goals": obs[idx["goal"]],
        "waypoints": obs[idx["waypoint"]],
        "waypoint_steps": idx["waypoint_steps"],
        "actor_goals": obs[idx["actor_goal"]],
    }


def sample_batch(key: jax.Array, data: DeviceData, config: SamplerConfig) -> dict[str, jax.Array]:
    """``gather_batch(data, sample_indices(key, data, config))``."""
    return gather_batch(data, sample_indices(key, data, config))


# ----- OGBench's goal-conditioned sampler (the baselines' batches) -----


def sample_goals(key: jax.Array, data: DeviceData, t: jax.Array, p_cur: float, p_traj: float,
                 geometric_offsets: bool, discount: float) -> jax.Array:
    """Goal indices for states ``t``: current / future-in-trajectory / random mixture (OGBench's rule)."""
    k_traj, k_rand, k_pick, k_cur = jax.random.split(key, 4)
    final = data.final_index[t]
    if geometric_offsets:
        traj = jnp.minimum(t + geometric(k_traj, 1.0 - discount, t.shape), final)
    else:
        traj = uniform_int(k_traj, t + 1, final)
    rand = data.valid_index[jax.random.randint(k_rand, t.shape, 0, data.valid_index.shape[0])]
    p_traj_given_not_cur = p_traj / (1.0 - p_cur) if p_cur < 1.0 else 1.0
    goal = jnp.where(jax.random.uniform(k_pick, t.shape) < p_traj_given_not_cur, traj, rand)
    return jnp.where(jax.random.uniform(k_cur, t.shape) < p_cur, t, goal)


def sample_goal_batch(key: jax.Array, data: DeviceData, config: GoalSamplerConfig) -> dict[str, jax.Array]:
    """One OGBench-style batch (see ``GoalSamplerConfig``)."""
    c = config
    keys = jax.random.split(key, 4)
    t = data.valid_index[jax.random.randint(keys[0], (c.batch_size,), 0, data.valid_index.shape[0])]
    final = data.final_index[t]
    value_goal = sample_goals(keys[1], data, t, c.value_p_curgoal, c.value_p_trajgoal, c.value_geom_sample,
                              c.discount)
    actor_goal = sample_goals(keys[2], data, t, c.actor_p_curgoal, c.actor_p_trajgoal, c.actor_geom_sample,
                              c.discount)
    success = (value_goal == t).astype(jnp.float32)
    obs = data.observations
    batch = {
        "observations": obs[t],
        "actions": data.actions[t],
        "next_observations": obs[t + 1],
        "value_goals": obs[value_goal],
        "actor_goals": obs[actor_goal],
        "rewards": success - 1.0 if c.gc_negative else success,
        "masks": 1.0 - success,
    }
    if c.subgoal_steps:
        batch["low_actor_goals"] = obs[jnp.minimum(t + c.subgoal_steps, final)]
        # High level: a future goal (or, with actor_p_randomgoal, a random state) and the state
        # subgoal_steps ahead towards it (towards the trajectory end for random goals).
        k_goal, k_pick = jax.random.split(keys[3])
        traj = sample_goals(k_goal, data, t, 0.0, 1.0, c.actor_geom_sample, c.discount)
        rand = data.valid_index[jax.random.randint(k_pick, t.shape, 0, data.valid_index.shape[0])]
        use_random = jax.random.uniform(jax.random.fold_in(k_pick, 1), t.shape) < c.actor_p_randomgoal
        high_goal = jnp.where(use_random, rand, traj)
        target = jnp.minimum(t + c.subgoal_steps, jnp.where(use_random, final, high_goal))
        batch["high_actor_goals"] = obs[high_goal]
        batch["high_actor_targets"] = obs[target]
    if c.nstep:
        # n-step backup window: k = min(n, f - t) steps, cut short where the value goal lies inside it.
        # Success (reward gamma^k, mask 0) only when the goal is inside the window; a trajectory that ends
        # first bootstraps from its last state (OGBench's horizon-reduction code counts that as success).
        k = jnp.minimum(c.nstep, final - t)
        ahead = value_goal - t
        reached = (ahead >= 0) & (ahead < c.nstep) & (ahead <= final - t)  # rows t..f are t's trajectory
        k = jnp.where(reached, ahead, k)
        batch["nstep_next_observations"] = obs[t + k]
        batch["nstep_steps"] = k
        batch["nstep_success"] = reached.astype(jnp.float32)
        batch["rng"] = jax.random.key_data(jax.random.fold_in(keys[3], 7))
    return batch
