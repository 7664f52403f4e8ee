r"""Which mechanism should a platform run? A grid of mechanisms on one game (issue 24).

A mechanism is a training rule and a payment rule with their parameters (section 3). For every
mechanism of a grid (by default every registered pair that can form one mechanism on the game,
:func:`mechanism_grid`) and the game's *true* types, :func:`compare` reports

* welfare: ``SW = sum_i w_i v_i`` and ``ASW = SW - D_f`` at truthful reports (Definition 4.1),
  and the lowest group utility ``min_i u_i`` (fairness);
* revenue: ``sum_i p_i`` at truth, and whether the platform runs a deficit (``< 0``);
* manipulability: each group's largest utility gain over truth that the audit's best-response
  search finds (:func:`~rlhf_mech.analysis.search_misreports`; over many prompts
  :func:`~rlhf_mech.analysis.search_prompts`), the others truthful, also as a share of its
  truthful utility; a lower bound on the mechanism's ``epsilon`` of incentive compatibility;
* IR (Definition 3.3) at truth, and an estimate of the share of negative payments over the
  report space: ``samples`` uniform random valid reports per group (the others truthful),
  with its binomial standard error;
* the training cost (section 4.4): full runs and early-stopped runs, from the payment rule's
  :class:`~rlhf_mech.core.TrainingCost` (``p^AFF``: ``n + 1`` full runs; Heuristic 1: one;
  Heuristic 2: one and ``n`` early-stopped runs);
* the Pareto front over (largest gain, full runs, early-stopped runs, -SW, -lowest utility).

Beside the grid, for every training rule of a game of one prompt, :func:`compare` asks which
payments would make it DSIC on a random type set of each group
(:func:`~rlhf_mech.analysis.implementability`) and gives the cheapest and the highest DSIC, IR
and non-negative ones (:func:`~rlhf_mech.analysis.least_cost_payments`) beside ``p^AFF``.

Every group's search and sample use one seed per group whatever the mechanism (common random
numbers): differences between mechanisms are not differences of luck.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from threadpoolctl import threadpool_limits

from rlhf_mech.analysis._audit import GameAudit
from rlhf_mech.analysis._implementability import implementability, type_set
from rlhf_mech.analysis._least_cost import LeastCostPayments, least_cost_payments
from rlhf_mech.analysis._objective import SearchResult
from rlhf_mech.analysis._prompt_search import search_prompts
from rlhf_mech.analysis._search import evaluations_for, search_misreports
from rlhf_mech.analysis._space import size_bound
from rlhf_mech.core import (
    AFFINE_MAXIMIZER,
    ALL_PAYMENT_RULES,
    ALL_TRAINING_RULES,
    NONE,
    Game,
    PaymentRule,
    PromptGame,
    TrainingRule,
    deviation,
)
from rlhf_mech.core._internal import prompt_rule_conflict, rule_conflict

Array = np.ndarray

#: Default random reports per group for the share of negative payments.
DEFAULT_SAMPLES = 64
#: Default random reward points per group of the least-cost type sets (each at two sizes).
DEFAULT_TYPE_POINTS = 24


@dataclass(frozen=True)
class CompareOptions:
    """How hard to look.

    Attributes
    ----------
    budget : report evaluations per group and mechanism (the audit's ``--budget``).
    seed : the seed of every search and sample.
    samples : random reports per group for the share of negative payments.
    type_points : random reward points per group of the least-cost type sets (0: skip).
    tol : tolerance of IR, of a negative payment and of the type-set analysis.
    """

    budget: int = 200
    seed: int = 0
    samples: int = DEFAULT_SAMPLES
    type_points: int = DEFAULT_TYPE_POINTS
    tol: float = 1e-9

    def __post_init__(self) -> None:
        if int(self.budget) != self.budget or self.budget < 10:
            raise ValueError(f"`budget` must be an integer >= 10, got {self.budget!r}")
        for name in ("seed", "samples", "type_points"):
            value = getattr(self, name)
            if int(value) != value or value < 0:
                raise ValueError(f"`{name}` must be an integer >= 0, got {value!r}")
        if not (np.isfinite(self.tol) and self.tol >= 0):
            raise ValueError(f"`tol` must be finite and >= 0, got {self.tol!r}")


@dataclass(frozen=True)
class GroupFigures:
    """One group under one mechanism, at truthful reports.

    Attributes
    ----------
    name : the group; utility, payment : ``u_i`` and ``p_i`` at truth.
    search : the best-response search (its ``best.gain`` is the group's largest gain found).
    negative_share : share of the ``samples`` random reports whose payment is ``< -tol``.
    samples : how many were drawn (0 where the rule never charges).
    """

    name: str
    utility: float
    payment: float
    search: SearchResult
    negative_share: float
    samples: int

    @property
    def gain(self) -> float:
        return float(self.search.best.gain)

    @property
    def gain_share(self) -> float | None:
        """The gain as a share of the truthful utility (``None`` where that is ``<= 0``)."""
        return self.gain / self.utility if self.utility > 0 else None

    @property
    def negative_stderr(self) -> float:
        """The binomial standard error of :attr:`negative_share` (an estimate), at least that
        of one negative payment in ``samples`` (a share of 0 observed is not a certainty)."""
        if self.samples == 0:
            return 0.0
        s = self.negative_share
        return float(np.sqrt(max(s * (1 - s), 0.25 / self.samples) / self.samples))


@dataclass(frozen=True)
class MechanismFigures:
    """One mechanism of the grid on the game.

    Attributes
    ----------
    training, payment : the rules, parameters set.
    social_welfare, asw : at truthful reports.
    groups : per group, in file order.
    full_runs, early_stopped_runs : the training runs the mechanism needs
        (:meth:`~rlhf_mech.core.TrainingCost.runs`).
    early_stopped_steps : the length of an early-stopped run (``steps``), or ``None``.
    gameable : whether some group's search found a gain above ``tol * max(1, |u_i|)``.
    ir : whether every group's truthful utility is ``>= -tol`` (Definition 3.3).
    dsic_payment : a payment rule that a theorem makes DSIC with this training rule
        (Proposition 4.4: ``p^AFF`` for an additive rule), or ``None``.
    pareto : whether no other mechanism of the grid is at least as good in every objective
        and better in one (module docstring).
    """

    training: TrainingRule
    payment: PaymentRule
    social_welfare: float
    asw: float
    groups: tuple[GroupFigures, ...]
    full_runs: int
    early_stopped_runs: int
    early_stopped_steps: int | None
    gameable: bool
    ir: bool
    dsic_payment: PaymentRule | None
    pareto: bool = False

    @property
    def dsic_by_theorem(self) -> bool:
        """Whether a theorem makes the mechanism DSIC (Proposition 4.4, Heuristic 2's run)."""
        return self.payment.dsic and self.training.additive

    @property
    def as_expected(self) -> bool:
        """Whether the search agrees with the theorems: a gain where none makes the mechanism
        DSIC (Theorem 4.2 and section 4.4's Heuristic 1; appendix E for MaxMin and Nash), none
        where one does."""
        return self.gameable != self.dsic_by_theorem

    @property
    def lowest_utility(self) -> float:
        return min(g.utility for g in self.groups)

    @property
    def revenue(self) -> float:
        return float(sum(g.payment for g in self.groups))

    @property
    def max_gain(self) -> tuple[float, str]:
        """The largest gain any group's search found, and that group."""
        worst = max(self.groups, key=lambda g: g.gain)
        return worst.gain, worst.name

    @property
    def total_gain(self) -> float:
        """The sum of the groups' largest gains (each against truthful others)."""
        return float(sum(max(g.gain, 0.0) for g in self.groups))

    @property
    def runs(self) -> int:
        """Every training run, full or early-stopped (a plot's cost axis)."""
        return self.full_runs + self.early_stopped_runs

    @property
    def negative_share(self) -> float:
        """The share of negative payments over every group's random reports."""
        drawn = sum(g.samples for g in self.groups)
        return float(sum(g.negative_share * g.samples for g in self.groups) / drawn) if drawn else 0.0

    def objectives(self) -> Array:
        """What the Pareto front minimises: largest gain, full runs, early-stopped runs, -SW,
        -lowest utility."""
        return np.array(
            [
                max(self.max_gain[0], 0.0),
                self.full_runs,
                self.early_stopped_runs,
                -self.social_welfare,
                -self.lowest_utility,
            ]
        )


@dataclass(frozen=True)
class LeastCostRow:
    """The least-cost analysis of one training rule for one group (a game of one prompt).

    Attributes
    ----------
    training : the training rule; group : the group's name.
    payments : :class:`~rlhf_mech.analysis.LeastCostPayments` (the type set's analysis in
        ``payments.result``).
    affine_maximizer : ``p^AFF`` of the true type for an additive rule, else ``None``.
    """

    training: TrainingRule
    group: str
    payments: LeastCostPayments
    affine_maximizer: float | None


@dataclass(frozen=True)
class Comparison:
    """Every mechanism of the grid on one game (:func:`compare`).

    Attributes
    ----------
    game : the game (its true types are what is compared).
    options : the options used.
    mechanisms : the grid, in order (training rule, then payment rule).
    least_cost : per training rule and group, the extreme DSIC, IR, ``>= 0`` payments on a
        type set (empty for a game of many prompts, or with ``type_points = 0``).
    skipped : ``(training, payment, why)`` of pairs asked for that cannot form a mechanism.
    notes : what the reader should know.
    """

    game: Game | PromptGame
    options: CompareOptions
    mechanisms: tuple[MechanismFigures, ...]
    least_cost: tuple[LeastCostRow, ...]
    skipped: tuple[tuple[str, str, str], ...]
    notes: tuple[str, ...] = ()

    @property
    def pareto(self) -> tuple[MechanismFigures, ...]:
        return tuple(m for m in self.mechanisms if m.pareto)


# --------------------------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------------------------


def _settings(rule: TrainingRule | PaymentRule, grid: dict[str, Sequence[object]]) -> list:
    """``rule`` under every combination of the values ``grid`` gives its parameters; a
    ``choice`` parameter not in ``grid`` takes each of its choices (MaxMin ``over``), others
    keep the value set on ``rule`` (or the default)."""
    axes: dict[str, Sequence[object]] = {}
    for p in rule.schema:
        if p.name in grid:
            axes[p.name] = grid[p.name]
        elif p.kind == "choice" and p.name not in dict(rule.parameters):
            axes[p.name] = p.choices
    if not axes:
        return [rule]
    combinations = itertools.product(*axes.values())
    return [rule.with_parameters(**dict(zip(axes, values, strict=True))) for values in combinations]


def mechanism_grid(
    game: Game | PromptGame,
    training: Sequence[TrainingRule] | None = None,
    payment: Sequence[PaymentRule] | None = None,
    training_grid: dict[str, Sequence[object]] | None = None,
    payment_grid: dict[str, Sequence[object]] | None = None,
) -> tuple[list[tuple[TrainingRule, PaymentRule]], list[tuple[str, str, str]]]:
    """The mechanisms to compare and the pairs left out (with why).

    Parameters
    ----------
    training, payment : the rules (default: every registered one; the game's own rule
        replaces its registry entry, so its parameters are kept).
    training_grid, payment_grid : parameter name -> values, applied to every rule that has
        the parameter (``steps: [5, 20]``).

    Raises
    ------
    ValueError
        for a value a rule's parameter does not accept.
    """
    own = game.mechanism

    def rules(given: Sequence | None, registry: Sequence, current: TrainingRule | PaymentRule) -> list:
        chosen = list(given) if given is not None else list(registry)
        return [current if r.name == current.name and r.parameters == () else r for r in chosen]

    pairs: list[tuple[TrainingRule, PaymentRule]] = []
    skipped: list[tuple[str, str, str]] = []
    for t_base in rules(training, ALL_TRAINING_RULES, own.training_rule):
        for p_base in rules(payment, ALL_PAYMENT_RULES, own.payment_rule):
            why = rule_conflict(t_base, p_base, own.divergence)
            if not why and isinstance(game, PromptGame):
                why = prompt_rule_conflict(t_base, p_base)
            if why:
                skipped.append((t_base.name, p_base.name, why))
                continue
            for t in _settings(t_base, training_grid or {}):
                pairs.extend((t, p) for p in _settings(p_base, payment_grid or {}))
    return pairs, skipped


# --------------------------------------------------------------------------------------------
# One mechanism
# --------------------------------------------------------------------------------------------


def _negative_share(game: Game | PromptGame, i: int, options: CompareOptions) -> tuple[float, int]:
    """The share of negative payments of group ``i`` over ``options.samples`` uniform random
    valid reports (sizes ``1`` and ``W``, the truth included), the others truthful; over many
    prompts each report is one random reward model per prompt and the payment their
    ``q``-weighted sum."""
    rule = game.mechanism.payment_rule
    if not rule.charges or options.samples == 0:
        return 0.0, 0
    prompts = game.games if isinstance(game, PromptGame) else (game,)
    weights = game.weights if isinstance(game, PromptGame) else np.ones(1)
    total: Array | None = None
    sizes = np.array([1.0, size_bound(game)[0]])
    for q, part in zip(weights, prompts, strict=True):
        points = max(1, options.samples // 2)
        # no graph is built on these types (the cap is implementability's): every draw is kept
        types = type_set(part, i, "random", points, sizes, options.seed + i, max_types=2 * points + 1)
        side = deviation(part.mechanism, part.truth, part.truth, i)
        with np.errstate(all="ignore"):
            out = side.outcomes(types.rewards[None], types.sizes[None], keep_distributions=False)
        payments = out.payments[0]
        total = q * payments if total is None else total + q * payments
    assert total is not None
    return float(np.mean(total < -options.tol)), int(total.size)


def evaluate(game: Game | PromptGame, options: CompareOptions) -> MechanismFigures:
    """One mechanism (the game's own rules) at the game's true types (module docstring)."""
    mechanism = game.mechanism
    payment = mechanism.payment_rule
    solution = game.solve()
    truthful = solution.truthful
    groups: list[GroupFigures] = []
    with threadpool_limits(limits=1, user_api="blas"):  # figures independent of the CPU count
        for i, name in enumerate(game.group_names):
            rng = np.random.default_rng(np.random.SeedSequence(options.seed, spawn_key=(i,)))
            if isinstance(game, PromptGame):
                budget = evaluations_for(options.budget, int(game.outcome_counts.max()))
                search = search_prompts(game, i, payment, budget, rng)
            else:
                budget = evaluations_for(options.budget, game.n_outcomes)
                search = search_misreports(game, i, payment, budget, rng)
            share, drawn = _negative_share(game, i, options)
            groups.append(
                GroupFigures(
                    name=name,
                    utility=float(truthful.utilities[i]),
                    payment=float(truthful.payments[i]),
                    search=search,
                    negative_share=share,
                    samples=drawn,
                )
            )
    full, early = payment.cost.runs(game.n_groups)
    steps = int(payment.setting("steps")) if early else None
    gameable = any(g.gain > options.tol * max(1.0, abs(g.utility)) for g in groups)
    return MechanismFigures(
        training=mechanism.training_rule,
        payment=payment,
        social_welfare=float(truthful.social_welfare),
        asw=float(truthful.asw),
        groups=tuple(groups),
        full_runs=full,
        early_stopped_runs=early,
        early_stopped_steps=steps,
        gameable=gameable,
        ir=all(g.utility >= -options.tol for g in groups),
        dsic_payment=dsic_payment(game),
    )


def dsic_payment(game: Game | PromptGame) -> PaymentRule | None:
    """The first registered payment rule that a theorem makes DSIC, IR-compatible and ``>= 0``
    with the game's training rule (Proposition 4.4: ``p^AFF`` for SW-Max), or ``None`` (no
    theorem gives one: MaxMin and Nash, appendix E)."""
    mechanism = game.mechanism
    for rule in ALL_PAYMENT_RULES:
        if (
            rule.dsic
            and rule.nonnegative
            and not rule_conflict(mechanism.training_rule, rule, mechanism.divergence)
        ):
            return rule
    return None


def pareto_front(points: Array, tol: float = 1e-9) -> Array:
    """Which rows of ``points`` (one per mechanism, objectives to minimise) no other row
    dominates: at most ``tol`` worse in every objective and more than ``tol`` better in one."""
    better_or_equal = np.all(points[:, None, :] <= points[None, :, :] + tol, axis=-1)  # [a, b]: a <= b
    strictly = np.any(points[:, None, :] < points[None, :, :] - tol, axis=-1)
    dominated = np.any(better_or_equal & strictly, axis=0)
    return ~dominated


def _least_cost(game: Game, rules: Sequence[TrainingRule], options: CompareOptions) -> list[LeastCostRow]:
    """Each training rule's extreme DSIC, IR, ``>= 0`` payments for every group on a random
    type set (``type_points`` reward points at the true size and at ``W``)."""
    rows: list[LeastCostRow] = []
    seen: set[tuple[str, tuple]] = set()
    for rule in rules:
        if (rule.name, rule.parameters) in seen:
            continue
        seen.add((rule.name, rule.parameters))
        ruled = game.with_rules(rule, AFFINE_MAXIMIZER if rule.additive else NONE)
        for i, name in enumerate(game.group_names):
            sizes = np.unique([float(game.truth.sizes[i]), size_bound(game)[0]])
            result = implementability(
                ruled,
                i,
                kind="random",
                points=options.type_points,
                sizes=sizes,
                seed=options.seed + i,
                tol=options.tol,
            )
            aff = float(result.aff_payments[0]) if result.aff_payments is not None else None
            rows.append(LeastCostRow(rule, name, least_cost_payments(result), aff))
    return rows


def compare(
    game: Game | PromptGame,
    pairs: Sequence[tuple[TrainingRule, PaymentRule]],
    options: CompareOptions = CompareOptions(),
    skipped: Sequence[tuple[str, str, str]] = (),
) -> Comparison:
    """Evaluate every mechanism of ``pairs`` on ``game``'s true types (module docstring).

    The reports in the file are not used: every figure is at truthful reports, each group's
    search against truthful others.
    """
    truthful = replace(game, reports=game.truth)
    notes: list[str] = []
    if not game.is_truthful:
        notes.append("the reports in the file are not used: every figure is at the true types")
    figures = [evaluate(truthful.with_rules(t, p), options) for t, p in pairs]
    front = pareto_front(np.array([m.objectives() for m in figures])) if figures else np.zeros(0, bool)
    figures = [replace(m, pareto=bool(f)) for m, f in zip(figures, front, strict=True)]
    least: list[LeastCostRow] = []
    if options.type_points and isinstance(truthful, Game):
        least = _least_cost(truthful, [t for t, _ in pairs], options)
    elif options.type_points:
        notes.append("least-cost payments are computed for games of one prompt only")
    return Comparison(
        game=game,
        options=options,
        mechanisms=tuple(figures),
        least_cost=tuple(least),
        skipped=tuple(skipped),
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class AuditVerdict:
    """What an audit means for its game, in the terms of :class:`MechanismFigures`.

    Attributes
    ----------
    gameable : whether some group's search found a gain above ``tol * max(1, |u_i|)``.
    ir : whether every group's truthful utility is ``>= -tol`` (Definition 3.3).
    group, gain : the group with the largest gain found, and that gain.
    share : the gain as a share of the group's truthful utility (``None`` where that is
        ``<= 0``).
    expected : whether that is what the audit expects: the file's ``expect: dsic``, DSIC
        without one (the audit's default).
    fix : a payment rule that a theorem makes DSIC with the game's training rule where the
        game is gameable under another (:func:`dsic_payment`), else ``None``.
    """

    gameable: bool
    group: str
    gain: float
    share: float | None
    expected: bool
    fix: PaymentRule | None


def audit_verdict(audit: GameAudit) -> AuditVerdict:
    """The :class:`AuditVerdict` of one game's audit."""
    game = audit.game
    gain, group = audit.epsilon_ic
    utility = float(audit.truthful.truthful.utilities[game.group_names.index(group)])
    mechanism = game.mechanism
    gameable = gain > audit.options.tol * max(1.0, abs(utility))
    said = game.expect.dsic if game.expect is not None else None
    expected = gameable == (said is False)
    fix = dsic_payment(game)
    return AuditVerdict(
        gameable=gameable,
        group=group,
        gain=gain,
        share=gain / utility if utility > 0 else None,
        expected=expected,
        fix=fix if gameable and fix is not None and fix.name != mechanism.payment_rule.name else None,
    )
