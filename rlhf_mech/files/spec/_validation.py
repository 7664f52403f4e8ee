"""pydantic's verdict on a game file, in the file's terms.

:func:`validated` validates a :class:`~rlhf_mech.files.spec._document.Document`'s data with
a format's model; where it fails, :func:`pydantic_errors` turns every pydantic error into a
:class:`~rlhf_mech.errors.SpecError` naming the line and the field as the file writes it
(a union field such as ``payment:`` reports the errors of the branch the file was written
for only, :func:`_meant`), and :func:`_partial` builds what is valid so that the loader's
own checks still run on it. Linear in the number of errors, of which the first
:data:`~rlhf_mech.files.spec._document.MAX_PROBLEMS` are located and listed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError, create_model

from rlhf_mech.core._internal import did_you_mean
from rlhf_mech.errors import SpecError, shown
from rlhf_mech.files.spec._document import MAX_PROBLEMS, Document, Path_
from rlhf_mech.files.spec._schemas import MAX_NAME_CHARS, NAME_PATTERN

M = TypeVar("M", bound=BaseModel)


#: pydantic's bound errors, as the comparison a message states.
_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


def pydantic_errors(
    doc: Document, exc: ValidationError, fields_by_parent: dict[str, tuple[str, ...]]
) -> list[SpecError]:
    """pydantic's errors as :class:`SpecError` s; ``fields_by_parent`` lists the keys each
    mapping accepts (by the name of the key that holds it, or the tag of a tagged union's
    member), for unknown-field messages. Where a field is a union (``payment:``, a name or a
    mapping), only the errors of the branch the file wrote are reported (:func:`_meant`).

    The first :data:`~rlhf_mech.files.spec._document.MAX_PROBLEMS` are built; the others are
    counted in ``doc.more`` (building one finds its line: 80,000 bad entries need not be)."""
    meant = _meant(doc.data, exc.errors())
    doc.more += max(0, len(meant) - MAX_PROBLEMS)
    out: list[SpecError] = []
    for err in meant[:MAX_PROBLEMS]:
        loc, parent = _file_location(doc.data, err["loc"])
        out.append(doc.error(loc, _message(err, fields_by_parent.get(parent, ()))))
    return out


def _message(err: Any, fields: tuple[str, ...]) -> str:
    """One pydantic error in the file's terms (``fields``: the keys its mapping accepts)."""
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"unknown field (expected one of: {', '.join(fields)}){did_you_mean(err['loc'][-1], fields)}"
    if kind in ("literal_error", "enum"):
        choices = re.findall(r"'([^']*)'", err.get("ctx", {}).get("expected", ""))
        return err["msg"] + did_you_mean(err["input"], choices)
    if kind == "missing":
        return "required field is missing"
    if kind == "union_tag_not_found":
        return f"a mapping here needs a {err['ctx']['discriminator']} key"
    if kind in ("model_type", "model_attributes_type", "dataclass_type"):
        # pydantic's message names the model class ("... instance of GroupSpec"): say it in YAML terms
        return f"expected a mapping (key: value lines), got {_yaml_kind(err['input'])}"
    if kind == "string_pattern_mismatch" and err.get("ctx", {}).get("pattern") == NAME_PATTERN:
        return f"{shown(err['input'])}: a name may not contain control characters"
    if kind == "string_too_long" and err.get("ctx", {}).get("max_length") == MAX_NAME_CHARS:
        return (
            f"a name of {len(err['input'])} characters: names are at most {MAX_NAME_CHARS} (prompts, 1 MiB)"
        )
    if kind == "value_error":
        return str(err["ctx"]["error"])
    if kind in _BOUNDS:
        bound = float(next(iter(err["ctx"].values())))
        return f"must be {_BOUNDS[kind]} {bound:g}, got {shown(err['input'])}"
    return err["msg"]


def _file_location(data: Any, loc: tuple[Any, ...]) -> tuple[Path_, str]:
    """pydantic's location of an error as a path of the file, and the name of the mapping its
    last part is in (for :func:`fields_by_parent`).

    A part is a step into the file where the file has it (a key of the mapping, an index of
    the list reached so far), or a field the file lacks; the other parts name union branches
    (``literal[...]``, ``tagged-union[...]`` and the tag after it, which names the member's
    model and is its parent's name) and are left out. Reading the parts against the data,
    not their spelling, keeps a key that looks like a branch (``"literal[x]"``) a key."""
    path: list[str | int] = []
    parent = ""
    node: Any = data
    parts = [part for part in loc if isinstance(part, int | str)]
    k = 0
    while k < len(parts):
        part = parts[k]
        found, child = _step(node, part)
        if found or not _is_branch(part):
            if found and k < len(parts) - 1 and isinstance(part, str):
                parent = part
            path.append(part)
            node = child
        elif part.startswith("tagged-union[") and k + 1 < len(parts):
            parent = str(parts[k + 1])
            k += 1
        k += 1
    return tuple(path), parent


def _step(node: Any, part: Any) -> tuple[bool, Any]:
    """Whether ``part`` is a step into the data ``node`` (a key of a mapping, an index of a
    list), and the value it leads to (``None`` where it is not)."""
    if isinstance(node, Mapping) and isinstance(part, int | str) and part in node:
        return True, node[part]
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return True, node[part]
    return False, None


def _is_branch(part: int | str) -> bool:
    """Whether a location part names a union branch (``literal[...]``, ``tagged-union[...]``)
    rather than a key of the file (where the file does not have it: :func:`_step`)."""
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _first_branch(data: Any, loc: tuple[Any, ...]) -> int | None:
    """The index of the first part of ``loc`` that names a union branch rather than a step into
    the file (:func:`_file_location`), or ``None``."""
    node = data
    for k, part in enumerate(loc):
        found, node = _step(node, part)
        if not found and _is_branch(part):
            return k
    return None


def _meant(data: Any, errors: list[Any]) -> list[Any]:
    """``errors`` with, for each union field, only the errors of the branch the input was
    written for: a mapping given where a name or a mapping goes (``payment:``) is judged as
    a mapping, a name as a name. Errors outside unions are all kept."""
    by_union: dict[tuple[Any, ...], list[tuple[Any, bool]]] = {}
    for e in errors:
        k = _first_branch(data, e["loc"])
        if k is not None:
            as_text = str(e["loc"][k]).startswith("literal[")
            by_union.setdefault(tuple(e["loc"][:k]), []).append((e, as_text))
    left_out: set[int] = set()
    for branched in by_union.values():
        wrote_mapping = any(e["type"] != "model_attributes_type" for e, as_text in branched if not as_text)
        if any(as_text != wrote_mapping for _, as_text in branched):  # else every error is kept
            # by identity, in one pass: the errors of a union are many (80,000 bad entries)
            left_out.update(id(e) for e, as_text in branched if as_text == wrote_mapping)
    return [e for e in errors if id(e) not in left_out]


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
    """``doc``'s data validated by ``model``.

    Where validation fails, every pydantic error is recorded in ``doc.problems`` and a partial
    spec is returned (:func:`_partial`): the file's other checks still run on the parts that
    are valid, and the caller's :meth:`Document.raise_problems` reports them all together.
    """
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        doc.problems += pydantic_errors(doc, exc, fields_by_parent(model))
    return _partial(model, doc.data)


def _partial(model: type[M], data: Mapping[str, Any]) -> M:
    """``model`` built field by field from ``data``: a field that does not validate is ``None``;
    the items of a list of models (``groups:``) are built the same way (``None`` where an item
    is not a mapping)."""
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key not in data:
            values[name] = None if info.is_required() else info.get_default(call_default_factory=True)
            continue
        part = _field_model(model, name)
        values[name] = _valid_or_none(part, {"value": data[key]})
        if values[name] is not None:
            values[name] = values[name].value
        args = get_args(info.annotation)
        item = args[0] if get_origin(info.annotation) is list and args else None
        is_model = isinstance(item, type) and issubclass(item, BaseModel)
        if values[name] is None and is_model and isinstance(data[key], list):
            values[name] = [_partial(item, v) if isinstance(v, Mapping) else None for v in data[key]]
    return model.model_construct(**values)


@functools.cache
def _field_model(model: type[BaseModel], name: str) -> type[BaseModel]:
    """A model of ``model``'s field ``name`` alone, as ``value`` (same type, constraints, strictness)."""
    info = model.model_fields[name]
    return create_model(
        f"{model.__name__}_{name}", __config__=model.model_config, value=(info.annotation, info)
    )


def _valid_or_none(model: type[M], value: Any) -> M | None:
    try:
        return model.model_validate(value)
    except ValidationError:
        return None
