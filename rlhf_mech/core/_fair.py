r"""Fairness-minded training rules: MaxMin-RLHF, Nash and alpha-fair social welfare (appendix E).

They choose the fine-tuned model from the whole profile of reports, not from the weighted sum
of the rewards that SW-Max sees (Definition 4.1), so the affine-maximizer payment of eq. (1)
does not apply to them (appendix E). With ``rho_i`` a group's reported measure and
``v_i = <pi, rho_i>``, each maximises ``W(v) + <pi, offset> - D_f(pi || pi_init)``:

* ``maxmin``: ``W = min_i v_i`` with ``rho_i = rm_i`` (``over: agents``, MaxMin-RLHF's
  worst-off agent) or ``rho_i = w_i rm_i`` (``over: groups``);
* ``nash``: ``W = sum_i w_i log v_i``, ``rho_i = rm_i``;
* ``alpha_fair``: ``W = sum_i w_i u_alpha(v_i)`` with the isoelastic utility
  ``u_alpha(v) = (v^(1 - alpha) - 1) / (1 - alpha)`` (``log v`` at ``alpha = 1``: Nash;
  the welfare ordering tends to maxmin's as ``alpha -> inf``), ``rho_i = rm_i``.

All are concave. Each rule is one :class:`FairRule` record: its measures, its welfare, its
duality gap and its dual solver (:mod:`~rlhf_mech.core._duals`: projected Newton on the
simplex for maxmin, a log-barrier method behind it, damped Newton on ``c > 0`` through the
conjugate of ``u`` for the welfare sums, and a linear programme for maxmin under TV and the
argmax rule). A rule with
parameters is a builder of records (``maxmin(over=...)``, ``alpha_fair(alpha=...)``, the
pattern of optax's ``adam(lr)``), kept in :data:`FAIR_RULES`.

The fine-tuned model is ``pi*(s)`` at the optimal weights. The duality gap ``F - P(pi)`` (``P``
the primal objective) is ``sum_i y_i rho_i(pi) - min_i rho_i(pi)`` for maxmin and
``sum_i w_i (y_i v_i - u_*(y_i) - u(v_i))``, ``y_i = c_i / w_i``, for the welfare sums (for
Nash ``sum_i w_i (x_i - 1 - log x_i)``, ``x_i = c_i v_i / w_i``): ``>= 0`` and 0 exactly at the
optimum, a certificate that needs no reference solver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import numpy as np

from rlhf_mech.core._divergences import Divergence, get_divergence
from rlhf_mech.core._duals import (
    GAP_TOL,
    DualProblem,
    Utility,
    linear_maxmin,
    simplex_newton,
    welfare_dual,
)
from rlhf_mech.core._optimality import kkt_residual
from rlhf_mech.core._parameters import Parameter
from rlhf_mech.core._registry import lookup
from rlhf_mech.core._solver import SolveResult
from rlhf_mech.core._status import CONVERGED, MAXITER

Array = np.ndarray


@dataclass(frozen=True)
class FairSolution:
    """A fairness-minded training rule's solution for a batch of profiles (leading axes).

    Attributes
    ----------
    solve : the SW-Max solve at the optimal weights (its ``pi`` is the fine-tuned model);
        ``value`` and ``status`` there are replaced by the rule's objective and status.
    weights : (..., n) the optimal dual weights (``y`` on the simplex for maxmin, ``c`` for
        the welfare sums), or the LP duals' analogue where an LP solved it.
    gap : (...,) the duality gap ``F(weights) - P(pi)`` (``>= 0``; 0 at the optimum).
    scores : (..., m) the SW-Max scores ``sum_i weights_i rho_i + offset`` at the weights.
    """

    solve: SolveResult
    weights: Array
    gap: Array
    scores: Array


# --------------------------------------------------------------------------------------------
# The functions of a fair rule, their signatures pinned
# --------------------------------------------------------------------------------------------


class Measures(Protocol):
    """``(rewards (..., n, m), sizes (..., n)) -> rho (..., n, m)``: what the welfare is of."""

    def __call__(self, rewards: Array, sizes: Array) -> Array: ...


class Welfare(Protocol):
    """``(values (B, n), sizes (B, n)) -> (B,)``: ``W`` at the valuations ``v_i = <pi, rho_i>``."""

    def __call__(self, values: Array, sizes: Array) -> Array: ...


class DualityGap(Protocol):
    """``(weights (B, n), values (B, n), sizes (B, n)) -> (B,)``: ``F(weights) - P(pi)`` at the
    model of the weights, ``>= 0`` and 0 exactly at the optimum."""

    def __call__(self, weights: Array, values: Array, sizes: Array) -> Array: ...


class DualSolver(Protocol):
    """``(problem) -> weights (B, n)``: the optimal dual weights of a batch of problems whose
    divergence inverts ``g'``."""

    def __call__(self, problem: DualProblem) -> Array: ...


class LinearSolver(Protocol):
    """``(problem) -> (solve, weights, gap, scores)``: the rule under a piecewise-linear
    regulariser (TV, the argmax rule), where the dual has no Hessian."""

    def __call__(self, problem: DualProblem) -> tuple[SolveResult, Array, Array, Array]: ...


class RewardCheck(Protocol):
    """``(rewards (..., n, m)) -> None``; raises ``ValueError`` for profiles the rule has no
    optimum for."""

    def __call__(self, rewards: Array) -> None: ...


@dataclass(frozen=True)
class FairRule:
    """One fair training rule, its parameters set.

    Attributes
    ----------
    name : the training rule's name (for messages).
    measures : :class:`Measures`, ``rho_i`` from the reports.
    welfare : :class:`Welfare`, the objective's welfare term.
    gap : :class:`DualityGap`, the optimality certificate.
    dual : :class:`DualSolver`, for the divergences with an inverse of ``g'``.
    linear : :class:`LinearSolver` under TV and the argmax rule, or ``None``: the rule then
        takes the smooth divergences only.
    check : :class:`RewardCheck`, or ``None`` where every profile has an optimum.
    """

    name: str
    measures: Measures
    welfare: Welfare
    gap: DualityGap
    dual: DualSolver
    linear: LinearSolver | None = None
    check: RewardCheck | None = None


# --- maxmin ----------------------------------------------------------------------------------


def _own_rewards(rewards: Array, sizes: Array) -> Array:
    return rewards


def _group_rewards(rewards: Array, sizes: Array) -> Array:
    return rewards * sizes[..., None]


#: MaxMin's ``over``: per-agent valuations ``v_i`` or group valuations ``w_i v_i``.
MAXMIN_MEASURES: dict[str, Measures] = {"agents": _own_rewards, "groups": _group_rewards}
#: The measures MaxMin takes the minimum of.
MAXMIN_OVER = tuple(MAXMIN_MEASURES)
OVER = Parameter(
    "over",
    "choice",
    "agents",
    description="the minimum over per-agent valuations v_i (MaxMin-RLHF) or group valuations w_i v_i",
    choices=MAXMIN_OVER,
)


def _minimum(values: Array, sizes: Array) -> Array:
    return values.min(axis=-1)


def _maxmin_gap(weights: Array, values: Array, sizes: Array) -> Array:
    return (weights * values).sum(axis=-1) - values.min(axis=-1)


def maxmin(over: str = OVER.default) -> FairRule:
    """``max_pi min_i rho_i(pi) + <pi, offset> - D_f``; dual ``min_{y in simplex}
    V(sum_i y_i rho_i + offset)`` (the minimax theorem)."""
    return FairRule(
        name="maxmin",
        measures=MAXMIN_MEASURES[OVER.check(over)],
        welfare=_minimum,
        gap=_maxmin_gap,
        dual=simplex_newton,
        linear=linear_maxmin,
    )


# --- welfare sums: Nash and alpha-fair -----------------------------------------------------------


def _positive_somewhere(name: str, why: str) -> RewardCheck:
    def check(rewards: Array) -> None:
        if np.any(rewards.max(axis=-1) <= 0.0):
            # no model has v_i > 0 (Newton's system would be singular)
            raise ValueError(f"training rule {name!r} needs every reward model positive somewhere ({why})")

    return check


def _welfare_sum(name: str, utility: Utility, why: str) -> FairRule:
    """The rule ``max_pi sum_i w_i u(v_i) + <pi, offset> - D_f`` of a :class:`Utility`."""
    return FairRule(
        name=name,
        measures=_own_rewards,
        welfare=utility.welfare,
        gap=utility.gap,
        dual=partial(welfare_dual, utility),
        check=_positive_somewhere(name, why),
    )


def _log_welfare(v: Array, w: Array) -> Array:
    with np.errstate(divide="ignore"):
        return (w * np.log(v)).sum(axis=-1)


def _log_gap(c: Array, v: Array, w: Array) -> Array:
    x = c * v / w
    with np.errstate(divide="ignore", invalid="ignore"):
        return (w * (x - 1.0 - np.log(x))).sum(axis=-1)


#: ``u = log``: ``u_*(y) = 1 + log y``, ``u_*'(y) = 1 / y``.
LOG = Utility(
    welfare=_log_welfare,
    start=lambda v, w: w / np.maximum(v, np.finfo(float).tiny),
    conjugate=lambda c, w: (w * (1.0 + np.log(c / w))).sum(axis=-1),
    slope=lambda c, w: w / c,
    curvature=lambda c, w: w / c**2,
    gap=_log_gap,
)


def nash() -> FairRule:
    """``max_pi sum_i w_i log v_i(pi) + <pi, offset> - D_f`` (``log v = min_{y > 0} (y v - 1 -
    log y)``)."""
    return _welfare_sum("nash", LOG, "log v_i > -inf")


def _expm1_over(p: float, x: Array) -> Array:
    """``(e^(p x) - 1) / p``, ``x`` at ``p = 0``: exact near ``p = 0`` and ``x = 0``."""
    return x if p == 0.0 else np.expm1(p * x) / p


def isoelastic(alpha: float) -> Utility:
    r"""``u(v) = (v^(1 - alpha) - 1) / (1 - alpha)`` (``log v`` at ``alpha = 1``), ``alpha > 0``.

    With ``p = 1 - 1/alpha``: ``u'(v) = v^-alpha``, ``u_*(y) = 1 + (y^p - 1) / p`` (``1 + log y``
    at ``p = 0``), ``u_*'(y) = y^(-1/alpha)``, ``-u_*''(y) = y^(-1/alpha) / (alpha y)``; the
    Fenchel-Young gap of one group is ``w v^(1 - alpha) (e^L - 1 - (e^(p L) - 1) / p)`` with
    ``L = log(y v^alpha)`` (0 at the optimum), written with ``expm1`` so that it is exact to a
    few ulps of ``L`` near there and continuous through ``alpha = 1``.
    """
    p, r = 1.0 - 1.0 / alpha, 1.0 - alpha

    def welfare(v: Array, w: Array) -> Array:
        with np.errstate(divide="ignore", over="ignore"):
            return (w * _expm1_over(r, np.log(v))).sum(axis=-1)

    def start(v: Array, w: Array) -> Array:
        return w * np.exp(-alpha * np.log(np.maximum(v, np.finfo(float).tiny)))

    def slope(c: Array, w: Array) -> Array:
        return np.exp(-np.log(c / w) / alpha)

    def gap(c: Array, v: Array, w: Array) -> Array:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_v = np.log(v)
            big_l = np.log(c / w) + alpha * log_v
            terms = w * np.exp(r * log_v) * (np.expm1(big_l) - _expm1_over(p, big_l))
        return terms.sum(axis=-1)

    return Utility(
        welfare=welfare,
        start=start,
        conjugate=lambda c, w: (w * (1.0 + _expm1_over(p, np.log(c / w)))).sum(axis=-1),
        slope=slope,
        curvature=lambda c, w: slope(c, w) / (alpha * c),
        gap=gap,
    )


ALPHA = Parameter(
    "alpha",
    "float",
    2.0,
    minimum=0.0,
    exclusive=True,
    # above ~10 the weights u'(v) = v^-alpha reach 1e7 / lambda and more at valuations ~0.2:
    # the dual's model moves by O(1) for score changes at rounding level (docs/training_rules.md)
    maximum=10.0,
    description="inequality aversion of the isoelastic utility (v^(1-alpha) - 1) / (1 - alpha): "
    "1 is Nash, larger tends to maxmin",
)


def alpha_fair(alpha: float = ALPHA.default) -> FairRule:
    """``max_pi sum_i w_i u_alpha(v_i(pi)) + <pi, offset> - D_f`` (:func:`isoelastic`)."""
    return _welfare_sum("alpha_fair", isoelastic(ALPHA.check(alpha)), "v_i > 0")


#: Name -> the builder of its :class:`FairRule` (keywords: the rule's parameters).
FAIR_RULES: dict[str, Callable[..., FairRule]] = {"maxmin": maxmin, "nash": nash, "alpha_fair": alpha_fair}


# --------------------------------------------------------------------------------------------
# Solving
# --------------------------------------------------------------------------------------------


def solve_fair(
    rule: str | FairRule,
    rewards: Array,
    sizes: Array,
    pi_init: Array,
    divergence: str | Divergence,
    lam: float,
    offset: Array | None = None,
    **parameters: Any,
) -> FairSolution:
    """Solve a fair rule (module docstring) for profiles ``rewards (..., n, m)``,
    ``sizes (..., n)``; ``offset`` (m,) is the part of the objective owned by no group
    (outcome costs); ``rule`` a :class:`FairRule` or a name of :data:`FAIR_RULES` built with
    ``parameters`` (``over=`` for maxmin, ``alpha=`` for alpha-fair)."""
    if not isinstance(rule, FairRule):
        rule = lookup("training rule", FAIR_RULES, FairRule, rule)(**parameters)
    div = get_divergence(divergence)
    rewards = np.asarray(rewards, dtype=float)
    sizes = np.asarray(sizes, dtype=float)
    batch, (n, m) = rewards.shape[:-2], rewards.shape[-2:]
    if rule.check is not None:
        rule.check(rewards)
    measures = rule.measures(rewards, sizes).reshape(-1, n, m)
    flat_sizes = np.broadcast_to(sizes, (*batch, n)).reshape(-1, n)
    q = np.asarray(pi_init, dtype=float)
    off = np.zeros(m) if offset is None else np.asarray(offset, dtype=float)
    problem = DualProblem(measures, flat_sizes, off, q, div, lam)
    if div.g_prime_inverse is not None:
        solution = _at_weights(rule, problem, rule.dual(problem))
    elif rule.linear is not None:
        solution = FairSolution(*rule.linear(problem))
    else:
        raise ValueError(
            f"training rule {rule.name!r} needs a divergence with an inverse of g' (not {div.name!r})"
        )
    return _reshape(solution, batch)


def fair_residual(solution: FairSolution, pi_init: Array, divergence: str | Divergence, lam: float) -> Array:
    """The relative violation of optimality: the duality gap over ``1 + |objective|``, or the
    inner SW-Max solve's KKT residual (:func:`~rlhf_mech.core.kkt_residual`) where larger."""
    relative = solution.gap / (1.0 + np.abs(solution.solve.value))
    if get_divergence(divergence).g_prime_inverse is None:
        return relative
    inner = kkt_residual(solution.solve, solution.scores, pi_init, divergence, lam).reshape(relative.shape)
    return np.maximum(relative, inner)


def _at_weights(rule: FairRule, problem: DualProblem, weights: Array) -> FairSolution:
    """The model, objective, status and duality gap at the dual weights."""
    at = problem.at(weights)
    pi, v, w = at.solve.pi, at.values, problem.sizes
    own = at.solve.value - (weights * v).sum(axis=-1)  # <pi, offset> - D_f
    objective = rule.welfare(v, w) + own
    gap = rule.gap(weights, v, w)
    tol = GAP_TOL * (1.0 + np.abs(objective))
    status = np.where((gap <= 10 * tol) & (at.solve.status == CONVERGED), CONVERGED, MAXITER)
    solve = SolveResult(
        pi=pi,
        mu=at.solve.mu,
        nu=at.solve.nu,
        value=objective,
        divergence=at.solve.divergence,
        status=status,
        nit=at.solve.nit,
        method="dual_newton",
        reference=at.solve.reference,
        nu_reference=at.solve.nu_reference,
    )
    return FairSolution(solve, weights, np.maximum(gap, 0.0), at.scores)


def _reshape(solution: FairSolution, batch: tuple[int, ...]) -> FairSolution:
    s = solution.solve
    m, n = s.pi.shape[-1], solution.weights.shape[-1]

    def shaped(a: Array | None) -> Array | None:
        return None if a is None else a.reshape(batch)

    solve = SolveResult(
        pi=s.pi.reshape(*batch, m),
        mu=shaped(s.mu),
        nu=shaped(s.nu),
        value=shaped(s.value),
        divergence=shaped(s.divergence),
        status=shaped(s.status),
        nit=s.nit,
        method=s.method,
        reference=shaped(s.reference),
        nu_reference=shaped(s.nu_reference),
    )
    return FairSolution(
        solve,
        solution.weights.reshape(*batch, n),
        solution.gap.reshape(batch),
        solution.scores.reshape(*batch, m),
    )
