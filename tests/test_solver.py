"""The SW-Max training rule (Definition 4.1) as solved by ``solve_sw_max``.

* closed forms from ``cases.SOLVER_CASES`` (KL Gibbs form, chi^2 with a binding
  non-negativity constraint, TV, the argmax rule, games designed from eq. OPT);
* KKT residual (appendix B, eq. OPT with ``pi >= 0`` kept) <= 1e-10 for every divergence
  and lambda in [1e-3, 1e3];
* independent references written in this file: ``brentq`` on the multiplier with
  ``(g')^{-1}`` typed here, an exact sort-based water-filling for chi^2, ``linprog`` on the
  LP form of TV, SLSQP on the simplex;
* batches: a (B, m) batch equals its rows solved one at a time; one pass per iteration;
* extremes: lambda = 1e-6 and 1e6, pi_init entries of 1e-300 (m = 10^6 is in
  ``test_mechanism.py``, together with the payments).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from cases import CONSTANT_SCORE, SOLVER_CASES, SolverCase, random_multiplier_problem, random_pi_init
from conftest import DIVERGENCE_NAMES, REGULARISING_DIVERGENCES
from scipy.optimize import brentq, linprog, minimize

from rlhf_mech.core import (
    DIVERGENCES,
    SolveResult,
    kkt_residual,
    mirror_ascent,
    sensitivity,
    solve_sw_max,
    support_gaps,
)
from rlhf_mech.core._internal import CONVERGED, MAXITER, STATUS_MESSAGES, optimal_values

LOG2 = math.log(2.0)
KKT_TOL = 1e-10


# --- references, typed from g (module table of rlhf_mech/core/_divergences.py) -------------


def t_of_y(name: str, y: np.ndarray) -> np.ndarray:
    """``t = (g')^{-1}(y)``, and ``t = 0`` below ``g'(0+)`` (eq. OPT with ``pi >= 0``)."""
    with np.errstate(divide="ignore", over="ignore"):
        if name == "kl":  # g' = log t + 1
            return np.exp(y - 1.0)
        if name == "chi2":  # g' = 2 (t - 1), g'(0+) = -2
            return np.maximum(0.0, 1.0 + 0.5 * y)
        if name == "hellinger":  # g' = 1 - 1/sqrt(t) < 1
            return 1.0 / (1.0 - y) ** 2
        if name == "reverse_kl":  # g' = -1/t < 0
            return -1.0 / y
        if name == "js":  # g' = log(2t / (1 + t)) / 2 < log(2)/2
            return 1.0 / (2.0 * np.exp(-2.0 * y) - 1.0)
    raise KeyError(name)


G_PRIME_AT_ONE = {"kl": 1.0, "chi2": 0.0, "hellinger": 0.0, "reverse_kl": -1.0, "js": 0.0}
G_PRIME_SUP = {"kl": math.inf, "chi2": math.inf, "hellinger": 1.0, "reverse_kl": 0.0, "js": 0.5 * LOG2}


def divergence_reference(name: str, pi: np.ndarray, q: np.ndarray) -> float:
    """``D_g(pi || q) = sum q g(pi / q)``, each g typed here."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "kl":
            terms = np.where(pi > 0, pi * np.log(pi / q), 0.0)
        elif name == "chi2":
            terms = (pi - q) ** 2 / q
        elif name == "tv":
            terms = np.abs(pi - q)
        elif name == "hellinger":
            terms = (np.sqrt(pi) - np.sqrt(q)) ** 2
        elif name == "reverse_kl":
            terms = -q * np.log(pi / q)
        elif name == "js":
            mid = 0.5 * (pi + q)
            terms = 0.5 * (np.where(pi > 0, pi * np.log(pi / mid), 0.0) + q * np.log(q / mid))
        elif name == "none":
            terms = np.zeros_like(pi)
        else:
            raise KeyError(name)
    return math.fsum(terms)


def objective(name: str, pi: np.ndarray, scores: np.ndarray, q: np.ndarray, lam: float) -> float:
    """``<pi, s> - lambda D_g(pi || q)`` (Definition 4.1)."""
    return math.fsum(pi * scores) - lam * divergence_reference(name, pi, q)


def brentq_reference(name: str, scores: np.ndarray, q: np.ndarray, lam: float) -> np.ndarray:
    """Solve eq. OPT by ``brentq`` on ``nu = (mu - s_max) / lambda``: ``sum q t(y) = 1``."""
    gaps = (scores - scores.max()) / lam

    def excess(nu: float) -> float:
        return math.fsum(q * t_of_y(name, gaps - nu)) - 1.0

    hi = -G_PRIME_AT_ONE[name]  # every y <= g'(1): every t <= 1
    if math.isinf(G_PRIME_SUP[name]):
        lo = gaps.min() - G_PRIME_AT_ONE[name]  # every y >= g'(1): every t >= 1
    else:
        step = 1.0
        while excess(-G_PRIME_SUP[name] + step) <= 0.0:  # T -> inf at the pole of t(y)
            step /= 16.0
        lo = -G_PRIME_SUP[name] + step
    nu = brentq(excess, lo, hi, xtol=1e-300, rtol=8.9e-16, maxiter=2000)
    t = q * t_of_y(name, gaps - nu)
    return t / t.sum()


def water_filling_chi2(scores: np.ndarray, q: np.ndarray, lam: float) -> np.ndarray:
    """Exact chi^2 maximiser: ``pi = q max(0, 1 + (s - mu) / (2 lambda))`` with the active set
    the top-k scores; ``mu`` from ``sum_A q (1 + (s - mu) / (2 lambda)) = 1``."""
    order = np.argsort(-scores, kind="stable")
    s_sorted, q_sorted = scores[order], q[order]
    for k in range(1, scores.size + 1):
        qa, sa = q_sorted[:k], s_sorted[:k]
        mu = (math.fsum(qa * (2.0 * lam + sa)) - 2.0 * lam) / math.fsum(qa)
        inside = s_sorted[k - 1] - mu > -2.0 * lam
        next_out = k == scores.size or s_sorted[k] - mu <= -2.0 * lam
        if inside and next_out:
            return q * np.maximum(0.0, 1.0 + (scores - mu) / (2.0 * lam))
    raise AssertionError("no consistent active set")


def linprog_tv(scores: np.ndarray, q: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """TV as an LP: max <pi, s> - lam sum d, d >= |pi - q|, pi in the simplex (HiGHS)."""
    m = scores.size
    eye = np.eye(m)
    cost = np.concatenate([-scores, lam * np.ones(m)])
    a_ub = np.block([[eye, -eye], [-eye, -eye]])
    b_ub = np.concatenate([q, -q])
    a_eq = np.concatenate([np.ones(m), np.zeros(m)])[None, :]
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=[1.0], bounds=(0, None), method="highs")
    assert res.status == 0, res.message
    return res.x[:m], -res.fun


def small_game(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    m = int(rng.integers(2, 7))
    return rng.uniform(0.0, 5.0, size=m), random_pi_init(rng, m), float(10.0 ** rng.uniform(-2, 2))


# --- closed forms ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", SOLVER_CASES, ids=lambda c: c.name)
def test_closed_form_catalogue(case: SolverCase) -> None:
    """Every game of ``cases.SOLVER_CASES`` (see each ``note``): pi and value to 1e-12."""
    scores, q = np.array(case.scores), np.array(case.pi_init)
    result = solve_sw_max(scores, q, case.divergence, case.lam)
    np.testing.assert_allclose(result.pi, case.pi, rtol=0, atol=1e-12)
    assert float(result.value) == pytest.approx(case.value, rel=1e-12, abs=1e-12)
    assert float(kkt_residual(result, scores, q, case.divergence, case.lam)[0]) <= KKT_TOL
    assert result.success


@pytest.mark.parametrize("divergence", REGULARISING_DIVERGENCES)
def test_constant_scores_leave_pi_init_unchanged(divergence: str) -> None:
    """With ``s = c`` the regulariser alone decides: ``pi = pi_init``, value ``c``.

    (The argmax rule has no regulariser: with constant scores it picks the first outcome,
    which the argmax tie-rule tests cover.)
    """
    q = np.array([0.1, 0.2, 0.3, 0.4])
    result = solve_sw_max(np.full(4, CONSTANT_SCORE), q, divergence, 0.3)
    np.testing.assert_allclose(result.pi, q, rtol=1e-15, atol=0)
    assert float(result.value) == pytest.approx(CONSTANT_SCORE, rel=1e-15)


def test_kl_gibbs_form_on_random_games(rng: np.random.Generator) -> None:
    """KL: ``pi ∝ pi_init exp(s / lambda)``, ``value = lambda log E_q exp(s / lambda)``."""
    for _ in range(100):
        scores, q, lam = small_game(rng)
        lam = float(10.0 ** rng.uniform(-3, 3))
        result = solve_sw_max(scores, q, "kl", lam)
        shift = scores.max() / lam
        weights = q * np.exp(scores / lam - shift)
        np.testing.assert_allclose(result.pi, weights / weights.sum(), rtol=1e-12, atol=1e-300)
        value = lam * (math.log(math.fsum(weights)) + shift)
        assert float(result.value) == pytest.approx(value, rel=1e-12, abs=1e-12)


def test_kl_closed_form_equals_newton(rng: np.random.Generator) -> None:
    """The generic multiplier iteration reproduces the KL closed form (Prop. 4.8)."""
    for _ in range(200):
        m = int(rng.integers(1, 12))
        q = random_pi_init(rng, m)
        lam = float(10.0 ** rng.uniform(-3, 3))
        scores = rng.uniform(0.0, 10.0, size=(4, m))
        closed = solve_sw_max(scores, q, "kl", lam)
        newton = solve_sw_max(scores, q, "kl", lam, method="newton")
        assert closed.method == "closed_form" and newton.method == "newton"
        assert newton.success
        np.testing.assert_allclose(newton.pi, closed.pi, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(newton.value, closed.value, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(newton.nu, closed.nu, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(newton.divergence, closed.divergence, rtol=1e-9, atol=1e-12)


def test_chi2_zero_mass_exactly_where_nonnegativity_binds(rng: np.random.Generator) -> None:
    """chi^2: ``pi(x) = 0`` iff ``s(x) - mu <= -2 lambda`` (KKT, appendix B, with pi >= 0)."""
    zeros_seen = 0
    for _ in range(200):
        m = int(rng.integers(2, 10))
        scores, q = rng.uniform(0.0, 5.0, size=m), random_pi_init(rng, m)
        lam = float(10.0 ** rng.uniform(-2, 1))
        result = solve_sw_max(scores, q, "chi2", lam)
        y = (scores - float(result.mu)) / lam
        assert np.all(result.pi[y < -2.0 - 1e-9] == 0.0)
        assert np.all(result.pi[y > -2.0 + 1e-9] > 0.0)
        np.testing.assert_allclose(result.pi, water_filling_chi2(scores, q, lam), rtol=0, atol=1e-12)
        zeros_seen += int(np.sum(result.pi == 0.0))
    assert zeros_seen > 100  # the constraint did bind


@pytest.mark.parametrize("divergence", ["chi2", "tv"])
def test_support_gaps_are_where_outcomes_enter(divergence: str, rng: np.random.Generator) -> None:
    """Raising an outcome's score by less than its support gap leaves it without mass (and
    the solution unchanged); by a little more gives it mass. On the support the gap is 0;
    divergences with full support have no gaps."""
    entered = 0
    for _ in range(60):
        m = int(rng.integers(2, 8))
        scores, q = rng.uniform(0.0, 5.0, size=m), random_pi_init(rng, m)
        lam = float(10.0 ** rng.uniform(-1, 1))
        result = solve_sw_max(scores, q, divergence, lam)
        gaps = support_gaps(result, scores, divergence, lam)
        assert np.all(gaps[result.pi > 0] == 0.0) and np.all(gaps >= 0.0)
        for x in np.flatnonzero(gaps > 0):
            delta = 1e-6 * max(1.0, gaps[x])
            below, above = scores.copy(), scores.copy()
            below[x] += gaps[x] - delta
            above[x] += gaps[x] + delta
            before = solve_sw_max(below, q, divergence, lam)
            assert before.pi[x] == 0.0
            np.testing.assert_allclose(before.pi, result.pi, rtol=0, atol=1e-12)
            assert solve_sw_max(above, q, divergence, lam).pi[x] > 0.0
            entered += 1
    assert entered > 20  # outcomes were outside the support
    scores, q = rng.uniform(0.0, 5.0, 6), random_pi_init(rng, 6)
    assert np.all(support_gaps(solve_sw_max(scores, q, "kl", 0.1), scores, "kl", 0.1) == 0.0)


def test_tv_moves_mass_from_low_scores_to_the_argmax(rng: np.random.Generator) -> None:
    """TV: outcomes with ``s < s_max - 2 lambda`` give all their mass to the argmax (split by
    pi_init on ties); the rest keep ``pi_init`` (``_tv_closed_form``)."""
    for _ in range(300):
        m = int(rng.integers(2, 8))
        scores = rng.integers(0, 6, size=m).astype(float)  # integers: ties and threshold hits
        q = random_pi_init(rng, m)
        lam = float(rng.choice([0.25, 0.5, 1.0, 1.5, 3.0]))
        result = solve_sw_max(scores, q, "tv", lam)
        s_max = scores.max()
        dropped = scores < s_max - 2.0 * lam
        best = scores == s_max
        expected = np.where(dropped, 0.0, q)
        expected[best] += q[best] / q[best].sum() * q[dropped].sum()
        np.testing.assert_allclose(result.pi, expected, rtol=1e-15, atol=1e-16)
        assert float(result.value) == pytest.approx(objective("tv", result.pi, scores, q, lam), rel=1e-14)
        assert float(result.mu) == s_max - lam


def test_none_picks_the_first_argmax(rng: np.random.Generator) -> None:
    for _ in range(100):
        m = int(rng.integers(1, 8))
        scores = rng.integers(0, 3, size=m).astype(float)
        result = solve_sw_max(scores, np.full(m, 1.0 / m), "none", 1.0)
        first = int(np.flatnonzero(scores == scores.max())[0])
        np.testing.assert_array_equal(result.pi, np.eye(m)[first])
        assert float(result.value) == scores.max()


# --- optimality: KKT and independent references -------------------------------------------


def test_kkt_residual_on_random_games(divergence: str, rng: np.random.Generator) -> None:
    """eq. OPT holds to 1e-10 for lambda log-uniform on [1e-3, 1e3] (200 batches of 5)."""
    worst = 0.0
    for _ in range(200):
        m = int(rng.integers(1, 12))
        q = random_pi_init(rng, m)
        lam = float(10.0 ** rng.uniform(-3, 3))
        scores = rng.uniform(0.0, 10.0, size=(5, m))
        result = solve_sw_max(scores, q, divergence, lam)
        assert result.success, result.message
        worst = max(worst, float(kkt_residual(result, scores, q, divergence, lam).max()))
        np.testing.assert_allclose(result.pi.sum(axis=-1), 1.0, rtol=0, atol=1e-14)
        assert np.all(result.pi >= 0.0)
    assert worst <= KKT_TOL


def test_kkt_residual_detects_a_wrong_solution(divergence: str) -> None:
    scores = np.array([0.0, 1.0, 2.0, 0.5])
    q = np.array([0.4, 0.3, 0.2, 0.1])
    result = solve_sw_max(scores, q, divergence, 0.8)
    wrong = dataclasses.replace(result, pi=np.roll(result.pi, 1))
    assert float(kkt_residual(wrong, scores, q, divergence, 0.8)[0]) > 1e-3
    unnormalised = dataclasses.replace(result, pi=result.pi * 1.01)
    assert float(kkt_residual(unnormalised, scores, q, divergence, 0.8)[0]) >= 0.01 - 1e-12


@pytest.mark.parametrize("name", ["kl", "chi2", "hellinger", "reverse_kl", "js"])
def test_matches_brentq_reference(name: str, rng: np.random.Generator) -> None:
    """``brentq`` on the multiplier with ``(g')^{-1}`` typed in this file: pi and value."""
    for _ in range(60):
        scores, q, lam = small_game(rng)
        reference = brentq_reference(name, scores, q, lam)
        result = solve_sw_max(scores, q, name, lam)
        np.testing.assert_allclose(result.pi, reference, rtol=0, atol=1e-9)
        assert float(result.value) == pytest.approx(objective(name, reference, scores, q, lam), abs=1e-9)


def test_chi2_matches_water_filling(rng: np.random.Generator) -> None:
    for _ in range(200):
        scores, q, lam = small_game(rng)
        result = solve_sw_max(scores, q, "chi2", lam)
        reference = water_filling_chi2(scores, q, lam)
        np.testing.assert_allclose(result.pi, reference, rtol=0, atol=1e-12)
        assert float(result.value) == pytest.approx(objective("chi2", reference, scores, q, lam), abs=1e-12)


def test_tv_matches_linprog(rng: np.random.Generator) -> None:
    """TV against HiGHS on the LP form; continuous random scores make the vertex unique."""
    for _ in range(60):
        scores, q, lam = small_game(rng)
        pi_lp, value_lp = linprog_tv(scores, q, lam)
        result = solve_sw_max(scores, q, "tv", lam)
        assert float(result.value) == pytest.approx(value_lp, abs=1e-9)
        assert float(result.value) >= value_lp - 1e-12 * max(1.0, abs(value_lp))
        np.testing.assert_allclose(result.pi, pi_lp, rtol=0, atol=1e-7)


@pytest.mark.parametrize("name", ["kl", "chi2", "hellinger", "reverse_kl", "js"])
def test_matches_slsqp_on_the_simplex(name: str, rng: np.random.Generator) -> None:
    """A black-box optimiser over the simplex never beats the solver, and lands on it."""
    grad = {
        "kl": lambda t: np.log(t) + 1.0,
        "chi2": lambda t: 2.0 * (t - 1.0),
        "hellinger": lambda t: 1.0 - 1.0 / np.sqrt(t),
        "reverse_kl": lambda t: -1.0 / t,
        "js": lambda t: 0.5 * np.log(2.0 * t / (1.0 + t)),
    }[name]
    for _ in range(20):
        m = int(rng.integers(2, 5))
        scores, q, lam = (
            rng.uniform(0.0, 3.0, size=m),
            random_pi_init(rng, m),
            float(10.0 ** rng.uniform(-1, 1)),
        )
        res = minimize(
            lambda p: -objective(name, p, scores, q, lam),  # noqa: B023
            q,
            jac=lambda p: -(scores - lam * grad(p / q)),  # noqa: B023
            method="SLSQP",
            bounds=[(1e-14, 1.0)] * m,
            constraints=[{"type": "eq", "fun": lambda p: p.sum() - 1.0, "jac": lambda p: np.ones_like(p)}],
            options={"ftol": 1e-16, "maxiter": 1000},
        )
        result = solve_sw_max(scores, q, name, lam)
        assert float(result.value) >= -res.fun - 1e-12
        assert float(result.value) == pytest.approx(-res.fun, abs=1e-10)
        np.testing.assert_allclose(result.pi, res.x, rtol=0, atol=1e-7)


def test_value_and_divergence_fields_agree_with_pi(divergence: str, rng: np.random.Generator) -> None:
    """``divergence = lam D(pi || q)``, ``value = <pi, s> - divergence``, ``mu = s_max + lam nu``."""
    for _ in range(50):
        scores, q, lam = small_game(rng)
        result = solve_sw_max(scores, q, divergence, lam)
        d = lam * divergence_reference(divergence, result.pi, q)
        assert float(result.divergence) == pytest.approx(d, rel=1e-10, abs=1e-13)
        assert float(result.value) == pytest.approx(
            objective(divergence, result.pi, scores, q, lam), abs=1e-12
        )
        assert float(result.mu) == pytest.approx(scores.max() + lam * float(result.nu), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", ["reverse_kl", "hellinger", "js", "kl", "chi2"])
@pytest.mark.parametrize("prior", [1e-6, 1e-12, 1e-300])
def test_kkt_when_mass_concentrates_on_a_rare_outcome(name: str, prior: float) -> None:
    """A best outcome the initial model almost never produces (pi_init = 1e-6 .. 1e-300) and a
    small lambda: the maximiser moves most mass there. eq. OPT must still hold, and a
    ``converged`` status must mean it does (the multiplier sits next to the pole of t(y))."""
    scores = np.array([0.0, 1.0, 2.0, 3.0])
    q = np.array([0.5, 0.3, 0.2 - prior, prior]) if prior > 1e-17 else np.array([0.5, 0.3, 0.2, prior])
    for lam in (1e-2, 1.0):
        result = solve_sw_max(scores, q, name, lam)
        residual = float(kkt_residual(result, scores, q, name, lam)[0])
        assert result.success
        assert residual <= KKT_TOL, f"lambda={lam}: KKT residual {residual:.3g}"
        assert abs(result.pi.sum() - 1.0) <= 1e-12


# --- batches ---------------------------------------------------------------------------------


def _assert_same(batch: SolveResult, index: tuple[int, ...], scalar: SolveResult) -> None:
    """Bitwise, or to 1e-15 (relative for quantities that scale with s)."""
    np.testing.assert_allclose(batch.pi[index], scalar.pi, rtol=0, atol=1e-15)
    for field in ("mu", "nu", "value", "divergence"):
        np.testing.assert_allclose(
            getattr(batch, field)[index], getattr(scalar, field), rtol=1e-15, atol=1e-15, err_msg=field
        )
    assert batch.status[index] == scalar.status


def test_batch_equals_rows_solved_one_at_a_time(divergence: str, rng: np.random.Generator) -> None:
    for _ in range(40):
        m = int(rng.integers(1, 10))
        q = random_pi_init(rng, m)
        lam = float(10.0 ** rng.uniform(-3, 3))
        scores = rng.uniform(0.0, 10.0, size=(7, m))
        batch = solve_sw_max(scores, q, divergence, lam)
        assert batch.pi.shape == (7, m) and batch.value.shape == (7,) and batch.status.shape == (7,)
        for b in range(7):
            _assert_same(batch, (b,), solve_sw_max(scores[b], q, divergence, lam))


def test_batch_of_shape_3_4_m(divergence: str, rng: np.random.Generator) -> None:
    m = 5
    q = random_pi_init(rng, m)
    scores = rng.uniform(0.0, 3.0, size=(3, 4, m))
    batch = solve_sw_max(scores, q, divergence, 0.4)
    assert batch.pi.shape == (3, 4, m)
    for field in ("mu", "nu", "value", "divergence", "status"):
        assert getattr(batch, field).shape == (3, 4), field
    for i in range(3):
        for j in range(4):
            _assert_same(batch, (i, j), solve_sw_max(scores[i, j], q, divergence, 0.4))


def _per_row_priors(rng: np.random.Generator, rows: int, m: int) -> np.ndarray:
    """One initial distribution per row: Dirichlet, uniform, and ones with entries of 1e-300."""
    q = rng.dirichlet(np.ones(m), size=rows)
    q[::3] = 1.0 / m
    if m > 2:
        q[1::3] = _with_tiny(m, [0, m - 1])
    return q


@pytest.mark.parametrize("m", [1, 5, 9000])
def test_a_batch_with_one_pi_init_per_row_equals_rows_solved_alone(
    divergence: str, m: int, rng: np.random.Generator
) -> None:
    """``pi_init`` (B, m), one per score row (a batch of prompts, issue 25): every row equals its
    own solve exactly (field by field), for short rows (one tile), long rows (tiles, packing
    of chi^2's inactive outcomes) and lambda from 1e-6 to 1e6; the values, the KKT residual,
    the sensitivity and the mirror-ascent run per row too."""
    rows = 6 if m < 9000 else 3
    for lam in (1e-6, 0.3, 1e6):
        q = _per_row_priors(rng, rows, m)
        scores = rng.uniform(0.0, 3.0, size=(rows, m))
        batch = solve_sw_max(scores, q, divergence, lam)
        assert batch.success
        for b in range(rows):
            _assert_same(batch, (b,), solve_sw_max(scores[b], q[b], divergence, lam))
        values, status, _ = optimal_values(scores.copy(), q, divergence, lam)
        np.testing.assert_allclose(values, batch.value, rtol=1e-12, atol=1e-12 * lam)
        assert np.all(status == CONVERGED)
        residual = kkt_residual(batch, scores, q, divergence, lam)
        assert residual.shape == (rows,) and float(residual.max()) <= KKT_TOL
        for b in range(rows):
            alone = kkt_residual(
                solve_sw_max(scores[b], q[b], divergence, lam), scores[b], q[b], divergence, lam
            )
            assert float(residual[b]) == float(np.max(alone))
        if m < 9000:
            ascent = mirror_ascent(scores, q, divergence, lam, 3, 0.5)
            for b in range(rows):
                np.testing.assert_array_equal(
                    ascent[b], mirror_ascent(scores[b], q[b], divergence, lam, 3, 0.5)[0]
                )
        if DIVERGENCES[divergence].g_prime_inverse is not None and m < 9000:
            g = rng.normal(size=(rows, m))
            batched = sensitivity(batch, scores, q, divergence, lam, g)
            for b in range(rows):
                alone = solve_sw_max(scores[b], q[b], divergence, lam)
                np.testing.assert_array_equal(
                    batched[b], sensitivity(alone, scores[b], q[b], divergence, lam, g[b])
                )


def test_pi_init_rows_broadcast_against_the_scores(rng: np.random.Generator) -> None:
    """``pi_init`` (P, 1, m) against scores (P, K, m): each prompt's distribution for its K rows."""
    q = rng.dirichlet(np.ones(4), size=3)
    scores = rng.uniform(0.0, 2.0, size=(3, 5, 4))
    batch = solve_sw_max(scores, q[:, None, :], "chi2", 0.2)
    assert batch.pi.shape == (3, 5, 4)
    for p in range(3):
        for k in range(5):
            _assert_same(batch, (p, k), solve_sw_max(scores[p, k], q[p], "chi2", 0.2))
    with pytest.raises(ValueError, match="must be 1-D or broadcast"):
        solve_sw_max(scores, q, "chi2", 0.2)


def test_scalar_call_has_scalar_fields(divergence: str) -> None:
    result = solve_sw_max(np.array([1.0, 0.0, 0.5]), np.full(3, 1 / 3), divergence, 1.0)
    assert result.pi.shape == (3,)
    for field in ("mu", "nu", "value", "divergence", "status"):
        assert np.shape(getattr(result, field)) == (), field


def test_batch_costs_one_pass_per_iteration(newton_divergence: str, rng: np.random.Generator) -> None:
    """One evaluation of ``(g')^{-1}`` over the whole batch per Newton iteration (STYLE.md).

    Divergences with a pole are inverted through ``pole_inverse``, the others through
    ``g_prime_inverse``; whichever the solver uses is counted.
    """
    div = DIVERGENCES[newton_divergence]
    calls: list[tuple[int, ...]] = []
    field = "g_prime_inverse" if div.pole_inverse is None else "pole_inverse"
    inverse = getattr(div, field)

    def counted(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calls.append(np.shape(y))
        return inverse(y)

    counting = dataclasses.replace(div, **{field: counted})
    scores = rng.uniform(0.0, 4.0, size=(64, 9))
    q = random_pi_init(rng, 9)
    result = solve_sw_max(scores, q, counting, 0.05, method="newton")
    assert result.success and result.nit >= 2
    # chi^2 (t = 0 below a finite g'(0+)) starts with one histogram pass, counted in nit
    # (solver._histogram_start)
    assert len(calls) == result.nit - (1 if np.isfinite(div.g_prime_at_zero) else 0)
    assert all(shape == (64, 9) for shape in calls)


def test_batch_with_mixed_statuses(newton_divergence: str) -> None:
    """The ``test_flags`` idea: one batch, some rows converged, some at maxiter.

    The middle row (300 outcomes, uniform scores) needs more than one Newton step for every
    divergence: chi^2's histogram start resolves every outcome of a short row into its own
    set, and lands on the root of such rows at once.
    """
    rng = np.random.default_rng(0)
    m = 300
    q = rng.dirichlet(np.ones(m))
    scores = np.stack([np.full(m, 0.5), rng.uniform(0.0, 3.0, m), np.full(m, 0.5)])
    result = solve_sw_max(scores, q, newton_divergence, 0.1, method="newton", maxiter=1)
    np.testing.assert_array_equal(result.status, [CONVERGED, MAXITER, CONVERGED])
    assert not result.success
    assert result.message == STATUS_MESSAGES[MAXITER]
    np.testing.assert_allclose(result.pi[[0, 2]], np.stack([q, q]), rtol=1e-15)
    full = solve_sw_max(scores, q, newton_divergence, 0.1, method="newton")
    assert full.success and full.message == STATUS_MESSAGES[CONVERGED] == "converged"


# --- argument validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "pi_init", "lam", "match"),
    [
        ([1.0, 2.0], [[0.5, 0.5]], 1.0, r"`pi_init` of shape \(1, 2\) must be 1-D or broadcast"),
        ([1.0, 2.0, 3.0], [0.5, 0.5], 1.0, r"`scores` must end with the 2 outcomes"),
        ([1.0, 2.0], [1.0, 0.0], 1.0, r"`pi_init` must be positive"),
        ([1.0, 2.0], [1.0, 1e-310], 1.0, r"`pi_init` must be positive \(and at least 2\.2e-308"),
        ([1.0, np.nan], [0.5, 0.5], 1.0, r"`scores` must be finite"),
        ([1.0, np.inf], [0.5, 0.5], 1.0, r"`scores` must be finite"),
        ([1.0, 2.0], [0.5, 0.5], 0.0, r"`lam` must be positive and finite, got 0\.0"),
        ([1.0, 2.0], [0.5, 0.5], -1.0, r"`lam` must be positive and finite"),
        ([1.0, 2.0], [0.5, 0.5], np.inf, r"`lam` must be positive and finite"),
        ([1.0, 2.0], [0.5, 0.5], np.nan, r"`lam` must be positive and finite"),
    ],
)
def test_invalid_arguments_raise_value_error(scores, pi_init, lam, match) -> None:
    with pytest.raises(ValueError, match=match):
        solve_sw_max(np.array(scores), np.array(pi_init), "kl", lam)


def test_invalid_method_and_divergence() -> None:
    s, q = np.array([0.0, 1.0]), np.array([0.5, 0.5])
    with pytest.raises(ValueError, match=r"`method` must be 'auto', 'newton' or 'closed_form', got 'lbfgs'"):
        solve_sw_max(s, q, "kl", 1.0, method="lbfgs")
    with pytest.raises(ValueError, match=r"divergence 'tv' has no inverse of g'"):
        solve_sw_max(s, q, "tv", 1.0, method="newton")
    with pytest.raises(ValueError, match=r"divergence 'chi2' has no closed form"):
        solve_sw_max(s, q, "chi2", 1.0, method="closed_form")
    with pytest.raises(ValueError, match=r"unknown divergence 'l2'"):
        solve_sw_max(s, q, "l2", 1.0)


# --- extremes --------------------------------------------------------------------------------

EXTREME_PRIORS = {
    "uniform": lambda m, best, worst: np.full(m, 1.0 / m),
    "tiny_at_best": lambda m, best, worst: _with_tiny(m, [best]),
    "tiny_at_worst": lambda m, best, worst: _with_tiny(m, [worst]),
    "tiny_at_both": lambda m, best, worst: _with_tiny(m, [best, worst]),
}


def _with_tiny(m: int, where: list[int]) -> np.ndarray:
    q = np.full(m, 1.0)
    q[where] = 0.0
    q /= q.sum()
    q[where] = 1e-300
    return q


@pytest.mark.parametrize("lam", [1e-6, 1e6])
@pytest.mark.parametrize("prior", list(EXTREME_PRIORS))
def test_extremes_give_finite_normalised_optima(divergence: str, lam: float, prior: str) -> None:
    """lambda in {1e-6, 1e6} with pi_init entries of 1e-300: finite, sum pi = 1 to 1e-12,
    and (the solver claims exactness) eq. OPT to 1e-10."""
    rng = np.random.default_rng(7)
    scores = rng.uniform(0.0, 3.0, size=(4, 6))
    scores[:, 5] = scores.max(axis=1) + 0.5  # the best outcome
    scores[:, 0] = scores.min(axis=1) - 0.5  # the worst outcome
    q = EXTREME_PRIORS[prior](6, 5, 0)
    result = solve_sw_max(scores, q, divergence, lam)
    for field in ("pi", "mu", "nu", "value", "divergence"):
        assert np.all(np.isfinite(getattr(result, field))), field
    assert np.all(result.pi >= 0.0)
    np.testing.assert_allclose(result.pi.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    assert result.success
    assert float(kkt_residual(result, scores, q, divergence, lam).max()) <= KKT_TOL
    if lam == 1e6 and divergence != "none" and prior == "uniform":
        # a huge lambda keeps pi_init up to O(spread / lambda)
        np.testing.assert_allclose(result.pi, np.broadcast_to(q, result.pi.shape), rtol=1e-5)


@pytest.mark.parametrize("name", DIVERGENCE_NAMES)
def test_single_outcome(name: str) -> None:
    result = solve_sw_max(np.array([[2.0], [5.0]]), np.array([1.0]), name, 0.1)
    np.testing.assert_array_equal(result.pi, [[1.0], [1.0]])
    np.testing.assert_allclose(result.value, [2.0, 5.0], rtol=1e-15)


# --- convergence speed: passes over the scores, not time ------------------------------------


def test_newton_needs_at_most_eight_passes(newton_divergence: str) -> None:
    """Issue 6: <= 8 passes over the scores per solve (histogram start included).

    Over 300 problems of ``cases.random_multiplier_problem``: m = 2 .. 1000, lambda = 1e-6
    .. 1e6, uniform, normal, exponential and tied scores, pi_init uniform, Dirichlet(1) or
    Dirichlet(0.05). The fitted-power step of ``solver._newton_step`` is what keeps the pole
    divergences there (the fixed-power step needed 9 - 11 passes on uniform scores at
    lambda ~ 1 - 10). ``benchmarks/passes.py`` prints the distribution, with pi_init down
    to 1e-300 too.
    """
    rng = np.random.default_rng(20261127)
    worst = 0
    for _ in range(300):
        problem = random_multiplier_problem(rng)
        result = solve_sw_max(problem.scores, problem.pi_init, newton_divergence, problem.lam)
        assert result.success, problem
        worst = max(worst, result.nit)
    assert worst <= 8


def test_chi2_multiplier_at_the_rounding_of_its_digits_converges() -> None:
    """At lambda ~ 3e-6 the multiplier is ~1e8: |T - 1| cannot get below ~1e-9 there.

    The solver accepts the stalled multiplier when ``|T - 1|`` is within what a few ulps of
    it change ``T`` by (it used to report STALLED), and the answer satisfies the KKT
    conditions to the precision the gaps ``(s - s_max) / lambda`` carry.
    """
    scores = np.array([267.34135145, 4.45057345, 23.26576176, 6.17154909, 8.92102648, 576.47655389])
    q = np.array([9.05740221e-01, 1.23298965e-05, 2.22382704e-18, 3.39318620e-06, 3.65982059e-04, 1.98e-16])
    q = q / q.sum()
    lam = 2.739938032565529e-06
    result = solve_sw_max(scores, q, "chi2", lam)
    assert result.success
    assert kkt_residual(result, scores, q, "chi2", lam) <= 1e-8
    # the rare best outcome takes what lambda * pi^2 / q leaves it: ~ (576 - 267) q / (2 lambda)
    assert result.pi[5] == pytest.approx((576.47655389 - 267.34135145) * q[5] / (2 * lam), rel=1e-6)
