"""Misreport families: the strategic reports of section 5 and of the proof of Theorem 4.2.

Each family maps a group's true type (and the others' reports) and an array of parameter
values to a batch of valid reports, so that sweeps and audits evaluate them as one array
computation. Every family contains truth at its truthful parameter:

============  ==========================================  =================
family        report                                      truthful value
============  ==========================================  =================
size          (rm_i, alpha * w_i)              Strategy 1  alpha = 1
mixing        (beta rm_i + (1 - beta) rm_-i, w_i)  Str. 2  beta = 1
polarise      +eps at argmax rm_i, -eps at argmin (Thm 4.2) eps = 0
explicit      a given (reward, size)                      parameter 0
============  ==========================================  =================

A report that had to be adjusted to stay in the reward domain R of section 2 (clipped at
0, renormalised, eps capped) is flagged in :attr:`Misreports.adjusted`, so that output can
say so; nothing is adjusted silently. The families' vocabulary (name, parameter symbol,
truthful value, title) is the registry :data:`FAMILIES`, which the sweep, its renderers and
the command line read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlhf_mech.core import Normalization
from rlhf_mech.core._internal import NORMALIZATION_TOL, by_name, rows_per_chunk

Array = np.ndarray

#: Rows are mixed in blocks of this many values (1 MiB: they stay in cache between passes).
MIX_BLOCK_ELEMENTS = 1 << 17


@dataclass(frozen=True)
class Family:
    """One misreport family of the registry.

    Attributes
    ----------
    name : ``"size"``, ``"mixing"``, ``"polarise"`` or ``"explicit"``.
    parameter : the symbol of its parameter, as the paper writes it (``alpha``, ...).
    truthful : the parameter value that means truthful reporting.
    title : what the family reports, with the paper's name for it.
    """

    name: str
    parameter: str
    truthful: float
    title: str


#: Every family, by name (the sweep's strategies; section 5 and Theorem 4.2).
FAMILIES: dict[str, Family] = by_name(
    Family("size", "alpha", 1.0, "Strategy 1: report size alpha * w_i"),
    Family("mixing", "beta", 1.0, "Strategy 2: report beta * rm_i + (1 - beta) * rm_-i"),
    Family("polarise", "epsilon", 0.0, "Theorem 4.2: polarised report (epsilon)"),
    Family("explicit", "report", 0.0, "explicit report"),
)


@dataclass(frozen=True)
class Misreports:
    """A batch of P reports of one group.

    Attributes
    ----------
    family : ``"size"``, ``"mixing"``, ``"polarise"`` or ``"explicit"``.
    parameters : (P,) the family's parameter per report.
    rewards : (P, m) reported reward models (valid for the game's normalisation).
    sizes : (P,) reported sizes (may be real-valued, e.g. alpha = 1.5 with w = 3).
    adjusted : (P,) bool, whether the report was clipped/renormalised/capped to stay valid.
    """

    family: str
    parameters: Array
    rewards: Array
    sizes: Array
    adjusted: Array


def others_reward(reported_rewards: Array, reported_sizes: Array, group: int) -> Array:
    """``rm_-i``: the size-weighted mean of the other groups' reported rewards (Strategy 2).

    For two groups this is the other group's report, as in section 5.
    """
    weights = np.asarray(reported_sizes, dtype=float).copy()
    weights[group] = 0.0
    if weights.sum() == 0:
        raise ValueError("mixing needs at least one other group")
    return weights @ reported_rewards / weights.sum()


def size_misreports(reward: Array, size: float, alphas: Array) -> Misreports:
    """Strategy 1 (section 5): report ``alpha * w_i`` and the true reward."""
    alphas = np.asarray(alphas, dtype=float)
    return Misreports(
        family="size",
        parameters=alphas,
        rewards=np.broadcast_to(reward, (alphas.size, np.size(reward))),
        sizes=alphas * size,
        adjusted=np.zeros(alphas.size, dtype=bool),
    )


def mixing_misreports(
    reward: Array, size: float, others: Array, betas: Array, normalization: Normalization
) -> Misreports:
    """Strategy 2 (section 5): report ``beta rm_i + (1 - beta) rm_-i`` and the true size.

    ``beta > 1`` (or ``beta < 0``) extrapolates past one of the two rewards: negative entries
    are clipped to 0 and the row divided by its total. A ``sum``-normalised mix that needs no
    clipping sums to 1 up to rounding and is kept as computed; a ``max``-normalised one is
    always divided by its maximum (a mix's maximum drifts below 1 for ``beta < 1``). A report
    is flagged in ``adjusted`` when it was clipped or its total was more than
    :data:`~rlhf_mech.core.NORMALIZATION_TOL` away from 1. With normalisation ``none``
    negative entries are clipped to 0 and nothing is rescaled.

    Notes
    -----
    Rows are formed in blocks of at most
    :data:`MIX_BLOCK_ELEMENTS` values (well under :data:`~rlhf_mech._numerics.CHUNK_ELEMENTS`),
    written into the output.
    """
    betas = np.asarray(betas, dtype=float).reshape(-1)
    reward = np.asarray(reward, dtype=float)
    others = np.asarray(others, dtype=float)
    rewards = np.empty((betas.size, reward.size))
    adjusted = np.zeros(betas.size, dtype=bool)
    step = rows_per_chunk(reward.size, MIX_BLOCK_ELEMENTS)
    for start in range(0, betas.size, step):
        block = slice(start, min(betas.size, start + step))
        rows = rewards[block]
        # beta rm_i + (1 - beta) rm_-i as written: at beta = 1 it is rm_i bit for bit.
        np.multiply(betas[block, None], reward, out=rows)
        rows += (1.0 - betas[block, None]) * others
        clipped = rows.min(axis=1) < 0.0
        if clipped.any():
            np.maximum(rows, 0.0, out=rows)  # leaves the rows without negative entries as they are
        if normalization.normalised:
            # A sum-normalised mix sums to 1 up to rounding and is kept as computed unless
            # clipped; a max-normalised one's maximum drifts, so every row is divided by it.
            # A rescaling within the tolerance is rounding, not an adjustment: not flagged.
            total = normalization.total(rows)
            rescale = clipped | (not normalization.linear_total)
            rows /= np.where(rescale, total, 1.0)[:, None]
            clipped |= np.abs(total - 1.0) > NORMALIZATION_TOL
        adjusted[block] = clipped
    return Misreports(
        family="mixing",
        parameters=betas,
        rewards=rewards,
        sizes=np.full(betas.size, float(size)),
        adjusted=adjusted,
    )


def polarise_rewards(rewards: Array, epsilons: Array, normalization: Normalization) -> tuple[Array, Array]:
    """The reports of the proof of Theorem 4.2 for one or many true rewards at once.

    Parameters
    ----------
    rewards : (..., m) true reward models (``sum`` or ``max`` normalised).
    epsilons : (P,) non-negative steps.
    normalization : a normalisation with a total (``sum`` or ``max``).

    Returns
    -------
    reports : (..., P, m) reported rewards.
    moved : (..., P) the step actually taken, ``min(eps, rm(least))`` (0 for a constant reward).

    Notes
    -----
    ``sum``: ``+d`` at the most and ``-d`` at the least preferred outcome (appendix F, table 1);
    ``max``: ``-d`` at the least preferred outcome only (the maximum stays 1). Ties go to the
    first outcome in file order (``argmax``/``argmin``). ``d = min(eps, rm(least))`` keeps the
    report non-negative. A constant reward (``s_i = 1``, Theorem 4.2 case 1) has no most or
    least preferred outcome and is left unchanged.
    """
    if not normalization.normalised:
        raise ValueError("polarisation needs a 'sum' or 'max' normalised reward")
    rewards = np.asarray(rewards, dtype=float)
    epsilons = np.asarray(epsilons, dtype=float).reshape(-1)
    most = np.argmax(rewards, axis=-1)[..., None]
    least = np.argmin(rewards, axis=-1)[..., None]
    top = np.take_along_axis(rewards, most, axis=-1)
    bottom = np.take_along_axis(rewards, least, axis=-1)
    room = np.where(top == bottom, 0.0, bottom)
    moved = np.minimum(epsilons, room)
    reports = np.repeat(rewards[..., None, :], epsilons.size, axis=-2)
    outcome = np.arange(rewards.shape[-1])
    lower = (outcome == least)[..., None, :]
    reports -= np.where(lower, moved[..., None], 0.0)
    if normalization.linear_total:
        raise_ = (outcome == most)[..., None, :]
        reports += np.where(raise_, moved[..., None], 0.0)
    return reports, moved


def polarise_misreports(
    reward: Array, size: float, epsilons: Array, normalization: Normalization
) -> Misreports:
    """The report of the proof of Theorem 4.2 (appendix F, table 1).

    ``sum``: move ``d = min(eps, rm[least])`` from the least to the most preferred outcome;
    ``max``: lower the least preferred outcome by ``d`` (floor 0). Ties: the first outcome
    in file order. A constant reward (``s_i = 1``) is left unchanged. ``d < eps`` is flagged.
    See :func:`polarise_rewards`.
    """
    epsilons = np.asarray(epsilons, dtype=float).reshape(-1)
    rewards, moved = polarise_rewards(reward, epsilons, normalization)
    return Misreports(
        family="polarise",
        parameters=epsilons,
        rewards=rewards,
        sizes=np.full(epsilons.size, float(size)),
        adjusted=moved < epsilons,
    )


def explicit_misreports(reward: Array, size: float, report_reward: Array, report_size: float) -> Misreports:
    """Truth (parameter 0) and one given report (parameter 1), as a two-point family.

    Parameters
    ----------
    reward, size : the group's true type.
    report_reward, report_size : the report (pass the true one for a part that is not
        misreported). Validity is the caller's concern: nothing is adjusted.
    """
    return Misreports(
        family="explicit",
        parameters=np.array([0.0, 1.0]),
        rewards=np.stack([np.asarray(reward, dtype=float), np.asarray(report_reward, dtype=float)]),
        sizes=np.array([float(size), float(report_size)]),
        adjusted=np.zeros(2, dtype=bool),
    )


def with_truth(family: str, parameters: Array) -> tuple[Array, int]:
    """Sorted distinct parameters with the family's truthful value added; and its index."""
    truthful = FAMILIES[family].truthful
    values = np.unique(np.append(np.asarray(parameters, dtype=float).reshape(-1), truthful))
    return values, int(np.searchsorted(values, truthful))
