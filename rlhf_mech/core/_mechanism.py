r"""The mechanism as a value, and its kernel: scores, training, payments, outcomes.

A :class:`Mechanism` is what the platform announces (section 3): a training rule (today
SW-Max with its divergence and lambda, Definition 4.1), a payment rule, the initial model
``pi_init`` and the outcome costs that belong to no group. A :class:`Profile` is what the
groups report (or are): reward models and sizes. Every computation of the package goes
through the functions here:

* :meth:`Mechanism.scores`: ``s = sum_i w_i rm_i + offset``, the only place scores are formed;
* :func:`outcome`: one profile of reports measured on the true types (valuations, payments,
  utilities, social welfare, ASW), with the leave-one-out results the payment used;
* :class:`Deviation`: one group's reports in a batch, the others' reports fixed (sweeps,
  best-response searches, noisy searches, batches of games).

Figures of merit are evaluated on the *true* types (section 3): valuation per agent
``v_i = <pi, rm_i>`` (Definition 3.1), group valuation ``w_i v_i``, utility
``u_i = w_i v_i - p_i``, social welfare ``sum_i w_i v_i`` and the affine social welfare
``ASW = SW + <pi, offset> - D_f(pi || pi_init)`` (Definition 4.1). The fine-tuned
distribution and the payments are computed on the *reports*.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from rlhf_mech.core._divergences import Divergence, get_divergence
from rlhf_mech.core._numerics import CHUNK_ELEMENTS, rows_per_chunk
from rlhf_mech.core._payments import (
    AFFINE_MAXIMIZER,
    NONE,
    PaymentResult,
    PaymentRule,
    get_payment_rule,
    leave_one_out_blocks,
)
from rlhf_mech.core._solver import SolveResult
from rlhf_mech.core._status import STATUS_MESSAGES
from rlhf_mech.core._training import SW_MAX, TrainingRule, get_training_rule

Array = np.ndarray
#: ``(rows done, rows in all)``, called after each block of a batch.
ProgressCallback = Callable[[int, int], None]

#: Rows per block of a deviation batch: 2^17 values (1 MiB) stay in cache through the
#: solver's passes, which makes a block ~1.6x faster per value than one of CHUNK_ELEMENTS =
#: 2^22 (measured on a 2-core box, m = 10^4); both bound the temporaries.
BLOCK_ELEMENTS = 1 << 17


@dataclass(frozen=True)
class Profile:
    """A profile of types or of reports (section 3): every group's reward model and size.

    Leading batch axes (a batch of games) are allowed: ``rewards (..., n, m)``, ``sizes (..., n)``.

    Attributes
    ----------
    rewards : (..., n, m) array, the reward models ``rm_i`` (or the reports ``rm~_i``).
    sizes : (..., n) array, the sizes ``w_i`` (or ``w~_i``).
    preferences : (..., n, k) array or ``None``: the same reward models as weights over the
        game's report basis (:class:`~rlhf_mech.core.ReportBasis`), in a game whose groups
        report preferences; ``rewards`` is then ``preferences @ basis.scores``.
    """

    rewards: Array
    sizes: Array
    preferences: Array | None = None

    def __post_init__(self) -> None:
        rewards = np.asarray(self.rewards, dtype=float)
        sizes = np.asarray(self.sizes, dtype=float)
        if rewards.ndim < 2 or sizes.shape != rewards.shape[:-1]:
            raise ValueError(
                f"`rewards` (..., n, m) and `sizes` (..., n) disagree: {rewards.shape} and {sizes.shape}"
            )
        object.__setattr__(self, "rewards", rewards)
        object.__setattr__(self, "sizes", sizes)
        if self.preferences is not None:
            preferences = np.asarray(self.preferences, dtype=float)
            if preferences.shape[:-1] != sizes.shape:
                raise ValueError(
                    f"`preferences` must have shape {(*sizes.shape, 'k')}, got {preferences.shape}"
                )
            object.__setattr__(self, "preferences", preferences)

    @property
    def n_groups(self) -> int:
        return int(self.sizes.shape[-1])

    @property
    def n_outcomes(self) -> int:
        return int(self.rewards.shape[-1])

    def with_report(self, i: int, reward: Array, size: float, preference: Array | None = None) -> Profile:
        """This profile with group ``i``'s reward model and size replaced (one game)."""
        rewards = self.rewards.copy()
        rewards[i] = reward
        sizes = self.sizes.copy()
        sizes[i] = size
        preferences = None
        if self.preferences is not None:
            if preference is None:
                raise ValueError("a profile of preferences needs group i's preference")
            preferences = self.preferences.copy()
            preferences[i] = preference
        return Profile(rewards, sizes, preferences)

    def equals(self, other: Profile) -> bool:
        """Whether both profiles have the same reward models and sizes."""
        return bool(np.array_equal(self.rewards, other.rewards) and np.array_equal(self.sizes, other.sizes))


def weighted_rewards(rewards: Array, sizes: Array) -> Array:
    """``sum_i w_i rm_i`` over the group axis: (..., n, m), (..., n) -> (..., m).

    One game is a matrix-vector product; a batch of games, one per game.
    """
    if sizes.ndim == 1:
        return sizes @ rewards
    return np.matmul(sizes[..., None, :], rewards)[..., 0, :]


def rule_conflict(training: TrainingRule, payment: PaymentRule, divergence: Divergence) -> str:
    """Why the rules cannot form one mechanism, or ``""``: a payment built on eq. (1) needs an
    additive training rule (its ``ASW_-i``, appendix E), and a training rule may take only
    some divergences (Nash: the smooth ones)."""
    if payment.additive_only and not training.additive:
        return (
            f"payment rule {payment.name!r} needs an additive training rule (sw_max: eq. (1)'s "
            f"ASW_-i); training rule {training.name!r} is not additive, use payment 'none'"
        )
    if training.divergences is not None and divergence.name not in training.divergences:
        return (
            f"training rule {training.name!r} takes the divergences "
            f"{', '.join(training.divergences)}, not {divergence.name!r}"
        )
    return ""


@dataclass(frozen=True)
class Mechanism:
    """The mechanism a platform announces (section 3): training rule, payment rule, pi_init.

    Attributes
    ----------
    pi_init : (m,) array, the initial model's distribution (positive, sums to 1).
    divergence : the regulariser ``f = lambda * g`` of the training rule (a
        :class:`~rlhf_mech.core.Divergence`; a registry name is looked up).
    lam : lambda > 0, the strength of the regulariser.
    payment_rule : a :class:`~rlhf_mech.core.PaymentRule` (or its name); by default ``p^AFF``
        for an additive training rule (SW-Max) and ``none`` for the others, where eq. (1)
        does not apply.
    training_rule : a :class:`~rlhf_mech.core.TrainingRule` (or its name), default SW-Max.
    outcome_costs : (m,) array or ``None``; a cost per outcome that the training rule
        subtracts as ``lambda * <pi, cost>`` (a candidate model's measured divergence from the
        initial model, section 5). It belongs to no group: it enters ASW and every ASW_{-i}.
    """

    pi_init: Array
    divergence: Divergence
    lam: float
    payment_rule: PaymentRule = None  # type: ignore[assignment]  # resolved in __post_init__
    training_rule: TrainingRule = SW_MAX
    outcome_costs: Array | None = None

    def __post_init__(self) -> None:
        pi_init = np.asarray(self.pi_init, dtype=float)
        if pi_init.ndim != 1:
            raise ValueError(f"`pi_init` must be a 1-D array, got shape {pi_init.shape}")
        object.__setattr__(self, "pi_init", pi_init)
        object.__setattr__(self, "divergence", get_divergence(self.divergence))
        object.__setattr__(self, "training_rule", get_training_rule(self.training_rule))
        default = AFFINE_MAXIMIZER if self.training_rule.additive else NONE
        object.__setattr__(self, "payment_rule", get_payment_rule(self.payment_rule or default))
        object.__setattr__(self, "lam", float(self.lam))
        conflict = rule_conflict(self.training_rule, self.payment_rule, self.divergence)
        if conflict:
            raise ValueError(conflict)
        if self.outcome_costs is not None:
            costs = np.asarray(self.outcome_costs, dtype=float)
            if costs.shape != pi_init.shape:
                raise ValueError(f"`outcome_costs` must have shape {pi_init.shape}, got {costs.shape}")
            object.__setattr__(self, "outcome_costs", costs)

    @property
    def n_outcomes(self) -> int:
        return int(self.pi_init.shape[0])

    @property
    def score_offset(self) -> Array | None:
        """``-lambda * outcome_costs``: the part of the training objective owned by no group."""
        return None if self.outcome_costs is None else -self.lam * self.outcome_costs

    def scores(self, rewards: Array, sizes: Array) -> Array:
        """``s = sum_i w_i rm_i + offset`` (Definition 4.1): what SW-Max sees of a profile.

        Parameters
        ----------
        rewards : (..., n, m) reported reward models; sizes : (..., n) reported sizes.

        Returns
        -------
        (..., m) array. Leaving a group's rows out gives the scores of its leave-one-out
        problem (eq. 1).
        """
        scores = weighted_rewards(rewards, sizes)
        offset = self.score_offset
        return scores if offset is None else scores + offset

    def with_payment_rule(self, rule: str | PaymentRule | None) -> Mechanism:
        """The same mechanism under another payment rule (``None``: unchanged)."""
        return self if rule is None else replace(self, payment_rule=get_payment_rule(rule))

    def with_training_rule(self, rule: str | TrainingRule | None) -> Mechanism:
        """The same mechanism under another training rule (``None``: unchanged)."""
        return self if rule is None else replace(self, training_rule=get_training_rule(rule))


# --------------------------------------------------------------------------------------------
# One profile
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileOutcome:
    """What one profile of reports yields, measured on the true preferences.

    Attributes
    ----------
    distribution : (m,) array, the fine-tuned distribution ``psi(reports)``.
    valuations : (n,) per-agent valuations ``v_i = <pi, rm_i>`` (true rm).
    group_valuations : (n,) ``w_i v_i`` (true w).
    payments : (n,) payments on the reports.
    utilities : (n,) ``w_i v_i - p_i``.
    social_welfare : ``sum_i w_i v_i``.
    asw : ``social_welfare - divergence_value``.
    divergence_value : the regulariser at ``pi``: ``D_f(pi || pi_init)`` (lambda included)
        minus ``<pi, offset>`` where the mechanism has outcome costs.
    kkt_residual : relative KKT residual of the training solve (the training rule's
        ``kkt_residual``).
    solve : the training rule's result for the reported scores.
    payment : the payment rule's result (the leave-one-out values and their status).
    leave_one_out_choices : (n,) the outcome the training rule selects without each group,
        for a rule that selects one outcome (the argmax rule of candidate-model games);
        ``None`` otherwise.
    """

    distribution: Array
    valuations: Array
    group_valuations: Array
    payments: Array
    utilities: Array
    social_welfare: float
    asw: float
    divergence_value: float
    kkt_residual: float
    solve: SolveResult
    payment: PaymentResult
    leave_one_out_choices: Array | None = None

    @property
    def objective(self) -> float:
        """The training objective at ``pi`` on the reports (the optimal value)."""
        return float(self.solve.value)

    @property
    def chosen(self) -> int:
        """The most likely outcome (for the argmax rule: the selected one; ties to the first)."""
        return int(np.argmax(self.distribution))

    @property
    def converged(self) -> bool:
        """Whether the training solve and every leave-one-out solve of the payment converged."""
        return bool(self.solve.success and self.payment.converged)

    @property
    def status_message(self) -> str:
        """What did not converge, in words (``"converged"`` when everything did)."""
        if self.converged:
            return "converged"
        if not self.solve.success:
            return f"the training solve: {self.solve.message}"
        worst = int(np.max(self.payment.status))
        return f"a leave-one-out solve of the payment: {STATUS_MESSAGES[worst]}"


def outcome(mechanism: Mechanism, truth: Profile, reports: Profile) -> ProfileOutcome:
    """Run the mechanism on a profile of reports and measure it on the true types.

    Parameters
    ----------
    mechanism : the mechanism; truth : the true types; reports : the reports (one game each).
    """
    scores = mechanism.scores(reports.rewards, reports.sizes)
    rule = mechanism.training_rule
    solution = rule.solve_profile(mechanism, reports.rewards, reports.sizes)
    payment = mechanism.payment_rule.profile_payments(mechanism, reports, scores, solution)
    pi = solution.pi
    valuations = truth.rewards @ pi
    group_valuations = truth.sizes * valuations
    social_welfare = float(group_valuations.sum())
    divergence_value = float(solution.divergence)
    offset = mechanism.score_offset
    if offset is not None:
        divergence_value -= float(offset @ pi)
    residual = float(
        np.atleast_1d(rule.profile_residual(mechanism, solution, reports.rewards, reports.sizes))[0]
    )
    return ProfileOutcome(
        distribution=pi,
        valuations=valuations,
        group_valuations=group_valuations,
        payments=payment.payments,
        utilities=group_valuations - payment.payments,
        social_welfare=social_welfare,
        asw=social_welfare - divergence_value,
        divergence_value=divergence_value,
        kkt_residual=residual,
        solve=solution,
        payment=payment,
        leave_one_out_choices=_leave_one_out_choices(mechanism, reports, scores),
    )


def _leave_one_out_choices(mechanism: Mechanism, reports: Profile, scores: Array) -> Array | None:
    """The outcome selected without each group, where the divergence selects one (argmax)."""
    if not mechanism.divergence.point_mass or not mechanism.training_rule.additive:
        return None
    choices = np.empty(reports.n_groups, dtype=int)
    for k, block in leave_one_out_blocks(reports, scores, np.arange(reports.n_groups)):
        # ties go to the first outcome, as in the training rule
        choices[k : k + block.shape[0]] = np.argmax(block, axis=-1)
    return choices


# --------------------------------------------------------------------------------------------
# One group's deviations, the others' reports fixed
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviationOutcomes:
    """Outcomes of ``G`` games x ``P`` reports of one group, the others' reports fixed.

    Attributes
    ----------
    distributions : (G, P, m) fine-tuned distributions, or ``None`` when not kept.
    values : (G, P) optimal training objectives on the reports.
    leave_one_out_values : (G,) the group's first term of eq. (1) (zeros for rule ``none``).
    valuations : (G, P) per-agent valuations ``v_i = <pi, rm_i>`` (true rm_i).
    group_valuations : (G, P) ``w_i v_i`` (true w_i).
    payments : (G, P) ``p_i`` under the payment rule.
    utilities : (G, P) ``w_i v_i - p_i``.
    social_welfare : (G, P) ``sum_j w_j v_j`` (true types).
    status : (G, P) solver status of the point's solve, or of its game's leave-one-out solve
        where that did not converge (:data:`~rlhf_mech.core.CONVERGED` when both did).
    gradients : (G, P, m) ``d u_i / d c``, the utility's gradient in the report's contribution
        ``c = w~ rm~`` (defined up to a constant: adding one to every entry changes nothing),
        or ``None`` when not asked for.
    support_gaps : (G, P, m) how far each outcome's score must rise for it to enter the
        support (the training rule's ``support_gaps``; 0 on it), with the gradients, or ``None``.
    """

    distributions: Array | None
    values: Array
    leave_one_out_values: Array
    valuations: Array
    group_valuations: Array
    payments: Array
    utilities: Array
    social_welfare: Array
    status: Array
    gradients: Array | None = None
    support_gaps: Array | None = None


def _blocks(games: int, points: int, rows: int) -> list[tuple[slice, slice]]:
    """(games, points) slices of at most ``rows`` rows (one game's points, or whole games)."""
    if points >= rows:
        return [
            (slice(g, g + 1), slice(a, min(points, a + rows)))
            for g in range(games)
            for a in range(0, points, rows)
        ]
    per = max(1, rows // points)
    return [(slice(g, min(games, g + per)), slice(0, points)) for g in range(0, games, per)]


@dataclass(frozen=True)
class Deviation:
    """Group ``i``'s side of the mechanism in ``G`` games, the others' reports fixed.

    Built once by :func:`deviation`; :meth:`outcomes` then evaluates any batch of the group's
    reports. The group's first term of eq. (1) is solved once per game here: it does not
    depend on the group's report.

    Attributes
    ----------
    mechanism : the mechanism; group : the deviating group ``i``.
    own : (G, m) the group's true reward model; size : (G,) its true size.
    welfare : (G, m) ``sum_j w_j rm_j`` on the true types (``<pi, welfare>`` is the social
        welfare).
    others_scores : (G, m) the others' reported scores with the offset: the scores of the
        group's leave-one-out problem.
    first : (G,) the group's first term of eq. (1) under the payment rule.
    first_status : (G,) the solver status of ``first``.
    others_rewards, others_sizes : (G, n - 1, m) and (G, n - 1) the others' reports, in group
        order: a training rule that is not additive sees the whole profile.
    """

    mechanism: Mechanism
    group: int
    own: Array
    size: Array
    welfare: Array
    others_scores: Array
    first: Array
    first_status: Array
    others_rewards: Array
    others_sizes: Array

    @property
    def games(self) -> int:
        return int(self.own.shape[0])

    def outcomes(
        self,
        rewards: Array,
        sizes: Array,
        *,
        keep_distributions: bool = True,
        on_progress: ProgressCallback | None = None,
        chunk_elements: int = BLOCK_ELEMENTS,
    ) -> DeviationOutcomes:
        """The outcomes of the group's reports ``(rewards[g, k], sizes[g, k])``.

        Parameters
        ----------
        rewards, sizes : (G, P, m) and (G, P) the group's reports (broadcast views are fine;
            nothing is copied whole).
        keep_distributions : whether to return the (G, P, m) distributions.
        on_progress : called with ``(rows done, rows in all)`` after each block.
        chunk_elements : most values in one block of score rows (at most
            :data:`~rlhf_mech.core._numerics.CHUNK_ELEMENTS`; see :data:`BLOCK_ELEMENTS`).

        Notes
        -----
        An additive training rule (SW-Max) sees the report only through its contribution
        ``w~ rm~`` to the scores (Definition 4.1), so this is :meth:`contribution_outcomes` of
        ``w~ rm~``, formed block by block; any other rule solves the whole profiles, the
        group's report inserted among the others' (blocks ``n`` times smaller).
        """
        rewards = np.asarray(rewards, dtype=float)
        sizes = np.asarray(sizes, dtype=float)
        self._check(rewards.shape, sizes.shape)
        i = self.group

        def profiles(gs: slice, ps: slice) -> tuple[Array, Array]:
            g, p = gs.stop - gs.start, ps.stop - ps.start
            others_r = np.broadcast_to(self.others_rewards[gs, None], (g, p, *self.others_rewards.shape[1:]))
            others_s = np.broadcast_to(self.others_sizes[gs, None], (g, p, self.others_sizes.shape[1]))
            full_r = np.concatenate(
                [others_r[:, :, :i], rewards[gs, ps, None, :], others_r[:, :, i:]], axis=2
            )
            full_s = np.concatenate([others_s[:, :, :i], sizes[gs, ps, None], others_s[:, :, i:]], axis=2)
            return full_r.reshape(g * p, *full_r.shape[2:]), full_s.reshape(g * p, -1)

        def scores(gs: slice, ps: slice, out: Array) -> Array:
            np.multiply(rewards[gs, ps], sizes[gs, ps, None], out=out)
            out += self.others_scores[gs, None, :]
            return out

        def own(gs: slice, ps: slice, pi: Array) -> Array:
            return sizes[gs, ps] * np.einsum("gpm,gpm->gp", pi, rewards[gs, ps])

        rule = self.mechanism.training_rule
        return self._evaluate(
            scores,
            own,
            None,
            sizes.shape,
            keep_distributions,
            on_progress,
            chunk_elements,
            None if rule.additive else profiles,
        )

    def contribution_outcomes(
        self,
        contributions: Array,
        *,
        gradients: bool = False,
        keep_distributions: bool = True,
        on_progress: ProgressCallback | None = None,
        chunk_elements: int = BLOCK_ELEMENTS,
    ) -> DeviationOutcomes:
        """The outcomes of the group's reports given by their contributions ``c = w~ rm~``.

        Parameters
        ----------
        contributions : (G, P, m) what each report adds to the others' scores.
        gradients : also return ``d u_i / d c`` at each point (:attr:`DeviationOutcomes.gradients`;
            needs a differentiable training rule and a payment rule with a ``utility_gradient``).
        keep_distributions, on_progress, chunk_elements : as in :meth:`outcomes`.

        Notes
        -----
        One training solve per block of rows ``others_scores + c``; the payments are the
        payment rule's ``group_payments`` of the training objective and the group's reported
        term ``<pi, c>`` at each point. Equal, up to rounding in the order of the sums, to
        :func:`outcome` at each point. The gradient is the training rule's ``sensitivity``
        applied to the payment rule's ``utility_gradient`` (exact, by implicit
        differentiation of the optimality conditions).
        """
        contributions = np.asarray(contributions, dtype=float)
        self._check(contributions.shape, contributions.shape[:2])
        if not self.mechanism.training_rule.additive:
            raise ValueError(
                f"training rule {self.mechanism.training_rule.name!r} is not additive: it sees "
                "the reports, not their contributions (use outcomes)"
            )
        if gradients and not self.differentiable:
            raise ValueError("this mechanism's utility is not differentiable in the report")

        def scores(gs: slice, ps: slice, out: Array) -> Array:
            return np.add(contributions[gs, ps], self.others_scores[gs, None, :], out=out)

        def own(gs: slice, ps: slice, pi: Array) -> Array:
            return np.einsum("gpm,gpm->gp", pi, contributions[gs, ps])

        def reported(gs: slice, ps: slice) -> Array:
            return contributions[gs, ps]

        shape = contributions.shape[:2]
        return self._evaluate(
            scores,
            own,
            reported if gradients else None,
            shape,
            keep_distributions,
            on_progress,
            chunk_elements,
        )

    @property
    def differentiable(self) -> bool:
        """Whether the group's utility has a gradient in its contribution (exact, see
        :meth:`contribution_outcomes`)."""
        mechanism = self.mechanism
        return (
            mechanism.training_rule.differentiable(mechanism)
            and mechanism.payment_rule.utility_gradient is not None
        )

    def _check(self, rewards_shape: tuple[int, ...], sizes_shape: tuple[int, ...]) -> None:
        games, m = self.own.shape
        points = sizes_shape[1] if len(sizes_shape) == 2 else -1
        if rewards_shape != (games, points, m) or sizes_shape != (games, points):
            raise ValueError(
                f"deviations must have shapes {(games, points, m)} and {(games, points)}, "
                f"got {rewards_shape} and {sizes_shape}"
            )

    def _evaluate(
        self,
        scores_of: Callable[[slice, slice, Array], Array],
        own_of: Callable[[slice, slice, Array], Array],
        contribution_of: Callable[[slice, slice], Array] | None,
        shape: tuple[int, int],
        keep_distributions: bool,
        on_progress: ProgressCallback | None,
        chunk_elements: int,
        profiles_of: Callable[[slice, slice], tuple[Array, Array]] | None = None,
    ) -> DeviationOutcomes:
        """Solve blocks of points; ``scores_of`` fills a block's scores, ``own_of`` gives the
        reported term ``<pi, c>``, ``contribution_of`` (when gradients are wanted) ``c``;
        ``profiles_of`` (a training rule that is not additive) the block's whole profiles
        ``(rewards (B, n, m), sizes (B, n))``, which the rule then solves."""
        mechanism = self.mechanism
        rule = mechanism.training_rule
        games, m = self.own.shape
        points = shape[1]
        # One GEMM per block reads pi once for <pi, rm_i> and <pi, sum_j w_j rm_j>.
        measures = np.stack([self.own, self.welfare], axis=-1)  # (G, m, 2)
        values, valuations, welfare, own, payments = (np.empty(shape) for _ in range(5))
        status = np.empty(shape, dtype=int)
        distributions = np.empty((games, points, m)) if keep_distributions else None
        slopes = np.empty((games, points, m)) if contribution_of is not None else None
        gaps = np.empty((games, points, m)) if contribution_of is not None else None
        rows_per_block = rows_per_chunk(m, min(chunk_elements, CHUNK_ELEMENTS))
        if profiles_of is not None:
            rows_per_block = max(1, rows_per_block // (self.others_sizes.shape[1] + 1))
        buffer = np.empty(min(rows_per_block, games * points) * m)
        done = 0
        for gs, ps in _blocks(games, points, rows_per_block):
            count = (gs.stop - gs.start) * (ps.stop - ps.start)
            block_shape = (gs.stop - gs.start, ps.stop - ps.start)
            scores = scores_of(gs, ps, buffer[: count * m].reshape(*block_shape, m)).reshape(-1, m)
            if profiles_of is None:
                assert rule.solve_scores is not None
                solution = rule.solve_scores(mechanism, scores)
            else:
                solution = rule.solve_profile(mechanism, *profiles_of(gs, ps))
            pi = solution.pi.reshape(*block_shape, m)
            if distributions is not None:
                distributions[gs, ps] = pi
            values[gs, ps] = solution.value.reshape(block_shape)
            status[gs, ps] = solution.status.reshape(block_shape)
            measured = np.matmul(pi, measures[gs])
            valuations[gs, ps] = measured[..., 0]
            welfare[gs, ps] = measured[..., 1]
            own[gs, ps] = own_of(gs, ps, pi)
            payments[gs, ps] = mechanism.payment_rule.group_payments(
                mechanism,
                self.first[gs, None],
                values[gs, ps],
                own[gs, ps],
                scores.reshape(*block_shape, m),
                self.others_scores[gs],
            )
            if slopes is not None and contribution_of is not None:
                assert mechanism.payment_rule.utility_gradient is not None
                assert rule.sensitivity is not None and rule.support_gaps is not None
                reported = contribution_of(gs, ps)
                true_term = (self.size[gs, None] * self.own[gs])[:, None, :]
                cotangent = mechanism.payment_rule.utility_gradient(true_term, reported)
                cotangent = np.broadcast_to(cotangent, reported.shape).reshape(-1, m)
                slopes[gs, ps] = rule.sensitivity(mechanism, solution, scores, cotangent).reshape(
                    *block_shape, m
                )
                assert gaps is not None
                gaps[gs, ps] = rule.support_gaps(mechanism, solution, scores).reshape(*block_shape, m)
            done += count
            if on_progress is not None:
                on_progress(done, games * points)
        group_valuations = self.size[:, None] * valuations
        return DeviationOutcomes(
            distributions=distributions,
            values=values,
            leave_one_out_values=self.first,
            valuations=valuations,
            group_valuations=group_valuations,
            payments=payments,
            utilities=group_valuations - payments,
            social_welfare=welfare,
            status=np.maximum(status, self.first_status[:, None]),
            gradients=slopes,
            support_gaps=gaps,
        )


def deviation(mechanism: Mechanism, truth: Profile, reports: Profile, group: int) -> Deviation:
    """Prepare group ``group``'s deviations with the others' reports fixed.

    Parameters
    ----------
    mechanism : the mechanism.
    truth : true types, (G, n, m) and (G, n) for a batch of G games or one game.
    reports : the others' reports, shaped like ``truth`` (row ``group`` is ignored).
    group : the deviating group ``i``.
    """
    batched = truth.rewards.ndim == 3
    true_rewards = truth.rewards if batched else truth.rewards[None]
    true_sizes = truth.sizes if batched else truth.sizes[None]
    reported_rewards = reports.rewards if batched else reports.rewards[None]
    reported_sizes = reports.sizes if batched else reports.sizes[None]
    n = true_sizes.shape[1]
    if not 0 <= group < n:
        raise ValueError(f"`group` must be in 0..{n - 1}, got {group}")
    others = np.flatnonzero(np.arange(n) != group)
    others_rewards, others_sizes = reported_rewards[:, others], reported_sizes[:, others]
    others_scores = mechanism.scores(others_rewards, others_sizes)
    first, first_status = mechanism.payment_rule.others_optimum(mechanism, others_scores)
    return Deviation(
        mechanism=mechanism,
        group=group,
        own=true_rewards[:, group],
        size=true_sizes[:, group],
        welfare=weighted_rewards(true_rewards, true_sizes),
        others_scores=others_scores,
        first=first,
        first_status=first_status,
        others_rewards=others_rewards,
        others_sizes=others_sizes,
    )
