r"""Polishing the best starts of a best-response search.

From the best distinct candidates, with the exact gradient of the utility (implicit
differentiation of the KKT conditions, :meth:`~rlhf_mech.core.Deviation.contribution_outcomes`):
scipy's L-BFGS-B (box) or SLSQP (capped simplex) by successive halving of the starts; where
the trained distribution can lose outcomes (chi^2: the utility has kinks, and is piecewise
linear without payment) a trust-region cutting-plane method settles the best point on its
kink, and the flat directions of a plateau are probed just past where their outcomes enter
the support (the training rule's ``support_gaps``; :func:`polish_kinks`,
:func:`plateau_probes`); MaxMin without payment piece by piece, the set of groups at the
minimum held by equality constraints (:func:`polish_ties`); without an exact gradient
(Heuristic 1, MaxMin, Nash), a restarted bounded simplex method (:func:`polish_nonsmooth`);
where the training rule is not
differentiable (TV), a batched compass search; beyond 64 parameters a batched projected
gradient ascent.
"""

from __future__ import annotations

import contextlib
import math
from functools import partial

import numpy as np

from rlhf_mech.analysis._objective import PIECE_EVALUATIONS, TIE_POINTS_PER_EVALUATION, ReportObjective
from rlhf_mech.analysis._space import ReportSpace

Array = np.ndarray

#: A polished start stops when its step falls below this fraction of the space's extent.
MIN_STEP = 1e-9
#: A piece of Heuristic 1's utility with slopes below this (relative to the gain's scale,
#: over the polytope's extent) at a start is flat (:func:`flat_starts`).
FLAT_SLOPE = 1e-9
#: Trial step multipliers of the line search along the projected gradient (per iteration,
#: for every start at once).
_TRIALS = (4.0, 1.0, 0.25)
#: Shrink factor of a start's step when no trial improved.
_SHRINK = 1.0 / 16.0
#: Up to this many parameters the polish is scipy's (L-BFGS-B, SLSQP); beyond, a batched
#: projected gradient ascent (SLSQP's dense quadratic programmes grow as d^3).
SCIPY_DIMENSION = 64
#: The first simplex's edge in the nonsmooth polish (fraction of the extent).
_SIMPLEX_EDGE = 0.25
#: Polishing without an exact gradient uses forward differences up to this many parameters.
_FD_DIMENSION = 16
#: Steps (fractions of the space's extent) of the probes that leave a plateau.
_PLATEAU_STEPS = (0.5, 0.25, 0.125)
#: Probes past a plateau's edge: fractions of the room beyond the edge.
PAST_EDGE = (1.0 / 64.0, 0.25, 0.75)
#: Pieces of MaxMin's utility polished in turn from one start (:func:`polish_ties`).
_TIE_ROUNDS = 4
#: Groups whose values lie within this of the minimum (relative to the values' scale) tie.
TIE_TOL = 1e-6


# --------------------------------------------------------------------------------------------
# Polishing
# --------------------------------------------------------------------------------------------


def _forward_differences(objective: ReportObjective, z: Array, gains: Array, cap: float) -> Array:
    """(S, d) forward-difference gradients at the points ``z`` (their gains known), stepping
    inward at the polytope's upper bounds: for a payment without an exact gradient."""
    s, d = z.shape
    h = 1e-6 * cap
    at_top = (
        z >= cap - h
        if not objective.space.simplex
        else np.broadcast_to(z.sum(axis=1, keepdims=True) >= cap - h, z.shape)
    )
    signs = np.where(at_top, -1.0, 1.0)
    probes = z[:, None, :] + h * signs[:, :, None] * np.eye(d)[None]
    values, _ = objective(probes.reshape(-1, d))
    return (values.reshape(s, d) - gains[:, None]) / (h * signs)


class _OutOfBudget(Exception):
    """Raised inside a scipy optimiser's objective when the search's budget is spent."""


class _Tracked:
    """The negated, scaled objective a scipy optimiser minimises, remembering the best point
    it visited (projected onto the polytope, so that every evaluation is a valid report) and
    stopping the optimiser at the budget."""

    def __init__(
        self, objective: ReportObjective, cap: float, start: Array, gain: float, scale: float, budget: int
    ) -> None:
        self.objective, self.cap, self.scale, self.budget = objective, cap, scale, budget
        self.best_z, self.best_gain = start.copy(), float(gain)

    def __call__(self, x: Array) -> tuple[float, Array] | float:
        if self.objective.evaluations >= self.budget:
            raise _OutOfBudget
        point = self.objective.space.project(x[None], self.cap)
        exact = self.objective.differentiable
        value, slopes = self.objective(point, gradients=exact)
        if value[0] > self.best_gain:
            self.best_gain, self.best_z = float(value[0]), point[0].copy()
        if not np.isfinite(value[0]):
            return (1e300, np.zeros_like(x)) if exact else 1e300
        if exact:
            assert slopes is not None
            return -float(value[0]) / self.scale, -slopes[0] / self.scale
        return -float(value[0]) / self.scale


def has_kinks(objective: ReportObjective) -> bool:
    """Whether the utility has kinks where the trained distribution drops or gains an outcome
    (a divergence with a finite ``g'(0)``: chi^2), with an exact gradient between them."""
    divergence = objective.group.mechanism.divergence
    return objective.differentiable and bool(np.isfinite(divergence.g_prime_at_zero))


def polish_start(
    objective: ReportObjective, cap: float, z: Array, gain: float, scale: float, end: int
) -> tuple[Array, float, bool]:
    """Local ascent from one start until the evaluation count reaches ``end``.

    Where the utility has kinks (:func:`has_kinks`) the trust-region cutting-plane method
    (:func:`polish_kinks`); without an exact gradient the simplex method
    (:func:`polish_nonsmooth`); else a constrained quasi-Newton optimiser (scipy): L-BFGS-B
    on a box, SLSQP on a capped simplex (``sum z <= cap``), with the exact gradient.
    Returns the best point visited, its gain and whether the method converged."""
    from scipy.optimize import minimize

    if has_kinks(objective):
        values, slopes, _ = objective.probe(z[None])
        return polish_kinks(objective, cap, z[None], values, slopes, end)
    if objective.piecewise:
        return polish_pieces(objective, cap, z, gain, end)
    if not objective.differentiable:
        return polish_nonsmooth(objective, cap, z, gain, scale, end)
    room = end - objective.evaluations
    tracked = _Tracked(objective, cap, z, gain, scale, end)
    bounds = [(0.0, cap)] * z.size
    iterations = max(1, room)
    result = None
    with np.errstate(all="ignore"), contextlib.suppress(_OutOfBudget):
        if objective.space.simplex:
            total = {"type": "ineq", "fun": lambda x: cap - x.sum(), "jac": lambda x: -np.ones_like(x)}
            result = minimize(
                tracked,
                z,
                jac=True,
                method="SLSQP",
                bounds=bounds,
                constraints=[total],
                options={"maxiter": iterations, "ftol": 1e-15},
            )
        else:
            result = minimize(
                tracked,
                z,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxfun": room, "maxiter": iterations, "ftol": 1e-15, "gtol": 1e-13},
            )
    return tracked.best_z, tracked.best_gain, result is not None and bool(result.success)


def polish_nonsmooth(
    objective: ReportObjective, cap: float, z: Array, gain: float, scale: float, end: int
) -> tuple[Array, float, bool]:
    """Local ascent without a gradient where the utility has kinks: bounded Nelder-Mead
    (scipy, adaptive), restarted from the best point with a simplex a quarter the size.

    MaxMin's utility has a kink wherever the groups at the minimum change, Heuristic 1's
    wherever the checkpoint that attains the maximum changes (the payment is a maximum over
    checkpoints that move with the report); finite-difference gradients across a kink point
    the wrong way and a quasi-Newton method stalls there. A simplex method compares values
    only, so it crosses kinks. Each start's simplex has edges of :data:`_SIMPLEX_EDGE` of the
    extent along every coordinate (inward at the bounds: a vertex of the polytope, where the
    best candidates often are, is a corner of its own simplex); a restart begins where the
    last one ended, while it still improves. Returns the best point, its gain and whether
    the last restart converged within the budget (edges below :data:`MIN_STEP`)."""
    from scipy.optimize import minimize

    d = z.size
    tracked = _Tracked(objective, cap, z, gain, scale, end)
    edge = _SIMPLEX_EDGE * cap
    converged = False
    restart = 0
    while objective.evaluations + d + 2 <= end and edge >= MIN_STEP * cap:
        x0 = tracked.best_z.copy()
        before = tracked.best_gain
        # every other restart steps down where it can: a simplex stalled on a kink that
        # runs across its edges is turned round
        down = restart % 2 == 1
        steps = np.where((x0 - edge >= 0) if down else (x0 + edge > cap), -edge, edge)
        restart += 1
        simplex = np.vstack([x0, x0 + np.diag(steps)])
        with np.errstate(all="ignore"), contextlib.suppress(_OutOfBudget):
            result = minimize(
                tracked,
                x0,
                method="Nelder-Mead",
                bounds=[(0.0, cap)] * d,
                options={
                    "initial_simplex": simplex,
                    "adaptive": True,
                    "maxfev": end - objective.evaluations,
                    "xatol": MIN_STEP * cap,
                    "fatol": 1e-13,
                },
            )
            converged = bool(result.success)
        gained = tracked.best_gain - before
        if objective.evaluations >= end:
            converged = False
            break
        edge /= 4
        if not gained > 1e-12 * max(1.0, abs(before)) and edge < _SIMPLEX_EDGE * cap / 16:
            break
    return tracked.best_z, tracked.best_gain, converged


def polish_pieces(
    objective: ReportObjective, cap: float, z: Array, gain: float, end: int
) -> tuple[Array, float, bool]:
    """Local ascent of a utility that is the minimum of smooth pieces (Heuristic 1,
    :meth:`~rlhf_mech.analysis._objective.ReportObjective.pieces`): SLSQP (scipy) on the
    epigraph ``max t  s.t.  t <= u_k(z)`` for every piece ``k``, with each piece's gradient.

    Where the maximum over the reference models changes hands the utility has a kink, but
    every piece is smooth there: the linearised constraints of the pieces tied at the kink
    say which way the tie can be kept or broken, so the method settles on the kink, or
    leaves it, where a gradient of the minimum would point along one piece only. The
    variables are ``y = z / U`` and ``t / s``, ``s`` the start's largest slope times ``U``,
    so that SLSQP's first (unit-Hessian) step is on the scale of the polytope. A run that
    stops on a kink (a failed line search) is restarted from the best point while that
    improves. Returns the best point evaluated, its gain and whether the last run converged."""
    from scipy.optimize import minimize

    d = z.size
    extent = max(cap, np.finfo(float).tiny)
    space = objective.space
    best = {"z": z.copy(), "gain": float(gain)}
    last: dict[str, Array] = {}

    def evaluate(x: Array) -> tuple[Array, Array]:
        if "x" not in last or not np.array_equal(last["x"], x):
            if objective.evaluations + PIECE_EVALUATIONS > end:
                raise _OutOfBudget
            point = space.project(x[None, :d] * extent, cap)
            gains, pieces, jacobians = objective.pieces(point, 1e-7 * extent)
            if gains[0] > best["gain"]:
                best["z"], best["gain"] = point[0].copy(), float(gains[0])
            if "scale" not in last:
                peak = float(np.abs(jacobians[0][np.isfinite(pieces[0])]).max(initial=0.0)) * extent
                last["scale"] = np.array(peak if peak > 0 else max(1.0, abs(gain)))
            scale = float(last["scale"])
            finite = np.isfinite(pieces[0])
            last.update(
                x=x.copy(),
                values=np.where(finite, pieces[0] / scale - x[d], -1e300),
                slopes=np.hstack(
                    [
                        np.where(finite[:, None], jacobians[0], 0.0) * extent / scale,
                        -np.ones((len(finite), 1)),
                    ]
                ),
            )
        return last["values"], last["slopes"]

    constraints = [{"type": "ineq", "fun": lambda x: evaluate(x)[0], "jac": lambda x: evaluate(x)[1]}]
    if space.simplex:
        constraints.append(
            {"type": "ineq", "fun": lambda x: 1.0 - x[:d].sum(), "jac": lambda x: -np.r_[np.ones(d), 0.0]}
        )
    bounds = [*([(0.0, cap / extent)] * d), (None, None)]
    objective_t = (lambda x: -x[d], lambda x: -np.r_[np.zeros(d), 1.0])
    converged = False
    with contextlib.suppress(_OutOfBudget):
        evaluate(np.r_[z / extent, 0.0])  # the scale, from the start's slopes
    while objective.evaluations + 2 * PIECE_EVALUATIONS <= end and "scale" in last:
        before = best["gain"]
        x0 = np.r_[best["z"] / extent, before / float(last["scale"])]
        with np.errstate(all="ignore"), contextlib.suppress(_OutOfBudget):
            result = minimize(
                objective_t[0],
                x0,
                jac=objective_t[1],
                method="SLSQP",
                bounds=bounds,
                constraints=constraints,
                options={
                    "maxiter": max(1, (end - objective.evaluations) // PIECE_EVALUATIONS),
                    "ftol": 1e-14,
                },
            )
            converged = bool(result.success)
        if converged or not best["gain"] > before + 1e-12 * max(1.0, abs(before)):
            break
    return best["z"], best["gain"], converged


def polish_ties(
    objective: ReportObjective, cap: float, z: Array, gain: float, end: int
) -> tuple[Array, float, bool]:
    """Local ascent of MaxMin's utility piece by piece (an active-set method; appendix E).

    MaxMin's model changes its formula where the set ``A`` of groups at the minimum changes,
    and the group's best report usually sits on such a kink (it gains by being at the
    minimum, and is kept there by a tie). On one ``A`` the utility is smooth in the report
    and the dual weights (:func:`_tie_ascent`); where a constraint meets its edge (a weight
    falls to 0, another group reaches the minimum) the next round begins there, with the
    set of MaxMin's solve at that point, while the gain rises (:data:`_TIE_ROUNDS`). Every
    point kept is evaluated by the mechanism's own solve (the pieces only steer). Returns
    the best point evaluated, its gain and whether the last round converged."""
    best_z, best_gain = z.copy(), float(gain)
    converged = False
    for _ in range(_TIE_ROUNDS):
        if objective.evaluations + z.size + 4 > end:
            break
        found, converged = _tie_ascent(objective, cap, best_z, best_gain, end)
        if found is None or objective.evaluations >= end:
            break
        gains, _ = objective(found[None])
        if not gains[0] > best_gain + 1e-12 * max(1.0, abs(best_gain)):
            break
        best_z, best_gain = found, float(gains[0])
    return best_z, best_gain, converged


def _tie_ascent(
    objective: ReportObjective, cap: float, z: Array, gain: float, end: int
) -> tuple[Array | None, bool]:
    """One piece of :func:`polish_ties`: SLSQP (scipy) over the report ``z`` and the dual
    weights ``y`` (:meth:`~rlhf_mech.analysis._objective.ReportObjective.tie_piece`),
    maximising the gain subject to ``v_j = v_a`` for the groups of ``A`` (those within
    :data:`TIE_TOL` of the minimum or with a positive weight at ``z``, and the group itself,
    whose report moves the model only while it is at the minimum), ``v_k >= v_a`` for the
    others, ``sum y = 1``, ``y >= 0`` and ``y = 0`` off ``A``, from the weights of MaxMin's
    solve at ``z`` (:meth:`~rlhf_mech.analysis._objective.ReportObjective.tie_weights`).
    Returns the best point visited whose constraints hold to :data:`TIE_TOL` (``None`` if
    none) and whether SLSQP converged."""
    from scipy.optimize import minimize

    d, i = z.size, objective.group.group
    extent = max(cap, np.finfo(float).tiny)
    space = objective.space
    y0, v0 = objective.tie_weights(z)
    n = y0.size
    scale = max(float(np.abs(v0).max()), abs(gain), np.finfo(float).tiny)
    active = (v0 <= v0.min() + TIE_TOL * scale) | (y0 > TIE_TOL)
    active[i] = True
    a = int(np.flatnonzero(active)[0])
    tied, above = np.flatnonzero(active)[1:], np.flatnonzero(~active)
    y0 = np.where(active, y0, 0.0)
    y0 = y0 / y0.sum() if y0.sum() > 0 else active / active.sum()
    units = np.r_[np.full(d, extent), np.ones(n)]  # the variables are (z / extent, y)
    kept: dict[str, Array] = {}
    last: dict[str, Array] = {}

    def evaluate(x: Array) -> dict[str, Array]:
        if "x" not in last or not np.array_equal(last["x"], x):
            if objective.evaluations + 1 >= end:
                raise _OutOfBudget
            point = space.project(x[None, :d] * extent, cap)[0]
            g, v, dg, dv = objective.tie_piece(np.r_[point, x[d:]], 1e-7 * extent)
            last.update(
                x=x.copy(), g=np.array(g / scale), v=v / scale, dg=dg * units / scale, dv=dv * units / scale
            )
            slack = np.r_[np.abs(v[tied] - v[a]), v[a] - v[above]]
            if np.isfinite(g) and g > kept.get("gain", -np.inf) and slack.max(initial=0.0) <= TIE_TOL * scale:
                kept.update(gain=np.array(g), z=point)
        return last

    def values(x: Array, rows: Array) -> Array:
        return evaluate(x)["v"][rows] - evaluate(x)["v"][a]

    def slopes(x: Array, rows: Array) -> Array:
        return evaluate(x)["dv"][rows] - evaluate(x)["dv"][a]

    weights = np.r_[np.zeros(d), np.ones(n)]
    constraints = [
        {"type": "eq", "fun": lambda x: np.array([weights @ x - 1.0]), "jac": lambda x: weights[None]}
    ]
    for kind, rows in (("eq", tied), ("ineq", above)):
        if len(rows):
            constraints.append(
                {"type": kind, "fun": partial(values, rows=rows), "jac": partial(slopes, rows=rows)}
            )
    if space.simplex:
        total = np.r_[np.ones(d), np.zeros(n)]
        constraints.append({"type": "ineq", "fun": lambda x: 1.0 - total @ x, "jac": lambda x: -total})
    bounds = [*([(0.0, cap / extent)] * d), *((0.0, 1.0 if on else 0.0) for on in active)]
    converged = False
    with np.errstate(all="ignore"), contextlib.suppress(_OutOfBudget):
        result = minimize(
            lambda x: -float(evaluate(x)["g"]),
            np.r_[z / extent, y0],
            jac=lambda x: -evaluate(x)["dg"],
            method="SLSQP",
            bounds=bounds,
            constraints=constraints,
            options={
                "maxiter": max(1, TIE_POINTS_PER_EVALUATION * (end - objective.evaluations)),
                "ftol": 1e-14,
            },
        )
        converged = bool(result.success)
    return kept.get("z"), converged


def flat_starts(objective: ReportObjective, cap: float, z: Array, scale: float) -> Array:
    """Which starts ``z`` (S, d) of a utility that is the minimum of smooth pieces
    (Heuristic 1, :meth:`~rlhf_mech.analysis._objective.ReportObjective.pieces`) have a
    piece at the minimum that is flat: slopes below :data:`FLAT_SLOPE` of ``scale`` over the
    extent ``cap``. A small ``lambda`` saturates the fine-tuned model and the checkpoints
    (point masses whatever the report, within a range of reports), and there the epigraph's
    ``t`` cannot rise along any piece's gradient; a simplex step of a quarter of the extent
    leaves the plateau. Evaluates the pieces at every start."""
    extent = max(cap, np.finfo(float).tiny)
    gains, pieces, jacobians = objective.pieces(z, 1e-7 * extent)
    tied = np.isfinite(pieces) & (pieces <= gains[:, None] + FLAT_SLOPE * scale)
    steepest = np.where(tied, np.abs(jacobians).max(axis=2), np.inf).min(axis=1)
    return steepest * extent <= FLAT_SLOPE * scale


def polish_starts(
    objective: ReportObjective,
    cap: float,
    z: Array,
    gains: Array,
    budget: int,
    flat: Array | None = None,
    stall: float = 0.0,
) -> tuple[Array, Array, bool]:
    """Local ascent from the starts ``z`` (S, d) by successive halving: every round shares
    an equal part of the budget left among the live starts (:func:`polish_start`, resumed
    from where the last round stopped), then keeps the better half of those that have not
    converged. Without an exact gradient the starts are polished in turn instead, best
    first, each with the whole budget left (:func:`polish_nonsmooth`). A start that
    converged, or one that fell behind, keeps its best point.
    ``flat`` marks the flat starts of a utility that is the minimum of smooth pieces
    (:func:`flat_starts`): the others are polished piece by piece, or, where all are flat,
    every start by the simplex method.
    A start whose round raised its gain by at most ``stall`` of it (relative; 0: never) has
    stalled and is dropped, so that the budget goes to the others (and to what the caller
    does with what is left); it does not count as converged.
    Returns the points, their gains and whether every start still live at the end (the best
    among them) converged."""
    z, gains = z.copy(), gains.copy()
    scale = max(1.0, float(np.abs(gains[np.isfinite(gains)]).max(initial=0.0)))
    live = list(np.argsort(-gains, kind="stable"))
    nonsmooth = not (objective.differentiable or objective.piecewise)
    if flat is not None:
        # the pieces' polish cannot leave a flat start: the others share the budget, and
        # where every start is flat the simplex method takes them in turn
        live = [k for k in live if not flat[k]]
        nonsmooth = not live
        live = live or list(np.argsort(-gains, kind="stable"))
    if nonsmooth:
        # the simplex method needs d + 1 evaluations before its first step: the starts in
        # turn, best first, each with the whole budget left (a start that converges early
        # leaves the rest to the next)
        converged = True
        for k in live:
            if objective.evaluations + z.shape[-1] + 2 > budget:
                break
            z[k], gains[k], converged = polish_nonsmooth(objective, cap, z[k], float(gains[k]), scale, budget)
        return z, gains, converged
    per_iteration = PIECE_EVALUATIONS if objective.piecewise else 1
    rounds = max(1, math.ceil(math.log2(len(live))) + 1) if live else 0
    settled = True  # no start dropped as stalled
    for r in range(rounds):
        end = objective.evaluations + (budget - objective.evaluations) // (rounds - r)
        still = []
        for j, k in enumerate(live):
            room = (end - objective.evaluations) // (len(live) - j)
            if room < 2 * per_iteration:
                still.append(k)
                continue
            before = float(gains[k])
            z[k], gains[k], converged = polish_start(
                objective, cap, z[k], before, scale, objective.evaluations + room
            )
            stalled = not converged and bool(stall) and gains[k] <= before + stall * abs(before)
            settled &= not stalled
            if not (converged or stalled):
                still.append(k)
        if not still:
            return z, gains, settled
        still.sort(key=lambda k: -gains[k])
        live = still[: max(1, len(still) // 2)] if r < rounds - 1 else still
    return z, gains, not live and settled


def polish_kinks(
    objective: ReportObjective, cap: float, z: Array, values: Array, slopes: Array, end: int
) -> tuple[Array, float, bool]:
    """Local ascent to a kink: a trust-region cutting-plane (bundle) method.

    Where the support of the trained distribution changes (chi^2, and any divergence with a
    finite ``g'(0)``) the utility has kinks; under no payment with chi^2 it is piecewise
    linear, so that its best response typically sits at a kink, where a quasi-Newton method
    stalls. Every evaluated point ``z_k`` (the rows of ``z``, with their gains ``values``
    and gradients ``slopes`` to begin with) gives the plane ``f_k + g_k (y - z_k)``; the next
    point maximises the lowest plane over the polytope within a box of radius ``r`` around
    the best point (a linear programme, scipy's HiGHS). Only planes that lie above the best
    point's gain there are kept (the utility is not concave everywhere: a plane from a
    plateau or another basin would cap the model below what is known). A piecewise-linear
    concave model is exact after finitely many planes; where the model promises more than
    the evaluation gives, ``r`` halves. Stops when the promise falls below ``1e-12`` of the
    gain's scale or ``r`` below :data:`MIN_STEP` of the extent (converged), or at ``end``
    evaluations. Returns the best point, its gain and whether it converged.
    """
    from scipy.optimize import linprog

    d = z.shape[-1]
    finite = np.isfinite(values)
    points, gains, planes = list(z[finite]), list(values[finite]), list(slopes[finite])
    if not points:
        return z[0], float(values[0]), False
    k = int(np.argmax(gains))
    best_z, best_gain = points[k].copy(), float(gains[k])
    radius = 0.25 * cap
    simplex = objective.space.simplex
    tol = 1e-12 * max(1.0, abs(best_gain))
    while objective.evaluations < end:
        at_best = np.array([g + p @ (best_z - q) for g, p, q in zip(gains, planes, points, strict=True)])
        near = np.array([np.abs(q - best_z).max() <= 2 * radius for q in points])
        keep = np.flatnonzero(near & (at_best >= best_gain - tol))
        # variables (y, t): maximise t subject to t <= f_k + g_k (y - z_k)
        a_ub = np.hstack([-np.array([planes[k] for k in keep]), np.ones((len(keep), 1))])
        b_ub = np.array([gains[k] - planes[k] @ points[k] for k in keep])
        if simplex:
            a_ub = np.vstack([a_ub, [*np.ones(d), 0.0]])
            b_ub = np.r_[b_ub, cap]
        low, high = np.maximum(0.0, best_z - radius), np.minimum(cap, best_z + radius)
        bounds = [*zip(low, high, strict=True), (None, None)]
        result = linprog(np.r_[np.zeros(d), -1.0], A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
        if result.status != 0:
            return best_z, best_gain, False
        promise = -result.fun - best_gain
        if promise <= tol:
            return best_z, best_gain, True
        y = objective.space.project(result.x[None, :d], cap)
        value, slope = objective(y, gradients=True)
        improved = bool(np.isfinite(value[0]) and value[0] > best_gain)
        if np.isfinite(value[0]) and slope is not None:
            points.append(y[0])
            gains.append(float(value[0]))
            planes.append(slope[0])
        # the usual trust-region rule: a step that gives under a quarter of its promise
        # shrinks the region, one that gives three quarters of it at the region's edge grows it
        ratio = (value[0] - best_gain) / promise if improved else 0.0
        if ratio < 0.25:
            radius /= 2
        elif ratio > 0.75 and np.abs(y[0] - best_z).max() >= 0.99 * radius:
            radius = min(2 * radius, cap)
        if improved:
            best_z, best_gain = y[0].copy(), float(value[0])
        if radius < MIN_STEP * cap:
            return best_z, best_gain, True
    return best_z, best_gain, False


def plateau_probes(
    space: ReportSpace, cap: float, z: Array, gain: float, slope: Array, gaps: Array | None
) -> Array:
    """Probes from a polished point along the coordinates where the utility is flat.

    Where an outcome carries no probability (chi^2 and the other divergences with a finite
    ``g'(0)``) a small change of its score changes nothing, so the gradient in its direction
    is zero and a local optimiser stops on the plateau; the best response may lie past the
    plateau's edge, where the outcome enters the support. With the support gaps (how far
    each coordinate must rise against the support for its outcome to enter,
    :meth:`ReportObjective.probe`) each flat coordinate that can enter is moved just past its
    edge and by :data:`PAST_EDGE` of the room beyond it; without them, by
    :data:`_PLATEAU_STEPS` of the extent towards the side with more room. ``slope`` is the
    gradient at ``z``; the probes are projected."""
    tiny = 1e-9 * max(1.0, abs(gain)) / max(cap, np.finfo(float).tiny)
    flat = np.abs(slope) <= tiny
    d = z.size
    moves: list[Array] = []
    if gaps is not None:
        # only score differences matter: outcome j's score rises against the support's by
        # raising z_j to the top and then lowering the support's coordinates together (on
        # a capped simplex the projection does the lowering)
        support = gaps == 0
        room = cap - z + float(z[support].min(initial=cap))
        entering = np.flatnonzero(flat & (gaps > 0) & (gaps < room))
        for fraction in PAST_EDGE:
            rise = gaps[entering] + fraction * (room[entering] - gaps[entering])
            up = rise if space.simplex else np.minimum(rise, cap - z[entering])
            step = np.zeros((len(entering), d))
            step[np.arange(len(entering)), entering] = up
            step -= (rise - up)[:, None] * support[None, :]
            moves.append(step)
        flat &= ~(gaps > 0)  # the outcomes that cannot enter stay where they are
    others = np.flatnonzero(flat)
    up = np.where(z[others] <= cap / 2, 1.0, -1.0)
    for fraction in _PLATEAU_STEPS:
        step = np.zeros((len(others), d))
        step[np.arange(len(others)), others] = fraction * cap * up
        moves.append(step)
    return space.project(z + np.concatenate(moves), cap)


def polish(
    objective: ReportObjective,
    cap: float,
    z: Array,
    gains: Array,
    slopes: Array | None,
    budget: int,
    rng: np.random.Generator,
) -> tuple[Array, Array, bool]:
    """Local ascent from the starts ``z`` (S, d) in the polytope of extent ``cap``.

    With gradients: projected gradient ascent; each iteration tries, for every live start at
    once, the steps ``alpha * cap * g / max|g|`` for the multipliers :data:`_TRIALS`
    (projected on the polytope) and keeps the best if it improves, else shrinks ``alpha``.
    Where the payment has no exact gradient but the training rule is smooth (Heuristic 1),
    forward differences stand in for it (up to :data:`_FD_DIMENSION` parameters); otherwise
    (TV) a compass search over a few coordinates per iteration. Returns the final points,
    their gains and whether every start converged (``alpha`` below :data:`MIN_STEP`).
    """
    space = objective.space
    z, gains = z.copy(), gains.copy()
    alpha = np.full(len(z), 0.25)
    live = np.ones(len(z), dtype=bool)
    d = z.shape[-1]
    finite_differences = slopes is None and objective.smooth and d <= _FD_DIMENSION
    while live.any() and objective.evaluations < budget:
        idx = np.flatnonzero(live)
        if finite_differences:
            if objective.evaluations + len(idx) * (d + len(_TRIALS)) > budget:
                break
            slopes = np.zeros_like(z)
            slopes[idx] = _forward_differences(objective, z[idx], gains[idx], cap)
        if slopes is not None:
            g = slopes[idx]
            peak = np.abs(g).max(axis=-1)
            usable = peak > 0
            direction = np.where(usable[:, None], g / np.where(usable, peak, 1.0)[:, None], 0.0)
            steps = np.array(_TRIALS)[None, :, None] * (alpha[idx, None, None] * cap) * direction[:, None, :]
            trials = z[idx, None, :] + steps
        else:
            coords = rng.integers(0, d, (len(idx), 2))
            sign = np.where(rng.random((len(idx), 2)) < 0.5, -1.0, 1.0)
            steps = np.zeros((len(idx), 2, d))
            rows = np.arange(len(idx))[:, None]
            steps[rows, np.arange(2)[None, :], coords] = sign * (alpha[idx, None] * cap)
            trials = z[idx, None, :] + steps
        shape = trials.shape
        flat = space.project(trials.reshape(-1, d), cap)
        room = budget - objective.evaluations
        if room <= 0:
            break
        take = min(len(flat), room)
        trial_gains = np.full(len(flat), -np.inf)
        trial_slopes = np.zeros((len(flat), d)) if slopes is not None else None
        got, got_slopes = objective(flat[:take], gradients=slopes is not None)
        trial_gains[:take] = got
        if trial_slopes is not None and got_slopes is not None:
            trial_slopes[:take] = got_slopes
        trial_gains = trial_gains.reshape(shape[:2])
        best = np.argmax(trial_gains, axis=1)
        rows = np.arange(len(idx))
        improved = trial_gains[rows, best] > gains[idx] + 4 * np.finfo(float).eps * np.maximum(
            1.0, np.abs(gains[idx])
        )
        flat = flat.reshape(shape)
        for r in np.flatnonzero(improved):
            k = idx[r]
            z[k] = flat[r, best[r]]
            gains[k] = trial_gains[r, best[r]]
            if slopes is not None and trial_slopes is not None:
                slopes[k] = trial_slopes.reshape(*shape[:2], d)[r, best[r]]
            alpha[k] = min(1.0, alpha[k] * max(1.0, _TRIALS[best[r]]))
        alpha[idx[~improved]] *= _SHRINK
        live &= alpha >= MIN_STEP
    return z, gains, not live.any()
