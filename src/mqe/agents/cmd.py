"""CMD: contrastive metric distillation, in the OGBench form the MQE paper compares against.

One network c(x, a) (an ensemble) embeds both sides: phi_i = c(s_i, a_i), psi_j = c(g_j, a_{j-1}) (the
goal side takes the batch's actions rolled by one, so it sees an unrelated dataset action). Per member,
with d = MRN (mean over its C components):
  l_ij = -d(phi_i, psi_j) / sqrt(D);   L = mean_ij BCE(sigmoid(l_ij), 1[i == j])
No backup and no invariance term. Actor: q = min_e -d(c_e(s, clip(mu(s, g))), c_e(g, a_rolled)), DDPG+BC.

Hyperparameters: ``mqe.agents.configs.CMDConfig`` (every field commented).
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from mqe import losses
from mqe.agents.common import AgentState
from mqe.encoders import encoded, goal_concat_encoded
from mqe.networks import GaussianPolicy, StateActionEncoder
from mqe.quasimetric import ensemble_pairwise, make_quasimetric


class CMDAgent(AgentState):
    @staticmethod
    def build_networks(c, action_dim):
        # Pixels: one encoder inside the single critic, for states and goals; the actor its own.
        return {"c": encoded(c.encoder, StateActionEncoder(c.value_hidden_dims, c.latent_dim, c.ensemble_size,
                                                           c.layer_norm)),
                "actor": goal_concat_encoded(c.encoder, GaussianPolicy(c.actor_hidden_dims, action_dim))}

    @staticmethod
    def example_inputs(obs, act, config):
        return {"c": (obs, act), "actor": (obs, obs)}

    def _distances(self):
        return make_quasimetric("mrn", self.config.num_components, "c")  # mean over components

    def embed(self, params, x, actions):
        return self.networks["c"].apply({"params": params["c"]}, x, actions)

    def critic_loss(self, params, batch):
        _, pairwise = self._distances()
        act = batch["actions"]
        phi = self.embed(params, batch["observations"], act)
        psi = self.embed(params, batch["value_goals"], jnp.roll(act, 1, axis=0))
        logits = -ensemble_pairwise(pairwise, phi, psi) / math.sqrt(self.config.latent_dim)
        loss = losses.binary_nce_loss(logits)
        accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == jnp.arange(logits.shape[-1]))
        return loss, {"critic/loss": loss, "critic/accuracy": accuracy,
                      "critic/d_matched": -jnp.mean(jnp.diagonal(logits, axis1=-2, axis2=-1)) * math.sqrt(
                          self.config.latent_dim)}

    def actor_loss(self, params, batch):
        matched, _ = self._distances()
        goal_actions = jnp.roll(batch["actions"], 1, axis=0)
        return self.ddpg_bc_actor_loss(params, batch, lambda p, o, a, g: jnp.min(
            -matched(self.embed(p, o, a), self.embed(p, g, goal_actions)), axis=0))


    def value_estimate(self, observations, goals):
        """min_e -d(c(s, pi(s, g)), c(g, pi(s, g))): higher is closer (the goal side's action is arbitrary)."""
        matched, _ = self._distances()
        actions = self.sample_actions(observations, goals)
        return jnp.min(-matched(self.embed(self.params, observations, actions), self.embed(self.params, goals, actions)),
                       axis=0)
