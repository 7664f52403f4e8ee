"""The generic evaluation tables of ``rlhf-mech import``: CSV and JSON Lines files as rows of
raw values, and their columns as numbers or text.

Every reader of :mod:`rlhf_mech.files._importer` and :mod:`rlhf_mech.files._logs` builds its
errors with :func:`located` (path, field and message made printable) and reads numbers with
:func:`finite_number` (a plain ASCII decimal or a JSON number, nothing Python's ``float()``
would also take); JSON text goes through :func:`parse_json` (no repeated key, no ``NaN``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlhf_mech.errors import DECIMAL, SpecError, printable, shown

Array = np.ndarray

#: File suffixes read as CSV and as JSON Lines.
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")


def located(path: str | Path, line: int | None, field: str, message: str) -> SpecError:
    """A :class:`SpecError` whose path, field and message are printable (a file's name, a
    column's name and a library's message can hold control characters; every reader builds
    its errors here)."""
    return SpecError(printable(str(path)), line, printable(field), printable(message))


# --- reading tables --------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalTable:
    """A CSV or JSONL file as rows of raw values.

    Attributes
    ----------
    path : the file.
    columns : column names in file order (JSONL: the keys in order of first appearance).
    rows : one mapping column -> raw value per row (strings for CSV).
    lines : 1-based line on which each row starts, for messages.
    """

    path: Path
    columns: tuple[str, ...]
    rows: tuple[Mapping[str, Any], ...]
    lines: tuple[int, ...]

    @property
    def n_rows(self) -> int:
        return len(self.rows)


def _read_csv(path: Path, text: str) -> EvalTable:
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header = next(reader)
    except StopIteration:
        raise located(path, None, "", "the file is empty") from None
    except csv.Error as exc:
        raise located(path, 1, "", f"invalid CSV: {exc}") from None
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise located(path, 1, name, "duplicate column name")
        seen.add(name)
    rows, lines = [], []
    start = reader.line_num + 1
    try:
        for record in reader:
            if record:
                if len(record) != len(header):
                    raise located(
                        path, start, "", f"expected {len(header)} fields (the header's), got {len(record)}"
                    )
                rows.append(dict(zip(header, record, strict=True)))
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise located(path, start, "", f"invalid CSV: {exc}") from None
    return EvalTable(path=path, columns=tuple(header), rows=tuple(rows), lines=tuple(lines))


class _DuplicateKey(ValueError):
    """A JSON object that names a key twice (``json`` would keep the last value silently)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (JSON has no NaN or Infinity)")


def parse_json(text: str) -> Any:
    """``json.loads`` that refuses what JSON does not allow and Python's reader lets through:
    a key given twice in one object (``json`` keeps the last value silently) and the
    ``NaN``/``Infinity`` literals.

    Raises
    ------
    ValueError
        (``json.JSONDecodeError`` for malformed text) with the reason in words.
    """
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def json_problem(exc: BaseException) -> str:
    """What is wrong with a JSON text, in words, from what :func:`parse_json` raised."""
    if isinstance(exc, _DuplicateKey):
        return f"invalid JSON: the key {shown(exc.args[0])} appears twice in one object"
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc.msg}"
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply"
    text = str(exc)
    if "is not JSON" in text:
        return f"invalid JSON: {text}"
    return "invalid JSON: a number too long to read"  # an integer beyond Python's 4300-digit limit


def _is_text(row: dict[str, Any]) -> bool:
    """Whether every string of a parsed JSON object is Unicode text: JSON may escape half of a
    surrogate pair alone (``"\\ud800"``), which no file or terminal can hold."""
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read_jsonl(path: Path, text: str) -> EvalTable:
    columns: dict[str, None] = {}
    rows, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if "\ufeff" in line:
            raise located(
                path, number, "", "a byte order mark (U+FEFF): JSON Lines files are UTF-8 without one"
            )
        try:
            row = parse_json(line)
        except (ValueError, RecursionError) as exc:
            raise located(path, number, "", json_problem(exc)) from None
        if not isinstance(row, dict):
            raise located(path, number, "", "each line must be a JSON object")
        if "\\u" in line and not _is_text(row):
            raise located(
                path, number, "", "a lone surrogate (\\ud800-\\udfff) in a string: not Unicode text"
            )
        columns.update(dict.fromkeys(row))
        rows.append(row)
        lines.append(number)
    return EvalTable(path=path, columns=tuple(columns), rows=tuple(rows), lines=tuple(lines))


def read_table(path: str | Path, suffix: str | None = None) -> EvalTable:
    """Read a ``.csv`` (header row) or ``.jsonl``/``.ndjson`` (one object per line) file;
    ``suffix`` reads it as that kind whatever its name (OpenRLHF's rank files ``x.jsonl0``).

    Raises
    ------
    SpecError
        for an unreadable file, an unknown suffix, a malformed row or a file without rows.
    """
    path = Path(path)
    suffix = suffix or path.suffix.lower()
    if suffix not in CSV_SUFFIXES + JSONL_SUFFIXES:
        raise located(printable(str(path)), None, "", "expected a .csv, .jsonl or .ndjson file")
    try:
        # CSV: a BOM (what Excel writes) is dropped; JSON Lines: kept, and refused (RFC 8259)
        text = path.read_text(encoding="utf-8-sig" if suffix in CSV_SUFFIXES else "utf-8")
    except UnicodeDecodeError as exc:
        raise located(
            printable(str(path)), None, "", f"not UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from None
    except OSError as exc:
        raise located(
            printable(str(path)), None, "", f"cannot read the file: {printable(exc.strerror or str(exc))}"
        ) from None
    table = _read_csv(path, text) if suffix in CSV_SUFFIXES else _read_jsonl(path, text)
    if not table.rows:
        raise located(path, None, "", "the file has no data rows")
    return table


def finite_number(raw: Any, *, strings: bool = True) -> float | None:
    """A finite float from a CSV string (a plain ASCII decimal, :data:`DECIMAL`) or a JSON
    number; ``None`` if it is not one. ``strings=False``: only numbers (a JSON value), not
    the string ``"0.5"``."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        try:
            value = float(raw)
        except OverflowError:  # an integer beyond the float range
            return None
    elif isinstance(raw, str) and strings:
        text = raw.strip(" ")
        if len(text) > 400 or not DECIMAL.fullmatch(text):
            return None
        value = float(text)
    else:
        return None
    return value if math.isfinite(value) else None


def require_column(table: EvalTable, column: str) -> None:
    """Raise :class:`~rlhf_mech.errors.SpecError` (line 1, the header) when ``column`` is absent."""
    if column not in table.columns:
        shown = ", ".join(table.columns)
        raise located(table.path, 1, column, f"no column named {column!r} (columns: {shown})")


def numeric_column(table: EvalTable, column: str) -> Array:
    """The column as a (rows,) float array.

    Raises
    ------
    SpecError
        naming the first row whose value is missing, not a number or not finite.
    """
    require_column(table, column)
    values = np.empty(table.n_rows)
    strings = table.path.suffix.lower() in CSV_SUFFIXES  # a JSON reward is a number, not a string
    for r, row in enumerate(table.rows):
        raw = row.get(column)
        value = finite_number(raw, strings=strings)
        if value is None:
            what = "missing value" if raw is None or raw == "" else f"{shown(raw)} is not a finite number"
            if isinstance(raw, str) and not strings:
                what = f"{shown(raw)} is a string: expected a JSON number"
            raise located(table.path, table.lines[r], column, what)
        values[r] = value
    return values


def text_column(table: EvalTable, column: str) -> tuple[str, ...]:
    """The column's values as strings (for a candidate column)."""
    require_column(table, column)
    out = []
    for r, row in enumerate(table.rows):
        raw = row.get(column)
        if raw is None or raw == "":
            raise located(table.path, table.lines[r], column, "missing value")
        out.append(str(raw))
    return tuple(out)


def is_numeric_column(table: EvalTable, column: str) -> bool:
    """Whether every row holds a finite number in ``column`` (JSON Lines: a JSON number)."""
    strings = table.path.suffix.lower() in CSV_SUFFIXES
    return all(finite_number(row.get(column), strings=strings) is not None for row in table.rows)
