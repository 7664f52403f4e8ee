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
one batch: one call of the training rule for all their problems, and one call of the payment
rule for every group's leave-one-out problem of every prompt (the payment registry's
``others_optimum`` and ``group_payments``, which the best-response search calls too).
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
class PromptOutcome:
    """The mechanism on one profile of reports, every prompt.

    The per-prompt arrays are indexed ``[x, i]``; the properties are the ``q``-weighted
    means a group lives by (module docstring), named as on
    :class:`~rlhf_mech.core.ProfileOutcome`.

    Attributes
    ----------
    weights : (P,) the prompt weights ``q_x``.
    sizes : (n,) the true sizes ``w_i``.
    distributions : (P,) per prompt, its fine-tuned distribution ``pi_x``.
    prompt_valuations : (P, n) ``<pi_x, rm_{i,x}>`` on the true reward models.
    prompt_payments : (P, n) the per-prompt payments ``p_{i,x}``.
    prompt_social_welfare : (P,) ``sum_i w_i <pi_x, rm_{i,x}>``.
    prompt_divergence_values : (P,) ``D_f(pi_x || pi_init,x)`` less the outcome costs' term.
    prompt_kkt_residual : (P,) the training rule's residual at each prompt's solution.
    status : (P, n) solver status of each group's payment (its leave-one-out solve) or of
        the prompt's solve, :data:`~rlhf_mech.core.CONVERGED` when both converged.
    """

    weights: Array
    sizes: Array
    distributions: tuple[Array, ...]
    prompt_valuations: Array
    prompt_payments: Array
    prompt_social_welfare: Array
    prompt_divergence_values: Array
    prompt_kkt_residual: Array
    status: Array

    @property
    def prompt_utilities(self) -> Array:
        """(P, n) ``w_i <pi_x, rm_{i,x}> - p_{i,x}``: each prompt's share of the utility."""
        return self.sizes * self.prompt_valuations - self.prompt_payments

    @property
    def valuations(self) -> Array:
        """(n,) ``v_i = sum_x q_x <pi_x, rm_{i,x}>``."""
        return self.weights @ self.prompt_valuations

    @property
    def group_valuations(self) -> Array:
        """(n,) ``w_i v_i``."""
        return self.sizes * self.valuations

    @property
    def payments(self) -> Array:
        """(n,) ``p_i = sum_x q_x p_{i,x}``."""
        return self.weights @ self.prompt_payments

    @property
    def utilities(self) -> Array:
        """(n,) ``w_i v_i - p_i``."""
        return self.group_valuations - self.payments

    @property
    def social_welfare(self) -> float:
        return float(self.weights @ self.prompt_social_welfare)

    @property
    def divergence_value(self) -> float:
        return float(self.weights @ self.prompt_divergence_values)

    @property
    def asw(self) -> float:
        """``sum_x q_x (SW_x - D_f,x)``: the training objective on the true types."""
        return self.social_welfare - self.divergence_value

    @property
    def kkt_residual(self) -> float:
        """The worst prompt's residual."""
        return float(self.prompt_kkt_residual.max())

    @property
    def converged(self) -> bool:
        return bool(np.all(self.status == CONVERGED))

    @property
    def status_message(self) -> str:
        """``""`` when every solve converged, else what went wrong and where (first prompt)."""
        bad = np.argwhere(self.status != CONVERGED)
        if not bad.size:
            return ""
        x, i = (int(v) for v in bad[0])
        message = STATUS_MESSAGES[int(self.status[x, i])]
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
        return self.reported.prompt_utilities - self.truthful.prompt_utilities


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


def _batch_figures(mechanism: Mechanism, truth: Profile, reports: Profile) -> dict[str, Array]:
    """The per-prompt figures of a batch of prompts sharing ``mechanism`` (truth and reports
    ``(B, n, m)``): one training solve per prompt, and every group's leave-one-out problem
    (eq. (1)'s first term) of every prompt in one call of the payment rule."""
    rule, payment = mechanism.training_rule, mechanism.payment_rule
    B, n, m = reports.rewards.shape
    solution = rule.solve_profile(mechanism, reports.rewards, reports.sizes)
    pi = solution.pi
    scores = mechanism.scores(reports.rewards, reports.sizes)  # (B, m), with the offset
    contributions = reports.sizes[..., None] * reports.rewards  # (B, n, m)
    others = (scores[:, None, :] - contributions).reshape(B * n, m)  # the leave-one-out scores
    first, first_status = payment.others_optimum(mechanism, others)
    own = np.einsum("bnm,bm->bn", contributions, pi).reshape(B * n, 1)
    objective = np.repeat(solution.value, n)[:, None]
    repeated = np.repeat(scores, n, axis=0)[:, None, :]
    payments = payment.group_payments(mechanism, first[:, None], objective, own, repeated, others)
    valuations = np.einsum("bnm,bm->bn", truth.rewards, pi)
    offset = mechanism.score_offset
    converged = solution.status == CONVERGED
    return {
        "pi": pi,
        "valuations": valuations,
        "payments": payments.reshape(B, n),
        "social_welfare": np.einsum("bn,bn->b", truth.sizes, valuations),
        "divergence_values": solution.divergence - (0.0 if offset is None else pi @ offset),
        "residual": rule.profile_residual(mechanism, solution, reports.rewards, reports.sizes),
        "status": np.where(converged[:, None], first_status.reshape(B, n), solution.status[:, None]),
    }


def prompt_outcome(
    game: PromptGame, reported: bool, payment_rule: PaymentRule | None = None
) -> PromptOutcome:
    """The mechanism on the reported (or the truthful) profile of every prompt, batched.

    Prompts that share a mechanism (``pi_init``, outcome costs) form one batch, taken in
    blocks of at most :data:`~rlhf_mech.core._numerics.CHUNK_ELEMENTS` leave-one-out scores.
    """
    P, n = game.n_prompts, game.n_groups
    distributions: list[Array] = [np.empty(0)] * P
    figures = {
        "valuations": np.empty((P, n)),
        "payments": np.empty((P, n)),
        "social_welfare": np.empty(P),
        "divergence_values": np.empty(P),
        "residual": np.empty(P),
        "status": np.empty((P, n), dtype=int),
    }
    for batch in _batches(game):
        mechanism = game.games[batch[0]].mechanism
        if payment_rule is not None:
            mechanism = replace(mechanism, payment_rule=payment_rule)
        step = rows_per_chunk(n * mechanism.n_outcomes)
        for start in range(0, batch.size, step):
            rows = batch[start : start + step]
            games = [game.games[x] for x in rows]
            truth = _stack(games, "truth")
            done = _batch_figures(mechanism, truth, _stack(games, "reports") if reported else truth)
            for key, values in figures.items():
                values[rows] = done[key]
            for k, x in enumerate(rows):
                distributions[x] = done["pi"][k]
    return PromptOutcome(
        weights=game.weights,
        sizes=game.games[0].truth.sizes,
        distributions=tuple(distributions),
        prompt_valuations=figures["valuations"],
        prompt_payments=figures["payments"],
        prompt_social_welfare=figures["social_welfare"],
        prompt_divergence_values=figures["divergence_values"],
        prompt_kkt_residual=figures["residual"],
        status=figures["status"],
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
