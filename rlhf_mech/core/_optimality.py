r"""What an SW-Max solution says beyond itself (Definition 4.1, appendix B eq. OPT).

The KKT residual that certifies a solution, the Jacobian of ``pi*`` in the scores (implicit
differentiation of eq. OPT, used by the report search's gradients and the fair duals), and
how far an outcome outside the support is from entering it. Each takes a
:class:`~rlhf_mech.core._solver.SolveResult` of :func:`~rlhf_mech.core._solver.solve_sw_max`.
"""

from __future__ import annotations

import numpy as np

from rlhf_mech.core._divergences import Divergence, get_divergence
from rlhf_mech.core._numerics import row_dot
from rlhf_mech.core._solver import SolveResult, _weighted_ratios, initial_rows

Array = np.ndarray


def kkt_residual(
    result: SolveResult, scores: Array, pi_init: Array, divergence: str | Divergence, lam: float
) -> Array:
    r"""Relative violation of the KKT conditions (appendix B, eq. OPT) of a solution.

    With ``y(x) = (s(x) - mu) / lambda = (s(x) - s_max) / lambda - nu`` (measured from
    ``result.reference`` with ``nu_reference`` where the solver measured from there), returns per problem
    of the batch the largest of

    * ``|sum pi - 1|`` and ``max(0, -min pi)`` (primal feasibility);
    * ``dist(y(x), ∂g(pi(x) / pi_init(x))) / max(1, |y(x)|)`` over outcomes: stationarity
      where ``pi > 0`` and dual feasibility ``y <= g'(0+)`` where ``pi = 0``.

    Outcomes whose probability underflowed (``pi`` below the smallest normal float while
    ``g'(0+) = -inf``, so the exact value is positive) are not checked for stationarity:
    their ratio carries no significant digits.
    """
    div = get_divergence(divergence)
    m = np.shape(scores)[-1]
    pi = np.reshape(result.pi, (-1, m))
    pi_init = initial_rows(pi_init, np.shape(result.pi))
    scores = np.reshape(scores, (-1, m))
    if result.reference is None:
        origin, nu = scores.max(axis=-1), np.reshape(result.nu, -1)
    else:
        origin, nu = np.reshape(result.reference, -1), np.reshape(result.nu_reference, -1)
    y = (scores - origin[:, None]) / lam - nu[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lo, hi = div.subgradient(pi / pi_init)
        gap = np.maximum(lo - y, 0.0) + np.maximum(y - hi, 0.0)
    underflow = (pi < np.finfo(float).tiny) & np.isinf(div.g_prime_at_zero)
    gap = np.where(underflow, 0.0, np.nan_to_num(gap, nan=np.inf))
    stationarity = (gap / np.maximum(1.0, np.abs(y))).max(axis=-1)
    primal = np.maximum(np.abs(pi.sum(axis=-1) - 1.0), np.maximum(0.0, -pi.min(axis=-1)))
    return np.maximum(stationarity, primal)


def sensitivity(
    result: SolveResult,
    scores: Array,
    pi_init: Array,
    divergence: str | Divergence,
    lam: float,
    cotangent: Array,
) -> Array:
    r"""``d <cotangent, pi*(s)> / ds``: how the SW-Max solution moves with its scores.

    Implicit differentiation of eq. (OPT): ``pi(x) = pi_init(x) t((s(x) - mu) / lambda)`` with
    ``mu(s)`` fixed by ``sum pi = 1`` gives the symmetric Jacobian
    ``d pi / d s = diag(a) - a a^T / sum(a)``, ``a = pi_init t'(y) / lambda`` (0 where
    ``pi = 0``: chi^2's inactive outcomes), so the vector-Jacobian product is
    ``a * (g - <a, g> / sum(a))``. Adding a constant to ``g`` or to ``s`` changes nothing.

    Parameters
    ----------
    result : :func:`solve_sw_max`'s result for ``scores`` ((..., m) batches).
    scores, pi_init, divergence, lam : the problem that was solved.
    cotangent : (..., m) array ``g``.

    Returns
    -------
    (..., m) array.

    Raises
    ------
    ValueError
        for a divergence whose ``g'`` has no inverse (TV, the argmax rule): the solution is
        piecewise constant in ``s`` and the derivative is 0 or undefined.
    """
    scores = np.asarray(scores, dtype=float)
    shape = scores.shape
    a = jacobian_weights(result, scores, pi_init, divergence, lam).reshape(-1, shape[-1])
    g = np.asarray(cotangent, dtype=float).reshape(a.shape)
    # a row whose weights all underflow (a point mass at lambda ~ 1e-6) does not move: 0, not 0/0
    total = a.sum(axis=-1, keepdims=True)
    centred = g - row_dot(a, g)[:, None] / np.where(total > 0, total, 1.0)
    return (a * centred).reshape(shape)


def jacobian_weights(
    result: SolveResult, scores: Array, pi_init: Array, divergence: str | Divergence, lam: float
) -> Array:
    r"""``a = pi_init t'(y) / lambda``: the SW-Max Jacobian ``d pi / d s = diag(a) - a a^T / sum(a)``
    (see :func:`sensitivity`), 0 where ``pi = 0``; (..., m) like ``scores``.

    Raises
    ------
    ValueError
        for a divergence whose ``g'`` has no inverse (the solution is not differentiable).
    """
    div = get_divergence(divergence)
    if div.g_prime_inverse is None:
        raise ValueError(f"divergence {div.name!r} has no inverse of g': the solution is not differentiable")
    scores = np.asarray(scores, dtype=float)
    flat = scores.reshape(-1, scores.shape[-1])
    gaps = (flat - flat.max(axis=-1, keepdims=True)) / lam
    nu = np.asarray(result.nu, dtype=float).reshape(-1)
    z = nu + div.g_prime_sup if div.pole_inverse is not None else nu
    _, q_dt, _ = _weighted_ratios(gaps, z, initial_rows(pi_init, scores.shape), div)
    return (np.where(np.isfinite(q_dt), q_dt, 0.0) / lam).reshape(scores.shape)


def support_gaps(result: SolveResult, scores: Array, divergence: str | Divergence, lam: float) -> Array:
    r"""How far each outcome's score must rise, the others fixed, for it to enter the support.

    By eq. (OPT) an outcome carries probability only where ``(s(x) - mu) / lambda > g'(0+)``;
    while it carries none, ``mu`` does not depend on its score, so the rise that brings it in
    is exactly ``max(0, mu + lambda g'(0+) - s(x))``, written in the frame of ``nu`` as
    ``lambda * max(0, nu + g'(0+) - (s(x) - max s) / lambda)``. 0 on the support, and for
    every outcome where ``g'(0+) = -inf`` (KL, Hellinger, ...: full support).

    Parameters
    ----------
    result : :func:`solve_sw_max`'s result for ``scores`` ((..., m) batches).
    scores, divergence, lam : the problem that was solved.

    Returns
    -------
    (..., m) array of score rises, ``>= 0``.
    """
    div = get_divergence(divergence)
    scores = np.asarray(scores, dtype=float)
    if not np.isfinite(div.g_prime_at_zero):
        return np.zeros(scores.shape)
    nu = np.asarray(result.nu, dtype=float)[..., None]
    gaps = (scores - scores.max(axis=-1, keepdims=True)) / lam
    rise = lam * np.maximum(0.0, nu + div.g_prime_at_zero - gaps)
    return np.where(np.asarray(result.pi) > 0, 0.0, rise)
