"""GCIQL: goal-conditioned implicit Q-learning with DDPG+BC (default) or AWR extraction (OGBench's baseline).

Networks: V(s, g); Q_1, Q_2(s, a, g) with Polyak targets Q'_k; the policy. r, m from the value goal g.
  L_V  = mean[ |kappa - 1(q - V < 0)| (q - V(s, g))^2 ],   q = min_k Q'_k(s, a, g)
  L_Q  = sum_k mean[ (Q_k(s, a, g) - (r + gamma m sg V(s', g)))^2 ]
Actor on the actor goal g:
  ddpgbc: q = min_k Q_k(s, clip(mu(s, g)), g) (critic frozen);  L = -mean q / sg(mean|q|) - alpha mean log pi(a|s,g)
  awr:    A = min_k Q_k(s, a, g) - V(s, g);                        L = -mean[min(exp(alpha A), 100) log pi(a|s,g)]
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from mqe import losses
from mqe.agents.common import AgentState, value_goal_sampler, value_steps
from mqe.encoders import encoder_settings_problem, goal_encoded
from mqe.networks import GaussianPolicy, GoalConditionedValue
from mqe.sampling import GoalSamplerConfig

ACTOR_LOSSES = ("ddpgbc", "awr")


@dataclasses.dataclass(frozen=True)
class GCIQLConfig:
    """OGBench's GCIQL defaults (per-dataset alpha in the presets)."""

    batch_size: int = 1024  # transitions per update
    value_hidden_dims: tuple[int, ...] = (512, 512, 512)  # V and Q widths (GELU + LayerNorm)
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512)  # policy MLP widths (no LayerNorm)
    layer_norm: bool = True  # LayerNorm in V and Q
    discount: float = 0.99  # gamma; also the geometric value-goal horizon
    tau: float = 0.005  # Polyak rate of the target critic
    expectile: float = 0.9  # kappa of the expectile value loss
    actor_loss: str = "ddpgbc"  # ddpgbc | awr
    alpha: float = 0.3  # BC coefficient (ddpgbc) or AWR inverse temperature (awr)
    policy_std: float = 1.0  # constant std of the Gaussian policy
    value_p_curgoal: float = 0.2  # value goals: current state
    value_p_trajgoal: float = 0.5  # value goals: future state of the trajectory (geometric)
    value_p_randomgoal: float = 0.3  # value goals: random dataset state
    actor_p_randomgoal: float = 0.0  # actor goals: random state (else uniform future); 0.5 on stitch
    learning_rate: float = 3e-4  # Adam
    encoder: str | None = None  # image encoder (mqe.encoders.ENCODERS, e.g. impala_small); None for states
    crop_prob: float = 0.0  # random-crop augmentation probability per batch (OGBench's p_aug; pixels only)
    goal_conditioning: str = "concat"  # images: goal by channel stacking (concat, OGBench) or FiLM (film, ResNets; Bridge)
    encoder_weights: str | None = None  # ResNet encoders: torchvision/timm ResNet-34 weights file loaded into every backbone

    def __post_init__(self):
        if self.actor_loss not in ACTOR_LOSSES:
            raise ValueError(f"actor_loss must be one of {ACTOR_LOSSES}, got {self.actor_loss!r}")
        problem = encoder_settings_problem(self)
        if problem:
            raise ValueError(f"GCIQLConfig: {problem}")

    def sampler(self) -> GoalSamplerConfig:
        return value_goal_sampler(self)


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
