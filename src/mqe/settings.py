"""The settings agent configs are made of and checked against: the quasimetrics and distance scales by
name, and the samplers' settings (what a batch is made of; ``mqe.sampling`` draws it). Imports no JAX, so
that resolving a config (``mqe config``, ``mqe report``) stays light."""

from __future__ import annotations

import dataclasses

QUASIMETRICS = ("mrn", "iqe")  # mqe.quasimetric.make_quasimetric
DISTANCE_SCALES = ("c_sqrt_d", "c", "none")  # 1/(C sqrt D), 1/C, 1: the quasimetric's scale (mqe.quasimetric)
WAYPOINT_DISTRIBUTIONS = ("geometric", "uniform_to_goal", "uniform", "fixed")


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    """Static sampling settings (hashable, so they can be closed over by ``jax.jit``)."""

    batch_size: int = 256
    gamma: float = 0.995  # value-goal horizon: K ~ Geom(1 - gamma)
    waypoint_discount: float = 0.95  # lambda: k ~ Geom(1 - lambda) for the "geometric" waypoint
    next_state_prob: float = 0.2  # p: probability of replacing the waypoint by s' (k' = 1)
    # "geometric": k ~ Geom(1 - lambda) (default); "uniform_to_goal": k ~ U{1..K_eff} with
    # K_eff = goal - t; "uniform": k ~ U{1..waypoint_steps}; "fixed": k = waypoint_steps.
    waypoint_distribution: str = "geometric"
    waypoint_steps: int = 50  # n of the "uniform" / "fixed" waypoint ablations

    def __post_init__(self):
        if self.waypoint_distribution not in WAYPOINT_DISTRIBUTIONS:
            raise ValueError(
                f"waypoint_distribution must be one of {WAYPOINT_DISTRIBUTIONS}, "
                f"got {self.waypoint_distribution!r}"
            )
        for name in ("gamma", "waypoint_discount"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value}")
        if not 0.0 <= self.next_state_prob <= 1.0:
            raise ValueError(f"next_state_prob must be in [0, 1], got {self.next_state_prob}")
        if self.waypoint_steps < 1:
            raise ValueError(f"waypoint_steps must be >= 1, got {self.waypoint_steps}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    def sample(self, key, data) -> dict:
        """One batch from ``data`` (``mqe.sampling.DeviceData``), inside the compiled step."""
        from mqe.sampling import sample_batch

        return sample_batch(key, data, self)


# ----- OGBench's goal-conditioned sampler (the baselines' batches) -----


@dataclasses.dataclass(frozen=True)
class GoalSamplerConfig:
    """OGBench's GCDataset / HGCDataset sampling, for the baselines (static, hashable).

    Each batch row has a state t (uniform over rows with a successor) and two goals, each drawn from a
    mixture: the current state (``*_p_curgoal``), a future state of t's trajectory (``*_p_trajgoal``;
    t + Geom(1 - discount) capped at the trajectory end if ``*_geom_sample``, else uniform over
    [t + 1, f]) or a uniform random state (``*_p_randomgoal``). Rewards and masks come from the value
    goal: success = (value goal == t); reward = success - 1 if ``gc_negative`` else success; mask =
    1 - success. ``subgoal_steps > 0`` adds HIQL's subgoal targets; ``nstep > 0`` adds n-step windows.
    Trajectory goals range up to the trajectory's last row f (the MQE sampler's convention).
    """

    batch_size: int = 1024
    discount: float = 0.99
    value_p_curgoal: float = 0.2
    value_p_trajgoal: float = 0.5
    value_p_randomgoal: float = 0.3
    value_geom_sample: bool = True
    actor_p_curgoal: float = 0.0
    actor_p_trajgoal: float = 1.0
    actor_p_randomgoal: float = 0.0
    actor_geom_sample: bool = False
    gc_negative: bool = True
    subgoal_steps: int = 0  # HIQL: low-level goal t + subgoal_steps; high-level targets
    nstep: int = 0  # n-step SAC+BC: the state k <= n steps ahead (k stops at the value goal)

    def __post_init__(self):
        for prefix in ("value", "actor"):
            probs = [getattr(self, f"{prefix}_p_{k}") for k in ("curgoal", "trajgoal", "randomgoal")]
            if min(probs) < 0 or abs(sum(probs) - 1.0) > 1e-6:
                raise ValueError(f"{prefix}_p_curgoal + {prefix}_p_trajgoal + {prefix}_p_randomgoal must be "
                                 f"non-negative and sum to 1, got {probs}")
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f"discount must be in (0, 1), got {self.discount}")
        if self.batch_size < 1 or self.subgoal_steps < 0 or self.nstep < 0:
            raise ValueError("batch_size must be >= 1, subgoal_steps and nstep >= 0")

    def sample(self, key, data) -> dict:
        """One batch from ``data`` (``mqe.sampling.DeviceData``), inside the compiled step."""
        from mqe.sampling import sample_goal_batch

        return sample_goal_batch(key, data, self)
