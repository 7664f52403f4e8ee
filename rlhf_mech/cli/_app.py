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

import functools
import importlib
import inspect
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from rlhf_mech.cli._numbers import click_errors
from rlhf_mech.cli._output import ColorChoice, Output, print_error
from rlhf_mech.cli._uncertainty import (
    CiOption,
    DesignOption,
    EstimandOption,
    IntervalOption,
    ResamplesOption,
    bootstrap_options,
)
from rlhf_mech.errors import RlhfMechError
from rlhf_mech.render import OutputFormat
from rlhf_mech.render._internal import format_help

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
    from rlhf_mech.core._internal import FILE_NORMALIZATIONS

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
    from rlhf_mech.files._internal import AGGREGATIONS

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


def format_choice(name: str, formats: dict[str, OutputFormat]) -> Any:
    """The ``--format`` / ``--output-format`` option of a command's formats, a choice named
    ``name`` (:func:`format_enum`)."""
    return Annotated[
        format_enum(name, formats),
        typer.Option("--format", "--output-format", help=f"Output format: {format_help(formats)}."),
    ]


@contextmanager
def command(terminal: Terminal) -> Iterator[Output]:
    """The output of one command, with its errors handled: a
    :class:`~rlhf_mech.errors.RlhfMechError` becomes lines on stderr (one per problem) and
    exit code 2."""
    out = Output(terminal.color, quiet=terminal.quiet, verbose=terminal.verbose)
    if terminal.quiet and terminal.verbose:
        out.error("give at most one of -q/--quiet and -v/--verbose")
        raise typer.Exit(2)
    try:
        yield out
    except RlhfMechError as exc:
        for line in exc.lines():
            out.error(line)
        raise typer.Exit(2) from None


def read_game(path: Path | str, allow_outside_refs: bool = False) -> Any:
    """The game in ``path`` (``-``: standard input), as :func:`rlhf_mech.files.read_game`."""
    from rlhf_mech.files._internal import read_game as read

    return read(path, allow_outside_refs)


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
TrainingOption = Annotated[
    str | None,
    typer.Option("--training", help=f"Override the file's training rule: {choices('training_rules')}."),
]


def _settings_option(kind: str, example: str) -> Any:
    """The ``--KIND-param`` option: one ``KEY=VALUE`` per use, for the ``KIND`` rule."""
    return typer.Option(
        f"--{kind}-param",
        help=f"KEY=VALUE, repeat the option for each parameter of the {kind} rule (e.g. {example}).",
    )


PaymentParamOption = Annotated[
    list[str] | None, _settings_option("payment", "--payment-param steps=20 --payment-param step_size=0.5")
]
TrainingParamOption = Annotated[list[str] | None, _settings_option("training", "over=groups for maxmin")]
OutsideOption = Annotated[
    bool,
    typer.Option(
        "--allow-outside-refs",
        help="Let {file: ...} references leave the game file's folder (absolute paths, .., symlinks out).",
    ),
]
#: The help of an option that takes a parameter list.
LIST_HELP = "a comma list (0.2,0.5,1,2) or start:stop:step"


@dataclass(frozen=True)
class RuleOptions:
    """``--training``/``--payment`` and their ``KEY=VALUE`` parameters, as given."""

    training: str | None = None
    training_param: list[str] | None = None
    payment: str | None = None
    payment_param: list[str] | None = None

    @property
    def given(self) -> bool:
        """Whether any of the four options was given."""
        return any((self.training, self.training_param, self.payment, self.payment_param))

    def apply(self, game: Any) -> tuple[Any, str]:
        """``game`` under these rules and a note for the user
        (:func:`~rlhf_mech.cli._options.rules_override`)."""
        from rlhf_mech.cli._options import rules_override

        return rules_override(
            game,
            payment=self.payment,
            payment_settings=self.payment_param,
            training=self.training,
            training_settings=self.training_param,
        )


def rule_options(
    *,
    training: TrainingOption = None,
    training_param: TrainingParamOption = None,
    payment: PaymentOption = None,
    payment_param: PaymentParamOption = None,
) -> RuleOptions:
    """The options of :class:`RuleOptions` (a group of :func:`with_options`)."""
    return RuleOptions(training, training_param, payment, payment_param)


@dataclass(frozen=True)
class IntervalOptions:
    """``--ci`` and the options of its bootstrap (docs/uncertainty.md), as given."""

    ci: float | None
    resamples: int
    interval: str
    estimand: str
    design: str | None

    def options(self, seed: int) -> Any:
        """One :class:`~rlhf_mech.analysis.BootstrapOptions` (``None`` without ``--ci``), built
        and checked where the command line is read, before any work."""
        return bootstrap_options(self.ci, self.resamples, seed, self.interval, self.estimand, self.design)


def interval_options(
    *,
    ci: CiOption = None,
    resamples: ResamplesOption = 1000,
    interval: IntervalOption = "basic",
    estimand: EstimandOption = "fixed",
    design: DesignOption = None,
) -> IntervalOptions:
    """The options of :class:`IntervalOptions` (a group of :func:`with_options`)."""
    return IntervalOptions(ci, resamples, interval, estimand, design)


@dataclass(frozen=True)
class GameOptions:
    """A game file and the options on how to read it: ``--allow-outside-refs`` and the rules
    that replace its own (:class:`RuleOptions`)."""

    path: Path
    rules: RuleOptions
    allow_outside_refs: bool = False

    def load(self, out: Output) -> Any:
        """The game under the rules asked for (:meth:`RuleOptions.apply`); its note, if any,
        on stderr."""
        with out.step(f"load {self.path}"):
            game = read_game(self.path, self.allow_outside_refs)
        game, note = self.rules.apply(game)
        if note:
            out.message(note)
        return game


@dataclass(frozen=True)
class Terminal:
    """``--color``, ``-q/--quiet`` and ``-v/--verbose``: what the command prints on stderr."""

    color: ColorChoice = ColorChoice.auto
    quiet: bool = False
    verbose: bool = False


def terminal_options(
    *, quiet: QuietOption = False, verbose: VerboseOption = False, color: ColorOption = ColorChoice.auto
) -> Terminal:
    """The options of :class:`Terminal` (a group of :func:`with_options`)."""
    return Terminal(color, quiet, verbose)


def game_options(
    game_file: GameFile, *, rules: RuleOptions, allow_outside_refs: OutsideOption = False
) -> GameOptions:
    """The argument and options of :class:`GameOptions` (a group of :func:`with_options`, which
    also expands its ``rules``)."""
    return GameOptions(game_file, rules, allow_outside_refs)


#: The groups of options a command's parameter may stand for (:func:`with_options`), by the
#: parameter's type; each option of a group is declared once, in its function.
OPTION_GROUPS: dict[type, Callable[..., Any]] = {
    RuleOptions: rule_options,
    IntervalOptions: interval_options,
    Terminal: terminal_options,
}


def with_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The command ``func`` whose parameters of a type in :data:`OPTION_GROUPS` stand each for
    the options of that group (keyword-only, with their defaults).

    The options take that parameter's place in the signature, and so in ``--help``; ``func``
    receives what the group's function returns for the values given (as fastapi's
    dependencies: Typer reads ``__signature__``).
    """
    signature = inspect.signature(func, eval_str=True)
    groups = {
        p.name: OPTION_GROUPS[p.annotation]
        for p in signature.parameters.values()
        if p.annotation in OPTION_GROUPS
    }
    members = {
        name: tuple(inspect.signature(group, eval_str=True).parameters.values())
        for name, group in groups.items()
    }
    parameters = [q for p in signature.parameters.values() for q in members.get(p.name, (p,))]

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        for name, group in groups.items():
            kwargs[name] = group(**{p.name: kwargs.pop(p.name) for p in members[name]})
        return func(*args, **kwargs)

    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return run


OPTION_GROUPS[GameOptions] = with_options(game_options)
