"""The ``rlhf-mech`` command line: thin wiring from files to the core and to rendering.

Exit codes: 0 clean, 1 an audit found violations, 2 bad input (as Click uses for bad options).
Every command takes ``-q``/``-v`` and ``--color``; a game file may be ``-`` (standard input).
Each command lives in a module of its own and hands its work to one function of a lower
layer; what they share (the app, options, the one error handler) is :mod:`rlhf_mech.cli._app`.
Only Typer, Click, Rich and the standard library are imported at start-up; each command
imports the layers it uses when it runs, so ``--help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlhf_mech.cli._app import app
from rlhf_mech.cli._audit import audit_command
from rlhf_mech.cli._compare import compare_command
from rlhf_mech.cli._implementability import implementability_command
from rlhf_mech.cli._import import import_game
from rlhf_mech.cli._output import print_error
from rlhf_mech.cli._solve import schema, solve
from rlhf_mech.cli._sweep import sweep_command

# The commands, in the order --help lists them.
app.command()(solve)
app.command()(schema)
app.command("sweep")(sweep_command)
app.command("implementability")(implementability_command)
app.command("import")(import_game)
app.command("audit")(audit_command)
app.command("compare")(compare_command)


def run() -> Callable[[], Any]:
    return app()


__all__ = ["app", "print_error", "run"]
