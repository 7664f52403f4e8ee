"""Candidate-model game files (YAML): document -> validated spec -> :class:`~rlhf_mech.core.Game`.

A game file whose top-level mapping has a ``candidates:`` key is read here (dispatched by
:func:`rlhf_mech.files.load_game`); see docs/candidates.md for every field. The game's groups
report in a :class:`~rlhf_mech.core.ReportBasis` (preferences over the reward models). Validation and
errors follow the core format: every problem is a :class:`~rlhf_mech.errors.SpecError`
naming the file, the line and the field, all of a file's problems in one run. The only
transformation is the declared ``scale``; a constant reward model under ``minmax`` is
recorded in ``Game.notes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from rlhf_mech.core import Game, Scale, candidate_game
from rlhf_mech.files.spec._document import (
    Document,
    ExpectSpec,
    FiniteFloat,
    Lambda,
    Name,
    Path_,
    PaymentField,
    Size,
    Strict,
    TrainingField,
    expectations,
    literal,
    max_size_bound,
    payment_rule,
    rules_agree,
    shown,
    training_rule,
    unique_names,
)
from rlhf_mech.files.spec._schemas import SCORE_LIMIT

#: A candidate's score or a preference weight: finite and at most :data:`SCORE_LIMIT` in size.
Score = Annotated[FiniteFloat, Field(ge=-SCORE_LIMIT, le=SCORE_LIMIT)]
Weight = Annotated[FiniteFloat, Field(ge=0, le=SCORE_LIMIT)]


class CandidateSpec(Strict):
    """One trained model: its mean reward per base reward model and its measured divergence."""

    name: Name
    scores: dict[str, Score]
    divergence: Annotated[FiniteFloat, Field(ge=0, le=SCORE_LIMIT)] = 0.0


class WeightSpec(Strict):
    """``divergence: {lambda: 1.0}``: the weight on the candidates' divergence values."""

    lambda_: Lambda = Field(default=1.0, alias="lambda")


class PreferenceReportSpec(Strict):
    """A group's report; an omitted field is reported truthfully."""

    preference: dict[str, Weight] | None = None
    size: Size | None = None


class CandidateGroupSpec(Strict):
    """One group: its true size and non-negative combination of base reward models."""

    name: Name
    size: Size
    preference: dict[str, Weight]
    report: PreferenceReportSpec | None = None


class CandidateGameSpec(Strict):
    """The whole candidate-game file; see docs/candidates.md."""

    name: Name | None = None
    reward_models: list[Name] = Field(min_length=1)
    scale: literal(tuple(s.value for s in Scale))  # type: ignore[valid-type]
    candidates: list[CandidateSpec] = Field(min_length=1)
    divergence: WeightSpec = WeightSpec()
    training: TrainingField = "sw_max"
    payment: PaymentField | None = None
    max_size: Size | None = None
    groups: list[CandidateGroupSpec] = Field(min_length=1)
    expect: ExpectSpec | None = None


def _unknown_models(doc: Document, value: Mapping[str, Any], path: Path_, models: tuple[str, ...]) -> list:
    return [
        doc.error((*path, k), f"unknown reward model {shown(k)} (not in reward_models)")
        for k in value
        if k not in models
    ]


def _scores(doc: Document, value: Mapping[str, Any], path: Path_, models: tuple[str, ...]) -> np.ndarray:
    problems = _unknown_models(doc, value, path, models)
    missing = [k for k in models if k not in value]
    if missing:
        problems.append(
            doc.error(path, f"no score for reward model(s) {', '.join(shown(k) for k in missing)}")
        )
    if problems:
        raise doc.collected(problems)
    return np.array([float(value[k]) for k in models])


def _preference(doc: Document, value: Mapping[str, Any], path: Path_, models: tuple[str, ...]) -> np.ndarray:
    """``{model: weight}`` -> (k,) weights, 0 for an omitted model; non-negative, not all 0."""
    problems = _unknown_models(doc, value, path, models)
    if problems:
        raise doc.collected(problems)
    weights = np.array([float(value.get(model, 0.0)) for model in models])
    if not weights.any():
        raise doc.error(path, "a preference needs at least one positive weight")
    return weights


def _non_negative(doc: Document, raw: np.ndarray, models: tuple[str, ...]) -> None:
    """With ``scale: none`` the paper's reward domain (section 2) is non-negative; IR
    (Prop. 4.4) relies on it."""
    problems = [
        doc.error(
            ("candidates", int(c), "scores", models[j]),
            f"score {float(raw[c, j])!r} is negative; with scale: none scores must be >= 0 "
            "(use scale: minmax to rescale)",
        )
        for c, j in np.argwhere(raw < 0)
    ]
    if problems:
        raise doc.collected(problems)


def candidate_game_from_spec(doc: Document, spec: CandidateGameSpec) -> Game:
    """The :class:`~rlhf_mech.core.Game` of a validated candidate-game spec.

    Raises
    ------
    SpecError
        carrying every problem found (checks that depend on a failed one are skipped).
    """
    models = (
        None
        if spec.reward_models is None
        else doc.check(unique_names, doc, spec.reward_models, ("reward_models",), "reward model")
    )
    candidates = [(i, c) for i, c in enumerate(spec.candidates or ()) if c is not None]
    groups = [(i, g) for i, g in enumerate(spec.groups or ()) if g is not None]
    names = doc.check(
        unique_names,
        doc,
        [c.name for _, c in candidates],
        ("candidates",),
        "candidate name",
        [i for i, _ in candidates],
    )
    group_names = doc.check(
        unique_names, doc, [g.name for _, g in groups], ("groups",), "group name", [i for i, _ in groups]
    )
    raw = None
    prefs, reported_prefs = [], []
    if models is not None:
        rows = [
            doc.check(_scores, doc, c.scores, ("candidates", i, "scores"), models)
            for i, c in candidates
            if c.scores is not None
        ]
        if rows and all(r is not None for r in rows):
            raw = np.array(rows)
            if spec.scale is not None and Scale(spec.scale) is Scale.NONE:
                doc.check(_non_negative, doc, raw, models)
        for i, group in groups:
            where: Path_ = ("groups", i)
            pref = None
            if group.preference is not None:
                pref = doc.check(_preference, doc, group.preference, (*where, "preference"), models)
            report = group.report or PreferenceReportSpec()
            reported = pref
            if report.preference is not None:
                reported = doc.check(
                    _preference, doc, report.preference, (*where, "report", "preference"), models
                )
            prefs.append(pref)
            reported_prefs.append(reported)
    for i, group in groups:
        if group.size is not None:
            doc.check(max_size_bound, doc, group.size, ("groups", i, "size"), spec.max_size)
        if group.report is not None and group.report.size is not None:
            doc.check(max_size_bound, doc, group.report.size, ("groups", i, "report", "size"), spec.max_size)
    rules = None
    if names is not None:
        payment = spec.payment and doc.check(payment_rule, doc, spec.payment, names)
        training = spec.training and doc.check(training_rule, doc, spec.training, names)
        # the rules are judged together once each is valid on its own
        if training is not None and (spec.payment is None or payment is not None):
            rules = doc.check(rules_agree, doc, training, payment, "none")
    expect = doc.check(expectations, doc, spec.expect, tuple(g.name for _, g in groups if g.name is not None))
    doc.raise_problems()
    assert models is not None and names is not None and group_names is not None and raw is not None
    assert rules is not None
    sizes = np.array([g.size for g in spec.groups])
    reported_sizes = np.array(
        [g.size if g.report is None or g.report.size is None else g.report.size for g in spec.groups]
    )
    return candidate_game(
        name=spec.name if spec.name is not None else doc.path.stem,
        candidates=names,
        reward_models=models,
        raw_scores=raw,
        scale=spec.scale,
        divergences=np.array([c.divergence for c in spec.candidates]),
        lam=spec.divergence.lambda_,
        training_rule=rules[0],
        payment_rule=rules[1],
        group_names=group_names,
        preferences=np.array(prefs),
        sizes=sizes,
        reported_preferences=np.array(reported_prefs),
        reported_sizes=reported_sizes,
        max_size=spec.max_size,
        expect=expect,
        source=str(doc.path),
    )
