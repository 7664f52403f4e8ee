"""The mechanism (training rule + payment rule) applied to a profile of reports.

For a profile, the fine-tuned distribution ``pi = psi(reports)`` (Definition 4.1) and the
payments (eq. 1) are computed on the *reports*; every figure of merit is evaluated on the
*true* types (section 3): valuation per agent ``v_i = <pi, rm_i>`` (Definition 3.1), group
valuation ``w_i v_i``, utility ``u_i = w_i v_i - p_i``, social welfare ``sum_i w_i v_i`` and
the affine social welfare ``ASW = SW - D_f(pi || pi_init)`` (Definition 4.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlhf_mech.divergences import Divergence
from rlhf_mech.game import Game
from rlhf_mech.payments import PaymentResult, compute_payments
from rlhf_mech.solver import SolveResult, kkt_residual, solve_sw_max

Array = np.ndarray


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
    asw : ``social_welfare - D_f(pi || pi_init)``.
    divergence_value : the regulariser at ``pi``: ``D_f(pi || pi_init)`` (lambda included)
        minus ``<pi, score_offset>`` where the game has outcome costs.
    kkt_residual : relative KKT residual of the solve (see :func:`~rlhf_mech.solver.kkt_residual`).
    solve : the solver's result for the reported scores.
    payment : the payment rule's result.
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


def mechanism_outcome(
    rewards: Array,
    sizes: Array,
    reported_rewards: Array,
    reported_sizes: Array,
    pi_init: Array,
    divergence: str | Divergence,
    lam: float,
    payment_rule: str = "affine_maximizer",
    score_offset: Array | None = None,
) -> ProfileOutcome:
    """Run the mechanism on a profile of reports and measure it on the true types.

    Parameters
    ----------
    rewards, sizes : (n, m), (n,) true reward models and sizes.
    reported_rewards, reported_sizes : (n, m), (n,) the reports.
    pi_init : (m,) initial distribution; divergence, lam : the regulariser.
    payment_rule : ``"none"`` or ``"affine_maximizer"``.
    score_offset : (m,) array added to the reported scores, owned by no group
        (``Game.score_offset``); it counts in the regulariser: ``ASW = SW + <pi, offset> - D_f``.
    """
    rewards = np.asarray(rewards, dtype=float)
    sizes = np.asarray(sizes, dtype=float)
    reported_rewards = np.asarray(reported_rewards, dtype=float)
    reported_sizes = np.asarray(reported_sizes, dtype=float)
    scores = reported_sizes @ reported_rewards
    if score_offset is not None:
        scores = scores + score_offset
    solution = solve_sw_max(scores, pi_init, divergence, lam)
    payment = compute_payments(
        payment_rule, reported_rewards, reported_sizes, pi_init, divergence, lam, solution, score_offset
    )
    pi = solution.pi
    valuations = rewards @ pi
    group_valuations = sizes * valuations
    social_welfare = float(group_valuations.sum())
    divergence_value = float(solution.divergence)
    if score_offset is not None:
        divergence_value -= float(score_offset @ pi)
    residual = float(kkt_residual(solution, scores, pi_init, divergence, lam)[0])
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
    )


@dataclass(frozen=True)
class GameSolution:
    """The mechanism on a game: truthful reports versus the reports in the file.

    Attributes
    ----------
    game : the game; payment_rule : the rule used (the file's, or an override).
    truthful : outcome when every group reports its type.
    reported : outcome for the reports in the game (the same object when all are truthful).
    gains : (n,) ``reported.utilities - truthful.utilities``, what each group gained by
        the reported profile (positive for a profitable misreport).
    """

    game: Game
    payment_rule: str
    truthful: ProfileOutcome
    reported: ProfileOutcome

    @property
    def gains(self) -> Array:
        return self.reported.utilities - self.truthful.utilities


def solve(game: Game, payment_rule: str | None = None) -> GameSolution:
    """Apply the mechanism to a game, for truthful and for the reported profile.

    Parameters
    ----------
    game : the game, e.g. from :func:`rlhf_mech.load_game`.
    payment_rule : overrides ``game.payment_rule`` when given.
    """
    rule = payment_rule or game.payment_rule
    common = (game.pi_init, game.divergence, game.lam, rule, game.score_offset)
    truthful = mechanism_outcome(game.rewards, game.sizes, game.rewards, game.sizes, *common)
    reported = truthful
    if not game.is_truthful:
        reported = mechanism_outcome(
            game.rewards, game.sizes, game.reported_rewards, game.reported_sizes, *common
        )
    return GameSolution(game=game, payment_rule=rule, truthful=truthful, reported=reported)
