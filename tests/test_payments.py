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

from rlhf_mech.analysis import sweep
from rlhf_mech.core import (
    AFFINE_MAXIMIZER,
    NONE,
    PAYMENT_RULES,
    Mechanism,
    Profile,
    affine_maximizer_payments,
    deviation,
    get_payment_rule,
    outcome,
    profile_payments,
    solve_sw_max,
)
from rlhf_mech.core._internal import CONVERGED


def leave_one_out_values(rewards, weights, pi_init, divergence, lam) -> np.ndarray:
    """The first term of eq. (1) for every group, as the affine-maximizer payment computes it."""
    mechanism = Mechanism(pi_init, divergence, lam)
    return affine_maximizer_payments(mechanism, Profile(rewards, weights)).leave_one_out_values


@pytest.mark.parametrize("case", PAYMENT_CASES, ids=lambda c: c.name)
def test_hand_worked_payments(case: PaymentCase) -> None:
    rewards, weights, q = np.array(case.rewards), np.array(case.weights), np.array(case.pi_init)
    solution = solve_sw_max(weights @ rewards, q, case.divergence, case.lam)
    np.testing.assert_allclose(solution.pi, case.pi, rtol=0, atol=1e-15)
    result = affine_maximizer_payments(Mechanism(q, case.divergence, case.lam), Profile(rewards, weights))
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
        result = affine_maximizer_payments(Mechanism(q, "kl", lam), Profile(rw, w))
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
        result = affine_maximizer_payments(Mechanism(q, divergence, lam), Profile(rw, w))
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
        p = affine_maximizer_payments(game.mechanism(divergence), game.truth).payments
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
    mechanism, reports = Mechanism(q, divergence, 0.5), Profile(rw, w)
    with_solution = affine_maximizer_payments(mechanism, reports, solution=solution)
    without = affine_maximizer_payments(mechanism, reports)
    np.testing.assert_array_equal(with_solution.payments, without.payments)


def test_leave_one_out_in_chunks_matches_one_batch(
    divergence: str, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The n leave-one-out problems split into chunks give the same values as one batch."""
    rw = random_rewards(rng, 9, 5, "sum")
    w = rng.integers(1, 6, size=9).astype(float)
    q = random_pi_init(rng, 5)
    one_batch = leave_one_out_values(rw, w, q, divergence, 0.3)
    monkeypatch.setattr("rlhf_mech.core._payments.rows_per_chunk", lambda m: 2)
    chunked = leave_one_out_values(rw, w, q, divergence, 0.3)
    np.testing.assert_allclose(chunked, one_batch, rtol=1e-13, atol=1e-14)


def test_score_offset_enters_every_problem(divergence: str) -> None:
    """An offset owned by no group (candidate costs) is in ASW and in every ASW_{-i}."""
    rw = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    w = np.array([2.0, 1.0])
    q = np.array([0.5, 0.25, 0.25])
    lam = 0.5
    # outcome costs owned by no group: the score offset -lambda * costs = (-0.3, 0, -0.1)
    mechanism = Mechanism(q, divergence, lam, outcome_costs=np.array([0.6, 0.0, 0.2]))
    offset = mechanism.score_offset
    np.testing.assert_array_equal(offset, [-0.3, 0.0, -0.1])
    full = solve_sw_max(w @ rw + offset, q, divergence, lam)
    result = affine_maximizer_payments(mechanism, Profile(rw, w))
    for i in range(2):
        v_minus_i = float(solve_sw_max(w @ rw - w[i] * rw[i] + offset, q, divergence, lam).value)
        expected = v_minus_i - (float(full.value) - w[i] * float(rw[i] @ full.pi))
        assert result.payments[i] == pytest.approx(expected, rel=1e-12, abs=1e-13)
        assert result.payments[i] >= -1e-12


def _rule_payments(rule: str, rw: np.ndarray, w: np.ndarray, q: np.ndarray, divergence: str, lam: float):
    """``rule``'s payments for one profile, as :func:`rlhf_mech.core.outcome` computes them."""
    mechanism = Mechanism(q, divergence, lam, payment_rule=get_payment_rule(rule))
    reports = Profile(rw, w)
    scores = mechanism.scores(reports.rewards, reports.sizes)
    solution = mechanism.training_rule.scores.solve(mechanism, scores)
    return profile_payments(mechanism, reports, scores, solution)


def test_payment_rule_none_and_validation() -> None:
    rw = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    w = np.array([2.0, 1.0])
    q = np.full(3, 1 / 3)
    result = _rule_payments("none", rw, w, q, "kl", 1.0)
    np.testing.assert_array_equal(result.payments, [0.0, 0.0])
    np.testing.assert_array_equal(result.leave_one_out_values, [0.0, 0.0])
    assert result.rule == "none"
    aff = _rule_payments("affine_maximizer", rw, w, q, "kl", 1.0)
    np.testing.assert_array_equal(
        aff.payments, affine_maximizer_payments(Mechanism(q, "kl", 1.0), Profile(rw, w)).payments
    )
    assert tuple(PAYMENT_RULES) == ("none", "affine_maximizer", "intermediate_checkpoints", "early_stopped")
    assert get_payment_rule("none") is NONE
    assert get_payment_rule(AFFINE_MAXIMIZER) is AFFINE_MAXIMIZER
    with pytest.raises(
        ValueError,
        match=r"unknown payment rule 'vcg'; expected one of none, affine_maximizer, "
        r"intermediate_checkpoints, early_stopped",
    ):
        _rule_payments("vcg", rw, w, q, "kl", 1.0)


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
        result = affine_maximizer_payments(Mechanism(q, divergence, lam), Profile(rw, w))
        scale = float(np.abs(s).max())
        assert np.all(np.isfinite(result.payments))
        assert np.all(np.isfinite(result.leave_one_out_values))
        assert float(result.payments.min()) >= -1e-9 * scale, result.payments


# --- every payment rule of the registry ---------------------------------------------------------
# The ``payment_rule`` fixture runs each test once per rule; what a rule's flags promise
# (``charges``, ``nonnegative``, ``dsic``) is checked on random games.

#: The families of section 5 and Theorem 4.2, with parameters as in ``test_sweep.py``.
SWEPT_FAMILIES = {
    "size": [0.2, 0.5, 1.5, 2.0, 3.0],
    "mixing": [-0.5, 0.0, 0.5, 0.8, 1.2, 1.5, 2.0, 3.0],
    "polarise": [1e-3, 1e-2, 0.05, 0.1, 0.5],
}


def _random_reports(rng: np.random.Generator, game, points: int) -> tuple[np.ndarray, np.ndarray]:
    """``points`` valid reports ``(rewards (P, m), sizes (P,))`` of one group: rewards in the
    game's reward domain, sizes in [1, max_size]."""
    m = game.rewards.shape[1]
    rewards = random_rewards(rng, points, m, game.normalization)
    sizes = rng.uniform(1.0, max(game.max_size, 1.0), size=points)
    return rewards, sizes


def test_profile_payments_are_finite_and_converged(
    payment_rule: str, divergence: str, rng: np.random.Generator
) -> None:
    """``profile_payments`` on random profiles: (n,) finite payments and leave-one-out values,
    every status CONVERGED, the rule's name; ``outcome`` reports the same payments."""
    rule = get_payment_rule(payment_rule)
    for _ in range(30):
        game = random_game(rng, log10_lambda=(-2.0, 2.0))
        n, m = game.rewards.shape
        mechanism = game.mechanism(divergence, rule)
        reports = Profile(random_rewards(rng, n, m, game.normalization), game.sizes + rng.integers(0, 3, n))
        scores = mechanism.scores(reports.rewards, reports.sizes)
        solution = mechanism.training_rule.scores.solve(mechanism, scores)
        result = profile_payments(mechanism, reports, scores, solution)
        assert result.payments.shape == (n,)
        assert result.leave_one_out_values.shape == (n,)
        assert np.all(np.isfinite(result.payments))
        assert np.all(np.isfinite(result.leave_one_out_values))
        assert np.all(result.status == CONVERGED) and result.converged
        assert result.rule == rule.name
        measured = outcome(mechanism, game.truth, reports)
        np.testing.assert_array_equal(measured.payments, result.payments)
        assert measured.payment.rule == rule.name


def test_charges_flag(payment_rule: str, divergence: str, rng: np.random.Generator) -> None:
    """``charges=False``: every payment is 0, also under deviations; ``charges=True``: some
    random game is charged (a payment above 1e-6)."""
    rule = get_payment_rule(payment_rule)
    largest = 0.0
    for _ in range(30):
        game = random_game(rng, log10_lambda=(-1.0, 1.0))
        mechanism = game.mechanism(divergence, rule)
        payments = outcome(mechanism, game.truth, game.truth).payments
        rewards, sizes = _random_reports(rng, game, 5)
        batch = deviation(mechanism, game.truth, game.truth, 0).outcomes(rewards[None], sizes[None])
        if not rule.charges:
            np.testing.assert_array_equal(payments, 0.0)
            np.testing.assert_array_equal(batch.payments, 0.0)
            np.testing.assert_array_equal(batch.leave_one_out_values, 0.0)
            np.testing.assert_array_equal(batch.utilities, batch.group_valuations)
        largest = max(largest, float(payments.max()), float(batch.payments.max()))
    assert (largest > 1e-6) is rule.charges


@pytest.mark.parametrize("payment_rule", [name for name, r in PAYMENT_RULES.items() if r.nonnegative])
def test_nonnegative_flag(payment_rule: str, divergence: str, rng: np.random.Generator) -> None:
    """``nonnegative=True`` (Proposition 4.4 for p^AFF): no payment below -1e-12, for truthful
    profiles and for random deviations of one group."""
    rule = get_payment_rule(payment_rule)
    worst = 0.0
    for _ in range(50):
        game = random_game(rng)
        mechanism = game.mechanism(divergence, rule)
        truthful = outcome(mechanism, game.truth, game.truth)
        i = int(rng.integers(0, game.rewards.shape[0]))
        rewards, sizes = _random_reports(rng, game, 6)
        batch = deviation(mechanism, game.truth, game.truth, i).outcomes(rewards[None], sizes[None])
        lie = outcome(mechanism, game.truth, game.truth.with_report(i, rewards[0], sizes[0]))
        worst = min(
            worst, float(truthful.payments.min()), float(batch.payments.min()), float(lie.payments.min())
        )
    assert worst >= -1e-12


@pytest.mark.parametrize("payment_rule", [name for name, r in PAYMENT_RULES.items() if r.dsic])
def test_dsic_flag(payment_rule: str, divergence: str, rng: np.random.Generator) -> None:
    """``dsic=True`` (Proposition 4.4 for p^AFF): on random games no report of the size,
    mixing and polarise families (``sweep``) and no random valid report (``deviation``) beats
    truth by more than 1e-9."""
    rule = get_payment_rule(payment_rule)
    worst = -np.inf
    for _ in range(10):
        random = random_game(rng, log10_lambda=(-2.0, 2.0))
        game = random.game(divergence, rule)
        i = int(rng.integers(0, game.n_groups))
        for family, parameters in SWEPT_FAMILIES.items():
            result = sweep(game, i, family, parameters)
            assert result.payment_rule is rule
            assert result.converged
            worst = max(worst, float(result.gains().max()))
        rewards, sizes = _random_reports(rng, random, 8)
        batch = deviation(game.mechanism, game.truth, game.reports, i).outcomes(rewards[None], sizes[None])
        truth = outcome(game.mechanism, game.truth, game.reports).utilities[i]
        worst = max(worst, float((batch.utilities - truth).max()))
    assert worst <= 1e-9


def test_deviation_outcomes_equal_outcome_at_each_point(
    payment_rule: str, divergence: str, rng: np.random.Generator
) -> None:
    """``Deviation.outcomes`` at each point equals ``outcome`` on the profile with that group's
    report replaced (the others misreport too), to 1e-12."""
    rule = get_payment_rule(payment_rule)
    for _ in range(5):
        game = random_game(rng, log10_lambda=(-2.0, 2.0))
        n, m = game.rewards.shape
        mechanism = Mechanism(
            game.pi_init, divergence, game.lam, payment_rule=rule, outcome_costs=rng.random(m)
        )
        others = Profile(random_rewards(rng, n, m, game.normalization), game.sizes + 1.0)
        i = int(rng.integers(0, n))
        rewards, sizes = _random_reports(rng, game, 6)
        batch = deviation(mechanism, game.truth, others, i).outcomes(rewards[None], sizes[None])
        for k in range(sizes.size):
            ref = outcome(mechanism, game.truth, others.with_report(i, rewards[k], sizes[k]))
            np.testing.assert_allclose(batch.distributions[0, k], ref.distribution, rtol=0, atol=1e-12)
            assert abs(batch.valuations[0, k] - ref.valuations[i]) <= 1e-12
            assert abs(batch.group_valuations[0, k] - ref.group_valuations[i]) <= 1e-12
            assert abs(batch.payments[0, k] - ref.payments[i]) <= 1e-12
            assert abs(batch.utilities[0, k] - ref.utilities[i]) <= 1e-12
            assert abs(batch.social_welfare[0, k] - ref.social_welfare) <= 1e-12
            assert abs(batch.values[0, k] - ref.objective) <= 1e-12
            if rule.dsic or not rule.charges:  # a first term that the report does not move
                assert abs(batch.leave_one_out_values[0] - ref.payment.leave_one_out_values[i]) <= 1e-12
            assert batch.status[0, k] == CONVERGED
