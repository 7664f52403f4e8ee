"""rlhf-mech: incentive audits of multi-group LLM fine-tuning (training rule + payment rule).

Notebook API::

    import rlhf_mech
    game = rlhf_mech.load_game("games/harmless_vs_humor.yaml")
    solution = rlhf_mech.solve(game)          # truthful and reported profiles
    solution.reported.utilities, solution.gains
    rlhf_mech.sweep(game, "alices", "size", [0.5, 1.5, 3])   # a batched misreport sweep
    rlhf_mech.audit_game(game, rlhf_mech.AuditOptions())     # DSIC, IR, p >= 0, ...

The package is layered; each layer imports only the ones before it:

* :mod:`rlhf_mech.core`: divergences, the SW-Max solver, training and payment rules, the
  :class:`Mechanism` and its kernel (pure functions on arrays);
* :mod:`rlhf_mech.analysis`: sweeps, the best-response search, audits;
* :mod:`rlhf_mech.files`: game files (spec, writer), importers, counterexample files;
* :mod:`rlhf_mech.render`: tables, JSON, JUnit, plots;
* :mod:`rlhf_mech.cli`: the command line.

The names below are loaded on first use, so that ``import rlhf_mech`` (and the command
line's start-up) pays only for what it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the layer that defines it.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        (
            "DIVERGENCES",
            "PAYMENT_RULES",
            "TRAINING_RULES",
            "Divergence",
            "Game",
            "GameSolution",
            "Mechanism",
            "Normalization",
            "PaymentResult",
            "PaymentRule",
            "Profile",
            "ProfileOutcome",
            "ReportBasis",
            "SolveResult",
            "TrainingRule",
            "affine_maximizer_payments",
            "get_divergence",
            "get_payment_rule",
            "get_training_rule",
            "kkt_residual",
            "outcome",
            "solve",
            "solve_sw_max",
        ),
        "rlhf_mech.core",
    ),
    **dict.fromkeys(
        ("AuditOptions", "GameAudit", "SweepResult", "audit_game", "run_audits", "sweep"),
        "rlhf_mech.analysis",
    ),
    **dict.fromkeys(("load_game", "write_game"), "rlhf_mech.files"),
    **dict.fromkeys(("RlhfMechError", "SpecError"), "rlhf_mech.errors"),
}

__all__ = [
    "DIVERGENCES",
    "PAYMENT_RULES",
    "TRAINING_RULES",
    "AuditOptions",
    "Divergence",
    "Game",
    "GameAudit",
    "GameSolution",
    "Mechanism",
    "Normalization",
    "PaymentResult",
    "PaymentRule",
    "Profile",
    "ProfileOutcome",
    "ReportBasis",
    "RlhfMechError",
    "SolveResult",
    "SpecError",
    "SweepResult",
    "TrainingRule",
    "__version__",
    "affine_maximizer_payments",
    "audit_game",
    "get_divergence",
    "get_payment_rule",
    "get_training_rule",
    "kkt_residual",
    "load_game",
    "outcome",
    "run_audits",
    "solve",
    "solve_sw_max",
    "sweep",
    "write_game",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rlhf_mech' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from rlhf_mech.analysis import AuditOptions, GameAudit, SweepResult, audit_game, run_audits, sweep
    from rlhf_mech.core import (
        DIVERGENCES,
        PAYMENT_RULES,
        TRAINING_RULES,
        Divergence,
        Game,
        GameSolution,
        Mechanism,
        Normalization,
        PaymentResult,
        PaymentRule,
        Profile,
        ProfileOutcome,
        ReportBasis,
        SolveResult,
        TrainingRule,
        affine_maximizer_payments,
        get_divergence,
        get_payment_rule,
        get_training_rule,
        kkt_residual,
        outcome,
        solve,
        solve_sw_max,
    )
    from rlhf_mech.errors import RlhfMechError, SpecError
    from rlhf_mech.files import load_game, write_game
