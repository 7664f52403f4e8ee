"""The game: what the platform knows and what the groups report (section 3).

A :class:`Game` is plain numpy arrays in a frozen dataclass; it is built by
:func:`rlhf_mech.spec.load_game` from a file or directly from arrays in a notebook.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rlhf_mech.divergences import get_divergence
from rlhf_mech.payments import check_payment_rule

Array = np.ndarray

#: ``none`` is for candidate-model games, whose rewards are measured scores.
NORMALIZATIONS: tuple[str, ...] = ("sum", "max", "none")


@dataclass(frozen=True)
class Expectations:
    """A game file's ``expect:`` block, checked by ``rlhf-mech audit``.

    Attributes
    ----------
    profile : ``"truthful"`` or ``"reported"``: the profile the value ranges refer to.
    dsic, ir, nonnegative_payments, profitable_without_payment : required verdicts
        (``None``: not checked).
    ranges : quantity -> {group name -> (lo, hi)}; game-level quantities (``social_welfare``,
        ``asw``) use the group name ``""``.
    line : line of ``expect:`` in the file, for messages.
    """

    profile: str = "truthful"
    dsic: bool | None = None
    ir: bool | None = None
    nonnegative_payments: bool | None = None
    profitable_without_payment: bool | None = None
    ranges: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    line: int | None = None


@dataclass(frozen=True)
class Game:
    """An RLHF game (section 3) with its true types and the reports.

    Attributes
    ----------
    name : a label for output.
    outcomes : (m,) outcome names.
    pi_init : (m,) array, the initial model's distribution (positive, sums to 1).
    normalization : ``"sum"`` (sum rm = 1) or ``"max"`` (max rm = 1), section 2; ``"none"``
        for candidate-model games.
    divergence : divergence name; lam : its strength lambda.
    payment_rule : ``"none"`` or ``"affine_maximizer"``.
    group_names : (n,) names.
    rewards, sizes : (n, m) and (n,) arrays, the true reward models rm_i and sizes w_i.
    reported_rewards, reported_sizes : the reports (equal to the truth where none is given).
    max_size : the public bound on sizes (``None`` when not stated).
    outcome_costs : (m,) array or ``None``; a cost per outcome that the training rule
        subtracts as ``lambda * <pi, cost>`` (a candidate model's measured divergence from the
        initial model, section 5). It belongs to no group: it enters ASW and ASW_{-i} alike.
    notes : what was changed on loading (e.g. a renormalised pi_init), for the output.
    expect : the file's ``expect:`` block, or ``None``.
    source : the file the game was loaded from, or ``None``.
    """

    name: str
    outcomes: tuple[str, ...]
    pi_init: Array
    normalization: str
    divergence: str
    lam: float
    payment_rule: str
    group_names: tuple[str, ...]
    rewards: Array
    sizes: Array
    reported_rewards: Array
    reported_sizes: Array
    max_size: float | None = None
    outcome_costs: Array | None = None
    notes: tuple[str, ...] = field(default=())
    expect: Expectations | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        m, n = len(self.outcomes), len(self.group_names)
        get_divergence(self.divergence)
        check_payment_rule(self.payment_rule)
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"`normalization` must be one of {NORMALIZATIONS}, got {self.normalization!r}")
        if self.outcome_costs is not None and np.shape(self.outcome_costs) != (m,):
            raise ValueError(f"`outcome_costs` must have shape {(m,)}, got {np.shape(self.outcome_costs)}")
        for label, arr, shape in (
            ("pi_init", self.pi_init, (m,)),
            ("rewards", self.rewards, (n, m)),
            ("sizes", self.sizes, (n,)),
            ("reported_rewards", self.reported_rewards, (n, m)),
            ("reported_sizes", self.reported_sizes, (n,)),
        ):
            if np.shape(arr) != shape:
                raise ValueError(f"`{label}` must have shape {shape}, got {np.shape(arr)}")

    @property
    def score_offset(self) -> Array | None:
        """``-lambda * outcome_costs``: the part of the training objective owned by no group."""
        return None if self.outcome_costs is None else -self.lam * self.outcome_costs

    @property
    def n_groups(self) -> int:
        return len(self.group_names)

    @property
    def n_outcomes(self) -> int:
        return len(self.outcomes)

    @property
    def is_truthful(self) -> bool:
        """Whether every report equals the truth."""
        return bool(
            np.array_equal(self.rewards, self.reported_rewards)
            and np.array_equal(self.sizes, self.reported_sizes)
        )

    def misreporting_groups(self) -> tuple[int, ...]:
        """Indices of the groups whose report differs from their type."""
        reward_differs = np.any(self.rewards != self.reported_rewards, axis=1)
        return tuple(int(i) for i in np.flatnonzero(reward_differs | (self.sizes != self.reported_sizes)))
