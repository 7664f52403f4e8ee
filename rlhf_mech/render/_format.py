"""Number formats shared by every renderer (what a table cell shows of a float)."""

from __future__ import annotations


def fmt(x: float) -> str:
    """A number for a table: 6 significant digits, exact zero as 0."""
    return "0" if x == 0 else f"{x:.6g}"


def fmt_signed(x: float) -> str:
    return "0" if x == 0 else f"{x:+.6g}"
