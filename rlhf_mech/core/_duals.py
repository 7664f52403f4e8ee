r"""The dual solvers of the fair training rules (:mod:`~rlhf_mech.core._fair`, appendix E).

Every fair rule maximises ``W(rho_1(pi), ..., rho_n(pi)) + <pi, offset> - D_f(pi || pi_init)``
with ``W`` concave and nondecreasing. With ``V(s) = max_pi <pi, s> - D_f(pi || pi_init)`` (the
SW-Max optimal value: convex, gradient ``pi*(s)``, Hessian ``R (diag(a) - a a^T / sum a) R^T``
in the weights, :func:`~rlhf_mech.core.jacobian_weights`), conjugacy turns each into a problem
over ``n`` weights with one SW-Max solve inside (:class:`DualProblem`):

* :func:`simplex_newton` minimises ``V(sum_i y_i rho_i + offset)`` over the simplex (maxmin:
  ``min_i x_i = min_{y in simplex} <y, x>``) by projected Newton, :func:`simplex_barrier` (a
  log-barrier method) taking what it leaves;
* :func:`orthant_newton` minimises ``V(sum_i c_i rho_i + offset) - sum_i w_i u_*(c_i / w_i)``
  over ``c > 0`` for a welfare ``sum_i w_i u(v_i)`` (Nash, alpha-fair; ``u_*`` the concave
  conjugate of :class:`Utility`);
* :func:`linear_maxmin` solves maxmin under TV and the argmax rule as a linear programme.

Both Newton methods use the exact Hessian, are batched over problems and scale each Newton
system by the weights, so that it stays well conditioned as weights reach 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from rlhf_mech.core._divergences import Divergence
from rlhf_mech.core._optimality import jacobian_weights
from rlhf_mech.core._solver import SolveResult, solve_sw_max
from rlhf_mech.core._status import CONVERGED, MAXITER

Array = np.ndarray

#: Most Newton iterations of one dual solve (barrier stages included).
MAX_NEWTON = 200
#: The Hessian weight, relative to the largest finite one, of an outcome whose Jacobian weight
#: overflowed (:meth:`DualProblem.at`), and the mass above which a weight of 0 means that.
LOST_WEIGHT = 1e30
LOST_WEIGHT_PI = 1e-150
#: A dual solve stops when the duality gap is below this, relative to ``1 + |objective|``.
GAP_TOL = 1e-12


# --------------------------------------------------------------------------------------------
# The inner problem: V(sum_i y_i rho_i + offset) and its derivatives in y
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inner:
    """The SW-Max solve at some weights: its result, scores ``(B, m)``, the measures'
    values ``<pi, rho_i>`` ``(B, n)`` and, when asked for, ``d^2 V / dy^2`` ``(B, n, n)``."""

    solve: SolveResult
    scores: Array
    values: Array
    hessian: Array | None


@dataclass(frozen=True)
class DualProblem:
    """A batch of fair-rule duals: ``measures`` ``rho (B, n, m)``, ``sizes`` ``w (B, n)`` and
    the SW-Max problem inside (``offset`` (m,), ``pi_init``, divergence, lambda)."""

    measures: Array
    sizes: Array
    offset: Array
    pi_init: Array
    divergence: Divergence
    lam: float

    def at(self, weights: Array, rows: Array | None = None, hessian: bool = False) -> Inner:
        """The inner SW-Max solve at ``weights`` (for the problems ``rows``, all by default)."""
        measures = self.measures if rows is None else self.measures[rows]
        q, div, lam = self.pi_init, self.divergence, self.lam
        with np.errstate(over="ignore", invalid="ignore"):
            scores = np.matmul(weights[:, None, :], measures)[:, 0, :] + self.offset
        try:
            solve = solve_sw_max(scores, q, div, lam)
        except ValueError:
            # weights so far out that a score overflowed (a trial step, a start at a valuation
            # of 0): those problems have no model, the others are solved as usual
            solve = _finite_rows(scores, q, div, lam)
        values = np.matmul(measures, solve.pi[:, :, None])[..., 0]
        h = None
        if hessian:
            a = jacobian_weights(solve, scores, q, div, lam)
            # R (diag(a) - a a^T / sum a) R^T in its centred form sum_x a_x (r_x - r_bar)(r_x - r_bar)^T
            # (r_bar = R a / sum a, with a scaled by its largest entry): the two terms of the plain
            # form each reach max(a) ~ pi^2 / (pi_init lambda) (1e306 at pi_init = 1e-300, lambda =
            # 1e-6) and overflow or cancel to noise, where the centred one is what is left
            top = np.maximum(a.max(axis=-1, keepdims=True), np.finfo(float).tiny)
            scaled = a / top
            # a = 0 where pi > 0 is a weight that overflowed (pi_init t' is inf: an outcome at
            # the pole of (g')^{-1}, its distance below it lost to rounding): its limit, a weight
            # far above the others, pins r_bar to that outcome's rewards
            scaled[(a == 0.0) & (solve.pi > LOST_WEIGHT_PI)] = LOST_WEIGHT
            r_bar = (measures * scaled[:, None, :]).sum(axis=-1) / scaled.sum(axis=-1)[:, None]
            centred = measures - r_bar[:, :, None]
            h = top[:, :, None] * np.matmul(centred * scaled[:, None, :], centred.transpose(0, 2, 1))
        return Inner(solve, scores, values, h)


def _finite_rows(scores: Array, q: Array, div: Divergence, lam: float) -> SolveResult:
    """The SW-Max solve of the rows of ``scores`` that are finite; NaN models and an infinite
    value (which no line search accepts) for the others."""
    finite = np.isfinite(scores).all(axis=-1)
    b = len(scores)
    pi, value = np.full(scores.shape, np.nan), np.full(b, np.inf)
    mu, nu, divergence = np.full(b, np.nan), np.full(b, np.nan), np.full(b, np.nan)
    status = np.full(b, MAXITER)
    reference: Array | None = np.full(b, np.nan)
    nu_reference: Array | None = np.full(b, np.nan)
    nit, method = 0, "newton"
    if finite.any():
        part = solve_sw_max(scores[finite], q, div, lam)
        pi[finite], value[finite], status[finite] = part.pi, part.value, part.status
        mu[finite], nu[finite], divergence[finite] = part.mu, part.nu, part.divergence
        if part.reference is None or part.nu_reference is None:
            reference = nu_reference = None  # the multiplier is measured from max s
        else:
            reference[finite], nu_reference[finite] = part.reference, part.nu_reference  # type: ignore[index]
        nit, method = part.nit, part.method
    return SolveResult(pi, mu, nu, value, divergence, status, nit, method, reference, nu_reference)


def _newton_system(matrix: Array, rhs: Array) -> Array:
    """``matrix^-1 rhs`` for a batch of systems ``(B, k, k)``, ``(B, k)``. A system that is
    singular to working precision (a model at a vertex: no curvature left in some direction)
    takes the least-squares step of smallest norm; one with non-finite entries gives NaN, which
    stops that problem's iteration."""
    try:
        return np.linalg.solve(matrix, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = np.full(rhs.shape, np.nan)
        for k in np.flatnonzero(np.isfinite(matrix).all(axis=(1, 2)) & np.isfinite(rhs).all(axis=1)):
            out[k] = np.linalg.lstsq(matrix[k], rhs[k], rcond=None)[0]
        return out


# --------------------------------------------------------------------------------------------
# A welfare sum_i w_i u(v_i) through the conjugate of u: Newton on c > 0
# --------------------------------------------------------------------------------------------


class GroupTerms(Protocol):
    """``(x (B, n), w (B, n)) -> (B, n)``: one term per group of a dual or a welfare."""

    def __call__(self, x: Array, w: Array) -> Array: ...


class Total(Protocol):
    """``(x (B, n), w (B, n)) -> (B,)``: a sum over the groups."""

    def __call__(self, x: Array, w: Array) -> Array: ...


class Gap(Protocol):
    """``(c (B, n), v (B, n), w (B, n)) -> (B,)``: the Fenchel-Young duality gap
    ``sum_i w_i (y_i v_i - u_*(y_i) - u(v_i))``, ``y_i = c_i / w_i``: ``>= 0``, 0 exactly
    where ``y_i = u'(v_i)``."""

    def __call__(self, c: Array, v: Array, w: Array) -> Array: ...


@dataclass(frozen=True)
class Utility:
    """A concave increasing utility ``u`` of a group's valuation, as the dual of the welfare
    ``sum_i w_i u(v_i)`` needs it: through its concave conjugate
    ``u_*(y) = inf_v (y v - u(v))`` (``y > 0``), so that ``u(v) = min_{y > 0} (y v - u_*(y))``
    and, with ``c_i = w_i y_i``, the welfare's dual is
    ``min_{c > 0} V(sum_i c_i rho_i + offset) - sum_i w_i u_*(c_i / w_i)``.

    Attributes
    ----------
    welfare : :class:`Total`, ``(v, w) -> sum_i w_i u(v_i)``.
    start : :class:`GroupTerms`, ``(v, w) -> c = w u'(v)``: the weights at which a model with
        valuations ``v`` would be optimal (the dual's starting point).
    conjugate : :class:`Total`, ``(c, w) -> sum_i w_i u_*(c_i / w_i)``.
    slope : :class:`GroupTerms`, ``(c, w) -> u_*'(c / w)``: the dual's gradient is
        ``v(pi*) - slope`` (0 where ``v_i = u_*'(y_i)``, i.e. ``y_i = u'(v_i)``).
    curvature : :class:`GroupTerms`, ``(c, w) -> -d slope / dc >= 0``: the diagonal that the
        conjugate adds to the dual's Hessian.
    gap : :class:`Gap`, the duality gap.
    """

    welfare: Total
    start: GroupTerms
    conjugate: Total
    slope: GroupTerms
    curvature: GroupTerms
    gap: Gap


def _dual_value(utility: Utility, inner: Inner, c: Array, w: Array) -> Array:
    return inner.solve.value - utility.conjugate(c, w)


def welfare_dual(utility: Utility, problem: DualProblem) -> Array:
    """The optimal ``c`` of ``min_{c > 0} V(c R + offset) - sum_i w_i u_*(c_i / w_i)``:
    :func:`orthant_newton` from the SW-Max model of the reported sizes; the problems it
    leaves above ten times :data:`GAP_TOL` (what a converged status needs) are solved again
    from the spread start, and keep whichever weights have the smaller gap.

    The plain start fails where the SW-Max model of the sizes leaves a group (almost)
    nothing: one-hot rewards on outcomes no other group wants, with a small lambda or a sparse
    chi^2 model, where ``u'(v)`` at that valuation overflows the scores (issues 22, 23)."""
    # where the plain start overflows, the non-finite values are the signal, not a warning
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        c, relative = orthant_newton(utility, problem)
    redo = np.flatnonzero(~(relative <= 10 * GAP_TOL))
    if redo.size:
        sub = DualProblem(
            problem.measures[redo],
            problem.sizes[redo],
            problem.offset,
            problem.pi_init,
            problem.divergence,
            problem.lam,
        )
        again, again_relative = orthant_newton(utility, sub, spread=True)
        better = again_relative < relative[redo]
        c[redo[better]] = again[better]
    return c


def orthant_newton(utility: Utility, problem: DualProblem, spread: bool = False) -> tuple[Array, Array]:
    """Damped Newton on ``F(c) = V(c R + offset) - sum_i w_i u_*(c_i / w_i)`` over ``c > 0``,
    from ``c = w u'(v)`` at the SW-Max model of the reported sizes, or (``spread``) at that
    model mixed half and half with :func:`spread_model`, where every group's valuation is at
    least ``max rho_i / (2n)``. Returns ``c`` and the last duality gap measured of each
    problem relative to ``1 + |F|`` (``inf`` for a problem whose step or objective was not
    finite)."""
    w = problem.sizes
    values = problem.at(w).values
    if spread:
        spread_values = np.matmul(problem.measures, spread_model(problem.measures)[..., None])[..., 0]
        values = 0.5 * (values + spread_values)
    c = utility.start(values, w)
    live = np.ones(len(c), dtype=bool)
    previous_gap, relative = np.full(len(c), np.inf), np.full(len(c), np.inf)
    for _ in range(MAX_NEWTON):
        idx = np.flatnonzero(live)
        if idx.size == 0:
            break
        at = problem.at(c[idx], idx, hessian=True)
        assert at.hessian is not None
        cw = c[idx]
        g = at.values - utility.slope(cw, w[idx])
        hess = at.hessian + _diag(utility.curvature(cw, w[idx]))
        # scaled by c: (C H C) (delta / c) = -C g keeps the system's conditioning in hand
        scaled = cw[:, :, None] * hess * cw[:, None, :]
        delta = cw * _newton_system(scaled, -(cw * g))
        decrement = -(g * delta).sum(axis=-1)
        objective = _dual_value(utility, at, cw, w[idx])
        # done when the primal model is optimal to GAP_TOL (the duality gap), or when a
        # Newton step no longer halves the gap (rounding)
        gap = utility.gap(cw, at.values, w[idx])
        quadratic = decrement <= 1e-10 * (1.0 + np.abs(objective))
        stalled = quadratic & (gap > 0.5 * previous_gap[idx])
        previous_gap[idx] = np.where(quadratic, gap, np.inf)
        # a problem whose step or objective is not finite stops where it is (for the spread
        # start of welfare_dual to take up)
        lost = ~(np.isfinite(decrement) & np.isfinite(objective))
        relative[idx] = np.where(lost, np.inf, gap / (1.0 + np.abs(objective)))
        done = (gap <= GAP_TOL * (1.0 + np.abs(objective))) | stalled | lost
        live[idx[done]] = False
        keep = ~done
        if not keep.any():
            break
        idx, cw, delta, decrement, objective = (
            idx[keep],
            cw[keep],
            delta[keep],
            decrement[keep],
            objective[keep],
        )
        step = _to_boundary(cw, delta)
        rows = idx

        def dual(local: Array, trial: Array, rows: Array = rows) -> Array:
            return _dual_value(utility, problem.at(trial, rows[local]), trial, w[rows[local]])

        c[rows] = _armijo(dual, cw, delta, step, objective, decrement)
    return c, relative


def spread_model(measures: Array) -> Array:
    """``(B, m)``: mass ``1/n`` on each group's best outcome (``argmax rho_i``), where each
    group's valuation is at least ``max rho_i / n`` (with nonnegative measures)."""
    b, n, m = measures.shape
    pi = np.zeros((b, m))
    np.add.at(pi, (np.repeat(np.arange(b), n), measures.argmax(axis=-1).ravel()), 1.0 / n)
    return pi


# --------------------------------------------------------------------------------------------
# min_y V(y R + offset) over the simplex: a log-barrier method
# --------------------------------------------------------------------------------------------


#: Most projected Newton iterations of :func:`simplex_newton` before the barrier takes over.
MAX_PROJECTED = 40


def project_simplex(v: Array) -> Array:
    """The Euclidean projection of each row of ``v`` onto the simplex (``-inf`` entries go to
    0): ``max(v - theta, 0)`` with ``theta`` the row's threshold, found by sorting. Rows are
    first shifted by their maximum (the projection is the same): the largest entry then
    always counts, however large ``v``."""
    v = v - v.max(axis=-1, keepdims=True)
    u = -np.sort(-v, axis=-1)
    with np.errstate(invalid="ignore"):
        cumulative = np.cumsum(u, axis=-1) - 1.0
        ks = np.arange(1, v.shape[-1] + 1)
        count = np.sum(u - cumulative / ks > 0, axis=-1)
    theta = np.take_along_axis(cumulative, (count - 1)[:, None], axis=-1) / count[:, None]
    return np.maximum(v - theta, 0.0)


def simplex_newton(problem: DualProblem) -> Array:
    """``min_{y in simplex} V(y R + offset)`` (maxmin's dual) by projected Newton
    (Bertsekas 1982, "Projected Newton methods for optimization problems with simple
    constraints"), with :func:`simplex_barrier` for the problems it leaves unconverged.

    Each iteration, with ``g = dV/dy = (<pi, rho_i>)_i`` and ``H`` the exact Hessian:

    1. stop when the duality gap ``sum_i y_i g_i - min_i g_i`` is below :data:`GAP_TOL` of
       ``1 + |V|`` (the barrier's final test);
    2. hold at 0 the weights at (or within ``eps`` of) 0 whose gradient exceeds the
       multiplier estimate ``lambda = sum_i y_i g_i`` (the KKT condition pushes them out);
    3. Newton on the others within ``sum delta = 0``: ``[[H_FF, 1], [1^T, 0]]``;
    4. Armijo backtracking along the projection arc ``P(y + t delta)`` onto the simplex,
       which lets any number of weights reach 0 in one step.

    A vertex or a face is reached in finitely many steps and Newton converges quadratically
    on it, so a solve takes a handful of Hessians where the barrier's path takes ~100.
    """
    measures = problem.measures
    b, n, _ = measures.shape
    y = np.full((b, n), 1.0 / n)
    live = np.ones(b, dtype=bool)
    stuck = np.zeros(b, dtype=bool)  # a non-finite step: left to the barrier
    for _ in range(MAX_PROJECTED):
        idx = np.flatnonzero(live & ~stuck)
        if idx.size == 0:
            break
        yw = y[idx]
        at = problem.at(yw, idx, hessian=True)
        assert at.hessian is not None
        g, value = at.values, at.solve.value
        gap = (yw * g).sum(axis=-1) - g.min(axis=-1)
        done = gap <= GAP_TOL * (1.0 + np.abs(value))
        live[idx[done]] = False
        keep = ~done & np.isfinite(gap)
        stuck[idx[~done & ~keep]] = True
        if not keep.any():
            continue
        rows, yw, g, h, value = idx[keep], yw[keep], g[keep], at.hessian[keep], value[keep]
        lam = (yw * g).sum(axis=-1, keepdims=True)
        eps = np.minimum(1e-3, gap[keep])[:, None]
        held = (yw <= eps) & (g > lam)
        free = ~held
        k = np.zeros((len(rows), n + 1, n + 1))
        k[:, :n, :n] = np.where(free[:, :, None] & free[:, None, :], h, 0.0) + _diag(held.astype(float))
        k[:, :n, n] = k[:, n, :n] = free
        rhs = np.concatenate([np.where(free, -g, 0.0), np.zeros((len(rows), 1))], axis=-1)
        delta = _newton_system(k, rhs)[:, :n]
        finite = np.isfinite(delta).all(axis=-1)
        stuck[rows[~finite]] = True
        rows, yw, g, value, delta, held = (
            rows[finite],
            yw[finite],
            g[finite],
            value[finite],
            delta[finite],
            held[finite],
        )
        target = np.where(held, -np.inf, yw)  # held weights project to 0

        def value_at(local: Array, points: Array, rows: Array = rows) -> Array:
            return problem.at(points, rows[local]).solve.value

        points, accepted = _armijo_arc(value_at, target, delta, yw, g, value)
        y[rows[accepted]] = points[accepted]
        stuck[rows[~accepted]] = True  # no decrease along the arc: the barrier's
    if live.any():  # what projected Newton left: the barrier, from the start
        rows = np.flatnonzero(live)
        y[rows] = simplex_barrier(replace(problem, measures=measures[rows], sizes=problem.sizes[rows]))
    return y


def _armijo_arc(
    value_at: Callable[[Array, Array], Array], target: Array, delta: Array, y: Array, g: Array, value: Array
) -> tuple[Array, Array]:
    """Armijo along the projection arc ``y(t) = P(target + t delta)``: per row the first
    ``t`` of ``1, 1/2, ..., 2^-39`` with ``V(y(t)) <= V(y) + <g, y(t) - y> / 4`` (rounding
    slack added); ``value_at(rows, points)`` is ``V``. Returns the points and which rows
    found one."""
    step = np.ones(len(y))
    out = y.copy()
    pending = np.ones(len(y), dtype=bool)
    slack = 4 * np.finfo(float).eps * (1.0 + np.abs(value))
    for _ in range(40):
        idx = np.flatnonzero(pending)
        if idx.size == 0:
            break
        points = project_simplex(target[idx] + step[idx, None] * delta[idx])
        f = value_at(idx, points)
        bound = value[idx] + 0.25 * (g[idx] * (points - y[idx])).sum(axis=-1) + slack[idx]
        ok = np.isfinite(f) & (f <= bound)
        out[idx] = points
        pending[idx[ok]] = False
        step[idx[~ok]] /= 2.0
    return out, ~pending


def simplex_barrier(problem: DualProblem) -> Array:
    """Log-barrier method for ``min_{y in simplex} V(y R + offset)``: Newton on
    ``V - mu sum log y`` with ``sum y = 1``, ``mu`` divided by 10 from a tenth of the rewards'
    scale until the barrier's gap bound ``n mu`` is below :data:`GAP_TOL` of it."""
    measures = problem.measures
    b, n, _ = measures.shape
    y = np.full((b, n), 1.0 / n)
    scale = np.maximum(np.abs(measures).max(axis=(1, 2)), np.finfo(float).tiny)
    mu = 0.1 * scale
    final = GAP_TOL * scale / (10.0 * n)
    live = np.ones(b, dtype=bool)
    previous_gap = np.full(b, np.inf)
    for _ in range(MAX_NEWTON):
        idx = np.flatnonzero(live)
        if idx.size == 0:
            break
        yw, mw = y[idx], mu[idx]
        at = problem.at(yw, idx, hessian=True)
        assert at.hessian is not None
        g = at.values - mw[:, None] / yw
        # Newton with sum(delta) = 0, scaled by y: [[Y H Y + mu I, y], [y^T, 0]]
        k = np.zeros((len(idx), n + 1, n + 1))
        k[:, :n, :n] = yw[:, :, None] * at.hessian * yw[:, None, :] + mw[:, None, None] * np.eye(n)
        k[:, :n, n] = k[:, n, :n] = yw
        rhs = np.concatenate([-(yw * g), np.zeros((len(idx), 1))], axis=-1)
        delta = yw * _newton_system(k, rhs)[:, :n]
        decrement = -(g * delta).sum(axis=-1)
        barrier = at.solve.value - mw * np.log(yw).sum(axis=-1)
        last = mw <= final[idx]
        # at the last stage the primal model must be optimal too: its duality gap
        # sum y v - min v is first order in the dual's error, the decrement second order
        gap = (yw * at.values).sum(axis=-1) - at.values.min(axis=-1)
        # ... or stops shrinking (rounding: a Newton step at this gap only moves the noise)
        quadratic = last & (decrement <= 1e-10 * (1.0 + np.abs(barrier)))
        stalled = quadratic & (gap > 0.5 * previous_gap[idx])
        previous_gap[idx] = np.where(quadratic, gap, np.inf)
        finished = last & ((gap <= GAP_TOL * (1.0 + np.abs(at.solve.value))) | stalled)
        centred = (decrement <= 0.1 * mw) & ~last
        live[idx[finished]] = False
        mu[idx[centred]] = np.maximum(mw[centred] / 10.0, final[idx][centred])
        centred |= finished
        move = ~centred
        if not move.any():
            continue
        rows, yr, dr = idx[move], yw[move], delta[move]

        def barrier_at(local: Array, trial: Array, rows: Array = rows) -> Array:
            inner = problem.at(trial, rows[local])
            return inner.solve.value - mu[rows[local]] * np.log(trial).sum(axis=-1)

        y[rows] = _armijo(barrier_at, yr, dr, _to_boundary(yr, dr), barrier[move], decrement[move])
        y[rows] /= y[rows].sum(axis=-1, keepdims=True)
    return y


def _diag(v: Array) -> Array:
    out = np.zeros((*v.shape, v.shape[-1]))
    idx = np.arange(v.shape[-1])
    out[..., idx, idx] = v
    return out


def _to_boundary(x: Array, delta: Array) -> Array:
    """The largest step ``<= 1`` keeping ``x + t delta`` at least 1% of ``x`` (rows)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(delta < 0, -0.99 * x / delta, np.inf)
    return np.minimum(1.0, ratio.min(axis=-1))


def _armijo(
    objective: Callable[[Array, Array], Array],
    x: Array,
    delta: Array,
    step: Array,
    value: Array,
    decrement: Array,
) -> Array:
    """Backtracking (halving) until ``f(x + t delta) <= f(x) - t decrement / 4`` for each
    row; ``objective(rows, points)`` evaluates rows of the batch (each round only those still
    backtracking); the full step where the decrement is already at rounding level. A row that
    never passes keeps its smallest step: rounding, not a wrong direction, is then what stops
    it."""
    out = x + step[:, None] * delta
    # a decrement below 1e-10 of the objective is Newton's region of quadratic convergence,
    # where the decrease is below what the objective's rounding lets a line search see
    pending = decrement > 1e-10 * (1.0 + np.abs(value))
    slack = 4 * np.finfo(float).eps * (1.0 + np.abs(value))
    for _ in range(60):
        idx = np.flatnonzero(pending)
        if idx.size == 0:
            break
        trial = x[idx] + step[idx, None] * delta[idx]
        f = objective(idx, trial)
        ok = np.isfinite(f) & (f <= value[idx] - 0.25 * step[idx] * decrement[idx] + slack[idx])
        out[idx] = trial
        pending[idx[ok]] = False
        step[idx[~ok]] /= 2.0
    return out


# --------------------------------------------------------------------------------------------
# TV and the argmax rule: linear programmes
# --------------------------------------------------------------------------------------------


def linear_maxmin(problem: DualProblem) -> tuple[SolveResult, Array, Array, Array]:
    """maxmin under TV or the argmax rule, one linear programme per problem over
    ``(u, l, t)`` with ``pi = pi_init + u - l``: maximise ``t + <pi, offset> - kappa sum (u + l)``
    subject to ``t <= <pi, rho_i>``, ``sum (u - l) = 0``, ``u >= 0``, ``0 <= l <= pi_init``
    (``pi >= 0``), with ``kappa = lambda sup g'`` the slope of the piecewise-linear
    regulariser (TV ``lambda``; the argmax rule, no regulariser, 0). At the optimum ``u`` and
    ``l`` are not both positive, so ``sum (u + l) = |pi - pi_init|_1``. The ``2m`` constraints of
    TV are bounds: ``n + 1`` rows, which HiGHS's dual simplex solves at ``m = 10^5``. The weights
    are the duals of ``t <= <pi, rho_i>``.

    Returns ``(solve, weights, gap, scores)`` as :class:`~rlhf_mech.core.FairSolution` holds them.
    """
    from scipy.optimize import linprog

    measures, off, q = problem.measures, problem.offset, problem.pi_init
    b, n, m = measures.shape
    penalty = problem.lam * problem.divergence.g_prime_sup
    cost = np.r_[penalty - off, penalty + off, -1.0]
    bounds = np.c_[np.zeros(2 * m + 1), np.r_[np.full(m, np.inf), q, np.inf]]
    bounds[-1, 0] = -np.inf
    a_eq = np.r_[np.ones(m), -np.ones(m), 0.0][None, :]
    pis, weights = np.tile(q, (b, 1)), np.full((b, n), np.nan)
    objective, gap = np.full(b, np.nan), np.full(b, np.inf)
    for k in range(b):
        rho = measures[k]
        # t - <u - l, rho_i> <= <pi_init, rho_i>
        cuts = np.hstack([-rho, rho, np.ones((n, 1))])
        res = linprog(cost, cuts, rho @ q, a_eq, [0.0], bounds, method="highs-ds")
        if res.status != 0:
            continue
        pi = np.clip(q + res.x[:m] - res.x[m : 2 * m], 0.0, None)
        pi /= pi.sum()
        objective[k] = (rho @ pi).min() + off @ pi - penalty * np.abs(pi - q).sum()
        gap[k] = max(0.0, off @ q - res.fun - objective[k])
        pis[k], weights[k] = pi, -res.ineqlin.marginals
    # lambda sum |pi - pi_init| is known to m ulps of lambda (HiGHS's value and ours add it in
    # other orders): at lambda = 1e5 that is 1e-11, above GAP_TOL
    rounding = 4.0 * m * np.finfo(float).eps * penalty
    tol = 10 * GAP_TOL * (1.0 + np.abs(np.nan_to_num(objective))) + rounding
    status = np.where(gap <= tol, CONVERGED, MAXITER)
    zeros = np.zeros(b)
    solve = SolveResult(
        pi=pis,
        mu=zeros,
        nu=zeros,
        value=objective,
        divergence=penalty * np.abs(pis - q).sum(axis=-1),
        status=status,
        nit=0,
        method="linprog",
    )
    scores = np.matmul(np.nan_to_num(weights)[:, None, :], measures)[:, 0, :] + off
    return solve, weights, gap, scores
