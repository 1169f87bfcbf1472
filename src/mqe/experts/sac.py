"""Soft actor-critic for the locomotion experts that drive the maze data collection.

The policy is conditioned on a command c (the ant's unit XY direction): pi(a | s, c), Q_k(s, c, a).
  y     = r + gamma * mask * (min_k Q'_k(s', c', a') - lambda log pi(a' | s', c')),  a' ~ pi(. | s', c')
  L_Q   = sum_k mean (Q_k(s, c, a) - y)^2          (mask = 0 only when the episode terminated)
  L_pi  = mean[lambda log pi(a | s, c) - mean_k Q_k(s, c, a)],  a ~ pi(. | s, c) reparameterised
  L_lam = lambda * (H - H_target),  H = -mean sg(log pi),  H_target = -target_entropy_scale * |A|
Q' is a Polyak-averaged copy. The three losses are summed (stop-gradients keep them apart), one Adam.

The actor is evaluated on the host by ``NumpyActor`` (a few dense layers), so collecting one
environment step needs no device dispatch; the same class drives the maze data collection.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from mqe import losses
from mqe.agents.common import AgentState
from mqe.networks import GoalConditionedValue, TanhGaussianPolicy


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """OGBench's SAC settings for its locomotion experts."""

    batch_size: int = 256  # transitions per update
    actor_hidden_dims: tuple[int, ...] = (256, 256)  # actor widths
    value_hidden_dims: tuple[int, ...] = (256, 256)  # each Q-function's widths
    layer_norm: bool = False  # LayerNorm in the hidden layers (off for the ant)
    discount: float = 0.99  # gamma
    tau: float = 0.005  # Polyak rate of the target critics
    target_entropy_scale: float = 0.5  # target entropy = -scale * action_dim
    actor_init_scale: float = 1e-2  # variance scale of the actor's output layer (small initial actions)
    learning_rate: float = 1e-4  # Adam, all networks and the temperature
    total_steps: int = 400_000  # environment steps (one update per step after the random phase)
    random_steps: int = 10_000  # uniformly random actions first; updates start after them
    updates_per_chunk: int = 50  # env steps collected, then as many updates in one compiled call

    def __post_init__(self):
        if self.updates_per_chunk < 1 or self.random_steps % self.updates_per_chunk:
            raise ValueError("random_steps must be a multiple of updates_per_chunk (>= 1), got "
                             f"{self.random_steps} and {self.updates_per_chunk}")
        if self.total_steps % self.updates_per_chunk:
            raise ValueError(f"total_steps ({self.total_steps}) must be a multiple of updates_per_chunk "
                             f"({self.updates_per_chunk})")


class SACAgent(AgentState):
    TARGETS = ("critic",)
    SCALARS = ("log_temperature",)  # log lambda, initialised to 0 (lambda = 1)

    @staticmethod
    def build_networks(c, action_dim):
        return {"critic": GoalConditionedValue(c.value_hidden_dims, 2, c.layer_norm),
                "actor": TanhGaussianPolicy(c.actor_hidden_dims, action_dim, c.layer_norm, c.actor_init_scale)}

    @staticmethod
    def example_inputs(obs, act, config):
        state, command = obs  # SACAgent.create passes (states, commands)
        return {"critic": (state, command, act), "actor": (state, command)}

    @classmethod
    def create(cls, key, example_states, example_commands, example_actions, config):
        return super().create(key, (example_states, example_commands), example_actions, config)

    def q_values(self, critic_params, states, commands, actions):
        return self.networks["critic"].apply({"params": critic_params}, states, commands, actions)

    def policy(self, actor_params, states, commands):
        return self.networks["actor"].apply({"params": actor_params}, states, commands)

    def critic_loss(self, params, batch):
        c = self.config
        key = jax.random.fold_in(jax.random.wrap_key_data(batch["rng"]), 0)
        mean, log_std = self.policy(jax.lax.stop_gradient(params["actor"]), batch["next_states"], batch["next_commands"])
        next_actions, next_log_prob = losses.tanh_gaussian_sample(key, mean, log_std)
        next_q = jnp.min(self.q_values(self.target_params["critic"], batch["next_states"], batch["next_commands"],
                                       next_actions), axis=0)
        temperature = jnp.exp(jax.lax.stop_gradient(params["log_temperature"]))
        target = batch["rewards"] + c.discount * batch["masks"] * (next_q - temperature * next_log_prob)
        q = self.q_values(params["critic"], batch["states"], batch["commands"], batch["actions"])
        loss = jnp.sum(jnp.mean(jnp.square(q - jax.lax.stop_gradient(target)), axis=-1))
        return loss, {"critic/loss": loss, "critic/q_mean": jnp.mean(q), "critic/target_mean": jnp.mean(target)}

    def actor_loss(self, params, batch):
        c = self.config
        key = jax.random.fold_in(jax.random.wrap_key_data(batch["rng"]), 1)
        mean, log_std = self.policy(params["actor"], batch["states"], batch["commands"])
        actions, log_prob = losses.tanh_gaussian_sample(key, mean, log_std)
        q = jnp.mean(self.q_values(jax.lax.stop_gradient(params["critic"]), batch["states"], batch["commands"], actions),
                     axis=0)
        actor, temperature_loss, entropy, temperature = losses.sac_policy_losses(
            log_prob, q, params["log_temperature"], -c.target_entropy_scale * self.action_dim)
        return actor + temperature_loss, {"actor/loss": actor, "actor/entropy": entropy,
                                          "actor/temperature": temperature, "actor/std": jnp.mean(jnp.exp(log_std))}

    def sample_actions(self, states, commands):
        mean, _ = self.policy(self.params["actor"], states, commands)
        return jnp.tanh(mean)


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


class NumpyActor:
    """The tanh-Gaussian actor's forward pass in numpy (float32): no JAX needed to act.

    ``params`` is the Flax parameter tree of ``TanhGaussianPolicy`` (``MLP_0/Dense_i``, ``LayerNorm_i``).
    """

    def __init__(self, params: dict, layer_norm: bool = False):
        mlp = params["MLP_0"]
        count = sum(1 for k in mlp if k.startswith("Dense_"))
        self.layers = [(np.asarray(mlp[f"Dense_{i}"]["kernel"], np.float32), np.asarray(mlp[f"Dense_{i}"]["bias"], np.float32))
                       for i in range(count)]
        self.norms = [(np.asarray(mlp[f"LayerNorm_{i}"]["scale"], np.float32), np.asarray(mlp[f"LayerNorm_{i}"]["bias"], np.float32))
                      for i in range(count - 1)] if layer_norm else None
        self.action_dim = self.layers[-1][1].shape[0] // 2

    def mean_log_std(self, states: np.ndarray, commands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.concatenate([states, commands], axis=-1).astype(np.float32)
        for i, (w, b) in enumerate(self.layers[:-1]):
            x = _gelu_tanh(x @ w + b)
            if self.norms is not None:
                scale, bias = self.norms[i]
                mu = x.mean(-1, keepdims=True)
                var = np.square(x - mu).mean(-1, keepdims=True)
                x = (x - mu) / np.sqrt(var + 1e-6) * scale + bias
        w, b = self.layers[-1]
        out = x @ w + b
        mean, log_std = out[..., :self.action_dim], out[..., self.action_dim:]
        return mean, np.clip(log_std, -5.0, 2.0)

    def act(self, states: np.ndarray, commands: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """tanh(mean) when ``rng`` is None, else a sample tanh(mean + std * eps)."""
        mean, log_std = self.mean_log_std(states, commands)
        if rng is not None:
            mean = mean + np.exp(log_std) * rng.standard_normal(mean.shape).astype(np.float32)
        return np.tanh(mean)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat arrays for an ``.npz`` file (``load_actor`` reads them back)."""
        out = {}
        for i, (w, b) in enumerate(self.layers):
            out[f"dense_{i}/kernel"], out[f"dense_{i}/bias"] = w, b
        for i, (s, b) in enumerate(self.norms or []):
            out[f"layer_norm_{i}/scale"], out[f"layer_norm_{i}/bias"] = s, b
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "NumpyActor":
        count = sum(1 for k in arrays if k.startswith("dense_") and k.endswith("/kernel"))
        if count < 2:
            raise ValueError(f"expected arrays dense_0/kernel, dense_0/bias, ... (found {sorted(arrays)[:5]})")
        mlp = {f"Dense_{i}": {"kernel": arrays[f"dense_{i}/kernel"], "bias": arrays[f"dense_{i}/bias"]}
               for i in range(count)}
        layer_norm = any(k.startswith("layer_norm_") for k in arrays)
        if layer_norm:
            mlp.update({f"LayerNorm_{i}": {"scale": arrays[f"layer_norm_{i}/scale"], "bias": arrays[f"layer_norm_{i}/bias"]}
                        for i in range(count - 1)})
        return cls({"MLP_0": mlp}, layer_norm)
