"""``rlhf-mech implementability``: cycle monotonicity of the training rule (appendix E)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rlhf_mech.cli._app import (
    GameFile,
    OutsideOption,
    Terminal,
    command,
    format_choice,
    read_game,
    with_options,
)
from rlhf_mech.cli._numbers import number
from rlhf_mech.render import IMPLEMENTABILITY_FORMATS

ImplementabilityFormatOption = format_choice("ImplementabilityFormat", IMPLEMENTABILITY_FORMATS)


@with_options
def implementability_command(
    game_file: GameFile,
    *,
    group: Annotated[str | None, typer.Option(help="The group whose types are varied.")] = None,
    types: Annotated[
        str,
        typer.Option(
            "--types",
            help="The type set: grid, vertices, random or user (--type-reward only).",
        ),
    ] = "grid",
    points: Annotated[
        int,
        typer.Option(parser=number(integer=True), help="Grid resolution, or the number of random points."),
    ] = 4,
    sizes: Annotated[
        str | None,
        typer.Option(help="Sizes paired with every reward point, a comma list (default: the true size)."),
    ] = None,
    type_reward: Annotated[
        list[str] | None,
        typer.Option(help="A reward to add as a type (comma list or .csv/.npy file), repeatable."),
    ] = None,
    seed: Annotated[
        int, typer.Option(parser=number(integer=True, low=0), help="Seed of the random type set.")
    ] = 0,
    tol: Annotated[
        float, typer.Option(parser=number(low=0), help="Tolerance of a cycle sum (each edge +tol/K).")
    ] = 1e-9,
    max_types: Annotated[
        int, typer.Option(parser=number(integer=True, low=2), help="Most types allowed (time grows as K^3).")
    ] = 2000,
    graph: Annotated[
        str,
        typer.Option(
            help="Shortest paths by numpy (stops when the distances settle; the same numbers as scipy's) "
            "or scipy (K rounds, in C)."
        ),
    ] = "numpy",
    save_cycle: Annotated[
        Path | None,
        typer.Option(
            help="Write each step of a negative cycle as a game file into DIR (rlhf-mech solve replays it)."
        ),
    ] = None,
    rows: Annotated[
        int, typer.Option(parser=number(integer=True, low=1), help="Payment rows shown in the table.")
    ] = 10,
    output_format: ImplementabilityFormatOption = "text",  # type: ignore[assignment]
    allow_outside_refs: OutsideOption = False,
    terminal: Terminal,
) -> None:
    """Decide cycle monotonicity (Definition E.1) of the training rule on a set of one group's types.

    Prints a negative cycle (no payment rule makes the rule DSIC, Proposition E.2) or the
    Rochet payments that make it DSIC on the set, beside p^AFF for SW-Max. Exit code 0 when
    monotone on the set, 1 when a negative cycle is found, 2 on bad input.
    """
    with command(terminal) as out:
        from rlhf_mech.analysis import implementability, type_set
        from rlhf_mech.analysis._internal import group_of
        from rlhf_mech.cli._options import parse_parameters
        from rlhf_mech.files import save_cycle as write_cycle
        from rlhf_mech.files._internal import read_reward
        from rlhf_mech.render import ImplementabilityOutput

        size_list = None if sizes is None else parse_parameters(sizes, "--sizes")
        with out.step(f"load {game_file}"):
            game = read_game(game_file, allow_outside_refs)
        i = group_of(game, group, "implementability")
        extra = [read_reward(text, game, "--type-reward") for text in type_reward or []]
        with out.step("types"):
            type_points = type_set(game, i, types, points, size_list, seed, extra or None, max_types)
        with out.step(f"cycle monotonicity on {type_points.count} types"):
            result = implementability(game, i, type_points, tol=tol, graph=graph)
        saved: tuple[str, ...] = ()
        if save_cycle is not None and result.cycle is not None:
            saved = tuple(str(p) for p in write_cycle(result, save_cycle))
            out.message(f"negative cycle written to {save_cycle} ({len(saved)} game files)")
        with out.step("write"):
            out.emit(IMPLEMENTABILITY_FORMATS[output_format], ImplementabilityOutput(result, saved, rows))
    raise typer.Exit(0 if result.monotone else 1)
