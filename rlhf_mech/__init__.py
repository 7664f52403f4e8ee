"""rlhf-mech: incentive audits of multi-group LLM fine-tuning (SW-Max training + payments).

Notebook API::

    import rlhf_mech
    game = rlhf_mech.load_game("games/harmless_vs_humor.yaml")
    solution = rlhf_mech.solve(game)          # truthful and reported profiles
    solution.reported.utilities, solution.gains
    rlhf_mech.sweep(game, "alices", "size", [0.5, 1.5, 3])   # a batched misreport sweep

The core works on bare arrays: :func:`solve_sw_max` (Definition 4.1),
:func:`affine_maximizer_payments` (eq. 1), :func:`mechanism_outcome`.
"""

from rlhf_mech.audit import AuditOptions, GameAudit, audit_game
from rlhf_mech.divergences import DIVERGENCES, Divergence, get_divergence
from rlhf_mech.errors import RlhfMechError, SpecError
from rlhf_mech.game import Game
from rlhf_mech.mechanism import GameSolution, ProfileOutcome, mechanism_outcome, solve
from rlhf_mech.payments import PaymentResult, affine_maximizer_payments
from rlhf_mech.solver import SolveResult, kkt_residual, solve_sw_max
from rlhf_mech.spec import load_game
from rlhf_mech.sweep import SweepResult, sweep

__version__ = "0.1.0"

__all__ = [
    "DIVERGENCES",
    "AuditOptions",
    "Divergence",
    "Game",
    "GameAudit",
    "GameSolution",
    "PaymentResult",
    "ProfileOutcome",
    "RlhfMechError",
    "SolveResult",
    "SpecError",
    "SweepResult",
    "__version__",
    "affine_maximizer_payments",
    "audit_game",
    "get_divergence",
    "kkt_residual",
    "load_game",
    "mechanism_outcome",
    "solve",
    "solve_sw_max",
    "sweep",
]
