"""``rlhf-mech import``: a game file from the logs an RLHF trainer writes."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from rlhf_mech.cli._app import (
    Terminal,
    choices,
    command,
    with_options,
)
from rlhf_mech.cli._numbers import number
from rlhf_mech.errors import RlhfMechError


class ImportKind(StrEnum):
    """``import --as``: what the rows of a generic table are."""

    candidates = "candidates"
    responses = "responses"


@with_options
def import_game(
    files: Annotated[
        list[str],
        typer.Argument(
            help="Log files or run folders: TRL completions_*.parquet (or the run's output_dir), MOD/RiC "
            "eval_data_pref*.csv (or their folder), OpenRLHF reward JSONL (NAME=FILE names the reward "
            "model), or generic .csv/.jsonl evaluation files.",
            show_default=False,
        ),
    ],
    *,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Game file to write (YAML); big arrays go beside it (.npy). - writes the YAML, "
            "every array inline, to standard output (the report then goes to stderr).",
            show_default=False,
        ),
    ] = None,
    prompt_table: Annotated[
        str,
        typer.Option(
            help="A game of many prompts: where its prompts go. auto: a table beside the YAML "
            "(GAME.prompts.npz) above 1,000 prompts, else the YAML; yaml, npz, or parquet "
            "(the parquet extra).",
        ),
    ] = "auto",
    layout: Annotated[
        str | None,
        typer.Option(
            "--from",
            help=f"The files' layout: {choices('layouts')}. Default: detected from names and first lines "
            "(the report says so).",
            show_default=False,
        ),
    ] = None,
    inspect: Annotated[
        bool, typer.Option("--inspect", help="Read the files and print what was read; write nothing.")
    ] = False,
    kind: Annotated[
        ImportKind | None,
        typer.Option(
            "--as",
            help="csv/jsonl: candidates: one trained model per file (or per --candidate-col value); "
            "responses: the rows of one file of initial-model samples are the outcomes. Default: responses "
            "for one file without --candidate-col/--logratio-col, else candidates.",
            show_default=False,
        ),
    ] = None,
    reward_col: Annotated[
        list[str] | None,
        typer.Option(help="NAME=COLUMN, repeatable (csv, jsonl, trl). Default: every numeric column."),
    ] = None,
    reward_names: Annotated[
        str | None,
        typer.Option(help="mod/ric: the run's --reward_names (a,b,c), one per obtained_score{i}."),
    ] = None,
    reward_weights: Annotated[
        str | None,
        typer.Option(
            help="trl: the run's reward_weights: W,W,... in reward_funcs order, or NAME=W,... Default: the "
            "run's config, else inferred from the logged advantage column (checked against it either way)."
        ),
    ] = None,
    aggregation: Annotated[
        str | None,
        typer.Option(
            help=f"trl: the run's multi_objective_aggregation, {choices('aggregations')}. Default: from the "
            "run's config.",
        ),
    ] = None,
    step: Annotated[
        str | None,
        typer.Option(
            help="trl: the step whose samples make the game (N); or all, or a range A-B: one game per step "
            "into the folder -o names, and a table of each group's valuation, payment and largest gain over "
            "training. Default: the initial model's samples (step 1's training batch, else step 0's eval).",
            show_default=False,
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="trl, with several steps: also draw the table over training to FILE (matplotlib)."),
    ] = None,
    trainer_config: Annotated[
        Path | None,
        typer.Option(
            help="trl: a JSON dump of the run's GRPOConfig. Default: training_args.json in the output_dir."
        ),
    ] = None,
    candidate_col: Annotated[str | None, typer.Option(help="Column naming each row's candidate.")] = None,
    logratio_col: Annotated[
        str | None, typer.Option(help="Per-response log pi(y) - log pi_init(y); its mean is the KL estimate.")
    ] = None,
    logprob_col: Annotated[
        str | None, typer.Option(help="Per-response log pi_init(y): the initial distribution (responses).")
    ] = None,
    group: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME:SIZE:PREF with PREF = MODEL or MODEL=W,MODEL=W; repeatable. "
            "Default: one group per reward model, size 1."
        ),
    ] = None,
    scale: Annotated[
        str,
        typer.Option(
            help=f"Candidates: {choices('scales')}; minmax rescales each reward model to [0, 1].",
        ),
    ] = "minmax",
    normalization: Annotated[
        str,
        typer.Option(help=f"Responses: reward normalisation, {choices('normalizations')}."),
    ] = "sum",
    divergence: Annotated[
        str, typer.Option(help=f"Responses: the training rule's divergence, {choices('divergences')}.")
    ] = "kl",
    lam: Annotated[float, typer.Option("--lambda", parser=number(), help="Weight of the divergence.")] = 1.0,
    payment: Annotated[
        str, typer.Option(help=f"The game's payment rule: {choices('payment_rules')}.")
    ] = "affine_maximizer",
    name: Annotated[str | None, typer.Option(help="The game's name.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the output file.")] = False,
    terminal: Terminal,
) -> None:
    """Build a game file from the logs an RLHF trainer writes (docs/import.md, docs/candidates.md)."""
    given = {
        "--as": kind,
        "--reward-col": reward_col,
        "--reward-names": reward_names,
        "--reward-weights": reward_weights,
        "--aggregation": aggregation,
        "--step": step,
        "--trainer-config": trainer_config,
        "--plot": plot,
        "--candidate-col": candidate_col,
        "--logratio-col": logratio_col,
        "--logprob-col": logprob_col,
    }
    with command(terminal) as out:
        from rlhf_mech.files import LogOptions
        from rlhf_mech.files._internal import (
            ImportRequest,
            parse_reward_columns,
            parse_reward_names,
            parse_reward_weights,
            per_step,
            run_import,
        )
        from rlhf_mech.render import save_training_plot
        from rlhf_mech.render._internal import import_report

        options = LogOptions(
            reward_columns=parse_reward_columns(reward_col or []),
            reward_names=parse_reward_names(reward_names) if reward_names else None,
            reward_weights=parse_reward_weights(reward_weights) if reward_weights else None,
            aggregation=aggregation,
            step=step,
            trainer_config=trainer_config,
            table={
                "kind": kind.value if kind else None,
                "candidate_column": candidate_col,
                "logratio_column": logratio_col,
                "logprob_column": logprob_col,
                "normalization": normalization,
                "divergence": divergence,
            },
        )
        request = ImportRequest(
            files=tuple(files),
            output=output,
            layout=layout,
            inspect=inspect,
            force=force,
            options=options,
            given=tuple(option for option, value in given.items() if value is not None),
            groups=tuple(group or ()),
            scale=scale,
            lam=lam,
            payment_rule=payment,
            name=name,
            prompt_table=prompt_table,
        )
        if plot is not None and (inspect or not per_step(step)):
            raise RlhfMechError(
                "--plot draws the table over training: give --step all (or a range) and -o FOLDER"
            )
        with out.step("import " + ", ".join(files)):
            run = run_import(request)
        if run.text is not None:
            out.write(run.text)
        if not terminal.quiet:
            out.print(import_report(run), stderr=request.to_stdout)
        if plot is not None and run.training:
            out.message(f"plot written to {save_training_plot(run.training, plot)}")
