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

Batching: the prompts that share a mechanism (the same ``pi_init`` and outcome costs, e.g.
prompts with ``k`` distinct responses each sampled once, ``pi_init = 1/k``) are solved as
one batch of the profile kernel (:func:`~rlhf_mech.core.outcome`): one call of the training
rule for all their problems, and the payment rule's every leave-one-out problem of every
prompt in blocks.
Prompts whose initial distributions differ form batches of their own, since the solver takes
one ``pi_init`` per call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from rlhf_mech.core._game import Game
from rlhf_mech.core._mechanism import Mechanism, Profile
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
    """A game over many prompts (module docstring).

    Attributes
    ----------
    name : a label for output.
    prompts : (P,) the prompts (their text, or a name).
    games : (P,) one core :class:`~rlhf_mech.core.Game` per prompt: its outcomes, its
        mechanism (``pi_init`` of the prompt), the groups' true reward models and reports
        on it. Every game has the same groups, sizes (true and reported), divergence,
        lambda and rules.
    weights : (P,) the prompt weights ``q_x`` (positive, summing to 1).
    notes : what was changed on loading, for the output.
    source, digest, lines : as for :class:`~rlhf_mech.core.Game`.
    """

    name: str
    prompts: tuple[str, ...]
    games: tuple[Game, ...]
    weights: Array
    notes: tuple[str, ...] = ()
    source: str | None = None
    digest: str | None = None
    lines: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        weights = np.asarray(self.weights, dtype=float)
        object.__setattr__(self, "weights", weights)
        if not self.games or len(self.prompts) != len(self.games):
            raise ValueError(f"{len(self.prompts)} prompts and {len(self.games)} games: one game per prompt")
        if weights.shape != (len(self.games),) or not np.all(weights > 0):
            raise ValueError(f"`weights` must be {len(self.games)} positive numbers")
        if abs(float(weights.sum()) - 1.0) > PROMPT_WEIGHT_TOL:
            raise ValueError(f"`weights` must sum to 1, got {float(weights.sum())!r}")
        first = self.games[0]
        conflict = prompt_rule_conflict(first.mechanism.training_rule, first.mechanism.payment_rule)
        if conflict:
            raise ValueError(conflict)
        for k, game in enumerate(self.games):
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
            ):
                raise ValueError(f"{where}: divergence, lambda and rules must be those of prompt 0")

    @property
    def group_names(self) -> tuple[str, ...]:
        return self.games[0].group_names

    @property
    def n_groups(self) -> int:
        return len(self.group_names)

    @property
    def n_prompts(self) -> int:
        return len(self.games)

    @property
    def n_outcomes(self) -> int:
        """The outcomes of all prompts together."""
        return sum(g.n_outcomes for g in self.games)

    @property
    def mechanism(self) -> Mechanism:
        """Prompt 0's mechanism: the divergence, lambda and rules every prompt shares."""
        return self.games[0].mechanism

    @property
    def outcomes(self) -> tuple[str, ...]:
        """No outcome names of the whole game (each prompt has its own): a rule parameter that
        names outcomes (Heuristic 1's ``checkpoints``) has none to name."""
        return ()

    @property
    def uniform_weights(self) -> bool:
        """Whether every prompt has the same weight."""
        return bool(np.all(self.weights == self.weights[0]))

    def with_rules(self, training_rule: TrainingRule, payment_rule: PaymentRule) -> PromptGame:
        """The same game under other rules (on every prompt).

        Raises
        ------
        ValueError
            for rules that cannot form a mechanism or do not split over the prompts.
        """
        games = tuple(g.with_rules(training_rule, payment_rule) for g in self.games)
        return replace(self, games=games)

    @property
    def is_truthful(self) -> bool:
        return all(g.is_truthful for g in self.games)

    def misreporting_groups(self) -> tuple[int, ...]:
        """The groups whose report differs from their type on some prompt (or in size)."""
        return tuple(sorted({i for g in self.games for i in g.misreporting_groups()}))

    def solve(self, payment_rule: str | PaymentRule | None = None) -> PromptSolution:
        """The mechanism on every prompt, truthful and reported profiles (:func:`solve_prompts`)."""
        return solve_prompts(self, payment_rule)


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


def _batches(game: PromptGame) -> list[Array]:
    """The prompt indices of each batch: prompts with the same ``pi_init`` and outcome costs,
    in order of first appearance."""
    keys: dict[bytes, list[int]] = {}
    for x, g in enumerate(game.games):
        costs = g.mechanism.outcome_costs
        key = g.mechanism.pi_init.tobytes() + b"|" + (b"" if costs is None else costs.tobytes())
        keys.setdefault(key, []).append(x)
    return [np.array(v) for v in keys.values()]


def _stack(games: list[Game], label: str) -> Profile:
    profiles = [getattr(g, label) for g in games]
    return Profile(np.stack([p.rewards for p in profiles]), np.stack([p.sizes for p in profiles]))


def prompt_outcome(
    game: PromptGame, reported: bool, payment_rule: PaymentRule | None = None
) -> PromptOutcome:
    """The mechanism on the reported (or the truthful) profile of every prompt, batched.

    Prompts that share a mechanism (``pi_init``, outcome costs) form one batch of the profile
    kernel (:func:`~rlhf_mech.core.outcome`), taken in blocks of at most
    :data:`~rlhf_mech.core._numerics.CHUNK_ELEMENTS` leave-one-out scores.
    """
    P, n = game.n_prompts, game.n_groups
    distributions: list[Array] = [np.empty(0)] * P
    per_group = ("valuations", "group_valuations", "payments", "utilities")
    per_prompt = ("social_welfare", "asw", "divergence_value", "kkt_residual")
    figures: dict[str, Array] = {name: np.empty((P, n)) for name in per_group}
    figures |= {name: np.empty(P) for name in per_prompt}
    figures["status"] = np.empty((P, n), dtype=int)
    for batch in _batches(game):
        mechanism = game.games[batch[0]].mechanism
        if payment_rule is not None:
            mechanism = replace(mechanism, payment_rule=payment_rule)
        step = rows_per_chunk(n * mechanism.n_outcomes)
        for start in range(0, batch.size, step):
            rows = batch[start : start + step]
            games = [game.games[x] for x in rows]
            truth = _stack(games, "truth")
            done = outcome(mechanism, truth, _stack(games, "reports") if reported else truth)
            for name, values in figures.items():
                values[rows] = getattr(done, name)
            for k, x in enumerate(rows):
                distributions[x] = done.distribution[k]
    each = Figures(**figures)
    return PromptOutcome(
        **vars(each.mean(game.weights, game.games[0].truth.sizes)),
        weights=game.weights,
        per_prompt=each,
        distributions=tuple(distributions),
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
