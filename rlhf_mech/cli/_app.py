"""The Typer app and what every command shares: options, the output, the one error handler.

Only Typer, Click, Rich and the standard library are imported here: the command line's
start-up (``rlhf-mech --help``) loads this module and the commands' signatures, nothing that
needs numpy. The names an option takes from a registry of the core (payment and training
rules, normalisations, scales, divergences) are put into its help when its command runs or
shows its help (:data:`CHOICES`), and checked by the registry's own lookup; the output
formats come from :mod:`rlhf_mech.render._outputs`, which imports nothing heavy.

Errors: a :class:`~rlhf_mech.errors.RlhfMechError` becomes one ``error:`` line per problem and
exit code 2 (:func:`command`); so does a bad option that Click rejects (:class:`App`), as one
line instead of Click's usage box. Every line goes through
:func:`~rlhf_mech.errors.printable`.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from rlhf_mech.cli._output import ColorChoice, Output, print_error
from rlhf_mech.errors import DECIMAL, RlhfMechError, shown
from rlhf_mech.render import OutputFormat, format_help

try:  # Typer >= 0.26 parses with a copy of Click of its own: its exceptions are these
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - an older Typer, on Click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]
#: Ctrl-C at a prompt: Click's own in Typer 0.26, Typer's exception from 0.27 on.
_ABORT: type[BaseException] = (
    getattr(click_errors, "Abort", None) or importlib.import_module("typer.exceptions").Abort
)


class App(TyperGroup):
    """The command group: Click's own errors (an unknown option, a value out of range) are
    printed as one ``error:`` line, exit code 2, like every other error of the tool."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_errors.ClickException as exc:
            print_error(exc.format_message())
            sys.exit(exc.exit_code)
        except _ABORT:
            print_error("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            _fill_choices(command)
        return name, command, rest


class NotANumber(click_errors.BadParameter):
    """A value a number option (:func:`number`) refused, printed as ``--top '1_0': expected
    ...``: the option's first name, then the value and what was expected. A Click exception,
    not a ``ValueError``: pydantic, through which Typer calls a parser, passes it on as is and
    Click adds the parameter."""

    def format_message(self) -> str:
        opts = getattr(self.param, "opts", None) or ["option"]
        return f"{opts[0]} {self.message}"


#: The most digits of an integer option (a seed of 2^63 has 19); Python's ``int()`` refuses
#: more than 4,300.
MAX_DIGITS = 100


def number(
    integer: bool = False, low: float | None = None, high: float | None = None
) -> Callable[[Any], Any]:
    """The ``parser=`` (Typer's public hook, given the text as typed) of an int (``integer``)
    or float option: the value written as a plain
    ASCII decimal (:data:`~rlhf_mech.errors.DECIMAL`; Python's ``int()`` and ``float()``, which
    Typer would call, also read ``1_0`` as 10 and other scripts' digits as theirs), finite,
    and within ``[low, high]`` (either end ``None``: none); an integer of at most
    :data:`MAX_DIGITS` digits.

    Raises
    ------
    NotANumber
        naming the option (printed as one ``error:`` line by :class:`App`).
    """

    def parse(value: Any) -> Any:
        if not isinstance(value, str):  # the option's default
            return value
        text = value.strip()
        if not DECIMAL.fullmatch(text):
            raise NotANumber(f"{shown(value)}: expected a number in ASCII digits (as 5, 0.5 or 1e-3)")
        if not integer:
            parsed: float = float(text)
            if not math.isfinite(parsed):
                raise NotANumber(f"{shown(value)}: expected a finite number")
        elif not text.lstrip("+-").isdigit():
            raise NotANumber(f"{shown(value)}: expected an integer")
        elif len(text) > MAX_DIGITS:  # int() raises past sys.get_int_max_str_digits()
            raise NotANumber(f"{shown(value)}: expected an integer of at most {MAX_DIGITS} digits")
        else:
            parsed = int(text)
        kind, written = ("an integer", lambda x: str(int(x))) if integer else ("a number", "{:g}".format)
        if low is not None and parsed < low:
            raise NotANumber(f"{shown(value)}: expected {kind} >= {written(low)}")
        if high is not None and parsed > high:
            raise NotANumber(f"{shown(value)}: expected {kind} <= {written(high)}")
        return parsed

    return parse


app = typer.Typer(
    name="rlhf-mech",
    cls=App,
    help="Audit the incentives of multi-group LLM fine-tuning mechanisms (SW-Max + payments).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


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


def _payment_rules() -> Iterable[str]:
    from rlhf_mech.core import PAYMENT_RULES

    return PAYMENT_RULES


def _training_rules() -> Iterable[str]:
    from rlhf_mech.core import TRAINING_RULES

    return TRAINING_RULES


def _normalizations() -> Iterable[str]:
    from rlhf_mech.core import FILE_NORMALIZATIONS

    return (n.value for n in FILE_NORMALIZATIONS)


def _scales() -> Iterable[str]:
    from rlhf_mech.core import Scale

    return (s.value for s in Scale)


def _divergences() -> Iterable[str]:
    from rlhf_mech.core import DIVERGENCES

    return DIVERGENCES


def _layouts() -> Iterable[str]:
    from rlhf_mech.files import LAYOUTS

    return (layout.name for layout in LAYOUTS)


def _aggregations() -> Iterable[str]:
    from rlhf_mech.files import AGGREGATIONS

    return AGGREGATIONS


#: Registry -> its names. An option's help names a registry as ``[[key]]``, filled in with
#: the names when the command runs or shows its help (:meth:`App.resolve_command`): the
#: registries live in the core, which needs numpy, and ``rlhf-mech --help`` must not load it.
#: The option's value is checked by the registry's own lookup when the command runs.
CHOICES: dict[str, Callable[[], Iterable[str]]] = {
    "payment_rules": _payment_rules,
    "training_rules": _training_rules,
    "normalizations": _normalizations,
    "scales": _scales,
    "divergences": _divergences,
    "layouts": _layouts,
    "aggregations": _aggregations,
}


def choices(key: str) -> str:
    """The placeholder of registry ``key``'s names in an option's help (:data:`CHOICES`)."""
    if key not in CHOICES:
        raise ValueError(f"unknown registry {key!r}")
    return f"[[{key}]]"


def _fill_choices(command: Any) -> None:
    """Replace the :func:`choices` placeholders in ``command``'s option help by the names."""
    for param in command.params:
        text = getattr(param, "help", None)
        if not text or "[[" not in text:
            continue
        for key, names in CHOICES.items():
            if f"[[{key}]]" in text:
                text = text.replace(f"[[{key}]]", ", ".join(names()))
        param.help = text


def format_enum(name: str, formats: dict[str, OutputFormat]) -> type[StrEnum]:
    """A command's ``--format`` choice, from its table of :mod:`rlhf_mech.render._outputs`."""
    return StrEnum(name, {f: f for f in formats})  # type: ignore[return-value]


def format_option(formats: dict[str, OutputFormat]) -> Any:
    """The ``--format`` / ``--output-format`` option of a command's formats."""
    return typer.Option("--format", "--output-format", help=f"Output format: {format_help(formats)}.")


@contextmanager
def command(color: ColorChoice, quiet: bool, verbose: bool) -> Iterator[Output]:
    """The output of one command, with its errors handled: a
    :class:`~rlhf_mech.errors.RlhfMechError` becomes lines on stderr (one per problem) and
    exit code 2."""
    out = Output(color, quiet=quiet, verbose=verbose)
    if quiet and verbose:
        out.error("give at most one of -q/--quiet and -v/--verbose")
        raise typer.Exit(2)
    try:
        yield out
    except RlhfMechError as exc:
        for line in exc.lines():
            out.error(line)
        raise typer.Exit(2) from None


def emit(out: Output, fmt: OutputFormat, result: Any) -> None:
    """Write ``result`` in format ``fmt`` on standard output."""
    rendered = fmt.render(result)
    if fmt.medium == "json":
        out.write_json(rendered)
    elif fmt.medium == "text":
        out.write(rendered)
    else:
        out.print(rendered)


def read_game(path: Path | str, allow_outside_refs: bool = False) -> Any:
    """The game in ``path`` (``-``: standard input), as :func:`rlhf_mech.files.read_game`."""
    from rlhf_mech.files import read_game as read

    return read(path, allow_outside_refs)


def game_with_rules(
    out: Output,
    path: Path,
    allow_outside_refs: bool,
    training: str | None = None,
    training_param: list[str] | None = None,
    payment: str | None = None,
    payment_param: list[str] | None = None,
) -> Any:
    """The game in ``path`` under the rules of ``--training``/``--payment`` and their parameters
    (:func:`~rlhf_mech.cli._options.rules_override`); its note, if any, on stderr."""
    from rlhf_mech.cli._options import rules_override

    with out.step(f"load {path}"):
        game = read_game(path, allow_outside_refs)
    game, note = rules_override(
        game,
        payment=payment,
        payment_settings=payment_param,
        training=training,
        training_settings=training_param,
    )
    if note:
        out.message(note)
    return game


QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Nothing on stderr but errors (no progress, notes).")
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Also print each step and its time.")]
ColorOption = Annotated[
    ColorChoice,
    typer.Option("--color", help="Colour: auto (terminals, unless NO_COLOR is set), always or never."),
]
GameFile = Annotated[
    Path, typer.Argument(help="Game file (YAML, format v1); - reads standard input.", show_default=False)
]
PaymentOption = Annotated[
    str | None,
    typer.Option("--payment", help=f"Override the file's payment rule: {choices('payment_rules')}."),
]
PaymentParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--payment-param",
        help="KEY=VALUE, repeat the option for each parameter of the payment rule "
        "(e.g. --payment-param steps=20 --payment-param step_size=0.5).",
    ),
]
TrainingOption = Annotated[
    str | None,
    typer.Option("--training", help=f"Override the file's training rule: {choices('training_rules')}."),
]
TrainingParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--training-param",
        help="KEY=VALUE, repeat the option for each parameter of the training rule (e.g. over=groups "
        "for maxmin).",
    ),
]
OutsideOption = Annotated[
    bool,
    typer.Option(
        "--allow-outside-refs",
        help="Let {file: ...} references leave the game file's folder (absolute paths, .., symlinks out).",
    ),
]
#: The help of an option that takes a parameter list.
LIST_HELP = "a comma list (0.2,0.5,1,2) or start:stop:step"
