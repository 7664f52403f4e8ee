r"""Training rules ``psi`` (section 3): the registry.

A training rule maps a profile of reports to the fine-tuned distribution. Each rule is a
frozen :class:`TrainingRule` of pure functions, kept in :data:`TRAINING_RULES` (the pattern of
:mod:`~rlhf_mech.core._divergences`): a new rule is one entry plus its functions.

==========  ==================================================================  ==============
rule        psi(reports)                                                        paper
==========  ==================================================================  ==============
``sw_max``  argmax_pi sum_i w_i <pi, rm_i> + <pi, offset> - D_f(pi || pi_init)  Definition 4.1
==========  ==================================================================  ==============

SW-Max sees a profile only through its scores ``s = sum_i w_i rm_i + offset``
(:meth:`~rlhf_mech.core.Mechanism.scores`), so its functions take score rows; the solver is
:func:`~rlhf_mech.core.solve_sw_max` with the mechanism's divergence and lambda, and its model
of an iterative training run is :func:`~rlhf_mech.core.mirror_ascent`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rlhf_mech.core._registry import lookup
from rlhf_mech.core._solver import (
    SolveResult,
    kkt_residual,
    mirror_ascent,
    optimal_values,
    sensitivity,
    solve_sw_max,
)

if TYPE_CHECKING:
    from rlhf_mech.core._mechanism import Mechanism

Array = np.ndarray


@dataclass(frozen=True)
class TrainingRule:
    """One training rule of the registry.

    Attributes
    ----------
    name : canonical name used in game files.
    objective : the training objective as text, for documentation and output.
    reference : where the paper defines it.
    solve_scores : ``(mechanism, scores (..., m)) -> SolveResult``: the fine-tuned distribution
        of each row of scores.
    optimal_values : ``(mechanism, scores (B, m)) -> (values (B,), status (B,))``: the optimal
        objective alone (no ``pi`` is formed), for the leave-one-out problems of eq. (1);
        ``scores`` is scratch space and is overwritten.
    kkt_residual : ``(mechanism, solution, scores) -> (...,)``: the relative violation of the
        optimality conditions at a solution (0 for an exact optimum, to rounding).
    differentiable : ``mechanism -> bool``: whether :attr:`sensitivity` applies (the solution
        moves smoothly with the scores).
    sensitivity : ``(mechanism, solution, scores, g) -> (..., m)``: ``d <g, pi*(s)> / ds``, the
        vector-Jacobian product of the training rule at a solution (implicit differentiation
        of its optimality conditions), for exact gradients of a group's utility.
    shift_invariant : whether adding a constant to every score leaves the solution unchanged
        (true for SW-Max: ``sum pi = 1``), so that a group's reports only matter up to a
        constant (the best-response search uses it).
    trajectory : ``(mechanism, scores (B, m), steps, step_size, every) -> (B, C, m)``: a model
        of how a platform reaches the solution, the checkpoints of an iterative training run
        (section 4.4's intermediate models and early-stopped runs).
    """

    name: str
    objective: str
    reference: str
    solve_scores: Callable[[Mechanism, Array], SolveResult]
    optimal_values: Callable[[Mechanism, Array], tuple[Array, Array]]
    kkt_residual: Callable[[Mechanism, SolveResult, Array], Array]
    differentiable: Callable[[Mechanism], bool]
    sensitivity: Callable[[Mechanism, SolveResult, Array, Array], Array]
    shift_invariant: bool
    trajectory: Callable[[Mechanism, Array, int, float, int], Array]


def _sw_max_solve(mechanism: Mechanism, scores: Array) -> SolveResult:
    return solve_sw_max(scores, mechanism.pi_init, mechanism.divergence, mechanism.lam)


def _sw_max_values(mechanism: Mechanism, scores: Array) -> tuple[Array, Array]:
    values, status, _ = optimal_values(scores, mechanism.pi_init, mechanism.divergence, mechanism.lam)
    return values, status


def _sw_max_kkt(mechanism: Mechanism, solution: SolveResult, scores: Array) -> Array:
    return kkt_residual(solution, scores, mechanism.pi_init, mechanism.divergence, mechanism.lam)


def _sw_max_differentiable(mechanism: Mechanism) -> bool:
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


SW_MAX = TrainingRule(
    name="sw_max",
    objective="sum_i w_i v_i(pi) - D_f(pi || pi_init)",
    reference="Definition 4.1",
    solve_scores=_sw_max_solve,
    optimal_values=_sw_max_values,
    kkt_residual=_sw_max_kkt,
    differentiable=_sw_max_differentiable,
    sensitivity=_sw_max_sensitivity,
    shift_invariant=True,
    trajectory=_sw_max_trajectory,
)

#: Every training rule, in documentation order.
ALL_TRAINING_RULES: tuple[TrainingRule, ...] = (SW_MAX,)
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
