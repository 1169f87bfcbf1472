"""Flax (linen) networks: MLP, ensembles of MLPs, and the constant-std Gaussian policy (spec section 1)."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

glorot_uniform = nn.initializers.xavier_uniform()


class MLP(nn.Module):
    """Dense -> GELU(tanh approx.) [-> LayerNorm] per hidden layer, then a plain Dense output."""

    hidden_dims: Sequence[int]
    output_dim: int
    layer_norm: bool = False
    output_init_scale: float | None = None  # None: Glorot-uniform; else variance scaling (fan_avg)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden_dims:
            x = nn.Dense(width, kernel_init=glorot_uniform)(x)
            x = nn.gelu(x, approximate=True)
            if self.layer_norm:
                x = nn.LayerNorm(epsilon=1e-6)(x)
        if self.output_init_scale is None:
            out_init = glorot_uniform
        else:
            out_init = nn.initializers.variance_scaling(self.output_init_scale, "fan_avg", "uniform")
        return nn.Dense(self.output_dim, kernel_init=out_init)(x)


class EnsembleMLP(nn.Module):
    """E independent MLPs on the same input: (..., in) -> (E, ..., out). Also psi(x), the state encoder."""

    hidden_dims: Sequence[int]
    output_dim: int
    ensemble_size: int = 2
    layer_norm: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        # E separate member modules (independent initialisation from their names), stacked: XLA on
        # CPU runs E plain matmuls ~15% faster than one batched matmul, forward and backward.
        return jnp.stack([
            MLP(self.hidden_dims, self.output_dim, self.layer_norm, name=f"member_{e}")(x)
            for e in range(self.ensemble_size)
        ])


class StateActionEncoder(nn.Module):
    """phi(s, a): an ensemble MLP on concat(s, a) -> (E, ..., D)."""

    hidden_dims: Sequence[int]
    latent_dim: int
    ensemble_size: int = 2
    layer_norm: bool = True

    @nn.compact
    def __call__(self, observations: jax.Array, actions: jax.Array) -> jax.Array:
        x = jnp.concatenate([observations, actions], axis=-1)
        return EnsembleMLP(self.hidden_dims, self.latent_dim, self.ensemble_size, self.layer_norm)(x)


class GaussianPolicy(nn.Module):
    """pi(a | s, g) = N(mu(s, g), std^2 I) with a constant std; returns the (unclipped) mean."""

    hidden_dims: Sequence[int]
    action_dim: int
    mean_init_scale: float = 1e-2  # small initial actions: the BC term dominates early

    @nn.compact
    def __call__(self, observations: jax.Array, goals: jax.Array) -> jax.Array:
        x = jnp.concatenate([observations, goals], axis=-1)
        return MLP(self.hidden_dims, self.action_dim, layer_norm=False,
                   output_init_scale=self.mean_init_scale)(x)


class GoalConditionedValue(nn.Module):
    """V(s, g) or Q(s, a, g): an ensemble MLP on concat(s, g[, a]) with a scalar head -> (E, ...)."""

    hidden_dims: Sequence[int]
    ensemble_size: int = 2
    layer_norm: bool = True

    @nn.compact
    def __call__(self, observations: jax.Array, goals: jax.Array, actions: jax.Array | None = None) -> jax.Array:
        parts = [observations, goals] if actions is None else [observations, goals, actions]
        x = jnp.concatenate(parts, axis=-1)
        return EnsembleMLP(self.hidden_dims, 1, self.ensemble_size, self.layer_norm)(x)[..., 0]


class TanhGaussianPolicy(nn.Module):
    """pi(a | s, g) = tanh(N(mu, sigma^2)) with a state-dependent std: returns (mean, log_std) of the
    pre-tanh Gaussian (log_std clipped to [-5, 2])."""

    hidden_dims: Sequence[int]
    action_dim: int
    layer_norm: bool = True
    init_scale: float = 1e-2

    @nn.compact
    def __call__(self, observations: jax.Array, goals: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = jnp.concatenate([observations, goals], axis=-1)
        out = MLP(self.hidden_dims, 2 * self.action_dim, self.layer_norm, output_init_scale=self.init_scale)(x)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, jnp.clip(log_std, -5.0, 2.0)
