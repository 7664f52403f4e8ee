r"""Games over many prompts: one outcome set per prompt, one size per group.

The paper's model is per prompt (section 2: "our theoretical model operates on each prompt
independently"). A trainer's log covers many prompts ``x``, each with its own sampled
responses (outcomes), initial distribution ``pi_init(. | x)`` and reward models
``rm_i(x, .)``; the platform fine-tunes one policy, i.e. one ``pi(. | x)`` per prompt. With
prompt weights ``q_x`` (the prompt distribution; uniform over the log's prompts unless the
game file gives weights) the training objective of SW-Max (Definition 4.1) is

.. math::  \sum_x q_x \Big[ \sum_i w_i \langle \pi_x, rm_{i,x} \rangle
           - D_f(\pi_x \,\|\, \pi_{init,x}) \Big],

a sum of one SW-Max problem per prompt, so it is maximised prompt by prompt. Every quantity
of the mechanism is then the ``q``-weighted mean of the per-prompt quantities: the valuation
``v_i = sum_x q_x <pi_x, rm_{i,x}>``, the social welfare, ASW, and the payment of eq. (1),
whose two terms (the leave-one-out optimum and ``ASW_{-i}`` at the solution) are sums over
prompts too. A group is the same population on every prompt: it has one size ``w_i`` (and
reports one), and a reward model per prompt.

Only rules that split over prompts this way are allowed (``separable`` in both registries):
MaxMin and Nash take the minimum or the logarithm of the prompt-averaged valuations, and
Heuristic 1 the maximum over checkpoints of the whole run's ``ASW_{-i}``; none of these is a
sum of per-prompt terms.

Batching: the prompts with the same number of outcomes (a trainer's ``k`` samples per
prompt, repeated responses merged) are solved as one batch of the profile kernel
(:func:`~rlhf_mech.core.outcome`), each prompt with its own ``pi_init``
(:meth:`~rlhf_mech.core.Mechanism.rows`): one call of the training rule for all their
problems, and the payment rule's every leave-one-out problem of every prompt in blocks.
The game itself is arrays over the flat outcome axis of all prompts (:class:`PromptGame`),
never one Python object per prompt.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rlhf_mech.core._game import Expectations, Game, check_sample_counts
from rlhf_mech.core._mechanism import Mechanism, Profile
from rlhf_mech.core._normalizations import Normalization
from rlhf_mech.core._numerics import rows_per_chunk
from rlhf_mech.core._outcomes import Figures, outcome
from rlhf_mech.core._payments import PaymentRule, get_payment_rule
from rlhf_mech.core._status import CONVERGED, STATUS_MESSAGES
from rlhf_mech.core._training import TrainingRule

Array = np.ndarray

#: How far the prompt weights may sum from 1: the rounding of a sum of a million weights
#: (the file loader divides weights further off by their sum, and says so).
PROMPT_WEIGHT_TOL = 1e-9


def prompt_rule_conflict(training: TrainingRule, payment: PaymentRule) -> str:
    """Why these rules cannot run over many prompts prompt by prompt, or ``""``."""
    for family, rule in (("training", training), ("payment", payment)):
        if not rule.separable:
            return (
                f"{family} rule {rule.name!r} does not split into one problem per prompt (it couples "
                "the prompts through the averaged valuations); a game of many prompts takes a "
                "separable rule"
            )
    return ""


@dataclass(frozen=True)
class PromptGame:
    """A game over many prompts (module docstring), held as arrays.

    Every prompt's outcomes are one stretch of the flat outcome axis (``T`` outcomes in all):
    prompt ``x`` owns ``offsets[x]:offsets[x + 1]``. Nothing is stored per prompt but these
    arrays, so that a log of 10^5 prompts loads, solves and audits without 10^5 Python
    objects; :meth:`game` builds one prompt's :class:`~rlhf_mech.core.Game` when it is wanted.

    Attributes
    ----------
    name : a label for output.
    prompts : (P,) the prompts (their text, or a name).
    group_names : (n,) the groups, the same on every prompt.
    mechanism : the rules, divergence and lambda every prompt shares (its ``pi_init`` and
        outcome costs are prompt 0's; each prompt's are :attr:`pi_init` and
        :attr:`outcome_costs`).
    normalization : the reward normalisation of section 2, the same on every prompt.
    offsets : (P + 1,) int, where each prompt's outcomes start on the flat axis.
    pi_init : (T,) each prompt's initial distribution, concatenated.
    truth : the true types: rewards (n, T), one reward model per group and prompt, and the
        sizes (n,), one per group for every prompt.
    reports : the reports, the same shapes (equal to ``truth`` where none is given).
    weights : (P,) the prompt weights ``q_x`` (positive, summing to 1).
    outcome_costs : (T,) or ``None``.
    outcome_names : (T,) the outcomes' names, or ``None``: ``x0, x1, ...`` on every prompt.
    max_size : the public bound on sizes (``None`` when not stated).
    notes : what was changed on loading, for the output.
    expect : the file's ``expect:`` block (about the whole game), or ``None``.
    source, digest, lines : as for :class:`~rlhf_mech.core.Game`.
    sample_counts : (T,) int, how often each prompt's outcomes were drawn from its initial
        policy where they are samples (as for :class:`~rlhf_mech.core.Game`), or ``None``.
    """

    name: str
    prompts: tuple[str, ...]
    group_names: tuple[str, ...]
    mechanism: Mechanism
    normalization: Normalization
    offsets: Array
    pi_init: Array
    truth: Profile
    reports: Profile
    weights: Array
    outcome_costs: Array | None = None
    outcome_names: tuple[str, ...] | None = None
    max_size: float | None = None
    notes: tuple[str, ...] = ()
    expect: Expectations | None = None
    source: str | None = None
    digest: str | None = None
    lines: Mapping[str, int] = field(default_factory=dict)
    sample_counts: Array | None = None

    def __post_init__(self) -> None:
        weights = np.asarray(self.weights, dtype=float)
        offsets = np.asarray(self.offsets, dtype=np.int64)
        pi_init = np.asarray(self.pi_init, dtype=float)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "pi_init", pi_init)
        object.__setattr__(self, "normalization", Normalization(self.normalization))
        P, n = len(self.prompts), len(self.group_names)
        if P == 0 or offsets.shape != (P + 1,) or offsets[0] != 0 or np.any(np.diff(offsets) < 1):
            raise ValueError(f"`offsets` must be {P + 1} increasing positions from 0: one stretch per prompt")
        T = int(offsets[-1])
        if pi_init.shape != (T,):
            raise ValueError(
                f"`pi_init` must have the {T} outcomes of the prompts, got shape {pi_init.shape}"
            )
        for label in ("truth", "reports"):
            profile = getattr(self, label)
            if profile.rewards.shape != (n, T):
                raise ValueError(f"`{label}.rewards` must have shape {(n, T)}, got {profile.rewards.shape}")
        check_sample_counts(self.sample_counts, T)
        if self.outcome_costs is not None and np.shape(self.outcome_costs) != (T,):
            raise ValueError(f"`outcome_costs` must have shape {(T,)}")
        if self.outcome_names is not None and len(self.outcome_names) != T:
            raise ValueError(f"`outcome_names` must name the {T} outcomes")
        if weights.shape != (P,) or not np.all(weights > 0):
            raise ValueError(f"`weights` must be {P} positive numbers")
        if abs(float(weights.sum()) - 1.0) > PROMPT_WEIGHT_TOL:
            raise ValueError(f"`weights` must sum to 1, got {float(weights.sum())!r}")
        conflict = prompt_rule_conflict(self.mechanism.training_rule, self.mechanism.payment_rule)
        if conflict:
            raise ValueError(conflict)

    @classmethod
    def from_games(
        cls,
        name: str,
        prompts: Sequence[str],
        games: Sequence[Game],
        weights: Array,
        **fields: Any,
    ) -> PromptGame:
        """The game of many prompts whose prompt ``x`` is ``games[x]`` (a core game each, with
        the same groups, sizes, normalisation, divergence, lambda and rules).

        Raises
        ------
        ValueError
            where the prompts' games disagree on what they must share.
        """
        first = games[0] if games else None
        if first is None:
            raise ValueError("a game of many prompts needs at least one prompt")
        for k, game in enumerate(games):
            where = f"prompt {k}"
            if game.report_basis is not None:
                raise ValueError(f"{where}: a game of many prompts holds core games (reward vectors)")
            if game.group_names != first.group_names:
                raise ValueError(f"{where}: groups {game.group_names}, not {first.group_names}")
            for label in ("truth", "reports"):
                if not np.array_equal(getattr(game, label).sizes, getattr(first, label).sizes):
                    raise ValueError(f"{where}: `{label}` sizes differ from prompt 0's: one size per group")
            a, b = game.mechanism, first.mechanism
            if (a.divergence.name, a.lam, a.training_rule, a.payment_rule) != (
                b.divergence.name,
                b.lam,
                b.training_rule,
                b.payment_rule,
            ) or game.normalization != first.normalization:
                raise ValueError(
                    f"{where}: normalisation, divergence, lambda and rules must be those of prompt 0"
                )
        counts = [g.n_outcomes for g in games]
        costs = [g.mechanism.outcome_costs for g in games]
        named = any(g.outcomes != default_outcome_names(g.n_outcomes) for g in games)
        return cls(
            name=name,
            prompts=tuple(prompts),
            group_names=first.group_names,
            mechanism=first.mechanism,
            normalization=first.normalization,
            offsets=np.concatenate([[0], np.cumsum(counts)]),
            pi_init=np.concatenate([g.mechanism.pi_init for g in games]),
            truth=Profile(np.concatenate([g.truth.rewards for g in games], axis=1), first.truth.sizes),
            reports=Profile(np.concatenate([g.reports.rewards for g in games], axis=1), first.reports.sizes),
            weights=weights,
            outcome_costs=None
            if all(c is None for c in costs)
            else np.concatenate(
                [np.zeros(k) if c is None else c for c, k in zip(costs, counts, strict=True)]
            ),
            outcome_names=tuple(o for g in games for o in g.outcomes) if named else None,
            sample_counts=None
            if any(g.sample_counts is None for g in games)
            else np.concatenate([g.sample_counts for g in games]),
            **fields,
        )

    @property
    def n_groups(self) -> int:
        return len(self.group_names)

    @property
    def part(self) -> str:
        """Which part of its file the game is: all of it (``""``; a prompt's :meth:`game` says
        which prompt)."""
        return ""

    @property
    def n_prompts(self) -> int:
        return len(self.prompts)

    @property
    def n_outcomes(self) -> int:
        """The outcomes of all prompts together."""
        return int(self.offsets[-1])

    @property
    def outcome_counts(self) -> Array:
        """(P,) how many outcomes each prompt has."""
        return np.diff(self.offsets)

    @property
    def outcomes(self) -> tuple[str, ...]:
        """No outcome names of the whole game (each prompt has its own, :meth:`prompt_outcomes`):
        a rule parameter that names outcomes (Heuristic 1's ``checkpoints``) has none to name."""
        return ()

    def prompt_outcomes(self, x: int) -> tuple[str, ...]:
        """Prompt ``x``'s outcome names."""
        a, b = int(self.offsets[x]), int(self.offsets[x + 1])
        return default_outcome_names(b - a) if self.outcome_names is None else self.outcome_names[a:b]

    @property
    def uniform_weights(self) -> bool:
        """Whether every prompt has the same weight."""
        return bool(np.all(self.weights == self.weights[0]))

    @property
    def is_truthful(self) -> bool:
        return self.truth.equals(self.reports)

    def misreporting_groups(self) -> tuple[int, ...]:
        """The groups whose report differs from their type on some prompt (or in size)."""
        reward_differs = np.any(self.truth.rewards != self.reports.rewards, axis=1)
        size_differs = self.truth.sizes != self.reports.sizes
        return tuple(int(i) for i in np.flatnonzero(reward_differs | size_differs))

    def with_rules(self, training_rule: TrainingRule, payment_rule: PaymentRule) -> PromptGame:
        """The same game under other rules (on every prompt).

        Raises
        ------
        ValueError
            for rules that cannot form a mechanism or do not split over the prompts.
        """
        mechanism = replace(self.mechanism, training_rule=training_rule, payment_rule=payment_rule)
        return replace(self, mechanism=mechanism)

    def with_report(self, i: int, reward: Array, size: float) -> PromptGame:
        """This game with group ``i`` reporting ``reward`` (T,), one reward model per prompt on
        the flat outcome axis, and ``size`` (one size for every prompt)."""
        return replace(self, reports=self.reports.with_report(i, reward, size))

    def game(self, x: int) -> Game:
        """Prompt ``x``'s game: its outcomes, its mechanism (``pi_init`` of the prompt), the
        groups' true reward models and reports on it (``part`` says which prompt it is)."""
        a, b = int(self.offsets[x]), int(self.offsets[x + 1])
        costs = None if self.outcome_costs is None else self.outcome_costs[a:b]
        truth = Profile(self.truth.rewards[:, a:b], self.truth.sizes)
        reports = truth if self.is_truthful else Profile(self.reports.rewards[:, a:b], self.reports.sizes)
        return Game(
            name=f"{self.name} [prompt {x}]",
            outcomes=self.prompt_outcomes(x),
            group_names=self.group_names,
            mechanism=replace(self.mechanism, pi_init=self.pi_init[a:b], outcome_costs=costs),
            normalization=self.normalization,
            truth=truth,
            reports=reports,
            max_size=self.max_size,
            source=self.source,
            part=f"prompt {x}",
            sample_counts=None if self.sample_counts is None else self.sample_counts[a:b],
        )

    @functools.cached_property
    def games(self) -> tuple[Game, ...]:
        """(P,) every prompt's :meth:`game` (built once, when first asked for: one Python object
        per prompt, which the batched computations never need)."""
        return tuple(self.game(x) for x in range(self.n_prompts))

    def batches(self) -> list[Array]:
        """The prompt indices of each batch: the prompts with the same number of outcomes, in
        order of first appearance. One batch is one call of the profile kernel (each prompt
        with its own ``pi_init``, :meth:`~rlhf_mech.core.Mechanism.rows`)."""
        counts = self.outcome_counts
        sizes, first = np.unique(counts, return_index=True)
        return [np.flatnonzero(counts == sizes[k]) for k in np.argsort(first, kind="stable")]

    def columns(self, prompts: Array) -> Array:
        """(B, k) the flat outcome indices of prompts that all have ``k`` outcomes."""
        k = int(self.offsets[prompts[0] + 1] - self.offsets[prompts[0]])
        return self.offsets[prompts][:, None] + np.arange(k)

    def batch(self, prompts: Array, mechanism: Mechanism | None = None) -> tuple[Mechanism, Profile, Profile]:
        """The mechanism (one ``pi_init`` per prompt), true types and reports ``(B, n, k)`` of
        prompts that all have ``k`` outcomes (``mechanism``: the rules to use, default the
        game's)."""
        cols = self.columns(prompts)
        base = self.mechanism if mechanism is None else mechanism
        costs = None if self.outcome_costs is None else self.outcome_costs[cols]
        rules = replace(base, pi_init=self.pi_init[cols], outcome_costs=costs)
        truth = Profile(
            _stacked(self.truth.rewards, cols),
            np.tile(self.truth.sizes, (len(prompts), 1)),
        )
        if self.is_truthful:
            return rules, truth, truth
        reports = Profile(
            _stacked(self.reports.rewards, cols),
            np.tile(self.reports.sizes, (len(prompts), 1)),
        )
        return rules, truth, reports

    def solve(self, payment_rule: str | PaymentRule | None = None) -> PromptSolution:
        """The mechanism on every prompt, truthful and reported profiles (:func:`solve_prompts`)."""
        return solve_prompts(self, payment_rule)


def _stacked(rewards: Array, cols: Array) -> Array:
    """(B, n, k) the reward models (n, T) of the prompts whose outcomes are ``cols`` (B, k), in
    one contiguous array: BLAS then forms the scores as for a game of one prompt (a strided
    view would be summed by another loop, whose rounding differs in the last bit)."""
    return np.ascontiguousarray(np.moveaxis(rewards[:, cols], 0, 1))


def default_outcome_names(m: int) -> tuple[str, ...]:
    """``x0, x1, ...``: the names of outcomes a file does not name (``outcomes: m``)."""
    return tuple([f"x{j}" for j in range(m)])  # a list first: 1.5x faster at 10^6 names


@dataclass(frozen=True)
class PromptOutcome(Figures):
    """The mechanism on one profile of reports, every prompt.

    Its :class:`~rlhf_mech.core.Figures` are the ``q``-weighted means a group lives by (module
    docstring): ``v_i = sum_x q_x <pi_x, rm_{i,x}>``, ``p_i = sum_x q_x p_{i,x}``, ...; the
    residual and the status are the worst prompt's.

    Attributes
    ----------
    weights : (P,) the prompt weights ``q_x``.
    per_prompt : each prompt's figures (leading axis ``P``): the batched profile kernel's.
    distributions : (P,) per prompt, its fine-tuned distribution ``pi_x``.
    """

    weights: Array
    per_prompt: Figures
    distributions: tuple[Array, ...]

    @property
    def status_message(self) -> str:
        """``""`` when every solve converged, else what went wrong and where (first prompt)."""
        status = self.per_prompt.status
        bad = np.argwhere(status != CONVERGED)
        if not bad.size:
            return ""
        x, i = (int(v) for v in bad[0])
        message = STATUS_MESSAGES[int(status[x, i])]
        return f"{message} (prompt {x}; {bad.shape[0]} payments affected)"


@dataclass(frozen=True)
class PromptSolution:
    """The mechanism on a game of many prompts: truthful versus reported profiles."""

    game: PromptGame
    payment_rule: PaymentRule
    truthful: PromptOutcome
    reported: PromptOutcome

    @property
    def gains(self) -> Array:
        """(n,) ``reported.utilities - truthful.utilities``."""
        return self.reported.utilities - self.truthful.utilities

    @property
    def prompt_gains(self) -> Array:
        """(P, n) each prompt's share of the gains (``gains = weights @ prompt_gains``)."""
        return self.reported.per_prompt.utilities - self.truthful.per_prompt.utilities


def prompt_outcome(
    game: PromptGame, reported: bool, payment_rule: PaymentRule | None = None
) -> PromptOutcome:
    """The mechanism on the reported (or the truthful) profile of every prompt, batched.

    The prompts with the same number of outcomes form one batch of the profile kernel
    (:func:`~rlhf_mech.core.outcome`), each with its own ``pi_init``, taken in blocks of at
    most :data:`~rlhf_mech.core._numerics.CHUNK_ELEMENTS` leave-one-out scores.
    """
    P, n = game.n_prompts, game.n_groups
    pi = np.empty(game.n_outcomes)
    per_group = ("valuations", "group_valuations", "payments", "utilities")
    per_prompt = ("social_welfare", "asw", "divergence_value", "kkt_residual")
    figures: dict[str, Array] = {name: np.empty((P, n)) for name in per_group}
    figures |= {name: np.empty(P) for name in per_prompt}
    figures["status"] = np.empty((P, n), dtype=int)
    rules = game.mechanism if payment_rule is None else replace(game.mechanism, payment_rule=payment_rule)
    for batch in game.batches():
        step = rows_per_chunk(n * int(game.outcome_counts[batch[0]]))
        for start in range(0, batch.size, step):
            rows = batch[start : start + step]
            mechanism, truth, reports = game.batch(rows, rules)
            done = outcome(mechanism, truth, reports if reported else truth)
            for name, values in figures.items():
                values[rows] = getattr(done, name)
            pi[game.columns(rows)] = done.distribution
    each = Figures(**figures)
    return PromptOutcome(
        **vars(each.mean(game.weights, game.truth.sizes)),
        weights=game.weights,
        per_prompt=each,
        distributions=tuple(np.split(pi, game.offsets[1:-1])),
    )


def solve_prompts(game: PromptGame, payment_rule: str | PaymentRule | None = None) -> PromptSolution:
    """Apply the mechanism to a game of many prompts, truthful and reported profiles.

    Parameters
    ----------
    game : the game; payment_rule : overrides the game's payment rule when given (it must
        be separable).
    """
    rule = game.mechanism.payment_rule if payment_rule is None else get_payment_rule(payment_rule)
    conflict = prompt_rule_conflict(game.mechanism.training_rule, rule)
    if conflict:
        raise ValueError(conflict)
    override = None if payment_rule is None else rule
    truthful = prompt_outcome(game, reported=False, payment_rule=override)
    reported = truthful if game.is_truthful else prompt_outcome(game, reported=True, payment_rule=override)
    return PromptSolution(game=game, payment_rule=rule, truthful=truthful, reported=reported)
