"""GCIVL: goal-conditioned implicit V-learning with an AWR policy (OGBench's baseline).

Value (two heads V_1, V_2 and their Polyak targets V'_k; r, m from the value goal g):
  adv    = r + gamma m min_k V'_k(s', g) - mean_k V'_k(s, g)
  L_V    = sum_k mean[ |kappa - 1(adv < 0)| (r + gamma m V'_k(s', g) - V_k(s, g))^2 ]
Actor (AWR on the actor goal g):
  A      = mean_k V_k(s', g) - mean_k V_k(s, g)
  L_pi   = -mean[ min(exp(alpha A), 100) log pi(a | s, g) ]

Hyperparameters: ``mqe.agents.configs.GCIVLConfig`` (every field commented).
"""

from __future__ import annotations


import jax
import jax.numpy as jnp

from mqe import losses
from mqe.agents.common import AgentState, value_steps
from mqe.encoders import goal_concat_encoded
from mqe.networks import GaussianPolicy, GoalConditionedValue


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
