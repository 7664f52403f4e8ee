"""``rlhf-mech sweep``: one group's misreports of a family, the others' reports fixed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rlhf_mech.cli._app import (
    LIST_HELP,
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
    sweep_intervals,
)
from rlhf_mech.render import SWEEP_FORMATS

SweepFormat = format_enum("SweepFormat", SWEEP_FORMATS)


def sweep_command(
    game_file: GameFile,
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
    training: TrainingOption = None,
    training_param: TrainingParamOption = None,
    payment: PaymentOption = None,
    payment_param: PaymentParamOption = None,
    output_format: Annotated[SweepFormat, format_option(SWEEP_FORMATS)] = "table",  # type: ignore[valid-type, assignment]
    plot: Annotated[
        Path | None, typer.Option(help="Also draw the sweep to FILE (.png, .pdf, .svg; matplotlib).")
    ] = None,
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
    """Sweep one group's misreports, the others' reports fixed: truthful versus strategic."""
    with command(color, quiet, verbose) as out:
        from rlhf_mech.cli._options import SweepRequest
        from rlhf_mech.render import save_sweep_plot, sweep_progress

        options = {"alpha": alpha, "beta": beta, "epsilon": epsilon, "report_reward": report_reward}
        request = SweepRequest.from_options(
            group=group, all_groups=all_groups, report_size=report_size, **options
        )
        game = game_with_rules(
            out, game_file, allow_outside_refs, training, training_param, payment, payment_param
        )
        fmt = SWEEP_FORMATS[output_format]
        with out.step("sweep"), sweep_progress(out.err, request.points(game), not quiet) as on_progress:
            # only JSON shows the distributions
            results = request.run(game, None, on_progress, keep_distributions=fmt.name == "json")
        with out.step("bootstrap"):
            results = sweep_intervals(results, ci, resamples, seed, interval, estimand, design)
        with out.step("write"):
            if plot is not None:
                out.message(f"plot written to {save_sweep_plot(results, plot)}")
            emit(out, fmt, results)
