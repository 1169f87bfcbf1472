"""QRL: quasimetric RL (Wang et al., 2023) as in OGBench, with DDPG+BC extraction through a latent model.

Value: an IQE quasimetric d on phi(.) (64 components of 8 dims by default; components mixed as
a mean + (1 - a) max with a = sigmoid(p), p learned). Random goals g, next states s':
  L_d   = mean 100 softplus(5 - d(s, g) / 100) + sg(lambda) mean relu(d(s, s') - 1)^2
  L_lam = lambda (eps - sg(mean relu(d(s, s') - 1)^2)),   lambda = exp(log_lambda)   (dual ascent)
Latent dynamics z' ~ z + f(z, a), z = phi(s):
  L_f   = mean (d(phi(s'), z_hat) + d(z_hat, phi(s'))) / 2
Actor (phi, f frozen): q = -d(phi(s) + f(phi(s), clip(mu(s, g))), phi(g)); DDPG+BC.

Hyperparameters: ``mqe.agents.configs.QRLConfig`` (every field commented).
"""

from __future__ import annotations


import flax.linen as nn
import jax
import jax.numpy as jnp

from mqe.agents.common import AgentState, StepsFunctions
from mqe.encoders import encoded, goal_concat_encoded
from mqe.networks import MLP, GaussianPolicy
from mqe.quasimetric import iqe_distance


class IQEHead(nn.Module):
    """phi(x) and the learned component-mixing logit of the IQE distance."""

    hidden_dims: tuple[int, ...]
    latent_dim: int
    layer_norm: bool

    @nn.compact
    def __call__(self, x):
        mix_logit = self.param("mix_logit", nn.initializers.zeros, ())
        return MLP(self.hidden_dims, self.latent_dim, self.layer_norm, name="phi")(x), mix_logit


class QRLAgent(AgentState):
    LOSSES = ("value_loss", "actor_loss")

    SCALARS = ("log_lambda",)

    @staticmethod
    def build_networks(c, action_dim):
        # Pixels: one (Siamese) encoder inside the value network for states and goals; the actor its own.
        return {"value": encoded(c.encoder, IQEHead(c.value_hidden_dims, c.latent_dim, c.layer_norm)),
                "dynamics": MLP(c.dynamics_hidden_dims, c.latent_dim, c.layer_norm),
                "actor": goal_concat_encoded(c.encoder, GaussianPolicy(c.actor_hidden_dims, action_dim))}

    @staticmethod
    def example_inputs(obs, act, config):
        z = jnp.zeros((obs.shape[0], config.latent_dim))
        return {"value": (obs,), "dynamics": (jnp.concatenate([z, act], -1),), "actor": (obs, obs)}

    def embed(self, params, x):
        """(phi(x), mix logit)."""
        return self.networks["value"].apply({"params": params["value"]}, x)

    def latent_distance(self, z, z_goal, mix_logit):
        """IQE on latents: a mean_c + (1 - a) max_c of the component lengths, a = sigmoid(mix_logit)."""
        components = self.config.latent_dim // self.config.component_dim
        return iqe_distance(z, z_goal, components, alpha=1.0 - jax.nn.sigmoid(mix_logit), distance_scale="c")

    def predict(self, params, z, actions):
        return z + self.networks["dynamics"].apply({"params": params["dynamics"]}, jnp.concatenate([z, actions], -1))

    def value_loss(self, params, batch):
        c = self.config
        z, mix = self.embed(params, batch["observations"])
        z_next, _ = self.embed(params, batch["next_observations"])
        z_goal, _ = self.embed(params, batch["value_goals"])
        d_neg = self.latent_distance(z, z_goal, mix)
        d_pos = self.latent_distance(z, z_next, mix)
        neg_loss = jnp.mean(100.0 * jax.nn.softplus(5.0 - d_neg / 100.0))
        pos_loss = jnp.mean(jnp.square(jax.nn.relu(d_pos - 1.0)))
        lam = jnp.exp(params["log_lambda"])
        lam_loss = lam * (c.eps - jax.lax.stop_gradient(pos_loss))
        z_hat = self.predict(params, z, batch["actions"])
        dyn_loss = jnp.mean((self.latent_distance(z_next, z_hat, mix) + self.latent_distance(z_hat, z_next, mix)) / 2)
        loss = neg_loss + jax.lax.stop_gradient(lam) * pos_loss + lam_loss + dyn_loss
        return loss, {"value/d_neg_loss": neg_loss, "value/d_pos_loss": pos_loss, "value/lambda": lam,
                      "value/d_random_goal": jnp.mean(d_neg), "value/d_next": jnp.mean(d_pos),
                      "dynamics/loss": dyn_loss}

    def actor_loss(self, params, batch):
        def q_fn(p, observations, actions, goals):
            z, mix = self.embed(p, observations)
            return -self.latent_distance(self.predict(p, z, actions), self.embed(p, goals)[0], mix)

        return self.ddpg_bc_actor_loss(params, batch, q_fn)


    def distance(self, observations, goals):
        """Learned d(phi(s), phi(g)): (1, ...) (a single quasimetric, no ensemble)."""
        z, mix = self.embed(self.params, observations)
        z_goal, _ = self.embed(self.params, goals)
        return self.latent_distance(z, z_goal, mix)[None]

    def step_distance(self) -> float:
        """The distance of one environment step: 1 (the constraint d(s, s') <= 1 makes one step worth 1)."""
        return 1.0

    def steps_functions(self) -> StepsFunctions:
        """Steps to the goal: the IQE distance itself."""
        embed = lambda x: self.embed(self.params, x)
        return StepsFunctions(embed, embed, lambda a, b: self.latent_distance(a[0], b[0], a[1]),
                              "IQE distance (one step = 1)")
