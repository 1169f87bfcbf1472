"""Loss functions that agents compose (pure JAX, elementwise unless stated; the math is in each docstring)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def linex_backup_loss(
    d: jax.Array, d_target: jax.Array, steps: jax.Array, gamma: float, clip: float = 5.0
) -> jax.Array:
    """MQE's multistep backup as a LINEX (Bregman) loss, elementwise.

    With delta = d - d_target (d_target already stop-gradiented by the caller)::

        l = gamma**steps * exp(delta) - d    if delta <= clip
        l = delta                            otherwise (linear tail: gradient 1, no overflow)

    dl/dd = gamma**steps * exp(delta) - 1 vanishes exactly at d = d_target + steps * |log gamma|:
    the distance to the goal is pulled towards "the waypoint's distance plus ``steps`` steps". The loss
    is convex in d, so over-estimates are penalised exponentially and under-estimates linearly.
    """
    delta = d - d_target
    discount = jnp.power(gamma, steps.astype(d.dtype))
    # Evaluate exp only where it is used: exp(large) in the unused branch would poison gradients.
    linex = discount * jnp.exp(jnp.minimum(delta, clip)) - d
    return jnp.where(delta <= clip, linex, delta)


def linex_target(d_target: jax.Array, steps: jax.Array, gamma: float) -> jax.Array:
    """The minimiser of ``linex_backup_loss`` over d: d_target + steps * |log gamma|."""
    return d_target + steps * abs(math.log(gamma))


def expectile_loss(diff: jax.Array, expectile: float) -> jax.Array:
    """Asymmetric squared loss |tau - 1[diff < 0]| * diff**2 (IQL); tau = 0.5 is half the MSE."""
    weight = jnp.where(diff >= 0, expectile, 1.0 - expectile)
    return weight * jnp.square(diff)


def gaussian_log_prob(actions: jax.Array, mean: jax.Array, std: float | jax.Array) -> jax.Array:
    """log N(actions; mean, std^2 I), summed over the last (action) axis."""
    z = (actions - mean) / std
    log_norm = jnp.log(std) + 0.5 * math.log(2.0 * math.pi)
    return jnp.sum(-0.5 * jnp.square(z) - log_norm, axis=-1)


def weighted_pair_mean(values: jax.Array, diagonal_weight: float) -> jax.Array:
    """(1 - w) * mean over all (i, j) + w * mean over the diagonal (i, i), over the last two axes."""
    diag = jnp.diagonal(values, axis1=-2, axis2=-1)
    return (1.0 - diagonal_weight) * jnp.mean(values, axis=(-2, -1)) + diagonal_weight * jnp.mean(
        diag, axis=-1
    )
