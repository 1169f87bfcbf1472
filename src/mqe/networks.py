"""Flax (linen) networks: MLP, ensembles of MLPs, and the constant-std Gaussian policy (spec section 1)."""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

glorot_uniform = nn.initializers.xavier_uniform()


@functools.lru_cache(maxsize=256)
def _compiled_init(module: nn.Module, shapes: tuple) -> Any:
    # Runs once per agent: XLA's backend optimisation (LLVM) would cost more than it saves, mostly on the
    # random initialisers (3x faster to compile for a pixel HIQL at level 0; the numbers are the same).
    args = jax.tree.unflatten(shapes[0], [jax.ShapeDtypeStruct(s, d) for s, d in shapes[1]])
    return jax.jit(module.init).lower(*args).compile(compiler_options={"xla_backend_optimization_level": 0})


def jitted_init(module: nn.Module):
    """``module.init`` compiled once per module and input shapes (linen modules compare by their fields):
    the same numbers as an eager init, without compiling every op of a CNN apart."""
    def init(*args):
        leaves, tree = jax.tree.flatten(args)
        shapes = (tree, tuple((tuple(np.shape(x)), jnp.result_type(x)) for x in leaves))
        return _compiled_init(module, shapes)(*args)

    return init


def join(*parts: jax.Array | None) -> jax.Array:
    """Concatenates the given inputs on the last axis, skipping ``None`` (an input an image encoder
    already folded in: ``mqe.encoders.GoalConcatEncoded`` passes its goals as None)."""
    return jnp.concatenate([p for p in parts if p is not None], axis=-1)


@jax.custom_vjp
def bf16_matmul(x: jax.Array, w: jax.Array) -> jax.Array:
    """x @ w with bfloat16 inputs and float32 accumulation and output, forward and backward.

    (..., n) @ (n, m) -> (..., m) in float32. The backward pass rounds the incoming gradient to bfloat16
    too, so all three matmuls of a layer run at the bf16 rate (autodiff of a cast would do the two
    gradient matmuls in float32). Parameters, their gradients and optimiser state stay float32.
    """
    return _bf16_matmul_fwd(x, w)[0]


def _bf16_matmul_fwd(x, w):
    xb, wb = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
    return jax.lax.dot_general(xb, wb, (((x.ndim - 1,), (0,)), ((), ())), preferred_element_type=jnp.float32), (xb, wb)


def _bf16_matmul_bwd(residuals, g):
    xb, wb = residuals
    gb = g.astype(jnp.bfloat16)
    gx = jax.lax.dot_general(gb, wb, (((g.ndim - 1,), (1,)), ((), ())), preferred_element_type=jnp.float32)
    rows = xb.reshape(-1, xb.shape[-1])
    gw = jax.lax.dot_general(rows, gb.reshape(-1, gb.shape[-1]), (((0,), (0,)), ((), ())),
                             preferred_element_type=jnp.float32)
    return gx, gw


bf16_matmul.defvjp(_bf16_matmul_fwd, _bf16_matmul_bwd)


def _bf16_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    """``nn.Dense``'s dot_general hook (it contracts the last input axis with the kernel's first)."""
    del precision, preferred_element_type
    (contract_lhs, contract_rhs), batch = dimension_numbers
    assert tuple(contract_lhs) == (lhs.ndim - 1,) and tuple(contract_rhs) == (0,) and batch == ((), ())
    return bf16_matmul(lhs, rhs)


def dense(features: int, matmul_dtype: str = "float32", **kwargs) -> nn.Dense:
    """A Dense layer whose matmul runs in ``matmul_dtype`` (float32 | bfloat16, see ``bf16_matmul``)."""
    if matmul_dtype == "bfloat16":
        return nn.Dense(features, dot_general=_bf16_dot_general, **kwargs)
    if matmul_dtype != "float32":
        raise ValueError(f"matmul_dtype must be float32 or bfloat16, got {matmul_dtype!r}")
    return nn.Dense(features, **kwargs)


class MLP(nn.Module):
    """Dense -> GELU(tanh approx.) [-> LayerNorm] per hidden layer, then a plain Dense output."""

    hidden_dims: Sequence[int]
    output_dim: int
    layer_norm: bool = False
    output_init_scale: float | None = None  # None: Glorot-uniform; else variance scaling (fan_avg)
    matmul_dtype: str = "float32"  # float32 | bfloat16 (bf16 inputs, float32 accumulation; see dense)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden_dims:
            x = dense(width, self.matmul_dtype, kernel_init=glorot_uniform)(x)
            x = nn.gelu(x, approximate=True)
            if self.layer_norm:
                x = nn.LayerNorm(epsilon=1e-6)(x)
        if self.output_init_scale is None:
            out_init = glorot_uniform
        else:
            out_init = nn.initializers.variance_scaling(self.output_init_scale, "fan_avg", "uniform")
        return dense(self.output_dim, self.matmul_dtype, kernel_init=out_init)(x)


class EnsembleMLP(nn.Module):
    """E independent MLPs on the same input: (..., in) -> (E, ..., out). Also psi(x), the state encoder."""

    hidden_dims: Sequence[int]
    output_dim: int
    ensemble_size: int = 2
    layer_norm: bool = True
    ensemble: str = "unroll"  # unroll | vmap: how the members run (mqe.kernels); same parameters either way
    matmul_dtype: str = "float32"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        # E separate member modules: independent initialisation from their names, one parameter layout.
        members = [MLP(self.hidden_dims, self.output_dim, self.layer_norm, matmul_dtype=self.matmul_dtype,
                       name=f"member_{e}") for e in range(self.ensemble_size)]
        if self.ensemble == "unroll" or self.is_initializing():
            # E plain matmul chains, stacked: ~15% faster than one batched chain on XLA's CPU backend.
            return jnp.stack([member(x) for member in members])
        if self.ensemble != "vmap":
            raise ValueError(f"ensemble must be unroll or vmap, got {self.ensemble!r}")
        # One chain of batched matmuls over the members' parameters stacked on a leading axis.
        stacked = jax.tree.map(lambda *p: jnp.stack(p), *(self.variables["params"][m.name] for m in members))
        single = MLP(self.hidden_dims, self.output_dim, self.layer_norm, matmul_dtype=self.matmul_dtype)
        return jax.vmap(lambda p: single.apply({"params": p}, x))(stacked)


class StateActionEncoder(nn.Module):
    """phi(s, a): an ensemble MLP on concat(s, a) -> (E, ..., D)."""

    hidden_dims: Sequence[int]
    latent_dim: int
    ensemble_size: int = 2
    layer_norm: bool = True
    ensemble: str = "unroll"
    matmul_dtype: str = "float32"

    @nn.compact
    def __call__(self, observations: jax.Array, actions: jax.Array) -> jax.Array:
        x = jnp.concatenate([observations, actions], axis=-1)
        return EnsembleMLP(self.hidden_dims, self.latent_dim, self.ensemble_size, self.layer_norm, self.ensemble,
                           self.matmul_dtype)(x)


class GaussianPolicy(nn.Module):
    """pi(a | s, g) = N(mu(s, g), std^2 I) with a constant std; returns the (unclipped) mean."""

    hidden_dims: Sequence[int]
    action_dim: int
    mean_init_scale: float = 1e-2  # small initial actions: the BC term dominates early
    matmul_dtype: str = "float32"

    @nn.compact
    def __call__(self, observations: jax.Array, goals: jax.Array | None) -> jax.Array:
        x = join(observations, goals)
        return MLP(self.hidden_dims, self.action_dim, layer_norm=False,
                   output_init_scale=self.mean_init_scale, matmul_dtype=self.matmul_dtype)(x)


class GoalConditionedValue(nn.Module):
    """V(s, g) or Q(s, a, g): an ensemble MLP on concat(s, g[, a]) with a scalar head -> (E, ...)."""

    hidden_dims: Sequence[int]
    ensemble_size: int = 2
    layer_norm: bool = True

    @nn.compact
    def __call__(self, observations: jax.Array, goals: jax.Array | None, actions: jax.Array | None = None) -> jax.Array:
        x = join(observations, goals, actions)
        return EnsembleMLP(self.hidden_dims, 1, self.ensemble_size, self.layer_norm)(x)[..., 0]


class TanhGaussianPolicy(nn.Module):
    """pi(a | s, g) = tanh(N(mu, sigma^2)) with a state-dependent std: returns (mean, log_std) of the
    pre-tanh Gaussian (log_std clipped to [-5, 2])."""

    hidden_dims: Sequence[int]
    action_dim: int
    layer_norm: bool = True
    init_scale: float = 1e-2

    @nn.compact
    def __call__(self, observations: jax.Array, goals: jax.Array | None) -> tuple[jax.Array, jax.Array]:
        x = join(observations, goals)
        out = MLP(self.hidden_dims, 2 * self.action_dim, self.layer_norm, output_init_scale=self.init_scale)(x)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return mean, jnp.clip(log_std, -5.0, 2.0)
