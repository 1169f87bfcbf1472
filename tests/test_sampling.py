"""The on-device sampler against exact distributions (spec section 2).

Statistic: the largest gap between the empirical and the exact CDF over n = 100,000 draws. The DKW
inequality bounds it by 0.0062 with probability 0.999 (2 exp(-2 n eps^2) <= 0.001), so that is the
tolerance; draws come from fixed keys, so the test is deterministic.
"""

import jax
import numpy as np
import pytest

from mqe.sampling import DeviceData, SamplerConfig, geometric, sample_indices

N_DRAWS = 100_000
DKW_EPS = 0.0062


def _dataset(lengths):
    """Trajectories of the given row counts, back to back; returns (final_index, trajectory id)."""
    ends = np.cumsum(lengths) - 1
    final = np.repeat(ends, lengths).astype(np.int32)
    traj = np.repeat(np.arange(len(lengths)), lengths)
    n = final.shape[0]
    obs = np.arange(n, dtype=np.float32)[:, None]
    return DeviceData.from_arrays(obs, np.zeros((n, 1), np.float32), final), final, traj


LENGTHS = np.random.default_rng(0).integers(2, 400, size=60)


def _draw(config, lengths=LENGTHS, seed=0):
    data, final, traj = _dataset(lengths)
    idx = jax.jit(lambda k: sample_indices(k, data, config))(jax.random.PRNGKey(seed))
    return {k: np.asarray(v) for k, v in idx.items()}, final, traj


def _steps_to_end_weights(lengths):
    """Distribution of F = f - t for t uniform over rows that have a successor."""
    counts = {}
    for length in lengths:
        for f in range(1, length):
            counts[f] = counts.get(f, 0) + 1
    total = sum(counts.values())
    return {f: c / total for f, c in counts.items()}


def _exact_cdf(survival_ratio, lengths, max_m, mix_prob=0.0):
    """CDF of min(G, F) where P(G >= m) = r^(m-1), mixed with a point mass at 1 of weight mix_prob."""
    weights = _steps_to_end_weights(lengths)
    m = np.arange(1, max_m + 1)
    surv_next = np.zeros(max_m)  # P(X >= m + 1)
    for f, w in weights.items():
        surv_next += w * np.where(m + 1 <= f, survival_ratio ** m, 0.0)
    cdf = 1.0 - surv_next
    return mix_prob + (1.0 - mix_prob) * cdf


def _max_cdf_gap(samples, exact_cdf):
    m = np.arange(1, len(exact_cdf) + 1)
    empirical = np.searchsorted(np.sort(samples), m, side="right") / len(samples)
    return np.max(np.abs(empirical - exact_cdf))


CONFIG = SamplerConfig(batch_size=N_DRAWS, gamma=0.99, waypoint_discount=0.95, next_state_prob=0.2)


def test_goal_offset_distribution_matches_capped_geometric():
    idx, final, _ = _draw(CONFIG)
    k_eff = idx["goal"] - idx["state"]
    exact = _exact_cdf(CONFIG.gamma, LENGTHS, 400)
    assert _max_cdf_gap(k_eff, exact) < DKW_EPS


def test_waypoint_steps_distribution_matches_formula():
    # k' = min(Geom(1 - lambda), K, f - t) is a capped Geom(1 - lambda gamma); mixed with k' = 1 at rate p.
    idx, _, _ = _draw(CONFIG, seed=1)
    exact = _exact_cdf(CONFIG.gamma * CONFIG.waypoint_discount, LENGTHS, 400, CONFIG.next_state_prob)
    assert _max_cdf_gap(idx["waypoint_steps"], exact) < DKW_EPS


def test_next_state_mixing_fraction():
    # With a fixed waypoint 50 steps ahead and long trajectories, k' = 1 only by mixing, by K = 1, or
    # at the last row: P(k' = 1) = p + (1 - p) q with q computed exactly.
    lengths = np.full(20, 2000)
    config = SamplerConfig(batch_size=N_DRAWS, gamma=0.99, next_state_prob=0.3,
                           waypoint_distribution="fixed", waypoint_steps=50)
    idx, _, _ = _draw(config, lengths, seed=2)
    q = _exact_cdf(config.gamma, lengths, 1)[0]  # P(min(K, F) = 1)
    expected = 0.3 + 0.7 * q
    observed = np.mean(idx["waypoint_steps"] == 1)
    sigma = np.sqrt(expected * (1 - expected) / N_DRAWS)
    assert abs(observed - expected) < 4 * sigma
    # Without mixing and with the fixed ablation, k' = min(50, K_eff) exactly.
    config0 = SamplerConfig(batch_size=N_DRAWS, gamma=0.99, next_state_prob=0.0,
                            waypoint_distribution="fixed", waypoint_steps=50)
    idx0, _, _ = _draw(config0, lengths, seed=3)
    np.testing.assert_array_equal(idx0["waypoint_steps"], np.minimum(50, idx0["goal"] - idx0["state"]))


@pytest.mark.parametrize("dist", ["geometric", "uniform_to_goal", "uniform", "fixed"])
def test_indices_stay_inside_trajectory_and_waypoint_between(dist):
    config = SamplerConfig(batch_size=N_DRAWS, gamma=0.99, waypoint_distribution=dist, waypoint_steps=7)
    idx, final, traj = _draw(config, seed=4)
    t = idx["state"]
    assert (t < final[t]).all(), "states must have a successor"
    for key in ("next_state", "goal", "waypoint", "actor_goal"):
        assert (traj[idx[key]] == traj[t]).all(), f"{key} crossed a trajectory boundary"
        assert (idx[key] > t).all() and (idx[key] <= final[t]).all()
    assert (idx["waypoint"] <= idx["goal"]).all(), "waypoint must lie between s and g"
    np.testing.assert_array_equal(idx["waypoint_steps"], idx["waypoint"] - t)
    if dist == "uniform":
        assert idx["waypoint_steps"].max() <= 7
    if dist == "uniform_to_goal":
        # Without mixing rows, k' is uniform on 1..K_eff: its normalised rank is ~U(0, 1].
        k_eff = idx["goal"] - t
        long = k_eff >= 50
        u = idx["waypoint_steps"][long] / k_eff[long]
        assert abs(np.mean(u[u > 1 / 50]) - 0.5) < 0.02


def test_actor_goal_uniform_over_rest_of_trajectory():
    idx, final, _ = _draw(CONFIG, seed=5)
    offset = idx["actor_goal"] - idx["state"] - 1  # uniform on {0, ..., F - 1}
    weights = _steps_to_end_weights(LENGTHS)
    j = np.arange(400)
    pmf = sum(w * (j < f) / f for f, w in weights.items())
    exact = np.cumsum(pmf)
    empirical = np.searchsorted(np.sort(offset), j, side="right") / len(offset)
    assert np.max(np.abs(empirical - exact)) < DKW_EPS


def test_states_uniform_over_transitions():
    idx, final, _ = _draw(CONFIG, seed=6)
    valid = np.nonzero(np.arange(len(final)) < final)[0]
    counts = np.bincount(idx["state"], minlength=len(final))[valid]
    assert counts.sum() == N_DRAWS and counts.min() >= 0
    expected = N_DRAWS / len(valid)
    chi2 = np.sum((counts - expected) ** 2 / expected)
    dof = len(valid) - 1
    assert chi2 < dof + 5 * np.sqrt(2 * dof)  # ~5 sigma of the chi-square distribution


def test_geometric_moments():
    draws = np.asarray(geometric(jax.random.PRNGKey(0), 0.05, (N_DRAWS,)))
    assert draws.min() >= 1
    assert np.mean(draws) == pytest.approx(1 / 0.05, rel=0.02)
    assert np.mean(draws == 1) == pytest.approx(0.05, abs=4 * np.sqrt(0.05 * 0.95 / N_DRAWS))


def test_config_errors():
    with pytest.raises(ValueError, match="waypoint_distribution"):
        SamplerConfig(waypoint_distribution="poisson")
    with pytest.raises(ValueError, match="gamma"):
        SamplerConfig(gamma=1.0)
