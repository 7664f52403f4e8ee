r"""Training rules ``psi`` (section 3): the registry.

A training rule maps a profile of reports to the fine-tuned distribution. Each rule is a
frozen :class:`TrainingRule` of pure functions, kept in :data:`TRAINING_RULES` (the pattern of
:mod:`~rlhf_mech.core._divergences`): a new rule is one entry plus its functions.

==============  ===========================================================================  ==============
rule            psi(reports)                                                                 paper
==============  ===========================================================================  ==============
``sw_max``      argmax_pi sum_i w_i <pi, rm_i> + <pi, offset> - D_f(pi || pi_init)           Definition 4.1
``maxmin``      argmax_pi min_i rho_i(pi) + <pi, offset> - D_f(pi || pi_init)                appendix E
``nash``        argmax_pi sum_i w_i log <pi, rm_i> + <pi, offset> - D_f(pi || pi_init)       appendix E
``alpha_fair``  argmax_pi sum_i w_i u_alpha(<pi, rm_i>) + <pi, offset> - D_f(pi || pi_init)  appendix E
==============  ===========================================================================  ==============

(``rho_i = <pi, rm_i>``, MaxMin-RLHF's worst-off agent, or ``w_i <pi, rm_i>`` with
``over: groups``.) SW-Max is *additive*: it sees a profile only through its scores
``s = sum_i w_i rm_i + offset`` (:meth:`~rlhf_mech.core.Mechanism.scores`), so its functions
take score rows; the solver is :func:`~rlhf_mech.core.solve_sw_max` with the mechanism's
divergence and lambda, and its model of an iterative training run is
:func:`~rlhf_mech.core.mirror_ascent`. Only an additive rule has the ``ASW_{-i}`` of eq. (1),
the payments built on it, the exact gradients of the best-response search and a report space
that ignores constants. MaxMin, Nash and alpha-fair (``u_alpha`` the isoelastic utility) see the
whole profile; each is built from a :class:`~rlhf_mech.core._fair.FairRule` record by
:func:`_fair_training_rule`, its solver :func:`~rlhf_mech.core.solve_fair` (a dual over the
groups' weights with SW-Max inside).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

import numpy as np

from rlhf_mech.core._ascent import mirror_ascent
from rlhf_mech.core._divergences import DIVERGENCES, Divergence
from rlhf_mech.core._fair import ALPHA, OVER, FairRule, alpha_fair, fair_residual, maxmin, nash, solve_fair
from rlhf_mech.core._optimality import kkt_residual, sensitivity, support_gaps
from rlhf_mech.core._parameters import Configurable, Parameter
from rlhf_mech.core._registry import lookup
from rlhf_mech.core._solver import SolveResult, optimal_values, solve_sw_max

if TYPE_CHECKING:
    from rlhf_mech.core._mechanism import Mechanism

Array = np.ndarray


# --------------------------------------------------------------------------------------------
# The functions of a rule, their signatures pinned (optax's GradientTransformation protocols)
# --------------------------------------------------------------------------------------------


class SolveProfile(Protocol):
    """``(mechanism, rewards (..., n, m), sizes (..., n)) -> SolveResult``: the fine-tuned
    distribution of each profile of reports."""

    def __call__(self, mechanism: Mechanism, rewards: Array, sizes: Array) -> SolveResult: ...


class ProfileResidual(Protocol):
    """``(mechanism, solution, rewards, sizes) -> (...,)``: the relative violation of the
    optimality conditions at a solution (0 for an exact optimum, to rounding)."""

    def __call__(
        self, mechanism: Mechanism, solution: SolveResult, rewards: Array, sizes: Array
    ) -> Array: ...


class SolveScores(Protocol):
    """``(mechanism, scores (..., m)) -> SolveResult``."""

    def __call__(self, mechanism: Mechanism, scores: Array) -> SolveResult: ...


class OptimalValues(Protocol):
    """``(mechanism, scores (B, m)) -> (values (B,), status (B,))``: the optimal objective
    alone (no ``pi`` is formed), for the leave-one-out problems of eq. (1); ``scores`` is
    scratch space and is overwritten."""

    def __call__(self, mechanism: Mechanism, scores: Array) -> tuple[Array, Array]: ...


class ScoreResidual(Protocol):
    """``(mechanism, solution, scores) -> (...,)``: the KKT residual at a solution."""

    def __call__(self, mechanism: Mechanism, solution: SolveResult, scores: Array) -> Array: ...


class Sensitivity(Protocol):
    """``(mechanism, solution, scores, g) -> (..., m)``: ``d <g, pi*(s)> / ds``, the
    vector-Jacobian product at a solution (implicit differentiation of the optimality
    conditions), for exact gradients of a group's utility."""

    def __call__(
        self, mechanism: Mechanism, solution: SolveResult, scores: Array, cotangent: Array
    ) -> Array: ...


class Trajectory(Protocol):
    """``(mechanism, scores (B, m), steps, step_size, every) -> (B, C, m)``: the checkpoints
    of a model of an iterative training run (section 4.4's intermediate models)."""

    def __call__(
        self, mechanism: Mechanism, scores: Array, steps: int, step_size: float, every: int
    ) -> Array: ...


class SupportGaps(Protocol):
    """``(mechanism, solution, scores) -> (..., m)``: how far each outcome's score must rise,
    the others fixed, for the outcome to enter the support (0 on it)."""

    def __call__(self, mechanism: Mechanism, solution: SolveResult, scores: Array) -> Array: ...


class ScoreFunctions(NamedTuple):
    """What an *additive* training rule does with score rows ``s = sum_i w_i rm_i + offset``:
    the capability that gives eq. (1) its ``ASW_{-i}``, the exact gradients of the
    best-response search and a report space that ignores constants. A rule that is not
    additive has none of it (``TrainingRule.scores is None``)."""

    solve: SolveScores
    optimal_values: OptimalValues
    kkt_residual: ScoreResidual
    sensitivity: Sensitivity
    trajectory: Trajectory
    support_gaps: SupportGaps


@dataclass(frozen=True)
class TrainingRule(Configurable):
    """One training rule of the registry: two functions every rule has, and the score
    functions of an additive rule.

    Attributes
    ----------
    name : canonical name used in game files.
    objective : the training objective as text, for documentation and output.
    reference : where the paper defines it.
    solve : :class:`SolveProfile`, the fine-tuned distribution of each profile of reports.
    residual : :class:`ProfileResidual`, the optimality residual at a solution.
    scores : :class:`ScoreFunctions` for a rule that sees a profile only through its scores
        (SW-Max: adding a constant to every score changes nothing, eq. (1) applies); ``None``
        for a rule that sees the whole profile (MaxMin, Nash).
    smooth_only : whether the rule needs a divergence with an inverse of ``g'`` (Nash's
        Newton method); :meth:`accepts` says which divergences it takes.
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
    solve: SolveProfile
    residual: ProfileResidual
    scores: ScoreFunctions | None = None
    smooth_only: bool = False
    separable: bool = True
    schema: tuple[Parameter, ...] = ()
    parameters: tuple[tuple[str, Any], ...] = ()

    @property
    def additive(self) -> bool:
        """Whether the rule sees a profile only through its scores (:attr:`scores`)."""
        return self.scores is not None

    def accepts(self, divergence: Divergence) -> bool:
        """Whether the rule can be regularised by ``divergence``."""
        return not self.smooth_only or divergence.g_prime_inverse is not None

    @property
    def divergences(self) -> tuple[str, ...]:
        """The names of the divergences the rule takes (:meth:`accepts`)."""
        return tuple(name for name, div in DIVERGENCES.items() if self.accepts(div))

    @staticmethod
    def smooth(mechanism: Mechanism) -> bool:
        """Whether the solution moves continuously and piecewise smoothly with the reports
        (finite differences of a utility mean something): a divergence with an inverse of
        ``g'``."""
        return mechanism.divergence.g_prime_inverse is not None

    def differentiable(self, mechanism: Mechanism) -> bool:
        """Whether :attr:`ScoreFunctions.sensitivity` applies: an additive rule whose solution
        moves smoothly with the scores."""
        return self.additive and self.smooth(mechanism)


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
    solve=_sw_max_profile,
    residual=_sw_max_profile_residual,
    scores=ScoreFunctions(
        solve=_sw_max_solve,
        optimal_values=_sw_max_values,
        kkt_residual=_sw_max_kkt,
        sensitivity=_sw_max_sensitivity,
        trajectory=_sw_max_trajectory,
        support_gaps=_sw_max_support_gaps,
    ),
)


# --- the fair rules: MaxMin, Nash, alpha-fair ---------------------------------------------------


def _fair_training_rule(build: Callable[..., FairRule], **fields: Any) -> TrainingRule:
    """The training rule of a fair rule's builder (:data:`~rlhf_mech.core._fair.FAIR_RULES`):
    it solves the builder's record with the rule's parameters (``schema`` in ``fields``, their
    names the builder's keywords); it takes TV and the argmax rule where the record has a
    linear solver."""
    schema: tuple[Parameter, ...] = fields.get("schema", ())

    def solve(mechanism: Mechanism, rewards: Array, sizes: Array) -> SolveResult:
        rule = mechanism.training_rule
        fair = build(**{parameter.name: rule.setting(parameter.name) for parameter in schema})
        solution = solve_fair(
            fair,
            rewards,
            sizes,
            mechanism.pi_init,
            mechanism.divergence,
            mechanism.lam,
            mechanism.score_offset,
        )
        residual = fair_residual(solution, mechanism.pi_init, mechanism.divergence, mechanism.lam)
        return solution.solve.with_dual(solution.weights, residual)

    defaults = build(**{parameter.name: parameter.default for parameter in schema})
    return TrainingRule(
        solve=solve,
        residual=_fair_residual,
        separable=False,
        smooth_only=defaults.linear is None,
        **fields,
    )


def _fair_residual(mechanism: Mechanism, solution: SolveResult, rewards: Array, sizes: Array) -> Array:
    assert solution.residual is not None, "a fair rule's solution carries its residual"
    return solution.residual


MAXMIN = _fair_training_rule(
    maxmin,
    name="maxmin",
    objective="min_i rho_i(pi) - D_f(pi || pi_init), rho_i = v_i (over: agents) or w_i v_i (over: groups)",
    reference="appendix E (MaxMin-RLHF)",
    schema=(OVER,),
)
NASH = _fair_training_rule(
    nash,
    name="nash",
    objective="sum_i w_i log v_i(pi) - D_f(pi || pi_init)",
    reference="appendix E (Nash social welfare)",
)
ALPHA_FAIR = _fair_training_rule(
    alpha_fair,
    name="alpha_fair",
    objective="sum_i w_i (v_i(pi)^(1 - alpha) - 1) / (1 - alpha) - D_f(pi || pi_init)",
    reference="appendix E (alpha-fair welfare: Nash at alpha = 1, maxmin as alpha -> inf)",
    schema=(ALPHA,),
)

#: Every training rule, in documentation order.
ALL_TRAINING_RULES: tuple[TrainingRule, ...] = (SW_MAX, MAXMIN, NASH, ALPHA_FAIR)
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
