"""MQE: Multistep Quasimetric Estimation (Zheng, Myers, Eysenbach, Levine; ICLR 2026).

One readable file, in the shape of OGBench's agents: a commented config, the networks by name, the critic's
and the actor's losses; ``create``, ``total_loss``, ``update`` and ``sample_actions`` are the shared ones of
``common.AgentState`` (one Adam step on the summed losses, no target networks). The math is on the documentation's algorithm page (docs/algorithm.md; section numbers below).

Critic (section 3), per ensemble member e, averaged over e:
  d_ij   = d(phi_e(s_i, a_i), psi_e(g_j))                    all pairs of the batch
  d^w_ij = sg[d(psi_e(w_i), psi_e(g_j))]
  L_T    = (1 - omega) mean_ij l_ij + omega mean_i l_ii,     l = LINEX(d, d^w, k'_i)
  L_I    = mean_i (exp(-d(psi_e(s_i), phi_e(s_i, a_i))) - 1)^2      (default variant)
Actor (DDPG + BC):
  q_i  = min_e -d(phi_e(s_i, clip(mu(s_i, g_i))), psi_e(g_i))   (critic parameters frozen)
  L_mu = -mean_i q_i / sg(mean_i |q_i| + 1e-6) - alpha mean_i log pi(a_i | s_i, g_i)
One Adam step on L_T + L_I + L_mu per batch.
Pixels (paper B.3, Eq. 17): one image encoder f feeds phi_e(f(s), a) and psi_e(f(x)); L_I sees sg[f(s)],
so the encoder learns from L_T only; the actor encodes the stacked images [s; g] with its own encoder.

Hyperparameters: ``mqe.agents.configs.MQEConfig`` (every field commented).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from mqe import kernels as kernel_sets
from mqe import losses
from mqe.agents.common import QuasimetricAgent
from mqe.agents.configs import MQEConfig
from mqe.encoders import feature_dim, goal_encoded, make_encoder
from mqe.networks import EnsembleMLP, GaussianPolicy, StateActionEncoder
from mqe.quasimetric import (
    ensemble_pairwise,
    make_quasimetric,
)


class MQEAgent(QuasimetricAgent):
    """Parameters, optimiser state and step of an MQE agent (``common.AgentState``: no target networks;
    one Adam step on the summed losses); the config and modules are static. The actor's DDPG+BC loss, the
    distance and the steps to a goal are ``common.QuasimetricAgent``'s."""

    # ----- networks, addressed by name -----
    @staticmethod
    def build_networks(config: MQEConfig, action_dim: int) -> dict[str, Any]:
        return _networks(config, action_dim)

    @staticmethod
    def example_inputs(obs, act, config: MQEConfig) -> dict[str, tuple]:
        """phi and psi read the encoder's features on pixels (f is shared, paper B.3), the states otherwise."""
        features = obs if config.encoder is None else jnp.zeros((obs.shape[0], feature_dim(config.encoder)))
        inputs = {"phi": (features, act), "psi": (features,), "actor": (obs, obs)}
        if config.encoder is not None:
            inputs["encoder"] = (obs,)
        return inputs

    def phi(self, params, observations, actions):
        return self.phi_head(params, self.features(params, observations), actions)

    def psi(self, params, observations):
        return self.psi_head(params, self.features(params, observations))

    def phi_head(self, params, features, actions):
        return self.networks["phi"].apply({"params": params["phi"]}, features, actions)

    def psi_head(self, params, features):
        return self.networks["psi"].apply({"params": params["psi"]}, features)

    # ----- losses -----
    def critic_loss(self, params, batch):
        cfg = self.config
        matched, pairwise = self._distances()
        obs, act, goals = batch["observations"], batch["actions"], batch["goals"]
        steps = batch["waypoint_steps"]

        f_sg = self.features(params, jnp.concatenate([obs, goals], axis=0))  # one pass for s and g
        f_s = f_sg[:obs.shape[0]]
        phi_sa = self.phi_head(params, f_s, act)  # (E, B, D)
        psi_sg = self.psi_head(params, f_sg)
        psi_s, psi_g = jnp.split(psi_sg, 2, axis=1)
        psi_w = jax.lax.stop_gradient(self.psi(params, batch["waypoints"]))

        ensemble = kernel_sets.resolve(cfg.kernels).ensemble
        d = ensemble_pairwise(pairwise, phi_sa, psi_g, ensemble)  # (E, B, B): d((s_i, a_i), g_j)
        d_w = jax.lax.stop_gradient(ensemble_pairwise(pairwise, psi_w, jax.lax.stop_gradient(psi_g), ensemble))
        ell = losses.linex_backup_loss(d, d_w, steps[None, :, None], cfg.discount, cfg.linex_clip)
        backup_loss = jnp.mean(losses.weighted_pair_mean(ell, cfg.pair_weight))

        invariance_loss = self._invariance_loss(params, f_sg, psi_s, phi_sa, psi_g, d, batch)
        d_diag = jnp.diagonal(d, axis1=-2, axis2=-1)
        dw_diag = jnp.diagonal(d_w, axis1=-2, axis2=-1)
        log_gamma = abs(math.log(cfg.discount))
        metrics = {
            "critic/backup_loss": backup_loss,
            "critic/invariance_loss": invariance_loss,
            "critic/d_matched": jnp.mean(d_diag),
            "critic/d_all_pairs": jnp.mean(d),
            "critic/matched_steps": jnp.mean(d_diag) / log_gamma,
            "critic/target_gap_steps": jnp.mean(
                d_diag - losses.linex_target(dw_diag, steps[None, :], cfg.discount)
            ) / log_gamma,
            "critic/invariance_distance": jnp.mean(matched(psi_s, phi_sa)),
        }
        return backup_loss + cfg.invariance_weight * invariance_loss, metrics

    def _invariance_loss(self, params, f_sg, psi_s, phi_sa, psi_g, d, batch):
        """L_I on the critic's outputs; for pixels the heads are rerun on the encoder's features with the
        gradient stopped (paper Eq. 17), unless ``invariance_encoder_grad``."""
        cfg = self.config
        matched, _ = self._distances()
        kind = cfg.invariance
        if kind == "none":
            return jnp.zeros(())
        f_s = f_sg[:psi_s.shape[1]]
        if cfg.encoder is not None and not cfg.invariance_encoder_grad:
            f_sg = jax.lax.stop_gradient(f_sg)
            f_s = f_sg[:psi_s.shape[1]]
            psi_s, psi_g = jnp.split(self.psi_head(params, f_sg), 2, axis=1)
            phi_sa = self.phi_head(params, f_s, batch["actions"])
        if kind == "exp_squared":
            return jnp.mean(jnp.square(jnp.exp(-matched(psi_s, phi_sa)) - 1.0))
        if kind == "squared":
            return jnp.mean(jnp.square(matched(psi_s, phi_sa)))
        if kind == "all_pairs":  # paper Eq. 15 literally: every state with every batch action
            act = batch["actions"]
            b = f_s.shape[0]
            f_ij = jnp.broadcast_to(f_s[:, None], (b, b, f_s.shape[-1]))
            act_ij = jnp.broadcast_to(act[None, :], (b, b, act.shape[-1]))
            phi_ij = self.phi_head(params, f_ij, act_ij)  # (E, B, B, D)
            return jnp.mean(jnp.square(matched(psi_s[:, :, None, :], phi_ij)))
        # "expectile": fit the value distance d(s, g) to a lower expectile of d((s, a), g) (IQL-style,
        # with V = -d(psi(s), psi(g)) and Q = -d(phi(s, a), psi(g)) on the matched goals).
        d_value = matched(psi_s, psi_g)
        d_q = jax.lax.stop_gradient(jnp.diagonal(d, axis1=-2, axis2=-1))
        return jnp.mean(losses.expectile_loss(d_value - d_q, cfg.invariance_expectile))

    def _distances(self):
        cfg = self.config
        return make_quasimetric(cfg.quasimetric, cfg.num_components, cfg.distance_scale, cfg.iqe_alpha,
                                kernel_sets.resolve(cfg.kernels))


def _networks(config: MQEConfig, action_dim: int) -> dict[str, Any]:
    ensemble, dtype = kernel_sets.resolve(config.kernels).ensemble, config.matmul_dtype
    networks = {
        "phi": StateActionEncoder(config.encoder_hidden_dims, config.latent_dim, config.ensemble_size,
                                  config.encoder_layer_norm, ensemble, dtype),
        "psi": EnsembleMLP(config.encoder_hidden_dims, config.latent_dim, config.ensemble_size,
                           config.encoder_layer_norm, ensemble, dtype),
        # Pixels: the actor has its own encoder (the paper does not share it with the critic, C.1), fed the
        # stacked observation and goal images (OGBench) or the observation FiLM-conditioned on the goal (Bridge).
        "actor": goal_encoded(config.encoder, config.goal_conditioning,
                              GaussianPolicy(config.actor_hidden_dims, action_dim, config.actor_mean_init_scale, dtype)),
    }
    if config.encoder is not None:  # one encoder f feeds phi(f(s), a) and psi(f(x)) (paper B.3, release code)
        networks["encoder"] = make_encoder(config.encoder)
    return networks

