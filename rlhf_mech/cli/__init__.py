"""The ``rlhf-mech`` command line: thin wiring from files to the core and to rendering.

Exit codes: 0 clean, 1 an audit found violations, 2 bad input (as Click uses for bad options).
Every command takes ``-q``/``-v`` and ``--color``; a game file may be ``-`` (standard input).
Only Typer, Rich and the core registries (for the options' vocabulary) are imported at start-up;
each command imports the layers it uses, so ``--help`` stays fast.
"""

from __future__ import annotations

import glob
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rlhf_mech.cli._output import ColorChoice, Output, print_error
from rlhf_mech.core import FILE_NORMALIZATIONS, PAYMENT_RULES, TRAINING_RULES, PromptGame, Scale
from rlhf_mech.errors import RlhfMechError

if TYPE_CHECKING:
    from rlhf_mech.analysis import AuditSummary, GameAudit  # noqa: F401 (annotations)
    from rlhf_mech.core import Game
    from rlhf_mech.render import InvalidFile

app = typer.Typer(
    name="rlhf-mech",
    help="Audit the incentives of multi-group LLM fine-tuning mechanisms (SW-Max + payments).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


#: The payment rules of the registry, as a Typer choice.
PaymentRule = StrEnum("PaymentRule", {name: name for name in PAYMENT_RULES})  # type: ignore[misc]
#: The training rules of the registry, as a Typer choice.
TrainingRule = StrEnum("TrainingRule", {name: name for name in TRAINING_RULES})  # type: ignore[misc]
#: The normalisations a core game may declare, as a Typer choice.
Normalization = StrEnum("Normalization", {n.value: n.value for n in FILE_NORMALIZATIONS})  # type: ignore[misc]
#: The candidate-game scales, as a Typer choice.
ScaleChoice = StrEnum("ScaleChoice", {s.value: s.value for s in Scale})  # type: ignore[misc]


class OutputFormat(StrEnum):
    """Output formats of ``rlhf-mech solve``."""

    table = "table"
    json = "json"


class SweepFormat(StrEnum):
    """Output formats of ``rlhf-mech sweep``."""

    table = "table"
    json = "json"
    csv = "csv"


class AuditFormat(StrEnum):
    """Output formats of ``rlhf-mech audit`` (JUnit also goes to a file with ``--junit``)."""

    text = "text"
    json = "json"
    junit = "junit"
    github = "github"
    sarif = "sarif"


def _version(value: bool) -> None:
    if value:
        from rlhf_mech import __version__

        typer.echo(f"rlhf-mech {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Audit the incentives of multi-group LLM fine-tuning mechanisms (SW-Max + payments)."""


@contextmanager
def user_errors(out: Output) -> Iterator[None]:
    """Turn the domain exception into lines on stderr (one per problem) and exit code 2."""
    try:
        yield
    except RlhfMechError as exc:
        for line in exc.lines():
            out.error(line)
        raise typer.Exit(2) from None


QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Nothing on stderr but errors (no progress, notes).")
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Also print each step and its time.")]
ColorOption = Annotated[
    ColorChoice,
    typer.Option("--color", help="Colour: auto (terminals, unless NO_COLOR is set), always or never."),
]


def _output(color: ColorChoice, quiet: bool, verbose: bool) -> Output:
    out = Output(color, quiet=quiet, verbose=verbose)
    if quiet and verbose:
        out.error("give at most one of -q/--quiet and -v/--verbose")
        raise typer.Exit(2)
    return out


def _read_game(path: Path | str, allow_outside_refs: bool = False) -> Game:
    """The game in ``path``; ``-`` reads it from standard input (no more of it than a file may hold)."""
    from rlhf_mech.files import MAX_FILE_BYTES, STDIN_NAME, load_game

    if str(path) == "-":
        stream = getattr(sys.stdin, "buffer", sys.stdin)  # bytes, decoded (and checked) by load_game
        text = stream.read(MAX_FILE_BYTES + 1)
        return load_game(STDIN_NAME, text=text, allow_outside_refs=allow_outside_refs)
    return load_game(path, allow_outside_refs=allow_outside_refs)


def _overridden(
    out: Output,
    game: Game,
    training: Any,
    training_param: list[str] | None,
    payment: Any,
    payment_param: list[str] | None,
) -> Game:
    """The game under the rules of ``--training``/``--payment`` and their parameters."""
    from rlhf_mech.cli._options import rules_override

    game, note = rules_override(
        game,
        payment=payment.value if payment else None,
        payment_settings=payment_param,
        training=training.value if training else None,
        training_settings=training_param,
    )
    if note:
        out.message(note)
    return game


GameFile = Annotated[
    Path, typer.Argument(help="Game file (YAML, format v1); - reads standard input.", show_default=False)
]
PaymentOption = Annotated[
    PaymentRule | None, typer.Option("--payment", help="Override the file's payment rule.")
]
PaymentParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--payment-param",
        help="KEY=VALUE, repeatable: a parameter of the payment rule (e.g. steps=20, step_size=0.5).",
    ),
]
TrainingOption = Annotated[
    TrainingRule | None, typer.Option("--training", help="Override the file's training rule.")
]
TrainingParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--training-param",
        help="KEY=VALUE, repeatable: a parameter of the training rule (e.g. over=groups for maxmin).",
    ),
]
OutsideOption = Annotated[
    bool,
    typer.Option(
        "--allow-outside-refs",
        help="Let {file: ...} references leave the game file's folder (absolute paths, .., symlinks out).",
    ),
]


@app.command()
def solve(
    game_file: GameFile,
    *,
    training: TrainingOption = None,
    training_param: TrainingParamOption = None,
    payment: PaymentOption = None,
    payment_param: PaymentParamOption = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "--output-format", help="Output format.")
    ] = OutputFormat.table,
    top: Annotated[int, typer.Option(min=1, help="Outcomes shown in the distribution table.")] = 10,
    save_distribution: Annotated[
        Path | None,
        typer.Option(
            help="Write the distributions to FILE.npy (row 0 truthful, row 1 reported); "
            "the JSON then references that file instead of listing them.",
            show_default=False,
        ),
    ] = None,
    allow_outside_refs: OutsideOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    color: ColorOption = ColorChoice.auto,
) -> None:
    """Run the mechanism on a game: truthful versus reported profiles, side by side."""
    out = _output(color, quiet, verbose)
    with user_errors(out):
        if save_distribution is not None and save_distribution.suffix != ".npy":
            raise RlhfMechError(f"--save-distribution {save_distribution}: the file must end in .npy")
        from rlhf_mech.core import solve as solve_game
        from rlhf_mech.files import write_array
        from rlhf_mech.render import distribution_rows, render_solution, solution_to_json

        with out.step(f"load {game_file}"):
            game = _overridden(
                out,
                _read_game(game_file, allow_outside_refs),
                training,
                training_param,
                payment,
                payment_param,
            )
        if isinstance(game, PromptGame):
            _solve_prompts(out, game, output_format, save_distribution)
            return
        with out.step("solve"):
            solution = solve_game(game)
        with out.step("write"):
            if save_distribution is not None:
                write_array(save_distribution, distribution_rows(solution))
                out.message(f"distributions written to {save_distribution} (row 0 truthful, row 1 reported)")
            if output_format is OutputFormat.json:
                out.write_json(
                    solution_to_json(solution, str(save_distribution) if save_distribution else None)
                )
            else:
                out.print(render_solution(solution, top=top))


@app.command()
def schema(
    candidates: Annotated[
        bool, typer.Option("--candidates", help="The candidate-model game format (docs/candidates.md).")
    ] = False,
    audit: Annotated[
        bool, typer.Option("--audit", help="The JSON that `audit --format json` prints.")
    ] = False,
    *,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    color: ColorOption = ColorChoice.auto,
) -> None:
    """Print a JSON Schema: of game files (default), candidate-model games, or audit JSON."""
    out = _output(color, quiet, verbose)
    with user_errors(out):
        if candidates and audit:
            raise RlhfMechError("give at most one of --candidates and --audit")
        if audit:
            from rlhf_mech.render import AUDIT_SCHEMA_VERSION, audit_schema

            out.write_json(audit_schema(AUDIT_SCHEMA_VERSION))
            return
        from rlhf_mech.files import candidate_game_schema, game_schema

        out.write_json(candidate_game_schema() if candidates else game_schema())


ListOption = "a comma list (0.2,0.5,1,2) or start:stop:step"


def _solve_prompts(
    out: Output, game: PromptGame, output_format: OutputFormat, save_distribution: Path | None
) -> None:
    """``solve`` on a game of many prompts: the weighted means, and each prompt's share."""
    from rlhf_mech.core import solve_prompts
    from rlhf_mech.render import prompt_solution_to_json, render_prompt_solution

    if save_distribution is not None:
        raise RlhfMechError(
            "--save-distribution: a game of many prompts has one distribution per prompt "
            "(--format json lists them)"
        )
    with out.step(f"solve {game.n_prompts} prompts"):
        solution = solve_prompts(game)
    with out.step("write"):
        if output_format is OutputFormat.json:
            out.write_json(prompt_solution_to_json(solution))
        else:
            out.print(render_prompt_solution(solution))


@app.command(name="sweep")
def sweep_command(
    game_file: GameFile,
    *,
    group: Annotated[str | None, typer.Option(help="The group that misreports.")] = None,
    all_groups: Annotated[bool, typer.Option("--all-groups", help="Sweep every group in turn.")] = False,
    alpha: Annotated[str | None, typer.Option(help=f"Strategy 1, report size alpha*w: {ListOption}.")] = None,
    beta: Annotated[
        str | None, typer.Option(help=f"Strategy 2, report beta*rm + (1-beta)*rm_-i: {ListOption}.")
    ] = None,
    epsilon: Annotated[
        str | None, typer.Option(help=f"Theorem 4.2, polarised report +-eps: {ListOption}.")
    ] = None,
    report_reward: Annotated[
        str | None, typer.Option(help="Explicit report: rewards as a comma list or a .csv/.npy file.")
    ] = None,
    report_size: Annotated[float | None, typer.Option(help="Explicit report: the reported size.")] = None,
    training: TrainingOption = None,
    training_param: TrainingParamOption = None,
    payment: PaymentOption = None,
    payment_param: PaymentParamOption = None,
    output_format: Annotated[
        SweepFormat, typer.Option("--format", "--output-format", help="Output format.")
    ] = SweepFormat.table,
    plot: Annotated[
        Path | None, typer.Option(help="Also draw the sweep to FILE (.png, .pdf, .svg; matplotlib).")
    ] = None,
    allow_outside_refs: OutsideOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    color: ColorOption = ColorChoice.auto,
) -> None:
    """Sweep one group's misreports, the others' reports fixed: truthful versus strategic."""
    out = _output(color, quiet, verbose)
    with user_errors(out):
        from rlhf_mech.cli._options import SweepRequest
        from rlhf_mech.render import (
            render_sweeps,
            save_sweep_plot,
            sweep_progress,
            sweeps_to_csv,
            sweeps_to_json,
        )

        options = {"alpha": alpha, "beta": beta, "epsilon": epsilon, "report_reward": report_reward}
        request = SweepRequest.from_options(
            group=group, all_groups=all_groups, report_size=report_size, **options
        )
        with out.step(f"load {game_file}"):
            game = _overridden(
                out,
                _read_game(game_file, allow_outside_refs),
                training,
                training_param,
                payment,
                payment_param,
            )
        if isinstance(game, PromptGame):
            raise RlhfMechError(
                f"{game_file}: a game of many prompts; sweep takes one outcome set (solve shows each "
                "prompt's gains, audit checks the game prompt by prompt)"
            )
        with out.step("sweep"), sweep_progress(out.err, request.points(game), not quiet) as on_progress:
            json_out = output_format is SweepFormat.json  # only JSON shows the distributions
            results = request.run(game, None, on_progress, json_out)
        with out.step("write"):
            if plot is not None:
                out.message(f"plot written to {save_sweep_plot(results, plot)}")
            if output_format is SweepFormat.json:
                out.write_json(sweeps_to_json(results))
            elif output_format is SweepFormat.csv:
                out.write(sweeps_to_csv(results))
            else:
                out.print(render_sweeps(results))


# --- implementability (issue 13): cycle monotonicity of the training rule, appendix E -------


class ImplementabilityFormat(StrEnum):
    """Output formats of ``rlhf-mech implementability``."""

    text = "text"
    json = "json"


@app.command("implementability")
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
    points: Annotated[int, typer.Option(help="Grid resolution, or the number of random points.")] = 4,
    sizes: Annotated[
        str | None,
        typer.Option(help="Sizes paired with every reward point, a comma list (default: the true size)."),
    ] = None,
    type_reward: Annotated[
        list[str] | None,
        typer.Option(help="A reward to add as a type (comma list or .csv/.npy file), repeatable."),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the random type set.")] = 0,
    tol: Annotated[float, typer.Option(min=0.0, help="Tolerance of a cycle sum (each edge +tol/K).")] = 1e-9,
    max_types: Annotated[int, typer.Option(min=2, help="Most types allowed (time grows as K^3).")] = 2000,
    graph: Annotated[
        str, typer.Option(help="Shortest paths by scipy (K rounds, in C) or numpy (stops when settled).")
    ] = "scipy",
    save_cycle: Annotated[
        Path | None,
        typer.Option(
            help="Write each step of a negative cycle as a game file into DIR (rlhf-mech solve replays it)."
        ),
    ] = None,
    rows: Annotated[int, typer.Option(min=1, help="Payment rows shown in the table.")] = 10,
    output_format: Annotated[
        ImplementabilityFormat, typer.Option("--output-format", "--format", help="Output format.")
    ] = ImplementabilityFormat.text,
    allow_outside_refs: OutsideOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    color: ColorOption = ColorChoice.auto,
) -> None:
    """Decide cycle monotonicity (Definition E.1) of the training rule on a set of one group's types.

    Prints a negative cycle (no payment rule makes the rule DSIC, Proposition E.2) or the
    Rochet payments that make it DSIC on the set, beside p^AFF for SW-Max. Exit code 0 when
    monotone on the set, 1 when a negative cycle is found, 2 on bad input.
    """
    out = _output(color, quiet, verbose)
    with user_errors(out):
        import numpy as np

        from rlhf_mech.analysis import group_index as find_group
        from rlhf_mech.analysis import implementability, type_set
        from rlhf_mech.cli._options import parse_parameters
        from rlhf_mech.files import read_reward
        from rlhf_mech.files import save_cycle as write_cycle
        from rlhf_mech.render import implementability_to_json, render_implementability

        size_list = None if sizes is None else parse_parameters(sizes, "--sizes")
        with out.step(f"load {game_file}"):
            game = _read_game(game_file, allow_outside_refs)
        if isinstance(game, PromptGame):
            raise RlhfMechError(
                f"{game_file}: a game of many prompts; implementability takes one outcome set "
                "(a game of one prompt)"
            )
        if group is None:
            raise RlhfMechError(f"give --group NAME; the groups are {', '.join(game.group_names)}")
        i = find_group(game, group)
        extra = [read_reward(text, game, "--type-reward") for text in type_reward or []]
        if types == "user" and not extra:
            raise RlhfMechError("--types user needs at least one --type-reward")
        with out.step("types"):
            user = user_sizes = None
            if extra:
                size_each = size_list if size_list is not None else game.truth.sizes[i : i + 1]
                user = np.repeat(np.array(extra), size_each.size, axis=0)
                user_sizes = np.tile(size_each, len(extra))
            type_points = type_set(game, i, types, points, size_list, seed, user, user_sizes, max_types)
        with out.step(f"cycle monotonicity on {type_points.count} types"):
            result = implementability(game, i, type_points, tol=tol, graph=graph)
        with out.step("write"):
            saved: list[str] = []
            if save_cycle is not None and result.cycle is not None:
                saved = [str(p) for p in write_cycle(result, save_cycle)]
                out.message(f"negative cycle written to {save_cycle} ({len(saved)} game files)")
            if output_format is ImplementabilityFormat.json:
                out.write_json(implementability_to_json(result, saved))
            else:
                out.print(render_implementability(result, rows=rows))
    raise typer.Exit(0 if result.monotone else 1)


# --- end of implementability -----------------------------------------------------------------


class ImportKind(StrEnum):
    candidates = "candidates"
    responses = "responses"


class LogFormat(StrEnum):
    """``import --from``: the layouts of :data:`rlhf_mech.files.LAYOUTS` (spelled here so that
    start-up does not load the importers; a test checks the two agree)."""

    trl = "trl"
    openrlhf = "openrlhf"
    mod = "mod"
    ric = "ric"
    csv = "csv"
    jsonl = "jsonl"


class Aggregation(StrEnum):
    """``import --aggregation``: TRL's ``multi_objective_aggregation`` (``rlhf_mech.files.AGGREGATIONS``)."""

    sum_then_normalize = "sum_then_normalize"
    normalize_then_sum = "normalize_then_sum"


@app.command("import")
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
    layout: Annotated[
        LogFormat | None,
        typer.Option(
            "--from",
            help="The files' layout. Default: detected from names and first lines (the report says so).",
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
        typer.Option(help="trl: NAME=W,... the run's reward_weights. Default: from the run's config."),
    ] = None,
    aggregation: Annotated[
        Aggregation | None,
        typer.Option(help="trl: the run's multi_objective_aggregation. Default: from the run's config."),
    ] = None,
    step: Annotated[int | None, typer.Option(help="trl: keep the completions of this step only.")] = None,
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
        ScaleChoice, typer.Option(help="Candidates: minmax rescales each reward model to [0, 1].")
    ] = ScaleChoice.minmax,  # type: ignore[attr-defined]
    normalization: Annotated[Normalization, typer.Option(help="Responses: reward normalisation.")] = (
        Normalization.sum  # type: ignore[attr-defined]
    ),
    divergence: Annotated[str, typer.Option(help="Responses: the training rule's divergence.")] = "kl",
    lam: Annotated[float, typer.Option("--lambda", help="Weight of the divergence.")] = 1.0,
    payment: Annotated[PaymentRule, typer.Option(help="The game's payment rule.")] = (
        PaymentRule.affine_maximizer  # type: ignore[attr-defined]
    ),
    name: Annotated[str | None, typer.Option(help="The game's name.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the output file.")] = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    color: ColorOption = ColorChoice.auto,
) -> None:
    """Build a game file from the logs an RLHF trainer writes (docs/import.md, docs/candidates.md)."""
    out = _output(color, quiet, verbose)
    to_stdout = str(output) == "-"
    given = {
        "--as": kind,
        "--reward-col": reward_col,
        "--reward-names": reward_names,
        "--reward-weights": reward_weights,
        "--aggregation": aggregation,
        "--step": step,
        "--trainer-config": trainer_config,
        "--candidate-col": candidate_col,
        "--logratio-col": logratio_col,
        "--logprob-col": logprob_col,
    }
    with user_errors(out):
        from rlhf_mech.files import (
            LogOptions,
            check_layout_options,
            game_text,
            import_logs,
            log_inputs,
            parse_group_option,
            parse_reward_columns,
            parse_reward_names,
            parse_reward_weights,
            write_game,
        )
        from rlhf_mech.render import render_import, render_log

        if output is None and not inspect:
            raise RlhfMechError("give -o/--output GAME.yaml (or --inspect to read without writing)")
        if output is not None and not to_stdout and output.exists() and not force and not inspect:
            raise RlhfMechError(f"{output} exists; pass --force to overwrite it")
        inputs = log_inputs(files, layout.value if layout else None)
        check_layout_options(inputs, [option for option, value in given.items() if value is not None])
        options = LogOptions(
            reward_columns=parse_reward_columns(reward_col or []),
            reward_names=parse_reward_names(reward_names) if reward_names else None,
            reward_weights=parse_reward_weights(reward_weights) if reward_weights else None,
            aggregation=aggregation.value if aggregation else None,
            step=step,
            trainer_config=trainer_config,
            table={
                "kind": kind.value if kind else None,
                "candidate_column": candidate_col,
                "logratio_column": logratio_col,
                "logprob_column": logprob_col,
                "normalization": normalization.value,
                "divergence": divergence,
            },
        )
        groups = [parse_group_option(g) for g in group or []]
        with out.step("import " + ", ".join(files)):
            imported = import_logs(
                inputs,
                options,
                groups=groups,
                scale=scale.value,
                lam=lam,
                payment_rule=payment.value,
                name=name,
                build=not inspect,
            )
        result = imported.result
        written: tuple[Path, ...] | str = "nothing (--inspect)"
        if result is not None and not inspect:
            assert output is not None
            comment = "\n".join(["Written by rlhf-mech import from " + ", ".join(files), *result.provenance])
            with out.step(f"write {output}"):
                if to_stdout:
                    out.write(game_text(result.game, comment=comment))
                    written = "standard output"
                else:
                    written = write_game(result.game, output, comment=comment)
    if quiet:
        return
    shown = render_log(imported.log, inputs) if result is None else render_import(result, written, inputs)
    out.print(shown, stderr=to_stdout)


def _game_paths(patterns: list[str]) -> tuple[list[Path], list[InvalidFile]]:
    """Files, directories (every *.yaml / *.yml below, sorted) and globs -> game files."""
    from rlhf_mech.render import InvalidFile

    found: list[Path] = []
    missing: list[InvalidFile] = []
    for pattern in patterns:
        path = Path(pattern)
        if pattern == "-" or path.is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        elif glob.has_magic(pattern):
            matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
            found += [p for p in matches if p.is_file()]
            if not matches:
                missing.append(InvalidFile.of(pattern, "no file matches"))
        else:
            missing.append(InvalidFile.of(pattern, "no such file or directory"))
    return list(dict.fromkeys(found)), missing


def _load_games(
    paths: list[Path], allow_outside_refs: bool, limit: float | None
) -> tuple[list[Game], list[InvalidFile]]:
    """Every file that loads (a game of many prompts as its prompts' games,
    :func:`~rlhf_mech.analysis.audited_games`), and the others as invalid: one file's problem
    (any exception, or loading past the time limit) never stops the others."""
    from rlhf_mech.analysis import audited_games, failure_message, time_limit
    from rlhf_mech.render import InvalidFile

    games, invalid = [], []
    for path in paths:
        try:
            with time_limit(limit):
                games.extend(audited_games(_read_game(path, allow_outside_refs)))
        except RlhfMechError as exc:
            invalid.append(InvalidFile.from_error(str(path), exc))
        except Exception as exc:  # isolation, as in run_audits
            invalid.append(InvalidFile.of(str(path), failure_message(exc)))
    return games, invalid


class AuditBackend(StrEnum):
    local = "local"
    dask = "dask"


def _default(value: object) -> str:
    return f"{value} or [tool.rlhf-mech]"


@app.command("audit")
def audit_command(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Game files, directories (*.yaml, *.yml), globs, or - (standard input). "
            "Default: paths of [tool.rlhf-mech] in pyproject.toml.",
            show_default=False,
        ),
    ] = None,
    *,
    output_format: Annotated[
        AuditFormat | None,
        typer.Option(
            "--output-format",
            "--format",
            help="text, json, junit, github (workflow annotations) or sarif (2.1.0, code scanning).",
            show_default=_default("text"),
        ),
    ] = None,
    junit: Annotated[Path | None, typer.Option(help="Also write JUnit XML to FILE (for CI).")] = None,
    counterexamples: Annotated[
        Path | None,
        typer.Option(
            "--save-counterexamples", help="Write each DSIC-violating report as a game file into DIR."
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(min=0, help="Seed of the random search.", show_default=_default(0))
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option(
            min=10, help="Report evaluations per group and payment rule.", show_default=_default(200)
        ),
    ] = None,
    tol: Annotated[
        float | None,
        typer.Option(min=0.0, help="Tolerance of every inequality.", show_default=_default("1e-09")),
    ] = None,
    noise: Annotated[
        float | None, typer.Option(help="Theorem 4.12: noise bound eps > 0 on every reported reward.")
    ] = None,
    samples: Annotated[
        int | None, typer.Option(min=1, help="Noise samples per estimate.", show_default=_default(64))
    ] = None,
    others: Annotated[
        str,
        typer.Option(
            help="The other groups' reports each best response is searched against: file (the "
            "file's reports), truthful, 'grid K' (and K Halton profiles) or 'random N' (and N random ones)."
        ),
    ] = "file",
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-j", min=1, help="Parallel processes.", show_default=_default(1)),
    ] = None,
    backend: Annotated[
        AuditBackend, typer.Option(help="local processes or a dask cluster.")
    ] = AuditBackend.local,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (tcp://HOST:PORT) for --backend dask.")
    ] = None,
    time_limit_s: Annotated[
        float,
        typer.Option(
            "--time-limit",
            min=0.0,
            help="Seconds one file may take to load, and each part of its audit to run; past it the "
            "file is reported invalid and the others go on (0: no limit).",
        ),
    ] = 600.0,
    allow_outside_refs: OutsideOption = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the summary line (text), no progress.")
    ] = False,
    verbose: VerboseOption = False,
    color: ColorOption = ColorChoice.auto,
) -> None:
    """Audit game files: DSIC, IR, payments >= 0, the need for payment (and noise, expect:).

    Exit code 0 when every check passes, 1 when one fails, 2 when a file is invalid (a file
    that cannot be loaded or whose audit fails or runs past --time-limit; the others are
    audited all the same) or there is nothing to audit. Options not given come from
    [tool.rlhf-mech] in pyproject.toml.
    """
    out = _output(color, quiet, verbose)
    with user_errors(out):
        from rlhf_mech.cli._config import load_config

        config = load_config([f.value for f in AuditFormat])
        if (backend is AuditBackend.dask) != (scheduler is not None):
            raise RlhfMechError("--backend dask and --scheduler go together")
        noise = config.get("noise", noise, None)
        if noise is not None and not noise > 0:
            raise RlhfMechError(f"--noise must be > 0, got {noise}")
        patterns = list(paths or config.paths)
        if not patterns:
            raise RlhfMechError(
                "nothing to audit: give game files or directories, or set paths in "
                "[tool.rlhf-mech] of pyproject.toml"
            )
        from rlhf_mech.analysis import (
            DEFAULT_BUDGET,
            DEFAULT_SAMPLES,
            DEFAULT_TOL,
            AuditOptions,
            run_audits,
            summarise,
        )
        from rlhf_mech.cli._options import parse_others
        from rlhf_mech.files import save_counterexamples
        from rlhf_mech.render import InvalidFile, audit_progress

        options = AuditOptions(
            budget=config.get("budget", budget, DEFAULT_BUDGET),
            tol=config.get("tol", tol, DEFAULT_TOL),
            noise=noise,
            samples=config.get("samples", samples, DEFAULT_SAMPLES),
            others=parse_others(others),
        )
        fmt = AuditFormat(config.get("output-format", output_format, AuditFormat.text))
        limit = time_limit_s or None
        with out.step("load " + " ".join(patterns)):
            paths_found, invalid = _game_paths(patterns)
            games, unreadable = _load_games(paths_found, allow_outside_refs, limit)
            invalid += unreadable
        if not games and not invalid:
            raise RlhfMechError(f"nothing to audit: no game files (*.yaml, *.yml) in {' '.join(patterns)}")
        for bad in invalid:
            for line in bad.message.splitlines():
                out.error(line)
        tasks = sum(g.n_groups for g in games)
        client = _dask_client(scheduler) if scheduler is not None else None
        failed: list[InvalidFile] = []

        def on_failure(g: int, message: str) -> None:
            failed.append(InvalidFile.of(games[g].source or games[g].name, message))

        try:
            with out.step("audit"), audit_progress(out.err, tasks, enabled=not quiet) as advance:
                audits: list[GameAudit] = run_audits(
                    games,
                    options,
                    seed=config.get("seed", seed, 0),
                    workers=config.get("workers", workers, 1),
                    dask_client=client,
                    on_task_done=advance,
                    on_failure=on_failure,
                    time_limit_s=limit,
                )
        finally:
            if client is not None:
                client.close()
        with out.step("write"):
            saved: dict[tuple[int, str], str] = {}
            if counterexamples:

                def on_error(k: int, message: str) -> None:
                    source = audits[k].game.source or audits[k].game.name
                    failed.append(InvalidFile(source, message, reason=message))

                saved = save_counterexamples(audits, counterexamples, on_error)
            for bad in failed:
                out.error(bad.message)
            invalid += failed
            summary = summarise(audits, len(invalid))
            if junit is not None:
                from rlhf_mech.render import to_junit

                try:
                    junit.write_text(to_junit(audits, invalid), encoding="utf-8")
                except OSError as exc:
                    raise RlhfMechError(f"cannot write {junit}: {exc.strerror or exc}") from None
            _print_audit(out, fmt, audits, invalid, summary, saved)
    raise typer.Exit(summary.exit_code)


def _print_audit(
    out: Output,
    fmt: AuditFormat,
    audits: list[GameAudit],
    invalid: list[InvalidFile],
    summary: Any,
    saved: Any,
) -> None:
    from rlhf_mech import __version__
    from rlhf_mech.render import audits_to_json, render_audit, to_github, to_junit, to_sarif

    if fmt is AuditFormat.json:
        out.write_json(audits_to_json(audits, invalid, summary, saved))
    elif fmt is AuditFormat.sarif:
        out.write_json(to_sarif(audits, invalid, __version__))
    elif fmt is AuditFormat.junit:
        out.write(to_junit(audits, invalid))
    elif fmt is AuditFormat.github:
        out.write(to_github(audits, invalid, summary))
    else:
        out.print(render_audit(audits, invalid, summary, saved, quiet=out.quiet))


def _dask_client(scheduler: str) -> Any:  # pragma: no cover - exercised with dask installed
    """A client of the dask scheduler at ``scheduler`` (the ``dask`` extra)."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise RlhfMechError(
            "--backend dask needs the optional dask extra: pip install 'rlhf-mech[dask]'"
        ) from None
    try:
        return Client(scheduler, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise RlhfMechError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None


def run() -> Callable[[], Any]:
    return app()


__all__ = ["app", "print_error", "run"]
