"""What both game-file formats share: the YAML document with its lines, errors, arrays, numbers.

Every problem in a file becomes one :class:`~rlhf_mech.errors.SpecError` naming the file, the
line and the field. :class:`Document` parses the YAML once and keeps the line of every node;
:func:`pydantic_error` turns a pydantic error into such a line; :class:`ArrayLoader` reads
``{file: ...}`` references beside the game file; :func:`vector` and :func:`number` read
numbers; :class:`ExpectSpec` and :func:`expectations` are the ``expect:`` block of both
formats.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from rlhf_mech.core import (
    ALL_PAYMENT_RULES,
    PAYMENT_RULES,
    Expectations,
    Parameter,
    PaymentRule,
    get_payment_rule,
)
from rlhf_mech.errors import SpecError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Path_ = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


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
    """``('groups', 1, 'reward')`` -> ``groups[1].reward``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class Document:
    """A parsed YAML document with the line of every node, for error messages."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines: dict[Path_, int] = {}
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise SpecError(path, None, "", "the file is empty")
            self._index(node, ())
            self.data = loader.construct_document(node)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            raise SpecError(path, line, "", f"invalid YAML: {exc.problem or exc.context}") from None
        except yaml.YAMLError as exc:
            raise SpecError(path, None, "", f"invalid YAML: {exc}") from None
        finally:
            loader.dispose()

    def _index(self, node: yaml.Node, path: Path_) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = key_node.value
                if key in seen:
                    raise SpecError(
                        self.path,
                        key_node.start_mark.line + 1,
                        format_field((*path, key)),
                        "duplicate key",
                    )
                seen.add(key)
                self._index(value_node, (*path, key))
                self.lines[(*path, key)] = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._index(item, (*path, i))

    def line(self, path: Path_) -> int | None:
        """Line of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def error(self, path: Path_, message: str) -> SpecError:
        return SpecError(self.path, self.line(path), format_field(path), message)


def source_lines(doc: Document) -> dict[str, int]:
    """The lines output points at (:attr:`rlhf_mech.core.Game.lines`): each group
    (``groups[1]``) and every entry of ``expect:`` (``expect.utility.alices``)."""
    return {
        format_field(path): line
        for path, line in doc.lines.items()
        if (len(path) == 2 and path[0] == "groups") or (path and path[0] == "expect")
    }


def pydantic_error(
    doc: Document, exc: ValidationError, fields_by_parent: dict[str, tuple[str, ...]]
) -> SpecError:
    """The first pydantic error as a :class:`SpecError`; ``fields_by_parent`` lists the keys
    each mapping accepts (by the name of the key that holds it), for unknown-field messages."""
    err = _meant(exc.errors())[0]
    raw = [part for part in err["loc"] if isinstance(part, int | str)]
    # a tagged union's location is BRANCH, TAG, FIELD: the tag names the mapping's model
    tags = {
        raw[k + 1]
        for k, part in enumerate(raw[:-1])
        if isinstance(part, str) and part.startswith("tagged-union")
    }
    loc = tuple(part for part in raw if not _is_branch(part) and part not in tags)
    if err["type"] == "extra_forbidden":
        parent = next((p for p in reversed(raw[:-1]) if isinstance(p, str) and not _is_branch(p)), "")
        expected = ", ".join(fields_by_parent.get(parent, ()))
        return doc.error(loc, f"unknown field (expected one of: {expected})")
    if err["type"] == "missing":
        return doc.error(loc, "required field is missing")
    if err["type"] == "union_tag_not_found":
        return doc.error(loc, f"a mapping here needs a {err['ctx']['discriminator']} key")
    if err["type"] in ("model_type", "model_attributes_type", "dataclass_type"):
        # pydantic's message names the model class ("... instance of GroupSpec"): say it in YAML terms
        return doc.error(loc, f"expected a mapping (key: value lines), got {_yaml_kind(err['input'])}")
    return doc.error(loc, err["msg"])


def _is_branch(part: int | str) -> bool:
    """Whether a location part names a union branch (``literal[...]``, ``tagged-union[...]``)
    rather than a key of the file."""
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _meant(errors: list[Any]) -> list[Any]:
    """The errors of the union branch the input was written for: a mapping given where a name
    or a mapping goes (``payment:``) is judged as a mapping, a name as a name."""
    mapping = [
        e for e in errors if not any(isinstance(p, str) and p.startswith("literal[") for p in e["loc"])
    ]
    branched = [e for e in errors if any(_is_branch(p) for p in e["loc"])]
    if not branched:
        return errors
    as_text = [e for e in errors if e not in mapping]
    wrote_mapping = any(e["type"] != "model_attributes_type" for e in mapping if e in branched)
    return (mapping if wrote_mapping else as_text) or errors


def _yaml_kind(value: Any) -> str:
    """What a YAML value is, in the file's terms."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    return f"the number {value!r}" if isinstance(value, int | float) else type(value).__name__


class ArrayLoader:
    """Loads ``{file: ..., row: k}`` references relative to the game file, once per file."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.cache: dict[Path, np.ndarray] = {}

    def load(self, ref: Mapping[str, Any], path: Path_) -> np.ndarray:
        unknown = set(ref) - {"file", "row"}
        if unknown or "file" not in ref:
            raise self.doc.error(path, "an array reference is {file: NAME.npy|NAME.csv, row: k}")
        target = (self.doc.path.parent / str(ref["file"])).resolve()
        if target not in self.cache:
            self.cache[target] = self._read(target, (*path, "file"))
        array = self.cache[target]
        row = ref.get("row")
        if row is None:
            if array.ndim != 1:
                raise self.doc.error(
                    (*path, "file"), f"{ref['file']} holds a {array.shape} array; pick one with row: k"
                )
            return array
        if not isinstance(row, int) or isinstance(row, bool) or array.ndim != 2:
            raise self.doc.error((*path, "row"), "row: k needs an integer k and a 2-D array")
        if not 0 <= row < array.shape[0]:
            raise self.doc.error((*path, "row"), f"row {row} is outside 0..{array.shape[0] - 1}")
        return array[row]

    def _read(self, target: Path, path: Path_) -> np.ndarray:
        try:
            if target.suffix == ".npy":
                array = np.load(target, allow_pickle=False)
            elif target.suffix == ".csv":
                array = np.loadtxt(target, delimiter=",", ndmin=1)
            else:
                raise self.doc.error(path, f"{target.name}: expected a .npy or .csv file")
        except (OSError, ValueError) as exc:
            raise self.doc.error(path, f"cannot read {target.name}: {exc}") from None
        if array.dtype.kind not in "iuf" or array.ndim not in (1, 2):
            raise self.doc.error(path, f"{target.name}: expected a 1-D or 2-D array of numbers")
        return np.asarray(array, dtype=float)


def vector(
    doc: Document, arrays: ArrayLoader, value: Any, path: Path_, outcomes: tuple[str, ...]
) -> np.ndarray:
    """A list, an {outcome: value} mapping or a file reference -> (m,) finite float array."""
    m = len(outcomes)
    if isinstance(value, Mapping) and "file" in value:
        vec = arrays.load(value, path)
    elif isinstance(value, Mapping):
        unknown = [k for k in value if k not in outcomes]
        if unknown:
            raise doc.error((*path, unknown[0]), f"unknown outcome {unknown[0]!r}")
        missing = [o for o in outcomes if o not in value]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise doc.error(path, f"no value for outcome(s) {shown}")
        vec = np.array([number(doc, value[o], (*path, o)) for o in outcomes])
    elif isinstance(value, list):
        vec = np.array([number(doc, v, (*path, i)) for i, v in enumerate(value)])
    else:
        raise doc.error(path, "expected a list of numbers, an {outcome: value} mapping or {file: ...}")
    if vec.shape != (m,):
        raise doc.error(path, f"expected {m} values (one per outcome), got {vec.size}")
    bad = np.flatnonzero(~np.isfinite(vec))
    if bad.size:
        raise doc.error(path, f"value for outcome {outcomes[bad[0]]!r} is {vec[bad[0]]} (must be finite)")
    return vec


_YAML11_TEXT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def number(doc: Document, value: Any, path: Path_) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = ""
        if isinstance(value, str) and _YAML11_TEXT_NUMBER.fullmatch(value.strip()):
            # YAML 1.1 (PyYAML) reads 1e-300 as text: a float needs a dot and a signed exponent.
            hint = " (YAML reads this as text: write a float with a dot, e.g. 1.0e-300)"
        raise doc.error(path, f"expected a number, got {value!r}{hint}")
    if not math.isfinite(value):
        raise doc.error(path, f"{value} is not a finite number")
    return float(value)


def valid_size(doc: Document, value: float, path: Path_, max_size: float | None) -> float:
    """A group's size: a real number in ``[1, max_size]`` (section 3's ``W``)."""
    if value < 1:
        raise doc.error(path, f"size {value!r} is below 1")
    if max_size is not None and value > max_size:
        raise doc.error(path, f"size {value!r} is above max_size {max_size!r}")
    return float(value)


def expectations(doc: Document, spec: ExpectSpec | None, names: tuple[str, ...]) -> Expectations | None:
    """The validated ``expect:`` block (group names checked) as :class:`~rlhf_mech.core.Expectations`."""
    if spec is None:
        return None
    ranges: dict[str, dict[str, tuple[float, float]]] = {}
    for quantity in ("utility", "valuation", "group_valuation", "payment"):
        given = getattr(spec, quantity) or {}
        for group, (lo, hi) in given.items():
            if group not in names:
                raise doc.error(("expect", quantity, group), f"no group named {group!r}")
            if lo > hi:
                raise doc.error(("expect", quantity, group), f"empty range [{lo}, {hi}]")
        if given:
            ranges[quantity] = {group: (lo, hi) for group, (lo, hi) in given.items()}
    for quantity in ("social_welfare", "asw"):
        bounds = getattr(spec, quantity)
        if bounds is not None:
            if bounds[0] > bounds[1]:
                raise doc.error(("expect", quantity), f"empty range [{bounds[0]}, {bounds[1]}]")
            ranges[quantity] = {"": (bounds[0], bounds[1])}
    return Expectations(
        profile=spec.profile,
        dsic=spec.dsic,
        ir=spec.ir,
        nonnegative_payments=spec.nonnegative_payments,
        profitable_without_payment=spec.profitable_without_payment,
        ranges=ranges,
        line=doc.line(("expect",)),
    )


def fields_by_parent(model: type[BaseModel]) -> dict[str, tuple[str, ...]]:
    """The keys each mapping of a file accepts, by the name of the key that holds it (``""``
    for the top level), read off the pydantic models, for "unknown field" messages."""
    out: dict[str, tuple[str, ...]] = {}

    def visit(parent: str, current: type[BaseModel]) -> None:
        out[parent] = tuple(f.alias or k for k, f in current.model_fields.items())
        for key, info in current.model_fields.items():
            for nested in _models_in(info.annotation):
                tag = nested.model_fields.get("rule")
                # a member of a tagged union is located by its tag (``rule: early_stopped``)
                tags = get_args(tag.annotation) if tag is not None else ()
                visit(tags[0] if tags else info.alias or key, nested)

    visit("", model)
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside a field's type (``M``, ``list[M]``, ``M | None`` ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def validated(doc: Document, model: type[M]) -> M:
    """``doc``'s data validated by ``model``; the first problem as a :class:`SpecError`."""
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise pydantic_error(doc, exc, fields_by_parent(model)) from None


# --- payment: a rule's name, or {rule: NAME, parameter: value, ...} ----------------------------

_PARAMETER_TYPES: dict[str, Any] = {"int": int, "float": FiniteFloat, "outcomes": list[str]}


def _parameter_field(parameter: Parameter) -> tuple[Any, Any]:
    """The pydantic (type, field) of one payment-rule parameter, bounds included."""
    bounds: dict[str, Any] = {}
    if parameter.minimum is not None:
        bounds["gt" if parameter.exclusive else "ge"] = parameter.minimum
    if parameter.maximum is not None:
        bounds["le"] = parameter.maximum
    kind = _PARAMETER_TYPES[parameter.kind]
    if parameter.kind == "int":
        kind = int
    if parameter.default is None:
        kind = kind | None
    return kind, Field(default=parameter.default, description=parameter.description, **bounds)


def _rule_model(rule: PaymentRule) -> type[BaseModel]:
    fields = {p.name: _parameter_field(p) for p in rule.schema}
    return create_model(
        f"{''.join(part.title() for part in rule.name.split('_'))}Payment",
        __base__=Strict,
        __doc__=f"``payment: {{rule: {rule.name}, ...}}``: {rule.reference}.",
        rule=(Literal[rule.name], ...),  # type: ignore[valid-type]
        **fields,
    )


#: The ``payment:`` field of both formats: a rule's name, or a mapping with its parameters.
PaymentField = Annotated[
    literal(tuple(PAYMENT_RULES))
    | Annotated[Union[tuple(_rule_model(r) for r in ALL_PAYMENT_RULES)], Field(discriminator="rule")],  # noqa: UP007
    Field(description="a payment rule, or {rule: NAME, parameter: value, ...}"),
]


def payment_rule(doc: Document, value: Any, outcomes: tuple[str, ...]) -> PaymentRule:
    """The validated ``payment:`` as a :class:`~rlhf_mech.core.PaymentRule` with its
    parameters (outcome names turned into indices)."""
    if isinstance(value, str):
        return get_payment_rule(value)
    rule = get_payment_rule(value.rule)
    settings: dict[str, Any] = {}
    for parameter in rule.schema:
        given = getattr(value, parameter.name)
        if given is None or parameter.name not in value.model_fields_set:
            continue
        if parameter.kind == "outcomes":
            unknown = [name for name in given if name not in outcomes]
            if unknown:
                raise doc.error(("payment", parameter.name), f"unknown outcome {unknown[0]!r}")
            given = [outcomes.index(name) for name in given]
        settings[parameter.name] = given
    try:
        return rule.with_parameters(**settings)
    except ValueError as exc:
        raise doc.error(("payment",), str(exc)) from None
