"""The ``rlhf-mech`` command line: thin wiring from files to the core and to rendering.

Exit codes: 0 clean, 1 an audit found violations, 2 bad input (as Click uses for bad options).
Only Typer, Rich and the core registries (for the options' vocabulary) are imported at start-up;
each command imports the layers it uses, so ``--help`` stays fast.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from rlhf_mech.core import FILE_NORMALIZATIONS, PAYMENT_RULES, Scale
from rlhf_mech.errors import RlhfMechError

if TYPE_CHECKING:
    from rlhf_mech.analysis import GameAudit
    from rlhf_mech.core import Game
    from rlhf_mech.render import InvalidFile

app = typer.Typer(
    name="rlhf-mech",
    help="Audit the incentives of multi-group LLM fine-tuning mechanisms (SW-Max + payments).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


#: The payment rules of the registry, as a Typer choice.
PaymentRule = StrEnum("PaymentRule", {name: name for name in PAYMENT_RULES})  # type: ignore[misc]
#: The normalisations a core game may declare, as a Typer choice.
Normalization = StrEnum("Normalization", {n.value: n.value for n in FILE_NORMALIZATIONS})  # type: ignore[misc]
#: The candidate-game scales, as a Typer choice.
ScaleChoice = StrEnum("ScaleChoice", {s.value: s.value for s in Scale})  # type: ignore[misc]


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


class SweepFormat(StrEnum):
    """Output formats of ``rlhf-mech sweep``."""

    table = "table"
    json = "json"
    csv = "csv"


def print_error(message: str) -> None:
    """One line on stderr; the message is printed literally (user text is never markup)."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the domain exception into lines on stderr (one per problem) and exit code 2."""
    try:
        yield
    except RlhfMechError as exc:
        for line in exc.lines():
            print_error(line)
        raise typer.Exit(2) from None


def print_json(data: Any) -> None:
    """JSON on stdout, byte-for-byte the same for the same input."""
    typer.echo(json.dumps(data, indent=2, sort_keys=False))


GameFile = Annotated[Path, typer.Argument(help="Game file (YAML, format v1).", show_default=False)]
PaymentOption = Annotated[
    PaymentRule | None, typer.Option("--payment", help="Override the file's payment rule.")
]
FormatOption = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]
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
    payment: PaymentOption = None,
    output_format: FormatOption = OutputFormat.table,
    top: Annotated[int, typer.Option(min=1, help="Outcomes shown in the distribution table.")] = 10,
    allow_outside_refs: OutsideOption = False,
) -> None:
    """Run the mechanism on a game: truthful versus reported profiles, side by side."""
    from rlhf_mech.core import solve as solve_game
    from rlhf_mech.files import load_game
    from rlhf_mech.render import render_solution, solution_to_json

    with user_errors():
        game = load_game(game_file, allow_outside_refs=allow_outside_refs)
        solution = solve_game(game, payment.value if payment else None)
    if output_format is OutputFormat.json:
        print_json(solution_to_json(solution))
    else:
        console.print(render_solution(solution, top=top))


@app.command()
def schema(
    candidates: Annotated[
        bool, typer.Option("--candidates", help="The candidate-model game format (docs/candidates.md).")
    ] = False,
) -> None:
    """Print the JSON Schema of the game-file format."""
    from rlhf_mech.files import candidate_game_schema, game_schema

    print_json(candidate_game_schema() if candidates else game_schema())


ListOption = "a comma list (0.2,0.5,1,2) or start:stop:step"


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
    payment: PaymentOption = None,
    output_format: Annotated[
        SweepFormat, typer.Option("--format", help="Output format.")
    ] = SweepFormat.table,
    plot: Annotated[Path | None, typer.Option(help="Also draw the sweep to FILE.png (matplotlib).")] = None,
    allow_outside_refs: OutsideOption = False,
) -> None:
    """Sweep one group's misreports, the others' reports fixed: truthful versus strategic."""
    from rlhf_mech.cli._options import SweepRequest
    from rlhf_mech.files import load_game
    from rlhf_mech.render import render_sweeps, save_sweep_plot, sweep_progress, sweep_to_json, sweeps_to_csv

    with user_errors():
        options = {"alpha": alpha, "beta": beta, "epsilon": epsilon, "report_reward": report_reward}
        request = SweepRequest.from_options(
            group=group, all_groups=all_groups, report_size=report_size, **options
        )
        game = load_game(game_file, allow_outside_refs=allow_outside_refs)
        with sweep_progress(err_console, request.points(game)) as on_progress:
            json_out = output_format is SweepFormat.json  # only JSON shows the distributions
            results = request.run(game, payment.value if payment else None, on_progress, json_out)
        if plot is not None:
            err_console.print(f"plot written to {save_sweep_plot(results, plot)}", highlight=False)
    if output_format is SweepFormat.json:
        data = [sweep_to_json(r) for r in results]
        print_json(data if all_groups else data[0])
    elif output_format is SweepFormat.csv:
        typer.echo(sweeps_to_csv(results), nl=False)
    else:
        console.print(render_sweeps(results))


class ImportKind(StrEnum):
    candidates = "candidates"
    responses = "responses"


@app.command("import")
def import_game(
    files: Annotated[list[Path], typer.Argument(help="Evaluation files (.csv, .jsonl).", show_default=False)],
    *,
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="Game file to write (YAML); big arrays go beside it (.npy)."),
    ],
    kind: Annotated[
        ImportKind | None,
        typer.Option(
            "--as",
            help="candidates: one trained model per file (or per --candidate-col value); responses: the rows "
            "of one file of initial-model samples are the outcomes. Default: responses for one file "
            "without --candidate-col/--logratio-col, else candidates.",
            show_default=False,
        ),
    ] = None,
    reward_col: Annotated[
        list[str] | None, typer.Option(help="NAME=COLUMN, repeatable. Default: every numeric column.")
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
) -> None:
    """Build a game file from the evaluation files an RLHF pipeline writes (docs/candidates.md)."""
    from rlhf_mech.files import import_files, parse_group_option, parse_reward_columns, write_game
    from rlhf_mech.render import render_import

    with user_errors():
        if output.exists() and not force:
            raise RlhfMechError(f"{output} exists; pass --force to overwrite it")
        result = import_files(
            files,
            kind=kind.value if kind else None,
            reward_columns=parse_reward_columns(reward_col or []),
            candidate_column=candidate_col,
            logratio_column=logratio_col,
            logprob_column=logprob_col,
            groups=[parse_group_option(g) for g in group or []],
            scale=scale.value,
            normalization=normalization.value,
            divergence=divergence,
            lam=lam,
            payment_rule=payment.value,
            name=name,
        )
        comment = "Written by rlhf-mech import from " + ", ".join(str(f) for f in files)
        written = write_game(result.game, output, comment=comment)
    console.print(render_import(result, written))


class AuditBackend(StrEnum):
    local = "local"
    dask = "dask"


def _game_paths(patterns: list[str]) -> tuple[list[Path], list[InvalidFile]]:
    """Files, directories (every *.yaml / *.yml below, sorted) and globs -> game files."""
    from rlhf_mech.render import InvalidFile

    found: list[Path] = []
    missing: list[InvalidFile] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(pattern):
            matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
            found += [p for p in matches if p.is_file()]
            if not matches:
                missing.append(InvalidFile(pattern, f"{pattern}: no file matches"))
        else:
            missing.append(InvalidFile(pattern, f"{pattern}: no such file or directory"))
    return list(dict.fromkeys(found)), missing


def _load_games(
    paths: list[Path], allow_outside_refs: bool, limit: float | None
) -> tuple[list[Game], list[InvalidFile]]:
    """Every file that loads, and the others as invalid: one file's problem (any exception,
    or loading past the time limit) never stops the others."""
    from rlhf_mech.analysis import failure_message, time_limit
    from rlhf_mech.files import load_game
    from rlhf_mech.render import InvalidFile

    games, invalid = [], []
    for path in paths:
        try:
            with time_limit(limit):
                games.append(load_game(path, allow_outside_refs=allow_outside_refs))
        except RlhfMechError as exc:
            invalid.append(InvalidFile(str(path), str(exc)))
        except Exception as exc:  # isolation, as in run_audits
            invalid.append(InvalidFile(str(path), f"{path}: {failure_message(exc)}"))
    return games, invalid


@app.command("audit")
def audit_command(
    paths: Annotated[
        list[str],
        typer.Argument(help="Game files, directories (*.yaml, *.yml) or globs.", show_default=False),
    ],
    *,
    output_format: FormatOption = OutputFormat.table,
    junit: Annotated[Path | None, typer.Option(help="Also write JUnit XML to FILE (for CI).")] = None,
    counterexamples: Annotated[
        Path | None,
        typer.Option(
            "--save-counterexamples", help="Write each DSIC-violating report as a game file into DIR."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the random search.")] = 0,
    budget: Annotated[int, typer.Option(min=10, help="Report evaluations per group and payment rule.")] = 200,
    tol: Annotated[float, typer.Option(min=0.0, help="Tolerance of every inequality.")] = 1e-9,
    noise: Annotated[
        float | None, typer.Option(help="Theorem 4.12: noise bound eps > 0 on every reported reward.")
    ] = None,
    samples: Annotated[int, typer.Option(min=1, help="Noise samples per estimate.")] = 64,
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Parallel processes.")] = 1,
    backend: Annotated[
        AuditBackend, typer.Option(help="local processes or a dask cluster.")
    ] = AuditBackend.local,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (tcp://HOST:PORT) for --backend dask.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the summary line.")] = False,
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
) -> None:
    """Audit game files: DSIC, IR, payments >= 0, the need for payment (and noise, expect:).

    Exit code 0 when every check passes, 1 when one fails, 2 when a file is invalid (a file
    that cannot be loaded or whose audit fails or runs past --time-limit; the others are
    audited all the same).
    """
    from rlhf_mech.analysis import AuditOptions, run_audits, summarise
    from rlhf_mech.files import save_counterexamples
    from rlhf_mech.render import InvalidFile, audit_progress, audits_to_json, render_audit, to_junit

    if (backend is AuditBackend.dask) != (scheduler is not None):
        print_error("--backend dask and --scheduler go together")
        raise typer.Exit(2)
    if noise is not None and not noise > 0:
        print_error(f"--noise must be > 0, got {noise}")
        raise typer.Exit(2)
    options = AuditOptions(budget=budget, tol=tol, noise=noise, samples=samples)
    limit = time_limit_s or None
    paths_found, invalid = _game_paths(paths)
    games, unreadable = _load_games(paths_found, allow_outside_refs, limit)
    invalid += unreadable
    for bad in invalid:
        for line in bad.message.splitlines():
            print_error(line)
    with user_errors():
        tasks = sum(g.n_groups for g in games)
        client = _dask_client(scheduler) if scheduler is not None else None
        failed: list[InvalidFile] = []

        def on_failure(g: int, message: str) -> None:
            source = games[g].source or games[g].name
            failed.append(InvalidFile(source, f"{source}: {message}"))

        try:
            with audit_progress(err_console, tasks, enabled=not quiet) as advance:
                audits: list[GameAudit] = run_audits(
                    games,
                    options,
                    seed=seed,
                    workers=workers,
                    dask_client=client,
                    on_task_done=advance,
                    on_failure=on_failure,
                    time_limit_s=limit,
                )
        finally:
            if client is not None:
                client.close()
        saved: dict[tuple[int, str], str] = {}
        if counterexamples:

            def on_error(k: int, message: str) -> None:
                failed.append(InvalidFile(audits[k].game.source or audits[k].game.name, message))

            saved = save_counterexamples(audits, counterexamples, on_error)
        for bad in failed:
            print_error(bad.message)
        invalid += failed
        summary = summarise(audits, len(invalid))
        if junit is not None:
            try:
                junit.write_text(to_junit(audits, invalid), encoding="utf-8")
            except OSError as exc:
                raise RlhfMechError(f"cannot write {junit}: {exc.strerror or exc}") from None
    if output_format is OutputFormat.json:
        print_json(audits_to_json(audits, invalid, summary, saved))
    else:
        console.print(render_audit(audits, invalid, summary, saved, quiet=quiet))
    raise typer.Exit(summary.exit_code)


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


def main() -> Callable[[], Any]:
    return app()
