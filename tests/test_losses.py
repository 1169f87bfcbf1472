"""Numeric checks of the loss functions' math."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mqe import losses

GAMMA = 0.995


@pytest.mark.parametrize("steps", [1, 3, 17, 120])
@pytest.mark.parametrize("d_target", [0.0, 0.37, 2.5])
def test_linex_gradient_is_zero_exactly_at_target(steps, d_target):
    grad = jax.grad(lambda d: losses.linex_backup_loss(d, jnp.float32(d_target), jnp.int32(steps), GAMMA))
    target = d_target + steps * abs(math.log(GAMMA))
    assert abs(float(grad(jnp.float32(target)))) < 1e-5
    # Below the target the loss decreases with d, above it increases: the target is the minimum.
    eps = 0.05
    assert float(grad(jnp.float32(target - eps))) < 0
    assert float(grad(jnp.float32(target + eps))) > 0
    assert float(losses.linex_target(jnp.float32(d_target), steps, GAMMA)) == pytest.approx(target, rel=1e-6)


def test_linex_minimum_by_grid_search():
    d = jnp.linspace(0.0, 3.0, 300001)
    loss = losses.linex_backup_loss(d, jnp.float32(1.0), jnp.int32(20), GAMMA)
    best = float(d[jnp.argmin(loss)])
    assert best == pytest.approx(1.0 + 20 * abs(math.log(GAMMA)), abs=2e-5)


def test_linex_linear_tail_beyond_clip():
    clip = 5.0
    f = lambda d: losses.linex_backup_loss(d, jnp.float32(1.0), jnp.int32(2), GAMMA, clip)
    for d in (6.5, 10.0, 1e4):  # delta = d - 1 > clip: loss = delta, gradient exactly 1
        assert float(f(jnp.float32(d))) == pytest.approx(d - 1.0)
        assert float(jax.grad(f)(jnp.float32(d))) == 1.0
    # Just inside the clip the exponential branch applies.
    d_in = 5.9
    expected = GAMMA**2 * math.exp(d_in - 1.0) - d_in
    assert float(f(jnp.float32(d_in))) == pytest.approx(expected, rel=1e-5)
    # No overflow / NaN for huge deltas.
    assert np.isfinite(float(jax.grad(f)(jnp.float32(1e30))))


def test_expectile_loss_weights():
    diff = jnp.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    got = np.asarray(losses.expectile_loss(diff, 0.9))
    np.testing.assert_allclose(got, [0.1 * 4, 0.1 * 1, 0.0, 0.9 * 1, 0.9 * 4], rtol=1e-6)
    # tau = 0.5 is half the squared error.
    np.testing.assert_allclose(np.asarray(losses.expectile_loss(diff, 0.5)), 0.5 * np.square(diff))


def test_expectile_minimiser_is_the_expectile():
    # argmin_v E[L_tau(x - v)] is the tau-expectile: above the mean for tau > 0.5.
    x = jnp.asarray(np.random.default_rng(0).exponential(size=20000), jnp.float32)
    v = jnp.linspace(0, 3, 3001)
    risk = jax.vmap(lambda vv: jnp.mean(losses.expectile_loss(x - vv, 0.9)))(v)
    v_star = float(v[jnp.argmin(risk)])
    w = np.where(np.asarray(x) >= v_star, 0.9, 0.1)  # first-order condition of the expectile
    assert abs(np.sum(w * (np.asarray(x) - v_star))) / len(x) < 2e-3
    assert v_star > float(jnp.mean(x))


def test_gaussian_log_prob_matches_closed_form():
    a = jnp.array([[0.3, -0.2]])
    mu = jnp.array([[0.1, 0.1]])
    got = float(losses.gaussian_log_prob(a, mu, 1.0)[0])
    expected = -0.5 * (0.2**2 + 0.3**2) - math.log(2 * math.pi)
    assert got == pytest.approx(expected, rel=1e-6)


def test_weighted_pair_mean():
    v = jnp.arange(9.0).reshape(3, 3)
    got = float(losses.weighted_pair_mean(v, 0.5))
    assert got == pytest.approx(0.5 * 4.0 + 0.5 * (0 + 4 + 8) / 3)


# ----- the baselines' losses -----


def test_awr_weights_are_capped_and_advantage_is_constant():
    adv = jnp.array([-1.0, 0.0, 0.5, 10.0])
    log_prob = jnp.array([-1.0, -2.0, -3.0, -4.0])
    grad_lp, grad_adv = jax.grad(lambda lp, a: losses.awr_loss(a, lp, 3.0), argnums=(0, 1))(log_prob, adv)
    expected = -np.minimum(np.exp(3.0 * np.asarray(adv)), 100.0) / 4
    np.testing.assert_allclose(np.asarray(grad_lp), expected, rtol=1e-6)
    assert float(grad_lp[3]) == pytest.approx(-25.0)  # exp(30) capped at 100
    assert np.all(np.asarray(grad_adv) == 0.0)


def test_ddpg_bc_q_term_is_scale_free():
    q = jnp.array([-3.0, -1.0, -2.0])
    log_prob = jnp.array([-1.0, -1.5, -0.5])
    for scale in (1e-3, 1.0, 250.0):
        q_loss, bc = losses.ddpg_bc_loss(scale * q, log_prob, 0.3)
        assert float(q_loss) == pytest.approx(1.0, rel=1e-3)  # -mean(q)/(mean|q| + 1e-6), q < 0
        assert float(bc) == pytest.approx(0.3 * 1.0)
        grad = jax.grad(lambda x: losses.ddpg_bc_loss(scale * x, log_prob, 0.3)[0])(q)
        np.testing.assert_allclose(np.asarray(grad), -np.ones(3) / 3 / float(jnp.mean(jnp.abs(q))), rtol=1e-3)


def test_binary_nce_matches_its_formula():
    logits = jnp.array([[2.0, -1.0, 0.5], [0.3, 1.0, -2.0], [-0.5, 0.2, 3.0]])
    sig = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
    eye = np.eye(3)
    expected = np.mean(-eye * np.log(sig) - (1 - eye) * np.log(1 - sig))
    assert float(losses.binary_nce_loss(logits)) == pytest.approx(expected, rel=1e-6)
    assert float(losses.binary_nce_loss(50.0 * (2 * jnp.eye(3) - 1))) < 1e-6  # separated: loss -> 0


def test_infonce_axis_chooses_what_is_classified():
    logits = jnp.array([[2.0, -1.0, 0.5], [0.3, 1.0, -2.0], [-0.5, 4.0, 3.0]])
    x = np.asarray(logits, np.float64)
    rows = -np.mean([x[i, i] - np.log(np.exp(x[i]).sum()) for i in range(3)])  # each row picks its goal
    cols = -np.mean([x[j, j] - np.log(np.exp(x[:, j]).sum()) for j in range(3)])  # each goal picks its row
    assert float(losses.infonce_loss(logits, axis=-1)) == pytest.approx(rows, rel=1e-6)
    assert float(losses.infonce_loss(logits, axis=-2)) == pytest.approx(cols, rel=1e-6)
    assert rows != pytest.approx(cols)


def test_tanh_gaussian_log_density_integrates_to_one():
    mean, log_std = jnp.array([[0.7]]), jnp.array([[-0.3]])
    actions, log_prob = losses.tanh_gaussian_sample(jax.random.PRNGKey(0), mean, log_std)
    assert -1.0 < float(actions[0, 0]) < 1.0
    # Change of variables by hand in float64: p(a) = N(atanh a; m, s) / (1 - a^2).
    a = float(actions[0, 0])
    u = np.arctanh(a)
    s = np.exp(-0.3)
    manual = -0.5 * ((u - 0.7) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi) - np.log(1 - a * a)
    assert float(log_prob[0]) == pytest.approx(manual, rel=1e-4, abs=1e-4)
    grid = np.linspace(-0.99999, 0.99999, 400_001)
    ug = np.arctanh(grid)
    density = np.exp(-0.5 * ((ug - 0.7) / s) ** 2) / (s * np.sqrt(2 * np.pi)) / (1 - grid ** 2)
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-3)


def test_sac_policy_losses_temperature_gradient_vanishes_at_the_target_entropy():
    import jax
    import jax.numpy as jnp

    from mqe.losses import sac_policy_losses

    log_prob = jnp.array([-1.0, -3.0])  # entropy estimate H = 2
    q = jnp.array([0.5, 1.5])
    grad = lambda target: jax.grad(lambda lt: sac_policy_losses(log_prob, q, lt, target)[1])(jnp.log(0.5))
    assert abs(float(grad(2.0))) < 1e-7  # H = H_target: the temperature stays
    assert float(grad(3.0)) < 0 < float(grad(1.0))  # too little entropy raises lambda, too much lowers it
    policy, _, entropy, temperature = sac_policy_losses(log_prob, q, jnp.log(0.5), 2.0)
    assert float(entropy) == 2.0 and abs(float(temperature) - 0.5) < 1e-7
    assert abs(float(policy) - float(jnp.mean(0.5 * log_prob - q))) < 1e-6
