"""Game files of many prompts (format v1, ``prompts:``): document -> spec -> PromptGame.

One outcome set per prompt (the paper's model is per prompt, section 2); one size per group
for every prompt. docs/import.md ("Multi-prompt games") describes the format::

    name: trl-run
    divergence: {kind: kl, lambda: 1.0}
    groups:
      - {name: helpful, size: 3}
      - {name: harmless, size: 2, report: {size: 2.5}}
    prompts:
      - prompt: "Tell me a joke"
        weight: 0.5                    # optional, on every prompt or on none (then uniform)
        outcomes: [r0, r1, r2]
        initial: [0.5, 0.25, 0.25]     # or uniform
        rewards: {helpful: [...], harmless: [...]}
        report: {harmless: [...]}      # optional: reported reward models on this prompt

Prompt ``k``'s game is checked as a core game is (lengths, normalisation, positive
``initial``), at the lines of ``prompts[k]``.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import Field, WithJsonSchema

from rlhf_mech.core import Mechanism, Normalization, Profile, PromptGame
from rlhf_mech.core._internal import (
    FILE_NORMALIZATIONS,
    PROMPT_WEIGHT_TOL,
    default_outcome_names,
    prompt_rule_conflict,
)
from rlhf_mech.errors import SpecError
from rlhf_mech.files._prompt_tables import TABLE_FORMATS, CheckedTable, load_table
from rlhf_mech.files.spec._core import (
    DivergenceSpec,
    initial_distribution,
    outcome_names,
    reward_vector,
)
from rlhf_mech.files.spec._document import (
    ArrayLoader,
    Document,
    Name,
    Path_,
    PaymentField,
    Size,
    Strict,
    TrainingField,
    literal,
    max_size_bound,
    payment_rule,
    rules_agree,
    shown,
    training_rule,
    unique_names,
)
from rlhf_mech.files.spec._sampled import SAMPLED_SCHEMA, sample_counts, sampled_initial
from rlhf_mech.files.spec._schemas import INITIAL_SCHEMA, MAX_OUTCOMES, OUTCOMES_SCHEMA, REWARD_SCHEMA

#: Most prompts a game may hold.
MAX_PROMPTS = 1_000_000

_REWARDS = {"type": "object", "additionalProperties": REWARD_SCHEMA, "minProperties": 1}


class PromptGroupReport(Strict):
    """A group's reported size (its reward models are reported per prompt)."""

    size: Size | None = None


class PromptGroupSpec(Strict):
    """One group: its name, true size and optionally a reported size."""

    name: Name
    size: Size
    report: PromptGroupReport | None = None


class PromptSpec(Strict):
    """One prompt: its outcomes, initial distribution and every group's reward model."""

    prompt: str = Field(max_length=1 << 20)
    weight: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    outcomes: Annotated[Any, WithJsonSchema(OUTCOMES_SCHEMA)]
    initial: Annotated[Any, WithJsonSchema(INITIAL_SCHEMA)] = "uniform"
    rewards: Annotated[dict[str, Any], WithJsonSchema(_REWARDS)]
    report: Annotated[dict[str, Any], WithJsonSchema(_REWARDS)] | None = None
    sampled: Annotated[Any, WithJsonSchema(SAMPLED_SCHEMA)] = None


class PromptGameSpec(Strict):
    """A game file of many prompts (format v1)."""

    name: Name | None = None
    normalization: literal(tuple(n.value for n in FILE_NORMALIZATIONS)) = "sum"  # type: ignore[valid-type]
    divergence: DivergenceSpec = DivergenceSpec()
    max_size: Size | None = None
    training: TrainingField = "sw_max"
    payment: PaymentField | None = None
    groups: list[PromptGroupSpec] = Field(min_length=1)
    prompts: list[PromptSpec] = Field(min_length=1, max_length=MAX_PROMPTS)


class PromptTableSpec(Strict):
    """``prompts: {file: NAME.npz}``: the prompts in a table beside the file (``.npz``, or
    ``.parquet`` with the ``parquet`` extra; :mod:`rlhf_mech.files._prompt_tables`)."""

    file: str = Field(min_length=1)


class PromptTableGameSpec(PromptGameSpec):
    """A game file of many prompts whose prompts are in a table (:class:`PromptTableSpec`)."""

    prompts: PromptTableSpec  # type: ignore[assignment]


def _group_rewards(
    doc: Document,
    arrays: ArrayLoader,
    given: dict[str, Any],
    path: Path_,
    names: tuple[str, ...],
    outcomes: tuple[str, ...],
    normalization: Normalization,
    required: bool,
) -> dict[str, np.ndarray] | None:
    """``rewards:`` (every group) or ``report:`` (some groups) of one prompt, by group name
    (``None`` where a vector failed its checks)."""
    problems = [
        doc.error((*path, key), f"unknown group {shown(key)} (groups: {', '.join(names)})")
        for key in given
        if key not in names
    ]
    if required:
        problems += [doc.error(path, f"no reward model of group {shown(n)}") for n in names if n not in given]
    out = {}
    for name in names:
        if name in given:
            rm = doc.check(reward_vector, doc, arrays, given[name], (*path, name), outcomes, normalization)
            if rm is not None:
                out[name] = rm
    if problems:
        raise SpecError.collected(problems)
    # a vector that failed is recorded in doc.problems already: nothing to build on
    return out if all(n in out for n in names if n in given) else None


def _weights(doc: Document, prompts: list[tuple[int, PromptSpec]], notes: list[str]) -> np.ndarray:
    given = [p.weight is not None for _, p in prompts]
    if not any(given):
        return np.full(len(prompts), 1.0 / len(prompts))
    if not all(given):
        k = prompts[given.index(False)][0]
        raise doc.error(("prompts", k), "a weight on every prompt or on none (uniform weights)")
    q = np.array([p.weight for _, p in prompts], dtype=float)
    with np.errstate(over="ignore"):  # an infinite sum is dealt with below
        total = float(q.sum())
    if abs(total - 1.0) <= PROMPT_WEIGHT_TOL:
        return q  # the weights as written (their sum is 1 to rounding)
    # divided by the largest first (two weights of 1e308 sum past the float range), then by the
    # sum of what is left, which lies in [1, P]
    scaled = q / q.max()
    weights = scaled / scaled.sum()
    if weights.min() == 0.0:
        k = prompts[int(np.argmin(weights))][0]
        raise doc.error(
            ("prompts", k, "weight"),
            f"weight {q.min():g} is 0 to rounding once the weights are divided by their sum "
            f"(the largest is {q.max():g}; weights are relative)",
        )
    shown_total = f"{total!r}" if np.isfinite(total) else "(beyond the float range)"
    notes.append(f"prompt weights divided by their sum {shown_total} to sum to 1")
    return weights


def prompt_game(doc: Document, spec: PromptGameSpec | PromptTableGameSpec) -> PromptGame:
    """The :class:`~rlhf_mech.core.PromptGame` of a validated (possibly partial) spec.

    Raises
    ------
    SpecError
        carrying every problem found.
    """
    notes: list[str] = []
    groups = [(i, g) for i, g in enumerate(spec.groups or ()) if g is not None]
    named = [(i, g.name) for i, g in groups if g.name is not None]
    names = doc.check(
        unique_names, doc, [n for _, n in named], ("groups",), "group name", [i for i, _ in named]
    )
    for i, group in groups:
        report = group.report or PromptGroupReport()
        for value, path in (
            (group.size, ("groups", i, "size")),
            (report.size, ("groups", i, "report", "size")),
        ):
            if value is not None:
                doc.check(max_size_bound, doc, value, path, spec.max_size)
    normalization = None if spec.normalization is None else Normalization(spec.normalization)
    table: CheckedTable | None = None
    if isinstance(spec.prompts, PromptTableSpec):
        if names is not None and normalization is not None:
            table = doc.check(prompt_table, doc, spec.prompts, names, normalization)
    elif spec.prompts is not None:
        table = _listed_prompts(doc, spec.prompts, names, normalization, notes)
    rules = None
    if spec.divergence is not None:
        payment = spec.payment and doc.check(payment_rule, doc, spec.payment, ())
        training = spec.training and doc.check(training_rule, doc, spec.training, ())
        if training is not None and (spec.payment is None or payment is not None):
            rules = doc.check(rules_agree, doc, training, payment, spec.divergence.kind)
    conflict = "" if rules is None else prompt_rule_conflict(*rules)
    if conflict:
        assert rules is not None
        doc.problems.append(doc.error(("payment",) if rules[0].separable else ("training",), conflict))
    doc.raise_problems()
    assert names is not None and table is not None and rules is not None and normalization is not None
    sizes = np.array([g.size for _, g in groups])
    reported_sizes = np.array(
        [g.size if g.report is None or g.report.size is None else g.report.size for _, g in groups]
    )
    truth = Profile(table.rewards, sizes)
    reports = truth
    if table.reports is not None or not np.array_equal(sizes, reported_sizes):
        reports = Profile(table.rewards if table.reports is None else table.reports, reported_sizes)
    return PromptGame(
        name=spec.name if spec.name is not None else doc.path.stem,
        prompts=table.prompts,
        group_names=names,
        mechanism=Mechanism(
            pi_init=table.pi_init[: table.offsets[1]],
            divergence=spec.divergence.kind,
            lam=spec.divergence.lambda_,
            training_rule=rules[0],
            payment_rule=rules[1],
        ),
        normalization=normalization,
        offsets=table.offsets,
        pi_init=table.pi_init,
        truth=truth,
        reports=reports,
        weights=table.weights,
        outcome_names=table.outcome_names,
        max_size=spec.max_size,
        notes=(*notes, *table.notes),
        source=str(doc.path),
        sample_counts=table.sample_counts,
    )


def prompt_table(
    doc: Document, ref: PromptTableSpec, names: tuple[str, ...], normalization: Normalization
) -> CheckedTable:
    """``prompts: {file: NAME}``: the table of prompts beside the file
    (:mod:`rlhf_mech.files._prompt_tables`), checked as a ``prompts:`` list is.

    Raises
    ------
    SpecError
        one problem at ``prompts.file``, naming the table and its field.
    """
    where: Path_ = ("prompts", "file")
    target = ArrayLoader(doc).target(ref.file, where, tuple(TABLE_FORMATS))
    try:
        return load_table(target, names, normalization, MAX_PROMPTS, MAX_OUTCOMES)
    except ValueError as exc:
        raise doc.error(where, f"{shown(ref.file)}: {exc}") from None


def _listed_prompts(
    doc: Document,
    listed: list[PromptSpec | None],
    names: tuple[str, ...] | None,
    normalization: Normalization | None,
    notes: list[str],
) -> CheckedTable | None:
    """``prompts:`` as a list: each prompt checked as a core game is, at its lines
    (``None`` where something failed: every problem is recorded in ``doc.problems``)."""
    arrays = ArrayLoader(doc)
    prompts = [(k, p) for k, p in enumerate(listed) if p is not None]
    total = 0
    sampled: list[tuple[int, np.ndarray | None]] = []
    built: list[tuple[str, tuple[str, ...], np.ndarray, np.ndarray, np.ndarray] | None] = []
    for k, prompt in prompts:
        where: Path_ = ("prompts", k)
        outcomes = (
            None
            if doc.failed((*where, "outcomes"))
            else doc.check(outcome_names, doc, prompt.outcomes, (*where, "outcomes"))
        )
        if outcomes is None or names is None or normalization is None:
            built.append(None)
            continue
        total += len(outcomes)
        if total > MAX_OUTCOMES:
            doc.problems.append(
                doc.error(where, f"more than {MAX_OUTCOMES} outcomes in all prompts together")
            )
            break
        pi_init = doc.check(
            initial_distribution, doc, arrays, prompt.initial, outcomes, notes, (*where, "initial")
        )
        counts = doc.check(sample_counts, doc, arrays, prompt.sampled, (*where, "sampled"), outcomes)
        if counts is not None and pi_init is not None:
            given = "initial" in prompt.model_fields_set
            pi_init = doc.check(sampled_initial, doc, counts, pi_init, given, (*where, "initial"))
        sampled.append((k, counts))
        truth = doc.check(
            _group_rewards,
            doc,
            arrays,
            prompt.rewards or {},
            (*where, "rewards"),
            names,
            outcomes,
            normalization,
            True,
        )
        reported = doc.check(
            _group_rewards,
            doc,
            arrays,
            prompt.report or {},
            (*where, "report"),
            names,
            outcomes,
            normalization,
            False,
        )
        if pi_init is None or truth is None or reported is None:
            built.append(None)
            continue
        true_rm = np.array([truth[n] for n in names])
        reported_rm = np.array([reported.get(n, truth[n]) for n in names])
        built.append((prompt.prompt, outcomes, pi_init, true_rm, reported_rm))
    weights = doc.check(_weights, doc, prompts, notes) if prompts else None
    unmarked = [k for k, c in sampled if c is None]
    if unmarked and len(unmarked) < len(sampled):
        doc.problems.append(doc.error(("prompts", unmarked[0]), "sampled: on every prompt or on none"))
        return None
    if weights is None or any(entry is None for entry in built):
        return None  # what failed is recorded in doc.problems
    entries = [entry for entry in built if entry is not None]
    counts = [len(entry[1]) for entry in entries]
    any_report = any(prompt.report for _, prompt in prompts)
    named = any(entry[1] != default_outcome_names(len(entry[1])) for entry in entries)
    return CheckedTable(
        prompts=tuple(entry[0] for entry in entries),
        offsets=np.concatenate([[0], np.cumsum(counts)]),
        pi_init=np.concatenate([entry[2] for entry in entries]),
        rewards=np.concatenate([entry[3] for entry in entries], axis=1),
        reports=np.concatenate([entry[4] for entry in entries], axis=1) if any_report else None,
        weights=weights,
        outcome_names=tuple(o for entry in entries for o in entry[1]) if named else None,
        notes=(),
        sample_counts=None if unmarked else np.concatenate([c for _, c in sampled]),
    )
