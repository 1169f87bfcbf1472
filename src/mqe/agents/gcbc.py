"""GCBC: goal-conditioned behaviour cloning (OGBench's baseline).

  L = -mean_i log pi(a_i | s_i, g_i),   g_i uniform over the future states of s_i's trajectory.

Deterministic actions at evaluation: the policy mean, clipped to [-1, 1].
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from mqe import losses
from mqe.agents.common import AgentState
from mqe.encoders import encoder_settings_problem, goal_encoded
from mqe.networks import GaussianPolicy
from mqe.sampling import GoalSamplerConfig


@dataclasses.dataclass(frozen=True)
class GCBCConfig:
    """OGBench's GCBC defaults."""

    batch_size: int = 1024  # transitions per update
    actor_hidden_dims: tuple[int, ...] = (512, 512, 512)  # policy MLP widths (no LayerNorm)
    policy_std: float = 1.0  # constant std of the Gaussian policy
    actor_p_randomgoal: float = 0.0  # fraction of random (instead of future) actor goals
    learning_rate: float = 3e-4  # Adam
    encoder: str | None = None  # image encoder (mqe.encoders.ENCODERS, e.g. impala_small); None for states
    crop_prob: float = 0.0  # random-crop augmentation probability per batch (OGBench's p_aug; pixels only)
    goal_conditioning: str = "concat"  # images: goal by channel stacking (concat, OGBench) or FiLM (film, ResNets; Bridge)
    encoder_weights: str | None = None  # ResNet encoders: torchvision/timm ResNet-34 weights file loaded into every backbone

    def __post_init__(self):
        problem = encoder_settings_problem(self)
        if problem:
            raise ValueError(f"GCBCConfig: {problem}")

    def sampler(self) -> GoalSamplerConfig:
        return GoalSamplerConfig(batch_size=self.batch_size, actor_p_trajgoal=1.0 - self.actor_p_randomgoal,
                                 actor_p_randomgoal=self.actor_p_randomgoal)


class GCBCAgent(AgentState):
    LOSSES = ("actor_loss",)

    @staticmethod
    def build_networks(config, action_dim):
        return {"actor": goal_encoded(config.encoder, config.goal_conditioning,
                                      GaussianPolicy(config.actor_hidden_dims, action_dim))}

    @staticmethod
    def example_inputs(obs, act, config):
        return {"actor": (obs, obs)}

    def actor_loss(self, params, batch):
        mean = self.policy_mean(params, batch["observations"], batch["actor_goals"])
        log_prob = losses.gaussian_log_prob(batch["actions"], mean, self.config.policy_std)
        return -jnp.mean(log_prob), {"actor/loss": -jnp.mean(log_prob), "actor/bc_log_prob": jnp.mean(log_prob),
                                     "actor/mse": jnp.mean(jnp.square(jnp.clip(mean, -1, 1) - batch["actions"]))}


