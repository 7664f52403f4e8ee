"""Where the command line writes: standard output and error, colour, verbosity, width.

One :class:`Output` per command holds the two Rich consoles (``--color auto|always|never``;
``auto`` honours ``NO_COLOR``/``FORCE_COLOR`` and colours terminals only), the verbosity
(``-q`` quiet, ``-v`` each step with its time on stderr) and the rules every printed table
follows:

* no table cell is cut or folded: a renderable is printed as wide as its widest line needs,
  up to the width of the terminal, or ``$COLUMNS`` where it is set (a pipe without it has no
  limit, not Rich's 80 columns: the lines stay whole and grep-able). A table wider than that
  is printed in its compact layout (:class:`rlhf_mech.render.Fitted`) and the paragraphs are
  wrapped at that width, so that no line is longer than it;
* no line ends in spaces.

JSON goes through :func:`rlhf_mech.render.write_json` as a stream of bytes. Only Rich and
the standard library are imported here: this module is loaded at start-up.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.text import Text

from rlhf_mech.errors import printable
from rlhf_mech.render import OutputFormat


class ColorChoice(StrEnum):
    """``--color``: colour terminals only (``auto``, honouring NO_COLOR), always, never."""

    auto = "auto"
    always = "always"
    never = "never"


#: Spaces (and the colour codes among them) at the end of a line.
_TRAILING = re.compile(r"(?:[ \t]|\x1b\[[0-9;]*m)+$")
_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
#: The width a renderable is measured in before it is printed (wider than any table).
_MEASURE_WIDTH = 1 << 16


def strip_trailing_spaces(text: str) -> str:
    """Every line of ``text`` without its trailing spaces (colour codes kept)."""
    lines = text.split("\n")
    return "\n".join(_TRAILING.sub(lambda m: "".join(_ESCAPE.findall(m.group())), line) for line in lines)


def width_limit(console: Console) -> int | None:
    """The most columns a line may take: ``$COLUMNS`` where it is set (a positive number), else
    the terminal's width; ``None`` (no limit) for a pipe or a file without ``$COLUMNS``."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return console.width if console.is_terminal else None


def make_console(color: ColorChoice, stderr: bool = False) -> Console:
    """A console for ``--color``: ``always`` colours even a pipe (and beats NO_COLOR),
    ``never`` writes no escape codes at all, ``auto`` is Rich's own detection."""
    if color is ColorChoice.always:
        return Console(stderr=stderr, color_system="standard", no_color=False)
    if color is ColorChoice.never:
        return Console(stderr=stderr, color_system=None, no_color=True)
    return Console(stderr=stderr)


class Output:
    """The consoles, colour and verbosity of one command.

    Parameters
    ----------
    color : the ``--color`` choice.
    quiet : ``-q``: nothing on stderr but errors (no progress, notes or messages).
    verbose : ``-v``: also each step and its time on stderr.
    """

    def __init__(
        self, color: ColorChoice = ColorChoice.auto, quiet: bool = False, verbose: bool = False
    ) -> None:
        self.color = color
        self.quiet = quiet
        self.verbose = verbose
        self.out = make_console(color)
        self.err = make_console(color, stderr=True)

    def _width(self, console: Console, renderable: Any) -> int:
        """The width ``renderable`` is printed in: what it needs to show every line whole, at
        most the terminal's width or ``$COLUMNS`` (:func:`width_limit`)."""
        measured = Measurement.get(console, console.options.update_width(_MEASURE_WIDTH), renderable)
        limit = width_limit(console)
        return max(min(measured.maximum, limit or measured.maximum), 1)

    def print(self, renderable: Any, stderr: bool = False) -> None:
        """A Rich renderable on stdout (or stderr): names whole, no trailing spaces."""
        console = self.err if stderr else self.out
        terminal_width = console.width
        console.width = self._width(console, renderable)  # print() never goes past the width
        try:
            with console.capture() as capture:
                console.print(renderable, crop=False)
        finally:
            console.width = terminal_width
        text = strip_trailing_spaces(capture.get())
        stream = sys.stderr if stderr else sys.stdout
        stream.write(text)
        stream.flush()

    def write(self, text: str) -> None:
        """Plain text on stdout, as it is (CSV, annotations, YAML)."""
        sys.stdout.write(text)
        sys.stdout.flush()

    def emit(self, fmt: OutputFormat, result: Any) -> None:
        """``result`` in format ``fmt`` on stdout (:mod:`rlhf_mech.render._outputs`)."""
        rendered = fmt.render(result)
        if fmt.medium == "json":
            self.write_json(rendered)
        elif fmt.medium == "text":
            self.write(rendered)
        else:
            self.print(rendered)

    def write_json(self, data: Any) -> None:
        """``data`` as JSON on stdout (:func:`rlhf_mech.render.write_json`), streamed."""
        from rlhf_mech.render._internal import write_json

        sys.stdout.flush()
        stream = getattr(sys.stdout, "buffer", None)
        if stream is None:  # a text-only stream (an embedding application)
            from rlhf_mech.render._internal import json_text

            sys.stdout.write(json_text(data))
        else:
            write_json(data, stream)
            stream.flush()

    def message(self, text: str, style: str = "") -> None:
        """A line on stderr (not with ``-q``); user text is never markup."""
        if not self.quiet:
            self.err.print(
                Text(printable(text, keep_newlines=True), style=style), highlight=False, soft_wrap=True
            )

    def error(self, text: str) -> None:
        """``error: ...`` on stderr, whatever the verbosity."""
        print_error(text, self.err)

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        """Time a step; with ``-v`` print ``rlhf-mech: <what>: <seconds> s`` on stderr."""
        start = time.perf_counter()
        yield
        if self.verbose:
            self.err.print(
                Text(printable(f"rlhf-mech: {what}: {time.perf_counter() - start:.3f} s"), style="dim"),
                highlight=False,
                soft_wrap=True,
            )


def print_error(message: str, console: Console | None = None) -> None:
    """One line on stderr; the message is printed literally (user text is never markup) and
    printable (:func:`~rlhf_mech.errors.printable`)."""
    console = console or Console(stderr=True)
    # the one line stays one line: a path or a library's message may hold a newline or ESC
    console.print(
        Text.assemble(("error:", "bold red"), " ", printable(message)), highlight=False, soft_wrap=True
    )
