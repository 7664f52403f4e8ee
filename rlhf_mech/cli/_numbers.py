"""Number options: one ``parser=`` (Typer's public hook) for every int and float option.

Only the standard library and Typer's Click are imported: the command line's start-up loads
this module with the commands' signatures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from rlhf_mech.errors import DECIMAL, shown

try:  # Typer >= 0.26 parses with a copy of Click of its own: its exceptions are these
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - an older Typer, on Click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]


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
