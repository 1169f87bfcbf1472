"""GCIQL: goal-conditioned implicit Q-learning with DDPG+BC (default) or AWR extraction (OGBench's baseline).

Networks: V(s, g); Q_1, Q_2(s, a, g) with Polyak targets Q'_k; the policy. r, m from the value goal g.
  L_V  = mean[ |kappa - 1(q - V < 0)| (q - V(s, g))^2 ],   q = min_k Q'_k(s, a, g)
  L_Q  = sum_k mean[ (Q_k(s, a, g) - (r + gamma m sg V(s', g)))^2 ]
Actor on the actor goal g:
  ddpgbc: q = min_k Q_k(s, clip(mu(s, g)), g) (critic frozen);  L = -mean q / sg(mean|q|) - alpha mean log pi(a|s,g)
  awr:    A = min_k Q_k(s, a, g) - V(s, g);                        L = -mean[min(exp(alpha A), 100) log pi(a|s,g)]

Hyperparameters: ``mqe.agents.configs.GCIQLConfig`` (every field commented).
"""

from __future__ import annotations


import jax
import jax.numpy as jnp

from mqe import losses
from mqe.agents.common import AgentState, value_steps
from mqe.encoders import goal_encoded
from mqe.networks import GaussianPolicy, GoalConditionedValue


class GCIQLAgent(AgentState):
    TARGETS = ("critic",)

    @staticmethod
    def build_networks(c, action_dim):
        goal = lambda net: goal_encoded(c.encoder, c.goal_conditioning, net)  # each network its own encoder
        return {"value": goal(GoalConditionedValue(c.value_hidden_dims, 1, c.layer_norm)),
                "critic": goal(GoalConditionedValue(c.value_hidden_dims, 2, c.layer_norm)),
                "actor": goal(GaussianPolicy(c.actor_hidden_dims, action_dim))}

    @staticmethod
    def example_inputs(obs, act, config):
        return {"value": (obs, obs), "critic": (obs, obs, act), "actor": (obs, obs)}

    def v(self, params, observations, goals):
        return self.networks["value"].apply({"params": params}, observations, goals)[0]

    def q(self, params, observations, actions, goals):
        """Q_k(s, a, g) for both heads: (2, ...)."""
        return self.networks["critic"].apply({"params": params}, observations, goals, actions)

    def critic_loss(self, params, batch):
        c = self.config
        obs, act, goals = batch["observations"], batch["actions"], batch["value_goals"]
        q_target = jnp.min(self.q(self.target_params["critic"], obs, act, goals), axis=0)
        v = self.v(params["value"], obs, goals)
        value_loss = jnp.mean(losses.expectile_loss(jax.lax.stop_gradient(q_target) - v, c.expectile))
        next_v = jax.lax.stop_gradient(self.v(params["value"], batch["next_observations"], goals))
        y = batch["rewards"] + c.discount * batch["masks"] * next_v
        q = self.q(params["critic"], obs, act, goals)
        critic_loss = jnp.sum(jnp.mean(jnp.square(q - y), axis=-1))
        return value_loss + critic_loss, {
            "value/loss": value_loss, "value/v_mean": jnp.mean(v), "critic/loss": critic_loss,
            "critic/q_mean": jnp.mean(q), "critic/q_min": jnp.min(q), "critic/q_max": jnp.max(q)}

    def actor_loss(self, params, batch):
        c = self.config
        if c.actor_loss == "ddpgbc":
            return self.ddpg_bc_actor_loss(
                params, batch, lambda p, o, a, g: jnp.min(self.q(p["critic"], o, a, g), axis=0))
        obs, goals = batch["observations"], batch["actor_goals"]
        mean = self.policy_mean(params, obs, goals)
        log_prob = losses.gaussian_log_prob(batch["actions"], mean, c.policy_std)
        adv = (jnp.min(self.q(params["critic"], obs, batch["actions"], goals), axis=0)
               - self.v(params["value"], obs, goals))  # awr_loss stops its gradient
        loss = losses.awr_loss(adv, log_prob, c.alpha)
        return loss, {"actor/loss": loss, "actor/adv": jnp.mean(adv), "actor/bc_log_prob": jnp.mean(log_prob),
                      "actor/mse": jnp.mean(jnp.square(jnp.clip(mean, -1, 1) - batch["actions"]))}

    def value_estimate(self, observations, goals):
        """V(s, g): higher is closer."""
        return self.v(self.params["value"], observations, goals)

    def steps_functions(self):
        """Steps to the goal from the value (reward -1 per step until the goal; ``common.value_steps``)."""
        return value_steps(self, self.config.discount)
