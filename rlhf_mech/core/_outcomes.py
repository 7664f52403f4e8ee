r"""The profile kernel: what a profile of reports yields, measured on the true types.

:func:`outcome` is the one place a profile's figures are formed, for one profile or a batch
(leading axes ``(..., n, m)``): the training solve, every group's payment (the payment
rule's general route or its shortcut, :func:`~rlhf_mech.core._payments.profile_payments`),
and the figures of :func:`figures`. Games of many prompts are batches of it; one group's
deviations (:mod:`~rlhf_mech.core._deviation`), whose payments need only that group's
leave-one-out problem, form their figures with the same :func:`figures`.

Figures of merit are evaluated on the *true* types (section 3): valuation per agent
``v_i = <pi, rm_i>`` (Definition 3.1), group valuation ``w_i v_i``, utility
``u_i = w_i v_i - p_i``, social welfare ``sum_i w_i v_i`` and the affine social welfare
``ASW = SW + <pi, offset> - D_f(pi || pi_init)`` (Definition 4.1). The fine-tuned
distribution and the payments are computed on the *reports*.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from rlhf_mech.core._mechanism import Mechanism, Profile
from rlhf_mech.core._payments import PaymentResult, leave_one_out_blocks, profile_payments, row_values
from rlhf_mech.core._solver import SolveResult
from rlhf_mech.core._status import CONVERGED, STATUS_MESSAGES

Array = np.ndarray


@dataclass(frozen=True)
class Figures:
    """What a profile's groups live by, for one profile or a batch (leading axes ``...``).

    Attributes
    ----------
    valuations : (..., n) per-agent valuations ``v_i = <pi, rm_i>`` (true rm).
    group_valuations : (..., n) ``w_i v_i`` (true w).
    payments : (..., n) payments on the reports.
    utilities : (..., n) ``w_i v_i - p_i``.
    social_welfare : (...) ``sum_i w_i v_i``.
    asw : (...) ``social_welfare - divergence_value``.
    divergence_value : (...) the regulariser at ``pi``: ``D_f(pi || pi_init)`` (lambda included)
        minus ``<pi, offset>`` where the mechanism has outcome costs.
    kkt_residual : (...) relative optimality residual of the training solve (the training
        rule's ``residual``).
    status : (..., n) solver status of each group's payment (its leave-one-out problem) or of
        the training solve where that did not converge (:data:`~rlhf_mech.core.CONVERGED`
        where both did).

    One profile's scalars are Python floats.
    """

    valuations: Array
    group_valuations: Array
    payments: Array
    utilities: Array
    social_welfare: Array | float
    asw: Array | float
    divergence_value: Array | float
    kkt_residual: Array | float
    status: Array

    @property
    def converged(self) -> bool:
        """Whether every solve behind the figures converged."""
        return bool(np.all(self.status == CONVERGED))

    def mean(self, weights: Array, sizes: Array) -> Figures:
        """The ``weights``-weighted mean over the first axis (a game of many prompts: the
        prompt distribution ``q``) of groups whose true sizes ``sizes`` are the same on every
        row; the residual and the status are the worst. The identities ``w_i v_i``,
        ``u_i = w_i v_i - p_i`` and ``ASW = SW - D`` hold exactly in the means."""
        return Figures.of(
            valuations=weights @ self.valuations,
            sizes=sizes,
            payments=weights @ self.payments,
            social_welfare=float(weights @ self.social_welfare),
            divergence_value=float(weights @ self.divergence_value),
            kkt_residual=float(np.max(self.kkt_residual)),
            status=np.max(self.status, axis=0),
        )

    @classmethod
    def of(
        cls,
        *,
        valuations: Array,
        sizes: Array,
        payments: Array,
        social_welfare: Array | float,
        divergence_value: Array | float,
        kkt_residual: Array | float,
        status: Array,
    ) -> Figures:
        """The figures from the measured parts; the identities ``w_i v_i``,
        ``u_i = w_i v_i - p_i`` and ``ASW = SW - D`` are formed here and nowhere else."""
        group_valuations = sizes * valuations
        return cls(
            valuations=valuations,
            group_valuations=group_valuations,
            payments=payments,
            utilities=group_valuations - payments,
            social_welfare=social_welfare,
            asw=social_welfare - divergence_value,
            divergence_value=divergence_value,
            kkt_residual=kkt_residual,
            status=status,
        )


def figures(
    mechanism: Mechanism,
    solution: SolveResult,
    valuations: Array,
    sizes: Array,
    payments: Array,
    social_welfare: Array,
    residual: Array,
    payment_status: Array,
) -> Figures:
    """The figures of profiles (leading axes) from their solve and payments.

    Parameters
    ----------
    mechanism : the mechanism; solution : the training rule's solution on the reports.
    valuations, sizes, payments : (..., k) the groups' true valuations, true sizes and payments
        (``k = n``, or the one group that deviates).
    social_welfare : (...) ``sum_i w_i v_i`` on the true types; residual : (...) the training
        rule's residual; payment_status : (..., k) the status of each payment's solves.
    """
    offset = mechanism.score_offset
    divergence_value = np.asarray(solution.divergence, dtype=float)
    if offset is not None:
        shared = offset.ndim == 1
        divergence_value = divergence_value - (
            solution.pi @ offset if shared else (solution.pi * offset).sum(-1)
        )
    converged = np.asarray(solution.status == CONVERGED)
    status = np.where(converged[..., None], payment_status, np.asarray(solution.status)[..., None])
    return Figures.of(
        valuations=valuations,
        sizes=sizes,
        payments=payments,
        social_welfare=social_welfare,
        divergence_value=divergence_value,
        kkt_residual=residual,
        status=status,
    )


@dataclass(frozen=True)
class ProfileOutcome(Figures):
    """What a profile of reports (or a batch of them) yields, measured on the true types:
    the :class:`Figures`, and how they were reached.

    Attributes
    ----------
    distribution : (..., m) the fine-tuned distribution ``psi(reports)``.
    solve : the training rule's result for the reports.
    payment : the payment rule's result (the leave-one-out values and their status).
    leave_one_out_choices : (n,) the outcome the training rule selects without each group,
        for one profile of a rule that selects one outcome (the argmax rule of
        candidate-model games); ``None`` otherwise.
    """

    distribution: Array
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
    def status_message(self) -> str:
        """What did not converge, in words (``"converged"`` when everything did)."""
        if self.converged:
            return "converged"
        if not self.solve.success:
            return f"the training solve: {self.solve.message}"
        worst = int(np.max(self.payment.status))
        return f"a leave-one-out solve of the payment: {STATUS_MESSAGES[worst]}"


def train(mechanism: Mechanism, reports: Profile, scores: Array) -> tuple[SolveResult, Array]:
    """The training rule on profiles of reports, and its residual: an additive rule works on
    the scores (formed once, by the caller), any other on the whole profiles."""
    rule = mechanism.training_rule
    if rule.scores is not None:
        solution = rule.scores.solve(mechanism, scores)
        return solution, rule.scores.kkt_residual(mechanism, solution, scores)
    solution = rule.solve(mechanism, reports.rewards, reports.sizes)
    return solution, rule.residual(mechanism, solution, reports.rewards, reports.sizes)


def outcome(mechanism: Mechanism, truth: Profile, reports: Profile) -> ProfileOutcome:
    """Run the mechanism on profiles of reports and measure them on the true types.

    Parameters
    ----------
    mechanism : the mechanism.
    truth : the true types; reports : the reports, ``(..., n, m)`` and ``(..., n)`` each
        (leading batch axes: many profiles in one call).

    Returns
    -------
    ProfileOutcome, each figure with the batch's leading axes (one profile: floats).

    Notes
    -----
    The scores ``s = sum_i w~_i rm~_i + offset`` are formed once; the training solve, every
    group's payment (:func:`~rlhf_mech.core._payments.profile_payments`), the valuations
    ``rm_i . pi`` and :func:`figures` follow.
    """
    scores = mechanism.scores(reports.rewards, reports.sizes)
    solution, residual = train(mechanism, reports, scores)
    payment = profile_payments(mechanism, reports, scores, solution)
    valuations = row_values(truth.rewards, solution.pi)
    social_welfare = (truth.sizes * valuations).sum(axis=-1)
    single = reports.sizes.ndim == 1
    result = figures(
        mechanism,
        solution,
        valuations,
        truth.sizes,
        payment.payments,
        social_welfare,
        np.reshape(residual, reports.sizes.shape[:-1]),
        payment.status,
    )
    if single:
        result = replace(result, **{k: float(getattr(result, k)) for k in _SCALARS})
    return ProfileOutcome(
        **vars(result),
        distribution=solution.pi,
        solve=solution,
        payment=payment,
        leave_one_out_choices=_leave_one_out_choices(mechanism, reports, scores) if single else None,
    )


#: The per-profile scalars of :class:`Figures`, Python floats for one profile.
_SCALARS = ("social_welfare", "asw", "divergence_value", "kkt_residual")


def _leave_one_out_choices(mechanism: Mechanism, reports: Profile, scores: Array) -> Array | None:
    """The outcome selected without each group, where the divergence selects one (argmax)."""
    if not mechanism.divergence.point_mass or not mechanism.training_rule.additive:
        return None
    choices = np.empty(reports.n_groups, dtype=int)
    for k, block in leave_one_out_blocks(reports, scores, np.arange(reports.n_groups)):
        # ties go to the first outcome, as in the training rule
        choices[k : k + block.shape[0]] = np.argmax(block, axis=-1)
    return choices
