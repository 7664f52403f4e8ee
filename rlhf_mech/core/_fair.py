r"""Fairness-minded training rules: MaxMin-RLHF and Nash social welfare (appendix E).

Both choose the fine-tuned model from the whole profile of reports, not from the weighted sum
of the rewards that SW-Max sees (Definition 4.1), so the affine-maximizer payment of eq. (1)
does not apply to them (appendix E). With ``rho_i`` a group's reported measure:

* ``maxmin``: ``max_pi min_i <pi, rho_i> + <pi, offset> - D_f(pi || pi_init)`` with
  ``rho_i = rm_i`` (``over: agents``, MaxMin-RLHF's worst-off agent) or ``rho_i = w_i rm_i``
  (``over: groups``);
* ``nash``: ``max_pi sum_i w_i log <pi, rm_i> + <pi, offset> - D_f(pi || pi_init)``.

Both are concave. With ``V(s) = max_pi <pi, s> - D_f(pi || pi_init)``, the SW-Max optimal
value (convex in ``s``; gradient ``pi*(s)``; Hessian ``d pi / d s = diag(a) - a a^T / sum a``,
:func:`~rlhf_mech.core.jacobian_weights`), their duals are problems over ``n`` weights with the
SW-Max solve inside:

* maxmin (minimax theorem; ``min_i x_i = min_{y in simplex} <y, x>``):
  ``min_{y in simplex} F(y) = V(sum_i y_i rho_i + offset)``;
* nash (``log v = min_{y > 0} (y v - 1 - log y)``, then ``c_i = w_i y_i``):
  ``min_{c > 0} F(c) = V(sum_i c_i rm_i + offset) - sum_i w_i (1 + log(c_i / w_i))``.

The fine-tuned model is ``pi*(s)`` at the optimal weights. The duality gap ``F - P(pi)`` (``P``
the primal objective) is ``sum_i y_i <pi, rho_i> - min_i <pi, rho_i>`` for maxmin and
``sum_i w_i (x_i - 1 - log x_i)``, ``x_i = c_i <pi, rm_i> / w_i``, for nash: both ``>= 0`` and
0 exactly at the optimum, a certificate that needs no reference solver.

Where the divergence has an inverse of ``g'`` (KL, chi^2, Hellinger, reverse KL, JS) the duals
are solved by Newton's method with the exact Hessian, batched over problems: damped Newton on
``c > 0`` for nash, a log-barrier method on the simplex for maxmin (each Newton system scaled
by the weights, so that it stays well conditioned as weights reach 0). Under TV and the argmax
rule (``none``) maxmin is a linear programme, solved one problem at a time by scipy's HiGHS;
nash takes the smooth divergences only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rlhf_mech.core._divergences import Divergence, get_divergence
from rlhf_mech.core._optimality import jacobian_weights, kkt_residual
from rlhf_mech.core._solver import SolveResult, solve_sw_max
from rlhf_mech.core._status import CONVERGED, MAXITER

Array = np.ndarray

#: The measures MaxMin takes the minimum of: per-agent valuations or group valuations.
MAXMIN_OVER = ("agents", "groups")
#: Most Newton iterations of one dual solve (barrier stages included).
MAX_NEWTON = 200
#: The Hessian weight, relative to the largest finite one, of an outcome whose Jacobian weight
#: overflowed (:func:`_inner`), and the mass above which a weight of 0 means that.
LOST_WEIGHT = 1e30
LOST_WEIGHT_PI = 1e-150
#: A dual solve stops when the duality gap is below this, relative to ``1 + |objective|``.
GAP_TOL = 1e-12


@dataclass(frozen=True)
class FairSolution:
    """A fairness-minded training rule's solution for a batch of profiles (leading axes).

    Attributes
    ----------
    solve : the SW-Max solve at the optimal weights (its ``pi`` is the fine-tuned model);
        ``value`` and ``status`` there are replaced by the rule's objective and status.
    weights : (..., n) the optimal dual weights (``y`` on the simplex for maxmin, ``c`` for
        nash), or the LP duals' analogue where an LP solved it.
    gap : (...,) the duality gap ``F(weights) - P(pi)`` (``>= 0``; 0 at the optimum).
    scores : (..., m) the SW-Max scores ``sum_i weights_i rho_i + offset`` at the weights.
    """

    solve: SolveResult
    weights: Array
    gap: Array
    scores: Array


def _measures(rewards: Array, sizes: Array, rule: str, over: str) -> Array:
    """``rho_i``: the reported rewards (nash, maxmin over agents) or ``w_i rm_i``."""
    return rewards * sizes[..., None] if rule == "maxmin" and over == "groups" else rewards


def solve_fair(
    rule: str,
    rewards: Array,
    sizes: Array,
    pi_init: Array,
    divergence: str | Divergence,
    lam: float,
    offset: Array | None = None,
    over: str = "agents",
) -> FairSolution:
    """Solve ``maxmin`` or ``nash`` (module docstring) for profiles ``rewards (..., n, m)``,
    ``sizes (..., n)``; ``offset`` (m,) is the part of the objective owned by no group
    (outcome costs), ``over`` maxmin's measure (:data:`MAXMIN_OVER`)."""
    div = get_divergence(divergence)
    rewards = np.asarray(rewards, dtype=float)
    sizes = np.asarray(sizes, dtype=float)
    batch, (n, m) = rewards.shape[:-2], rewards.shape[-2:]
    if rule == "nash" and np.any(rewards.max(axis=-1) <= 0.0):
        # log v_i = -inf for every model: no optimum (Newton's system would be singular)
        raise ValueError("training rule 'nash' needs every reward model positive somewhere (log v_i > -inf)")
    measures = _measures(rewards, sizes, rule, over).reshape(-1, n, m)
    flat_sizes = np.broadcast_to(sizes, (*batch, n)).reshape(-1, n)
    q = np.asarray(pi_init, dtype=float)
    off = np.zeros(m) if offset is None else np.asarray(offset, dtype=float)
    if div.g_prime_inverse is not None:
        if rule == "maxmin":
            weights = _maxmin_barrier(measures, off, q, div, lam)
        else:
            weights = _nash_newton(measures, flat_sizes, off, q, div, lam)
        solution = _at_weights(rule, measures, flat_sizes, weights, off, q, div, lam)
    else:
        if rule != "maxmin":
            raise ValueError(
                f"training rule {rule!r} needs a divergence with an inverse of g' (not {div.name!r})"
            )
        solution = _maxmin_lp(measures, off, q, div, lam)
    return _reshape(solution, batch)


def fair_residual(solution: FairSolution, pi_init: Array, divergence: str | Divergence, lam: float) -> Array:
    """The relative violation of optimality: the duality gap over ``1 + |objective|``, or the
    inner SW-Max solve's KKT residual (:func:`~rlhf_mech.core.kkt_residual`) where larger."""
    relative = solution.gap / (1.0 + np.abs(solution.solve.value))
    if get_divergence(divergence).g_prime_inverse is None:
        return relative
    inner = kkt_residual(solution.solve, solution.scores, pi_init, divergence, lam).reshape(relative.shape)
    return np.maximum(relative, inner)


# --------------------------------------------------------------------------------------------
# The inner problem: V(sum_i y_i rho_i + offset) and its derivatives in y
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Inner:
    solve: SolveResult
    scores: Array  # (B, m)
    values: Array  # (B, n): <pi, rho_i>
    hessian: Array | None  # (B, n, n): d^2 V / dy^2


def _inner(
    weights: Array, measures: Array, off: Array, q: Array, div: Divergence, lam: float, hessian: bool
) -> _Inner:
    scores = np.matmul(weights[:, None, :], measures)[:, 0, :] + off
    solve = solve_sw_max(scores, q, div, lam)
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
    return _Inner(solve, scores, values, h)


def _nash_objective(inner: _Inner, c: Array, w: Array) -> Array:
    return inner.solve.value - (w * (1.0 + np.log(c / w))).sum(axis=-1)


def _nash_newton(measures: Array, w: Array, off: Array, q: Array, div: Divergence, lam: float) -> Array:
    """Damped Newton on ``F(c) = V(c R + offset) - sum w (1 + log(c / w))`` over ``c > 0``,
    from ``c_i = w_i / v_i`` at the SW-Max model of the reported sizes (``y_i = 1 / v_i``)."""
    start = _inner(w, measures, off, q, div, lam, hessian=False)
    c = w / np.maximum(start.values, np.finfo(float).tiny)
    live = np.ones(len(c), dtype=bool)
    previous_gap = np.full(len(c), np.inf)
    for _ in range(MAX_NEWTON):
        idx = np.flatnonzero(live)
        if idx.size == 0:
            break
        at = _inner(c[idx], measures[idx], off, q, div, lam, hessian=True)
        assert at.hessian is not None
        cw = c[idx]
        g = at.values - w[idx] / cw
        hess = at.hessian + _diag(w[idx] / cw**2)
        # scaled by c: (C H C) (delta / c) = -C g keeps the system's conditioning in hand
        scaled = cw[:, :, None] * hess * cw[:, None, :]
        delta = cw * np.linalg.solve(scaled, -(cw * g)[..., None])[..., 0]
        decrement = -(g * delta).sum(axis=-1)
        objective = _nash_objective(at, cw, w[idx])
        # done when the primal model is optimal to GAP_TOL (the duality gap), or when a
        # Newton step no longer halves the gap (rounding)
        x = cw * at.values / w[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = (w[idx] * (x - 1.0 - np.log(x))).sum(axis=-1)
        quadratic = decrement <= 1e-10 * (1.0 + np.abs(objective))
        stalled = quadratic & (gap > 0.5 * previous_gap[idx])
        previous_gap[idx] = np.where(quadratic, gap, np.inf)
        done = (gap <= GAP_TOL * (1.0 + np.abs(objective))) | stalled
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

        def nash(local: Array, trial: Array, rows: Array = rows) -> Array:
            inner = _inner(trial, measures[rows[local]], off, q, div, lam, hessian=False)
            return _nash_objective(inner, trial, w[rows[local]])

        c[rows] = _armijo(nash, cw, delta, step, objective, decrement)
    return c


def _maxmin_barrier(measures: Array, off: Array, q: Array, div: Divergence, lam: float) -> Array:
    """Log-barrier method for ``min_{y in simplex} V(y R + offset)``: Newton on
    ``V - mu sum log y`` with ``sum y = 1``, ``mu`` divided by 10 from a tenth of the rewards'
    scale until the barrier's gap bound ``n mu`` is below :data:`GAP_TOL` of it."""
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
        at = _inner(yw, measures[idx], off, q, div, lam, hessian=True)
        assert at.hessian is not None
        g = at.values - mw[:, None] / yw
        # Newton with sum(delta) = 0, scaled by y: [[Y H Y + mu I, y], [y^T, 0]]
        k = np.zeros((len(idx), n + 1, n + 1))
        k[:, :n, :n] = yw[:, :, None] * at.hessian * yw[:, None, :] + mw[:, None, None] * np.eye(n)
        k[:, :n, n] = k[:, n, :n] = yw
        rhs = np.concatenate([-(yw * g), np.zeros((len(idx), 1))], axis=-1)
        delta = yw * np.linalg.solve(k, rhs[..., None])[:, :n, 0]
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
            inner = _inner(trial, measures[rows[local]], off, q, div, lam, hessian=False)
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


def _at_weights(
    rule: str, measures: Array, w: Array, weights: Array, off: Array, q: Array, div: Divergence, lam: float
) -> FairSolution:
    """The model, objective, status and duality gap at the dual weights."""
    at = _inner(weights, measures, off, q, div, lam, hessian=False)
    pi, v = at.solve.pi, at.values
    own = at.solve.value - (weights * v).sum(axis=-1)  # <pi, offset> - D_f
    if rule == "maxmin":
        objective = v.min(axis=-1) + own
        gap = (weights * v).sum(axis=-1) - v.min(axis=-1)
    else:
        with np.errstate(divide="ignore"):
            objective = (w * np.log(v)).sum(axis=-1) + own
            x = weights * v / w
            gap = (w * (x - 1.0 - np.log(x))).sum(axis=-1)
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


# --------------------------------------------------------------------------------------------
# TV and the argmax rule: linear programmes
# --------------------------------------------------------------------------------------------


def _maxmin_lp(measures: Array, off: Array, q: Array, div: Divergence, lam: float) -> FairSolution:
    """maxmin under TV or the argmax rule, one linear programme per problem over
    ``(u, l, t)`` with ``pi = pi_init + u - l``: maximise ``t + <pi, offset> - lambda sum (u + l)``
    subject to ``t <= <pi, rho_i>``, ``sum (u - l) = 0``, ``u >= 0``, ``0 <= l <= pi_init``
    (``pi >= 0``; the argmax rule has no regulariser, ``lambda`` 0 here). At the optimum ``u`` and
    ``l`` are not both positive, so ``sum (u + l) = |pi - pi_init|_1``. The ``2m`` constraints of
    TV are bounds: ``n + 1`` rows, which HiGHS's dual simplex solves at ``m = 10^5``. The weights
    are the duals of ``t <= <pi, rho_i>``."""
    from scipy.optimize import linprog

    b, n, m = measures.shape
    penalty = lam if div.name == "tv" else 0.0
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
    return FairSolution(solve, weights, gap, scores)
