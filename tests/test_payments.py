"""The affine-maximizer payment rule, eq. (1), and the payment rule ``none``.

``p_i = ASW_{-i}(psi(rm_{-i}, w_{-i})) - ASW_{-i}(psi(rm, w))``: hand-worked profiles
(``cases.PAYMENT_CASES``), the KL closed form, the leave-one-out values against one solve
per group, non-negativity (Proposition 4.4) and finite payments at extreme lambda and
pi_init.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from cases import PAYMENT_CASES, PaymentCase, random_game, random_pi_init, random_rewards

from rlhf_mech import payments as payments_module
from rlhf_mech.payments import (
    PAYMENT_RULES,
    affine_maximizer_payments,
    check_payment_rule,
    compute_payments,
    leave_one_out_values,
)
from rlhf_mech.solver import solve_sw_max


@pytest.mark.parametrize("case", PAYMENT_CASES, ids=lambda c: c.name)
def test_hand_worked_payments(case: PaymentCase) -> None:
    rewards, weights, q = np.array(case.rewards), np.array(case.weights), np.array(case.pi_init)
    solution = solve_sw_max(weights @ rewards, q, case.divergence, case.lam)
    np.testing.assert_allclose(solution.pi, case.pi, rtol=0, atol=1e-15)
    result = affine_maximizer_payments(rewards, weights, q, case.divergence, case.lam)
    np.testing.assert_allclose(result.payments, case.payments, rtol=0, atol=1e-14)
    assert result.rule == "affine_maximizer"


def test_kl_payments_closed_form(rng: np.random.Generator) -> None:
    """KL: ``V(s) = lambda log E_q exp(s / lambda)``, so eq. (1) reads
    ``p_i = V(s - w_i rm_i) - V(s) + w_i <pi*, rm_i>`` with ``pi* ∝ q exp(s / lambda)``."""

    def v(s: np.ndarray, q: np.ndarray, lam: float) -> float:
        shift = s.max()
        return shift + lam * math.log(math.fsum(q * np.exp((s - shift) / lam)))

    for _ in range(100):
        game = random_game(rng, log10_lambda=(-1.0, 1.0))
        rw, w, q, lam = game.rewards, game.sizes, game.pi_init, game.lam
        s = w @ rw
        pi = q * np.exp((s - s.max()) / lam)
        pi /= pi.sum()
        expected = [v(s - w[i] * rw[i], q, lam) - v(s, q, lam) + w[i] * (rw[i] @ pi) for i in range(len(w))]
        result = affine_maximizer_payments(rw, w, q, "kl", lam)
        np.testing.assert_allclose(result.payments, expected, rtol=1e-10, atol=1e-12)


def test_leave_one_out_values_are_the_optimal_values_without_each_group(
    divergence: str, rng: np.random.Generator
) -> None:
    """``max_pi ASW_{-i}(pi)`` equals the SW-Max value of ``s - w_i rm_i`` (one solve per group)."""
    for _ in range(30):
        game = random_game(rng, log10_lambda=(-2.0, 2.0))
        rw, w, q, lam = game.rewards, game.sizes, game.pi_init, game.lam
        loo = leave_one_out_values(rw, w, q, divergence, lam)
        for i in range(len(w)):
            alone = solve_sw_max(w @ rw - w[i] * rw[i], q, divergence, lam)
            assert loo[i] == pytest.approx(float(alone.value), rel=1e-12, abs=1e-12)


def test_payments_follow_eq_1(divergence: str, rng: np.random.Generator) -> None:
    """``p_i = V_{-i} - (V - w_i <pi*, rm_i>)`` with each term computed separately."""
    for _ in range(30):
        game = random_game(rng, log10_lambda=(-2.0, 2.0))
        rw, w, q, lam = game.rewards, game.sizes, game.pi_init, game.lam
        full = solve_sw_max(w @ rw, q, divergence, lam)
        result = affine_maximizer_payments(rw, w, q, divergence, lam)
        for i in range(len(w)):
            v_minus_i = float(solve_sw_max(w @ rw - w[i] * rw[i], q, divergence, lam).value)
            asw_minus_i = float(full.value) - w[i] * float(rw[i] @ full.pi)
            assert result.payments[i] == pytest.approx(v_minus_i - asw_minus_i, rel=1e-10, abs=1e-12)
        np.testing.assert_array_equal(
            result.leave_one_out_values, leave_one_out_values(rw, w, q, divergence, lam)
        )


def test_payments_nonnegative_on_random_games(divergence: str, rng: np.random.Generator) -> None:
    """Proposition 4.4: ``p_i >= 0`` (to rounding)."""
    worst = 0.0
    for _ in range(200):
        game = random_game(rng)
        p = affine_maximizer_payments(game.rewards, game.sizes, game.pi_init, divergence, game.lam).payments
        assert np.all(np.isfinite(p))
        worst = min(worst, float(p.min()))
    assert worst >= -1e-12


def test_leave_one_out_value_ignores_the_groups_own_report(divergence: str, rng: np.random.Generator) -> None:
    """The first term of eq. (1) does not depend on group i's report (what makes it DSIC)."""
    game = random_game(rng, max_groups=3, log10_lambda=(-1.0, 1.0))
    rw, w, q, lam = game.rewards, game.sizes, game.pi_init, game.lam
    before = leave_one_out_values(rw, w, q, divergence, lam)[0]
    changed = rw.copy()
    changed[0] = changed[0][::-1]
    w2 = w.copy()
    w2[0] = w[0] + 3.0
    after = leave_one_out_values(changed, w2, q, divergence, lam)[0]
    assert after == pytest.approx(before, rel=1e-13, abs=1e-14)


def test_given_solution_is_used_unchanged(divergence: str) -> None:
    rw = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    w = np.array([2.0, 1.0])
    q = np.array([0.5, 0.25, 0.25])
    solution = solve_sw_max(w @ rw, q, divergence, 0.5)
    with_solution = affine_maximizer_payments(rw, w, q, divergence, 0.5, solution=solution)
    without = affine_maximizer_payments(rw, w, q, divergence, 0.5)
    np.testing.assert_array_equal(with_solution.payments, without.payments)


def test_leave_one_out_in_chunks_matches_one_batch(
    divergence: str, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The n leave-one-out problems split into chunks give the same values as one batch."""
    rw = random_rewards(rng, 9, 5, "sum")
    w = rng.integers(1, 6, size=9).astype(float)
    q = random_pi_init(rng, 5)
    one_batch = leave_one_out_values(rw, w, q, divergence, 0.3)
    monkeypatch.setattr(payments_module, "rows_per_chunk", lambda m: 2)
    chunked = leave_one_out_values(rw, w, q, divergence, 0.3)
    np.testing.assert_allclose(chunked, one_batch, rtol=1e-13, atol=1e-14)


def test_score_offset_enters_every_problem(divergence: str) -> None:
    """An offset owned by no group (candidate costs) is in ASW and in every ASW_{-i}."""
    rw = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    w = np.array([2.0, 1.0])
    q = np.array([0.5, 0.25, 0.25])
    offset = np.array([-0.3, 0.0, -0.1])
    lam = 0.5
    full = solve_sw_max(w @ rw + offset, q, divergence, lam)
    result = affine_maximizer_payments(rw, w, q, divergence, lam, score_offset=offset)
    for i in range(2):
        v_minus_i = float(solve_sw_max(w @ rw - w[i] * rw[i] + offset, q, divergence, lam).value)
        expected = v_minus_i - (float(full.value) - w[i] * float(rw[i] @ full.pi))
        assert result.payments[i] == pytest.approx(expected, rel=1e-12, abs=1e-13)
        assert result.payments[i] >= -1e-12


def test_payment_rule_none_and_validation() -> None:
    rw = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    w = np.array([2.0, 1.0])
    q = np.full(3, 1 / 3)
    result = compute_payments("none", rw, w, q, "kl", 1.0)
    np.testing.assert_array_equal(result.payments, [0.0, 0.0])
    np.testing.assert_array_equal(result.leave_one_out_values, [0.0, 0.0])
    assert result.rule == "none"
    aff = compute_payments("affine_maximizer", rw, w, q, "kl", 1.0)
    np.testing.assert_array_equal(aff.payments, affine_maximizer_payments(rw, w, q, "kl", 1.0).payments)
    assert PAYMENT_RULES == ("none", "affine_maximizer")
    assert check_payment_rule("none") == "none"
    with pytest.raises(
        ValueError, match=r"unknown payment rule 'vcg'; expected one of none, affine_maximizer"
    ):
        compute_payments("vcg", rw, w, q, "kl", 1.0)


@pytest.mark.parametrize("lam", [1e-6, 1e6])
@pytest.mark.parametrize("tiny", ["none", "best", "worst"])
def test_payments_finite_and_nonnegative_at_extremes(divergence: str, lam: float, tiny: str) -> None:
    """lambda in {1e-6, 1e6}, pi_init entries of 1e-300 (at the best or the worst outcome of the
    full problem): payments finite and >= -1e-9 * scale (scale = the largest score)."""
    rng = np.random.default_rng(1)
    for _ in range(10):
        rw = rng.dirichlet(np.ones(5), size=3)
        w = rng.integers(1, 5, size=3).astype(float)
        s = w @ rw
        q = np.full(5, 0.2)
        if tiny != "none":
            j = int(np.argmax(s)) if tiny == "best" else int(np.argmin(s))
            q[j] = 0.0
            q /= q.sum()
            q[j] = 1e-300
        result = affine_maximizer_payments(rw, w, q, divergence, lam)
        scale = float(np.abs(s).max())
        assert np.all(np.isfinite(result.payments))
        assert np.all(np.isfinite(result.leave_one_out_values))
        assert float(result.payments.min()) >= -1e-9 * scale, result.payments
