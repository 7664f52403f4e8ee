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
============  ==========================================  =================

A report that had to be adjusted to stay in the reward domain R of section 2 (clipped at
0, renormalised, eps capped) is flagged in :attr:`Misreports.adjusted`, so that output can
say so; nothing is adjusted silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Array = np.ndarray

#: Family name -> parameter value that means truthful reporting.
TRUTHFUL_PARAMETER: dict[str, float] = {"size": 1.0, "mixing": 1.0, "polarise": 0.0}


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


def normalise(rewards: Array, normalization: str) -> Array:
    """Rescale non-negative reward rows to the normalisation of section 2 (``none``: unchanged)."""
    if normalization == "sum":
        return rewards / rewards.sum(axis=-1, keepdims=True)
    if normalization == "max":
        return rewards / rewards.max(axis=-1, keepdims=True)
    return rewards


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
    reward: Array, size: float, others: Array, betas: Array, normalization: str
) -> Misreports:
    """Strategy 2 (section 5): report ``beta rm_i + (1 - beta) rm_-i`` and the true size.

    ``beta > 1`` extrapolates away from the others' preference: negative entries are clipped
    to 0 and the row renormalised; a ``max``-normalised mix with ``beta < 1`` is also
    renormalised (its maximum can fall below 1). Both are flagged in ``adjusted``.
    """
    betas = np.asarray(betas, dtype=float)
    mixed = betas[:, None] * reward + (1.0 - betas[:, None]) * others
    clipped = np.maximum(mixed, 0.0)
    normalised = normalise(clipped, normalization)
    adjusted = np.any(normalised != mixed, axis=1)
    return Misreports(
        family="mixing",
        parameters=betas,
        rewards=normalised,
        sizes=np.full(betas.size, float(size)),
        adjusted=adjusted,
    )


def polarise_misreports(reward: Array, size: float, epsilons: Array, normalization: str) -> Misreports:
    """The report of the proof of Theorem 4.2 (appendix F, table 1).

    ``sum``: move ``d = min(eps, rm[least])`` from the least to the most preferred outcome;
    ``max``: lower the least preferred outcome by ``d`` (floor 0). Ties: the first outcome
    in file order. A constant reward (``s_i = 1``) is left unchanged. ``d < eps`` is flagged.
    """
    if normalization not in ("sum", "max"):
        raise ValueError("polarisation needs a 'sum' or 'max' normalised reward")
    epsilons = np.asarray(epsilons, dtype=float)
    reward = np.asarray(reward, dtype=float)
    most, least = int(np.argmax(reward)), int(np.argmin(reward))
    room = 0.0 if reward[most] == reward[least] else reward[least]
    moved = np.minimum(epsilons, room)
    rewards = np.repeat(reward[None, :], epsilons.size, axis=0)
    rewards[:, least] -= moved
    if normalization == "sum":
        rewards[:, most] += moved
    return Misreports(
        family="polarise",
        parameters=epsilons,
        rewards=rewards,
        sizes=np.full(epsilons.size, float(size)),
        adjusted=moved < epsilons,
    )
