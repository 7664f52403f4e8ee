"""``rlhf-mech solve`` and ``rlhf-mech schema``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rlhf_mech.cli._app import (
    GameOptions,
    IntervalOptions,
    Terminal,
    command,
    format_choice,
    with_options,
)
from rlhf_mech.cli._numbers import number
from rlhf_mech.cli._uncertainty import CiSeedOption, uncertainty
from rlhf_mech.render import SOLVE_FORMATS

SolveFormatOption = format_choice("SolveFormat", SOLVE_FORMATS)


@with_options
def solve(
    game_file: GameOptions,
    *,
    output_format: SolveFormatOption = "table",  # type: ignore[assignment]
    top: Annotated[
        int,
        typer.Option(parser=number(integer=True, low=1), help="Outcomes shown in the distribution table."),
    ] = 10,
    save_distribution: Annotated[
        Path | None,
        typer.Option(
            help="Write the distributions to FILE.npy (row 0 truthful, row 1 reported); "
            "the JSON then references that file instead of listing them.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the --save-distribution file.")] = False,
    intervals: IntervalOptions,
    seed: CiSeedOption = 0,
    terminal: Terminal,
) -> None:
    """Run the mechanism on a game: truthful versus reported profiles, side by side."""
    with command(terminal) as out:
        from rlhf_mech.core import solve as solve_game
        from rlhf_mech.files._internal import check_new_file, save_distributions
        from rlhf_mech.render import SolveOutput

        ci_options = intervals.options(seed)
        if save_distribution is not None:
            check_new_file(save_distribution, "--save-distribution", force, suffix=".npy")
        game = game_file.load(out)
        with out.step("solve"):
            solution = solve_game(game)
        with out.step("bootstrap"):
            error_bars = uncertainty(game, ci_options)
        saved = None
        if save_distribution is not None:
            saved = save_distributions(solution, save_distribution)
            out.message(f"distributions written to {saved} (row 0 truthful, row 1 reported)")
        with out.step("write"):
            out.emit(SOLVE_FORMATS[output_format], SolveOutput(solution, top, saved, error_bars))


@with_options
def schema(
    candidates: Annotated[
        bool, typer.Option("--candidates", help="The candidate-model game format (docs/candidates.md).")
    ] = False,
    audit: Annotated[
        bool, typer.Option("--audit", help="The JSON that `audit --format json` prints.")
    ] = False,
    compare: Annotated[
        bool, typer.Option("--compare", help="The JSON that `compare --format json` prints.")
    ] = False,
    *,
    terminal: Terminal,
) -> None:
    """Print a JSON Schema: of game files (default), candidate-model games, audit or compare JSON."""
    with command(terminal) as out:
        from rlhf_mech.errors import RlhfMechError

        if candidates + audit + compare > 1:
            raise RlhfMechError("give at most one of --candidates, --audit and --compare")
        if compare:
            from rlhf_mech.render import compare_schema

            out.write_json(compare_schema())
            return
        if audit:
            from rlhf_mech.render import audit_schema
            from rlhf_mech.render._internal import AUDIT_SCHEMA_VERSION

            out.write_json(audit_schema(AUDIT_SCHEMA_VERSION))
            return
        from rlhf_mech.files import candidate_game_schema, game_schema

        out.write_json(candidate_game_schema() if candidates else game_schema())
