"""Guards of the tables of prompts, the least-cost payments, the comparison, the bootstrap
intervals and the fair rules (issue 27): each test fails under a mutant of
benchmarks/mutation.py that the modules' own tests let through (tolerances probed on both
sides, boundary counts, error locations, hand-worked shortest paths, ...)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from rlhf_mech.core import Normalization
from rlhf_mech.files._prompt_tables import PromptColumns, TableError, checked_columns

REWARDS = np.array([[0.5, 0.5, 0.2, 0.3, 0.5], [1.0, 0.0, 0.0, 0.5, 0.5]])


def _checked(max_outcomes: int = 5, **fields):
    """Two prompts (2 and 3 outcomes) of two groups, ``fields`` replacing the defaults."""
    columns = {"group_names": ("a", "b"), "prompts": ("p0", "p1"), "offsets": np.array([0, 2, 5])}
    columns["rewards"] = REWARDS.copy()
    columns.update(fields)
    return checked_columns(PromptColumns(**columns), ("a", "b"), Normalization("sum"), 10, max_outcomes)


# --- tables of prompts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("excess", "accepted"), [(0.5e-9, True), (-0.5e-9, True), (2e-9, False), (-1e-7, False)]
)
def test_a_prompts_rewards_must_sum_to_one_within_1e_9(excess: float, accepted: bool) -> None:
    rewards = REWARDS.copy()
    rewards[1, 4] += excess
    if accepted:
        np.testing.assert_array_equal(_checked(rewards=rewards).rewards, rewards)  # kept as written
    else:
        with pytest.raises(TableError, match=r"^rewards: group 'b' on prompt 1: "):
            _checked(rewards=rewards)


@pytest.mark.parametrize("excess", [2.0**-31, -(2.0**-31)])  # 4.7e-10: sums exact in any order
def test_an_initial_distribution_within_1e_9_of_one_is_divided_by_its_sum(excess: float) -> None:
    initial = np.array([0.5, 0.5, 0.25, 0.25, 0.5 + excess])
    table = _checked(initial=initial)
    np.testing.assert_allclose(table.pi_init[2:], initial[2:] / initial[2:].sum(), rtol=0, atol=1e-15)
    total = 1.0 + excess
    assert table.notes == (f"initial distribution of prompts[1] divided by its sum {total!r} to sum to 1",)


@pytest.mark.parametrize("excess", [2.0**-28, -(2.0**-28), 2.0**-23])  # 3.7e-9, 1.2e-7
def test_an_initial_distribution_off_one_by_more_than_1e_9_is_refused(excess: float) -> None:
    initial = np.array([0.5, 0.5, 0.25, 0.25, 0.5 + excess])
    total = 1.0 + excess
    with pytest.raises(TableError) as err:
        _checked(initial=initial)
    assert (
        str(err.value) == f"initial: prompt 1: probabilities sum to {total!r}, not 1"
    )  # a number, no numpy repr


def test_a_prompt_without_outcomes_is_refused() -> None:
    with pytest.raises(TableError, match=r"^offsets: must grow from 0, by at least 1 a prompt"):
        _checked(prompts=("p0", "p1", "p2"), offsets=np.array([0, 2, 2, 5]))


@pytest.mark.parametrize("zero", [0, 1])
def test_a_prompt_weight_of_zero_is_refused(zero: int) -> None:
    weights = np.array([1.0, 1.0])
    weights[zero] = 0.0
    with pytest.raises(TableError, match=rf"^weights: prompt {zero}: weight 0.0; weights must be > 0"):
        _checked(weights=weights)


@pytest.mark.parametrize(("outcome", "prompt"), [(0, 0), (1, 0), (2, 1), (4, 1)])
def test_a_bad_reward_names_the_prompt_that_owns_its_outcome(outcome: int, prompt: int) -> None:
    """Outcomes 0-1 belong to prompt 0 and 2-4 to prompt 1 (offsets 0, 2, 5): the first
    outcome of a prompt is its own, not the previous prompt's last."""
    rewards = REWARDS.copy()
    rewards[0, outcome] = -0.25
    with pytest.raises(TableError, match=rf"^rewards: group 'a' on prompt {prompt}: "):
        _checked(rewards=rewards)


@pytest.mark.parametrize(("max_outcomes", "accepted"), [(6, True), (5, True), (4, False)])
def test_a_table_may_hold_exactly_the_largest_outcome_count(max_outcomes: int, accepted: bool) -> None:
    if accepted:
        assert _checked(max_outcomes).offsets.tolist() == [0, 2, 5]
    else:
        with pytest.raises(TableError, match=r"^offsets: more than 4 outcomes in all prompts together"):
            _checked(max_outcomes)


# --- least-cost payments: a hand-worked pair of types ---------------------------------------------


def _least_cost(own: list[float]):
    """Two types, edges ``p_b - p_a <= L[a, b] + tol / K`` with L = [[0, -0.3], [0.5, 0]],
    tol = 0.1 (so each edge gets 0.05): dist(0 -> 1) = -0.25, dist(1 -> 0) = 0.55."""
    from rlhf_mech.analysis import least_cost_payments

    gains = np.array([[0.0, -0.3], [0.5, 0.0]])
    result = SimpleNamespace(monotone=True, gains=gains, tol=0.1, K=2, valuations=np.diag(own))
    return least_cost_payments(result)


def test_least_cost_payments_of_two_types_by_hand() -> None:
    """lowest_a = -min(0, min_c dist(a -> c)) = (0.25, 0); highest_b = min_a (V_aa + dist(a -> b))
    = (min(1, 2 + 0.55), min(1 - 0.25, 2)) = (1, 0.75); truth is type 0."""
    payments = _least_cost([1.0, 2.0])
    assert payments.exists and payments.reason == ""
    np.testing.assert_allclose(payments.lowest, [0.25, 0.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(payments.highest, [1.0, 0.75], rtol=0, atol=1e-12)
    assert payments.at_truth == pytest.approx((0.25, 1.0), abs=1e-12)


def test_least_cost_payments_that_are_not_ir_name_the_type_that_falls_short() -> None:
    """Type 0 is left 0.1 - 0.25 = -0.15 (beyond tol = 0.1); type 1 is left 2 > 0."""
    payments = _least_cost([0.1, 2.0])
    assert not payments.exists and payments.at_truth is None
    assert (
        payments.reason
        == "the cheapest DSIC payments >= 0 leave type 0 a utility of -0.15 < 0: none is also IR"
    )


# --- compare: verdicts on both sides of the tolerance -----------------------------------------------


def _game():
    from rlhf_mech.core import Game, Mechanism, Profile

    rewards = np.array([[0.1, 0.5, 0.1, 0.3], [0.1, 0.3, 0.5, 0.1]])
    truth = Profile(rewards, np.array([3.0, 7.0]))
    return Game(
        name="guard",
        outcomes=("x0", "x1", "x2", "x3"),
        group_names=("g0", "g1"),
        mechanism=Mechanism(np.full(4, 0.25), "kl", 1.0, "affine_maximizer"),
        normalization="sum",
        truth=truth,
        reports=truth,
        max_size=10.0,
    )


def _evaluate(monkeypatch, utilities: list[float], gains: list[float], payments=None, samples: int = 0):
    """:func:`evaluate` with the truthful utilities, the searches' gains and the random reports'
    payments given (the searches and the solve are replaced; what is left is the verdicts)."""
    import rlhf_mech.analysis._compare as compare_module
    from rlhf_mech.core import Game

    game = _game()
    truthful = SimpleNamespace(
        utilities=np.array(utilities), payments=np.zeros(2), social_welfare=1.0, asw=1.0
    )
    monkeypatch.setattr(Game, "solve", lambda self: SimpleNamespace(truthful=truthful))
    monkeypatch.setattr(
        compare_module,
        "search_misreports",
        lambda game, i, payment, budget, rng: SimpleNamespace(best=SimpleNamespace(gain=gains[i])),
    )
    if payments is not None:

        def fake_deviation(mechanism, truth, reports, i):
            def outcomes(rewards, sizes, keep_distributions):
                return SimpleNamespace(payments=np.asarray(payments, dtype=float)[None, : sizes.shape[-1]])

            return SimpleNamespace(outcomes=outcomes)

        monkeypatch.setattr(compare_module, "deviation", fake_deviation)
    return compare_module.evaluate(game, compare_module.CompareOptions(budget=10, samples=samples, tol=TOL))


TOL = 1e-9


@pytest.mark.parametrize("utility", [0.5, -3.0])
@pytest.mark.parametrize(("ratio", "gameable"), [(0.0, False), (0.5, False), (2.0, True), (500.0, True)])
def test_compare_gameable_above_tol_times_max_1_u(
    monkeypatch, utility: float, ratio: float, gameable: bool
) -> None:
    scale = max(1.0, abs(utility))
    figures = _evaluate(monkeypatch, [2.0, utility], [-0.5, ratio * TOL * scale])
    assert figures.gameable is gameable


@pytest.mark.parametrize(
    ("utility", "ir"), [(0.0, True), (-0.5 * TOL, True), (-2 * TOL, False), (-500 * TOL, False)]
)
def test_compare_ir_within_tol(monkeypatch, utility: float, ir: bool) -> None:
    assert _evaluate(monkeypatch, [1.0, utility], [0.0, 0.0]).ir is ir


def test_compare_total_gain_counts_only_gains(monkeypatch) -> None:
    figures = _evaluate(monkeypatch, [1.0, 1.0], [-0.3, 0.2])
    assert figures.total_gain == 0.2
    assert figures.max_gain == (0.2, "g1")


def test_compare_counts_payments_below_minus_tol_as_negative(monkeypatch) -> None:
    """Four random reports (2 reward points x sizes 1 and W): two below -tol, one within it."""
    figures = _evaluate(
        monkeypatch, [1.0, 1.0], [0.0, 0.0], [-0.5 * TOL, -2 * TOL, -500 * TOL, 0.0], samples=4
    )
    assert [(g.negative_share, g.samples) for g in figures.groups] == [(0.5, 4), (0.5, 4)]


@pytest.mark.parametrize("utility", [0.5, -3.0])
@pytest.mark.parametrize(("ratio", "gameable"), [(0.5, False), (2.0, True), (500.0, True)])
def test_the_audit_verdict_is_gameable_above_tol_times_max_1_u(
    utility: float, ratio: float, gameable: bool
) -> None:
    from rlhf_mech.analysis._compare import audit_verdict

    gain = ratio * TOL * max(1.0, abs(utility))
    audit = SimpleNamespace(
        game=_game(),
        epsilon_ic=(gain, "g1"),
        truthful=SimpleNamespace(truthful=SimpleNamespace(utilities=np.array([2.0, utility]))),
        options=SimpleNamespace(tol=TOL),
    )
    verdict = audit_verdict(audit)
    assert verdict.gameable is gameable
    assert verdict.expected is not gameable  # the game says nothing: a gain is the surprise
    assert verdict.gain == gain and verdict.group == "g1"


# --- bootstrap: BCa splits the ties with the estimate ----------------------------------------------


def test_bca_on_replicates_symmetric_about_the_estimate_is_the_percentile_interval() -> None:
    """Ties with the estimate count half below (Efron 1987): 1 below + 3 ties / 2 = 2.5 of 5, so
    z0 = 0 and with no acceleration the BCa levels are the percentile levels."""
    from rlhf_mech.analysis._bootstrap import INTERVALS

    replicates = np.array([[0.0, 10.0], [2.0, 20.0], [2.0, 20.0], [2.0, 20.0], [4.0, 30.0]])
    estimate = np.array([2.0, 20.0])
    none = np.zeros(2)
    bca = INTERVALS["bca"](replicates, estimate, none, 0.8)
    percentile = INTERVALS["percentile"](replicates, estimate, none, 0.8)
    np.testing.assert_allclose(bca, percentile, rtol=0, atol=1e-9)
    np.testing.assert_allclose(percentile, [[0.8, 14.0], [3.2, 26.0]], rtol=0, atol=1e-12)


# --- the fair rules' checks and gap -----------------------------------------------------------------


@pytest.mark.parametrize("rule", ["nash", "alpha_fair"])
def test_a_welfare_sum_refuses_a_group_that_values_nothing(rule: str) -> None:
    """log v_i (and v^(1 - alpha)) needs v_i > 0: a reward model 0 everywhere is refused; one
    positive somewhere is not."""
    import rlhf_mech.core._fair as fair

    check = (fair.nash() if rule == "nash" else fair.alpha_fair(2.0)).check
    assert check is not None
    check(np.array([[0.5, 0.5], [0.0, 1e-300]]))
    with pytest.raises(ValueError, match="needs every reward model positive somewhere"):
        check(np.array([[0.5, 0.5], [0.0, 0.0]]))


def test_the_maxmin_duality_gap_is_the_weighted_values_above_the_least() -> None:
    """F - P = sum_i y_i v_i - min_i v_i: 0 with all weight on the least value, 1 at (1/2, 1/2)."""
    from rlhf_mech.core._fair import _maxmin_gap

    values = np.array([[1.0, 3.0], [1.0, 3.0]])
    gaps = _maxmin_gap(np.array([[1.0, 0.0], [0.5, 0.5]]), values, np.ones(2))
    np.testing.assert_array_equal(gaps, [0.0, 1.0])
