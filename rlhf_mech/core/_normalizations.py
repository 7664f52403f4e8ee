"""The reward normalisations of section 2, as one enumeration.

Section 2 normalises every reward model to ``rm >= 0`` and either ``sum_x rm(x) = 1`` or
``max_x rm(x) = 1``. Candidate-model games (section 5) take measured mean rewards as they
are: normalisation ``none``. Every module that needs to know what a normalisation means asks
its member (:meth:`Normalization.total`, :meth:`Normalization.violation`, ...); none of them
tests a name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

Array = np.ndarray

#: Tolerance of "sums to 1" / "max is 1" (probabilities and reward normalisation), everywhere.
NORMALIZATION_TOL = 1e-9


@dataclass(frozen=True)
class _Meaning:
    """What one normalisation means (the record behind a :class:`Normalization` member).

    Attributes
    ----------
    total : ``rm -> sum rm`` or ``max rm`` along the last axis; ``None`` where nothing is
        normalised.
    phrase : how an error message states the total (``"rewards sum to"``).
    linear_total : whether the total is linear in the reward (``sum``): mixtures of normalised
        rewards stay normalised, and a report keeps its total by moving reward between
        outcomes (the polarising report of Theorem 4.2 lowers the least and raises the most
        preferred outcome); under ``max`` a mixture's maximum drifts and polarising only lowers.
    description : the constraint in words, for help texts and the JSON Schema.
    repair : what a misreport family does to a row that left the domain, in words.
    """

    total: Callable[[Array], Array] | None
    phrase: str
    linear_total: bool
    description: str
    repair: str


def _sum(rewards: Array) -> Array:
    return np.sum(rewards, axis=-1)


def _max(rewards: Array) -> Array:
    return np.max(rewards, axis=-1)


class Normalization(StrEnum):
    """A reward normalisation of section 2 (``sum``, ``max``) or ``none`` (measured scores)."""

    SUM = "sum"
    MAX = "max"
    NONE = "none"

    @property
    def _meaning(self) -> _Meaning:
        return _MEANINGS[self]

    @property
    def normalised(self) -> bool:
        """Whether rewards must satisfy a total (``sum``, ``max``); ``none`` constrains nothing."""
        return self._meaning.total is not None

    @property
    def linear_total(self) -> bool:
        """Whether the total is linear in the reward (see :class:`_Meaning`; ``sum``: True)."""
        return self._meaning.linear_total

    @property
    def description(self) -> str:
        return self._meaning.description

    @property
    def repair(self) -> str:
        """How a report that left the domain is brought back (see :class:`_Meaning`)."""
        return self._meaning.repair

    def total(self, rewards: Array) -> Array:
        """``sum rm`` or ``max rm`` along the last axis.

        Raises
        ------
        ValueError
            for ``none``, which has no total.
        """
        if self._meaning.total is None:
            raise ValueError(f"normalization {self.value!r} has no total")
        return self._meaning.total(np.asarray(rewards, dtype=float))

    def normalise(self, rewards: Array) -> Array:
        """Rows divided by their total (``none``: returned unchanged)."""
        if not self.normalised:
            return rewards
        return rewards / self.total(rewards)[..., None]

    def violation(
        self, reward: Array, outcomes: Sequence[str] | None = None, tol: float = NORMALIZATION_TOL
    ) -> str | None:
        """Why a reward vector is not in the domain R of section 2, or ``None`` if it is.

        ``rm >= 0`` always (also for ``none``: IR, Proposition 4.4, relies on it) and the total
        within ``tol`` of 1. ``outcomes`` names the entries in the message.
        """
        reward = np.asarray(reward, dtype=float)
        negative = np.flatnonzero(reward < 0)
        if negative.size:
            j = int(negative[0])
            where = repr(outcomes[j]) if outcomes is not None else f"outcome {j}"
            return f"reward of {where} is {float(reward[j])!r}; rewards must be >= 0"
        if not self.normalised:
            return None
        total = float(self.total(reward))
        if abs(total - 1.0) > tol:
            bound = f"{tol:g}".replace("e-0", "e-")
            return f"{self._meaning.phrase} {total!r}; normalization {self.value!r} needs 1 (±{bound})"
        return None


_MEANINGS: dict[Normalization, _Meaning] = {
    Normalization.SUM: _Meaning(
        _sum,
        "rewards sum to",
        True,
        "rm >= 0 and sum_x rm(x) = 1",
        "had negative entries: clipped to 0 and renormalised to sum 1",
    ),
    Normalization.MAX: _Meaning(
        _max,
        "largest reward is",
        False,
        "rm >= 0 and max_x rm(x) = 1",
        "had negative entries or a maximum off 1: clipped to 0 and rescaled to max 1",
    ),
    Normalization.NONE: _Meaning(
        None, "", False, "measured scores, taken as given", "had negative entries: clipped to 0"
    ),
}

#: The normalisations a core game file may declare (``none`` is for candidate-model games).
FILE_NORMALIZATIONS: tuple[Normalization, ...] = (Normalization.SUM, Normalization.MAX)


class Scale(StrEnum):
    """How a candidate-model game puts its measured scores on a common scale (section 5)."""

    MINMAX = "minmax"
    NONE = "none"

    @property
    def description(self) -> str:
        return _SCALE_MEANINGS[self].description

    @property
    def needs_non_negative(self) -> bool:
        """Whether the scores are used as given, so they must already be ``>= 0``."""
        return _SCALE_MEANINGS[self].needs_non_negative

    def apply(self, scores: Array) -> tuple[Array, Array]:
        """``(m, k)`` raw scores on this scale: ``(scaled, constant columns)`` as
        :func:`minmax_scale` returns them."""
        return _SCALE_MEANINGS[self].scale(scores)


def minmax_scale(scores: Array) -> tuple[Array, Array]:
    """Rescale each column (base reward model) to [0, 1] across the candidates (section 5).

    Parameters
    ----------
    scores : (m, k) array of mean rewards.

    Returns
    -------
    scaled : (m, k) array, ``(s - min) / (max - min)`` per column; a column that is the same
        for every candidate carries no preference between them and is set to 0.
    constant : (k,) bool array, which columns were constant.
    """
    scores = np.asarray(scores, dtype=float)
    lo, hi = scores.min(axis=0), scores.max(axis=0)
    span = hi - lo
    constant = span == 0
    scaled = np.where(constant, 0.0, (scores - lo) / np.where(constant, 1.0, span))
    # The extremes are exactly 0 and 1, whatever the rounding of the division.
    scaled = np.where(scores == hi, 1.0, scaled)
    scaled = np.where(scores == lo, 0.0, scaled)
    return scaled, constant


def _as_given(scores: Array) -> tuple[Array, Array]:
    return np.array(scores, dtype=float), np.zeros(np.shape(scores)[1], dtype=bool)


@dataclass(frozen=True)
class _ScaleMeaning:
    """What one :class:`Scale` member means: its words, its map and what it asks of scores."""

    description: str
    scale: Callable[[Array], tuple[Array, Array]]
    needs_non_negative: bool


_SCALE_MEANINGS: dict[Scale, _ScaleMeaning] = {
    Scale.MINMAX: _ScaleMeaning(
        "each reward model rescaled to [0, 1] across the candidates (section 5)", minmax_scale, False
    ),
    Scale.NONE: _ScaleMeaning("the scores as given (they must be >= 0)", _as_given, True),
}
