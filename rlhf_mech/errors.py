"""The one domain exception family of rlhf-mech.

Core functions raise :class:`ValueError` for bad arguments (like scipy's ``_iv`` checks);
everything a *user* can get wrong in a file or on the command line becomes a
:class:`RlhfMechError`, which the CLI turns into one line on stderr and exit code 2.
"""

from __future__ import annotations

from pathlib import Path


class RlhfMechError(Exception):
    """An error caused by the user's input, written for the user."""


class SpecError(RlhfMechError):
    """A problem in a game file: names the file, the line and the field.

    Parameters
    ----------
    path : file the problem is in.
    line : 1-based line number, or ``None`` when the problem has no single line.
    field : dotted field path such as ``groups[1].reward``; empty for the whole file.
    message : what is wrong, in words.
    """

    def __init__(self, path: str | Path, line: int | None, field: str, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        what = f"{field}: {message}" if field else message
        super().__init__(f"{where}: {what}")
