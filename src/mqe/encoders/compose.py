"""Putting an image encoder in front of a network, the two ways OGBench's pixel agents do it.

- ``Encoded(encoder, net)``: net(f(x), *rest). The first input is encoded on its own; a network called
  on states and on goals (QRL's value, CMD's critic) applies the same encoder to both (a Siamese encoder).
- ``GoalConcatEncoded(encoder, net)``: net(f([s; g]), None, *rest). Observation and goal images are
  stacked along the channel axis (6 channels for RGB) and encoded together, as OGBench's actors and
  GCIVL/GCIQL values do; ``net`` receives ``None`` for its goal input.
- ``FiLMConditioned(encoder, net)``: net(f(s; c), None, *rest) for a given vector c (TRA-g's actor, c = psi(g)).
- ``FiLMGoalEncoded(encoder, net)``: net(f(s; f(g)), None, *rest). A ResNet backbone encodes the goal
  image, and that embedding modulates every residual block while it encodes the observation (FiLM): the
  MQE paper's Bridge actor. The stem sees 3 channels, so ImageNet weights fit it.

The encoder's parameters live inside the wrapped network's, so every network gets its own encoder and a
target copy of a network is a Polyak copy of its encoder too (OGBench's layout). Agents that share one
encoder between networks (MQE, TMD: phi and psi) keep it as a network of its own instead.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from mqe.encoders.impala import make_encoder
from mqe.encoders.names import GOAL_CONDITIONINGS, encoder_settings_problem  # noqa: F401  (re-exported)


class Encoded(nn.Module):
    """net(encoder(x), *rest)."""

    encoder: str
    net: nn.Module

    @nn.compact
    def __call__(self, x: jax.Array, *rest: Any) -> Any:
        return self.net(make_encoder(self.encoder, name="encoder")(x), *rest)


class GoalConcatEncoded(nn.Module):
    """net(encoder(concat([s, g], channels)), None, *rest)."""

    encoder: str
    net: nn.Module

    @nn.compact
    def __call__(self, observations: jax.Array, goals: jax.Array, *rest: Any) -> Any:
        stacked = jnp.concatenate(jnp.broadcast_arrays(observations, goals), axis=-1)
        return self.net(make_encoder(self.encoder, name="encoder")(stacked), None, *rest)


class FiLMGoalEncoded(nn.Module):
    """net(encoder(s, condition=encoder(g)), None, *rest): one backbone, two passes."""

    encoder: str
    net: nn.Module

    @nn.compact
    def __call__(self, observations: jax.Array, goals: jax.Array, *rest: Any) -> Any:
        observations, goals = jnp.broadcast_arrays(observations, goals)
        backbone = make_encoder(self.encoder, name="encoder")
        return self.net(backbone(observations, backbone(goals)), None, *rest)


class FiLMConditioned(nn.Module):
    """net(encoder(s, condition=c), None, *rest): a backbone that encodes the observation modulated by a
    given vector (TRA-g's actor: the learned goal representation psi(g))."""

    encoder: str
    net: nn.Module

    @nn.compact
    def __call__(self, observations: jax.Array, condition: jax.Array, *rest: Any) -> Any:
        return self.net(make_encoder(self.encoder, name="encoder")(observations, condition), None, *rest)


def goal_encoded(encoder: str | None, conditioning: str, net: nn.Module) -> nn.Module:
    """``net`` for states; for images the goal enters by channel stacking (``concat``, OGBench) or by FiLM
    (``film``, ResNet encoders only)."""
    problem = encoder_settings_problem(SimpleNamespace(encoder=encoder, goal_conditioning=conditioning))
    if problem:
        raise ValueError(problem)
    if encoder is None:
        return net
    return FiLMGoalEncoded(encoder, net) if conditioning == "film" else GoalConcatEncoded(encoder, net)


def encoded(encoder: str | None, net: nn.Module) -> nn.Module:
    """``net`` unchanged for state observations (``encoder`` None), else ``Encoded(encoder, net)``."""
    return net if encoder is None else Encoded(encoder, net)


def goal_concat_encoded(encoder: str | None, net: nn.Module) -> nn.Module:
    """``net`` unchanged for state observations (``encoder`` None), else ``GoalConcatEncoded``."""
    return net if encoder is None else GoalConcatEncoded(encoder, net)
