"""The game: what the platform announces, what the groups are and what they report (section 3).

A :class:`Game` holds a :class:`~rlhf_mech.core.Mechanism`, the true :class:`~rlhf_mech.core.Profile`
and the reported one, and, where groups report preferences over base reward models rather
than reward vectors (candidate-model games, section 5), the :class:`ReportBasis` they report
in. It is built by :func:`rlhf_mech.load_game` from a file, or directly from arrays in a
notebook. :func:`solve` applies the mechanism to the truthful and the reported profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from rlhf_mech.core._mechanism import Mechanism, Profile
from rlhf_mech.core._normalizations import Normalization, Scale
from rlhf_mech.core._outcomes import ProfileOutcome, outcome
from rlhf_mech.core._payments import PaymentRule
from rlhf_mech.core._training import TrainingRule

if TYPE_CHECKING:
    from rlhf_mech.core._prompts import PromptGame

Array = np.ndarray


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
class ReportBasis:
    """The preference space groups report in: weights over ``k`` base reward models.

    In a candidate-model game (section 5) the outcomes are trained models known by their
    measured mean reward under each base reward model; a group's reward model is a
    non-negative combination of the base ones, so it reports the weights, and its valuation of
    candidate ``c`` is ``weights . scores[c]`` (Definition 3.1 with measured means).

    Attributes
    ----------
    reward_models : (k,) names of the base reward models.
    scale : how ``raw_scores`` were put on a common scale (:class:`~rlhf_mech.core.Scale`).
    raw_scores : (m, k) array, the candidates' mean rewards as measured.
    scores : (m, k) array, the scores on the scale used.
    """

    reward_models: tuple[str, ...]
    scale: Scale
    raw_scores: Array
    scores: Array

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", Scale(self.scale))
        k = len(self.reward_models)
        for label in ("raw_scores", "scores"):
            array = np.asarray(getattr(self, label), dtype=float)
            if array.ndim != 2 or array.shape[1] != k:
                raise ValueError(f"`{label}` must have shape (m, {k}), got {array.shape}")
            object.__setattr__(self, label, array)

    @property
    def dimension(self) -> int:
        """``k``, the number of base reward models."""
        return len(self.reward_models)

    def rewards(self, preferences: Array) -> Array:
        """``rm = preferences @ scores.T``: (..., k) weights -> (..., m) reward models."""
        return np.asarray(preferences, dtype=float) @ self.scores.T


@dataclass(frozen=True)
class Game:
    """An RLHF game (section 3): the mechanism, the true types and the reports.

    Attributes
    ----------
    name : a label for output.
    outcomes : (m,) outcome names.
    group_names : (n,) names.
    mechanism : the announced :class:`~rlhf_mech.core.Mechanism`.
    normalization : the reward normalisation of section 2 (:class:`~rlhf_mech.core.Normalization`);
        ``none`` for candidate-model games.
    truth : the true types ``(rm_i, w_i)``.
    reports : the reports (equal to the truth where none is given).
    report_basis : the preference space the groups report in, or ``None`` where they report
        reward vectors; with a basis both profiles carry their ``preferences``.
    max_size : the public bound on sizes (``None`` when not stated).
    notes : what was changed on loading (e.g. a renormalised pi_init), for the output.
    expect : the file's ``expect:`` block, or ``None``.
    source : the file the game was loaded from, or ``None``.
    digest : the SHA-256 of that file's bytes (hex), or ``None``.
    lines : field path -> line in ``source``, for output that points into the file: each
        group (``groups[1]``) and every entry of ``expect:`` (``expect``, ``expect.dsic``,
        ``expect.utility.alices``), the paths written as in error messages. Plain data
        filled by the file loader; empty for games built in code.
    part : which part of its file the game is, ``""`` for a whole file: ``prompt 3`` for one
        prompt's game of a game of many prompts (:class:`~rlhf_mech.core.PromptGame`).
    sample_counts : (m,) int, how often each outcome was drawn from the initial policy where
        the outcomes are samples (``pi_init = counts / N``: the game is the empirical
        mechanism, its figures plug-in estimates; docs/uncertainty.md); ``None`` for a
        population game.
    """

    name: str
    outcomes: tuple[str, ...]
    group_names: tuple[str, ...]
    mechanism: Mechanism
    normalization: Normalization
    truth: Profile
    reports: Profile
    report_basis: ReportBasis | None = None
    max_size: float | None = None
    notes: tuple[str, ...] = ()
    expect: Expectations | None = None
    source: str | None = None
    digest: str | None = None
    lines: Mapping[str, int] = field(default_factory=dict)
    part: str = ""
    sample_counts: Array | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "normalization", Normalization(self.normalization))
        m, n = len(self.outcomes), len(self.group_names)
        check_sample_counts(self.sample_counts, m)
        if self.mechanism.n_outcomes != m:
            raise ValueError(f"the mechanism has {self.mechanism.n_outcomes} outcomes, the game {m}")
        for label, profile in (("truth", self.truth), ("reports", self.reports)):
            if profile.rewards.shape != (n, m):
                raise ValueError(f"`{label}.rewards` must have shape {(n, m)}, got {profile.rewards.shape}")
            basis = self.report_basis
            if (basis is None) != (profile.preferences is None):
                raise ValueError(f"`{label}` carries preferences exactly when the game has a report basis")
            if basis is not None:
                assert profile.preferences is not None
                if profile.preferences.shape != (n, basis.dimension):
                    raise ValueError(
                        f"`{label}.preferences` must have shape {(n, basis.dimension)}, "
                        f"got {profile.preferences.shape}"
                    )
                if not np.allclose(
                    basis.rewards(profile.preferences), profile.rewards, rtol=1e-12, atol=1e-12
                ):
                    raise ValueError(f"`{label}.rewards` are not `{label}.preferences` in the report basis")

    @property
    def n_groups(self) -> int:
        return len(self.group_names)

    @property
    def n_outcomes(self) -> int:
        return len(self.outcomes)

    @property
    def is_truthful(self) -> bool:
        """Whether every report equals the truth."""
        return self.truth.equals(self.reports)

    def with_rules(self, training_rule: TrainingRule, payment_rule: PaymentRule) -> Game:
        """The same game under other training and payment rules.

        Raises
        ------
        ValueError
            for rules that cannot form one mechanism (:func:`~rlhf_mech.core.rule_conflict`).
        """
        mechanism = replace(self.mechanism, training_rule=training_rule, payment_rule=payment_rule)
        return replace(self, mechanism=mechanism)

    def misreporting_groups(self) -> tuple[int, ...]:
        """Indices of the groups whose report differs from their type."""
        reward_differs = np.any(self.truth.rewards != self.reports.rewards, axis=1)
        size_differs = self.truth.sizes != self.reports.sizes
        return tuple(int(i) for i in np.flatnonzero(reward_differs | size_differs))

    def solve(self, payment_rule: str | PaymentRule | None = None) -> GameSolution:
        """The mechanism on the truthful and the reported profile (:func:`solve`)."""
        mechanism = self.mechanism.with_payment_rule(payment_rule)
        truthful = outcome(mechanism, self.truth, self.truth)
        reported = truthful if self.is_truthful else outcome(mechanism, self.truth, self.reports)
        return GameSolution(game=self, mechanism=mechanism, truthful=truthful, reported=reported)


@dataclass(frozen=True)
class GameSolution:
    """The mechanism on a game: truthful reports versus the reports in the file.

    Attributes
    ----------
    game : the game; mechanism : the mechanism used (the game's, or with a payment rule
        override).
    truthful : outcome when every group reports its type.
    reported : outcome for the reports in the game (the same object when all are truthful).
    """

    game: Game
    mechanism: Mechanism
    truthful: ProfileOutcome
    reported: ProfileOutcome

    @property
    def payment_rule(self) -> PaymentRule:
        return self.mechanism.payment_rule

    @property
    def gains(self) -> Array:
        """(n,) ``reported.utilities - truthful.utilities``: what each group gained by the
        reported profile (positive for a profitable misreport)."""
        return self.reported.utilities - self.truthful.utilities


def check_sample_counts(counts: Array | None, m: int) -> None:
    """Raise ``ValueError`` unless ``counts`` is ``None`` or ``m`` integers >= 1."""
    if counts is None:
        return
    counts = np.asarray(counts)
    if counts.shape != (m,) or not np.issubdtype(counts.dtype, np.integer) or np.any(counts < 1):
        raise ValueError(f"`sample_counts` must be {m} integers >= 1, got {counts!r:.80}")


def solve(game: Game | PromptGame, payment_rule: str | PaymentRule | None = None) -> Any:
    """Apply the mechanism to a game, for truthful and for the reported profile.

    Parameters
    ----------
    game : the game, e.g. from :func:`rlhf_mech.load_game`: of one prompt (a
        :class:`GameSolution` is returned) or of many (:class:`~rlhf_mech.core.PromptGame`:
        a :class:`~rlhf_mech.core.PromptSolution`).
    payment_rule : overrides the game's payment rule when given.
    """
    return game.solve(payment_rule)


def with_reports(game: Game, reports: Profile, **changes: object) -> Game:
    """``game`` with other reports (and any other field changes, e.g. ``name``)."""
    return replace(game, reports=reports, **changes)
