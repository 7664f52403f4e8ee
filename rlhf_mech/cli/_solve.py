"""``rlhf-mech solve`` and ``rlhf-mech schema``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rlhf_mech.cli._app import (
    ColorOption,
    GameFile,
    OutsideOption,
    PaymentOption,
    PaymentParamOption,
    QuietOption,
    TrainingOption,
    TrainingParamOption,
    VerboseOption,
    command,
    emit,
    format_enum,
    format_option,
    game_with_rules,
    number,
)
from rlhf_mech.cli._output import ColorChoice
from rlhf_mech.cli._uncertainty import (
    CiOption,
    CiSeedOption,
    DesignOption,
    EstimandOption,
    IntervalOption,
    ResamplesOption,
    uncertainty,
)
from rlhf_mech.render import SOLVE_FORMATS

SolveFormat = format_enum("SolveFormat", SOLVE_FORMATS)


def solve(
    game_file: GameFile,
    *,
    training: TrainingOption = None,
    training_param: TrainingParamOption = None,
    payment: PaymentOption = None,
    payment_param: PaymentParamOption = None,
    output_format: Annotated[SolveFormat, format_option(SOLVE_FORMATS)] = "table",  # type: ignore[valid-type, assignment]
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
    ci: CiOption = None,
    resamples: ResamplesOption = 1000,
    seed: CiSeedOption = 0,
    interval: IntervalOption = "basic",
    estimand: EstimandOption = "fixed",
    design: DesignOption = None,
    allow_outside_refs: OutsideOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    color: ColorOption = ColorChoice.auto,
) -> None:
    """Run the mechanism on a game: truthful versus reported profiles, side by side."""
    with command(color, quiet, verbose) as out:
        from rlhf_mech.core import solve as solve_game
        from rlhf_mech.files import check_new_file, save_distributions
        from rlhf_mech.render import SolveOutput

        if save_distribution is not None:
            check_new_file(save_distribution, "--save-distribution", force, suffix=".npy")
        game = game_with_rules(
            out, game_file, allow_outside_refs, training, training_param, payment, payment_param
        )
        with out.step("solve"):
            solution = solve_game(game)
        with out.step("bootstrap"):
            error_bars = uncertainty(game, ci, resamples, seed, interval, estimand, design)
        saved = None
        if save_distribution is not None:
            saved = save_distributions(solution, save_distribution)
            out.message(f"distributions written to {saved} (row 0 truthful, row 1 reported)")
        with out.step("write"):
            emit(out, SOLVE_FORMATS[output_format], SolveOutput(solution, top, saved, error_bars))


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
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    color: ColorOption = ColorChoice.auto,
) -> None:
    """Print a JSON Schema: of game files (default), candidate-model games, audit or compare JSON."""
    with command(color, quiet, verbose) as out:
        from rlhf_mech.errors import RlhfMechError

        if candidates + audit + compare > 1:
            raise RlhfMechError("give at most one of --candidates, --audit and --compare")
        if compare:
            from rlhf_mech.render import compare_schema

            out.write_json(compare_schema())
            return
        if audit:
            from rlhf_mech.render import AUDIT_SCHEMA_VERSION, audit_schema

            out.write_json(audit_schema(AUDIT_SCHEMA_VERSION))
            return
        from rlhf_mech.files import candidate_game_schema, game_schema

        out.write_json(candidate_game_schema() if candidates else game_schema())
