"""Numerics at the ends of the lambda range (issue 14): payments, utilities and distributions
agree with exact arithmetic (tests/exact.py, mpmath at 80 digits) to a few ulps of the values
they are differences of, from lambda = 1e-12 to 1e16, for every divergence the solver inverts.

Before issue 14, reverse KL and JS lost lambda x 1e-16 in D_f near t = 1 (payments of -3.5e-8
at lambda = 1e8, a truthful utility of -0.41 at 1e16) and chi^2 with a 1e-297 initial entry at
lambda = 1e-12 put pi off by 1e-5 with a KKT residual of 1e-3.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
from conftest import NEWTON_DIVERGENCES
from exact import g as exact_g
from exact import payments as exact_payments
from exact import ratios

from rlhf_mech.core import DIVERGENCES, Mechanism, Profile, kkt_residual, outcome, solve_sw_max

#: lambda from the smallest to the largest a game file may use in practice (the file range is
#: [1e-100, 1e100]; beyond 1e16 every payment is below the rounding of the values).
LAMBDAS = (1e-100, 1e-12, 1e-3, 1.0, 1e4, 1e8, 1e12, 1e16, 1e100)
DIVERGENCES_CHECKED = tuple(sorted({*NEWTON_DIVERGENCES, "kl"}))


def _game(seed: int, rare: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three groups, five outcomes; ``rare``: one outcome of pi_init ~ 1e-297 that the first
    group values most (the mass then sits far below the best score at tiny lambda)."""
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.ones(5))
    rewards = rng.dirichlet(np.ones(5), size=3)
    if rare:
        q[2] = 1e-297
        rewards[0, 2] = 3.0 * rewards[0].max()
        rewards[0] /= rewards[0].sum()
    return q / q.sum(), rewards, np.array([1.0, 3.0, 7.0])


def _ulps_of_values(rewards: np.ndarray, sizes: np.ndarray) -> float:
    """Eight ulps of the largest score: payments are differences of optimal values that large."""
    return 8.0 * float(np.spacing(np.max(sizes @ rewards)))


@pytest.mark.parametrize("lam", LAMBDAS)
@pytest.mark.parametrize("divergence", DIVERGENCES_CHECKED)
@pytest.mark.parametrize("rare", [False, True], ids=["plain", "rare_outcome"])
def test_issue_14_payments_match_exact_arithmetic(divergence: str, lam: float, rare: bool) -> None:
    q, rewards, sizes = _game(0, rare)
    got = outcome(Mechanism(q, divergence, lam), Profile(rewards, sizes), Profile(rewards, sizes))
    payments, pi = exact_payments(divergence, rewards, sizes, q, lam)
    tol = _ulps_of_values(rewards, sizes)
    np.testing.assert_allclose(got.payments, payments, rtol=0, atol=tol)
    np.testing.assert_allclose(got.distribution, pi, rtol=0, atol=4 * np.finfo(float).eps)
    # Proposition 4.4 holds to the same rounding: p >= 0 and IR
    assert got.payments.min() >= -tol and got.utilities.min() >= -tol
    assert got.kkt_residual <= 1e-12


@pytest.mark.parametrize("lam", (1e-12, 1e-9, 1e-6))
def test_issue_14_chi2_mass_far_below_a_rare_best_outcome(lam: float) -> None:
    """Two outcomes share the mass 1e13 (at lambda = 1e-12) below a best outcome of pi_init
    1e-297; their scores differ by 0.1 lambda, which the gaps must resolve."""
    q = np.array([0.5, 0.5 - 1e-297, 1e-297])
    scores = np.array([13.55, 13.55 - 0.1 * lam, 28.39])
    result = solve_sw_max(scores, q, "chi2", lam)
    exact_q = [mp.mpf(x) for x in q]
    total = sum(exact_q)
    exact_q = [x / total for x in exact_q]
    t = ratios("chi2", [mp.mpf(x) for x in scores], exact_q, mp.mpf(lam))
    np.testing.assert_allclose(result.pi, [float(a * b) for a, b in zip(exact_q, t, strict=True)], atol=1e-15)
    assert float(kkt_residual(result, scores, q, "chi2", lam)[0]) <= 1e-12
    # the multiplier as documented: nu = (mu - max s) / lambda, to rounding
    assert float(result.nu) == pytest.approx((float(result.mu) - scores.max()) / lam, rel=1e-12)


@pytest.mark.parametrize("divergence", DIVERGENCES_CHECKED)
def test_issue_14_terms_accurate_next_to_t_equal_one(divergence: str) -> None:
    """``q (g(t) - g'(1)(t - 1))`` for ``t = 1 + 1e-15 .. 1e-3``: within a few ulps of the
    size of its parts, ``q |t - 1|`` (the naive ``q g(t)`` is off by ~``q`` eps there, which
    lambda = 1e16 turns into O(1))."""
    div = DIVERGENCES[divergence]
    rng = np.random.default_rng(4)
    q = rng.uniform(1e-3, 1.0, size=200)
    delta = np.geomspace(1e-15, 1e-3, 200) * rng.choice([-1.0, 1.0], size=200)
    pi = q * (1.0 + delta)
    got = div.terms(pi, q)
    for k in range(0, 200, 7):
        exact_t = mp.mpf(pi[k]) / mp.mpf(q[k])
        exact = mp.mpf(q[k]) * (exact_g(divergence, exact_t) - div.g_prime_at_one * (exact_t - 1))
        assert abs(got[k] - float(exact)) <= 8 * np.finfo(float).eps * abs(pi[k] - q[k]), k


@pytest.mark.parametrize("divergence", DIVERGENCES_CHECKED)
def test_issue_14_divergence_value_is_nonnegative_at_lambda_1e16(divergence: str) -> None:
    """Jensen: D >= 0; at lambda = 1e16 the rounding of sum pi and sum q no longer shows."""
    q, rewards, sizes = _game(1, rare=False)
    result = solve_sw_max(sizes @ rewards, q, divergence, 1e16)
    assert 0.0 <= float(result.divergence) <= 1e-14
