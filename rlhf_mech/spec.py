"""Game files (YAML, format v1): file -> validated spec -> :class:`~rlhf_mech.game.Game`.

This is the only module that knows about YAML and pydantic. Every problem in a file
becomes one :class:`~rlhf_mech.errors.SpecError` naming the file, the line and the field;
nothing the user wrote is rescaled. The one change made on loading, dividing ``initial`` by
its sum when that sum is within 1e-9 of 1 but not 1 to rounding, is recorded in
``Game.notes`` and printed by the CLI.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rlhf_mech.divergences import DIVERGENCES, get_divergence
from rlhf_mech.errors import SpecError
from rlhf_mech.game import Expectations, Game

#: Tolerance for "sums to 1" / "max is 1" checks (probabilities and reward normalisation).
NORMALIZATION_TOL = 1e-9

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Path_ = tuple[str | int, ...]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DivergenceSpec(_Strict):
    """``divergence: {kind: kl, lambda: 1.0}``."""

    kind: str = "kl"
    lambda_: FiniteFloat = Field(default=1.0, alias="lambda", gt=0)


class ReportSpec(_Strict):
    """A group's report; an omitted field is reported truthfully."""

    reward: Any = None
    size: FiniteFloat | None = None


class GroupSpec(_Strict):
    """One group: its true size and reward model, and optionally a report."""

    name: str = Field(min_length=1)
    size: FiniteFloat
    reward: Any
    report: ReportSpec | None = None


Range = Annotated[list[FiniteFloat], Field(min_length=2, max_length=2)]


class ExpectSpec(_Strict):
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


class GameSpec(_Strict):
    """The whole game file (format v1); see README.md for every field."""

    name: str | None = None
    outcomes: Any
    initial: Any = "uniform"
    normalization: Literal["sum", "max"] = "sum"
    divergence: DivergenceSpec = DivergenceSpec()
    max_size: FiniteFloat | None = Field(default=None, ge=1)
    payment: Literal["none", "affine_maximizer"] = "affine_maximizer"
    groups: list[GroupSpec] = Field(min_length=1)
    expect: ExpectSpec | None = None


_FIELDS_BY_PARENT: dict[str, tuple[str, ...]] = {
    "": tuple(f.alias or k for k, f in GameSpec.model_fields.items()),
    "groups": tuple(GroupSpec.model_fields),
    "report": tuple(ReportSpec.model_fields),
    "divergence": ("kind", "lambda"),
    "expect": tuple(ExpectSpec.model_fields),
}


def format_field(path: Path_) -> str:
    """``('groups', 1, 'reward')`` -> ``groups[1].reward``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Document:
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


def _pydantic_error(
    doc: _Document, exc: ValidationError, fields_by_parent: dict[str, tuple[str, ...]] = _FIELDS_BY_PARENT
) -> SpecError:
    """The first pydantic error as a :class:`SpecError`; ``fields_by_parent`` lists the keys
    each mapping accepts (by the name of the key that holds it), for unknown-field messages."""
    err = exc.errors()[0]
    loc = tuple(part for part in err["loc"] if isinstance(part, int | str))
    if err["type"] == "extra_forbidden":
        parent = next((p for p in reversed(loc[:-1]) if isinstance(p, str)), "")
        expected = ", ".join(fields_by_parent.get(parent, ()))
        return doc.error(loc, f"unknown field (expected one of: {expected})")
    if err["type"] == "missing":
        return doc.error(loc, "required field is missing")
    return doc.error(loc, err["msg"])


class _ArrayLoader:
    """Loads ``{file: ..., row: k}`` references relative to the game file, once per file."""

    def __init__(self, doc: _Document) -> None:
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


def _vector(
    doc: _Document, arrays: _ArrayLoader, value: Any, path: Path_, outcomes: tuple[str, ...]
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
        vec = np.array([_number(doc, value[o], (*path, o)) for o in outcomes])
    elif isinstance(value, list):
        vec = np.array([_number(doc, v, (*path, i)) for i, v in enumerate(value)])
    else:
        raise doc.error(path, "expected a list of numbers, an {outcome: value} mapping or {file: ...}")
    if vec.shape != (m,):
        raise doc.error(path, f"expected {m} values (one per outcome), got {vec.size}")
    bad = np.flatnonzero(~np.isfinite(vec))
    if bad.size:
        raise doc.error(path, f"value for outcome {outcomes[bad[0]]!r} is {vec[bad[0]]} (must be finite)")
    return vec


_YAML11_TEXT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _number(doc: _Document, value: Any, path: Path_) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = ""
        if isinstance(value, str) and _YAML11_TEXT_NUMBER.fullmatch(value.strip()):
            # YAML 1.1 (PyYAML) reads 1e-300 as text: a float needs a dot and a signed exponent.
            hint = " (YAML reads this as text: write a float with a dot, e.g. 1.0e-300)"
        raise doc.error(path, f"expected a number, got {value!r}{hint}")
    if not math.isfinite(value):
        raise doc.error(path, f"{value} is not a finite number")
    return float(value)


def _outcomes(doc: _Document, value: Any) -> tuple[str, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise doc.error(("outcomes",), "the number of outcomes must be at least 1")
        return tuple(f"x{j}" for j in range(value))
    if not isinstance(value, list) or not value:
        raise doc.error(("outcomes",), "expected a non-empty list of names or a positive integer")
    names = tuple(str(v) for v in value)
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise doc.error(("outcomes", i), f"duplicate outcome name {name!r}")
        seen.add(name)
    return names


def _initial(
    doc: _Document, arrays: _ArrayLoader, value: Any, outcomes: tuple[str, ...], notes: list[str]
) -> np.ndarray:
    m = len(outcomes)
    if value == "uniform":
        return np.full(m, 1.0 / m)
    q = _vector(doc, arrays, value, ("initial",), outcomes)
    tiny = np.finfo(float).tiny
    bad = np.flatnonzero(q < tiny)
    if bad.size:
        raise doc.error(
            ("initial",),
            f"probability of {outcomes[bad[0]]!r} is {q[bad[0]]:.3g}; every p must be > 0 "
            f"(and at least {tiny:.3g}, the smallest normal float)",
        )
    total = float(q.sum())
    if abs(total - 1.0) > NORMALIZATION_TOL:
        raise doc.error(("initial",), f"probabilities sum to {total!r}, not 1 (tolerance 1e-9)")
    if abs(total - 1.0) <= m * np.finfo(float).eps:
        return q  # rounding of the sum itself: the solvers normalise their output anyway
    notes.append(f"initial distribution divided by its sum {total!r} to sum to 1")
    return q / total


def _reward(
    doc: _Document,
    arrays: _ArrayLoader,
    value: Any,
    path: Path_,
    outcomes: tuple[str, ...],
    normalization: str,
) -> np.ndarray:
    rm = _vector(doc, arrays, value, path, outcomes)
    negative = np.flatnonzero(rm < 0)
    if negative.size:
        j = negative[0]
        raise doc.error(path, f"reward of {outcomes[j]!r} is {float(rm[j])!r}; rewards must be >= 0")
    if normalization == "sum" and abs(float(rm.sum()) - 1.0) > NORMALIZATION_TOL:
        raise doc.error(path, f"rewards sum to {float(rm.sum())!r}; normalization 'sum' needs 1 (±1e-9)")
    if normalization == "max" and abs(float(rm.max()) - 1.0) > NORMALIZATION_TOL:
        raise doc.error(path, f"largest reward is {float(rm.max())!r}; normalization 'max' needs 1 (±1e-9)")
    return rm


def _size(doc: _Document, value: float, path: Path_, max_size: float | None) -> float:
    if value < 1:
        raise doc.error(path, f"size {value!r} is below 1")
    if max_size is not None and value > max_size:
        raise doc.error(path, f"size {value!r} is above max_size {max_size!r}")
    return float(value)


def load_game(path: str | Path) -> Game:
    """Read and validate a game file (format v1, see README.md).

    Raises
    ------
    SpecError
        naming the file, line and field of the first problem.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(path, None, "", f"cannot read the file: {exc}") from None
    doc = _Document(path, text)
    if not isinstance(doc.data, Mapping):
        raise SpecError(path, 1, "", "a game file is a YAML mapping (outcomes:, groups:, ...)")
    if "candidates" in doc.data:
        # A candidate-model game (issue #5, docs/candidates.md): outcomes are trained models.
        from rlhf_mech.candidate_spec import candidate_game_from_document

        return candidate_game_from_document(doc)
    try:
        spec = GameSpec.model_validate(doc.data)
    except ValidationError as exc:
        raise _pydantic_error(doc, exc) from None
    return _build_game(doc, spec)


def _build_game(doc: _Document, spec: GameSpec) -> Game:
    try:
        divergence = get_divergence(spec.divergence.kind).name
    except ValueError:
        raise doc.error(
            ("divergence", "kind"),
            f"unknown divergence {spec.divergence.kind!r}; expected one of {', '.join(DIVERGENCES)}",
        ) from None
    notes: list[str] = []
    arrays = _ArrayLoader(doc)
    outcomes = _outcomes(doc, spec.outcomes)
    pi_init = _initial(doc, arrays, spec.initial, outcomes, notes)
    names: list[str] = []
    rewards, sizes, reported_rewards, reported_sizes = [], [], [], []
    for i, group in enumerate(spec.groups):
        where: Path_ = ("groups", i)
        if group.name in names:
            raise doc.error((*where, "name"), f"duplicate group name {group.name!r}")
        names.append(group.name)
        rm = _reward(doc, arrays, group.reward, (*where, "reward"), outcomes, spec.normalization)
        size = _size(doc, group.size, (*where, "size"), spec.max_size)
        report = group.report or ReportSpec()
        reported_rm = rm
        if report.reward is not None:
            reported_rm = _reward(
                doc, arrays, report.reward, (*where, "report", "reward"), outcomes, spec.normalization
            )
        reported_size = size
        if report.size is not None:
            reported_size = _size(doc, report.size, (*where, "report", "size"), spec.max_size)
        rewards.append(rm)
        sizes.append(size)
        reported_rewards.append(reported_rm)
        reported_sizes.append(reported_size)
    return Game(
        expect=_expectations(doc, spec.expect, tuple(names)),
        source=str(doc.path),
        name=spec.name or doc.path.stem,
        outcomes=outcomes,
        pi_init=pi_init,
        normalization=spec.normalization,
        divergence=divergence,
        lam=spec.divergence.lambda_,
        payment_rule=spec.payment,
        group_names=tuple(names),
        rewards=np.array(rewards),
        sizes=np.array(sizes),
        reported_rewards=np.array(reported_rewards),
        reported_sizes=np.array(reported_sizes),
        max_size=spec.max_size,
        notes=tuple(notes),
    )


def _expectations(doc: _Document, spec: ExpectSpec | None, names: tuple[str, ...]) -> Expectations | None:
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


def game_schema() -> dict[str, Any]:
    """The JSON Schema of the game-file format v1 (``rlhf-mech schema``)."""
    schema = GameSpec.model_json_schema(by_alias=True)
    schema["title"] = "rlhf-mech game file, format v1"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
