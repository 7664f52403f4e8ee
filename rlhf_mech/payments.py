r"""Payment rules: none, and the affine-maximizer payment of eq. (1).

``p_i = ASW_{-i}(psi(rm_{-i}, w_{-i})) - ASW_{-i}(psi(rm, w))`` where
``ASW_{-i}(pi) = sum_{j != i} w_j <pi, rm_j> - D_f(pi || pi_init)``, all on the *reports*.
The first term is the optimal value of the SW-Max problem without group ``i`` (one
leave-one-out solve per group); the second is ``value(psi(rm, w)) - w_i <pi*, rm_i>``.
By Proposition 4.4 the mechanism ``(psi, p^AFF)`` is DSIC and IR and ``p_i >= 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlhf_mech._numerics import rows_per_chunk, tile_shape
from rlhf_mech.divergences import Divergence, get_divergence
from rlhf_mech.solver import SolveResult, _validate, optimal_values, solve_sw_max

Array = np.ndarray
_TINY = np.finfo(float).tiny
_EPS = np.finfo(float).eps

#: The payment rules a game may name.
PAYMENT_RULES: tuple[str, ...] = ("none", "affine_maximizer")


@dataclass(frozen=True)
class PaymentResult:
    """Payments of one profile of reports.

    Attributes
    ----------
    payments : (n,) array, ``p_i``.
    leave_one_out_values : (n,) array, ``max_pi ASW_{-i}(pi)`` (zeros for rule ``none``).
    rule : the payment rule.
    """

    payments: Array
    leave_one_out_values: Array
    rule: str


def check_payment_rule(rule: str) -> str:
    """Return ``rule`` if it is one of :data:`PAYMENT_RULES`, else raise ``ValueError``."""
    if rule not in PAYMENT_RULES:
        raise ValueError(f"unknown payment rule {rule!r}; expected one of {', '.join(PAYMENT_RULES)}")
    return rule


def _scores(rewards: Array, weights: Array, score_offset: Array | None) -> Array:
    scores = weights @ rewards
    return scores if score_offset is None else scores + score_offset


def leave_one_out_values(
    rewards: Array,
    weights: Array,
    pi_init: Array,
    divergence: str | Divergence,
    lam: float,
    scores: Array | None = None,
    score_offset: Array | None = None,
    *,
    solution: SolveResult | None = None,
) -> Array:
    """Optimal SW-Max values with each group left out in turn: ``max_pi ASW_{-i}(pi)``.

    Parameters
    ----------
    rewards : (n, m) array of reported rewards; weights : (n,) reported sizes.
    scores : (m,) array ``weights @ rewards + score_offset`` when the caller has it already.
    score_offset : (m,) array added to every problem's scores, for the part of the objective
        that belongs to no group (``-lambda * cost`` in candidate games); ``None`` for 0.
    solution : the SW-Max solution for those scores, when the caller has it already (KL uses
        it; see Notes).

    Returns
    -------
    (n,) array.

    Notes
    -----
    The n problems are solved as batches of rows ``s - w_i rm_i``; a batch holds at most
    :data:`~rlhf_mech._numerics.CHUNK_ELEMENTS` values, so memory stays bounded at any n x m,
    and only optimal values are formed (no ``pi``). For KL (a divergence with
    ``gibbs_form``) the values are instead read off the full problem's maximiser ``pi``,
    ``V_{-i} = V + lambda log E_pi exp(-w_i rm_i / lambda)``, in one pass over the rewards
    (see :func:`affine_maximizer_payments`).
    """
    args = (rewards, weights, pi_init, divergence, lam, scores, score_offset, solution)
    return _leave_one_out(*args, want_payments=False)[0]


def affine_maximizer_payments(
    rewards: Array,
    weights: Array,
    pi_init: Array,
    divergence: str | Divergence,
    lam: float,
    solution: SolveResult | None = None,
    score_offset: Array | None = None,
) -> PaymentResult:
    r"""The affine-maximizer payment rule ``p^AFF`` (eq. 1), evaluated on the reports.

    Parameters
    ----------
    rewards : (n, m) array, reported reward models; weights : (n,) reported sizes.
    pi_init : (m,) array; divergence, lam : the regulariser.
    solution : the SW-Max solution for ``weights @ rewards + score_offset`` if computed.
    score_offset : see :func:`leave_one_out_values`.

    Returns
    -------
    PaymentResult

    Notes
    -----
    ``p_i = V_{-i} - (V - w_i <pi*, rm_i>)`` with ``V`` the optimal value of the full problem
    and ``V_{-i}`` that of the leave-one-out problem. Proposition 4.4: DSIC, IR, ``p_i >= 0``
    (up to rounding: a computed payment may be -1e-16, it is reported as computed).

    For KL the leave-one-out maximiser is ``pi*`` tilted by ``exp(-w_i rm_i / lambda)``, so
    (Donsker-Varadhan) ``V_{-i} - V = lambda log E_{pi*} exp(-w_i rm_i / lambda)`` and

        p_i = lambda log E_{pi*} exp(-w_i (rm_i - c_i) / lambda),   c_i = <pi*, rm_i>,

    a centred cumulant that is >= 0 by Jensen. All n payments then cost one pass over the
    rewards with one exponential per entry and no leave-one-out solve. The pass evaluates
    ``lambda log E exp(-w_i rm_i / lambda) + w_i c_i``; where that may have lost digits (a
    payment small next to lambda, when lambda is also large next to ``|V|``), the centred
    form is evaluated with ``expm1``. Rows where the exponentials would overflow, or where
    outcomes that ``pi*`` rounds to zero could matter, are solved directly instead.
    """
    rewards = np.asarray(rewards, dtype=float)
    weights = np.asarray(weights, dtype=float)
    scores = None
    if solution is None:
        scores = _scores(rewards, weights, score_offset)
        solution = solve_sw_max(scores, pi_init, divergence, lam)
    loo, payments = _leave_one_out(rewards, weights, pi_init, divergence, lam, scores, score_offset, solution)
    return PaymentResult(payments=payments, leave_one_out_values=loo, rule="affine_maximizer")


def _leave_one_out(
    rewards: Array,
    weights: Array,
    pi_init: Array,
    divergence: str | Divergence,
    lam: float,
    scores: Array | None,
    score_offset: Array | None,
    solution: SolveResult | None,
    want_payments: bool = True,
) -> tuple[Array, Array | None]:
    """``(V_{-i}, p_i)`` for every group; ``scores`` and ``solution`` are formed when needed."""
    rewards = np.asarray(rewards, dtype=float)
    weights = np.asarray(weights, dtype=float)
    pi_init = np.asarray(pi_init, dtype=float)
    div = get_divergence(divergence)
    n = rewards.shape[0]
    loo = np.empty(n)
    payments = np.empty(n) if want_payments else None
    todo = np.arange(n)
    if div.gibbs_form or want_payments:
        if solution is None:
            scores = _scores(rewards, weights, score_offset) if scores is None else scores
            solution = solve_sw_max(scores, pi_init, div, lam)
        value = float(solution.value)
    if div.gibbs_form:
        loo, gibbs_payments, ok = _gibbs_leave_one_out(rewards, weights, solution.pi, value, lam)
        payments = gibbs_payments if want_payments else None
        todo = np.flatnonzero(~ok)
        if todo.size == 0:
            return loo, payments
    if scores is None:
        scores = _scores(rewards, weights, score_offset)
    scores, pi_init = _validate(scores, pi_init, lam)
    loo[todo] = _direct_leave_one_out(rewards, weights, scores, pi_init, div, lam, todo)
    if payments is not None:
        # p_i = V_{-i} - (V - w_i <pi*, rm_i>)
        others = value - weights[todo] * (rewards @ solution.pi)[todo]
        payments[todo] = loo[todo] - others
    return loo, payments


def _direct_leave_one_out(
    rewards: Array, weights: Array, scores: Array, pi_init: Array, div: Divergence, lam: float, rows: Array
) -> Array:
    """Optimal values of the rows ``s - w_i rm_i``, ``i`` in ``rows``, in bounded chunks."""
    m = rewards.shape[1]
    values = np.empty(rows.size)
    step = rows_per_chunk(m)
    buf = np.empty((min(step, rows.size), m))
    for k in range(0, rows.size, step):
        idx = rows[k : k + step]
        block = slice(int(idx[0]), int(idx[-1]) + 1) if int(idx[-1]) - int(idx[0]) + 1 == idx.size else idx
        out = buf[: idx.size]
        np.multiply(weights[block, None], rewards[block], out=out)
        np.subtract(scores, out, out=out)
        values[k : k + idx.size] = optimal_values(out, pi_init, div, lam)[0]
    return values


#: Where the centred payment ``p_i`` is below ``lambda`` times this (and lambda exceeds the
#: scale of the values), it is re-evaluated from ``expm1`` of the centred exponents.
_SMALL_PAYMENT = 0.125


def _gibbs_leave_one_out(
    rewards: Array, weights: Array, pi: Array, value: float, lam: float
) -> tuple[Array, Array, Array]:
    """``(V_{-i}, p_i, ok)`` for a Gibbs-form (KL) maximiser ``pi`` with optimal value ``value``.

    Pass 1, over tiles of the rewards: ``c_i = E_pi rm_i`` and
    ``T_i = E_pi exp(k_i rm_i)``, ``k_i = -w_i / lambda``; then ``V_{-i} = V + lambda log T_i``
    and ``p_i = lambda log T_i + w_i c_i``. Pass 2, for the rows where that sum may have lost
    digits or fell outside the normal range: ``p_i = lambda log1p(E_pi expm1(k_i (rm_i - c_i)))``
    (the argument is >= 0 by Jensen, so nothing cancels in ``log1p``). ``ok`` is False where
    neither pass is exact (overflow, or probability lost to underflow in ``pi`` that the
    exponentials could scale back up); those rows must be solved directly.
    """
    m = rewards.shape[1]
    total = float(pi.sum())
    k = -weights / lam
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        means, sums = _tilted_sums(rewards, k, pi)
        means /= total
        log_tilt = np.log(sums / total)  # (V_{-i} - V) / lambda
        payments = lam * log_tilt + weights * means
        loo = value + lam * log_tilt
        # relative loss of the terms that underflowed (each below TINY) is at most m TINY / sums
        ok = np.isfinite(sums) & (sums >= m * _TINY / _EPS**2) & np.isfinite(means)
        underflow = bool(pi.min() < _TINY)
        if underflow:  # outcomes with pi = 0: exp(k rm) must not be able to scale them back up
            r_min, r_max = rewards.min(axis=1), rewards.max(axis=1)
            e_max = np.maximum(k * r_min, k * r_max)
            ok &= e_max - np.log(sums) <= np.log(_EPS**2 / (m * _TINY))
        again = ~ok | ((payments < _SMALL_PAYMENT * lam) & (lam > np.abs(value) + np.abs(weights * means)))
        again &= np.isfinite(means)
        rows2 = np.flatnonzero(again)
        if rows2.size:
            x = _centred_expm1(rewards, k, means, pi, rows2)
            x /= total
            ok2 = np.isfinite(x) & (x > -1.0)
            if underflow:
                k2, c2 = k[rows2], means[rows2]
                e_max2 = np.maximum(k2 * (r_min[rows2] - c2), k2 * (r_max[rows2] - c2))
                ok2 &= e_max2 <= np.log(_EPS**2 / (m * _TINY))
            use = rows2[ok2]
            payments[use] = lam * np.log1p(x[ok2])
            loo[use] = value + payments[use] - weights[use] * means[use]
            ok[use] = True
            ok[rows2[~ok2]] = False
    return loo, payments, ok


def _tilted_sums(rewards: Array, k: Array, pi: Array) -> tuple[Array, Array]:
    """``(rewards @ pi, exp(k[:, None] * rewards) @ pi)`` in one pass over ``rewards``.

    Tiles of at most :data:`~rlhf_mech._numerics.TILE_ELEMENTS` values: each is read
    from memory once, and its exponentials stay in cache for the product that follows.
    """
    n, m = rewards.shape
    rb, cb = tile_shape(m)
    means = np.zeros(n)
    sums = np.zeros(n)
    if rb == 1:  # long rows: 1-D tiles, accumulated in order (the common, hot case)
        pi_tiles = [pi[c0 : c0 + cb] for c0 in range(0, m, cb)]
        buf = np.empty(cb)
        outs = [buf[: p.size] for p in pi_tiles]
        for i in range(n):
            row, k_i = rewards[i], k[i]
            mean = total = 0.0
            for c0, p, out in zip(range(0, m, cb), pi_tiles, outs, strict=True):
                block = row[c0 : c0 + cb]
                mean += np.dot(block, p)
                np.multiply(block, k_i, out=out)
                total += np.dot(np.exp(out, out=out), p)
            means[i] = mean
            sums[i] = total
        return means, sums
    buf = np.empty((rb, m))
    for r0 in range(0, n, rb):
        rows = slice(r0, min(n, r0 + rb))
        block = rewards[rows]
        out = buf[: block.shape[0]]
        means[rows] = block @ pi
        np.multiply(block, k[rows, None], out=out)
        sums[rows] = np.exp(out, out=out) @ pi
    return means, sums


def _centred_expm1(rewards: Array, k: Array, means: Array, pi: Array, rows: Array) -> Array:
    """``sum_x pi_x expm1(k_i (rm_i(x) - c_i))`` for ``i`` in ``rows``."""
    m = rewards.shape[1]
    rb, cb = tile_shape(m)
    x = np.zeros(rows.size)
    for j in range(0, rows.size, rb):
        idx = rows[j : j + rb]
        part = slice(j, j + idx.size)
        for c0 in range(0, m, cb):
            cols = slice(c0, min(m, c0 + cb))
            y = rewards[idx, cols] - means[idx, None]
            y *= k[idx, None]
            np.expm1(y, out=y)
            x[part] += y @ pi[cols]
    return x


def compute_payments(
    rule: str,
    rewards: Array,
    weights: Array,
    pi_init: Array,
    divergence: str | Divergence,
    lam: float,
    solution: SolveResult | None = None,
    score_offset: Array | None = None,
) -> PaymentResult:
    """Payments under ``rule`` (one of :data:`PAYMENT_RULES`) for one profile of reports."""
    if check_payment_rule(rule) == "none":
        zeros = np.zeros(np.shape(weights)[0])
        return PaymentResult(payments=zeros, leave_one_out_values=zeros, rule="none")
    return affine_maximizer_payments(rewards, weights, pi_init, divergence, lam, solution, score_offset)
