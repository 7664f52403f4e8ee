"""Core game files (YAML, format v1): document -> validated spec -> :class:`~rlhf_mech.core.Game`.

See README.md for every field. Nothing the user wrote is rescaled. The one change made on
loading, dividing ``initial`` by its sum when that sum is within 1e-9 of 1 but not 1 to
rounding, is recorded in ``Game.notes`` and printed by the CLI.

The pydantic models declare every constraint of a single field (and so the JSON Schema,
:func:`rlhf_mech.files.game_schema`); :func:`core_game` checks what relates fields to each
other (lengths against the outcomes, normalisation, ``max_size``, unique names), every
problem of the file in one run.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import Field, WithJsonSchema

from rlhf_mech.core import DIVERGENCES, Game, Mechanism, Normalization, Profile
from rlhf_mech.core._internal import FILE_NORMALIZATIONS, NORMALIZATION_TOL, default_outcome_names
from rlhf_mech.files.spec._document import (
    ArrayLoader,
    Document,
    ExpectSpec,
    Lambda,
    Name,
    Path_,
    PaymentField,
    Size,
    Strict,
    TrainingField,
    expectations,
    is_name,
    literal,
    max_size_bound,
    payment_rule,
    rules_agree,
    shown,
    training_rule,
    unique_names,
    vector,
)
from rlhf_mech.files.spec._sampled import SAMPLED_SCHEMA, sample_counts, sampled_initial
from rlhf_mech.files.spec._schemas import (
    INITIAL_SCHEMA,
    MAX_NAME_CHARS,
    MAX_OUTCOMES,
    OUTCOMES_SCHEMA,
    REWARD_SCHEMA,
)


class DivergenceSpec(Strict):
    """``divergence: {kind: kl, lambda: 1.0}``."""

    kind: literal(tuple(DIVERGENCES)) = "kl"  # type: ignore[valid-type]
    lambda_: Lambda = Field(default=1.0, alias="lambda")


class ReportSpec(Strict):
    """A group's report; an omitted field is reported truthfully."""

    reward: Annotated[Any, WithJsonSchema(REWARD_SCHEMA)] = None
    size: Size | None = None


class GroupSpec(Strict):
    """One group: its true size and reward model, and optionally a report."""

    name: Name
    size: Size
    reward: Annotated[Any, WithJsonSchema(REWARD_SCHEMA)]
    report: ReportSpec | None = None


class GameSpec(Strict):
    """The whole game file (format v1); see README.md for every field."""

    name: Name | None = None
    outcomes: Annotated[Any, WithJsonSchema(OUTCOMES_SCHEMA)]
    initial: Annotated[Any, WithJsonSchema(INITIAL_SCHEMA)] = "uniform"
    normalization: literal(tuple(n.value for n in FILE_NORMALIZATIONS)) = "sum"  # type: ignore[valid-type]
    divergence: DivergenceSpec = DivergenceSpec()
    max_size: Size | None = None
    training: TrainingField = "sw_max"
    payment: PaymentField | None = None
    groups: list[GroupSpec] = Field(min_length=1)
    expect: ExpectSpec | None = None
    sampled: Annotated[Any, WithJsonSchema(SAMPLED_SCHEMA)] = None


def outcome_names(doc: Document, value: Any, path: Path_ = ("outcomes",)) -> tuple[str, ...]:
    """The outcome names of ``outcomes:`` at ``path``: a list of names, or a count ``m``
    (names ``x0..x{m-1}``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_OUTCOMES:
            raise doc.error(path, f"the number of outcomes must be in 1..{MAX_OUTCOMES}, got {value}")
        return default_outcome_names(value)
    if not isinstance(value, list) or not value:
        raise doc.error(path, "expected a non-empty list of names or a positive integer")
    if len(value) > MAX_OUTCOMES:
        raise doc.error(path, f"at most {MAX_OUTCOMES} outcomes, got {len(value)}")
    bad = [
        doc.error(
            (*path, i),
            f"an outcome name is a non-empty string without control characters, of at most "
            f"{MAX_NAME_CHARS} characters, got {shown(v)}",
        )
        for i, v in enumerate(value)
        if not is_name(v)
    ]
    if bad:
        raise doc.collected(bad)
    return unique_names(doc, value, path, "outcome name")


def initial_distribution(
    doc: Document,
    arrays: ArrayLoader,
    value: Any,
    outcomes: tuple[str, ...],
    notes: list[str],
    path: Path_ = ("initial",),
) -> np.ndarray:
    """``initial:`` at ``path``: ``uniform`` or probabilities (> 0, summing to 1 within
    1e-9; divided by their sum, with a note, when that is not 1 to rounding)."""
    m = len(outcomes)
    if value == "uniform":
        return np.full(m, 1.0 / m)
    q = vector(doc, arrays, value, path, outcomes)
    tiny = np.finfo(float).tiny
    bad = np.flatnonzero(q < tiny)
    if bad.size:
        raise doc.error(
            path,
            f"probability of {shown(outcomes[bad[0]])} is {q[bad[0]]:.3g}; every p must be > 0 "
            f"(and at least {tiny:.3g}, the smallest normal float)",
        )
    total = float(q.sum())
    if abs(total - 1.0) > NORMALIZATION_TOL:
        raise doc.error(path, f"probabilities sum to {total!r}, not 1 (tolerance 1e-9)")
    if abs(total - 1.0) <= m * np.finfo(float).eps:
        return q  # rounding of the sum itself: the solvers normalise their output anyway
    where = "" if path == ("initial",) else f" of {'.'.join(map(str, path[:-1]))}"
    notes.append(f"initial distribution{where} divided by its sum {total!r} to sum to 1")
    return q / total


def reward_vector(
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


def stacked_rows(rows: list[np.ndarray]) -> np.ndarray:
    """The (n, m) matrix of ``rows``: the array they are the rows of, in order, where they are
    (``{file: F.npy, row: i}`` for ``i = 0..n-1``: the memory-mapped file itself, not a copy of
    it, so that a solve reads its pages once and holds them once), else a new array."""
    base = rows[0]
    while isinstance(base.base, np.ndarray):
        base = base.base
    consecutive = (
        base.ndim == 2
        and base.shape[0] == len(rows)
        and base.dtype == np.float64
        and all(
            row.dtype == np.float64
            and row.shape == base.shape[1:]
            and row.__array_interface__["data"][0] == base[i].__array_interface__["data"][0]
            and row.strides == base.strides[1:]
            for i, row in enumerate(rows)
        )
    )
    return np.asarray(base) if consecutive else np.array(rows)


def core_game(doc: Document, spec: GameSpec) -> Game:
    """The :class:`~rlhf_mech.core.Game` of a validated core-format spec (arrays checked here).

    ``spec`` may be partial (:func:`~rlhf_mech.files.spec._document.validated`: a field or a
    group that failed validation is ``None``, its problems already recorded); the checks
    that do not depend on the failed parts still run.

    Raises
    ------
    SpecError
        carrying every problem found (checks that depend on a failed one are skipped).
    """
    notes: list[str] = []
    arrays = ArrayLoader(doc)
    outcomes = None if doc.failed(("outcomes",)) else doc.check(outcome_names, doc, spec.outcomes)
    pi_init = counts = None
    if outcomes is not None:
        pi_init = doc.check(initial_distribution, doc, arrays, spec.initial, outcomes, notes)
        counts = doc.check(sample_counts, doc, arrays, spec.sampled, ("sampled",), outcomes)
    if counts is not None and pi_init is not None:
        given = "initial" in spec.model_fields_set
        pi_init = doc.check(sampled_initial, doc, counts, pi_init, given, ("initial",))
    groups = [(i, g) for i, g in enumerate(spec.groups or ()) if g is not None]
    named = [(i, g.name) for i, g in groups if g.name is not None]
    doc.check(unique_names, doc, [n for _, n in named], ("groups",), "group name", [i for i, _ in named])
    normalization = None if spec.normalization is None else Normalization(spec.normalization)
    rewards, sizes, reported_rewards, reported_sizes = [], [], [], []
    for i, group in groups:
        where: Path_ = ("groups", i)
        report = group.report or ReportSpec()
        rm = reported_rm = None
        if outcomes is not None and normalization is not None and not doc.failed((*where, "reward")):
            rm = doc.check(
                reward_vector, doc, arrays, group.reward, (*where, "reward"), outcomes, normalization
            )
            reported_rm = rm
            if report.reward is not None:
                reported_rm = doc.check(
                    reward_vector,
                    doc,
                    arrays,
                    report.reward,
                    (*where, "report", "reward"),
                    outcomes,
                    normalization,
                )
        if group.size is not None:
            doc.check(max_size_bound, doc, group.size, (*where, "size"), spec.max_size)
        if report.size is not None:
            doc.check(max_size_bound, doc, report.size, (*where, "report", "size"), spec.max_size)
        rewards.append(rm)
        sizes.append(group.size)
        reported_rewards.append(reported_rm)
        reported_sizes.append(group.size if report.size is None else report.size)
    rules = None
    if outcomes is not None:
        payment = spec.payment and doc.check(payment_rule, doc, spec.payment, outcomes)
        training = spec.training and doc.check(training_rule, doc, spec.training, outcomes)
        # the rules are judged together once each is valid on its own
        if (
            spec.divergence is not None
            and training is not None
            and (spec.payment is None or payment is not None)
        ):
            rules = doc.check(rules_agree, doc, training, payment, spec.divergence.kind)
    expect = doc.check(expectations, doc, spec.expect, tuple(n for _, n in named))
    doc.raise_problems()
    assert outcomes is not None and pi_init is not None and normalization is not None and rules is not None
    truth = Profile(stacked_rows(rewards), np.array(sizes))
    # a truthful game's reports are its truth, one object: neither copied nor compared entry by entry
    truthful = all(r is t for r, t in zip(reported_rewards, rewards, strict=True)) and sizes == reported_sizes
    return Game(
        name=spec.name if spec.name is not None else doc.path.stem,
        outcomes=outcomes,
        group_names=tuple(g.name for _, g in groups),
        mechanism=Mechanism(
            pi_init=pi_init,
            divergence=spec.divergence.kind,
            lam=spec.divergence.lambda_,
            training_rule=rules[0],
            payment_rule=rules[1],
        ),
        normalization=normalization,
        truth=truth,
        reports=truth if truthful else Profile(stacked_rows(reported_rewards), np.array(reported_sizes)),
        max_size=spec.max_size,
        notes=tuple(notes),
        expect=expect,
        source=str(doc.path),
        sample_counts=counts,
    )
