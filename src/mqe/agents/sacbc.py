"""n-step SAC+BC (Park et al., 2025, "Horizon Reduction Makes RL Scalable"), goal-conditioned.

Critic logits z_k(s, a, g), k = 1, 2, trained by cross-entropy towards a discounted success probability.
With the window k' = min(n, steps to the trajectory end), cut at the value goal when it lies inside:
  y  = clip(success gamma^k' + (1 - success) gamma^k' agg_k sigmoid(z'_k(s_{t+k'}, a', g)), 0, 1),
       a' ~ pi(. | s_{t+k'}, g),  z' the Polyak target,  agg = min (or mean)
  L_Q = mean_k mean BCE(sigmoid(z_k(s, a, g)), y)
Actor (tanh Gaussian, reparameterised a ~ pi(. | s, g), critic frozen), temperature lambda auto-tuned:
  L_pi  = mean[lambda log pi(a) - mean_k z_k(s, a, g)] + alpha sg(mean |q|) mean ||a - a_data||^2
  L_lam = lambda (H - H_target),  H = -mean sg(log pi),  H_target = -entropy_scale * action_dim
Acting: tanh(mean).

Hyperparameters: ``mqe.agents.configs.SACBCConfig`` (every field commented).
"""

from __future__ import annotations


import jax
import jax.numpy as jnp

from mqe import losses
from mqe.agents.common import AgentState
from mqe.encoders import goal_concat_encoded
from mqe.networks import GoalConditionedValue, TanhGaussianPolicy


class SACBCAgent(AgentState):
    TARGETS = ("critic",)

    SCALARS = ("log_temperature",)

    @staticmethod
    def build_networks(c, action_dim):
        # Pixels: the reference (horizon-reduction) has no encoder; we use OGBench's standard layout, one
        # encoder per network on the stacked observation and goal images.
        return {"critic": goal_concat_encoded(c.encoder, GoalConditionedValue(c.value_hidden_dims, 2, c.layer_norm)),
                "actor": goal_concat_encoded(c.encoder, TanhGaussianPolicy(c.actor_hidden_dims, action_dim,
                                                                           c.layer_norm))}

    @staticmethod
    def example_inputs(obs, act, config):
        return {"critic": (obs, obs, act), "actor": (obs, obs)}

    def logits(self, critic_params, observations, actions, goals):
        return self.networks["critic"].apply({"params": critic_params}, observations, goals, actions)

    def policy(self, actor_params, observations, goals):
        return self.networks["actor"].apply({"params": actor_params}, observations, goals)

    def critic_loss(self, params, batch, key):
        c = self.config
        goals, nxt = batch["value_goals"], batch["nstep_next_observations"]
        mean, log_std = self.policy(jax.lax.stop_gradient(params["actor"]), nxt, goals)
        next_actions, _ = losses.tanh_gaussian_sample(key, mean, log_std)
        probs = jax.nn.sigmoid(self.logits(self.target_params["critic"], nxt, next_actions, goals))
        next_q = jnp.min(probs, axis=0) if c.q_aggregation == "min" else jnp.mean(probs, axis=0)
        discount = jnp.power(c.discount, batch["nstep_steps"].astype(jnp.float32))
        success = batch["nstep_success"]
        y = jax.lax.stop_gradient(jnp.clip(discount * (success + (1.0 - success) * next_q), 0.0, 1.0))
        z = self.logits(params["critic"], batch["observations"], batch["actions"], goals)
        loss = jnp.mean(-y * jax.nn.log_sigmoid(z) - (1.0 - y) * jax.nn.log_sigmoid(-z))
        return loss, {"critic/loss": loss, "critic/target_mean": jnp.mean(y), "critic/q_mean": jnp.mean(jax.nn.sigmoid(z))}

    def actor_loss(self, params, batch, key):
        c = self.config
        obs, goals = batch["observations"], batch["actor_goals"]
        mean, log_std = self.policy(params["actor"], obs, goals)
        actions, log_prob = losses.tanh_gaussian_sample(key, mean, log_std)
        q = jnp.mean(self.logits(jax.lax.stop_gradient(params["critic"]), obs, actions, goals), axis=0)
        sac_loss, temperature_loss, entropy, temperature = losses.sac_policy_losses(
            log_prob, q, params["log_temperature"], -c.entropy_scale * self.action_dim)
        mse = jnp.mean(jnp.sum(jnp.square(actions - batch["actions"]), axis=-1))
        bc_loss = c.alpha * jax.lax.stop_gradient(jnp.mean(jnp.abs(q))) * mse
        loss = sac_loss + temperature_loss + bc_loss
        return loss, {"actor/loss": loss, "actor/q_mean": jnp.mean(q), "actor/entropy": entropy,
                      "actor/temperature": temperature, "actor/mse": mse}

    def total_loss(self, params, batch):
        critic_key, actor_key = jax.random.split(jax.random.wrap_key_data(batch["rng"]))
        critic, critic_metrics = self.critic_loss(params, batch, critic_key)
        actor, actor_metrics = self.actor_loss(params, batch, actor_key)
        return critic + actor, {**critic_metrics, **actor_metrics, "total_loss": critic + actor}

    def sample_actions(self, observations, goals):
        mean, _ = self.policy(self.params["actor"], observations, goals)
        return jnp.tanh(mean)

    def value_estimate(self, observations, goals):
        """mean_k z_k(s, pi(s, g), g): the critic's logit at the policy's action; higher is closer."""
        return jnp.mean(self.logits(self.params["critic"], observations, self.sample_actions(observations, goals), goals),
                        axis=0)
