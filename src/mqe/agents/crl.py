"""CRL: contrastive RL with DDPG+BC extraction (OGBench's baseline; no exponentiated critic).

Critic, per ensemble member e, over all pairs of the batch (goals g_j: geometric future states):
  l_ij = phi_e(s_i, a_i) . psi_e(g_j) / sqrt(D)
  L_C  = mean_ij BCE(sigmoid(l_ij), 1[i == j])          (binary NCE: the other goals are negatives)
Actor on the actor goal g (critic frozen):
  q = min_e l(s, clip(mu(s, g)), g);   L = -mean q / sg(mean|q|) - alpha mean log pi(a | s, g)

Hyperparameters: ``mqe.agents.configs.CRLConfig`` (every field commented).
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from mqe import losses
from mqe.agents.common import AgentState, phi_psi_actor_networks


class CRLAgent(AgentState):
    build_networks = staticmethod(phi_psi_actor_networks)

    @staticmethod
    def example_inputs(obs, act, config):
        return {"phi": (obs, act), "psi": (obs,), "actor": (obs, obs)}

    def logits(self, params, observations, actions, goals, all_pairs: bool):
        """phi(s, a) . psi(g) / sqrt(D): (E, B, B) over all pairs, or (E, B) matched."""
        phi = self.networks["phi"].apply({"params": params["phi"]}, observations, actions)
        psi = self.networks["psi"].apply({"params": params["psi"]}, goals)
        scale = 1.0 / math.sqrt(self.config.latent_dim)
        if all_pairs:
            return jnp.einsum("eid,ejd->eij", phi, psi) * scale
        return jnp.sum(phi * psi, axis=-1) * scale

    def critic_loss(self, params, batch):
        logits = self.logits(params, batch["observations"], batch["actions"], batch["value_goals"], True)
        loss = losses.binary_nce_loss(logits)
        diag = jnp.diagonal(logits, axis1=-2, axis2=-1)
        accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == jnp.arange(logits.shape[-1]))
        return loss, {"critic/loss": loss, "critic/logits_positive": jnp.mean(diag),
                      "critic/logits_all": jnp.mean(logits), "critic/accuracy": accuracy}

    def actor_loss(self, params, batch):
        return self.ddpg_bc_actor_loss(
            params, batch, lambda p, o, a, g: jnp.min(self.logits(p, o, a, g, False), axis=0))


    def value_estimate(self, observations, goals):
        """min_e l(s, pi(s, g), g): the critic at the policy's action; higher is closer."""
        return jnp.min(self.logits(self.params, observations, self.sample_actions(observations, goals), goals, False),
                       axis=0)
