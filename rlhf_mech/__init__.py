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

The public names (listed in ``__init__.pyi``) are loaded on first use, so that
``import rlhf_mech`` (and the command line's start-up) pays only for what it uses.
"""

from rlhf_mech.core._lazy import attach_stub

__version__ = "0.1.0"

__getattr__, __dir__, _names = attach_stub(__name__, __file__)
__all__ = ["__version__", *_names]
