"""The mechanism ``(psi, p)`` on profiles of reports, measured on the true types (section 3).

* Proposition 4.4: under ``p^AFF`` no misreport (random valid reports and the structured
  families of ``rlhf_mech.analysis``) beats truth by more than 1e-9; truthful utilities
  and payments are non-negative (IR);
* Theorem 4.2: without payments a constant reward cannot gain (case 1) and the +eps/-eps
  polarisation strictly raises the group's valuation when ``min rm_i > 0`` (case 2);
* the bookkeeping of ``ProfileOutcome`` and of ``solve(game)``;
* one game with 10^6 outcomes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from cases import RandomGame, random_game, random_pi_init, random_rewards
from conftest import FULL_SUPPORT_DIVERGENCES

from rlhf_mech.analysis import mixing_misreports, polarise_misreports, size_misreports
from rlhf_mech.analysis._internal import others_reward
from rlhf_mech.core import (
    DIVERGENCES,
    Game,
    Mechanism,
    Normalization,
    Profile,
    outcome,
    solve,
    solve_sw_max,
)

DSIC_TOL = 1e-9
IR_TOL = 1e-12


def candidate_reports(game: RandomGame, i: int, rng: np.random.Generator) -> list[tuple[np.ndarray, float]]:
    """Misreports ``(reward, size)`` of group ``i``: random valid ones (reward domain of
    section 2, size in [1, max_size]) and the misreport families (section 5, Thm 4.2)."""
    m = game.rewards.shape[1]
    rm, w = game.rewards[i], float(game.sizes[i])
    reports: list[tuple[np.ndarray, float]] = []
    for reward in random_rewards(rng, 4, m, game.normalization):
        reports.append((reward, float(rng.uniform(1.0, game.max_size))))
    for reward in random_rewards(rng, 2, m, game.normalization):
        reports.append((reward, w))  # the reward alone
    alphas = rng.uniform(1.0 / w, game.max_size / w, size=2)
    family = size_misreports(rm, w, alphas)
    reports += list(zip(family.rewards, family.sizes, strict=True))
    others = others_reward(game.rewards, game.sizes, i)
    family = mixing_misreports(rm, w, others, np.array([0.0, 0.5, 1.5, 3.0]), game.normalization)
    reports += list(zip(family.rewards, family.sizes, strict=True))
    family = polarise_misreports(rm, w, np.array([0.05, 0.3]), game.normalization)
    reports += list(zip(family.rewards, family.sizes, strict=True))
    return reports


def dsic_regret(game: RandomGame, divergence: str, i: int, rng: np.random.Generator) -> tuple[float, object]:
    """The largest utility gain of group ``i`` over truth among its candidate misreports."""
    mechanism = game.mechanism(divergence)
    truth = outcome(mechanism, game.truth, game.truth)
    # every candidate profile in one call of the kernel (its leading batch axis)
    candidates = candidate_reports(game, i, rng)
    rewards = np.repeat(game.rewards[None], len(candidates), axis=0)
    sizes = np.repeat(game.sizes[None], len(candidates), axis=0)
    rewards[:, i] = [reward for reward, _ in candidates]
    sizes[:, i] = [size for _, size in candidates]
    true_types = Profile(
        np.broadcast_to(game.rewards, rewards.shape), np.broadcast_to(game.sizes, sizes.shape)
    )
    lies = outcome(mechanism, true_types, Profile(rewards, sizes))
    return float(np.max(lies.utilities[:, i] - truth.utilities[i])), truth


@pytest.mark.slow
def test_proposition_4_4_dsic_ir_nonnegative_payments(divergence: str) -> None:
    """Proposition 4.4 on 200 random games: DSIC (regret <= 1e-9), IR (truthful utilities
    >= -1e-12) and ``p_i >= -1e-12``; lambda log-uniform on [1e-3, 1e3]."""
    rng = np.random.default_rng(44)
    worst_regret, worst_utility, worst_payment = -math.inf, math.inf, math.inf
    for _ in range(200):
        game = random_game(rng)
        i = int(rng.integers(0, game.rewards.shape[0]))
        regret, truth = dsic_regret(game, divergence, i, rng)
        worst_regret = max(worst_regret, regret)
        worst_utility = min(worst_utility, float(truth.utilities.min()))
        worst_payment = min(worst_payment, float(truth.payments.min()))
        assert truth.kkt_residual <= 1e-10
    assert worst_regret <= DSIC_TOL
    assert worst_utility >= -IR_TOL
    assert worst_payment >= -IR_TOL


def test_theorem_4_2_case_1_constant_reward_cannot_gain(divergence: str, rng: np.random.Generator) -> None:
    """``s_i = 1``: every model gives the same valuation, so no report helps (p = 0)."""
    for normalization, constant in (("sum", None), ("max", 1.0)):
        game = random_game(rng, normalization=normalization, log10_lambda=(-1.0, 1.0))
        m = game.rewards.shape[1]
        rewards = game.rewards.copy()
        rewards[0] = constant if constant is not None else 1.0 / m
        mechanism = game.mechanism(divergence, "none")
        true_types = Profile(rewards, game.sizes)
        truth = outcome(mechanism, true_types, true_types)
        for report in random_rewards(rng, 5, m, normalization):
            reported = rewards.copy()
            reported[0] = report
            lie = outcome(mechanism, true_types, Profile(reported, game.sizes))
            assert lie.utilities[0] == pytest.approx(truth.utilities[0], rel=1e-14)


@pytest.mark.parametrize("divergence_name", [*FULL_SUPPORT_DIVERGENCES, "chi2"])
def test_theorem_4_2_case_2_polarisation_is_profitable_without_payments(
    divergence_name: str, normalization: Normalization
) -> None:
    """Theorem 4.2 case 2 (appendix B): with ``p = 0``, ``s_i >= 2`` and ``min rm_i > 0``, the
    report +eps at argmax / -eps at argmin (``sum``) or -eps at argmin (``max``) strictly
    raises the group's valuation, whatever the others report. chi^2 gets a lambda large
    enough that the maximiser keeps full support, as the theorem assumes."""
    rng = np.random.default_rng(42)
    smallest_gain = math.inf
    for _ in range(60):
        game = random_game(rng, normalization=normalization, log10_lambda=(-1.0, 1.0))
        n, m = game.rewards.shape
        rewards = game.rewards.copy()
        raw = rng.uniform(0.05, 1.0, size=m)  # min rm_0 > 0 and s_0 >= 2 (almost surely)
        rewards[0] = normalization.normalise(raw)
        # lambda on the scale of the scores, so the change of pi is not lost to rounding
        lam = float(game.sizes.sum() * 10.0 ** rng.uniform(-1.0, 0.5))
        if divergence_name == "chi2":
            lam = float(game.sizes.sum() * 10.0 ** rng.uniform(0.0, 0.5))  # s - mu > -2 lambda
        eps = 0.5 * float(rewards[0].min())
        family = polarise_misreports(rewards[0], game.sizes[0], np.array([eps]), normalization)
        assert not family.adjusted[0]
        reported = rewards.copy()
        reported[0] = family.rewards[0]
        mechanism = Mechanism(game.pi_init, divergence_name, lam, payment_rule="none")
        true_types = Profile(rewards, game.sizes)
        truth = outcome(mechanism, true_types, true_types)
        lie = outcome(mechanism, true_types, Profile(reported, game.sizes))
        assert np.all(truth.distribution > 0.0)
        np.testing.assert_array_equal(lie.payments, np.zeros(n))
        gain = float(lie.group_valuations[0] - truth.group_valuations[0])
        assert gain > 0.0
        assert gain > 1e-12 * game.sizes[0]  # well above rounding
        smallest_gain = min(smallest_gain, gain)
    assert smallest_gain > 0.0


def test_polarisation_gain_is_taken_away_by_the_payment() -> None:
    """The game of ``games/harmless_vs_humor.yaml``: the misreport raises the valuation
    without payments, and p^AFF turns it into a loss (Prop. 4.4)."""
    rewards = np.array([[0.1, 0.5, 0.1, 0.3], [0.1, 0.3, 0.5, 0.1]])
    reported = np.array([[0.05, 0.6, 0.05, 0.3], [0.1, 0.3, 0.5, 0.1]])
    sizes = np.array([3.0, 7.0])
    q = np.array([0.4, 0.3, 0.1, 0.2])
    true_types = Profile(rewards, sizes)
    for rule, profitable in (("none", True), ("affine_maximizer", False)):
        mechanism = Mechanism(q, "kl", 1.0, payment_rule=rule)
        truth = outcome(mechanism, true_types, true_types)
        lie = outcome(mechanism, true_types, Profile(reported, sizes))
        assert bool(lie.utilities[0] > truth.utilities[0]) is profitable
        assert lie.group_valuations[0] > truth.group_valuations[0]


def test_profile_outcome_bookkeeping(divergence: str, rng: np.random.Generator) -> None:
    """Valuations on the true rewards (Def. 3.1), pi and payments on the reports, and
    ``u = w v - p``, ``SW = sum w v``, ``ASW = SW - D_f`` (Def. 4.1)."""
    game = random_game(rng, log10_lambda=(-1.0, 1.0))
    reported_rewards = random_rewards(rng, *game.rewards.shape, game.normalization)
    reported_sizes = game.sizes + 1.0
    out = outcome(game.mechanism(divergence), game.truth, Profile(reported_rewards, reported_sizes))
    solution = solve_sw_max(reported_sizes @ reported_rewards, game.pi_init, divergence, game.lam)
    np.testing.assert_array_equal(out.distribution, solution.pi)
    np.testing.assert_allclose(out.valuations, game.rewards @ out.distribution, rtol=1e-15)
    np.testing.assert_allclose(out.group_valuations, game.sizes * out.valuations, rtol=1e-15)
    np.testing.assert_array_equal(out.utilities, out.group_valuations - out.payments)
    assert out.social_welfare == pytest.approx(math.fsum(out.group_valuations), rel=1e-15)
    d = DIVERGENCES[divergence].value(out.distribution, game.pi_init, game.lam)
    assert out.divergence_value == pytest.approx(float(d), rel=1e-12, abs=1e-15)
    assert out.asw == pytest.approx(out.social_welfare - out.divergence_value, rel=1e-15)
    assert out.kkt_residual <= 1e-10
    assert out.payment.rule == "affine_maximizer"
    assert out.solve.success


def test_score_offset_counts_in_asw_not_in_valuations() -> None:
    rewards = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    sizes = np.array([2.0, 1.0])
    q = np.array([0.5, 0.25, 0.25])
    # outcome costs owned by no group: the score offset -lambda * costs = (-0.3, 0, -0.1)
    mechanism = Mechanism(q, "kl", 0.5, outcome_costs=np.array([0.6, 0.0, 0.2]))
    offset = mechanism.score_offset
    np.testing.assert_array_equal(offset, [-0.3, 0.0, -0.1])
    profile = Profile(rewards, sizes)
    out = outcome(mechanism, profile, profile)
    expected = solve_sw_max(sizes @ rewards + offset, q, "kl", 0.5)
    np.testing.assert_array_equal(out.distribution, expected.pi)
    np.testing.assert_allclose(out.valuations, rewards @ expected.pi, rtol=1e-15)
    assert out.divergence_value == pytest.approx(float(expected.divergence) - float(offset @ expected.pi))
    assert out.asw == pytest.approx(
        out.social_welfare + float(offset @ expected.pi) - float(expected.divergence)
    )
    assert np.all(out.payments >= -1e-12)


def _game(reported_rewards=None, reported_sizes=None) -> Game:
    rewards = np.array([[0.1, 0.5, 0.1, 0.3], [0.1, 0.3, 0.5, 0.1]])
    sizes = np.array([3.0, 7.0])
    return Game(
        name="t",
        outcomes=("refuse", "safe_joke", "edgy_joke", "lecture"),
        group_names=("alices", "bobs"),
        mechanism=Mechanism(np.array([0.4, 0.3, 0.1, 0.2]), "kl", 1.0, payment_rule="affine_maximizer"),
        normalization=Normalization("sum"),
        truth=Profile(rewards, sizes),
        reports=Profile(
            rewards if reported_rewards is None else reported_rewards,
            sizes if reported_sizes is None else reported_sizes,
        ),
        max_size=10.0,
    )


def test_solve_truthful_game_reuses_the_truthful_outcome() -> None:
    solution = solve(_game())
    assert solution.reported is solution.truthful
    np.testing.assert_array_equal(solution.gains, [0.0, 0.0])
    assert solution.payment_rule.name == "affine_maximizer"


def test_solve_compares_reported_with_truthful() -> None:
    game = _game(reported_rewards=np.array([[0.05, 0.6, 0.05, 0.3], [0.1, 0.3, 0.5, 0.1]]))
    solution = solve(game)
    assert solution.reported is not solution.truthful
    assert game.misreporting_groups() == (0,)
    np.testing.assert_array_equal(solution.gains, solution.reported.utilities - solution.truthful.utilities)
    assert solution.gains[0] < 0.0  # p^AFF makes the polarisation unprofitable
    direct = outcome(Mechanism(game.mechanism.pi_init, "kl", 1.0), game.truth, game.reports)
    np.testing.assert_array_equal(solution.reported.utilities, direct.utilities)


def test_solve_payment_rule_override() -> None:
    game = _game(reported_sizes=np.array([5.0, 7.0]))
    solution = solve(game, payment_rule="none")
    assert solution.payment_rule.name == "none"
    np.testing.assert_array_equal(solution.truthful.payments, [0.0, 0.0])
    np.testing.assert_array_equal(solution.reported.payments, [0.0, 0.0])
    assert solution.gains[0] > 0.0  # over-reporting the size pays without payments (section 4.1)
    assert solve(game).gains[0] <= DSIC_TOL


@pytest.mark.slow
@pytest.mark.parametrize("name", ["kl", "chi2"])
def test_a_million_outcomes(name: str) -> None:
    """m = 10^6 outcomes (KL closed form and one Newton divergence), a few pi_init entries of
    1e-300: finite, normalised, eq. OPT to 1e-10, payments finite and >= -1e-9 * scale."""
    rng = np.random.default_rng(11)
    m = 1_000_000
    q = random_pi_init(rng, m)
    q[:3] = 1e-300
    rewards = random_rewards(rng, 2, m, "max")
    sizes = np.array([1.0, 2.0])
    profile = Profile(rewards, sizes)
    out = outcome(Mechanism(q, name, 0.5), profile, profile)
    assert out.solve.success
    assert np.all(np.isfinite(out.distribution)) and np.all(out.distribution >= 0.0)
    assert abs(math.fsum(out.distribution) - 1.0) <= 1e-12
    assert out.kkt_residual <= 1e-10
    assert np.all(np.isfinite(out.payments))
    assert float(out.payments.min()) >= -1e-9 * float(sizes.sum())
    assert np.all(out.utilities >= -1e-9 * float(sizes.sum()))
