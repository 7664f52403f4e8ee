"""The one domain exception family of rlhf-mech.

Core functions raise :class:`ValueError` for bad arguments (like scipy's ``_iv`` checks);
everything a *user* can get wrong in a file or on the command line becomes a
:class:`RlhfMechError`, which the CLI turns into lines on stderr (one per problem, each
``error: ...``) and exit code 2.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

#: A decimal number as a CSV file or a command-line option writes it: ASCII digits, an optional sign,
#: point and exponent. Python's ``float()`` accepts more: ``1_000``, Arabic-Indic and other
#: Unicode digits, surrounding whitespace of any kind, ``infinity``; none of that is a number
#: a trainer writes, so it is refused rather than read.
DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

#: Longest user text quoted in a message.
SHOWN_CHARS = 40

#: Characters a terminal or a CI log would act on rather than show: C0 and C1 controls (ESC
#: starts colour codes and cursor moves, CR rewrites a line, LF starts a new one: a new
#: ``::error::`` workflow command in a GitHub log), DEL, and the Unicode format and separator
#: characters that reorder or break lines (bidi overrides, U+2028/2029).
#: As a regular-expression character range (Python's and a JSON Schema's syntax alike): the
#: one list, which names exclude (:data:`rlhf_mech.files.spec._schemas.NAME_PATTERN`).
UNPRINTABLE_RANGE = r"\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
_UNPRINTABLE = re.compile(f"[{UNPRINTABLE_RANGE}]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, keep_newlines: bool = False) -> str:
    """``text`` safe to print on a terminal or in a CI log: every character of
    :data:`_UNPRINTABLE` written as its escape (``\\x1b``, ``\\u202e``), so that no byte
    the user supplied can colour, move, rewrite or split what is printed. ``keep_newlines``
    keeps ``\\n`` (text whose lines are the tool's own). The one place every printed user
    string (names, paths, library messages) goes through."""
    if keep_newlines:
        return "\n".join(_UNPRINTABLE.sub(_escaped, line) for line in text.split("\n"))
    return _UNPRINTABLE.sub(_escaped, text)


def printable_json(encoded: str) -> str:
    """JSON text with every character of :data:`_UNPRINTABLE` that JSON leaves raw (DEL, C1,
    the bidi and line-separator characters; JSON escapes C0 itself) written as its ``\\uXXXX``
    escape: the same JSON value, as safe to print as :func:`printable` text."""
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", encoded)


def has_unprintable(text: str) -> bool:
    """Whether ``text`` holds a character :func:`printable` would escape."""
    return _UNPRINTABLE.search(text) is not None


def shown(value: object) -> str:
    """``repr(value)`` for a message: escaped (control characters as ``\\x1b``), cut to
    :data:`SHOWN_CHARS` characters (a 401-digit number or a file's content is not echoed)."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


class RlhfMechError(Exception):
    """An error caused by the user's input, written for the user."""

    def lines(self) -> tuple[str, ...]:
        """The problems, one line each (the CLI prints each as ``error: LINE``)."""
        return (str(self),)


class SpecError(RlhfMechError):
    """A problem in a game file: names the file, the line and the field.

    Parameters
    ----------
    path : file the problem is in.
    line : 1-based line number, or ``None`` when the problem has no single line.
    field : dotted field path such as ``groups[1].reward``; empty for the whole file.
    message : what is wrong, in words.

    Attributes
    ----------
    problems : every problem found in the file, this one first (:meth:`collected`); the
        attributes above are the first problem's.
    """

    def __init__(self, path: str | Path, line: int | None, field: str, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        self.problems: tuple[SpecError, ...] = (self,)
        super().__init__(self.text)

    @property
    def text(self) -> str:
        """This one problem as ``FILE:LINE: FIELD: message``."""
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        what = f"{self.field}: {self.message}" if self.field else self.message
        return f"{where}: {what}"

    @classmethod
    def collected(cls, problems: Sequence[SpecError]) -> SpecError:
        """One exception carrying every problem of ``problems`` (each may carry several), in order."""
        flat = tuple(p.single() for problem in problems for p in problem.problems)
        if not flat:
            raise ValueError("`problems` is empty")
        first = flat[0]
        error = cls(first.path, first.line, first.field, first.message)
        error.problems = (error, *flat[1:])
        error.args = ("\n".join(error.lines()),)
        return error

    def single(self) -> SpecError:
        """This problem alone (without the others a :meth:`collected` error carries)."""
        return self if len(self.problems) == 1 else SpecError(self.path, self.line, self.field, self.message)

    def lines(self) -> tuple[str, ...]:
        return tuple(p.text for p in self.problems)
