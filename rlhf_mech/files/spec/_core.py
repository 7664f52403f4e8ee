"""Core game files (YAML, format v1): document -> validated spec -> :class:`~rlhf_mech.core.Game`.

See README.md for every field. Nothing the user wrote is rescaled. The one change made on
loading, dividing ``initial`` by its sum when that sum is within 1e-9 of 1 but not 1 to
rounding, is recorded in ``Game.notes`` and printed by the CLI.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from rlhf_mech.core import (
    DIVERGENCES,
    FILE_NORMALIZATIONS,
    NORMALIZATION_TOL,
    Game,
    Mechanism,
    Normalization,
    Profile,
    get_divergence,
)
from rlhf_mech.files.spec._document import (
    ArrayLoader,
    Document,
    ExpectSpec,
    FiniteFloat,
    Path_,
    PaymentField,
    Strict,
    expectations,
    literal,
    payment_rule,
    valid_size,
    vector,
)


class DivergenceSpec(Strict):
    """``divergence: {kind: kl, lambda: 1.0}``."""

    kind: str = "kl"
    lambda_: FiniteFloat = Field(default=1.0, alias="lambda", gt=0)


class ReportSpec(Strict):
    """A group's report; an omitted field is reported truthfully."""

    reward: Any = None
    size: FiniteFloat | None = None


class GroupSpec(Strict):
    """One group: its true size and reward model, and optionally a report."""

    name: str = Field(min_length=1)
    size: FiniteFloat
    reward: Any
    report: ReportSpec | None = None


class GameSpec(Strict):
    """The whole game file (format v1); see README.md for every field."""

    name: str | None = None
    outcomes: Any
    initial: Any = "uniform"
    normalization: literal(tuple(n.value for n in FILE_NORMALIZATIONS)) = "sum"  # type: ignore[valid-type]
    divergence: DivergenceSpec = DivergenceSpec()
    max_size: FiniteFloat | None = Field(default=None, ge=1)
    payment: PaymentField = "affine_maximizer"
    groups: list[GroupSpec] = Field(min_length=1)
    expect: ExpectSpec | None = None


def _outcomes(doc: Document, value: Any) -> tuple[str, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise doc.error(("outcomes",), "the number of outcomes must be at least 1")
        return tuple(f"x{j}" for j in range(value))
    if not isinstance(value, list) or not value:
        raise doc.error(("outcomes",), "expected a non-empty list of names or a positive integer")
    names = tuple(str(v) for v in value)
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise doc.error(("outcomes", i), f"duplicate outcome name {name!r}")
        seen.add(name)
    return names


def _initial(
    doc: Document, arrays: ArrayLoader, value: Any, outcomes: tuple[str, ...], notes: list[str]
) -> np.ndarray:
    m = len(outcomes)
    if value == "uniform":
        return np.full(m, 1.0 / m)
    q = vector(doc, arrays, value, ("initial",), outcomes)
    tiny = np.finfo(float).tiny
    bad = np.flatnonzero(q < tiny)
    if bad.size:
        raise doc.error(
            ("initial",),
            f"probability of {outcomes[bad[0]]!r} is {q[bad[0]]:.3g}; every p must be > 0 "
            f"(and at least {tiny:.3g}, the smallest normal float)",
        )
    total = float(q.sum())
    if abs(total - 1.0) > NORMALIZATION_TOL:
        raise doc.error(("initial",), f"probabilities sum to {total!r}, not 1 (tolerance 1e-9)")
    if abs(total - 1.0) <= m * np.finfo(float).eps:
        return q  # rounding of the sum itself: the solvers normalise their output anyway
    notes.append(f"initial distribution divided by its sum {total!r} to sum to 1")
    return q / total


def _reward(
    doc: Document,
    arrays: ArrayLoader,
    value: Any,
    path: Path_,
    outcomes: tuple[str, ...],
    normalization: Normalization,
) -> np.ndarray:
    rm = vector(doc, arrays, value, path, outcomes)
    problem = normalization.violation(rm, outcomes)
    if problem is not None:
        raise doc.error(path, problem)
    return rm


def core_game(doc: Document, spec: GameSpec) -> Game:
    """The :class:`~rlhf_mech.core.Game` of a validated core-format spec (arrays checked here)."""
    try:
        divergence = get_divergence(spec.divergence.kind).name
    except ValueError:
        raise doc.error(
            ("divergence", "kind"),
            f"unknown divergence {spec.divergence.kind!r}; expected one of {', '.join(DIVERGENCES)}",
        ) from None
    notes: list[str] = []
    normalization = Normalization(spec.normalization)
    arrays = ArrayLoader(doc)
    outcomes = _outcomes(doc, spec.outcomes)
    pi_init = _initial(doc, arrays, spec.initial, outcomes, notes)
    names: list[str] = []
    rewards, sizes, reported_rewards, reported_sizes = [], [], [], []
    for i, group in enumerate(spec.groups):
        where: Path_ = ("groups", i)
        if group.name in names:
            raise doc.error((*where, "name"), f"duplicate group name {group.name!r}")
        names.append(group.name)
        rm = _reward(doc, arrays, group.reward, (*where, "reward"), outcomes, normalization)
        size = valid_size(doc, group.size, (*where, "size"), spec.max_size)
        report = group.report or ReportSpec()
        reported_rm = rm
        if report.reward is not None:
            reported_rm = _reward(
                doc, arrays, report.reward, (*where, "report", "reward"), outcomes, normalization
            )
        reported_size = size
        if report.size is not None:
            reported_size = valid_size(doc, report.size, (*where, "report", "size"), spec.max_size)
        rewards.append(rm)
        sizes.append(size)
        reported_rewards.append(reported_rm)
        reported_sizes.append(reported_size)
    return Game(
        name=spec.name or doc.path.stem,
        outcomes=outcomes,
        group_names=tuple(names),
        mechanism=Mechanism(
            pi_init=pi_init,
            divergence=divergence,
            lam=spec.divergence.lambda_,
            payment_rule=payment_rule(doc, spec.payment, outcomes),
        ),
        normalization=normalization,
        truth=Profile(np.array(rewards), np.array(sizes)),
        reports=Profile(np.array(reported_rewards), np.array(reported_sizes)),
        max_size=spec.max_size,
        notes=tuple(notes),
        expect=expectations(doc, spec.expect, tuple(names)),
        source=str(doc.path),
    )
