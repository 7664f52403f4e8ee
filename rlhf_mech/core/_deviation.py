r"""One group's deviations, the others' reports fixed: the kernel's batch of one group's reports.

A :class:`Deviation` holds what does not depend on group ``i``'s report (the others' scores,
the first term of the group's payment, eq. (1)); :meth:`Deviation.outcomes` evaluates any
batch of the group's reports in ``G`` games (the others' profiles, or noise samples) with
one training solve per report and the payment rule's ``group_payments``, and forms the
figures with the profile kernel's :func:`~rlhf_mech.core._outcomes.figures`. Sweeps,
best-response searches, noisy searches and implementability tests are batches of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rlhf_mech.core._mechanism import Mechanism, Profile, weighted_rewards
from rlhf_mech.core._numerics import CHUNK_ELEMENTS, rows_per_chunk
from rlhf_mech.core._outcomes import figures
from rlhf_mech.core._solver import SolveResult

Array = np.ndarray
#: ``(rows done, rows in all)``, called after each block of a batch.
ProgressCallback = Callable[[int, int], None]

#: Rows per block of a deviation batch: 2^17 values (1 MiB) stay in cache through the
#: solver's passes, which makes a block ~1.6x faster per value than one of CHUNK_ELEMENTS =
#: 2^22 (measured on a 2-core box, m = 10^4); both bound the temporaries.
BLOCK_ELEMENTS = 1 << 17


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
    asw : (G, P) ``social_welfare - divergence_value``: the affine social welfare on the true
        types at each report's fine-tuned model.
    divergence_value : (G, P) ``D_f(pi || pi_init)`` less ``<pi, offset>`` there.
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
    asw: Array
    divergence_value: Array
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

    def games_at(self, index: Array) -> Deviation:
        """The same deviation in the games ``index`` only (e.g. the prompts whose searches
        still run), each with its own ``pi_init`` where the games have their own."""
        return Deviation(
            mechanism=self.mechanism.rows(index),
            group=self.group,
            own=self.own[index],
            size=self.size[index],
            welfare=self.welfare[index],
            others_scores=self.others_scores[index],
            first=self.first[index],
            first_status=self.first_status[index],
            others_rewards=self.others_rewards[index],
            others_sizes=self.others_sizes[index],
        )

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
        names = ("values", "valuations", "group_valuations", "payments", "utilities", "social_welfare")
        out = {name: np.empty(shape) for name in (*names, "asw", "divergence_value")}
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
            # each game's pi_init for its points, where the games have their own (prompts)
            rows = mechanism.rows(np.repeat(np.arange(gs.start, gs.stop), block_shape[1]))
            if profiles_of is None:
                solution = rule.scores.solve(rows, scores)  # type: ignore[union-attr]
            else:
                solution = rule.solve(rows, *profiles_of(gs, ps))
            pi = solution.pi.reshape(*block_shape, m)
            if distributions is not None:
                distributions[gs, ps] = pi
            objective = solution.value.reshape(block_shape)
            measured = np.matmul(pi, measures[gs])
            payments = mechanism.payment_rule.group_payments(
                rows,
                self.first[gs, None],
                objective,
                own_of(gs, ps, pi),
                scores.reshape(*block_shape, m),
                self.others_scores[gs],
            )
            found = figures(
                rows,
                solution,
                measured[..., 0].reshape(-1, 1),
                np.broadcast_to(self.size[gs, None], block_shape).reshape(-1, 1),
                payments.reshape(-1, 1),
                measured[..., 1].reshape(-1),
                np.zeros(count),
                np.broadcast_to(self.first_status[gs, None], block_shape).reshape(-1, 1),
            )
            out["values"][gs, ps] = objective
            for name in names[1:]:
                out[name][gs, ps] = np.reshape(getattr(found, name), block_shape)
            out["asw"][gs, ps] = np.reshape(found.asw, block_shape)
            out["divergence_value"][gs, ps] = np.reshape(found.divergence_value, block_shape)
            status[gs, ps] = found.status.reshape(block_shape)
            if slopes is not None and contribution_of is not None:
                slopes[gs, ps], gaps[gs, ps] = self._slopes(
                    rows, solution, scores, contribution_of(gs, ps), gs
                )  # type: ignore[index]
            done += count
            if on_progress is not None:
                on_progress(done, games * points)
        return DeviationOutcomes(
            distributions=distributions,
            leave_one_out_values=self.first,
            status=status,
            gradients=slopes,
            support_gaps=gaps,
            **out,
        )

    def _slopes(
        self, mechanism: Mechanism, solution: SolveResult, scores: Array, reported: Array, gs: slice
    ) -> tuple[Array, Array]:
        """``d u_i / d c`` and the support gaps at a block's points (exact: the training rule's
        ``sensitivity`` applied to the payment rule's ``utility_gradient``); ``mechanism``: the
        block's rows of the deviation's."""
        functions = mechanism.training_rule.scores
        gradient = mechanism.payment_rule.utility_gradient
        assert functions is not None and gradient is not None  # checked by contribution_outcomes
        m = scores.shape[-1]
        true_term = (self.size[gs, None] * self.own[gs])[:, None, :]
        cotangent = np.broadcast_to(gradient(true_term, reported), reported.shape).reshape(-1, m)
        slopes = functions.sensitivity(mechanism, solution, scores, cotangent).reshape(reported.shape)
        gaps = functions.support_gaps(mechanism, solution, scores).reshape(reported.shape)
        return slopes, gaps


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
