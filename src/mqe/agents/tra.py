"""TRA-g: temporal representation alignment with goal images (Myers et al., 2025), the MQE paper's Bridge
baseline (section 5.2, appendix C.1: "two separate encoders phi, psi ... aligned with a symmetric InfoNCE").

Representations phi_e(s) and psi_e(x) (E members, latent D), aligned over all pairs of the batch with the
future state s+_j = s_{t+k}, k ~ Geom(1 - gamma) (TRA's Algorithm 1):
  l_ij  = phi_e(s_i) . psi_e(s+_j) / sqrt(D)
  L_NCE = mean_e [ -mean_i log softmax_j(l)_ii  -  mean_j log softmax_i(l)_jj ] / B   (rows and columns)
        + repr_reg (mean phi^2 + mean psi^2)
The 1/B is TRA's code: it averages the masked log-softmax over all B x B pairs, not over the B positives
(the paper's per-sample NCE), so its ``alignment`` weight is on that scale; ours is the same.
The policy reads the representations (TRA's OGBench code: pi(a | phi(s), psi(g)), members averaged); with
image observations and ``goal_conditioning=film`` it has a ResNet of its own that encodes s modulated by
psi(g) through FiLM, pi(a | f(s; psi(g))) (the MQE paper's Bridge TRA-g, appendix C.1: "FiLM to embed the
learned goal representation into the actor", after Myers et al. 2025a). It learns by behaviour cloning
alone, towards actor goals g (uniform future states):
  L_BC  = -mean log pi(a | phi(s), psi(g))
with no stop-gradient: the BC gradient shapes phi and psi too (as in TRA's code). The language branch of
TRA (xi(l) and its alignment) drops out: MQE's comparison uses goal images only.
Sources: TRA paper Eq. 8-10 and Algorithm 1; vivekmyers/tra-ogbench agents/tra.py (the sqrt(D) scale,
both softmax directions, repr_reg 1e-6, no stop-gradient, actor goals uniform). Our choices where the two
differ or say nothing are marked in the config.

Hyperparameters: ``mqe.agents.configs.TRAConfig`` (every field commented).
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from mqe import losses
from mqe.agents.common import AgentState
from mqe.encoders import FiLMConditioned, encoded
from mqe.networks import EnsembleMLP, GaussianPolicy


class TRAAgent(AgentState):
    LOSSES = ("alignment_loss", "actor_loss")
    POLICY_NETWORKS = ("phi", "psi", "actor")  # the policy reads both representations

    @staticmethod
    def build_networks(c, action_dim):
        representation = lambda: encoded(c.encoder, EnsembleMLP(c.value_hidden_dims, c.latent_dim, c.ensemble_size,
                                                                c.layer_norm))
        actor = GaussianPolicy(c.actor_hidden_dims, action_dim)
        return {"phi": representation(), "psi": representation(),
                "actor": FiLMConditioned(c.encoder, actor) if TRAAgent.film(c) else actor}

    @staticmethod
    def film(config) -> bool:
        """The policy's own ResNet, FiLM-conditioned on psi(g) (image observations only)."""
        return config.encoder is not None and config.goal_conditioning == "film"

    @staticmethod
    def example_inputs(obs, act, config):
        latent = jnp.zeros((obs.shape[0], config.latent_dim))
        return {"phi": (obs,), "psi": (obs,), "actor": (obs if TRAAgent.film(config) else latent, latent)}

    def phi(self, params, observations):
        return self.networks["phi"].apply({"params": params["phi"]}, observations)

    def psi(self, params, observations):
        return self.networks["psi"].apply({"params": params["psi"]}, observations)

    def alignment_loss(self, params, batch):
        phi = self.phi(params, batch["observations"])  # (E, B, D)
        psi = self.psi(params, batch["value_goals"])  # s+: geometric future states
        logits = jnp.einsum("eid,ejd->eij", phi, psi) / math.sqrt(self.config.latent_dim)
        batch = logits.shape[-1]  # TRA's code averages over all B x B pairs: the per-sample NCE / B
        nce = (losses.infonce_loss(logits, axis=-1) + losses.infonce_loss(logits, axis=-2)) / batch
        reg = self.config.repr_reg * (jnp.mean(phi ** 2) + jnp.mean(psi ** 2))
        accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == jnp.arange(logits.shape[-1]))
        loss = self.config.alignment * nce + reg
        return loss, {"alignment/nce": nce, "alignment/accuracy": accuracy,
                      "alignment/logits_positive": jnp.mean(jnp.diagonal(logits, axis1=-2, axis2=-1)),
                      "alignment/logits_all": jnp.mean(logits)}

    def policy_mean(self, params, observations, goals):
        """mu(mean_e phi_e(s), mean_e psi_e(g)); with FiLM, mu(f(s; mean_e psi_e(g)))."""
        rep_g = jnp.mean(self.psi(params, goals), axis=0)
        first = observations if self.film(self.config) else jnp.mean(self.phi(params, observations), axis=0)
        return self.networks["actor"].apply({"params": params["actor"]}, first, rep_g)

    def actor_loss(self, params, batch):
        mean = self.policy_mean(params, batch["observations"], batch["actor_goals"])
        log_prob = losses.gaussian_log_prob(batch["actions"], mean, self.config.policy_std)
        return -jnp.mean(log_prob), {"actor/loss": -jnp.mean(log_prob), "actor/bc_log_prob": jnp.mean(log_prob),
                                     "actor/mse": jnp.mean(jnp.square(jnp.clip(mean, -1, 1) - batch["actions"]))}

    def value_estimate(self, observations, goals):
        """mean_e phi_e(s) . psi_e(g) / sqrt(D): the alignment score; higher is closer (no step scale, so
        the graph planner does not use it)."""
        logits = jnp.sum(self.phi(self.params, observations) * self.psi(self.params, goals), axis=-1)
        return jnp.mean(logits, axis=0) / math.sqrt(self.config.latent_dim)
