"""Tests that catch the bugs we fear (issue 27): each would have failed under a mutant of
benchmarks/mutation.py that the rest of the suite let through.

They probe the edges a real bug sits at: both sides of every tolerance that decides a verdict
or a status, batched paths split into several chunks, ranges violated from above, game-level
values against the per-group figures, independent oracles (the noisy objective by solving
every noise sample, the heuristics' payment by KL's closed form, a negative cycle of length
three), solves that do not converge, and outputs nobody read (MaxMin's dual weights under TV,
the audit's payment floor over searched reports, its default tolerance).
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

import rlhf_mech.analysis._implementability as implementability_module
import rlhf_mech.analysis._runner as runner_module
import rlhf_mech.core._fair as fair_module
import rlhf_mech.core._payments as payments_module
import rlhf_mech.core._prompts as prompts_module
import rlhf_mech.core._solver as solver_module
import rlhf_mech.core._training as training_module
from rlhf_mech.analysis import (
    AuditOptions,
    ReportSpace,
    TypeSet,
    audit_game,
    implementability,
    mixing_misreports,
    negative_cycle,
    rochet_payments,
    shortest_paths,
    sweep,
)
from rlhf_mech.analysis._checks import (
    Finding,
    existential_findings,
    has_nonnegative_payments,
    is_approximately_dsic,
    is_dsic,
    is_ir,
    is_profitable_without_payment,
    payment_gap,
    range_findings,
)
from rlhf_mech.analysis._internal import group_seed, noisy_objective, size_bound
from rlhf_mech.analysis._objective import ReportObjective
from rlhf_mech.core import (
    Expectations,
    Figures,
    Game,
    Mechanism,
    Normalization,
    Profile,
    PromptGame,
    PromptOutcome,
    deviation,
    get_divergence,
    get_payment_rule,
    mirror_ascent,
    outcome,
    solve,
    solve_fair,
    solve_prompts,
    solve_sw_max,
)
from rlhf_mech.core._duals import DualProblem, simplex_barrier
from rlhf_mech.core._internal import CONVERGED, MAXITER, STATUS_MESSAGES
from rlhf_mech.files import save_cycle
from rlhf_mech.files._arrays import read_array
from rlhf_mech.render import ImplementabilityOutput, render_implementability

TOL = 1e-9


def make_game(
    rewards, sizes, *, pi_init=None, divergence="kl", lam=1.0, payment="affine_maximizer", **fields
) -> Game:
    rewards = np.asarray(rewards, dtype=float)
    n, m = rewards.shape
    q = np.full(m, 1.0 / m) if pi_init is None else np.asarray(pi_init, dtype=float)
    truth = Profile(rewards, np.asarray(sizes, dtype=float))
    return Game(
        name="guard",
        outcomes=tuple(f"x{j}" for j in range(m)),
        group_names=tuple(f"g{i}" for i in range(n)),
        mechanism=Mechanism(q, divergence, lam, payment),
        normalization="sum",
        truth=truth,
        reports=fields.pop("reports", truth),
        max_size=10.0,
        **fields,
    )


TWO_GROUPS = ([[0.1, 0.5, 0.1, 0.3], [0.1, 0.3, 0.5, 0.1]], [3.0, 7.0])


# --- verdicts: both sides of every tolerance ----------------------------------------------------


def _group(gain: float, name: str = "g0") -> SimpleNamespace:
    """What the checks read of a group's search: its best gain (and words for the detail)."""
    best = SimpleNamespace(gain=gain, found_by="test")
    result = SimpleNamespace(best=best, best_at_true_size=best, evaluations=1, payment_rule="x")
    prediction = SimpleNamespace(predicted=False, theorem="", reason="")
    return SimpleNamespace(name=name, dsic=result, no_payment=result, prediction=prediction)


@pytest.mark.parametrize(("gain", "holds"), [(0.0, True), (TOL, True), (2 * TOL, False), (500 * TOL, False)])
def test_is_dsic_at_its_tolerance(gain: float, holds: bool) -> None:
    """A gain between tol and 1000 tol is a violation (Definition 3.2 within tol)."""
    assert is_dsic(_group(gain), TOL).holds is holds


@pytest.mark.parametrize(("utility", "holds"), [(-TOL, True), (-2 * TOL, False), (-500 * TOL, False)])
def test_is_ir_at_its_tolerance(utility: float, holds: bool) -> None:
    assert is_ir("g0", utility, TOL).holds is holds


@pytest.mark.parametrize(("payment", "holds"), [(-TOL, True), (-2 * TOL, False), (-500 * TOL, False)])
def test_nonnegative_payments_at_its_tolerance(payment: float, holds: bool) -> None:
    assert has_nonnegative_payments("g0", payment, 3, TOL).holds is holds


@pytest.mark.parametrize(("gain", "holds"), [(5e-3 * TOL, False), (TOL, False), (2 * TOL, True)])
def test_gain_without_payment_at_its_tolerance(gain: float, holds: bool) -> None:
    assert is_profitable_without_payment(_group(gain), TOL).holds is holds


@pytest.mark.parametrize(
    ("gap", "holds"), [(0.5 * TOL, True), (-0.5 * TOL, True), (2 * TOL, False), (-2 * TOL, False)]
)
def test_payment_gap_on_both_sides_of_p_aff(gap: float, holds: bool) -> None:
    """|p - p^AFF| <= tol: a payment below the exact one is as far off as one above."""
    assert payment_gap("g0", 0.25 + gap, 0.25, TOL).holds is holds


@pytest.mark.parametrize(
    ("gain", "holds"), [(0.1, True), (0.1 + TOL, True), (0.1 + 2 * TOL, False), (0.15, False)]
)
def test_noisy_dsic_at_the_bound_of_theorem_4_12(gain: float, holds: bool) -> None:
    """E gain <= 2 w_i eps (+ tol): the bound itself is 0.1 here, not twice it."""
    noisy = SimpleNamespace(gain=gain, bound=0.1, eps=0.01, samples=8, stderr=0.0, max_sample_gain=gain)
    group = SimpleNamespace(name="g0", noisy=noisy)
    finding = is_approximately_dsic(group, TOL)  # type: ignore[arg-type]
    assert finding is not None and finding.holds is holds


def _range_case(profile: str, value: float) -> list[Finding]:
    expect = Expectations(profile=profile, ranges={"utility": {"g1": (0.0, 1.0)}, "asw": {"": (0.0, 1.0)}})
    figures = SimpleNamespace(utilities=np.array([5.0, value]), asw=value)
    other = SimpleNamespace(utilities=np.array([5.0, 0.5]), asw=0.5)
    truthful, reported = (figures, other) if profile == "truthful" else (other, figures)
    game = SimpleNamespace(expect=expect, group_names=("g0", "g1"))
    solution = SimpleNamespace(truthful=truthful, reported=reported)
    return range_findings(game, solution, TOL)  # type: ignore[arg-type]


@pytest.mark.parametrize("profile", ["truthful", "reported"])
@pytest.mark.parametrize(
    ("value", "holds"),
    [(1.0 + TOL, True), (1.0 + 2 * TOL, False), (3.0, False), (-TOL, True), (-2 * TOL, False), (-3.0, False)],
)
def test_expect_ranges_fail_from_above_and_below(profile: str, value: float, holds: bool) -> None:
    """Both ends of a range count, on the profile the block names (a per-group quantity and a
    game-level one)."""
    found = _range_case(profile, value)
    assert [(f.quantity, f.group) for f in found] == [("utility", "g1"), ("asw", "")]
    assert [f.value for f in found] == [value, value]
    assert all(f.holds is holds for f in found)


def _per_group(check: str, values: list[float], holds: list[bool]) -> dict[str, list[Finding]]:
    findings = [
        Finding(check=check, group=f"g{k}", value=v, holds=h, expected=None, statement="")
        for k, (v, h) in enumerate(zip(values, holds, strict=True))
    ]
    return {check: findings}


@pytest.mark.parametrize(
    ("key", "check", "values", "holds", "worst", "shown"),
    [
        ("dsic", "dsic", [0.3, 0.05, 0.7], [False, False, False], 0.7, "g0, g1, g2"),
        ("dsic", "dsic", [0.0, 0.4, 0.0], [True, False, True], 0.4, "g1"),
        ("ir", "ir", [0.2, -0.5, -0.1], [True, False, False], -0.5, "g1, g2"),
        (
            "nonnegative_payments",
            "nonnegative_payments",
            [-0.2, 0.3, -0.6],
            [False, True, False],
            -0.6,
            "g0, g2",
        ),
        ("profitable_without_payment", "no_payment", [0.2, 0.0, 0.9], [True, False, True], 0.9, "g0, g2"),
    ],
)
def test_existential_findings_take_the_worst_group(key, check, values, holds, worst, shown) -> None:
    """``dsic: false`` (etc.) is about some group: the game-level value is the most extreme
    group's figure (largest gain, smallest utility or payment), the groups that show it named."""
    trigger = key == "profitable_without_payment"
    game = SimpleNamespace(expect=Expectations(**{key: trigger}))
    (found,) = existential_findings(game, _per_group(check, values, holds))  # type: ignore[arg-type]
    assert found.value == worst
    assert found.holds
    assert found.detail == f"shown by {shown}"


def test_existential_finding_fails_when_no_group_shows_it() -> None:
    game = SimpleNamespace(expect=Expectations(profitable_without_payment=True))
    found = existential_findings(game, _per_group("no_payment", [1e-12, 0.0], [False, False]))  # type: ignore[arg-type]
    assert [f.holds for f in found] == [False]
    assert found[0].value == 1e-12


def test_the_audit_default_tolerance_and_budget_are_pinned() -> None:
    """The defaults a CI job relies on when it gives no options (README: 1e-9, 200)."""
    options = AuditOptions()
    assert options.tol == 1e-9
    assert options.budget == 200
    with pytest.raises(ValueError, match="`budget`"):
        AuditOptions(budget=9)
    with pytest.raises(ValueError, match="`tol`"):
        AuditOptions(tol=float("inf"))


# --- the Newton multiplier's status: both sides of its tolerances ---------------------------------


def _solve_with_damped_newton(monkeypatch, stall_below: float) -> tuple[np.ndarray, list[float]]:
    """Hellinger (Newton) solves whose every step is 0.99 of Newton's (the error shrinks ~100x
    a pass) and is 0 once ``|T - 1| < stall_below``: the multiplier stalls with a known error.
    Returns the statuses and the largest ``|T - 1|`` of each pass."""
    real = solver_module._newton_step
    errors: list[float] = []

    def damped(mass, slope, power, curvature=None):
        error = np.abs(mass - 1.0)
        errors.append(float(error.max()))
        return np.where(error < stall_below, 0.0, 0.99 * real(mass, slope, power, curvature))

    monkeypatch.setattr(solver_module, "_newton_step", damped)
    scores = np.random.default_rng(0).random((4, 6))
    result = solve_sw_max(scores, np.full(6, 1.0 / 6.0), "hellinger", 0.7)
    return result.status, errors


def test_a_multiplier_that_stalls_above_the_stall_tolerance_is_stalled(monkeypatch) -> None:
    """_STALL_TOL = 1e-10: a row stuck at |T - 1| ~ 4e-9 (between 1e-10 and 1e-7) did not converge."""
    status, errors = _solve_with_damped_newton(monkeypatch, 1e-7)
    assert 1e-10 < errors[-1] < 1e-7  # the band a 1e3x looser tolerance would accept
    assert np.all(status == solver_module.STALLED)


def test_a_multiplier_that_stalls_within_the_stall_tolerance_converged(monkeypatch) -> None:
    status, errors = _solve_with_damped_newton(monkeypatch, 1e-11)
    assert 4 * np.finfo(float).eps < errors[-1] < 1e-10
    assert np.all(status == CONVERGED)


def test_a_multiplier_that_moves_converges_only_at_a_few_ulps(monkeypatch) -> None:
    """Without a stall the iteration runs until |T - 1| <= 4 eps (not 4e3 eps)."""
    status, errors = _solve_with_damped_newton(monkeypatch, 0.0)
    assert np.all(status == CONVERGED)
    assert errors[-1] <= 4 * np.finfo(float).eps
    assert any(4 * np.finfo(float).eps < e < 4e3 * np.finfo(float).eps for e in errors)


# --- batched paths split into several chunks ------------------------------------------------------


def _prompt_game(rng: np.random.Generator, prompts: int, m: int, divergence: str, costs: bool) -> PromptGame:
    """``prompts`` prompts of ``m`` outcomes sharing a uniform ``pi_init`` (one batch), each
    with its own rewards and (``costs``) its own outcome costs; group 0 misreports."""
    n = 3
    sizes = np.array([2.0, 3.0, 5.0])
    games = []
    for x in range(prompts):
        truth = rng.random((n, m))
        truth /= truth.sum(axis=1, keepdims=True)
        reports = truth.copy()
        reports[0] = rng.dirichlet(np.ones(m))
        cost = rng.uniform(0.0, 2.0, m) if costs else None
        games.append(
            Game(
                name=f"p{x}",
                outcomes=tuple(f"x{j}" for j in range(m)),
                group_names=("a", "b", "c"),
                mechanism=Mechanism(np.full(m, 1.0 / m), divergence, 0.8, outcome_costs=cost),
                normalization="sum",
                truth=Profile(truth, sizes),
                reports=Profile(reports, sizes * [1.5, 1.0, 1.0]),
            )
        )
    weights = rng.random(prompts)
    return PromptGame.from_games("g", tuple(f"p{x}" for x in range(prompts)), games, weights / weights.sum())


def _assert_prompts_match_single_solves(game: PromptGame) -> None:
    solution = solve_prompts(game)
    for x, single in enumerate(game.games):
        alone = solve(single)
        for label in ("truthful", "reported"):
            got, ref = getattr(solution, label), getattr(alone, label)
            for name in ("valuations", "payments", "utilities"):
                prompt_figure = getattr(got.per_prompt, name)[x]
                np.testing.assert_allclose(prompt_figure, getattr(ref, name), rtol=0, atol=1e-12)
            np.testing.assert_allclose(got.distributions[x], ref.distribution, rtol=0, atol=1e-14)
        gains = alone.reported.utilities - alone.truthful.utilities
        np.testing.assert_allclose(solution.prompt_gains[x], gains, rtol=0, atol=1e-12)


@pytest.mark.parametrize("divergence", ["kl", "chi2"])
def test_a_prompt_batch_split_into_chunks_solves_every_prompt(monkeypatch, divergence: str) -> None:
    """Seven prompts of one batch in chunks of two (the last chunk one prompt): every prompt's
    figures are its single solve's."""
    monkeypatch.setattr(prompts_module, "rows_per_chunk", lambda m, budget=0: 2)
    _assert_prompts_match_single_solves(_prompt_game(np.random.default_rng(1), 7, 4, divergence, costs=False))


@pytest.mark.parametrize("divergence", ["kl", "chi2"])
def test_prompts_sharing_pi_init_with_different_costs_are_solved_with_their_own(divergence: str) -> None:
    """One batch (same outcome count and pi_init), each prompt with its own outcome costs."""
    game = _prompt_game(np.random.default_rng(2), 5, 4, divergence, costs=True)
    assert len(game.batches()) == 1
    _assert_prompts_match_single_solves(game)


def test_leave_one_out_payments_split_into_chunks_match_direct_solves(monkeypatch) -> None:
    """Eq. (1) for five groups, the leave-one-out problems two per chunk (chi2: no shortcut),
    against ``V_-i - (V - w_i <pi, rm_i>)`` from one solve per group."""
    rng = np.random.default_rng(3)
    rewards = rng.dirichlet(np.ones(6), size=5)
    sizes = rng.uniform(1.0, 5.0, 5)
    game = make_game(rewards, sizes, divergence="chi2", lam=0.6)
    q = game.mechanism.pi_init
    scores = sizes @ rewards
    full = solve_sw_max(scores, q, "chi2", 0.6)
    expected = [
        solve_sw_max(scores - sizes[i] * rewards[i], q, "chi2", 0.6).value
        - (full.value - sizes[i] * rewards[i] @ full.pi)
        for i in range(5)
    ]
    monkeypatch.setattr(payments_module, "rows_per_chunk", lambda m, budget=0: 2)
    np.testing.assert_allclose(solve(game).truthful.payments, expected, rtol=0, atol=1e-12)


def test_deviation_blocks_of_three_points_match_one_block() -> None:
    """One group's deviations in blocks of three points (seven points: 3, 3, 1) are those of
    one block."""
    rng = np.random.default_rng(4)
    game = make_game(*TWO_GROUPS, divergence="chi2", lam=0.5)
    side = deviation(game.mechanism, game.truth, game.truth, 0)
    rewards = rng.dirichlet(np.ones(4), size=(1, 7))
    sizes = rng.uniform(1.0, 9.0, (1, 7))
    whole = side.outcomes(rewards, sizes)
    blocks = side.outcomes(rewards, sizes, chunk_elements=3 * 4)
    for name in ("utilities", "payments", "valuations", "social_welfare", "status"):
        np.testing.assert_array_equal(getattr(blocks, name), getattr(whole, name))


# --- an independent oracle for the noisy objective (Theorem 4.12) ---------------------------------


def test_the_noisy_objective_is_the_mean_gain_over_its_noise_samples() -> None:
    """Each sample solved as its own game (every group's report plus that sample's noise, the
    utility on the true types): the objective is the mean gain over the samples, not the best."""
    game = make_game(*TWO_GROUPS, lam=0.5)
    space = ReportSpace.of(game)
    w = float(game.truth.sizes[0])
    objective = noisy_objective(game, 0, space, 0.05, 6, np.random.SeedSequence(7))
    own_noise = objective.extra / w  # (S, m): group 0's noise in each sample
    others = objective.group.others_rewards  # (S, 1, m): the others' noisy reports
    report = np.array([0.05, 0.6, 0.05, 0.3])
    per_sample = []
    for s in range(own_noise.shape[0]):

        def utility(reward: np.ndarray, s: int = s) -> float:
            noisy = Profile(np.vstack([reward + own_noise[s], others[s]]), game.truth.sizes)
            return float(outcome(game.mechanism, game.truth, noisy).utilities[0])

        per_sample.append(utility(report) - utility(game.truth.rewards[0]))
    assert np.ptp(per_sample) > 1e-3  # the samples disagree: mean and best differ
    gains, _ = objective(w * report[None])
    assert gains[0] == pytest.approx(np.mean(per_sample), abs=1e-12)


# --- certificates: a negative cycle of length three, Bellman-Ford's K rounds -----------------------


def test_shortest_paths_with_one_type_and_with_a_path_of_k_minus_1_edges() -> None:
    """K rounds: a shortest path of K - 1 edges (a chain) is found, and one type has distance 0."""
    np.testing.assert_array_equal(shortest_paths(np.zeros((1, 1))), [0.0])
    np.testing.assert_array_equal(rochet_payments(np.zeros((1, 1))), [0.0])
    k = 5
    chain = np.full((k, k), 10.0)
    chain[np.arange(k - 1), np.arange(1, k)] = 1.0  # 0 -> 1 -> ... -> K-1, each edge 1
    np.testing.assert_array_equal(shortest_paths(chain), np.arange(k, dtype=float))
    np.testing.assert_array_equal(rochet_payments(chain), np.arange(k, dtype=float))
    assert negative_cycle(chain) is None


#: Types 1, 2, 3 each gain 1 by reporting the next (1 -> 2 -> 3 -> 1); nobody else gains.
#: V[a, b] = w_b <pi_a, rm_b>: type b's value of type a's model (1 on the diagonal).
CYCLE_VALUATIONS = np.array(
    [
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 2.0],  # type 3 values type 1's model at 2
        [0.0, 2.0, 1.0, 0.0],  # type 1 values type 2's model at 2
        [0.0, 0.0, 2.0, 1.0],  # type 2 values type 3's model at 2
    ]
)


def test_a_negative_cycle_of_three_edges_is_walked_along_its_edges() -> None:
    weights = np.diagonal(CYCLE_VALUATIONS)[None, :] - CYCLE_VALUATIONS  # L[a, b] = V[b, b] - V[a, b]
    cycle = negative_cycle(weights)
    assert cycle is not None and sorted(cycle.tolist()) == [1, 2, 3]
    edges = weights[cycle, np.roll(cycle, -1)]
    np.testing.assert_array_equal(edges, [-1.0, -1.0, -1.0])  # the reverse cycle would sum to +3


def _cycle_of_three(monkeypatch, **options):
    """The implementability of four types whose valuations are :data:`CYCLE_VALUATIONS`
    (the negative cycle 3 -> 1 -> 2 -> 3, each step a gain of 1)."""
    rewards = np.random.default_rng(5).dirichlet(np.ones(4), size=4)
    types = TypeSet("grid", rewards, rewards, np.full(4, 3.0))
    monkeypatch.setattr(
        implementability_module,
        "gain_matrix",
        lambda pi, r, w: (CYCLE_VALUATIONS, np.diagonal(CYCLE_VALUATIONS)[None, :] - CYCLE_VALUATIONS),
    )
    return implementability(make_game(*TWO_GROUPS), 0, types, **options)


@pytest.mark.parametrize("graph", ["scipy", "numpy"])
def test_a_certified_cycle_of_three_types_says_who_reports_whom(monkeypatch, graph: str) -> None:
    """The certificate lists types that each gain by reporting the next one (Definition E.1)."""
    result = _cycle_of_three(monkeypatch, graph=graph)
    assert not result.monotone and result.cycle is not None
    assert sorted(result.cycle.tolist()) == [1, 2, 3]
    np.testing.assert_array_equal(result.cycle_gains, [1.0, 1.0, 1.0])
    for own, report in zip(result.cycle, np.roll(result.cycle, -1), strict=True):
        assert CYCLE_VALUATIONS[report, own] - CYCLE_VALUATIONS[own, own] == 1.0  # own gains by reporting
    assert result.cycle_sum == -3.0


# --- solves that do not converge ------------------------------------------------------------------


def _unconverged(monkeypatch, name: str) -> None:
    """The training rule's solves (``solve_sw_max``) or its leave-one-out values
    (``optimal_values``) get one Newton iteration: hellinger does not converge in one."""
    real = getattr(training_module, name)
    monkeypatch.setattr(training_module, name, lambda *a, **k: real(*a, **{**k, "maxiter": 1}))


def test_an_unconverged_training_solve_is_flagged_everywhere(monkeypatch) -> None:
    game = make_game(*TWO_GROUPS, divergence="hellinger", lam=0.3)
    side = deviation(game.mechanism, game.truth, game.truth, 0)
    objective = ReportObjective(side, ReportSpace.of(game), 3.0 * game.truth.rewards[0])
    _unconverged(monkeypatch, "solve_sw_max")
    profile = outcome(game.mechanism, game.truth, game.truth)
    assert not profile.converged and np.all(profile.status != CONVERGED)
    side = deviation(game.mechanism, game.truth, game.truth, 0)
    points = side.outcomes(np.tile(game.truth.rewards[0], (1, 3, 1)), np.full((1, 3), 3.0))
    assert np.all(points.status != CONVERGED)
    gains, _ = objective(np.array([[0.3, 1.5, 0.3, 0.9], [0.6, 0.6, 0.6, 1.2]]))
    assert np.all(gains == -np.inf)  # the search must not trust them
    assert objective.stalled == 2


def test_an_unconverged_leave_one_out_solve_is_flagged(monkeypatch) -> None:
    """The training solve converges; the first term of eq. (1) does not: the payment says so."""
    game = make_game(*TWO_GROUPS, divergence="hellinger", lam=0.3)
    _unconverged(monkeypatch, "optimal_values")
    profile = outcome(game.mechanism, game.truth, game.truth)
    assert profile.solve.success and np.all(profile.status != CONVERGED)
    side = deviation(game.mechanism, game.truth, game.truth, 1)
    points = side.outcomes(np.tile(game.truth.rewards[1], (1, 2, 1)), np.full((1, 2), 7.0))
    assert np.all(points.status != CONVERGED)


def test_a_report_failing_in_one_noise_sample_is_distrusted_and_the_least_payment_kept() -> None:
    """Two noise samples (Theorem 4.12): a report whose solve fails in one sample gets -inf, the
    others their mean utility less truth's; the smallest payment is over every sample and
    report (the kernel is replaced by fixed figures)."""
    game = make_game(*TWO_GROUPS)

    def outcomes(batch, gradients, keep_distributions):
        if batch.shape[1] == 1:  # the truthful report
            return SimpleNamespace(
                utilities=np.full((2, 1), 0.1), status=np.zeros((2, 1), int), payments=np.zeros((2, 1))
            )
        status = np.full((2, 3), CONVERGED)
        status[0, 1] = MAXITER
        utilities = np.array([[0.1, 0.2, 0.3], [0.3, 0.4, 0.5]])
        return SimpleNamespace(
            utilities=utilities, status=status, payments=np.array([[0.5, -0.7, 0.2], [0.9, 0.1, 0.3]])
        )

    group = SimpleNamespace(
        mechanism=game.mechanism, games=2, differentiable=False, contribution_outcomes=outcomes
    )
    objective = ReportObjective(
        group, ReportSpace.of(game), 3.0 * game.truth.rewards[0], extra=np.zeros((2, 4))
    )
    gains, _ = objective(np.array([[0.3, 1.5, 0.3, 0.9], [0.6, 0.6, 0.6, 1.2], [0.9, 0.3, 0.6, 1.2]]))
    np.testing.assert_allclose(gains, [0.1, -np.inf, 0.3], rtol=0, atol=1e-15)
    assert objective.stalled == 1
    assert objective.min_payment == -0.7


@pytest.mark.filterwarnings("ignore:invalid value encountered in subtract:RuntimeWarning")
def test_an_audit_of_unconverged_solves_is_not_healthy(monkeypatch) -> None:
    game = make_game(*TWO_GROUPS, divergence="hellinger", lam=0.3)
    _unconverged(monkeypatch, "solve_sw_max")
    audit = audit_game(game, AuditOptions(budget=10))
    assert audit.health is not None and not audit.health.healthy
    groups_stalled = sum(g.dsic.stalled + g.no_payment.stalled for g in audit.groups)
    replays = 2 * len(audit.groups)  # every best misreport replayed, none converging
    assert audit.health.stalled >= groups_stalled + replays + 1  # and the truthful profile


# --- outputs nothing else checks ------------------------------------------------------------------


@pytest.mark.parametrize("over", ["agents", "groups"])
def test_maxmin_dual_weights_under_tv_are_a_distribution(over: str) -> None:
    """The LP's duals of ``t <= <pi, rho_i>`` are MaxMin's weights: non-negative, summing to 1
    (the objective's ``t`` has coefficient 1), and the weighted welfare at them is the optimum."""
    rng = np.random.default_rng(8)
    rewards = rng.dirichlet(np.ones(5), size=(4, 3))
    sizes = rng.uniform(1.0, 4.0, (4, 3))
    q = np.full(5, 0.2)
    solution = solve_fair("maxmin", rewards, sizes, q, "tv", 0.05, over=over)
    assert np.all(solution.solve.status == CONVERGED)
    assert np.all(solution.weights >= -1e-12)
    np.testing.assert_allclose(solution.weights.sum(axis=-1), 1.0, rtol=0, atol=1e-9)
    assert np.any(solution.weights > 1e-6)


def test_the_audit_payment_floor_covers_the_searched_reports() -> None:
    """``p >= 0`` (Proposition 4.4) is checked at every report the search evaluated, not only
    at the truthful profile: the finding's value is the smallest payment seen."""
    game = make_game(*TWO_GROUPS)
    audit = audit_game(game, AuditOptions(budget=20))
    truthful = audit.truthful.truthful.payments
    floors = [f for f in audit.findings if f.check == "nonnegative_payments"]
    for g, finding in zip(audit.groups, floors, strict=True):
        assert g.dsic.min_payment < truthful[g.index]  # a searched report paid less than truth
        assert finding.value == min(truthful[g.index], g.dsic.min_payment)


def test_the_audit_fails_a_negative_payment_seen_only_in_the_search() -> None:
    """Heuristic 2 (early_stopped) may charge less than 0 (section 4.4): here only at searched
    reports, truth pays more than 0; the audit must fail ``p >= 0``."""
    rule = get_payment_rule("early_stopped").with_parameters(steps=1, step_size=0.5)
    game = make_game(*TWO_GROUPS, payment=rule, lam=2.0)
    audit = audit_game(game, AuditOptions(budget=20))
    truthful = audit.truthful.truthful.payments
    floors = [f for f in audit.findings if f.check == "nonnegative_payments"]
    assert any(truthful[g.index] > 0 > g.dsic.min_payment for g in audit.groups)
    assert any(not f.holds for f in floors)


def _kl_asw_without(b: np.ndarray, pi: np.ndarray, q: np.ndarray, lam: float) -> float:
    """``ASW_-i(pi) = <pi, b> - lambda KL(pi || q)``, b the others' scores."""
    return float(pi @ b - lam * np.sum(pi * np.log(pi / q)))


def _kl_gibbs(q: np.ndarray, scores: np.ndarray) -> np.ndarray:
    p = q * np.exp(scores - scores.max())
    return p / p.sum()


@pytest.mark.parametrize("steps", [1, 2, 7, None])
def test_early_stopped_payment_at_t_steps_is_kl_closed_form(steps: int | None) -> None:
    """Under KL, T mirror-ascent steps of size eta from pi_init give
    ``pi_T ~ pi_init exp((1 - (1 - eta)^T) b / lambda)``; Heuristic 2's payment is
    ``ASW_-i(pi_T^{-i}) - ASW_-i(psi)`` (T = 20 when unset)."""
    rule = get_payment_rule("early_stopped").with_parameters(step_size=0.4)
    if steps is not None:
        rule = rule.with_parameters(steps=steps)
    t = 20 if steps is None else steps
    rewards = np.array([[0.1, 0.5, 0.1, 0.3], [0.1, 0.3, 0.5, 0.1], [0.4, 0.2, 0.2, 0.2]])
    sizes = np.array([3.0, 7.0, 2.0])
    q = np.array([0.4, 0.3, 0.1, 0.2])
    lam = 0.5
    game = make_game(rewards, sizes, pi_init=q, lam=lam, payment=rule)
    psi = _kl_gibbs(q, sizes @ rewards / lam)
    shrink = 1.0 - (1.0 - 0.4) ** t
    expected = []
    for i in range(3):
        b = sizes @ rewards - sizes[i] * rewards[i]
        early = _kl_gibbs(q, shrink * b / lam)
        expected.append(_kl_asw_without(b, early, q, lam) - _kl_asw_without(b, psi, q, lam))
    np.testing.assert_allclose(solve(game).truthful.payments, expected, rtol=0, atol=1e-12)


def test_checkpoint_payment_is_the_best_checkpoint_under_kl_closed_form() -> None:
    """Heuristic 1: ``max(max_t ASW_-i(theta_t), ASW_-i(psi)) - ASW_-i(psi)`` over the main
    run's checkpoints ``t = 0 (the initial model, included by default), 5, 10, ..., T`` (KL
    closed form as above)."""
    rule = get_payment_rule("intermediate_checkpoints").with_parameters(
        steps=12, step_size=0.3, checkpoint_every=5
    )
    rewards = np.array([[0.1, 0.5, 0.1, 0.3], [0.1, 0.3, 0.5, 0.1]])
    sizes = np.array([3.0, 7.0])
    q = np.array([0.4, 0.3, 0.1, 0.2])
    lam = 0.5
    game = make_game(rewards, sizes, pi_init=q, lam=lam, payment=rule)
    s = sizes @ rewards
    psi = _kl_gibbs(q, s / lam)
    thetas = [_kl_gibbs(q, (1.0 - 0.7**t) * s / lam) for t in (0, 5, 10, 12)]
    expected = []
    for i in range(2):
        b = s - sizes[i] * rewards[i]
        at_psi = _kl_asw_without(b, psi, q, lam)
        best = max(_kl_asw_without(b, theta, q, lam) for theta in thetas)
        expected.append(max(best, at_psi) - at_psi)
    assert max(expected) > 1e-3  # a checkpoint beats psi for some group: the maximum matters
    np.testing.assert_allclose(solve(game).truthful.payments, expected, rtol=0, atol=1e-12)


def test_tv_mirror_ascent_takes_subgradient_steps_of_step_size_over_sqrt_t() -> None:
    """TV's run (the heuristics' model of training): ``log pi_{t+1} = log pi_t + (step_size /
    sqrt(t)) (s / lambda - g'(pi_t / pi_init)) + const``, ``g'(t) = 1`` for ``t >= 1``, else
    -1 (its curvature is taken as 1), iterated here by hand."""
    rng = np.random.default_rng(9)
    scores = rng.random((2, 5))
    q = rng.dirichlet(np.ones(5))
    lam, step_size = 0.3, 0.5
    got = mirror_ascent(scores, q, "tv", lam, 4, step_size, every=1)
    for row in range(2):
        log_pi = np.log(q)
        for t in range(1, 5):
            slope = np.where(np.exp(log_pi) / q >= 1.0, 1.0, -1.0)
            log_pi = log_pi + step_size / np.sqrt(t) * (scores[row] / lam - slope)
            log_pi -= np.log(np.exp(log_pi).sum())
            np.testing.assert_allclose(got[row, t - 1], np.exp(log_pi), rtol=1e-12, atol=1e-15)


# --- the runner and the deviation kernel's contracts ------------------------------------------------


@pytest.mark.parametrize("parallelism", [1, 2, 3, 8])
@pytest.mark.parametrize("groups", [1, 2, 5, 9, 40])
def test_parallel_tasks_cover_every_group_once_in_order(groups: int, parallelism: int) -> None:
    chunks = runner_module._chunks(groups, parallelism)
    assert [i for chunk in chunks for i in chunk] == list(range(groups))


def test_every_group_of_a_file_gets_its_own_seed() -> None:
    states = {tuple(group_seed(0, "a.yaml", "a", i).generate_state(4)) for i in range(4)}
    assert len(states) == 4


def test_a_group_index_outside_the_game_is_refused() -> None:
    game = make_game(*TWO_GROUPS)
    with pytest.raises(ValueError, match=r"`group` must be in 0\.\.1"):
        deviation(game.mechanism, game.truth, game.truth, 2)


@pytest.mark.parametrize("divergence", ["kl", "chi2"])
def test_deviation_outcomes_are_the_profiles_with_the_report_inserted(divergence: str) -> None:
    """Each point (reward, size) of group 1 gives the figures of :func:`outcome` on the profile
    with that report: the payment's reported term ``w~ <pi, rm~>`` carries the reported size."""
    rng = np.random.default_rng(10)
    game = make_game(*TWO_GROUPS, divergence=divergence, lam=0.4)
    side = deviation(game.mechanism, game.truth, game.truth, 1)
    rewards = rng.dirichlet(np.ones(4), size=(1, 3))
    sizes = np.array([[1.0, 4.5, 9.0]])
    points = side.outcomes(rewards, sizes)
    for p in range(3):
        profile = game.truth.with_report(1, rewards[0, p], sizes[0, p])
        ref = outcome(game.mechanism, game.truth, profile)
        for name in ("utilities", "payments", "valuations"):
            assert getattr(points, name)[0, p] == pytest.approx(getattr(ref, name)[1], abs=1e-12)
        assert points.social_welfare[0, p] == pytest.approx(ref.social_welfare, abs=1e-12)


def test_prompt_means_keep_the_worst_prompts_status_and_residual() -> None:
    """A game of many prompts converged only if every prompt did: the mean figures carry the
    worst status and the largest residual of any prompt (one prompt failed here)."""
    rng = np.random.default_rng(11)
    per_group = {
        name: rng.random((3, 2)) for name in ("valuations", "group_valuations", "payments", "utilities")
    }
    per_prompt = {name: rng.random(3) for name in ("social_welfare", "asw", "divergence_value")}
    status = np.full((3, 2), CONVERGED)
    status[1, 0] = MAXITER
    each = Figures(**per_group, **per_prompt, kkt_residual=np.array([1e-15, 3e-4, 2e-12]), status=status)
    mean = each.mean(np.array([0.5, 0.2, 0.3]), np.array([2.0, 3.0]))
    np.testing.assert_array_equal(mean.status, [MAXITER, CONVERGED])
    assert not mean.converged
    assert mean.kkt_residual == 3e-4


def test_the_status_message_names_the_worst_leave_one_out_status(monkeypatch) -> None:
    """One group's leave-one-out solve did not converge, the other's did: the profile's message
    is about the failure, not the success."""
    real = training_module.optimal_values

    def first_row_fails(*args, **kwargs):
        values, status, *rest = real(*args, **kwargs)
        status = status.copy()
        status[0] = MAXITER
        return (values, status, *rest)

    monkeypatch.setattr(training_module, "optimal_values", first_row_fails)
    game = make_game(*TWO_GROUPS, divergence="chi2", lam=0.4)
    profile = outcome(game.mechanism, game.truth, game.truth)
    assert profile.payment.status.tolist() == [MAXITER, CONVERGED]
    assert profile.status_message == f"a leave-one-out solve of the payment: {STATUS_MESSAGES[MAXITER]}"


@pytest.mark.parametrize(
    ("excess", "accepted"), [(1e-10, True), (-1e-10, True), (1e-8, False), (-1e-8, False)]
)
def test_prompt_weights_must_sum_to_one_within_1e_9(excess: float, accepted: bool) -> None:
    games = list(_prompt_game(np.random.default_rng(12), 2, 3, "kl", costs=False).games)
    weights = np.array([0.25, 0.75 + excess])
    if accepted:
        PromptGame.from_games("g", ("a", "b"), games, weights)
    else:
        with pytest.raises(ValueError, match="`weights` must sum to 1"):
            PromptGame.from_games("g", ("a", "b"), games, weights)


@pytest.mark.parametrize("normalization", ["sum", "max", "none"])
def test_a_reward_below_zero_by_any_amount_is_outside_r(normalization: str) -> None:
    """``rm >= 0`` exactly (section 2; IR and Proposition 4.4 rely on it): -1e-12 is refused."""
    valid = {"sum": [0.5, 0.0, 0.5], "max": [1.0, 0.0, 0.5], "none": [0.5, 0.0, 3.0]}[normalization]
    reward = np.array(valid) - [0.0, 1e-12, 0.0]
    assert "rewards must be >= 0" in (Normalization(normalization).violation(reward) or "")
    assert Normalization(normalization).violation(np.array(valid)) is None


def test_the_gap_to_p_aff_is_centred_on_its_offset() -> None:
    """Rochet payments = p^AFF + offset within +-gap, both bounds reached (the offset is the
    centre of the differences, not their largest)."""
    game = make_game(*TWO_GROUPS, divergence="chi2", lam=0.5)
    result = implementability(game, 0, kind="grid", points=3)
    assert result.monotone and result.aff_gap is not None and result.aff_gap > 1e-9
    diff = result.payments - result.aff_payments
    assert diff.max() == pytest.approx(result.aff_offset + result.aff_gap, abs=1e-12)
    assert diff.min() == pytest.approx(result.aff_offset - result.aff_gap, abs=1e-12)


def test_types_whose_solve_did_not_converge_are_left_out_of_l(monkeypatch) -> None:
    """Types 2 and 3 (not the true type 0) did not converge: their rows of L could make or hide
    a cycle, so they are dropped and the note says so."""
    real = implementability_module.deviation

    class Failing:
        def __init__(self, side) -> None:
            self.side = side

        def outcomes(self, rewards, sizes, **kwargs):
            out = self.side.outcomes(rewards, sizes, **kwargs)
            status = out.status.copy()
            status[0, [2, 3]] = MAXITER
            return dataclasses.replace(out, status=status)

    monkeypatch.setattr(implementability_module, "deviation", lambda *a: Failing(real(*a)))
    game = make_game(*TWO_GROUPS, divergence="chi2", lam=0.5)
    rewards = np.random.default_rng(13).dirichlet(np.ones(4), size=6)
    rewards[0] = game.truth.rewards[0]
    types = TypeSet("grid", rewards, rewards, np.full(6, 3.0))
    result = implementability(game, 0, types)
    assert result.types.count == 4
    np.testing.assert_array_equal(result.types.rewards, rewards[[0, 1, 4, 5]])
    assert any(
        "2 of 6 training solves did not converge (types 2, 3); those types are left out" in n
        for n in result.notes
    )


# --- the report space ----------------------------------------------------------------------------


def test_the_size_bound_without_max_size_is_twice_the_largest_size() -> None:
    game = dataclasses.replace(make_game(*TWO_GROUPS), max_size=None)
    assert size_bound(game) == (14.0, "no max_size in the file: max(10, 2 x the largest size)")
    small = dataclasses.replace(make_game(TWO_GROUPS[0], [1.0, 2.0]), max_size=None)
    assert size_bound(small)[0] == 10.0


@pytest.mark.parametrize(
    ("total", "size", "valid"),
    [
        (1.0 + 1e-10, 10.0, True),
        (1.0 + 1e-8, 3.0, False),
        (1.0 - 1e-8, 3.0, False),
        (1.0, 10.0 * (1 + 1e-8), False),
    ],
)
def test_valid_reports_sum_to_one_and_stay_within_the_size_bound(
    total: float, size: float, valid: bool
) -> None:
    """A report is valid to 1e-9: the normalisation's total and the sizes in [1, W] (W = 10)."""
    space = ReportSpace.of(make_game(*TWO_GROUPS))
    theta = np.array([0.25, 0.25, 0.25, 0.25]) * total
    assert space.contains(theta, size).tolist() == [valid]


# --- the fair rules' status (appendix E) -----------------------------------------------------------


@pytest.mark.parametrize(("delta", "converged"), [(3e-10, True), (3e-9, False), (1e-7, False)])
def test_maxmin_status_at_dual_weights_near_the_optimum(delta: float, converged: bool) -> None:
    """The status at dual weights ``y`` is CONVERGED only where the duality gap is within
    10 GAP_TOL (1 + |objective|): the optimal weights moved by ``delta`` along the simplex give
    gaps of ~3, ~30 and ~1000 of that tolerance here (reached through the module's
    ``_at_weights``, the one place the status is decided; no public input has a gap this size)."""
    rewards = np.random.default_rng(14).dirichlet(np.ones(5), size=3)[None]
    q, off, div = np.full(5, 0.2), np.zeros(5), get_divergence("kl")
    problem = DualProblem(rewards, np.ones((1, 3)), off, q, div, 0.5)
    optimum = simplex_barrier(problem)
    moved = optimum + delta * np.array([1.0, -0.5, -0.5])
    at = fair_module._at_weights(fair_module.maxmin("agents"), problem, moved)
    tol = fair_module.GAP_TOL * (1.0 + abs(float(at.solve.value[0])))
    assert bool(at.gap[0] <= 10 * tol) is converged  # the band's side, checked independently
    assert bool(at.solve.status[0] == CONVERGED) is converged


def test_the_prompt_status_message_names_the_prompt_and_counts_the_payments() -> None:
    """Prompt 2's payment of group 0 did not converge: the message names prompt 2 (not group 0)."""
    status = np.full((3, 2), CONVERGED)
    status[2, 0] = MAXITER
    figures = SimpleNamespace(per_prompt=SimpleNamespace(status=status))
    message = PromptOutcome.status_message.fget(figures)  # type: ignore[attr-defined]
    assert message == f"{STATUS_MESSAGES[MAXITER]} (prompt 2; 1 payments affected)"


def test_theorem_4_12_is_checked_only_under_a_dsic_payment_rule() -> None:
    """The noisy check bounds the gain under a DSIC rule (Theorem 4.12); without payment there is
    no bound to check."""
    for payment, checked in (("affine_maximizer", True), ("none", False)):
        audit = audit_game(
            make_game(*TWO_GROUPS, payment=payment), AuditOptions(budget=10, noise=0.01, samples=4)
        )
        assert all((g.noisy is not None) is checked for g in audit.groups)
        assert any(f.check == "noisy_dsic" for f in audit.findings) is checked


# --- the file edge ---------------------------------------------------------------------------------


def test_a_npy_file_must_hold_exactly_its_headers_data(tmp_path) -> None:
    path = tmp_path / "a.npy"
    np.save(path, np.arange(6, dtype=float))
    np.testing.assert_array_equal(read_array(path), np.arange(6.0))
    path.write_bytes(path.read_bytes() + b"\0" * 8)  # one more float64 than the header says
    with pytest.raises(ValueError, match=r"claims a \(6,\) array \(48 bytes of data\) but the file holds 56"):
        read_array(path)


def test_a_npy_array_of_three_dimensions_is_refused(tmp_path) -> None:
    path = tmp_path / "b.npy"
    np.save(path, np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="holds a 3-D array; expected 1-D or 2-D"):
        read_array(path)


@pytest.mark.parametrize(
    ("text", "where"), [("1,2\n3,x\n", "row 2, column 2"), ("y,2\n3,4\n", "row 1, column 1")]
)
def test_a_csv_error_names_the_row_and_column_counted_from_1(tmp_path, text: str, where: str) -> None:
    path = tmp_path / "c.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"^{where} is not a number$"):
        read_array(path)


def test_a_yaml_integer_beyond_a_float_is_refused() -> None:
    """2 x 10^308 has 309 digits (under the digit limit) but no float: an error, not inf."""
    import yaml

    from rlhf_mech.files._yaml import Loader

    assert yaml.load("x: " + "1" + "0" * 307, Loader=Loader) == {"x": 10**307}
    with pytest.raises(yaml.constructor.ConstructorError, match="outside the range of a float"):
        yaml.load("x: 2" + "0" * 308, Loader=Loader)


def test_cycle_files_say_who_reports_whom_along_a_cycle_of_three(monkeypatch, tmp_path) -> None:
    """Each written step of the certificate names the true type and the next type it reports."""
    result = _cycle_of_three(monkeypatch)
    assert result.cycle is not None
    written = save_cycle(result, tmp_path)
    cycle = result.cycle.tolist()
    for j, path in enumerate(written):
        own, report = cycle[j], cycle[(j + 1) % 3]
        assert f"Step {j} of 3: true type {own} reports type {report} and gains +1 " in path.read_text()


# --- sweeps: both sides of their tolerances, the size bound ---------------------------------------


def _sweep_with_utilities(utilities: list[float]):
    """A real sweep of group 0 (truth at index 0) whose utilities are replaced by ``utilities``."""
    alphas = [1.5, 2.0, 3.0][: len(utilities) - 1]  # sizes 4.5, 6, 9: within max_size 10
    result = sweep(make_game(*TWO_GROUPS), 0, "size", alphas)
    assert result.truthful_index == 0 and result.parameters.tolist() == [1.0, *alphas]
    assert result.within_max_size.all()
    u = np.asarray(utilities)
    return dataclasses.replace(result, utilities=u, group_valuations=u)


@pytest.mark.parametrize("truth", [0.5, -4.0])
@pytest.mark.parametrize(("excess", "optimal"), [(0.0, True), (0.5e-9, True), (2e-9, False), (5e-7, False)])
def test_sweep_truth_is_optimal_within_gain_tol_relative(truth: float, excess: float, optimal: bool) -> None:
    """A point beating truth by more than GAIN_TOL * max(1, |u_truth|) makes truth not optimal."""
    scale = max(1.0, abs(truth))
    result = _sweep_with_utilities([truth, truth + excess * scale])
    assert result.truth_is_optimal() is optimal
    assert result.truth_is_optimal(with_payment=False) is optimal


@pytest.mark.parametrize("best", [0.5, 3.0])
def test_sweep_ties_for_best_within_tie_tol_relative(best: float) -> None:
    """Points within TIE_TOL * max(1, |best|) of the best tie; 2 TIE_TOL away do not."""
    scale = max(1.0, best)
    result = _sweep_with_utilities([best - 0.5e-9 * scale, best, best - 2e-9 * scale, best - 5e-7 * scale])
    assert result.is_best("utilities").tolist() == [True, True, False, False]


def test_sweep_sizes_beyond_max_size_are_noted() -> None:
    """Integer sizes within 1..max_size need no note; 12 > max_size = 10 does (size 3, alpha 4)
    and is left out of the verdict; a size of 4.5 is real-valued."""
    game = make_game(*TWO_GROUPS)
    assert game.max_size == 10.0
    inside = sweep(game, 0, "size", [2.0, 3.0])
    assert inside.reported_sizes.tolist() == [3.0, 6.0, 9.0]
    assert inside.notes == () and inside.within_max_size.all()
    beyond = sweep(game, 0, "size", [4.0])
    assert beyond.reported_sizes.tolist() == [3.0, 12.0]
    assert beyond.within_max_size.tolist() == [True, False]
    assert any("alpha = 4: reported size above max_size 10" in n for n in beyond.notes)
    real = sweep(game, 0, "size", [1.5])
    real_valued = "reported sizes are real-valued in this sweep (the game's sizes are 1..10)"
    assert any(real_valued in note for note in real.notes)


@pytest.mark.parametrize(("excess", "adjusted"), [(0.0, False), (0.5e-9, False), (2e-9, True), (1e-7, True)])
def test_a_mix_off_its_total_by_more_than_normalization_tol_is_adjusted(
    excess: float, adjusted: bool
) -> None:
    """beta = 1 keeps rm_i bit for bit: a reward summing to 1 + excess is flagged beyond 1e-9."""
    reward = np.array([0.25, 0.25, 0.5 + excess])
    others = np.array([0.5, 0.25, 0.25])
    reports = mixing_misreports(reward, 3.0, others, np.array([1.0, 0.0]), Normalization("sum"))
    assert reports.adjusted.tolist() == [adjusted, False]
    np.testing.assert_array_equal(reports.rewards[0], reward)  # flagged, never silently rescaled


# --- the rendered cycle table: who reports whom ---------------------------------------------------


def test_the_rendered_cycle_table_says_who_reports_whom_along_a_cycle_of_three(monkeypatch) -> None:
    """Each row's type gains +1 by reporting the row's "reports type" (checked on the valuations
    themselves, not on the result's cycle); the reverse direction would lose 1."""
    from rich.console import Console

    console = Console(width=200, record=True, color_system=None)
    console.print(render_implementability(ImplementabilityOutput(_cycle_of_three(monkeypatch))))
    rows = []
    for line in console.export_text().splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) == 8 and cells[1].isdigit():
            rows.append((int(cells[1]), int(cells[2]), int(cells[5]), cells[6]))
    assert [r[0] for r in rows] == [0, 1, 2]
    assert sorted(r[1] for r in rows) == [1, 2, 3]
    for _, own, report, gain in rows:
        assert CYCLE_VALUATIONS[report, own] - CYCLE_VALUATIONS[own, own] == 1.0
        assert gain == "+1"


# --- the audit table: marks, counts, signs, names -------------------------------------------------


def _finding(
    check: str, value: float, holds: bool, expected: bool | None, group: str = "g0", **kw
) -> Finding:
    return Finding(check, group, value, holds, expected, "statement", **kw)


def _table_cells(findings: list[Finding], name: str = "guard") -> dict[str, list[str]]:
    """The plain cells of the audit table of one game with ``findings``, by row's group."""
    from rlhf_mech.render._audit import audit_table_data

    game = dataclasses.replace(make_game(*TWO_GROUPS), name=name)
    data = audit_table_data([SimpleNamespace(game=game, findings=findings)])
    return {row[1]: list(row) for row in data.rows}


def test_the_audit_table_marks_whether_a_check_passed_not_whether_its_property_holds() -> None:
    """dsic expected false and not holding passes (✓); expected true and not holding fails (✗);
    expected false but holding fails (✗)."""
    cases = [(False, False, "✓"), (False, True, "✗"), (True, False, "✗"), (True, True, "✓")]
    for holds, expected, mark in cases:
        cells = _table_cells([_finding("dsic", 0.083, holds, expected)])
        assert cells["g0"][2] == f"{mark} +0.083", (holds, expected)


@pytest.mark.parametrize(
    ("failures", "cell"), [(1, "✗ utility -0.5"), (2, "✗ utility -0.5 (+1)"), (3, "✗ utility -0.5 (+2)")]
)
def test_an_expect_cell_counts_the_failures_it_does_not_show(failures: int, cell: str) -> None:
    """The first failure is shown; ``(+k)`` counts the other k; a passing range is not counted."""
    findings = [_finding("expect", -0.5, False, True, quantity="utility") for _ in range(failures)]
    findings.append(_finding("expect", 0.25, True, True, quantity="payment"))
    assert _table_cells(findings)["g0"][2] == cell


@pytest.mark.parametrize(("value", "shown"), [(0.083, "+0.083"), (-2.1e-15, "-2.1e-15"), (0.0, "0")])
def test_audit_figures_carry_their_sign(value: float, shown: str) -> None:
    from rlhf_mech.render._audit import fmt_figure

    assert fmt_figure(value) == shown


def test_a_game_name_holding_markup_is_shown_as_written() -> None:
    name = "[bold]x[/bold] [red]"
    assert _table_cells([_finding("dsic", 0.0, True, None)], name)["g0"][0] == name


@pytest.mark.parametrize(("count", "words"), [(0, "0 games"), (1, "1 game"), (2, "2 games")])
def test_plural_counts_zero_as_plural(count: int, words: str) -> None:
    from rlhf_mech.render._format import plural

    assert plural(count, "game") == words


# --- render: the JSON cycle, the compare table's marks, the sweep table's bold ------------------


def test_the_json_cycle_says_who_reports_whom_along_a_cycle_of_three(monkeypatch) -> None:
    """Each JSON step's type gains +1 by reporting its ``reports`` type (on the valuations)."""
    from rlhf_mech.render import implementability_to_json

    steps = implementability_to_json(ImplementabilityOutput(_cycle_of_three(monkeypatch)))["cycle"]["steps"]
    assert sorted(s["type"] for s in steps) == [1, 2, 3]
    for step in steps:
        assert (
            CYCLE_VALUATIONS[step["reports"], step["type"]] - CYCLE_VALUATIONS[step["type"], step["type"]]
            == 1.0
        )
        assert step["gain"] == 1.0


def test_the_sweep_table_bolds_each_rows_best_point() -> None:
    """Utilities (0.5, 0.7): the second point is bold in the utility row, the first is not."""
    from rlhf_mech.render._internal import sweep_table

    table = sweep_table(_sweep_with_utilities([0.5, 0.7]))
    labels = [str(c) for c in table.columns[0].cells]
    row = labels.index("utility")
    first, second = (list(table.columns[k].cells)[row] for k in (1, 2))
    assert (first.style, second.style) == ("", "bold")


def test_the_compare_table_marks_ir_and_the_pareto_front_as_computed() -> None:
    """An additive rule with p^AFF (DSIC by theorem) whose figures say not IR and on the front,
    and one IR and off the front: the marks follow the figures, not the theorem."""
    from rlhf_mech.analysis import CompareOptions, Comparison, MechanismFigures
    from rlhf_mech.render._compare import trade_off_table

    game = make_game(*TWO_GROUPS)
    search = SimpleNamespace(best=SimpleNamespace(gain=0.0))
    group = SimpleNamespace(
        name="g0", utility=1.0, payment=0.0, search=search, gain=0.0, gain_share=0.0, samples=0
    )
    figures = MechanismFigures(
        training=game.mechanism.training_rule,
        payment=game.mechanism.payment_rule,
        social_welfare=1.0,
        asw=1.0,
        groups=(group,),
        full_runs=3,
        early_stopped_runs=0,
        early_stopped_steps=None,
        gameable=False,
        ir=False,
        dsic_payment=None,
        pareto=True,
    )
    assert figures.dsic_by_theorem
    other = dataclasses.replace(figures, ir=True, pareto=False)
    comparison = Comparison(game, CompareOptions(budget=10, samples=0), (figures, other), (), ())
    rows = [row for row in trade_off_table(comparison).rows if len(row) > 1]
    assert [(row[7], row[10]) for row in rows] == [("✗", "★"), ("✓", "")]


def test_the_noisy_gain_is_the_mean_of_the_fresh_samples_with_its_standard_error(monkeypatch) -> None:
    """Theorem 4.12's estimate on 4 fresh samples of gains (0.1, 0.4, 0.2, 0.3): the mean 0.25,
    the standard error sqrt(0.05 / 3) / sqrt(4), the best sample 0.4 (the search is replaced)."""
    import rlhf_mech.analysis._noisy as noisy_module

    game = make_game(*TWO_GROUPS)
    truth_z = 3.0 * ReportSpace.of(game).truth(game, 0)
    monkeypatch.setattr(noisy_module, "vertex_orders", lambda *a, **k: ())
    monkeypatch.setattr(noisy_module, "search_polytope", lambda *a, **k: (truth_z, 0.0, None, None))
    monkeypatch.setattr(
        noisy_module, "_per_sample_gains", lambda objective, z: np.array([0.1, 0.4, 0.2, 0.3])
    )
    result = noisy_module.noisy_search(game, 0, 0.01, 4, np.random.SeedSequence(0), 10)
    assert result.gain == pytest.approx(0.25, abs=1e-15)
    assert result.stderr == pytest.approx(np.sqrt(0.05 / 3) / 2, abs=1e-12)
    assert result.max_sample_gain == 0.4 and result.bound == 2 * 3.0 * 0.01


def test_sampled_reports_sizes_run_from_1_to_the_size_bound() -> None:
    """A size coordinate u maps to 1 + (W - 1) u: u = 0 is size 1 (never below), u -> 1 is W."""
    from rlhf_mech.analysis._others import point_reports

    space = ReportSpace.of(make_game(*TWO_GROUPS))
    d = space.dimension
    uniform = np.zeros((3, d + 1))
    uniform[:, -1] = [0.0, 0.5, 0.75]
    _, sizes = point_reports(space, uniform)
    bound = space.size_bound
    np.testing.assert_allclose(
        sizes, [1.0, 1.0 + 0.5 * (bound - 1.0), 1.0 + 0.75 * (bound - 1.0)], atol=1e-12
    )


def test_two_distinct_reward_values_predict_a_gain_without_payment() -> None:
    """s_i = 2 (two distinct values), min rm_i > 0, KL: Theorem 4.2 predicts a gain."""
    from rlhf_mech.analysis import predict_no_payment_gain

    game = make_game([[0.2, 0.3, 0.2, 0.3], [0.1, 0.3, 0.5, 0.1]], [3.0, 7.0])
    prediction = predict_no_payment_gain(game, 0)
    assert prediction.predicted and prediction.theorem == "4.2"
    assert prediction.reason.startswith("s_i = 2 >= 2")
