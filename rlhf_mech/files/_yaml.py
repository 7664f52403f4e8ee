"""YAML the way a person reads it: the YAML 1.2 core schema on PyYAML's safe loader and dumper.

PyYAML implements YAML 1.1, where ``1e-6`` is a string (a float needs a dot), ``yes``/``no``/
``on``/``off`` are booleans, ``010`` is octal, ``1:30`` is 90 and ``2024-01-01`` is a date. A
game file written by a person means ``lambda: 1e-6`` as a number and ``outcomes: [yes, no]``
as two names, as YAML 1.2 and every editor's YAML support read them. :func:`core_schema`
installs the YAML 1.2 core schema's implicit types (null, bool, int, float; everything else
is a string; no ``<<`` merge keys) on a loader or dumper class, so that the writer quotes
exactly the strings the loader would read as something else.

Numbers are constructed strictly: an integer or float literal outside the float range (a
401-digit integer, ``1e400``) or one that would silently read as 0 (``1e-400``) is an
error at its line, not an ``OverflowError`` later or a silent ``inf``/``0``.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"

#: (tag, pattern, first characters) of the YAML 1.2 core schema (YAML 1.2.2, section 10.3.2).
#: Integers come before floats: ``12`` matches both.
CORE_SCHEMA: tuple[tuple[str, str, str], ...] = (
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", "~nN"),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (_INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        _FLOAT,
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+.0123456789",
    ),
)

#: Longest integer literal read (in digits): anything longer cannot be a float (1.8e308).
_MAX_INT_DIGITS = 310
_FLOAT_MAX = 1.7976931348623157e308
_NONZERO_DIGIT = re.compile(r"[1-9]")
_INF = float("inf")


def _error(node: yaml.Node, problem: str) -> yaml.constructor.ConstructorError:
    return yaml.constructor.ConstructorError(None, None, problem, node.start_mark)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = node.value  # the implicit resolver gave this tag to a plain scalar: its text
    digits = text.lstrip("+-")
    if len(digits) > _MAX_INT_DIGITS:
        raise _error(node, f"an integer of {len(digits)} digits is outside the range of a float (1.8e308)")
    try:
        if digits[:2] in ("0o", "0x"):
            value = int(digits[2:], 8 if digits[1] == "o" else 16)
            value = -value if text.startswith("-") else value
        else:
            value = int(text, 10)
    except ValueError:
        raise _error(node, f"{text[:40]!r} is not an integer") from None
    if abs(value) > _FLOAT_MAX:
        raise _error(node, f"the integer {text[:20]}... is outside the range of a float (1.8e308)")
    return value


def _construct_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    text = node.value
    try:
        value = float(text)  # the core schema's float syntax is a subset of Python's ...
    except ValueError:
        lowered = text.lower()  # ... but for .inf and .nan
        if lowered.lstrip("+-") in (".inf", ".nan"):
            return float(lowered.replace(".", ""))
        raise _error(node, f"{text[:40]!r} is not a number") from None
    if value in (_INF, -_INF):
        raise _error(node, f"{text[:40]} is outside the range of a float (1.8e308)")
    if value == 0.0 and _NONZERO_DIGIT.search(re.split(r"[eE]", text)[0]):
        raise _error(node, f"{text[:40]} is below the smallest float (4.9e-324) and would read as 0")
    return value


def core_schema(cls: Any, *, keep: bool = False) -> Any:
    """Install the YAML 1.2 core schema's implicit types on a loader or dumper class (and
    strict number constructors on a loader); returns ``cls``.

    ``keep``: add them to the class's YAML 1.1 ones instead of replacing them. A dumper that
    keeps both quotes every string that either version would read as something else
    (``yes``, ``1e5``, ``0o17``), so its output means the same to YAML 1.1 and 1.2 readers.
    """
    cls.yaml_implicit_resolvers = {k: list(v) for k, v in cls.yaml_implicit_resolvers.items()} if keep else {}
    for tag, pattern, first in CORE_SCHEMA:
        cls.add_implicit_resolver(tag, re.compile(pattern), list(first) + ([""] if "null" in tag else []))
    if hasattr(cls, "add_constructor"):
        cls.add_constructor(_INT, _construct_int)
        cls.add_constructor(_FLOAT, _construct_float)
    return cls


#: The core schema's implicit types as one expression, alternatives in :data:`CORE_SCHEMA`'s
#: order (its group names index :data:`_TAGS`): one match per scalar, not one per candidate type.
_IMPLICIT = re.compile(
    "|".join(f"(?P<t{k}>{pattern[1:-1]})" for k, (_, pattern, _) in enumerate(CORE_SCHEMA))
)
_TAGS = {f"t{k}": tag for k, (tag, _, _) in enumerate(CORE_SCHEMA)}
_STR = "tag:yaml.org,2002:str"


@core_schema
class Loader(_Base):  # type: ignore[misc, valid-type]
    """PyYAML's safe loader (libyaml where available) with the YAML 1.2 core schema."""

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        """The tag of a node: the implicit resolvers' answer, by one match of :data:`_IMPLICIT`
        (PyYAML tries each resolver of the first character in turn: the same tags, a
        third of the time per scalar, which is most of a game file's nodes)."""
        if kind is yaml.ScalarNode:
            match = _IMPLICIT.fullmatch(value) if implicit[0] else None
            return _STR if match is None else _TAGS[match.lastgroup]  # type: ignore[index]
        return super().resolve(kind, value, implicit)
