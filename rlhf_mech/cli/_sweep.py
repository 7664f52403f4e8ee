"""``rlhf-mech sweep``: one group's misreports of a family, the others' reports fixed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rlhf_mech.cli._app import (
    LIST_HELP,
    GameOptions,
    IntervalOptions,
    Terminal,
    command,
    format_choice,
    with_options,
)
from rlhf_mech.cli._numbers import number
from rlhf_mech.cli._uncertainty import CiSeedOption, sweep_intervals
from rlhf_mech.render import SWEEP_FORMATS

SweepFormatOption = format_choice("SweepFormat", SWEEP_FORMATS)


@with_options
def sweep_command(
    game_file: GameOptions,
    *,
    group: Annotated[str | None, typer.Option(help="The group that misreports.")] = None,
    all_groups: Annotated[bool, typer.Option("--all-groups", help="Sweep every group in turn.")] = False,
    alpha: Annotated[str | None, typer.Option(help=f"Strategy 1, report size alpha*w: {LIST_HELP}.")] = None,
    beta: Annotated[
        str | None, typer.Option(help=f"Strategy 2, report beta*rm + (1-beta)*rm_-i: {LIST_HELP}.")
    ] = None,
    epsilon: Annotated[
        str | None, typer.Option(help=f"Theorem 4.2, polarised report +-eps: {LIST_HELP}.")
    ] = None,
    report_reward: Annotated[
        str | None, typer.Option(help="Explicit report: rewards as a comma list or a .csv/.npy file.")
    ] = None,
    report_size: Annotated[
        float | None, typer.Option(parser=number(), help="Explicit report: the reported size.")
    ] = None,
    prompt: Annotated[
        int | None,
        typer.Option(
            parser=number(integer=True, low=0),
            help="A game of many prompts: sweep prompt K (0 to P-1) as its own game.",
        ),
    ] = None,
    output_format: SweepFormatOption = "table",  # type: ignore[assignment]
    plot: Annotated[
        Path | None, typer.Option(help="Also draw the sweep to FILE (.png, .pdf, .svg; matplotlib).")
    ] = None,
    intervals: IntervalOptions,
    seed: CiSeedOption = 0,
    terminal: Terminal,
) -> None:
    """Sweep one group's misreports, the others' reports fixed: truthful versus strategic."""
    with command(terminal) as out:
        from rlhf_mech.cli._options import SweepRequest
        from rlhf_mech.render import save_sweep_plot
        from rlhf_mech.render._internal import sweep_progress

        ci_options = intervals.options(seed)
        options = {"alpha": alpha, "beta": beta, "epsilon": epsilon, "report_reward": report_reward}
        request = SweepRequest.from_options(
            group=group, all_groups=all_groups, report_size=report_size, prompt=prompt, **options
        )
        game = request.outcome_set(game_file.load(out))
        fmt = SWEEP_FORMATS[output_format]
        progress = sweep_progress(out.err, request.points(game), not terminal.quiet)
        with out.step("sweep"), progress as on_progress:
            # only JSON shows the distributions
            results = request.run(game, None, on_progress, keep_distributions=fmt.name == "json")
        with out.step("bootstrap"):
            results = sweep_intervals(results, ci_options)
        with out.step("write"):
            if plot is not None:
                out.message(f"plot written to {save_sweep_plot(results, plot)}")
            out.emit(fmt, results)
