"""The core layer: divergences, the SW-Max solver, training and payment rules, the mechanism.

Pure functions on numpy arrays and frozen dataclasses; nothing here reads or writes a file,
imports pydantic, YAML or a terminal library. Implementations live in private modules; this
namespace is the layer's public surface.
"""

from rlhf_mech.core._candidates import candidate_game, minmax_scale, scale_scores
from rlhf_mech.core._divergences import (
    ALL_DIVERGENCES,
    DIVERGENCES,
    ClosedForm,
    Divergence,
    get_divergence,
)
from rlhf_mech.core._game import Expectations, Game, GameSolution, ReportBasis, solve
from rlhf_mech.core._mechanism import (
    BLOCK_ELEMENTS,
    Deviation,
    DeviationOutcomes,
    Mechanism,
    Profile,
    ProfileOutcome,
    ProgressCallback,
    deviation,
    outcome,
    weighted_rewards,
)
from rlhf_mech.core._normalizations import (
    FILE_NORMALIZATIONS,
    NORMALIZATION_TOL,
    Normalization,
    Scale,
)
from rlhf_mech.core._numerics import CHUNK_ELEMENTS
from rlhf_mech.core._payments import (
    AFFINE_MAXIMIZER,
    ALL_PAYMENT_RULES,
    NONE,
    PAYMENT_RULES,
    PaymentResult,
    PaymentRule,
    affine_maximizer_payment,
    affine_maximizer_payments,
    get_payment_rule,
)
from rlhf_mech.core._solver import (
    CONVERGED,
    MAXITER,
    STALLED,
    STATUS_MESSAGES,
    SolveResult,
    kkt_residual,
    optimal_values,
    solve_sw_max,
)
from rlhf_mech.core._training import (
    ALL_TRAINING_RULES,
    SW_MAX,
    TRAINING_RULES,
    TrainingRule,
    get_training_rule,
)

__all__ = [
    "AFFINE_MAXIMIZER",
    "ALL_DIVERGENCES",
    "ALL_PAYMENT_RULES",
    "ALL_TRAINING_RULES",
    "BLOCK_ELEMENTS",
    "CHUNK_ELEMENTS",
    "CONVERGED",
    "DIVERGENCES",
    "FILE_NORMALIZATIONS",
    "MAXITER",
    "NONE",
    "NORMALIZATION_TOL",
    "PAYMENT_RULES",
    "STALLED",
    "STATUS_MESSAGES",
    "SW_MAX",
    "TRAINING_RULES",
    "ClosedForm",
    "Deviation",
    "DeviationOutcomes",
    "Divergence",
    "Expectations",
    "Game",
    "GameSolution",
    "Mechanism",
    "Normalization",
    "PaymentResult",
    "PaymentRule",
    "Profile",
    "ProfileOutcome",
    "ProgressCallback",
    "ReportBasis",
    "Scale",
    "SolveResult",
    "TrainingRule",
    "affine_maximizer_payment",
    "affine_maximizer_payments",
    "candidate_game",
    "deviation",
    "get_divergence",
    "get_payment_rule",
    "get_training_rule",
    "kkt_residual",
    "minmax_scale",
    "optimal_values",
    "outcome",
    "scale_scores",
    "solve",
    "solve_sw_max",
    "weighted_rewards",
]
