"""Candidate-model game files (YAML): document -> validated spec -> :class:`~rlhf_mech.core.Game`.

A game file whose top-level mapping has a ``candidates:`` key is read here (dispatched by
:func:`rlhf_mech.files.load_game`); see docs/candidates.md for every field. The game's groups
report in a :class:`~rlhf_mech.core.ReportBasis` (preferences over the reward models). Validation and
errors follow the core format: every problem is one :class:`~rlhf_mech.errors.SpecError`
naming the file, the line and the field. The only transformation is the declared
``scale``; a constant reward model under ``minmax`` is recorded in ``Game.notes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import Field

from rlhf_mech.core import Game, Scale, candidate_game
from rlhf_mech.files.spec._document import (
    Document,
    ExpectSpec,
    FiniteFloat,
    Path_,
    PaymentField,
    Strict,
    expectations,
    literal,
    number,
    payment_rule,
    valid_size,
)


class CandidateSpec(Strict):
    """One trained model: its mean reward per base reward model and its measured divergence."""

    name: str = Field(min_length=1)
    scores: dict[str, Any]
    divergence: FiniteFloat = Field(default=0.0, ge=0)


class WeightSpec(Strict):
    """``divergence: {lambda: 1.0}``: the weight on the candidates' divergence values."""

    lambda_: FiniteFloat = Field(default=1.0, alias="lambda", gt=0)


class PreferenceReportSpec(Strict):
    """A group's report; an omitted field is reported truthfully."""

    preference: dict[str, Any] | None = None
    size: FiniteFloat | None = None


class CandidateGroupSpec(Strict):
    """One group: its true size and non-negative combination of base reward models."""

    name: str = Field(min_length=1)
    size: FiniteFloat
    preference: dict[str, Any]
    report: PreferenceReportSpec | None = None


class CandidateGameSpec(Strict):
    """The whole candidate-game file; see docs/candidates.md."""

    name: str | None = None
    reward_models: list[str] = Field(min_length=1)
    scale: literal(tuple(s.value for s in Scale))  # type: ignore[valid-type]
    candidates: list[CandidateSpec] = Field(min_length=1)
    divergence: WeightSpec = WeightSpec()
    payment: PaymentField = "affine_maximizer"
    max_size: FiniteFloat | None = Field(default=None, ge=1)
    groups: list[CandidateGroupSpec] = Field(min_length=1)
    expect: ExpectSpec | None = None


def _unique(doc: Document, names: list[str], path: Path_, what: str) -> tuple[str, ...]:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise doc.error((*path, i), f"duplicate {what} {name!r}")
        seen.add(name)
    return tuple(names)


def _scores(doc: Document, value: Mapping[str, Any], path: Path_, models: tuple[str, ...]) -> np.ndarray:
    unknown = [k for k in value if k not in models]
    if unknown:
        raise doc.error((*path, unknown[0]), f"unknown reward model {unknown[0]!r} (not in reward_models)")
    missing = [k for k in models if k not in value]
    if missing:
        raise doc.error(path, f"no score for reward model(s) {', '.join(missing)}")
    return np.array([number(doc, value[k], (*path, k)) for k in models])


def _preference(doc: Document, value: Mapping[str, Any], path: Path_, models: tuple[str, ...]) -> np.ndarray:
    """``{model: weight}`` -> (k,) weights, 0 for an omitted model; non-negative, not all 0."""
    unknown = [k for k in value if k not in models]
    if unknown:
        raise doc.error((*path, unknown[0]), f"unknown reward model {unknown[0]!r} (not in reward_models)")
    weights = np.zeros(len(models))
    for j, model in enumerate(models):
        if model in value:
            weight = number(doc, value[model], (*path, model))
            if weight < 0:
                raise doc.error((*path, model), f"weight {weight!r} is negative; weights must be >= 0")
            weights[j] = weight
    if not weights.any():
        raise doc.error(path, "a preference needs at least one positive weight")
    return weights


def candidate_game_from_spec(doc: Document, spec: CandidateGameSpec) -> Game:
    """The :class:`~rlhf_mech.core.Game` of a validated candidate-game spec."""
    models = _unique(doc, spec.reward_models, ("reward_models",), "reward model")
    names = _unique(doc, [c.name for c in spec.candidates], ("candidates",), "candidate name")
    raw = np.array(
        [_scores(doc, c.scores, ("candidates", i, "scores"), models) for i, c in enumerate(spec.candidates)]
    )
    if Scale(spec.scale) is Scale.NONE:
        # The paper's reward domain (section 2) is non-negative; IR (Prop. 4.4) relies on it.
        negative = np.argwhere(raw < 0)
        if negative.size:
            c, j = negative[0]
            raise doc.error(
                ("candidates", int(c), "scores", models[j]),
                f"score {float(raw[c, j])!r} is negative; with scale: none scores must be >= 0 "
                "(use scale: minmax to rescale)",
            )
    group_names: list[str] = []
    prefs, sizes, reported_prefs, reported_sizes = [], [], [], []
    for i, group in enumerate(spec.groups):
        where: Path_ = ("groups", i)
        if group.name in group_names:
            raise doc.error((*where, "name"), f"duplicate group name {group.name!r}")
        group_names.append(group.name)
        pref = _preference(doc, group.preference, (*where, "preference"), models)
        size = valid_size(doc, group.size, (*where, "size"), spec.max_size)
        report = group.report or PreferenceReportSpec()
        reported_pref = pref
        if report.preference is not None:
            reported_pref = _preference(doc, report.preference, (*where, "report", "preference"), models)
        reported_size = size
        if report.size is not None:
            reported_size = valid_size(doc, report.size, (*where, "report", "size"), spec.max_size)
        prefs.append(pref)
        sizes.append(size)
        reported_prefs.append(reported_pref)
        reported_sizes.append(reported_size)
    return candidate_game(
        name=spec.name or doc.path.stem,
        candidates=names,
        reward_models=models,
        raw_scores=raw,
        scale=spec.scale,
        divergences=np.array([c.divergence for c in spec.candidates]),
        lam=spec.divergence.lambda_,
        payment_rule=payment_rule(doc, spec.payment, names),
        group_names=tuple(group_names),
        preferences=np.array(prefs),
        sizes=np.array(sizes),
        reported_preferences=np.array(reported_prefs),
        reported_sizes=np.array(reported_sizes),
        max_size=spec.max_size,
        expect=expectations(doc, spec.expect, tuple(group_names)),
        source=str(doc.path),
    )
