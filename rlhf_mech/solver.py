r"""The SW-Max training rule (Definition 4.1), solved exactly.

``pi* = argmax_{pi in simplex} <pi, s> - lambda * D_g(pi || pi_init)`` with ``s = sum_i w_i rm_i``.

Method
------
By the KKT conditions of appendix B (eq. OPT, with the non-negativity constraint kept)
the maximiser is, for a multiplier ``mu``,

    t(x) = pi(x) / pi_init(x) = (g')^{-1}((s(x) - mu) / lambda)   if (s(x) - mu)/lambda > g'(0+)
    t(x) = 0                                                      otherwise,

and ``mu`` is the root of ``T(mu) = sum_x pi_init(x) t(x) - 1``, a decreasing convex function.
Divergences with a closed form (KL, TV) use it. For the others the root is found by a
vectorised Newton iteration on the multiplier, one pass over the scores per iteration:

1. start at ``mu_0 = max(s_min - lambda g'(1), s_max - lambda g'(1 / pi_init(x*)))``, where
   ``T(mu_0) >= 1`` (every ratio is at least 1, or the best outcome alone carries mass 1);
   the upper end ``s_max - lambda g'(1)`` has ``T <= 1``;
2. Newton steps on ``log T`` (when ``t(y)`` is log-convex: KL, Hellinger, reverse KL, JS) or on
   ``T`` (chi^2, piecewise linear). For a convex decreasing function, Newton from the left
   increases monotonically to the root and never leaves the domain; a step that leaves the
   bracket kept from the signs of ``T - 1`` is replaced by bisection (a guard against rounding);
3. stop when ``|T - 1| <= 4 eps`` (or the step is below rounding and ``|T - 1| <= 1e-10``;
   a multiplier that stalls further from the root is reported as :data:`STALLED`);
   ``pi = pi_init * t / T``.

For the divergences whose ``g'`` is bounded (Hellinger, reverse KL, JS) the iterate is the
best outcome's distance below the pole of ``(g')^{-1}``, so that an outcome with
``pi_init = 1e-300`` can take mass O(1) (distance ~1e-150) without losing digits.

The result is exact up to rounding: chi^2 puts exactly zero mass where
``s(x) - mu <= -2 lambda``, the pole divergences keep every ratio finite.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlhf_mech.divergences import Divergence, get_divergence

Array = np.ndarray

#: ``status`` values of :class:`SolveResult` and their meaning (scipy's ``flag_map``).
CONVERGED = 0
MAXITER = 1
STALLED = 2
STATUS_MESSAGES = {
    CONVERGED: "converged",
    MAXITER: "the multiplier iteration hit maxiter before |T - 1| <= tol",
    STALLED: "the multiplier stopped moving (rounding) with |T - 1| above 1e-10",
}

#: A multiplier that no longer moves is accepted when the mass is this close to 1.
_STALL_TOL = 1e-10

_EPS = np.finfo(float).eps


@dataclass(frozen=True)
class SolveResult:
    """Maximiser of the SW-Max objective for one score vector or a batch of them.

    Leading (batch) axes of ``scores`` carry over to every field.

    Attributes
    ----------
    pi : (..., m) array, the fine-tuned distribution.
    mu : (...,) array, the multiplier of ``sum pi = 1`` (eq. OPT).
    nu : (...,) array, the same multiplier as ``(mu - max_x s(x)) / lambda``, exact to rounding
        (``mu`` itself cannot resolve ``y = (s - mu) / lambda`` when lambda is tiny).
    value : (...,) array, the optimal objective ``<pi, s> - lambda D_g(pi || pi_init)``.
    divergence : (...,) array, ``lambda * D_g(pi || pi_init)`` at ``pi``.
    status : (...,) int array, :data:`CONVERGED`, :data:`MAXITER` or :data:`STALLED`.
    nit : int, multiplier iterations (passes over the scores); 0 for a closed form.
    method : ``"closed_form"`` or ``"newton"``.
    """

    pi: Array
    mu: Array
    nu: Array
    value: Array
    divergence: Array
    status: Array
    nit: int
    method: str

    @property
    def success(self) -> bool:
        """Whether every problem of the batch converged."""
        return bool(np.all(self.status == CONVERGED))

    @property
    def message(self) -> str:
        """The status in words (the worst status of the batch)."""
        return STATUS_MESSAGES[int(np.max(self.status))]


def _validate(scores: Array, pi_init: Array, lam: float) -> tuple[Array, Array]:
    scores = np.asarray(scores, dtype=float)
    pi_init = np.asarray(pi_init, dtype=float)
    if pi_init.ndim != 1:
        raise ValueError(f"`pi_init` must be a 1-D array, got shape {pi_init.shape}")
    if scores.ndim < 1 or scores.shape[-1] != pi_init.shape[0]:
        raise ValueError(
            f"`scores` must end with the {pi_init.shape[0]} outcomes of `pi_init`, got shape {scores.shape}"
        )
    if not np.all(pi_init >= np.finfo(float).tiny):
        raise ValueError("`pi_init` must be positive (and at least 2.2e-308, a normal float)")
    if not np.all(np.isfinite(scores)):
        raise ValueError("`scores` must be finite")
    if not (np.isfinite(lam) and lam > 0):
        raise ValueError(f"`lam` must be positive and finite, got {lam}")
    return scores, pi_init


def solve_sw_max(
    scores: Array,
    pi_init: Array,
    divergence: str | Divergence,
    lam: float,
    *,
    method: str = "auto",
    maxiter: int = 100,
) -> SolveResult:
    r"""Solve the SW-Max training rule (Definition 4.1) for one or many score vectors.

    Parameters
    ----------
    scores : (..., m) array, ``s = sum_i w_i rm_i`` (the weighted reported rewards).
    pi_init : (m,) array, the initial distribution (positive).
    divergence : name or :class:`~rlhf_mech.divergences.Divergence`.
    lam : the regularisation strength ``lambda > 0``.
    method : ``"auto"`` (closed form where the divergence has one), ``"newton"`` (force the
        multiplier root-find; used to check KL's closed form) or ``"closed_form"``.
    maxiter : most Newton iterations.

    Returns
    -------
    SolveResult

    Notes
    -----
    See the module docstring for the method. Work is vectorised over the batch: one
    iteration costs one pass over ``scores``; problems that converged are frozen.
    """
    div = get_divergence(divergence)
    scores, pi_init = _validate(scores, pi_init, lam)
    batch_shape = scores.shape[:-1]
    flat = scores.reshape(-1, scores.shape[-1])
    log_q = np.log(pi_init)
    use_closed = method == "closed_form" or (method == "auto" and div.closed_form is not None)
    if method not in ("auto", "newton", "closed_form"):
        raise ValueError(f"`method` must be 'auto', 'newton' or 'closed_form', got {method!r}")
    if use_closed:
        if div.closed_form is None:
            raise ValueError(f"divergence {div.name!r} has no closed form")
        sol = div.closed_form(flat, log_q, pi_init, lam)
        pi, mu, value, dval = sol.pi, sol.mu, sol.value, sol.divergence
        nu = sol.nu
        status, nit, used = np.zeros(flat.shape[0], dtype=int), 0, "closed_form"
    else:
        if div.g_prime_inverse is None:
            raise ValueError(f"divergence {div.name!r} has no inverse of g' for Newton's method")
        pi, mu, nu, value, dval, status, nit = _newton_multiplier(flat, pi_init, div, lam, maxiter)
        used = "newton"
    return SolveResult(
        pi=pi.reshape(scores.shape),
        mu=mu.reshape(batch_shape),
        nu=nu.reshape(batch_shape),
        value=value.reshape(batch_shape),
        divergence=dval.reshape(batch_shape),
        status=status.reshape(batch_shape),
        nit=nit,
        method=used,
    )


def _weighted_ratios(gaps: Array, z: Array, q: Array, div: Divergence) -> tuple[Array, Array]:
    """``pi_init * t`` and ``pi_init * dt/dy`` at iterate ``z`` (eq. OPT; ``t = 0`` below ``g'(0+)``).

    Without a pole ``z = nu`` and ``y = gaps - nu``. With a pole ``z = sup g' + nu`` is the
    best outcome's distance below the pole and every outcome's distance is ``z - gaps``: a
    sum of non-negative numbers, exact to rounding however close to the pole it is; there
    ``pi_init * dt/dy`` is formed as ``(pi_init * t) * d(log t)/dy``, finite where ``dt/dy``
    alone overflows.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if div.pole_inverse is not None:
            t, dlog_t = div.pole_inverse(z[:, None] - gaps)
            qt = q * t
            return qt, qt * dlog_t
        y = gaps - z[:, None]
        active = y > div.g_prime_at_zero
        t, dt = div.g_prime_inverse(np.where(active, y, div.g_prime_at_zero + 1.0))
    if not active.all():
        t = np.where(active, t, 0.0)
        dt = np.where(active, dt, 0.0)
    return q * t, q * dt


def _start_bracket(gaps: Array, q_best: Array, div: Divergence) -> tuple[Array, Array]:
    """``[lo, hi]`` in the iterate ``z`` with ``T(lo) >= 1 >= T(hi)`` (module docstring, step 1).

    ``T(z) >= 1`` where every ratio is at least 1 (``y >= g'(1)`` for all outcomes) or where
    the best outcome alone has ``t = 1 / pi_init`` (mass 1); ``T <= 1`` where ``y <= g'(1)``.
    """
    if div.pole_inverse is not None:
        at_one = float(div.pole_distance(np.array(1.0)))
        lo = np.maximum(at_one + gaps.min(axis=-1), div.pole_distance(1.0 / q_best))
        return lo, np.maximum(at_one, lo)
    g1 = float(div.g_prime(np.array(1.0)))
    lo = np.maximum(gaps.min(axis=-1) - g1, -div.g_prime(1.0 / q_best))
    return lo, np.maximum(np.full_like(lo, -g1), lo)


def _newton_multiplier(
    scores: Array, q: Array, div: Divergence, lam: float, maxiter: int
) -> tuple[Array, Array, Array, Array, Array, Array, int]:
    # The iteration runs on the scaled multiplier nu = (mu - s_max) / lambda (shifted to the
    # pole, see _ratios) and the gaps (s - s_max) / lambda, so that the multiplier is resolved
    # to the rounding of nu, not of mu: at lambda = 1e-6 one ulp of mu moves every y by 1e-9.
    s_max = scores.max(axis=-1)
    gaps = (scores - s_max[:, None]) / lam
    lo, hi = _start_bracket(gaps, q[scores.argmax(axis=-1)], div)
    pole = div.pole_inverse is not None
    z = lo.copy()
    live = np.ones(scores.shape[0], dtype=bool)
    status = np.full(scores.shape[0], MAXITER)
    nit = 0
    while nit < maxiter:
        qt, q_dt = _weighted_ratios(gaps, z, q, div)
        nit += 1
        # Row sums, not BLAS gemv: their summation order does not depend on the batch size,
        # so a batch and its rows solved one at a time agree bitwise.
        mass = qt.sum(axis=-1)
        slope = q_dt.sum(axis=-1)  # -dT/dz
        error = np.abs(mass - 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.log(mass) * mass / slope if div.log_convex_inverse else (mass - 1.0) / slope
        lo = np.where(live & (mass >= 1.0), z, lo)
        hi = np.where(live & (mass < 1.0), z, hi)
        candidate = z + step
        outside = ~((candidate >= lo) & (candidate <= hi)) | ~np.isfinite(candidate)
        # Geometric bisection where the bracket is positive (distances below a pole span
        # hundreds of orders of magnitude), arithmetic otherwise.
        middle = np.where(lo > 0, np.sqrt(np.abs(lo * hi)), 0.5 * (lo + hi))
        candidate = np.where(outside, middle, candidate)
        scale = np.abs(z) if pole else np.maximum(np.abs(z), 1.0)
        stalled = np.abs(candidate - z) <= 2.0 * _EPS * scale
        converged = live & ((error <= 4.0 * _EPS) | (stalled & (error <= _STALL_TOL)))
        status[converged] = CONVERGED
        status[live & stalled & ~converged] = STALLED
        live &= ~(converged | stalled)
        if not live.any():
            break
        z = np.where(live, candidate, z)
    pi = qt / mass[:, None]
    dval = div.value(pi, q, lam)
    value = np.einsum("bm,bm->b", pi, scores) - dval
    nu = z - div.g_prime_sup if pole else z
    return pi, s_max + lam * nu, nu, value, dval, status, nit


def kkt_residual(
    result: SolveResult, scores: Array, pi_init: Array, divergence: str | Divergence, lam: float
) -> Array:
    r"""Relative violation of the KKT conditions (appendix B, eq. OPT) of a solution.

    With ``y(x) = (s(x) - mu) / lambda = (s(x) - s_max) / lambda - nu``, returns per problem
    of the batch the largest of

    * ``|sum pi - 1|`` and ``max(0, -min pi)`` (primal feasibility);
    * ``dist(y(x), ∂g(pi(x) / pi_init(x))) / max(1, |y(x)|)`` over outcomes: stationarity
      where ``pi > 0`` and dual feasibility ``y <= g'(0+)`` where ``pi = 0``.

    Outcomes whose probability underflowed (``pi`` below the smallest normal float while
    ``g'(0+) = -inf``, so the exact value is positive) are not checked for stationarity:
    their ratio carries no significant digits.
    """
    div = get_divergence(divergence)
    pi = np.atleast_2d(result.pi)
    scores = np.atleast_2d(scores)
    nu = np.atleast_1d(result.nu)
    y = (scores - scores.max(axis=-1, keepdims=True)) / lam - nu[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lo, hi = div.subgradient(pi / pi_init)
        gap = np.maximum(lo - y, 0.0) + np.maximum(y - hi, 0.0)
    underflow = (pi < np.finfo(float).tiny) & np.isinf(div.g_prime_at_zero)
    gap = np.where(underflow, 0.0, np.nan_to_num(gap, nan=np.inf))
    stationarity = (gap / np.maximum(1.0, np.abs(y))).max(axis=-1)
    primal = np.maximum(np.abs(pi.sum(axis=-1) - 1.0), np.maximum(0.0, -pi.min(axis=-1)))
    return np.maximum(stationarity, primal)
