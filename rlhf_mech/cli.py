"""The ``rlhf-mech`` command line: thin wiring from files to the core and to rendering.

Exit codes: 0 clean, 1 an audit found violations, 2 bad input (as Click uses for bad options).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from rlhf_mech.errors import RlhfMechError
from rlhf_mech.mechanism import solve as solve_game
from rlhf_mech.report import render_solution, solution_to_json
from rlhf_mech.spec import game_schema, load_game

app = typer.Typer(
    name="rlhf-mech",
    help="Audit the incentives of multi-group LLM fine-tuning mechanisms (SW-Max + payments).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


class PaymentRule(StrEnum):
    none = "none"
    affine_maximizer = "affine_maximizer"


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the domain exception into one line on stderr and exit code 2."""
    try:
        yield
    except RlhfMechError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def print_json(data: Any) -> None:
    """JSON on stdout, byte-for-byte the same for the same input."""
    typer.echo(json.dumps(data, indent=2, sort_keys=False))


GameFile = Annotated[Path, typer.Argument(help="Game file (YAML, format v1).", show_default=False)]
PaymentOption = Annotated[
    PaymentRule | None, typer.Option("--payment", help="Override the file's payment rule.")
]
FormatOption = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]


@app.command()
def solve(
    game_file: GameFile,
    *,
    payment: PaymentOption = None,
    output_format: FormatOption = OutputFormat.table,
    top: Annotated[int, typer.Option(min=1, help="Outcomes shown in the distribution table.")] = 10,
) -> None:
    """Run the mechanism on a game: truthful versus reported profiles, side by side."""
    with user_errors():
        game = load_game(game_file)
        solution = solve_game(game, payment.value if payment else None)
    if output_format is OutputFormat.json:
        print_json(solution_to_json(solution))
    else:
        console.print(render_solution(solution, top=top))


@app.command()
def schema() -> None:
    """Print the JSON Schema of the game-file format."""
    print_json(game_schema())


def main() -> Callable[[], Any]:
    return app()
