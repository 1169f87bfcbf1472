"""TMD: temporal metric distillation (Myers et al., 2025), with DDPG+BC extraction.

Per ensemble member, d = MRN (mean over its C components), phi(s, a) and psi(x) separate networks:
  l_ij   = -d(phi(s_i, a_i), psi(g_j)) / sqrt(D)
  L_NCE  = mean_j -log softmax_i(l_ij)_jj             (each goal classifies its state-action)
  L_I    = mean_i d(psi(s_i), phi(s_i, a_i))            (action invariance, linear)
  L_B    = (1 - w) mean_ij LINEX_ij + w mean_i LINEX_ii  one-step backup towards sg d(psi(s'_i), psi(g_j)),
           LINEX = gamma exp(delta) - d for delta <= t, delta beyond (delta = d - sg d')
  L      = L_NCE + zeta (L_I + L_B)
Actor: q = min_e -d(phi_e(s, clip(mu(s, g))), psi_e(g)) (critic frozen), DDPG+BC.

Hyperparameters: ``mqe.agents.configs.TMDConfig`` (every field commented).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from mqe import losses
from mqe.agents.common import QuasimetricAgent, phi_psi_actor_inputs, phi_psi_actor_networks
from mqe.quasimetric import ensemble_pairwise, make_quasimetric


class TMDAgent(QuasimetricAgent):
    @staticmethod
    def build_networks(config, action_dim):
        return phi_psi_actor_networks(config, action_dim, shared_encoder=True)  # pixels: phi and psi share one

    @staticmethod
    def example_inputs(obs, act, config):
        return phi_psi_actor_inputs(obs, act, config, shared_encoder=True)

    def _distances(self):
        return make_quasimetric("mrn", self.config.num_components, "c")  # mean over components

    def phi(self, params, observations, actions):
        return self.networks["phi"].apply({"params": params["phi"]}, self.features(params, observations), actions)

    def psi(self, params, observations):
        return self.networks["psi"].apply({"params": params["psi"]}, self.features(params, observations))

    def critic_loss(self, params, batch):
        c = self.config
        matched, pairwise = self._distances()
        obs, act, goals = batch["observations"], batch["actions"], batch["value_goals"]
        phi_sa = self.phi(params, obs, act)
        psi_s = self.psi(params, obs)
        psi_g = self.psi(params, goals)
        psi_next = jax.lax.stop_gradient(self.psi(params, batch["next_observations"]))
        d = ensemble_pairwise(pairwise, phi_sa, psi_g)  # (E, B, B)
        nce = losses.infonce_loss(-d / math.sqrt(c.latent_dim), axis=-2)
        invariance = jnp.mean(matched(psi_s, phi_sa))
        d_next = jax.lax.stop_gradient(ensemble_pairwise(pairwise, psi_next, psi_g))
        ell = losses.linex_backup_loss(d, d_next, jnp.ones(()), c.discount, c.linex_clip)
        backup = jnp.mean(losses.weighted_pair_mean(ell, c.pair_weight))
        loss = nce + c.zeta * (invariance + backup)
        return loss, {"critic/nce_loss": nce, "critic/invariance_loss": invariance, "critic/backup_loss": backup,
                      "critic/d_matched": jnp.mean(jnp.diagonal(d, axis1=-2, axis2=-1)), "critic/d_all_pairs": jnp.mean(d)}
