"""MaxMin-RLHF and Nash social welfare (appendix E) as solved by ``solve_fair``.

The training rules beyond SW-Max (``rlhf_mech/core/_fair.py``, the registry entries ``maxmin``
and ``nash`` of ``_training.py``), with ``v_i = <pi, rm_i>``:

* ``maxmin``: ``max_pi min_i rho_i(pi) + <pi, offset> - D_f(pi || pi_init)``, ``rho_i = v_i``
  (``over: agents``) or ``w_i v_i`` (``over: groups``);
* ``nash``: ``max_pi sum_i w_i log v_i(pi) + <pi, offset> - D_f(pi || pi_init)``.

What is checked:

* an independent generic reference written here: SLSQP on the primal (the epigraph form
  ``max t + <pi, offset> - D_f s.t. rho_i(pi) >= t`` for maxmin, the split
  ``pi = pi_init + u - l`` for TV, the plain objective for nash), from six starts with tight
  tolerances, on seeded random games (m 3..6, n 2..4, KL / chi^2 / Hellinger, and TV for
  maxmin, lambda in [0.1, 10], with and without an offset, over agents and groups): the
  objective at the core's ``pi``, recomputed here with ``g`` typed here, is within 1e-7
  (relative) of the reference's and equals the value the core reports; the distributions
  agree where the optimum is unique (a strictly convex ``g``); ``residual`` <= 1e-9;
* the rules do what they say against SW-Max: MaxMin's worst-off value is at least SW-Max's
  less what MaxMin spends on the regulariser beyond SW-Max, Nash's objective is at least its
  value at SW-Max's model and at ``pi_init``, SW-Max's ASW at least its value at theirs;
* structure: one group, maxmin over agents ignores the sizes, Nash ignores the scale of each
  reward model, ties (two identical groups);
* extremes: lambda 1e-6 and 1e6, ``pi_init`` entries down to 1e-300, m = 10^5;
* without payments both rules are manipulable: the best-response search finds strictly
  profitable misreports, and the gain it reports replays through :func:`outcome`;
* the registry and game files: names, ``over``, Nash refuses TV, eq. (1)'s payments refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest
from cases import random_pi_init, random_rewards
from scipy.optimize import Bounds, LinearConstraint, minimize

from rlhf_mech.analysis import search_misreports
from rlhf_mech.core import (
    TRAINING_RULES,
    Game,
    Mechanism,
    Normalization,
    Profile,
    get_divergence,
    get_training_rule,
    outcome,
    solve_fair,
    solve_sw_max,
)
from rlhf_mech.core._duals import GAP_TOL, DualProblem, project_simplex, simplex_barrier, simplex_newton
from rlhf_mech.core._internal import CONVERGED, MAXITER
from rlhf_mech.errors import SpecError
from rlhf_mech.files import load_game

Array = np.ndarray

#: Agreement with the reference: objective values, relative to ``1 + |objective|``.
OBJECTIVE_TOL = 1e-7
#: The optimality residual of the core's solutions (relative duality gap, inner KKT).
RESIDUAL_TOL = 1e-9
#: Distributions, where the optimum is unique. The objective is flat to second order there,
#: so a solution right to ~1e-13 in the objective (either solver's: the core's duality gap
#: certifies its objective, not its ``pi``) has a ``pi`` right to ~sqrt(1e-13 / curvature)
#: only; the differences measured reach 1e-6 (Nash, Hellinger).
PI_TOL = 1e-5
#: Every (rule, divergence, over) the reference checks.
CASES = [
    *[("maxmin", div, over) for div in ("kl", "chi2", "hellinger", "tv") for over in ("agents", "groups")],
    *[("nash", div, "agents") for div in ("kl", "chi2", "hellinger")],
]
#: Random games per case.
GAMES_PER_CASE = 12


def case_id(case: tuple[str, str, str]) -> str:
    rule, div, over = case
    return f"{rule}-{div}" + (f"-{over}" if rule == "maxmin" else "")


# --- a game, and the rule's objective typed here ---------------------------------------------


def g(name: str, t: Array) -> Array:
    """The generator ``g`` of ``f = lambda g`` (module table of ``_divergences.py``)."""
    if name == "kl":
        return np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0)
    if name == "chi2":
        return (t - 1.0) ** 2
    if name == "hellinger":
        return (np.sqrt(t) - 1.0) ** 2
    if name == "tv":
        return np.abs(t - 1.0)
    raise KeyError(name)


def g_prime(name: str, t: Array) -> Array:
    if name == "kl":
        return np.log(t) + 1.0
    if name == "chi2":
        return 2.0 * (t - 1.0)
    if name == "hellinger":
        return 1.0 - 1.0 / np.sqrt(t)
    raise KeyError(name)


@dataclass(frozen=True)
class FairGame:
    """One profile under a fair rule: ``rewards (n, m)``, ``sizes (n,)``, ``pi_init``, lambda,
    outcome costs (the offset ``-lambda * costs``) or ``None``."""

    rule: str
    divergence: str
    over: str
    rewards: Array
    sizes: Array
    pi_init: Array
    lam: float
    costs: Array | None = None

    @property
    def n(self) -> int:
        return self.rewards.shape[0]

    @property
    def m(self) -> int:
        return self.rewards.shape[1]

    @property
    def offset(self) -> Array:
        return np.zeros(self.m) if self.costs is None else -self.lam * self.costs

    @property
    def measures(self) -> Array:
        """``rho_i``: the rows whose minimum maxmin maximises."""
        if self.rule == "maxmin" and self.over == "groups":
            return self.rewards * self.sizes[:, None]
        return self.rewards

    def mechanism(self) -> Mechanism:
        rule = get_training_rule(self.rule)
        if self.rule == "maxmin":
            rule = rule.with_parameters(over=self.over)
        return Mechanism(
            self.pi_init, self.divergence, self.lam, training_rule=rule, outcome_costs=self.costs
        )

    def regulariser(self, pi: Array) -> float:
        """``D_f(pi || pi_init) = lambda sum_x pi_init(x) g(pi(x) / pi_init(x))``."""
        return float(self.lam * np.sum(self.pi_init * g(self.divergence, pi / self.pi_init)))

    def welfare_term(self, pi: Array) -> float:
        """``min_i rho_i(pi)`` (maxmin) or ``sum_i w_i log v_i(pi)`` (nash)."""
        values = self.measures @ pi
        if self.rule == "maxmin":
            return float(values.min())
        return float(np.sum(self.sizes * np.log(values)))

    def objective(self, pi: Array) -> float:
        """The rule's training objective at ``pi``."""
        return self.welfare_term(pi) + float(self.offset @ pi) - self.regulariser(pi)

    def solve(self):
        """The core's solution and its ``residual``."""
        mechanism = self.mechanism()
        rule = mechanism.training_rule
        solution = rule.solve(mechanism, self.rewards, self.sizes)
        residual = float(rule.residual(mechanism, solution, self.rewards, self.sizes))
        return solution, residual


def fair_game(
    rng: np.random.Generator, rule: str, divergence: str, over: str, *, with_offset: bool
) -> FairGame:
    """m 3..6, n 2..4, reward models valid for sum or max normalisation (zeros included),
    integer sizes 1..5, pi_init Dirichlet(1), lambda log-uniform in [0.1, 10], outcome costs
    uniform in [0, 1] when ``with_offset``."""
    m, n = int(rng.integers(3, 7)), int(rng.integers(2, 5))
    rewards = random_rewards(rng, n, m, str(rng.choice(["sum", "max"])))
    sizes = rng.integers(1, 6, size=n).astype(float)
    lam = float(10.0 ** rng.uniform(-1.0, 1.0))
    costs = rng.uniform(0.0, 1.0, m) if with_offset else None
    return FairGame(rule, divergence, over, rewards, sizes, random_pi_init(rng, m), lam, costs)


def case_games(case: tuple[str, str, str]) -> list[FairGame]:
    """The seeded games of one case, every other one with an offset."""
    rng = np.random.default_rng([13, CASES.index(case)])
    return [fair_game(rng, *case, with_offset=k % 2 == 1) for k in range(GAMES_PER_CASE)]


# --- the reference: SLSQP on the primal, multi-start --------------------------------------------

SLSQP = {"ftol": 1e-16, "maxiter": 2000}


def _reference_from(game: FairGame, start: Array) -> Array:
    """One SLSQP run from ``start``; its ``pi`` (clipped to the simplex)."""
    rho, q, off, lam, m, n = game.measures, game.pi_init, game.offset, game.lam, game.m, game.n
    name = game.divergence
    # g'(0+) = -inf for KL and Hellinger: keep pi off 0, where SLSQP would evaluate g' = -inf
    lower = 1e-13 if name in ("kl", "hellinger") else 0.0
    if game.rule == "maxmin" and name == "tv":
        # pi = q + u - l, u, l >= 0: D_f = lambda sum (u + l) at the optimum; x = (u, l, t)
        x0 = np.r_[np.maximum(start - q, 0.0), np.maximum(q - start, 0.0), (rho @ start).min()]
        cost = np.r_[lam - off, lam + off, -1.0]
        constraints = [
            LinearConstraint(np.c_[rho, -rho, -np.ones(n)], -rho @ q, np.inf),  # rho_i(pi) >= t
            LinearConstraint(np.c_[np.eye(m), -np.eye(m), np.zeros(m)], -q, np.inf),  # pi >= 0
            LinearConstraint(np.r_[np.ones(m), -np.ones(m), 0.0][None], 0.0, 0.0),  # sum pi = 1
        ]
        bounds = Bounds(np.r_[np.zeros(2 * m), -np.inf], np.r_[np.ones(2 * m), np.inf])
        res = minimize(
            lambda x: float(cost @ x),
            x0,
            jac=lambda x: cost,
            method="SLSQP",
            bounds=bounds,
            constraints=constraints,
            options=SLSQP,
        )
        pi = q + res.x[:m] - res.x[m : 2 * m]
    elif game.rule == "maxmin":
        # the epigraph: x = (pi, t), maximise t + <pi, offset> - D_f(pi) s.t. rho_i(pi) >= t

        def negative(x: Array) -> float:
            return -(x[-1] + float(off @ x[:m]) - game.regulariser(x[:m]))

        def gradient(x: Array) -> Array:
            return np.r_[-(off - lam * g_prime(name, x[:m] / q)), -1.0]

        res = minimize(
            negative,
            np.r_[start, (rho @ start).min()],
            jac=gradient,
            method="SLSQP",
            bounds=Bounds(np.r_[np.full(m, lower), -np.inf], np.r_[np.ones(m), np.inf]),
            constraints=[
                LinearConstraint(np.c_[rho, -np.ones(n)], 0.0, np.inf),
                LinearConstraint(np.r_[np.ones(m), 0.0][None], 1.0, 1.0),
            ],
            options=SLSQP,
        )
        pi = res.x[:m]
    else:

        def negative(pi: Array) -> float:
            return -game.objective(pi)

        def gradient(pi: Array) -> Array:
            return -(game.rewards.T @ (game.sizes / (game.rewards @ pi)) + off - lam * g_prime(name, pi / q))

        res = minimize(
            negative,
            start,
            jac=gradient,
            method="SLSQP",
            bounds=Bounds(np.full(m, max(lower, 1e-13)), np.ones(m)),
            constraints=[LinearConstraint(np.ones((1, m)), 1.0, 1.0)],
            options=SLSQP,
        )
        pi = res.x
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def reference(game: FairGame, rng: np.random.Generator, starts: int = 6) -> tuple[float, Array]:
    """The best of SLSQP runs from ``pi_init``, the uniform distribution and Dirichlet(1) draws:
    ``(objective, pi)``."""
    points = [game.pi_init, np.full(game.m, 1.0 / game.m)]
    points += [rng.dirichlet(np.ones(game.m)) for _ in range(starts - 2)]
    best: tuple[float, Array] | None = None
    for start in points:
        start = np.maximum(start, 1e-12)
        pi = _reference_from(game, start / start.sum())
        value = game.objective(pi)
        if best is None or value > best[0]:
            best = (value, pi)
    assert best is not None
    return best


# --- agreement with the reference ---------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_agrees_with_a_generic_solver(case: tuple[str, str, str]) -> None:
    """On every seeded game the core's model is optimal: its objective (recomputed here from
    ``pi``) is within 1e-7 of the multi-start SLSQP reference's, the value the core reports
    is that objective, ``pi`` is on the simplex and, where the optimum is unique, the
    reference's; ``residual`` <= 1e-9 and the solve says it converged."""
    rng = np.random.default_rng([14, CASES.index(case)])
    for game in case_games(case):
        solution, residual = game.solve()
        pi = solution.pi
        assert np.all(pi >= 0.0)
        np.testing.assert_allclose(pi.sum(), 1.0, rtol=0, atol=1e-13)
        assert int(solution.status) == CONVERGED
        assert residual <= RESIDUAL_TOL
        core = game.objective(pi)
        assert abs(float(solution.value) - core) <= 1e-12 * (1.0 + abs(core))
        best, best_pi = reference(game, rng)
        assert abs(best - core) <= OBJECTIVE_TOL * (1.0 + abs(best)), (game, best, core)
        if game.divergence != "tv":  # a strictly convex g: a unique optimum
            np.testing.assert_allclose(pi, best_pi, rtol=0, atol=PI_TOL)


def test_ties_two_identical_groups() -> None:
    """Two groups with the same reward model: maxmin's dual weights are not unique (any split
    between the twins), the model is; Nash sees the twins as one group of their total size."""
    rng = np.random.default_rng(21)
    rewards = np.array([[0.5, 0.3, 0.1, 0.1], [0.5, 0.3, 0.1, 0.1], [0.1, 0.1, 0.3, 0.5]])
    sizes = np.array([2.0, 3.0, 4.0])
    q = np.array([0.4, 0.3, 0.2, 0.1])
    for rule, div in [("maxmin", "kl"), ("maxmin", "chi2"), ("nash", "kl")]:
        game = FairGame(rule, div, "agents", rewards, sizes, q, 0.3)
        solution, residual = game.solve()
        assert residual <= RESIDUAL_TOL
        best, best_pi = reference(game, rng)
        assert abs(best - game.objective(solution.pi)) <= OBJECTIVE_TOL * (1.0 + abs(best))
        np.testing.assert_allclose(solution.pi, best_pi, rtol=0, atol=PI_TOL)
    merged = FairGame("nash", "kl", "agents", rewards[1:], np.array([5.0, 4.0]), q, 0.3).solve()[0]
    twins = FairGame("nash", "kl", "agents", rewards, sizes, q, 0.3).solve()[0]
    np.testing.assert_allclose(twins.pi, merged.pi, rtol=0, atol=1e-12)


# --- structure ---------------------------------------------------------------------------------


@pytest.mark.parametrize("divergence", ["kl", "chi2", "hellinger", "tv"])
def test_maxmin_of_one_group_is_sw_max(divergence: str) -> None:
    """With one group the minimum is that group: maxmin over agents is SW-Max on the scores
    ``rm_1 + offset``, over groups on ``w_1 rm_1 + offset``."""
    rm, w, q, lam = np.array([[0.2, 0.5, 0.1, 0.2]]), np.array([3.0]), np.array([0.1, 0.2, 0.3, 0.4]), 0.4
    costs = np.array([0.3, 0.0, 0.2, 0.1])
    for over, scores in (("agents", rm[0]), ("groups", w[0] * rm[0])):
        solution, residual = FairGame("maxmin", divergence, over, rm, w, q, lam, costs).solve()
        sw = solve_sw_max(scores - lam * costs, q, divergence, lam)
        np.testing.assert_allclose(solution.pi, sw.pi, rtol=0, atol=1e-9)
        np.testing.assert_allclose(float(solution.value), float(sw.value), rtol=1e-10, atol=1e-12)
        assert residual <= RESIDUAL_TOL


def test_maxmin_over_agents_ignores_sizes_and_nash_ignores_scale() -> None:
    """MaxMin-RLHF's minimum is over per-agent valuations: the sizes do not enter (the same
    model, bit for bit). Nash's ``log(c v) = log c + log v``: scaling a group's reward model
    by ``c > 0`` leaves the optimum where it is (a report's normalisation does not matter):
    the same objective to 1e-12, the same model to :data:`PI_TOL`."""
    rng = np.random.default_rng(8)
    for div in ("kl", "chi2", "hellinger"):
        game = fair_game(rng, "maxmin", div, "agents", with_offset=True)
        resized = FairGame(**{**game.__dict__, "sizes": game.sizes[::-1] * 2.5})
        np.testing.assert_array_equal(game.solve()[0].pi, resized.solve()[0].pi)
        game = fair_game(rng, "nash", div, "agents", with_offset=True)
        scaled = FairGame(**{**game.__dict__, "rewards": game.rewards * rng.uniform(0.1, 10.0, (game.n, 1))})
        pi, pi_scaled = game.solve()[0].pi, scaled.solve()[0].pi
        assert abs(game.objective(pi) - game.objective(pi_scaled)) <= 1e-12 * (1.0 + abs(game.objective(pi)))
        np.testing.assert_allclose(pi, pi_scaled, rtol=0, atol=PI_TOL)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_fair_rules_against_sw_max(case: tuple[str, str, str]) -> None:
    """Each rule's model is at least as good by the rule's own objective as SW-Max's model
    (sizes as weights, the same regulariser and offset) and as ``pi_init``; and SW-Max's
    model is at least as good by ASW as theirs (each optimises its own objective). For
    maxmin this reads: the worst-off value under MaxMin exceeds SW-Max's by at least what
    MaxMin's model costs beyond SW-Max's in regulariser and offset,
    ``min rho(pi_MM) - min rho(pi_SW) >= D(pi_MM) - D(pi_SW) - <pi_MM - pi_SW, offset>``."""
    for game in case_games(case):
        solution, _ = game.solve()
        pi = solution.pi
        scores = game.sizes @ game.rewards + game.offset
        sw = solve_sw_max(scores, game.pi_init, game.divergence, game.lam).pi
        tol = 1e-10 * (1.0 + abs(game.objective(pi)))
        assert game.objective(pi) >= game.objective(sw) - tol
        assert game.objective(pi) >= game.objective(game.pi_init) - tol
        if game.rule == "maxmin":
            extra = game.regulariser(pi) - game.regulariser(sw) - float(game.offset @ (pi - sw))
            assert game.welfare_term(pi) - game.welfare_term(sw) >= extra - tol
        asw_sw = float(scores @ sw) - game.regulariser(sw)
        asw_pi = float(scores @ pi) - game.regulariser(pi)
        assert asw_sw >= asw_pi - 1e-10 * (1.0 + abs(asw_sw))


# --- extremes ----------------------------------------------------------------------------------

#: (rule, divergence, lambda, pi_init family, over) where the dual Newton method does not reach the
#: optimum: Hellinger at lambda = 1e-6 with pi_init entries of 1e-300, where the model's mass
#: sits on an outcome at the pole of (g')^{-1} whose distance below the pole (1e-150) is lost
#: to rounding in SW-Max's multiplier (residuals 1e-3 .. 1e-2). The solve must then say so:
#: status MAXITER and a residual above the tolerance.
KNOWN_LIMITS = {
    ("nash", "hellinger", 1e-6, "tiny", "agents"),
    ("maxmin", "hellinger", 1e-6, "tiny", "groups"),
}
EXTREME_PI_INIT = {
    "dirichlet": np.random.default_rng(5).dirichlet(np.ones(5)),
    "tiny": np.array([1e-300, 1e-200, 1e-100, 0.5, 0.5]),
}
EXTREME_CASES = [
    (rule, div, lam, family)
    for rule, divs in (("maxmin", ("kl", "chi2", "hellinger", "tv")), ("nash", ("kl", "chi2", "hellinger")))
    for div in divs
    for lam in (1e-6, 1e6)
    for family in EXTREME_PI_INIT
]


@pytest.mark.parametrize("rule, divergence, lam, family", EXTREME_CASES)
def test_extremes(rule: str, divergence: str, lam: float, family: str) -> None:
    """lambda 1e-6 (almost no regulariser) and 1e6 (the model stays at pi_init), pi_init with
    entries down to 1e-300: the model is finite and on the simplex, ``residual``
    <= 1e-9 and the status says converged; at lambda = 1e6 the model is pi_init to 1e-5.
    Where the solver cannot converge (:data:`KNOWN_LIMITS`) it says so."""
    rng = np.random.default_rng(5)
    rewards = rng.uniform(0.05, 1.0, (3, 5))
    rewards /= rewards.sum(axis=1, keepdims=True)
    q = EXTREME_PI_INIT[family]
    for over in ("agents", "groups") if rule == "maxmin" else ("agents",):
        game = FairGame(rule, divergence, over, rewards, np.array([1.0, 2.0, 3.0]), q, lam)
        solution, residual = game.solve()
        assert np.all(np.isfinite(solution.pi)) and np.isfinite(float(solution.value))
        assert np.all(solution.pi >= 0.0)
        np.testing.assert_allclose(solution.pi.sum(), 1.0, rtol=0, atol=1e-13)
        if (rule, divergence, lam, family, over) in KNOWN_LIMITS:
            assert int(solution.status) == MAXITER and residual > RESIDUAL_TOL
            continue
        assert int(solution.status) == CONVERGED
        assert residual <= RESIDUAL_TOL
        if lam == 1e6:
            assert np.abs(solution.pi - q).sum() <= 1e-5


@pytest.mark.parametrize("rule", ["maxmin", "nash"])
@pytest.mark.parametrize("divergence", ["reverse_kl", "js"])
def test_extremes_are_reported_honestly(rule: str, divergence: str) -> None:
    """Reverse KL and JS at lambda = 1e-6 with pi_init entries of 1e-300 (the Jacobian
    weights of the dual's Hessian reach 1e306 or overflow; this raised, "`scores` must be
    finite", before the Hessian was formed in its centred form): no error, a finite model on
    the simplex, and a status that does not claim convergence the residual denies."""
    rng = np.random.default_rng(5)
    rewards = rng.uniform(0.05, 1.0, (3, 5))
    rewards /= rewards.sum(axis=1, keepdims=True)
    for over in ("agents", "groups") if rule == "maxmin" else ("agents",):
        game = FairGame(
            rule, divergence, over, rewards, np.array([1.0, 2.0, 3.0]), EXTREME_PI_INIT["tiny"], 1e-6
        )
        solution, residual = game.solve()
        assert np.all(np.isfinite(solution.pi)) and np.all(solution.pi >= 0.0)
        np.testing.assert_allclose(solution.pi.sum(), 1.0, rtol=0, atol=1e-13)
        assert int(solution.status) in (CONVERGED, MAXITER)
        if int(solution.status) == CONVERGED:
            assert residual <= RESIDUAL_TOL


@pytest.mark.parametrize("rule, divergence", [("maxmin", "kl"), ("maxmin", "tv"), ("nash", "kl")])
def test_large_game(rule: str, divergence: str) -> None:
    """m = 10^5 outcomes, three groups: the dual has three weights whatever m is (maxmin-TV is
    a linear programme with n + 1 rows and bounds); the residual stays <= 1e-9."""
    rng = np.random.default_rng(100)
    m = 10**5
    game = FairGame(
        rule,
        divergence,
        "agents",
        rng.uniform(0.0, 1.0, (3, m)),
        np.array([1.0, 2.0, 4.0]),
        rng.dirichlet(np.ones(m)),
        0.5,
    )
    solution, residual = game.solve()
    assert int(solution.status) == CONVERGED and residual <= RESIDUAL_TOL
    assert np.all(np.isfinite(solution.pi))
    np.testing.assert_allclose(solution.pi.sum(), 1.0, rtol=0, atol=1e-12)
    value = float(solution.value)
    assert abs(value - game.objective(solution.pi)) <= 1e-9 * (1.0 + abs(value))


# --- incentives: manipulable without payments --------------------------------------------------


def search_game(rng: np.random.Generator, rule: str) -> Game:
    """A seeded 4-outcome game under ``rule`` (KL, lambda 0.5, payment none), W = 10."""
    m, n = 4, 3
    truth = Profile(rng.dirichlet(np.ones(m), n), rng.integers(1, 5, n).astype(float))
    mechanism = Mechanism(rng.dirichlet(np.ones(m)), "kl", 0.5, training_rule=rule)
    assert mechanism.payment_rule.name == "none"
    return Game(
        name=f"{rule}-search",
        outcomes=tuple(f"x{j}" for j in range(m)),
        group_names=tuple(f"g{i}" for i in range(n)),
        mechanism=mechanism,
        normalization=Normalization.SUM,
        truth=truth,
        reports=truth,
        max_size=10.0,
    )


@pytest.mark.parametrize("rule", ["maxmin", "nash"])
def test_manipulable_without_payment(rule: str) -> None:
    """Without payments neither rule is DSIC: on seeded games the best-response search finds
    a strictly profitable misreport for some group, also at the true size (a reward
    misreport alone), and every gain it reports is what :func:`outcome` gives the group on
    the profile with that report, to rounding."""
    rng = np.random.default_rng({"maxmin": 31, "nash": 32}[rule])
    gains, at_size = [], []
    for _ in range(2):
        game = search_game(rng, rule)
        truthful = outcome(game.mechanism, game.truth, game.truth)
        for i in range(len(game.group_names)):
            result = search_misreports(game, i, "none", 60, np.random.default_rng(i))
            for report in (result.best, result.best_at_true_size):
                reports = game.truth.with_report(i, report.reward, report.size)
                replayed = outcome(game.mechanism, game.truth, reports).utilities[i] - truthful.utilities[i]
                assert abs(replayed - report.gain) <= 1e-12
            gains.append(result.best.gain)
            at_size.append(result.best_at_true_size.gain)
    assert max(gains) > 1e-2
    assert max(at_size) > 1e-3


# --- the registry and game files ---------------------------------------------------------------


def test_registry_names_and_parameters() -> None:
    """Unknown rule names list the valid ones; maxmin's ``over`` takes agents or groups only."""
    message = "unknown training rule 'utilitarian'; expected one of sw_max, maxmin, nash, alpha_fair"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        get_training_rule("utilitarian")
    assert TRAINING_RULES["maxmin"].setting("over") == "agents"
    assert TRAINING_RULES["maxmin"].with_parameters(over="groups").setting("over") == "groups"
    with pytest.raises(ValueError, match=r"`over` must be one of agents, groups, got 'all'"):
        TRAINING_RULES["maxmin"].with_parameters(over="all")
    assert not TRAINING_RULES["maxmin"].additive and not TRAINING_RULES["nash"].additive


def test_nash_refuses_tv() -> None:
    """Nash's dual Newton method needs an inverse of g': TV is refused with the divergences it
    takes, by the mechanism and by the solver; maxmin under TV is a linear programme."""
    q = np.full(3, 1.0 / 3.0)
    message = "training rule 'nash' takes the divergences kl, chi2, hellinger, reverse_kl, js, not 'tv'"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Mechanism(q, "tv", 1.0, training_rule="nash")
    with pytest.raises(ValueError, match=r"training rule 'nash' needs a divergence with an inverse of g'"):
        solve_fair("nash", np.eye(3)[:2], np.ones(2), q, "tv", 1.0)
    assert Mechanism(q, "tv", 1.0, training_rule="maxmin").training_rule.name == "maxmin"


def test_nash_needs_a_positive_reward_somewhere() -> None:
    """``log v_i`` is ``-inf`` for every model when ``rm_i = 0``: refused in words (it was a
    singular Newton system)."""
    rewards = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"training rule 'nash' needs every reward model positive somewhere"):
        solve_fair("nash", rewards, np.ones(2), np.full(3, 1.0 / 3.0), "kl", 1.0)


GAME_FILE = """\
name: rules
outcomes: [a, b, c]
initial: [0.4, 0.3, 0.3]
normalization: sum
divergence: {kind: KIND, lambda: 0.5}
TRAINING
groups:
  - name: g1
    size: 1
    reward: [0.5, 0.3, 0.2]
  - name: g2
    size: 2
    reward: [0.2, 0.3, 0.5]
"""


def game_file(kind: str, training: str) -> str:
    return GAME_FILE.replace("KIND", kind).replace("TRAINING", training)


def test_game_files_name_the_rule() -> None:
    """``training: maxmin`` or ``{rule: maxmin, over: groups}``; the payment is then ``none``;
    Nash under TV and the affine-maximizer payment with a fair rule are errors at the
    ``training:`` line (6)."""
    game = load_game("rules.yaml", text=game_file("kl", "training: {rule: maxmin, over: groups}"))
    assert game.mechanism.training_rule.name == "maxmin"
    assert game.mechanism.training_rule.setting("over") == "groups"
    assert game.mechanism.payment_rule.name == "none"
    nash = load_game("rules.yaml", text=game_file("chi2", "training: nash"))
    assert nash.mechanism.training_rule.name == "nash"
    at_line = r"rules\.yaml:6: training: "
    with pytest.raises(SpecError, match=at_line + "training rule 'nash' takes the divergences"):
        load_game("rules.yaml", text=game_file("tv", "training: nash"))
    with pytest.raises(SpecError, match=at_line + "payment rule 'affine_maximizer' needs an additive"):
        load_game("rules.yaml", text=game_file("kl", "training: maxmin\npayment: affine_maximizer"))


# --- the maxmin dual: projected Newton on the simplex -------------------------------------------


def test_project_simplex_is_the_euclidean_projection() -> None:
    """Rows land on the simplex as ``max(v - theta, 0)`` (one threshold per row, the KKT form
    of the projection), shifting a row changes nothing, ``-inf`` entries go to 0 and a huge
    entry still gives the vertex."""
    rng = np.random.default_rng(5)
    v = rng.normal(size=(50, 7)) * 3.0
    p = project_simplex(v)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    for row, proj in zip(v, p, strict=True):
        t = (row - proj)[proj > 0]
        np.testing.assert_allclose(t, t[0], rtol=0, atol=1e-14)
        assert (row[proj == 0] <= t[0] + 1e-14).all()
    np.testing.assert_allclose(project_simplex(v + 1e3), p, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(project_simplex(np.array([[1e17, 0.0, -np.inf]])), [[1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(project_simplex(np.array([[0.5, -np.inf, 0.5]])), [[0.5, 0.0, 0.5]])


@pytest.mark.parametrize("divergence", ["kl", "chi2", "hellinger"])
def test_projected_newton_finds_the_barriers_optimum_with_few_hessians(divergence: str) -> None:
    """The maxmin dual by projected Newton: the barrier method's model to 1e-9 and its value
    to 1e-11, with a duality gap below GAP_TOL, on a batch of random games; a handful of
    inner solves where the barrier's path takes ~100."""
    rng = np.random.default_rng(11)
    n, m, b = 5, 40, 6
    measures = np.stack([random_rewards(rng, n, m, "sum") for _ in range(b)])
    problem = DualProblem(
        measures, np.ones((b, n)), np.zeros(m), random_pi_init(rng, m), get_divergence(divergence), 0.3
    )
    calls = []
    counted = DualProblem.at

    def at(self, *args, **kwargs):
        calls.append(1)
        return counted(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DualProblem, "at", at)
        y = simplex_newton(problem)
        newton = len(calls)
        reference = simplex_barrier(problem)
        barrier = len(calls) - newton
    ours, theirs = problem.at(y), problem.at(reference)
    np.testing.assert_allclose(ours.solve.pi, theirs.solve.pi, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.solve.value, theirs.solve.value, rtol=0, atol=1e-11)
    gap = (y * ours.values).sum(axis=1) - ours.values.min(axis=1)
    assert (gap <= GAP_TOL * (1.0 + np.abs(ours.solve.value))).all()
    assert newton <= barrier / 4, (newton, barrier)
