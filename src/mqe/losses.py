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


def awr_loss(advantage: jax.Array, log_prob: jax.Array, temperature: float, max_weight: float = 100.0) -> jax.Array:
    """Advantage-weighted regression: -mean[min(exp(temperature * A), max_weight) * log pi(a | s, g)].

    The advantage is treated as a constant (stop-gradient); the cap keeps rare large advantages from
    dominating the batch.
    """
    weight = jnp.minimum(jnp.exp(temperature * jax.lax.stop_gradient(advantage)), max_weight)
    return -jnp.mean(weight * log_prob)


def ddpg_bc_loss(q: jax.Array, log_prob: jax.Array, alpha: float) -> tuple[jax.Array, jax.Array]:
    """DDPG+BC: (-mean q / sg(mean |q| + 1e-6), -alpha mean log pi(a_data | s, g)); returns both terms.

    Dividing by the batch's mean |q| makes the BC coefficient alpha independent of the value scale.
    """
    q_loss = -jnp.mean(q) / jax.lax.stop_gradient(jnp.mean(jnp.abs(q)) + 1e-6)
    return q_loss, -alpha * jnp.mean(log_prob)


def binary_nce_loss(logits: jax.Array) -> jax.Array:
    """Binary contrastive loss over a (..., B, B) logit matrix, positives on the diagonal:
    mean_ij BCE(sigmoid(l_ij), 1[i == j]) = mean[-I log s(l) - (1 - I) log(1 - s(l))]."""
    eye = jnp.eye(logits.shape[-1], dtype=logits.dtype)
    return jnp.mean(eye * -jax.nn.log_sigmoid(logits) + (1.0 - eye) * -jax.nn.log_sigmoid(-logits))


def infonce_loss(logits: jax.Array, axis: int = -1) -> jax.Array:
    """Softmax cross-entropy over ``axis`` of a (..., B, B) logit matrix with positives on the diagonal:
    mean_i -log softmax(l)_ii. ``axis=-1`` normalises over goals for each row, ``axis=-2`` over rows
    (state-actions) for each goal."""
    log_p = jax.nn.log_softmax(logits, axis=axis)
    return -jnp.mean(jnp.diagonal(log_p, axis1=-2, axis2=-1))


def tanh_gaussian_sample(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Reparameterised a = tanh(mean + std * eps) and its log-density, summed over the action axis:
    log pi(a) = log N(u; mean, std) - sum log(1 - tanh(u)^2), with the stable
    log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2 u))."""
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    log_prob = gaussian_log_prob(u, mean, jnp.exp(log_std))
    log_prob -= jnp.sum(2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u)), axis=-1)
    return jnp.tanh(u), log_prob


def sac_policy_losses(log_prob: jax.Array, q: jax.Array, log_temperature: jax.Array,
                      target_entropy: float) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """SAC's policy and temperature losses for reparameterised samples a ~ pi with log-density
    ``log_prob`` and critic value ``q`` (both (B,)); lambda = exp(log_temperature):
      L_pi  = mean[sg(lambda) log pi(a) - q]
      L_lam = lambda (H - H_target),  H = -mean sg(log pi(a))
    Returns (L_pi, L_lam, H, lambda)."""
    temperature = jnp.exp(log_temperature)
    policy_loss = jnp.mean(jax.lax.stop_gradient(temperature) * log_prob - q)
    entropy = -jnp.mean(jax.lax.stop_gradient(log_prob))
    return policy_loss, temperature * (entropy - target_entropy), entropy, temperature
