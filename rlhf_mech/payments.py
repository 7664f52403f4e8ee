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

from rlhf_mech._numerics import rows_per_chunk
from rlhf_mech.divergences import Divergence
from rlhf_mech.solver import SolveResult, solve_sw_max

Array = np.ndarray

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
) -> Array:
    """Optimal SW-Max values with each group left out in turn: ``max_pi ASW_{-i}(pi)``.

    Parameters
    ----------
    rewards : (n, m) array of reported rewards; weights : (n,) reported sizes.
    scores : (m,) array ``weights @ rewards + score_offset`` when the caller has it already.
    score_offset : (m,) array added to every problem's scores, for the part of the objective
        that belongs to no group (``-lambda * cost`` in candidate games); ``None`` for 0.

    Returns
    -------
    (n,) array.

    Notes
    -----
    The n problems are solved as batches of rows ``s - w_i rm_i``; a batch holds at most
    :data:`~rlhf_mech._numerics.CHUNK_ELEMENTS` values, so memory stays bounded at any n x m.
    """
    rewards = np.asarray(rewards, dtype=float)
    weights = np.asarray(weights, dtype=float)
    if scores is None:
        scores = _scores(rewards, weights, score_offset)
    n, m = rewards.shape
    values = np.empty(n)
    step = rows_per_chunk(m)
    for start in range(0, n, step):
        block = slice(start, min(n, start + step))
        rows = scores - weights[block, None] * rewards[block]
        values[block] = solve_sw_max(rows, pi_init, divergence, lam).value
    return values


def affine_maximizer_payments(
    rewards: Array,
    weights: Array,
    pi_init: Array,
    divergence: str | Divergence,
    lam: float,
    solution: SolveResult | None = None,
    score_offset: Array | None = None,
) -> PaymentResult:
    """The affine-maximizer payment rule ``p^AFF`` (eq. 1), evaluated on the reports.

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
    """
    rewards = np.asarray(rewards, dtype=float)
    weights = np.asarray(weights, dtype=float)
    scores = _scores(rewards, weights, score_offset)
    if solution is None:
        solution = solve_sw_max(scores, pi_init, divergence, lam)
    loo = leave_one_out_values(rewards, weights, pi_init, divergence, lam, scores=scores)
    others_at_optimum = solution.value - weights * (rewards @ solution.pi)
    return PaymentResult(payments=loo - others_at_optimum, leave_one_out_values=loo, rule="affine_maximizer")


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
