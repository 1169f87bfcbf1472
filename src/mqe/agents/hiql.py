"""HIQL: hierarchical implicit Q-learning (Park et al., 2023) as in OGBench.

A goal representation r(s, g) = normalise(MLP([s; g])) (length sqrt(rep_dim)) is shared by the value
V_k(s, g) = head_k([s; r(s, g)]), its target (only the heads are Polyak-averaged) and the low actor.
  L_V    = GCIVL's expectile value loss (expectile 0.7)
  L_low  = -mean[min(exp(low_alpha (V(s', w) - V(s, w))), 100) log pi_low(a | s, sg r(s, w))],  w = s_{t+k}
  L_high = -mean[min(exp(high_alpha (V(w', g) - V(s, g))), 100) log pi_high(sg r(s, w') | s, g)],
           w' = the state k steps towards the high-level goal g
Acting: z = normalise(mean pi_high(s, g)); a = clip(mean pi_low(s, z)), re-planned at every step.

Hyperparameters: ``mqe.agents.configs.HIQLConfig`` (every field commented).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from mqe import losses
from mqe.agents.common import AgentState, value_steps
from mqe.encoders import encoded, goal_concat_encoded
from mqe.agents.gcivl import implicit_value_loss
from mqe.networks import MLP, GaussianPolicy, GoalConditionedValue, join


def _normalise(z: jax.Array) -> jax.Array:
    """z / ||z|| * sqrt(dim), with the epsilon inside the root: finite gradient at z = 0 (an all-zero
    input gives exactly z = 0 at initialisation, where ||z||'s own gradient is NaN)."""
    return z * jax.lax.rsqrt(jnp.sum(jnp.square(z), axis=-1, keepdims=True) + 1e-12) * math.sqrt(z.shape[-1])


class GoalRepresentation(nn.Module):
    hidden_dims: tuple[int, ...]
    rep_dim: int
    layer_norm: bool

    @nn.compact
    def __call__(self, observations, goals=None):
        return _normalise(MLP(self.hidden_dims, self.rep_dim, self.layer_norm)(join(observations, goals)))


class HIQLAgent(AgentState):
    TARGETS = ("value",)
    POLICY_NETWORKS = ("high_actor", "low_actor")
    LOSSES = ("value_loss", "actor_loss")

    @staticmethod
    def build_networks(c, action_dim):
        # Pixels (OGBench's layout): r([s; g]) encodes the stacked images and is shared by the value heads,
        # their targets and the low actor; value, low actor and high actor each encode s with their own
        # encoder (the value's Polyak target has a copy of it).
        return {"goal_rep": goal_concat_encoded(c.encoder, GoalRepresentation(c.value_hidden_dims, c.rep_dim,
                                                                              c.layer_norm)),
                "value": encoded(c.encoder, GoalConditionedValue(c.value_hidden_dims, 2, c.layer_norm)),
                "low_actor": encoded(c.encoder, GaussianPolicy(c.actor_hidden_dims, action_dim)),
                "high_actor": goal_concat_encoded(c.encoder, GaussianPolicy(c.actor_hidden_dims, c.rep_dim))}

    @staticmethod
    def example_inputs(obs, act, config):
        rep = jnp.zeros((obs.shape[0], config.rep_dim))
        return {"goal_rep": (obs, obs), "value": (obs, rep), "low_actor": (obs, rep), "high_actor": (obs, obs)}

    def rep(self, params, observations, goals):
        return self.networks["goal_rep"].apply({"params": params["goal_rep"]}, observations, goals)

    def value(self, rep_params, head_params, observations, goals):
        """V_k(s, g) for both heads: (2, ...)."""
        z = self.networks["goal_rep"].apply({"params": rep_params}, observations, goals)
        return self.networks["value"].apply({"params": head_params}, observations, z)

    def value_loss(self, params, batch):
        c = self.config
        return implicit_value_loss(
            lambda o, g: self.value(params["goal_rep"], params["value"], o, g),
            lambda o, g: self.value(params["goal_rep"], self.target_params["value"], o, g),
            batch, c.discount, c.expectile)

    def actor_loss(self, params, batch):
        c = self.config
        frozen = jax.lax.stop_gradient({"goal_rep": params["goal_rep"], "value": params["value"]})
        v = lambda o, g: jnp.mean(self.value(frozen["goal_rep"], frozen["value"], o, g), axis=0)
        obs, next_obs = batch["observations"], batch["next_observations"]
        # Low level: reach the subgoal w = s_{t+k}.
        w = batch["low_actor_goals"]
        low_adv = v(next_obs, w) - v(obs, w)
        z_w = self.rep(params if c.low_actor_rep_grad else frozen, obs, w)
        low_mean = self.networks["low_actor"].apply({"params": params["low_actor"]}, obs, z_w)
        low_log_prob = losses.gaussian_log_prob(batch["actions"], low_mean, c.policy_std)
        low_loss = losses.awr_loss(low_adv, low_log_prob, c.low_alpha)
        # High level: predict the representation of the state k steps towards the goal.
        g, target = batch["high_actor_goals"], batch["high_actor_targets"]
        high_adv = v(target, g) - v(obs, g)
        high_mean = self.networks["high_actor"].apply({"params": params["high_actor"]}, obs, g)
        high_log_prob = losses.gaussian_log_prob(self.rep(frozen, obs, target), high_mean, c.policy_std)
        high_loss = losses.awr_loss(high_adv, high_log_prob, c.high_alpha)
        return low_loss + high_loss, {
            "low_actor/loss": low_loss, "low_actor/adv": jnp.mean(low_adv),
            "low_actor/mse": jnp.mean(jnp.square(jnp.clip(low_mean, -1, 1) - batch["actions"])),
            "high_actor/loss": high_loss, "high_actor/adv": jnp.mean(high_adv)}

    def sample_actions(self, observations, goals):
        z = _normalise(self.networks["high_actor"].apply({"params": self.params["high_actor"]}, observations, goals))
        mean = self.networks["low_actor"].apply({"params": self.params["low_actor"]}, observations, z)
        return jnp.clip(mean, -1.0, 1.0)

    def value_estimate(self, observations, goals):
        """mean_k V_k(s, g): higher is closer."""
        return jnp.mean(self.value(self.params["goal_rep"], self.params["value"], observations, goals), axis=0)

    def steps_functions(self):
        """Steps to the goal from the value (reward -1 per step until the goal; ``common.value_steps``)."""
        return value_steps(self, self.config.discount)
