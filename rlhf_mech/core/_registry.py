"""The one lookup every registry of the core uses (divergences, training and payment rules).

A registry is a dict from canonical name to a frozen record (the pattern of scipy's
``MetricInfo`` table); its aliases, where it has any, are a dict from every accepted name to
the canonical one. A lookup by an unknown name raises ``ValueError`` listing the valid names.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar


class Named(Protocol):
    """A registry's record: it has a canonical ``name``."""

    @property
    def name(self) -> str: ...


T = TypeVar("T")
R = TypeVar("R", bound=Named)


def by_name(*records: R) -> dict[str, R]:
    """The registry of ``records``: each by its ``name``, in the order given.

    Raises
    ------
    ValueError
        where two records share a name (the later one would hide the earlier).
    """
    registry = {r.name: r for r in records}
    if len(registry) != len(records):
        names = [r.name for r in records]
        raise ValueError(f"records share a name: {sorted({x for x in names if names.count(x) > 1})}")
    return registry


def lookup(
    kind: str,
    registry: Mapping[str, T],
    record_type: type[T],
    name: str | T,
    aliases: Mapping[str, str] | None = None,
) -> T:
    """The record ``name`` names in ``registry`` (a ``record_type`` is returned unchanged).

    Raises
    ------
    ValueError
        for anything else: ``unknown {kind} 'x'; expected one of a, b``, and the closest
        valid name where one is close (a typo: ``(did you mean 'kl'?)``).
    """
    if isinstance(name, record_type):
        return name
    canonical = (aliases or {}).get(name, name) if isinstance(name, str) else None
    if canonical in registry:
        return registry[canonical]
    hint = did_you_mean(name, [*registry, *(aliases or {})])
    raise ValueError(f"unknown {kind} {name!r}; expected one of {', '.join(registry)}{hint}")


def did_you_mean(given: object, choices: Sequence[str]) -> str:
    """`` (did you mean 'kl'?)`` where ``given`` is a string close to one of ``choices`` (a
    typo, by :func:`difflib.get_close_matches`), else ``""``: the hint of every message that
    refuses an unknown name (registries here, game-file fields in the files layer)."""
    close = difflib.get_close_matches(given, choices, n=1) if isinstance(given, str) else []
    return f" (did you mean {close[0]!r}?)" if close else ""
