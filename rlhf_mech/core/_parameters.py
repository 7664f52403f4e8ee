"""Parameters of registry rules: one vocabulary for game files, the command line and the schema.

A payment rule (``payment: {rule: early_stopped, steps: 20}``) and a training rule
(``training: {rule: maxmin, over: groups}``) carry their parameters the same way: a tuple of
:class:`Parameter` records (``schema``) and the values set (``parameters``), read and set by
the :class:`Configurable` methods. The spec, the writer and the CLI build their fields from
these records, so a parameter is declared once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Self

import numpy as np

#: The kinds a parameter can have.
PARAMETER_KINDS = ("int", "float", "outcomes", "choice")


@dataclass(frozen=True)
class Parameter:
    """One parameter of a rule.

    Attributes
    ----------
    name : the key in a game file's rule mapping and in ``--payment-param`` /
        ``--training-param``.
    kind : one of :data:`PARAMETER_KINDS`: ``"int"``, ``"float"``, ``"outcomes"`` (a list of
        outcome names, stored as their indices) or ``"choice"`` (one of ``choices``).
    default : the value when not given (``None``: the parameter is optional).
    minimum : the smallest allowed value (``int``/``float``), or ``None``.
    exclusive : whether ``minimum`` itself is excluded.
    maximum : the largest allowed value, or ``None``.
    description : what it means, for help texts and the JSON Schema.
    choices : the allowed values of a ``choice``.
    """

    name: str
    kind: str
    default: Any
    minimum: float | None = None
    exclusive: bool = False
    maximum: float | None = None
    description: str = ""
    choices: tuple[str, ...] = ()

    def check(self, value: Any) -> Any:
        """``value`` if it is valid (an int for ``int``, a tuple of ints for ``outcomes``).

        Raises
        ------
        ValueError
            saying which bound, choice or type it breaks.
        """
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"`{self.name}` must be one of {', '.join(self.choices)}, got {value!r}")
            return str(value)
        if self.kind == "outcomes":
            indices = tuple(value)
            if not indices or not all(isinstance(k, int | np.integer) and k >= 0 for k in indices):
                raise ValueError(f"`{self.name}` must be a non-empty list of outcomes")
            if len(set(indices)) < len(indices):  # a set of outcomes (checkpoints): no repeats
                raise ValueError(f"`{self.name}` lists an outcome twice")
            return tuple(int(k) for k in indices)
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise ValueError(f"`{self.name}` must be a number, got {value!r}")
        if self.kind == "int" and int(value) != value:
            raise ValueError(f"`{self.name}` must be an integer, got {value!r}")
        value = int(value) if self.kind == "int" else float(value)
        if not np.isfinite(value):
            raise ValueError(f"`{self.name}` must be finite, got {value!r}")
        if self.minimum is not None and (value < self.minimum or (self.exclusive and value == self.minimum)):
            raise ValueError(
                f"`{self.name}` must be {'>' if self.exclusive else '>='} {self.minimum:g}, got {value!r}"
            )
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"`{self.name}` must be <= {self.maximum:g}, got {value!r}")
        return value


class Configurable:
    """The parameter methods of a registry rule (a frozen dataclass with ``name``, ``schema``
    and ``parameters`` fields); :attr:`family` names the registry in messages."""

    name: str
    schema: tuple[Parameter, ...]
    parameters: tuple[tuple[str, Any], ...]
    family: str = "rule"

    def setting(self, name: str) -> Any:
        """The value of parameter ``name`` (its default when not set)."""
        values = dict(self.parameters)
        if name in values:
            return values[name]
        for parameter in self.schema:
            if parameter.name == name:
                return parameter.default
        raise KeyError(f"{self.family} {self.name!r} has no parameter {name!r}")

    def with_parameters(self, **values: Any) -> Self:
        """This rule with parameters set (validated; unset ones keep their defaults).

        Raises
        ------
        ValueError
            for an unknown name (listing the rule's parameters) or an invalid value.
        """
        known = {p.name: p for p in self.schema}
        unknown = sorted(set(values) - set(known))
        if unknown:
            valid = ", ".join(known) or "none"
            raise ValueError(
                f"{self.family} {self.name!r} has no parameter {unknown[0]!r} (its parameters: {valid})"
            )
        merged = dict(self.parameters)
        merged.update({name: known[name].check(value) for name, value in values.items()})
        ordered = tuple((p.name, merged[p.name]) for p in self.schema if p.name in merged)
        return replace(self, parameters=ordered)  # type: ignore[type-var]
