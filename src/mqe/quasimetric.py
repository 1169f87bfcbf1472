"""Quasimetric distances on latent vectors: MRN (default) and IQE.

Every function is pure JAX. ``*_distance`` works on matched pairs (``x[..., :]`` with ``y[..., :]``),
``*_pairwise`` on all pairs of two batches, returning ``d[i, j] = d(x_i, y_j)``.

MRN (metric residual network, Liu et al. 2023), as used by MQE. The latent of size D is cut into C
chunks of D/C dims; in chunk c the first half A_c is asymmetric, the second half S_c symmetric::

    d(x, y) = scale * sum_c [ max(0, max_{k in A_c} (x_k - y_k)) + ||(x - y)|_{S_c}||_2 ]

with ``scale = 1 / (C * sqrt(D))`` by default. Each summand is a quasimetric (a max-of-differences
"asymmetric" part and a Euclidean part), so their non-negative sum is too: d >= 0, d(x, x) = 0 and
d(x, z) <= d(x, y) + d(y, z); d(x, y) != d(y, x) in general.

The Euclidean norm uses a "safe" square root (exactly 0 with zero gradient at 0) instead of adding an
epsilon, so d(x, x) = 0 holds exactly while the gradient stays finite.

IQE (interval quasimetric embedding, Wang & Isola 2022) is offered as an option.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from mqe.settings import DISTANCE_SCALES, QUASIMETRICS


def _scale(dim: int, num_components: int, distance_scale: str) -> float:
    if distance_scale == "c_sqrt_d":
        return 1.0 / (num_components * math.sqrt(dim))
    if distance_scale == "c":
        return 1.0 / num_components
    if distance_scale == "none":
        return 1.0
    raise ValueError(f"distance_scale must be one of {DISTANCE_SCALES}, got {distance_scale!r}")


def _check_split(dim: int, num_components: int) -> int:
    if dim % (2 * num_components):
        raise ValueError(
            f"latent dim {dim} must be divisible by 2 * num_components = {2 * num_components} "
            "(each component has an asymmetric and a symmetric half)"
        )
    return dim // num_components // 2


def safe_norm(sq: jax.Array) -> jax.Array:
    """sqrt(sq) for sq >= 0 with value 0 and gradient 0 at sq == 0 (no NaN, no epsilon bias)."""
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def mrn_components(x: jax.Array, y: jax.Array, num_components: int = 8) -> jax.Array:
    """Per-component MRN distances of matched pairs: (..., D), (..., D) -> (..., C)."""
    half = _check_split(x.shape[-1], num_components)
    diff = x - y
    diff = diff.reshape(*diff.shape[:-1], num_components, 2, half)
    asym = jax.nn.relu(jnp.max(diff[..., 0, :], axis=-1))
    sym = safe_norm(jnp.sum(jnp.square(diff[..., 1, :]), axis=-1))
    return asym + sym


def mrn_distance(
    x: jax.Array, y: jax.Array, num_components: int = 8, distance_scale: str = "c_sqrt_d"
) -> jax.Array:
    """MRN quasimetric of matched pairs: (..., D), (..., D) -> (...)."""
    scale = _scale(x.shape[-1], num_components, distance_scale)
    return scale * jnp.sum(mrn_components(x, y, num_components), axis=-1)


def mrn_pairwise_reference(
    x: jax.Array, y: jax.Array, num_components: int = 8, distance_scale: str = "c_sqrt_d"
) -> jax.Array:
    """All-pairs MRN by broadcasting, differentiated by plain autodiff: (B, D), (B', D) -> (B, B').

    Kept as the readable reference; ``mrn_pairwise`` computes the same values with a hand-written
    backward pass that never stores the (B, B', D) difference tensor.
    """
    return mrn_distance(x[:, None, :], y[None, :, :], num_components, distance_scale)


def _fast_argmax(values: jax.Array) -> jax.Array:
    """Arg-max over the last axis as ONE integer max-reduction (XLA's arg-max reduce is ~15x slower).

    Floats are mapped to order-preserving int32 keys whose low bits are replaced by the position, so
    the max key carries its index. Dropping those low mantissa bits means that among values within
    ~2^-18 (D = 512) relative of the maximum any may be returned; the value then read at that index
    is exact for its coordinate, so the max is exact up to that relative tie tolerance and exactly 0
    when x = y.
    """
    size = values.shape[-1]
    bits = max(1, (size - 1).bit_length())
    as_int = jax.lax.bitcast_convert_type(values, jnp.int32)
    key = jnp.where(as_int < 0, as_int ^ 0x7FFFFFFF, as_int)
    key = (key & ~((1 << bits) - 1)) | jnp.arange(size, dtype=jnp.int32)
    return jnp.max(key, axis=-1) & ((1 << bits) - 1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _mrn_pairwise_components(x: jax.Array, y: jax.Array, num_components: int, argmax: str = "bits",
                             barrier: str = "on") -> jax.Array:
    """(B, D), (B', D) -> (B, B', C) per-component distances (unscaled). ``argmax`` and ``barrier``
    choose the program (``mqe.kernels``), not the values."""
    return _mrn_pairwise_fwd(x, y, num_components, argmax, barrier)[0]


def _mrn_pairwise_fwd(x, y, num_components, argmax="bits", barrier="on"):
    half = _check_split(x.shape[-1], num_components)
    xs = x.reshape(x.shape[0], num_components, 2, half)
    ys = y.reshape(y.shape[0], num_components, 2, half)
    # One fused pass over the (B, B', C, half) differences finds the arg-max of the asymmetric half
    # (never materialised); its value is then gathered (B * B' * C lookups) rather than reduced again.
    diff_a = xs[:, None, :, 0, :] - ys[None, :, :, 0, :]
    arg_a = _fast_argmax(diff_a) if argmax == "bits" else jnp.argmax(diff_a, axis=-1).astype(jnp.int32)  # (B, B', C)
    comp = jnp.arange(num_components)[None, None, :]
    rows_x, rows_y = jnp.arange(x.shape[0])[:, None, None], jnp.arange(y.shape[0])[None, :, None]
    max_a = xs[rows_x, comp, 0, arg_a] - ys[rows_y, comp, 0, arg_a]
    # The barrier keeps the two reductions in separate simple fusions: XLA's fused multi-output
    # reduction is an order of magnitude slower on CPU.
    xb, yb, max_a = jax.lax.optimization_barrier((xs, ys, max_a)) if barrier == "on" else (xs, ys, max_a)
    norm_s = safe_norm(jnp.sum(jnp.square(xb[:, None, :, 1, :] - yb[None, :, :, 1, :]), axis=-1))
    comps = jax.nn.relu(max_a) + norm_s
    # Residuals are (B, B', C) and the inputs: a few MB instead of the (B, B', D) tensor.
    return comps, (xs, ys, max_a > 0, arg_a, norm_s)


def _mrn_pairwise_bwd(num_components, argmax, barrier, residuals, g):
    xs, ys, active, arg_a, norm_s = residuals
    half = xs.shape[-1]
    # Asymmetric half: the gradient of max(0, max_k (x_k - y_k)) routes to the arg-max coordinate.
    g_a = jnp.where(active, g, 0.0)  # (B, B', C)
    n_x, n_y, n_c = g.shape
    # Scatter-add each pair's gradient onto its arg-max coordinate (flat indices + segment_sum:
    # O(B * B' * C) work instead of a (B, B', C, half) one-hot contraction).
    c_idx = jnp.arange(n_c, dtype=jnp.int32)[None, None, :]
    flat_x = (jnp.arange(n_x, dtype=jnp.int32)[:, None, None] * n_c + c_idx) * half + arg_a
    flat_y = (jnp.arange(n_y, dtype=jnp.int32)[None, :, None] * n_c + c_idx) * half + arg_a
    gx_a = jax.ops.segment_sum(g_a.ravel(), flat_x.ravel(), n_x * n_c * half).reshape(n_x, n_c, half)
    gy_a = -jax.ops.segment_sum(g_a.ravel(), flat_y.ravel(), n_y * n_c * half).reshape(n_y, n_c, half)
    # Symmetric half: d||x_i - y_j|| / dx_i = (x_i - y_j) / ||.||, so the sums over j are matmuls.
    w = jnp.where(norm_s > 0, g / jnp.where(norm_s > 0, norm_s, 1.0), 0.0)  # (B, B', C)
    x_s, y_s = xs[:, :, 1, :], ys[:, :, 1, :]
    gx_s = jnp.sum(w, axis=1)[..., None] * x_s - jnp.einsum("ijc,jck->ick", w, y_s)
    gy_s = jnp.sum(w, axis=0)[..., None] * y_s - jnp.einsum("ijc,ick->jck", w, x_s)
    gx = jnp.stack([gx_a, gx_s], axis=2).reshape(xs.shape[0], -1)
    gy = jnp.stack([gy_a, gy_s], axis=2).reshape(ys.shape[0], -1)
    return gx, gy


_mrn_pairwise_components.defvjp(_mrn_pairwise_fwd, _mrn_pairwise_bwd)


def mrn_pairwise(
    x: jax.Array, y: jax.Array, num_components: int = 8, distance_scale: str = "c_sqrt_d",
    argmax: str = "bits", barrier: str = "on",
) -> jax.Array:
    """All-pairs MRN quasimetric: (B, D), (B', D) -> (B, B'), memory-lean custom gradient.

    ``argmax`` (bits | xla) and ``barrier`` (on | off) pick the compiled form (see ``mqe.kernels``)."""
    scale = _scale(x.shape[-1], num_components, distance_scale)
    return scale * jnp.sum(_mrn_pairwise_components(x, y, num_components, argmax, barrier), axis=-1)


# Up to this many dims per component the interval union compares all pairs instead of sorting; beyond it
# the (..., d, d) comparison loses (2.6x slower with the gradient at d = 64, benchmarks/interval_union.py)
# and its gradient's memory grows as d^2.
SORT_FREE_MAX_DIMS = 16


def _interval_union_length(lo: jax.Array, hi: jax.Array) -> jax.Array:
    """Length of the union of intervals [lo_k, hi_k] (hi >= lo) along the last axis.

    In order of start, interval k adds max(0, hi_k - max(lo_k, M_k)) with M_k = max_{j before k} hi_j:
    the earlier interval that reaches furthest covers everything from lo_k up to its end. "Before" is
    lo_j < lo_k, ties broken by index (a stable sort's order). Short components find M_k by comparing
    all pairs: the same terms and gradient as sorting, 3.9x faster under XLA on CPU for the planner's
    all-pairs distances with QRL's 8-dim components, about level in training; longer ones sort.
    """
    if lo.shape[-1] <= SORT_FREE_MAX_DIMS:
        return _union_by_comparison(lo, hi)
    return _union_by_sort(lo, hi)


def _union_by_comparison(lo: jax.Array, hi: jax.Array) -> jax.Array:
    """M_k = max_j [j before k] hi_j from the (..., d, d) comparison of starts."""
    index = jnp.arange(lo.shape[-1])
    lo_j, lo_k = lo[..., None, :], lo[..., :, None]  # [..., k, j]
    before = (lo_j < lo_k) | ((lo_j == lo_k) & (index[None, :] < index[:, None]))
    prev_max = jnp.max(jnp.where(before, hi[..., None, :], -jnp.inf), axis=-1)
    return jnp.sum(jax.nn.relu(hi - jnp.maximum(lo, prev_max)), axis=-1)


def _union_by_sort(lo: jax.Array, hi: jax.Array) -> jax.Array:
    """M_k as the running max of the ends after a stable sort by start."""
    order = jnp.argsort(lo, axis=-1)
    lo_s = jnp.take_along_axis(lo, order, axis=-1)
    hi_s = jnp.take_along_axis(hi, order, axis=-1)
    run_max = jax.lax.cummax(hi_s, axis=hi_s.ndim - 1)
    prev_max = jnp.concatenate([jnp.full_like(run_max[..., :1], -jnp.inf), run_max[..., :-1]], -1)
    return jnp.sum(jax.nn.relu(hi_s - jnp.maximum(lo_s, prev_max)), axis=-1)


def iqe_distance(
    x: jax.Array, y: jax.Array, num_components: int = 8, alpha: float = 0.5,
    distance_scale: str = "c_sqrt_d",
) -> jax.Array:
    """IQE quasimetric of matched pairs: (..., D), (..., D) -> (...).

    Component c's distance is the length of the union of the intervals [x_k, max(x_k, y_k)] over its
    dims; the components are combined as ``alpha * max_c + (1 - alpha) * mean_c`` ("maxmean"), then
    multiplied by C * scale so that the default scale matches MRN's magnitude convention.
    """
    dim = x.shape[-1]
    if dim % num_components:
        raise ValueError(f"latent dim {dim} must be divisible by num_components={num_components}")
    x, y = jnp.broadcast_arrays(x, y)
    xs = x.reshape(*x.shape[:-1], num_components, dim // num_components)
    ys = y.reshape(*y.shape[:-1], num_components, dim // num_components)
    comps = _interval_union_length(xs, jnp.maximum(xs, ys))
    agg = alpha * jnp.max(comps, axis=-1) + (1.0 - alpha) * jnp.mean(comps, axis=-1)
    return num_components * _scale(dim, num_components, distance_scale) * agg


def iqe_pairwise(x, y, num_components: int = 8, alpha: float = 0.5, distance_scale="c_sqrt_d"):
    """All-pairs IQE: (B, D), (B', D) -> (B, B')."""
    return iqe_distance(x[:, None, :], y[None, :, :], num_components, alpha, distance_scale)


def ensemble_pairwise(pairwise, x: jax.Array, y: jax.Array, ensemble: str = "unroll") -> jax.Array:
    """Applies an all-pairs distance per ensemble member: (E, B, D), (E, B', D) -> (E, B, B').

    ``unroll`` (default): E separate kernels, as XLA on CPU compiles the batched custom-gradient kernel
    ~1.5x slower; ``vmap``: one batched kernel (see ``mqe.kernels``).
    """
    if ensemble == "vmap":
        return jax.vmap(pairwise)(x, y)
    return jnp.stack([pairwise(x[e], y[e]) for e in range(x.shape[0])])



def make_quasimetric(kind: str, num_components: int, distance_scale: str, iqe_alpha: float = 0.5,
                     kernels=None):
    """Returns ``(matched, pairwise)`` distance functions for a quasimetric name; ``kernels`` (a
    ``mqe.kernels.Kernels``, default the CPU set) picks the compiled form of the MRN pairwise kernel."""
    if kind == "mrn":
        extra = {} if kernels is None else {"argmax": kernels.argmax, "barrier": kernels.barrier}
        return (
            functools.partial(mrn_distance, num_components=num_components, distance_scale=distance_scale),
            functools.partial(mrn_pairwise, num_components=num_components, distance_scale=distance_scale, **extra),
        )
    if kind == "iqe":
        kw = dict(num_components=num_components, alpha=iqe_alpha, distance_scale=distance_scale)
        return functools.partial(iqe_distance, **kw), functools.partial(iqe_pairwise, **kw)
    raise ValueError(f"quasimetric must be one of {QUASIMETRICS}, got {kind!r}")
