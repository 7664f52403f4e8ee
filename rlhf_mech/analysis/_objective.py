r"""The best-response search's objective: utility gains (and their gradients) of batches of one
group's reports, and the results a search returns.

Every evaluation is one call of the mechanism kernel's deviation batch
(:meth:`~rlhf_mech.core.Deviation.contribution_outcomes`); see :mod:`rlhf_mech.analysis._search`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlhf_mech.analysis._space import ReportSpace
from rlhf_mech.core import NONE, Deviation, Game, Mechanism, Profile, deviation, solve_sw_max
from rlhf_mech.core._internal import CONVERGED, MAXMIN_MEASURES, jacobian_weights, rows_per_chunk

Array = np.ndarray

#: ``status`` values of :class:`SearchResult` (scipy's ``flag_map`` idea).
SEARCH_CONVERGED = 0
BUDGET_EXHAUSTED = 1
#: Evaluations a point of :meth:`ReportObjective.pieces` counts as (its solve, and the runs of
#: its differences).
PIECE_EVALUATIONS = 2
#: Points of MaxMin's pieces (:meth:`ReportObjective.tie_piece`: one SW-Max solve) that count
#: as one evaluation (a MaxMin solve: 5-28x the time of a point, measured on the games of
#: ``benchmarks/search_power.py``).
TIE_POINTS_PER_EVALUATION = 4
SEARCH_STATUS_MESSAGES = {
    SEARCH_CONVERGED: "the polish of the best starts reached a local optimum in both spaces",
    BUDGET_EXHAUSTED: "the evaluation budget ran out before the polish of the best start converged",
}


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Misreport:
    """One report of one group and what it gains over truthful reporting.

    Attributes
    ----------
    reward : (m,) array, the reported reward model (valid for the game's normalisation).
    size : the reported size.
    gain : utility of this report minus utility of the truthful report.
    found_by : ``"vertex"``, ``"face"``, ``"size"``, ``"mixing"``, ``"polarise"`` (the
        families of :data:`~rlhf_mech.analysis.FAMILIES`), ``"random"``, ``"local"`` (the
        polish) or ``"exact"`` (the argmax rule's linear programmes).
    preference : (k,) array, the reported preference over the base reward models of a game
        whose groups report in a basis (``reward = preference @ scores.T``); ``None`` otherwise.
    """

    reward: Array
    size: float
    gain: float
    found_by: str
    preference: Array | None = None

    @property
    def theta(self) -> Array:
        """The report's parameters in its space (the reward, or the preference)."""
        return self.reward if self.preference is None else self.preference


@dataclass(frozen=True)
class PromptGains:
    """A group's best responses on each prompt (the terms of the whole game's gain).

    Attributes
    ----------
    weights : (P,) the prompt weights ``q_x``.
    whole : (P,) the best gain found on each prompt over every report (sizes up to ``W``).
    at_true_size : (P,) the best at the true size (reward misreports only).
    """

    weights: Array
    whole: Array
    at_true_size: Array

    @property
    def largest_share(self) -> float:
        """The largest single prompt's contribution ``q_x g_x`` to the whole game's gain."""
        return float(np.max(self.weights * self.whole))


@dataclass(frozen=True)
class SearchResult:
    """The best-response search of one group under one payment rule.

    The gains are lower bounds on the group's true best-response gain over the reports the
    space admits (exact for the argmax rule of candidate-model games).

    Attributes
    ----------
    payment_rule : the rule the utilities were computed under.
    best : the report with the largest gain found (any size in ``[1, W]``).
    best_at_true_size : the best report whose size is the true size (reward misreports only,
        the strategies of Theorems 4.2 and 4.12).
    evaluations : reports evaluated (each one training solve).
    min_payment : smallest payment ``p_i`` over the evaluated reports (0 for rule ``none``).
    status : :data:`SEARCH_CONVERGED` or :data:`BUDGET_EXHAUSTED`.
    priced : reports whose payment ``min_payment`` is taken over.
    stalled : evaluated reports whose solve did not converge (their gains are not trusted:
        they are left out of ``best``).
    exact : whether the gains are exact (the argmax rule), not lower bounds.
    prompts : for a game of many prompts, each prompt's best gains (whose weighted sum the
        whole game's are); ``None`` otherwise.
    """

    payment_rule: str
    best: Misreport
    best_at_true_size: Misreport
    evaluations: int
    min_payment: float
    status: int
    priced: int = 0
    stalled: int = 0
    exact: bool = False
    prompts: PromptGains | None = None

    @property
    def message(self) -> str:
        return SEARCH_STATUS_MESSAGES[self.status]

    @property
    def converged(self) -> bool:
        return self.status == SEARCH_CONVERGED


# --------------------------------------------------------------------------------------------
# The objective: utility gains (and their gradients) of batches of contributions
# --------------------------------------------------------------------------------------------


class ReportObjective:
    """Gains, gradients and payments of batches of one group's reports, the others fixed.

    Every evaluation is one call of the mechanism kernel
    (:meth:`~rlhf_mech.core.Deviation.contribution_outcomes`) over ``G`` games: one (the
    others' reports), or the noise samples of Theorem 4.12 with ``extra`` the own noise
    ``w_i eps_s`` added to the contribution in sample ``s``. The gain of a report is its mean
    utility over the games less the truthful report's, evaluated the same way (so truth
    gains exactly 0).

    Parameters
    ----------
    group : the kernel's deviation of the group (``G`` games).
    space : the group's report space.
    truth : (d,) the truthful contribution ``w_i theta_i``.
    extra : (G, m) added to every contribution, or ``None``.
    """

    def __init__(
        self, group: Deviation, space: ReportSpace, truth: Array, extra: Array | None = None
    ) -> None:
        self.group, self.space, self.truth, self.extra = group, space, truth, extra
        mechanism = group.mechanism
        self.additive = mechanism.training_rule.additive
        if extra is not None and not self.additive:
            raise ValueError("noise on the contributions needs an additive training rule")
        self.differentiable = self.additive and group.differentiable
        # the training rule is smooth even where the payment has no gradient (Heuristic 1)
        self.smooth = mechanism.training_rule.smooth(mechanism)
        #: for a training rule that is not additive, the size every point is reported at
        #: (``None``: the size the point needs, :meth:`ReportSpace.report`); an additive rule
        #: sees only the contribution, whatever the size
        self.fixed_size: float | None = None
        self.evaluations = 0
        self.tie_points = 0
        self.priced = 0
        self.stalled = 0
        self.min_payment = np.inf
        self.truth_utility = float(self._utilities(truth[None], gradients=False)[0][0])
        self.evaluations = self.priced = 0

    def __call__(self, z: Array, gradients: bool = False) -> tuple[Array, Array | None]:
        """``(gains (B,), gradients (B, d) or None)`` of the contributions ``z`` (B, d).

        Reports whose solve did not converge get gain ``-inf`` (they cannot be trusted) and
        are counted in :attr:`stalled`.
        """
        utilities, slopes, _ = self._utilities(np.atleast_2d(z), gradients and self.differentiable)
        return utilities - self.truth_utility, slopes

    def probe(self, z: Array) -> tuple[Array, Array, Array | None]:
        """``(gains (B,), gradients (B, d), support gaps (B, d) or None)`` of the contributions
        ``z``: the gaps (:attr:`~rlhf_mech.core.DeviationOutcomes.support_gaps`) are how far
        each coordinate must rise for its outcome to enter the support, where coordinates are
        outcomes (no preference basis) and there is one game. Needs :attr:`differentiable`."""
        utilities, slopes, gaps = self._utilities(np.atleast_2d(z), True)
        assert slopes is not None
        return utilities - self.truth_utility, slopes, gaps

    @property
    def piecewise(self) -> bool:
        """Whether the utility is the minimum of smooth pieces (:meth:`pieces`): a payment
        whose first term is a maximum over reference models (Heuristic 1), a training rule
        with exact gradients, one game without noise."""
        return (
            self.group.mechanism.payment_rule.checkpoint_values is not None
            and self.additive
            and self.smooth
            and self.group.games == 1
            and self.extra is None
        )

    def pieces(self, z: Array, step: float) -> tuple[Array, Array, Array]:
        r"""``(gains (B,), pieces (B, K), jacobians (B, K, d))`` of the contributions ``z``
        under a payment with reference models (:attr:`piecewise`; section 4.4, Heuristic 1).

        With ``psi`` the fine-tuned model, ``A = ASW_{-i}`` and ``a_t = A(theta_t)`` at the
        reference models, the payment is ``max(max_t a_t, A(psi)) - A(psi)``, so the utility
        is the minimum of the smooth pieces ``u_psi = w_i <psi, rm_i>`` (no payment) and
        ``u_t = w_i <psi, rm_i> + A(psi) - a_t``; each is returned less the truthful utility,
        and the gain is their minimum. The gradients of ``w_i <psi, rm_i>`` and of
        ``A(psi)`` are exact (the training rule's ``sensitivity`` with the cotangents
        ``w_i rm_i`` and ``-c``: ``dA(psi)/dc = -J^T c`` by the envelope theorem); those of
        ``a_t``, which move with the run, are forward differences of step ``step``: one run per
        coordinate, batched, which takes about one evaluation's time (a run is cheaper than a
        solve; 1.2-1.8x in all, measured on the games of ``benchmarks/search_power.py``), so
        that a point counts as :data:`PIECE_EVALUATIONS` evaluations. A piece is smooth
        across the kinks of the minimum, so its differences mean what they say there.
        """
        mechanism = self.group.mechanism
        functions = mechanism.training_rule.scores
        values = mechanism.payment_rule.checkpoint_values
        assert functions is not None and values is not None  # :attr:`piecewise`
        z = np.atleast_2d(z)
        b, d = z.shape
        c = self.space.contributions(z)
        others = self.group.others_scores
        scores = others + c
        solution = functions.solve(mechanism, scores)
        own = self.group.size[0] * self.group.own[0]
        valued = np.einsum("bm,bm->b", solution.pi, np.broadcast_to(own, c.shape))
        at_psi = solution.value - np.einsum("bm,bm->b", solution.pi, c)
        at_models = values(mechanism, scores[None], others)[0]  # (B, C)
        steps = step * np.eye(d)
        shifted = (z[:, None, :] + steps[None]).reshape(-1, d)
        moved = values(mechanism, (others + self.space.contributions(shifted))[None], others)[0]
        model_slopes = (moved.reshape(b, d, -1) - at_models[:, None, :]) / step  # (B, d, C)
        to_coordinates = (lambda g: g) if self.space.basis is None else (lambda g: g @ self.space.basis.T)
        own_slope = to_coordinates(
            functions.sensitivity(mechanism, solution, scores, np.broadcast_to(own, c.shape))
        )
        psi_slope = -to_coordinates(functions.sensitivity(mechanism, solution, scores, c))
        pieces = np.concatenate([valued[:, None], (valued + at_psi)[:, None] - at_models], axis=1)
        jacobians = np.concatenate(
            [own_slope[:, None, :], (own_slope + psi_slope)[:, None, :] - np.swapaxes(model_slopes, 1, 2)],
            axis=1,
        )
        bad = solution.status != CONVERGED
        self.stalled += int(bad.sum())
        pieces = np.where(bad[:, None], -np.inf, pieces - self.truth_utility)
        self.evaluations += b * PIECE_EVALUATIONS
        self.priced += b
        payments = np.where(bad, np.inf, pieces[:, 0] - pieces.min(axis=1))
        self.min_payment = min(self.min_payment, float(payments.min()))
        return pieces.min(axis=1), pieces, jacobians

    @property
    def tied(self) -> bool:
        """Whether the utility is smooth on each set of groups tied at the minimum
        (:meth:`tie_piece`): MaxMin (either ``over``) without payment, a divergence with an
        inverse of ``g'``, one game without noise."""
        mechanism = self.group.mechanism
        return (
            mechanism.training_rule.name == "maxmin"
            and mechanism.payment_rule.name == NONE.name
            and self.smooth
            and self.group.games == 1
            and self.extra is None
        )

    def _measures(self, z: Array) -> Array:
        """(B, n, m) MaxMin's measures ``rho_j`` of the profiles with the group's reports of
        contributions ``z`` (B, d) inserted among the others' (:attr:`tied`)."""
        g, i = self.group, self.group.group
        theta, sizes = self.space.report(z, self.fixed_size)
        rewards = self.space.rewards(theta)
        b, (k, m) = len(z), g.others_rewards.shape[1:]
        others_r = np.broadcast_to(g.others_rewards[0], (b, k, m))
        others_s = np.broadcast_to(g.others_sizes[0], (b, k))
        full_r = np.concatenate([others_r[:, :i], rewards[:, None], others_r[:, i:]], axis=1)
        full_s = np.concatenate([others_s[:, :i], sizes[:, None], others_s[:, i:]], axis=1)
        over = g.mechanism.training_rule.setting("over")
        return MAXMIN_MEASURES[over](full_r, full_s)

    def tie_weights(self, z: Array) -> tuple[Array, Array]:
        """``(weights y (n,), values rho_j(pi) (n,))`` of the contribution ``z`` (one row) under
        MaxMin (:attr:`tied`): the solve's optimal dual weights and the groups' values, which
        say the groups at the minimum. One evaluation."""
        mechanism, g, i = self.group.mechanism, self.group, self.group.group
        theta, sizes = self.space.report(z[None], self.fixed_size)
        rewards = np.insert(g.others_rewards[0], i, self.space.rewards(theta)[0], axis=0)
        solution = mechanism.training_rule.solve(
            mechanism, rewards[None], np.insert(g.others_sizes[0], i, sizes)[None]
        )
        assert solution.weights is not None  # a fair rule's solve carries its dual weights
        self.evaluations += 1
        return solution.weights[0], self._measures(z[None])[0] @ solution.pi[0]

    def tie_piece(self, x: Array, step: float) -> tuple[float, Array, Array, Array]:
        r"""MaxMin's utility on a piece (:attr:`tied`; appendix E): ``(gain, values (n,),
        gain's gradient (d + n,), values' Jacobian (n, d + n))`` at ``x = (z, y)``.

        MaxMin's model is ``pi = pi*(s)``, the SW-Max solution (eq. (OPT)) at the scores
        ``s = sum_j y_j rho_j + offset``, with weights ``y`` on the simplex that are positive
        only on the groups whose values ``v_j = <pi, rho_j>`` are the minimum (the minimax
        theorem). With the group's report ``z`` and the weights ``y`` as free variables, the
        gain ``w_i <pi, rm_i>`` and the values are smooth; the constraints that the groups of
        a set ``A`` tie (``v_j = v_k``, ``j, k in A``), the others lie above and ``y`` is 0
        off ``A`` make ``pi`` MaxMin's model, so that the kink where ``A`` changes is a
        constraint's edge, not a crease in the objective. The gradients are exact through
        ``ds`` (:func:`~rlhf_mech.core.sensitivity`'s ``d pi / d s = diag(a) - a a^T / sum a``)
        and the measure ``rho_i(z)``'s Jacobian is a forward difference of step ``step`` (the
        report map; no solve). An SW-Max solve, cheaper than MaxMin's: :data:`TIE_POINTS_PER_EVALUATION`
        points count as one evaluation."""
        mechanism = self.group.mechanism
        i, n = self.group.group, x.size - self.space.dimension
        z, y = x[:-n], x[-n:]
        d = z.size
        rho_all = self._measures(np.vstack([z, z + step * np.eye(d)]))  # (d + 1, n, m)
        rho = rho_all[0]
        jacobian = (rho_all[1:, i] - rho[i]) / step  # (d, m): d rho_i / dz
        offset = mechanism.score_offset
        scores = (y @ rho)[None] + (0.0 if offset is None else offset)
        solution = solve_sw_max(scores, mechanism.pi_init, mechanism.divergence, mechanism.lam)
        pi = solution.pi[0]
        a = jacobian_weights(solution, scores, mechanism.pi_init, mechanism.divergence, mechanism.lam)[0]
        cotangents = np.vstack([self.group.size[0] * self.group.own[0], rho])  # (n + 1, m)
        total = a.sum()
        slopes = a * (cotangents - (cotangents @ a)[:, None] / (total if total > 0 else 1.0))
        dz = y[i] * slopes @ jacobian.T
        dz[1 + i] += jacobian @ pi  # v_i's measure moves with the report too
        jac = np.hstack([dz, slopes @ rho.T])
        values = cotangents @ pi
        self.tie_points += 1
        self.evaluations += int(self.tie_points % TIE_POINTS_PER_EVALUATION == 0)
        bad = solution.status[0] != CONVERGED
        self.stalled += int(bad)
        gain = -np.inf if bad else float(values[0] - self.truth_utility)
        return gain, values[1:], jac[0], jac[1:]

    def _utilities(self, z: Array, gradients: bool) -> tuple[Array, Array | None, Array | None]:
        c = self.space.contributions(z)  # (B, m)
        games = self.group.games
        step = max(1, rows_per_chunk(c.shape[-1]) // games)
        utilities = np.empty(len(c))
        slopes = np.empty((len(c), z.shape[-1])) if gradients else None
        outcome_coordinates = gradients and self.space.basis is None and games == 1
        gaps = np.empty((len(c), z.shape[-1])) if outcome_coordinates else None
        for start in range(0, len(c), step):
            block = slice(start, min(len(c), start + step))
            if self.additive:
                batch = np.broadcast_to(c[block], (games, *c[block].shape))
                if self.extra is not None:
                    batch = batch + self.extra[:, None, :]
                out = self.group.contribution_outcomes(batch, gradients=gradients, keep_distributions=False)
            else:
                theta, sizes = self.space.report(z[block], self.fixed_size)
                rewards = np.broadcast_to(self.space.rewards(theta), (games, len(theta), c.shape[-1]))
                out = self.group.outcomes(
                    rewards, np.broadcast_to(sizes, (games, len(sizes))), keep_distributions=False
                )
            utility = out.utilities.mean(axis=0)
            bad = np.any(out.status != CONVERGED, axis=0)
            self.stalled += int(bad.sum())
            utilities[block] = np.where(bad, -np.inf, utility)
            self.min_payment = min(self.min_payment, float(out.payments.min()))
            if slopes is not None:
                assert out.gradients is not None
                g = out.gradients.mean(axis=0)
                slopes[block] = g if self.space.basis is None else g @ self.space.basis.T
            if gaps is not None:
                assert out.support_gaps is not None
                gaps[block] = out.support_gaps[0]
        self.evaluations += len(c)
        self.priced += len(c)
        return utilities, slopes, gaps

    def misreport(self, z: Array, gain: float, found_by: str, size: float | None = None) -> Misreport:
        """The :class:`Misreport` of the contribution ``z`` (one row)."""
        theta, sizes = self.space.report(z[None], size)
        reward = self.space.rewards(theta)[0]
        preference = theta[0] if self.space.basis is not None else None
        return Misreport(reward, float(sizes[0]), float(gain), found_by, preference)


def group_objective(
    game: Game, i: int, mechanism: Mechanism | None = None, others: Profile | None = None
) -> ReportObjective:
    """The :class:`ReportObjective` of group ``i`` under ``mechanism`` (default the game's),
    the others reporting ``others`` (default truthfully)."""
    mechanism = mechanism or game.mechanism
    space = ReportSpace.of(game)
    truth_z = float(game.truth.sizes[i]) * space.truth(game, i)
    return ReportObjective(deviation(mechanism, game.truth, others or game.truth, i), space, truth_z)
