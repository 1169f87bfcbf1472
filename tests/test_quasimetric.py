"""Quasimetric axioms and the custom all-pairs gradient, on random inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mqe.quasimetric import (
    _interval_union_length, _union_by_comparison, _union_by_sort, iqe_distance, iqe_pairwise, mrn_distance, mrn_pairwise, mrn_pairwise_reference,
)

jax.config.update("jax_enable_x64", False)


def _vectors(seed, n, dim, scale):
    return np.random.default_rng(seed).normal(scale=scale, size=(n, dim)).astype(np.float32)


DISTANCES = {
    "mrn": lambda x, y: mrn_distance(x, y, num_components=4),
    "iqe": lambda x, y: iqe_distance(x, y, num_components=4),
}


@pytest.mark.parametrize("name", sorted(DISTANCES))
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([1e-3, 1.0, 100.0]))
def test_quasimetric_axioms(name, seed, scale):
    d = DISTANCES[name]
    x, y, z = (_vectors(seed + i, 64, 16, scale) for i in range(3))
    dxy, dyz, dxz = (np.asarray(d(a, b)) for a, b in ((x, y), (y, z), (x, z)))
    assert (dxy >= 0).all()
    assert np.array_equal(np.asarray(d(x, x)), np.zeros(64, np.float32)), "d(x, x) must be exactly 0"
    # Triangle inequality, up to float32 rounding relative to the magnitudes involved.
    slack = 1e-5 * (np.abs(dxy) + np.abs(dyz) + np.abs(dxz)) + 1e-6 * scale
    assert (dxz <= dxy + dyz + slack).all()


@pytest.mark.parametrize("name", sorted(DISTANCES))
def test_not_symmetric(name):
    d = DISTANCES[name]
    x, y = _vectors(0, 256, 16, 1.0), _vectors(1, 256, 16, 1.0)
    asym = np.abs(np.asarray(d(x, y)) - np.asarray(d(y, x)))
    assert asym.max() > 1e-2, "a quasimetric that is always symmetric is only a metric"


def test_mrn_matches_formula():
    # d = 1/(C sqrt(D)) sum_c [max(0, max_{k in A_c}(x_k - y_k)) + ||(x - y)|_{S_c}||]
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(5, 16)), rng.normal(size=(5, 16))
    c, dim = 4, 16
    expected = np.zeros(5)
    for comp in range(c):
        chunk = slice(comp * 4, comp * 4 + 4)
        diff = (x - y)[:, chunk]
        expected += np.maximum(0, diff[:, :2].max(1)) + np.linalg.norm(diff[:, 2:], axis=1)
    expected /= c * np.sqrt(dim)
    got = np.asarray(mrn_distance(x.astype(np.float32), y.astype(np.float32), num_components=c))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_iqe_component_is_interval_union_length():
    # One component of 3 dims: intervals [x_k, max(x_k, y_k)] = [0, 2], [1, 3], [5, 6] -> union 4.
    x = jnp.array([[0.0, 1.0, 5.0]])
    y = jnp.array([[2.0, 3.0, 6.0]])
    got = iqe_distance(x, y, num_components=1, alpha=1.0, distance_scale="none")
    np.testing.assert_allclose(np.asarray(got), [4.0], rtol=1e-6)
    assert float(iqe_distance(y, x, num_components=1, alpha=1.0, distance_scale="none")[0]) == 0.0


def test_mrn_pairwise_matches_matched_pairs():
    x, y = _vectors(0, 33, 64, 1.0), _vectors(1, 17, 64, 1.0)
    full = np.asarray(mrn_pairwise(x, y))
    ref = np.asarray(mrn_distance(x[:, None], y[None]))
    assert full.shape == (33, 17)
    np.testing.assert_allclose(full, ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(iqe_pairwise(x, y)), np.asarray(iqe_distance(x[:, None], y[None])))


def test_mrn_pairwise_gradient_matches_autodiff():
    x, y = _vectors(0, 48, 64, 1.0), _vectors(1, 40, 64, 1.0)
    w = _vectors(2, 48, 40, 1.0)
    loss = lambda fn: (lambda a, b: jnp.sum(w * fn(a, b)))
    gx, gy = jax.grad(loss(mrn_pairwise), argnums=(0, 1))(x, y)
    rx, ry = jax.grad(loss(mrn_pairwise_reference), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(np.asarray(gx), np.asarray(rx), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(gy), np.asarray(ry), rtol=1e-4, atol=1e-6)


def test_mrn_gradient_finite_at_zero_distance():
    x = _vectors(0, 8, 16, 1.0)
    g = jax.grad(lambda a: jnp.sum(mrn_pairwise(a, x)))(x)
    assert np.isfinite(np.asarray(g)).all()
    g2 = jax.grad(lambda a: jnp.sum(mrn_distance(a, x)))(x)
    assert np.isfinite(np.asarray(g2)).all()


def _union_by_sweep(lo: np.ndarray, hi: np.ndarray) -> float:
    """Union length of the intervals [lo_k, hi_k] by sorting the endpoints (float64)."""
    total, reach = 0.0, -np.inf
    for a, b in sorted(zip(lo.tolist(), hi.tolist())):
        total += max(0.0, b - max(a, reach))
        reach = max(reach, b)
    return total


@pytest.mark.parametrize("dims", [3, 8, 16, 17, 40])  # both sides of SORT_FREE_MAX_DIMS
def test_interval_union_length_matches_a_sweep_with_ties_and_both_forms_agree(dims):
    rng = np.random.default_rng(dims)
    lo = rng.normal(size=(64, dims)).round(1)  # rounding makes ties in the starts
    hi = lo + np.where(rng.random((64, dims)) < 0.3, 0.0, rng.exponential(size=(64, dims)))  # some empty
    lo32, hi32 = jnp.asarray(lo, jnp.float32), jnp.asarray(hi, jnp.float32)
    expected = [_union_by_sweep(a, b) for a, b in zip(lo, hi)]
    for form in (_interval_union_length, _union_by_comparison, _union_by_sort):
        np.testing.assert_allclose(np.asarray(form(lo32, hi32)), expected, rtol=1e-5, atol=1e-5)
    # The same gradient from both forms, ties included (each picks the same stable order).
    grads = [jax.grad(lambda a, b: jnp.sum(form(a, b) * jnp.sqrt(jnp.arange(1.0, 65.0))), argnums=(0, 1))(lo32, hi32)
             for form in (_union_by_comparison, _union_by_sort)]
    for g_cmp, g_sort in zip(*grads):
        np.testing.assert_allclose(np.asarray(g_cmp), np.asarray(g_sort), rtol=1e-6, atol=1e-6)
    assert np.abs(np.asarray(grads[0][1])).sum() > 0  # not a vacuous comparison
