r"""Training rules ``psi`` (section 3): the registry.

A training rule maps a profile of reports to the fine-tuned distribution. Each rule is a
frozen :class:`TrainingRule` of pure functions, kept in :data:`TRAINING_RULES` (the pattern of
:mod:`~rlhf_mech.core._divergences`): a new rule is one entry plus its functions.

==========  =====================================================================  =============
rule        psi(reports)                                                           paper
==========  =====================================================================  =============
``sw_max``  argmax_pi sum_i w_i <pi, rm_i> + <pi, offset> - D_f(pi || pi_init)     Definition 4.1
``maxmin``  argmax_pi min_i rho_i(pi) + <pi, offset> - D_f(pi || pi_init)          appendix E
``nash``    argmax_pi sum_i w_i log <pi, rm_i> + <pi, offset> - D_f(pi || pi_init)  appendix E
==========  =====================================================================  =============

(``rho_i = <pi, rm_i>``, MaxMin-RLHF's worst-off agent, or ``w_i <pi, rm_i>`` with
``over: groups``.) SW-Max is *additive*: it sees a profile only through its scores
``s = sum_i w_i rm_i + offset`` (:meth:`~rlhf_mech.core.Mechanism.scores`), so its functions
take score rows; the solver is :func:`~rlhf_mech.core.solve_sw_max` with the mechanism's
divergence and lambda, and its model of an iterative training run is
:func:`~rlhf_mech.core.mirror_ascent`. Only an additive rule has the ``ASW_{-i}`` of eq. (1),
the payments built on it, the exact gradients of the best-response search and a report space
that ignores constants. MaxMin and Nash see the whole profile; their solver is
:func:`~rlhf_mech.core.solve_fair` (a dual over the groups' weights with SW-Max inside).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from rlhf_mech.core._fair import MAXMIN_OVER, fair_residual, solve_fair
from rlhf_mech.core._parameters import Configurable, Parameter
from rlhf_mech.core._registry import lookup
from rlhf_mech.core._solver import (
    SolveResult,
    kkt_residual,
    mirror_ascent,
    optimal_values,
    sensitivity,
    solve_sw_max,
    support_gaps,
)

if TYPE_CHECKING:
    from rlhf_mech.core._mechanism import Mechanism

Array = np.ndarray


@dataclass(frozen=True)
class TrainingRule(Configurable):
    """One training rule of the registry.

    Attributes
    ----------
    name : canonical name used in game files.
    objective : the training objective as text, for documentation and output.
    reference : where the paper defines it.
    additive : whether the rule sees a profile only through its scores ``s = sum_i w_i rm_i +
        offset`` (SW-Max). Then adding a constant to every score changes nothing
        (``sum pi = 1``), eq. (1) applies, and the score functions below are set; for a rule
        that is not additive they are ``None``.
    solve_profile : ``(mechanism, rewards (..., n, m), sizes (..., n)) -> SolveResult``: the
        fine-tuned distribution of each profile of reports.
    profile_residual : ``(mechanism, solution, rewards, sizes) -> (...,)``: the relative
        violation of the optimality conditions (0 for an exact optimum, to rounding).
    smooth : ``mechanism -> bool``: whether the solution moves continuously and piecewise
        smoothly with the reports (finite differences of a utility mean something).
    divergences : the divergences the rule can be regularised by (``None``: every one).
    solve_scores : ``(mechanism, scores (..., m)) -> SolveResult`` (additive rules).
    optimal_values : ``(mechanism, scores (B, m)) -> (values (B,), status (B,))``: the optimal
        objective alone (no ``pi`` is formed), for the leave-one-out problems of eq. (1);
        ``scores`` is scratch space and is overwritten.
    kkt_residual : ``(mechanism, solution, scores) -> (...,)``.
    sensitivity : ``(mechanism, solution, scores, g) -> (..., m)``: ``d <g, pi*(s)> / ds``, the
        vector-Jacobian product of the training rule at a solution (implicit differentiation
        of its optimality conditions), for exact gradients of a group's utility.
    trajectory : ``(mechanism, scores (B, m), steps, step_size, every) -> (B, C, m)``: a model
        of how a platform reaches the solution, the checkpoints of an iterative training run
        (section 4.4's intermediate models and early-stopped runs).
    support_gaps : ``(mechanism, solution, scores) -> (..., m)``: how far each outcome's score
        must rise, the others fixed, for the outcome to enter the support (0 on it): where
        the utility is flat in a report, how far away its next piece starts (the search's
        plateau probes).
    separable : whether the objective over many prompts is the prompt-weighted sum of one
        objective per prompt (section 2: "operates on each prompt independently"), so that a
        game of many prompts is solved prompt by prompt (:func:`~rlhf_mech.core.solve_prompts`).
        MaxMin and Nash take the minimum or the logarithm of valuations averaged over the
        prompts: they couple the prompts.
    schema, parameters : the rule's :class:`~rlhf_mech.core.Parameter` records and the values
        set (:meth:`with_parameters`).
    """

    family: ClassVar[str] = "training rule"

    name: str
    objective: str
    reference: str
    additive: bool
    solve_profile: Callable[[Mechanism, Array, Array], SolveResult]
    profile_residual: Callable[[Mechanism, SolveResult, Array, Array], Array]
    smooth: Callable[[Mechanism], bool]
    divergences: tuple[str, ...] | None = None
    solve_scores: Callable[[Mechanism, Array], SolveResult] | None = None
    optimal_values: Callable[[Mechanism, Array], tuple[Array, Array]] | None = None
    kkt_residual: Callable[[Mechanism, SolveResult, Array], Array] | None = None
    sensitivity: Callable[[Mechanism, SolveResult, Array, Array], Array] | None = None
    trajectory: Callable[[Mechanism, Array, int, float, int], Array] | None = None
    support_gaps: Callable[[Mechanism, SolveResult, Array], Array] | None = None
    separable: bool = True
    schema: tuple[Parameter, ...] = ()
    parameters: tuple[tuple[str, Any], ...] = ()

    def differentiable(self, mechanism: Mechanism) -> bool:
        """Whether :attr:`sensitivity` applies: an additive rule whose solution moves smoothly
        with the scores (a divergence with an inverse of ``g'``)."""
        return self.sensitivity is not None and mechanism.divergence.g_prime_inverse is not None


# --- SW-Max ----------------------------------------------------------------------------------


def _sw_max_solve(mechanism: Mechanism, scores: Array) -> SolveResult:
    return solve_sw_max(scores, mechanism.pi_init, mechanism.divergence, mechanism.lam)


def _sw_max_profile(mechanism: Mechanism, rewards: Array, sizes: Array) -> SolveResult:
    return _sw_max_solve(mechanism, mechanism.scores(rewards, sizes))


def _sw_max_values(mechanism: Mechanism, scores: Array) -> tuple[Array, Array]:
    values, status, _ = optimal_values(scores, mechanism.pi_init, mechanism.divergence, mechanism.lam)
    return values, status


def _sw_max_kkt(mechanism: Mechanism, solution: SolveResult, scores: Array) -> Array:
    return kkt_residual(solution, scores, mechanism.pi_init, mechanism.divergence, mechanism.lam)


def _sw_max_profile_residual(
    mechanism: Mechanism, solution: SolveResult, rewards: Array, sizes: Array
) -> Array:
    return _sw_max_kkt(mechanism, solution, mechanism.scores(rewards, sizes))


def _smooth_divergence(mechanism: Mechanism) -> bool:
    return mechanism.divergence.g_prime_inverse is not None


def _sw_max_sensitivity(
    mechanism: Mechanism, solution: SolveResult, scores: Array, cotangent: Array
) -> Array:
    return sensitivity(solution, scores, mechanism.pi_init, mechanism.divergence, mechanism.lam, cotangent)


def _sw_max_trajectory(
    mechanism: Mechanism, scores: Array, steps: int, step_size: float, every: int
) -> Array:
    return mirror_ascent(
        scores, mechanism.pi_init, mechanism.divergence, mechanism.lam, steps, step_size, every
    )


def _sw_max_support_gaps(mechanism: Mechanism, solution: SolveResult, scores: Array) -> Array:
    return support_gaps(solution, scores, mechanism.divergence, mechanism.lam)


SW_MAX = TrainingRule(
    name="sw_max",
    objective="sum_i w_i v_i(pi) - D_f(pi || pi_init)",
    reference="Definition 4.1",
    additive=True,
    solve_profile=_sw_max_profile,
    profile_residual=_sw_max_profile_residual,
    smooth=_smooth_divergence,
    solve_scores=_sw_max_solve,
    optimal_values=_sw_max_values,
    kkt_residual=_sw_max_kkt,
    sensitivity=_sw_max_sensitivity,
    trajectory=_sw_max_trajectory,
    support_gaps=_sw_max_support_gaps,
)


# --- MaxMin and Nash -------------------------------------------------------------------------


def _fair_solver(rule: str) -> Callable[[Mechanism, Array, Array], SolveResult]:
    def solve(mechanism: Mechanism, rewards: Array, sizes: Array) -> SolveResult:
        over = mechanism.training_rule.setting("over") if rule == "maxmin" else "agents"
        solution = solve_fair(
            rule,
            rewards,
            sizes,
            mechanism.pi_init,
            mechanism.divergence,
            mechanism.lam,
            mechanism.score_offset,
            over,
        )
        residual = fair_residual(solution, mechanism.pi_init, mechanism.divergence, mechanism.lam)
        return solution.solve.with_dual(solution.weights, residual)

    return solve


def _fair_residual(mechanism: Mechanism, solution: SolveResult, rewards: Array, sizes: Array) -> Array:
    assert solution.residual is not None, "a fair rule's solution carries its residual"
    return solution.residual


#: The divergences with an inverse of ``g'``, which Nash's Newton method needs.
SMOOTH_DIVERGENCES = ("kl", "chi2", "hellinger", "reverse_kl", "js")

MAXMIN = TrainingRule(
    name="maxmin",
    objective="min_i rho_i(pi) - D_f(pi || pi_init), rho_i = v_i (over: agents) or w_i v_i (over: groups)",
    reference="appendix E (MaxMin-RLHF)",
    additive=False,
    separable=False,
    solve_profile=_fair_solver("maxmin"),
    profile_residual=_fair_residual,
    smooth=_smooth_divergence,
    schema=(
        Parameter(
            "over",
            "choice",
            "agents",
            description="the minimum over per-agent valuations v_i (MaxMin-RLHF) or group valuations w_i v_i",
            choices=MAXMIN_OVER,
        ),
    ),
)
NASH = TrainingRule(
    name="nash",
    objective="sum_i w_i log v_i(pi) - D_f(pi || pi_init)",
    reference="appendix E (Nash social welfare)",
    additive=False,
    separable=False,
    solve_profile=_fair_solver("nash"),
    profile_residual=_fair_residual,
    smooth=_smooth_divergence,
    divergences=SMOOTH_DIVERGENCES,
)

#: Every training rule, in documentation order.
ALL_TRAINING_RULES: tuple[TrainingRule, ...] = (SW_MAX, MAXMIN, NASH)
#: Canonical name -> training rule.
TRAINING_RULES: dict[str, TrainingRule] = {rule.name: rule for rule in ALL_TRAINING_RULES}


def get_training_rule(name: str | TrainingRule) -> TrainingRule:
    """Look a training rule up by name; a :class:`TrainingRule` is returned unchanged.

    Raises
    ------
    ValueError
        for an unknown name, listing the valid ones.
    """
    return lookup("training rule", TRAINING_RULES, TrainingRule, name)
