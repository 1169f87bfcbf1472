"""GCIVL: goal-conditioned implicit V-learning with an AWR policy (OGBench's baseline).

Value (two heads V_1, V_2 and their Polyak targets V'_k; r, m from the value goal g):
  adv    = r + gamma m min_k V'_k(s', g) - mean_k V'_k(s, g)
  L_V    = sum_k mean[ |kappa - 1(adv < 0)| (r + gamma m V'_k(s', g) - V_k(s, g))^2 ]
Actor (AWR on the actor goal g):
  A      = mean_k V_k(s', g) - mean_k V_k(s, g)
  L_pi   = -mean[ min(exp(alpha A), 100) log pi(a | s, g) ]
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from mqe import losses
from mqe.agents.common import AgentState, value_goal_sampler, value_steps
from mqe.encoders import goal_concat_encoded
from mqe.networks import GaussianPolicy, GoalConditionedValue
from mqe.sampling import GoalSamplerConfig


@dataclasses.dataclass(frozen=True)
class GCIVLConfig:
    """OGBench's GCIVL defaults."""

    batch_size: int = 1024  # transitions per update
    value_hidden_dims: tuple[int, ...] = (512, 512, 512)  # V network widths (GELU + LayerNorm)
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512)  # policy MLP widths (no LayerNorm)
    layer_norm: bool = True  # LayerNorm in the value network
    discount: float = 0.99  # gamma; also the geometric value-goal horizon
    tau: float = 0.005  # Polyak rate of the target value network
    expectile: float = 0.9  # kappa of the expectile value loss
    alpha: float = 10.0  # AWR inverse temperature
    policy_std: float = 1.0  # constant std of the Gaussian policy
    value_p_curgoal: float = 0.2  # value goals: current state
    value_p_trajgoal: float = 0.5  # value goals: future state of the trajectory (geometric)
    value_p_randomgoal: float = 0.3  # value goals: random dataset state
    actor_p_randomgoal: float = 0.0  # actor goals: random state (else uniform future); 0.5 on stitch
    learning_rate: float = 3e-4  # Adam
    encoder: str | None = None  # image encoder (mqe.encoders.ENCODERS, e.g. impala_small); None for states
    crop_prob: float = 0.0  # random-crop augmentation probability per batch (OGBench's p_aug; pixels only)

    def sampler(self) -> GoalSamplerConfig:
        return value_goal_sampler(self)


def implicit_value_loss(value_fn, target_fn, batch, discount: float, expectile: float):
    """GCIVL's (and HIQL's) expectile value loss for two heads; ``value_fn(obs, goals) -> (2, B)`` with
    gradients, ``target_fn`` the Polyak target. See the module docstring for the formula."""
    obs, next_obs, goals = batch["observations"], batch["next_observations"], batch["value_goals"]
    r, m = batch["rewards"], batch["masks"]
    next_v_t = jax.lax.stop_gradient(target_fn(next_obs, goals))  # (2, B)
    v_t = jax.lax.stop_gradient(target_fn(obs, goals))
    adv = r + discount * m * jnp.min(next_v_t, axis=0) - jnp.mean(v_t, axis=0)
    targets = r + discount * m * next_v_t  # each head towards its own target's backup
    v = value_fn(obs, goals)
    weight = jnp.where(adv >= 0, expectile, 1.0 - expectile)
    loss = jnp.sum(jnp.mean(weight * jnp.square(targets - v), axis=-1))
    return loss, {"value/loss": loss, "value/v_mean": jnp.mean(v), "value/v_max": jnp.max(v),
                  "value/v_min": jnp.min(v)}


class GCIVLAgent(AgentState):
    TARGETS = ("value",)
    LOSSES = ("value_loss", "actor_loss")

    @staticmethod
    def build_networks(c, action_dim):
        return {"value": goal_concat_encoded(c.encoder, GoalConditionedValue(c.value_hidden_dims, 2, c.layer_norm)),
                "actor": goal_concat_encoded(c.encoder, GaussianPolicy(c.actor_hidden_dims, action_dim))}

    @staticmethod
    def example_inputs(obs, act, config):
        return {"value": (obs, obs), "actor": (obs, obs)}

    def value(self, params, observations, goals):
        """V_k(s, g) for both heads: (2, ...)."""
        return self.networks["value"].apply({"params": params}, observations, goals)

    def value_loss(self, params, batch):
        c = self.config
        return implicit_value_loss(lambda o, g: self.value(params["value"], o, g),
                                   lambda o, g: self.value(self.target_params["value"], o, g),
                                   batch, c.discount, c.expectile)

    def actor_loss(self, params, batch):
        c = self.config
        obs, goals = batch["observations"], batch["actor_goals"]
        v = jnp.mean(self.value(params["value"], obs, goals), axis=0)
        next_v = jnp.mean(self.value(params["value"], batch["next_observations"], goals), axis=0)
        adv = jax.lax.stop_gradient(next_v - v)
        mean = self.networks["actor"].apply({"params": params["actor"]}, obs, goals)
        log_prob = losses.gaussian_log_prob(batch["actions"], mean, c.policy_std)
        loss = losses.awr_loss(adv, log_prob, c.alpha)
        return loss, {"actor/loss": loss, "actor/adv": jnp.mean(adv), "actor/bc_log_prob": jnp.mean(log_prob),
                      "actor/mse": jnp.mean(jnp.square(jnp.clip(mean, -1, 1) - batch["actions"]))}


    def value_estimate(self, observations, goals):
        """mean_k V_k(s, g): higher is closer (about -steps to the goal, scaled by the discount)."""
        return jnp.mean(self.value(self.params["value"], observations, goals), axis=0)

    def steps_functions(self):
        """Steps to the goal from the value (reward -1 per step until the goal; ``common.value_steps``)."""
        return value_steps(self, self.config.discount)
