"""``rlhf-mech compare``: a grid of mechanisms on one game, the trade-offs side by side."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from rlhf_mech.cli._app import (
    GameFile,
    OutsideOption,
    Terminal,
    choices,
    command,
    format_choice,
    read_game,
    with_options,
)
from rlhf_mech.cli._config import BOUNDS
from rlhf_mech.cli._numbers import number
from rlhf_mech.errors import RlhfMechError
from rlhf_mech.render import COMPARE_FORMATS

CompareFormatOption = format_choice("CompareFormat", COMPARE_FORMATS)

_GRID_HELP = "KEY=V1,V2: the values of a parameter of the {} rules to compare (repeat per parameter)."


def _draws(help_text: str) -> Any:
    """An option counting random draws per group: 0 up to the audit's noise samples (each draw
    holds a report of every group's rewards, as a noise sample does)."""
    return typer.Option(parser=number(integer=True, low=0, high=BOUNDS["samples"].high), help=help_text)


@with_options
def compare_command(
    game_file: GameFile,
    *,
    training: Annotated[
        str | None,
        typer.Option(
            help=f"Training rules to compare, a comma list of {choices('training_rules')} (default: all)."
        ),
    ] = None,
    payment: Annotated[
        str | None,
        typer.Option(
            help=f"Payment rules to compare, a comma list of {choices('payment_rules')} (default: all)."
        ),
    ] = None,
    training_param: Annotated[list[str] | None, typer.Option(help=_GRID_HELP.format("training"))] = None,
    payment_param: Annotated[list[str] | None, typer.Option(help=_GRID_HELP.format("payment"))] = None,
    budget: Annotated[
        int,
        typer.Option(
            parser=number(integer=True, low=10, high=BOUNDS["budget"].high),
            help="Report evaluations per group and mechanism.",
        ),
    ] = 200,
    seed: Annotated[
        int, typer.Option(parser=number(integer=True, low=0), help="Seed of the searches and samples.")
    ] = 0,
    samples: Annotated[int, _draws("Random reports per group for the share of negative payments.")] = 64,
    types: Annotated[int, _draws("Random rewards per group of the least-cost type sets (0: none).")] = 24,
    output_format: CompareFormatOption = "table",  # type: ignore[assignment]
    plot: Annotated[
        Path | None, typer.Option(help="Also draw gain against cost and welfare to FILE (matplotlib).")
    ] = None,
    html: Annotated[
        Path | None, typer.Option(help="Also write a self-contained HTML report to FILE.")
    ] = None,
    allow_outside_refs: OutsideOption = False,
    terminal: Terminal,
) -> None:
    """Compare mechanisms (training x payment rules) on one game: welfare, fairness, revenue,
    manipulability, IR, training cost, the Pareto front, and the least-cost DSIC payments."""
    with command(terminal) as out:
        from rlhf_mech.analysis import CompareOptions, compare
        from rlhf_mech.render import compare_html, save_compare_plot

        with out.step(f"load {game_file}"):
            game = read_game(game_file, allow_outside_refs)
        pairs, skipped = mechanisms(game, training, payment, training_param or [], payment_param or [])
        options = CompareOptions(budget=budget, seed=seed, samples=samples, type_points=types)
        with out.step("compare"):
            result = compare(game, pairs, options, skipped)
        with out.step("write"):
            if plot is not None:
                out.message(f"plot written to {save_compare_plot(result, plot)}")
            if html is not None:
                write_text(html, compare_html(result))
                out.message(f"report written to {html}")
            out.emit(COMPARE_FORMATS[output_format], result)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (UTF-8); an unwritable path is one error line."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RlhfMechError(f"cannot write {path}: {exc.strerror or exc}") from None


def _names(text: str | None, lookup: Callable[[str], Any], option: str) -> list[Any] | None:
    """The registry records of a comma list (``None``: not given)."""
    if text is None:
        return None
    records = []
    for name in (part.strip() for part in text.split(",")):
        try:
            records.append(lookup(name))
        except ValueError as exc:
            raise RlhfMechError(f"{option}: {exc}") from None
    return records


def _grid(settings: Sequence[str], registry: Sequence[Any], option: str) -> dict[str, list[object]]:
    """``KEY=V1,V2`` settings -> ``{KEY: [V1, V2]}``, each value read by the kind the registry's
    rules give the parameter (an ``outcomes`` parameter is set in the game file instead)."""
    kinds = {p.name: p.kind for rule in registry for p in rule.schema}
    grid: dict[str, list[object]] = {}
    for item in settings:
        key, sep, text = (part.strip() for part in item.partition("="))
        if not sep or not key or not text:
            raise RlhfMechError(f"{option} {item!r}: expected KEY=VALUE or KEY=V1,V2")
        kind = kinds.get(key)
        if kind is None or kind == "outcomes":
            known = ", ".join(k for k, v in kinds.items() if v != "outcomes") or "none"
            raise RlhfMechError(f"{option} {key!r}: not a parameter to compare (they are: {known})")
        values: list[object] = []
        for part in (p.strip() for p in text.split(",")):
            try:
                values.append(part if kind == "choice" else int(part) if kind == "int" else float(part))
            except ValueError:
                raise RlhfMechError(f"{option} {key}: {part!r} is not a number") from None
        grid[key] = values
    return grid


def mechanisms(
    game: Any, training: str | None, payment: str | None, training_param: list[str], payment_param: list[str]
) -> tuple[list[Any], list[tuple[str, str, str]]]:
    """The mechanisms ``--training``/``--payment`` and their parameter grids ask for
    (:func:`~rlhf_mech.analysis.mechanism_grid`), checked before any work starts."""
    from rlhf_mech.analysis._internal import mechanism_grid
    from rlhf_mech.core import ALL_PAYMENT_RULES, ALL_TRAINING_RULES, get_payment_rule, get_training_rule

    try:
        pairs, skipped = mechanism_grid(
            game,
            _names(training, get_training_rule, "--training"),
            _names(payment, get_payment_rule, "--payment"),
            _grid(training_param, ALL_TRAINING_RULES, "--training-param"),
            _grid(payment_param, ALL_PAYMENT_RULES, "--payment-param"),
        )
    except ValueError as exc:
        raise RlhfMechError(f"--training-param/--payment-param: {exc}") from None
    if not pairs:
        reasons = "; ".join(f"{t} + {p}: {why}" for t, p, why in skipped[:3])
        raise RlhfMechError(f"no mechanism to compare: {reasons}")
    return pairs, skipped
