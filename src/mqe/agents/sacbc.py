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
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from mqe import losses
from mqe.agents.common import AgentState, value_goal_sampler
from mqe.encoders import goal_concat_encoded
from mqe.networks import GoalConditionedValue, TanhGaussianPolicy
from mqe.sampling import GoalSamplerConfig

Q_AGGREGATIONS = ("min", "mean")


@dataclasses.dataclass(frozen=True)
class SACBCConfig:
    """The horizon-reduction repository's n-step SAC+BC defaults."""

    batch_size: int = 1024  # transitions per update
    value_hidden_dims: tuple[int, ...] = (1024, 1024, 1024, 1024)  # critic widths (GELU + LayerNorm)
    actor_hidden_dims: tuple[int, ...] = (1024, 1024, 1024, 1024)  # actor widths (GELU + LayerNorm)
    layer_norm: bool = True  # LayerNorm in critic and actor
    discount: float = 0.999  # gamma
    nstep: int = 25  # n: backup window (1 = one-step SAC+BC)
    tau: float = 0.005  # Polyak rate of the target critic
    q_aggregation: str = "min"  # min | mean over the two target heads
    alpha: float = 0.1  # BC coefficient (scaled by the batch's mean |Q|)
    entropy_scale: float = 0.5  # target entropy = -entropy_scale * action_dim
    value_p_curgoal: float = 0.2  # value goals: current state
    value_p_trajgoal: float = 0.5  # value goals: uniform future state of the trajectory
    value_p_randomgoal: float = 0.3  # value goals: random dataset state
    actor_p_randomgoal: float = 0.5  # actor goals: random state (else a future state of the trajectory)
    actor_geom_sample: bool = True  # future actor goals: geometric (discount) if True, else uniform
    learning_rate: float = 3e-4  # Adam
    encoder: str | None = None  # image encoder (mqe.encoders.ENCODERS, e.g. impala_small); None for states
    crop_prob: float = 0.0  # random-crop augmentation probability per batch (OGBench's p_aug; pixels only)

    def __post_init__(self):
        if self.q_aggregation not in Q_AGGREGATIONS:
            raise ValueError(f"q_aggregation must be one of {Q_AGGREGATIONS}, got {self.q_aggregation!r}")
        if self.nstep < 1:
            raise ValueError(f"nstep must be >= 1, got {self.nstep}")

    def sampler(self) -> GoalSamplerConfig:
        # OGBench's value-goal mix, but uniform (not geometric) future goals and n-step success targets
        return value_goal_sampler(self, value_geom_sample=False, actor_geom_sample=self.actor_geom_sample,
                                  gc_negative=False, nstep=self.nstep)


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
