"""GCBC: goal-conditioned behaviour cloning (OGBench's baseline).

  L = -mean_i log pi(a_i | s_i, g_i),   g_i uniform over the future states of s_i's trajectory.

Deterministic actions at evaluation: the policy mean, clipped to [-1, 1].

Hyperparameters: ``mqe.agents.configs.GCBCConfig`` (every field commented).
"""

from __future__ import annotations


import jax.numpy as jnp

from mqe import losses
from mqe.agents.common import AgentState
from mqe.encoders import goal_encoded
from mqe.networks import GaussianPolicy


class GCBCAgent(AgentState):
    LOSSES = ("actor_loss",)

    @staticmethod
    def build_networks(config, action_dim):
        return {"actor": goal_encoded(config.encoder, config.goal_conditioning,
                                      GaussianPolicy(config.actor_hidden_dims, action_dim))}

    @staticmethod
    def example_inputs(obs, act, config):
        return {"actor": (obs, obs)}

    def actor_loss(self, params, batch):
        mean = self.policy_mean(params, batch["observations"], batch["actor_goals"])
        log_prob = losses.gaussian_log_prob(batch["actions"], mean, self.config.policy_std)
        return -jnp.mean(log_prob), {"actor/loss": -jnp.mean(log_prob), "actor/bc_log_prob": jnp.mean(log_prob),
                                     "actor/mse": jnp.mean(jnp.square(jnp.clip(mean, -1, 1) - batch["actions"]))}


