"""What both game-file formats share: the YAML document with its lines, errors, arrays, numbers.

Every problem in a file becomes a :class:`~rlhf_mech.errors.SpecError` naming the file, the
line and the field, and every problem of a file is reported in one run:
:class:`Document` parses the YAML once (the YAML 1.2 core schema, :mod:`rlhf_mech.files._yaml`),
refuses what no game file needs and a hostile one uses (a key that is a list or mapping, an
alias inside itself, aliases that expand the document past :data:`MAX_ALIAS_EXPANSION`
values, a duplicate key), finds the line of any field on demand, and collects problems
(:meth:`Document.check`; pydantic's errors become such problems in
:mod:`rlhf_mech.files.spec._validation`); :class:`ArrayLoader` reads ``{file: ...}``
references inside the game file's folder;
:func:`vector` and :func:`number` read numbers; :class:`ExpectSpec` and :func:`expectations`
are the ``expect:`` block of both formats, :data:`PaymentField` and :func:`payment_rule` their
``payment:`` (a rule's name or ``{rule: NAME, parameter: value, ...}``). User text inside
messages is escaped and cut short (:func:`shown`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

import numpy as np
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
)

from rlhf_mech.core import (
    ALL_PAYMENT_RULES,
    ALL_TRAINING_RULES,
    Expectations,
    Parameter,
    PaymentRule,
    TrainingRule,
    get_divergence,
    get_payment_rule,
    get_training_rule,
)
from rlhf_mech.core._internal import rule_conflict
from rlhf_mech.errors import SHOWN_CHARS, SpecError, shown
from rlhf_mech.files._arrays import ARRAY_SUFFIXES, read_array
from rlhf_mech.files._yaml import Loader
from rlhf_mech.files.spec._schemas import (
    LAMBDA_MAX,
    LAMBDA_MIN,
    LAMBDA_SCHEMA,
    MAX_NAME_CHARS,
    NAME_PATTERN,
    SIZE_LIMIT,
)

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
#: A name (of a game, outcome, group, reward model or candidate): not empty, no control
#: characters (a newline or ESC in a name would rewrite the terminal it is printed on), at
#: most :data:`MAX_NAME_CHARS` characters.
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS, pattern=NAME_PATTERN)]
#: A group size (section 3's ``w_i``) or ``max_size``: at least 1, at most :data:`SIZE_LIMIT`.
Size = Annotated[float, Field(ge=1, le=SIZE_LIMIT, allow_inf_nan=False)]


def _lambda_in_range(value: float) -> float:
    if not LAMBDA_MIN <= value <= LAMBDA_MAX:
        raise ValueError(
            f"lambda {value:g} is outside [{LAMBDA_MIN:g}, {LAMBDA_MAX:g}], the range over which "
            "the solvers are checked: below it scores / lambda leave the float range, above it "
            "every payment is smaller than the rounding of the values it is a difference of"
        )
    return value


#: The weight ``lambda`` of the divergence (or of the candidates' divergence values).
Lambda = Annotated[
    float, Field(allow_inf_nan=False), AfterValidator(_lambda_in_range), WithJsonSchema(LAMBDA_SCHEMA)
]


#: What :func:`is_name` asks of a name, for messages.
NAME_RULE = f"must be non-empty, without control characters, of at most {MAX_NAME_CHARS} characters"


def is_name(value: Any) -> bool:
    """Whether ``value`` is a valid name (:data:`Name`)."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_NAME_CHARS
        and re.fullmatch(NAME_PATTERN, value) is not None
    )


Path_ = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

#: Aliases may add at most this many values to a document beyond those written out: a
#: 506-byte alias bomb expands to half a billion.
MAX_ALIAS_EXPANSION = 1_000_000
#: Problems listed per file; the rest are counted in one last line.
MAX_PROBLEMS = 50


def literal(values: tuple[str, ...]) -> Any:
    """``Literal[values]`` for a pydantic field whose vocabulary comes from a registry."""
    return Literal[values]  # type: ignore[valid-type]


class Strict(BaseModel):
    """A strict, frozen pydantic model: unknown keys are errors, types are not coerced."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


Range = Annotated[list[FiniteFloat], Field(min_length=2, max_length=2)]


class ExpectSpec(Strict):
    """``expect:``: what ``rlhf-mech audit`` must find (issue #4). Ranges are ``[lo, hi]``."""

    profile: Literal["truthful", "reported"] = "truthful"
    dsic: bool | None = None
    ir: bool | None = None
    nonnegative_payments: bool | None = None
    profitable_without_payment: bool | None = None
    utility: dict[str, Range] | None = None
    valuation: dict[str, Range] | None = None
    group_valuation: dict[str, Range] | None = None
    payment: dict[str, Range] | None = None
    social_welfare: Range | None = None
    asw: Range | None = None


def format_field(path: Path_) -> str:
    """``('groups', 1, 'reward')`` -> ``groups[1].reward``; a key that is not a plain printable
    name is quoted and escaped (``groups[0].'\\x1b[31m'``)."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out = _with_key(out, part)
    return out


def _with_key(field: str, key: object) -> str:
    """``field.key``, the key as written where it is a plain printable name, else quoted."""
    plain = isinstance(key, str) and key.isprintable() and 0 < len(key) <= SHOWN_CHARS
    text = key if plain else shown(key)
    return f"{field}.{text}" if field else str(text)


def _is_key(node: yaml.Node, part: str | int | float | bool | None) -> bool:
    """Whether the key node ``node`` is the key ``part`` of a path (pydantic's or ours): the
    same text, or, for a key YAML reads as a number or boolean (``0x1F``, ``true``), the same value."""
    if not isinstance(node, yaml.ScalarNode):
        return False
    if isinstance(part, str):
        return node.value == part
    try:
        value = yaml.load(node.value, Loader=Loader) if not node.style else node.value  # plain: "" or None
    except yaml.YAMLError:
        return False
    return not isinstance(value, str) and value == part


def _continued(field: str, rest: Path_) -> str:
    """The remaining parts of a path not found in the document, formatted after ``field``."""
    text = format_field(rest)
    return text if not field or not text or text.startswith("[") else f".{text}"


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


class Document:
    """A parsed YAML document, the line of every field, and the problems found in it.

    Parameters
    ----------
    path : the file (for messages and relative references); text : its content.
    allow_outside_refs : whether ``{file: ...}`` references may leave the file's folder.

    Raises
    ------
    SpecError
        for invalid YAML and for the structures refused above (all of them).
    """

    def __init__(self, path: Path, text: str, *, allow_outside_refs: bool = False) -> None:
        self.path = path
        self.allow_outside_refs = allow_outside_refs
        self.problems: list[SpecError] = []
        #: problems found but not built (past :data:`MAX_PROBLEMS`: only counted)
        self.more = 0
        loader = Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise SpecError(path, None, "", "the file is empty")
            self.root: yaml.Node = node
            self._check_graph(node, anchored="&" in text)
            self.raise_problems()
            self.data = loader.construct_document(node)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            raise SpecError(path, line, "", f"invalid YAML: {exc.problem or exc.context}") from None
        except yaml.YAMLError as exc:
            raise SpecError(path, None, "", f"invalid YAML: {exc}") from None
        except RecursionError:
            raise SpecError(path, None, "", "invalid YAML: nested too deeply") from None
        finally:
            loader.dispose()

    def _check_graph(self, root: yaml.Node, anchored: bool = True) -> None:
        """Keys are scalars and unique; no node contains itself; aliases expand moderately.

        One iterative depth-first walk over the distinct nodes (aliases share them), so that
        neither depth nor an alias bomb costs more than the text's own size. A text without
        ``&`` has no anchor, so no alias: a tree, whose keys alone are checked, in a walk
        over its collections (not its scalars, most of a game file's nodes).
        """
        if not anchored:
            collections: list[yaml.Node] = [root]
            while collections:
                node = collections.pop()
                children = _children(node)
                if isinstance(node, yaml.MappingNode):
                    self._check_keys(node)
                collections += [child for child in children if not isinstance(child, yaml.ScalarNode)]
            return
        expanded: dict[int, int] = {}
        on_path: set[int] = set()
        stack: list[tuple[yaml.Node, bool]] = [(root, False)]
        while stack:
            node, leaving = stack.pop()
            key = id(node)
            if leaving:
                on_path.discard(key)
                expanded[key] = 1 + sum(expanded[id(c)] for c in _children(node))
                continue
            if key in expanded:
                continue
            if key in on_path:
                self._note(node, "an alias refers to a node that contains it")
                return
            on_path.add(key)
            stack.append((node, True))
            if isinstance(node, yaml.MappingNode):
                self._check_keys(node)
            stack.extend((child, False) for child in reversed(_children(node)))
        written = len(expanded)
        total = expanded[id(root)]
        if total - written > MAX_ALIAS_EXPANSION:
            message = (
                f"aliases expand the document from {written} to {total} values "
                f"(at most {MAX_ALIAS_EXPANSION} more than written)"
            )
            self.problems.append(SpecError(self.path, None, "", message))

    def _check_keys(self, node: yaml.MappingNode) -> None:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                kind = "list" if isinstance(key_node, yaml.SequenceNode) else "mapping"
                self._note(key_node, f"a key must be a name, not a {kind}")
            elif key_node.value in seen:
                self._note(key_node, f"duplicate key {shown(key_node.value)}")
            else:
                seen.add(key_node.value)

    def _note(self, node: yaml.Node, message: str) -> None:
        """Record a problem found on ``node``; past :data:`MAX_PROBLEMS` only count it (its
        field is found by a walk of the document: 80,000 duplicate keys need not be)."""
        if len(self.problems) >= MAX_PROBLEMS:
            self.more += 1
            return
        self.problems.append(SpecError(self.path, node.start_mark.line + 1, self._field_of(node), message))

    def _field_of(self, target: yaml.Node) -> str:
        """The field path of ``target`` (first occurrence), for problems found on nodes."""
        stack: list[tuple[yaml.Node, Path_]] = [(self.root, ())]
        seen: set[int] = set()
        while stack:
            node, path = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    name = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                    if target is key_node or target is value_node:
                        return format_field((*path, name))
                    stack.append((value_node, (*path, name)))
            elif isinstance(node, yaml.SequenceNode):
                for i, item in enumerate(node.value):
                    if target is item:
                        return format_field((*path, i))
                    stack.append((item, (*path, i)))
        return ""

    def line(self, path: Path_) -> int | None:
        """Line of ``path`` (of its key, for a mapping entry), or of its nearest ancestor."""
        return self.locate(path)[0]

    def locate(self, path: Path_) -> tuple[int, str]:
        """The line of ``path`` and its field text, read off the document: a part is a key
        (``.name``, quoted where it is not a plain name) where the node is a mapping, so that
        a key ``0x1F`` (31 to pydantic) is not taken for an index; an index (``[i]``) where it
        is a list; past the nodes found, as :func:`format_field` writes it."""
        node: yaml.Node | None = self.root
        line = self.root.start_mark.line + 1
        field = ""
        for k, part in enumerate(path):
            if isinstance(node, yaml.MappingNode):
                match = next(((key, v) for key, v in node.value if _is_key(key, part)), None)
                if match is None:
                    return line, field + _continued(field, path[k:])
                line, node = match[0].start_mark.line + 1, match[1]
                field = _with_key(field, part)
            elif (
                isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value)
            ):
                node = node.value[part]
                line = node.start_mark.line + 1
                field += f"[{part}]"
            else:
                return line, field + _continued(field, path[k:])
        return line, field

    def error(self, path: Path_, message: str) -> SpecError:
        line, field = self.locate(path)
        return SpecError(self.path, line, field, message)

    def failed(self, path: Path_) -> bool:
        """Whether a problem of the field ``path`` itself is already recorded (a partial spec's
        ``None`` then means "failed", not a ``null`` the file wrote)."""
        field = format_field(path)
        return any(p.field == field for p in self.problems)

    def check(self, step: Callable[..., T], *args: Any) -> T | None:
        """``step(*args)``, or ``None`` with its problems recorded: the checks that do not depend
        on it go on, so that one run reports every problem of the file."""
        try:
            return step(*args)
        except SpecError as exc:
            self.problems.extend(p.single() for p in exc.problems)
            return None

    def raise_problems(self) -> None:
        """Raise the problems recorded so far, if any (:meth:`collected`)."""
        if self.problems:
            raise self.collected()

    def collected(self, more: list[SpecError] | tuple[SpecError, ...] = ()) -> SpecError:
        """The problems recorded so far and ``more``, in line order, as one :class:`SpecError`
        (at most :data:`MAX_PROBLEMS` listed, the rest counted); the record is emptied."""
        unique: dict[str, SpecError] = {}
        for problem in (*self.problems, *more):
            unique.setdefault(problem.text, problem)
        ordered = sorted(unique.values(), key=lambda p: p.line or 0)
        listed = ordered[:MAX_PROBLEMS]
        unlisted = len(ordered) - len(listed) + self.more
        if unlisted:
            listed.append(SpecError(self.path, None, "", f"and {unlisted} more problems"))
        self.problems = []
        self.more = 0
        return SpecError.collected(listed)


def source_lines(doc: Document) -> dict[str, int]:
    """The lines output points at (:attr:`rlhf_mech.core.Game.lines`) of a document that
    loaded: each group (``groups[1]``) and every entry of ``expect:`` (``expect``,
    ``expect.dsic``, ``expect.utility.alices``), the line of its key."""
    data = doc.data
    paths: list[Path_] = [("groups", i) for i in range(len(data.get("groups") or ()))]
    entries: list[tuple[Path_, Any]] = [(("expect",), data["expect"])] if "expect" in data else []
    while entries:
        path, value = entries.pop()
        paths.append(path)
        if isinstance(value, Mapping):
            entries += [((*path, key), item) for key, item in value.items()]
    return {field: line for line, field in map(doc.locate, paths)}


class ArrayLoader:
    """Loads ``{file: ..., row: k}`` references relative to the game file, once per file.

    A reference must stay inside the game file's folder tree (after following symlinks)
    unless the document allows others (``allow_outside_refs``): a game file from a pull
    request must not read ``/etc/passwd`` or ``../../secrets.csv``.
    """

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.cache: dict[Path, np.ndarray] = {}

    def load(self, ref: Mapping[str, Any], path: Path_) -> np.ndarray:
        unknown = set(ref) - {"file", "row"}
        name = ref.get("file")
        if unknown or not isinstance(name, str) or not name:
            raise self.doc.error(path, "an array reference is {file: NAME.npy|NAME.csv, row: k}")
        target = self.target(name, (*path, "file"))
        if target not in self.cache:
            try:
                self.cache[target] = read_array(target)
            except ValueError as exc:
                raise self.doc.error((*path, "file"), f"cannot read {shown(name)}: {exc}") from None
        array = self.cache[target]
        row = ref.get("row")
        if row is None:
            if array.ndim != 1:
                raise self.doc.error(
                    (*path, "file"), f"{shown(name)} holds a {array.shape} array; pick one with row: k"
                )
            return np.asarray(array)
        if not isinstance(row, int) or isinstance(row, bool) or array.ndim != 2:
            raise self.doc.error((*path, "row"), "row: k needs an integer k and a 2-D array")
        if not 0 <= row < array.shape[0]:
            raise self.doc.error((*path, "row"), f"row {row} is outside 0..{array.shape[0] - 1}")
        return np.asarray(array[row])

    def target(self, name: str, path: Path_, suffixes: tuple[str, ...] = ARRAY_SUFFIXES) -> Path:
        """The file a reference ``name`` (at ``path``, with one of ``suffixes``) points to."""
        if "\x00" in name:
            raise self.doc.error(path, "the file name contains a NUL byte")
        if Path(name).suffix not in suffixes:
            raise self.doc.error(path, f"{shown(name)}: expected a {' or '.join(suffixes)} file")
        folder = self.doc.path.parent
        try:
            target = (folder / name).resolve()
            root = folder.resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
            raise self.doc.error(path, f"cannot read {shown(name)}: {exc}") from None
        if not (self.doc.allow_outside_refs or target.is_relative_to(root)):
            raise self.doc.error(
                path,
                f"{shown(name)} is outside the game file's folder; references stay inside it "
                "unless allowed (--allow-outside-refs)",
            )
        return target


def vector(
    doc: Document, arrays: ArrayLoader, value: Any, path: Path_, outcomes: tuple[str, ...]
) -> np.ndarray:
    """A list, an {outcome: value} mapping or a file reference -> (m,) finite float array.

    Raises
    ------
    SpecError
        carrying every problem of the value (each bad entry, each unknown outcome).
    """
    m = len(outcomes)
    problems: list[SpecError] = []
    if isinstance(value, Mapping) and "file" in value:
        vec = arrays.load(value, path)
    elif isinstance(value, Mapping):
        index = {name: j for j, name in enumerate(outcomes)}
        problems += [doc.error((*path, k), f"unknown outcome {shown(k)}") for k in value if k not in index]
        missing = [o for o in outcomes if o not in value]
        if missing:
            names = ", ".join(shown(o) for o in missing[:5]) + (" ..." if len(missing) > 5 else "")
            problems.append(doc.error(path, f"no value for outcome(s) {names}"))
        vec = _numbers(doc, [(o, value.get(o, 0.0)) for o in outcomes], path, problems)
    elif isinstance(value, list):
        # the common case, finite numbers, at once; else entry by entry, a problem for each
        vec = _finite_numbers(value)
        if vec is None:
            vec = _numbers(doc, list(enumerate(value)), path, problems)
    else:
        raise doc.error(path, "expected a list of numbers, an {outcome: value} mapping or {file: ...}")
    if problems:
        raise SpecError.collected(problems[:MAX_PROBLEMS])
    if vec.shape != (m,):
        raise doc.error(path, f"expected {m} values (one per outcome), got {vec.size}")
    bad = np.flatnonzero(~np.isfinite(vec))
    if bad.size:
        raise doc.error(
            path, f"value for outcome {shown(outcomes[bad[0]])} is {vec[bad[0]]} (must be finite)"
        )
    return vec


def _finite_numbers(values: list[Any]) -> np.ndarray | None:
    """``values`` as an array where they are all finite ints and floats (not bools), as
    :func:`number` accepts them (the YAML reader refuses integers outside the float range),
    else ``None``."""
    if not all(type(v) is float or type(v) is int for v in values):
        return None
    out = np.array(values, dtype=float)
    return out if np.isfinite(out).all() else None


def _numbers(
    doc: Document, items: list[tuple[Any, Any]], path: Path_, problems: list[SpecError]
) -> np.ndarray:
    """The numbers of ``(key, value)`` items as an array; a problem per bad entry (capped)."""
    out = np.empty(len(items))
    for j, (key, value) in enumerate(items):
        try:
            out[j] = number(doc, value, (*path, key))
        except SpecError as exc:
            if len(problems) < MAX_PROBLEMS:
                problems.append(exc)
    return out


def number(doc: Document, value: Any, path: Path_) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise doc.error(path, f"expected a number, got {shown(value)}")
    if isinstance(value, int) and abs(value) > np.finfo(float).max:
        raise doc.error(path, "the number is outside the range of a float (1.8e308)")
    if not math.isfinite(value):
        raise doc.error(path, f"{value} is not a finite number")
    return float(value)


def max_size_bound(doc: Document, value: float, path: Path_, max_size: float | None) -> float:
    """A group's size within ``max_size`` (section 3's ``W``; ``size >= 1`` is the spec's)."""
    if max_size is not None and value > max_size:
        raise doc.error(path, f"size {value!r} is above max_size {max_size!r}")
    return float(value)


def expectations(doc: Document, spec: ExpectSpec | None, names: tuple[str, ...]) -> Expectations | None:
    """The validated ``expect:`` block (group names checked) as :class:`~rlhf_mech.core.Expectations`."""
    if spec is None:
        return None
    problems: list[SpecError] = []
    ranges: dict[str, dict[str, tuple[float, float]]] = {}
    for quantity in ("utility", "valuation", "group_valuation", "payment"):
        given = getattr(spec, quantity) or {}
        for group, (lo, hi) in given.items():
            if group not in names:
                problems.append(doc.error(("expect", quantity, group), f"no group named {shown(group)}"))
            if lo > hi:
                problems.append(doc.error(("expect", quantity, group), f"empty range [{lo}, {hi}]"))
        if given:
            ranges[quantity] = {group: (lo, hi) for group, (lo, hi) in given.items()}
    for quantity in ("social_welfare", "asw"):
        bounds = getattr(spec, quantity)
        if bounds is not None:
            if bounds[0] > bounds[1]:
                problems.append(doc.error(("expect", quantity), f"empty range [{bounds[0]}, {bounds[1]}]"))
            ranges[quantity] = {"": (bounds[0], bounds[1])}
    if problems:
        raise SpecError.collected(problems)
    return Expectations(
        profile=spec.profile,
        dsic=spec.dsic,
        ir=spec.ir,
        nonnegative_payments=spec.nonnegative_payments,
        profitable_without_payment=spec.profitable_without_payment,
        ranges=ranges,
        line=doc.line(("expect",)),
    )


def unique_names(
    doc: Document, names: list[str], path: Path_, what: str, indices: list[int] | None = None
) -> tuple[str, ...]:
    """``names`` as a tuple; every repeat is a problem at its index under ``path`` (``indices``:
    the index of each name, where some items of the list were left out)."""
    seen: set[str] = set()
    problems = []
    for k, name in enumerate(names):
        if name in seen:
            index = k if indices is None else indices[k]
            field = (*path, index, "name") if indices is not None else (*path, index)
            problems.append(doc.error(field, f"duplicate {what} {shown(name)}"))
        seen.add(name)
    if problems:
        raise SpecError.collected(problems)
    return tuple(names)


# --- payment: and training: a rule's name, or {rule: NAME, parameter: value, ...} -----------

#: The pydantic type of each kind of parameter (``outcomes``: a non-empty list of names, which
#: :func:`configured_rule` checks against the game's outcomes; ``choice``: its choices).
_PARAMETER_TYPES: dict[str, Any] = {
    "int": int,
    "float": FiniteFloat,
    "outcomes": Annotated[list[Name], Field(min_length=1)],
}

#: A registry rule with parameters (a payment or a training rule).
Rule = PaymentRule | TrainingRule


def _parameter_field(parameter: Parameter) -> tuple[Any, Any]:
    """The pydantic (type, field) of one rule parameter, bounds included."""
    bounds: dict[str, Any] = {}
    if parameter.minimum is not None:
        bounds["gt" if parameter.exclusive else "ge"] = parameter.minimum
    if parameter.maximum is not None:
        bounds["le"] = parameter.maximum
    kind = literal(parameter.choices) if parameter.kind == "choice" else _PARAMETER_TYPES[parameter.kind]
    if parameter.default is None:
        kind = kind | None
    return kind, Field(default=parameter.default, description=parameter.description, **bounds)


def _rule_model(rule: Rule, key: str) -> type[BaseModel]:
    fields = {p.name: _parameter_field(p) for p in rule.schema}
    return create_model(
        f"{''.join(part.title() for part in rule.name.split('_'))}{key.title()}",
        __base__=Strict,
        __doc__=f"``{key}: {{rule: {rule.name}, ...}}``: {rule.reference}.",
        rule=(Literal[rule.name], ...),  # type: ignore[valid-type]
        **fields,
    )


def rule_field(key: str, rules: tuple[Rule, ...]) -> Any:
    """The type of a ``key:`` field: one of ``rules``' names, or a mapping with its parameters."""
    names = tuple(rule.name for rule in rules)
    return Annotated[
        literal(names)
        | Annotated[Union[tuple(_rule_model(r, key) for r in rules)], Field(discriminator="rule")],  # noqa: UP007
        Field(description=f"a {rules[0].family}, or {{rule: NAME, parameter: value, ...}}"),
    ]


#: The ``payment:`` field of both formats.
PaymentField = rule_field("payment", ALL_PAYMENT_RULES)
#: The ``training:`` field of both formats.
TrainingField = rule_field("training", ALL_TRAINING_RULES)


def configured_rule(
    doc: Document, key: str, value: Any, outcomes: tuple[str, ...], lookup: Callable[[str], Rule]
) -> Rule:
    """The validated ``key:`` (``payment`` or ``training``) as its registry rule with its
    parameters (outcome names turned into indices).

    Raises
    ------
    SpecError
        carrying every unknown outcome a parameter names, or the rule's own objection.
    """
    if isinstance(value, str):
        return lookup(value)
    rule = lookup(value.rule)
    settings: dict[str, Any] = {}
    problems: list[SpecError] = []
    index = {name: j for j, name in enumerate(outcomes)}
    for parameter in rule.schema:
        given = getattr(value, parameter.name)
        if given is None or parameter.name not in value.model_fields_set:
            continue
        if parameter.kind == "outcomes":
            problems += _outcome_problems(doc, (key, parameter.name), given, index)
            given = [index[name] for name in given if name in index]
        settings[parameter.name] = given
    if problems:
        raise SpecError.collected(problems[:MAX_PROBLEMS])
    try:
        return rule.with_parameters(**settings)
    except ValueError as exc:
        raise doc.error((key,), str(exc)) from None


def _outcome_problems(
    doc: Document, field: Path_, names: list[str], index: dict[str, int]
) -> list[SpecError]:
    """The problems of a parameter's list of outcome ``names`` (``index``: the game's outcomes
    by name): an unknown name, and a name given twice (a checkpoint counted twice is the same
    checkpoint: a repeat is a typo, not a weight), located at the repeated entry."""
    problems = []
    seen: set[str] = set()
    for k, name in enumerate(names):
        if name not in index:
            problems.append(doc.error(field, f"unknown outcome {shown(name)}"))
        elif name in seen:
            problems.append(doc.error((*field, k), f"outcome {shown(name)} given twice"))
        seen.add(name)
    return problems


def payment_rule(doc: Document, value: Any, outcomes: tuple[str, ...]) -> PaymentRule:
    """The validated ``payment:`` (:func:`configured_rule`)."""
    return configured_rule(doc, "payment", value, outcomes, get_payment_rule)  # type: ignore[return-value]


def training_rule(doc: Document, value: Any, outcomes: tuple[str, ...]) -> TrainingRule:
    """The validated ``training:`` (:func:`configured_rule`)."""
    return configured_rule(doc, "training", value, outcomes, get_training_rule)  # type: ignore[return-value]


def rules_agree(
    doc: Document, training: TrainingRule | None, payment: PaymentRule | None, divergence: str
) -> tuple[TrainingRule, PaymentRule]:
    """The file's training and payment rules (defaults: SW-Max; ``p^AFF`` for an additive
    rule, ``none`` otherwise), checked against each other and the divergence
    (:func:`~rlhf_mech.core.rule_conflict`); a conflict needs a ``training:`` field, and is
    located there."""
    training = training or get_training_rule("sw_max")
    payment = payment or get_payment_rule("affine_maximizer" if training.additive else "none")
    conflict = rule_conflict(training, payment, get_divergence(divergence))
    if conflict:
        raise doc.error(("training",), conflict)
    return training, payment
