"""Tables of prompts: a big game of many prompts keeps its prompts in one binary file.

A game file of many prompts lists its prompts under ``prompts:`` (docs/import.md). Above
:data:`TABLE_THRESHOLD` prompts, ``rlhf-mech import`` writes them instead to one table beside
the YAML, which refers to it::

    prompts: {file: run.prompts.npz}

The table holds what the ``prompts:`` list would (:class:`PromptColumns`): the arrays of
:class:`~rlhf_mech.core.PromptGame` over the flat outcome axis of all prompts (``T``
outcomes, prompt ``x`` owning ``offsets[x]:offsets[x + 1]``) and the text of the prompts and
outcomes. Each format is one record of :data:`TABLE_FORMATS`:

* ``.npz`` (numpy, always available): one member per field below. A member stored without
  compression is memory-mapped, not read: loading costs what reading the YAML's few lines
  does, and the rewards' pages are read when the solve reads them.
* ``.parquet`` (the ``parquet`` extra, pyarrow): one row per prompt, the per-outcome fields
  as list columns (``reward.<group>``), read with ``pyarrow.parquet.read_table``.

=====================  ===============  ==========================================
npz member             parquet column   holds
=====================  ===============  ==========================================
``offsets``            (list offsets)   (P + 1,) int64, from 0, increasing
``prompt_utf8/_ends``  ``prompt``       each prompt's text (UTF-8 bytes, end offsets)
``group_utf8/_ends``   ``reward.<g>``   the group names, as the YAML's ``groups:``
``rewards``            ``reward.<g>``   (n, T) each group's reward model per prompt
``reports``            ``report.<g>``   (n, T) the reported reward models (optional)
``initial``            ``initial``      (T,) each prompt's ``pi_init`` (optional: uniform)
``weights``            ``weight``       (P,) the prompt weights (optional: uniform)
``outcome_utf8/_ends`` ``outcomes``     the outcome names (optional: ``x0, x1, ...``)
=====================  ===============  ==========================================

A table is read with the checks a ``prompts:`` list gets (:func:`checked_columns`, vectorised
over the prompts): finite rewards in the normalisation's domain on every prompt, a positive
``pi_init`` summing to 1 on every prompt, positive weights, names without control
characters and unique within a prompt, and the same groups, in order, as the YAML. A
missing, unreadable or corrupt table, or one that does not match its YAML, is one problem at
the ``prompts.file`` line naming the table and its field.
"""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlhf_mech.core import Normalization, PromptGame
from rlhf_mech.core._internal import NORMALIZATION_TOL, PROMPT_WEIGHT_TOL, default_outcome_names
from rlhf_mech.files._arrays import npy_header, regular_file

Array = np.ndarray

#: A game of more prompts than this is written with a table of prompts (``.npz``).
TABLE_THRESHOLD = 1_000
#: Longest prompt text (characters), as in a ``prompts:`` list.
MAX_PROMPT_CHARS = 1 << 20
#: Deflate expands at most ~1032:1: a compressed member claiming more is corrupt (or a bomb).
_DEFLATE_RATIO = 1032
_CONTROL = re.compile(r"[\u0000-\u001f\u007f-\u009f]")


class TableError(ValueError):
    """A problem of a table of prompts: ``field`` is the member (npz) or column (parquet)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field


@dataclass(frozen=True)
class PromptColumns:
    """The prompts of a game of many prompts as flat arrays (module docstring's table).

    Attributes
    ----------
    group_names : (n,) the groups the rows of ``rewards`` belong to.
    prompts : (P,) each prompt's text.
    offsets : (P + 1,) where each prompt's outcomes start on the flat axis of ``T``.
    rewards : (n, T); reports : (n, T) or ``None`` (truthful reward models).
    initial : (T,) or ``None`` (uniform on every prompt).
    weights : (P,) or ``None`` (uniform).
    outcome_names : (T,) or ``None`` (``x0, x1, ...`` on every prompt).
    """

    group_names: tuple[str, ...]
    prompts: tuple[str, ...]
    offsets: Array
    rewards: Array
    reports: Array | None = None
    initial: Array | None = None
    weights: Array | None = None
    outcome_names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TableFormat:
    """One file format of tables of prompts.

    Attributes
    ----------
    suffix : the file name's suffix; extra : the pip extra it needs (``None``: none).
    read : ``path -> PromptColumns``, raising :class:`TableError` (structure only: the values
        are checked by :func:`checked_columns`).
    write : ``(binary file, columns)``: the table of ``columns``.
    fields : the name in this format of each field of :class:`PromptColumns` whose name
        differs, for messages.
    """

    suffix: str
    extra: str | None
    read: Callable[[Path], PromptColumns]
    write: Callable[[Any, PromptColumns], None]
    fields: Mapping[str, str]


# --- text columns: UTF-8 bytes and the end offset of each string --------------------------------


def _encode(texts: Sequence[str]) -> tuple[Array, Array]:
    encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
    ends = np.cumsum([len(b) for b in encoded], dtype=np.int64)
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), ends


def _decode(field: str, data: Array, ends: Array) -> tuple[str, ...]:
    if data.ndim != 1 or ends.ndim != 1:
        raise TableError(f"{field}_ends", "expected bytes and end offsets (1-D arrays)")
    if ends.size and (ends[0] < 0 or np.any(np.diff(ends) < 0) or ends[-1] != data.shape[0]):
        raise TableError(f"{field}_ends", f"the end offsets must grow from 0 to {data.shape[0]}")
    blob = data.tobytes()
    starts = [0, *ends[:-1].tolist()]
    try:
        return tuple(blob[a:b].decode("utf-8") for a, b in zip(starts, ends.tolist(), strict=True))
    except UnicodeDecodeError as exc:
        raise TableError(f"{field}_utf8", f"not UTF-8 text ({exc.reason})") from None


# --- .npz --------------------------------------------------------------------------------------

_NPZ_KINDS = {
    "offsets": "iu",
    "prompt_utf8": "u",
    "prompt_ends": "iu",
    "group_utf8": "u",
    "group_ends": "iu",
    "rewards": "iuf",
    "reports": "iuf",
    "initial": "iuf",
    "weights": "iuf",
    "outcome_utf8": "u",
    "outcome_ends": "iu",
}
_NPZ_REQUIRED = ("offsets", "prompt_utf8", "prompt_ends", "group_utf8", "group_ends", "rewards")


def _npz_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, kinds: str) -> Array:
    """One member's array, checked before it is read; memory-mapped where stored uncompressed."""
    name = info.filename[:-4]
    if info.compress_type != zipfile.ZIP_STORED and info.file_size > _DEFLATE_RATIO * info.compress_size + (
        1 << 20
    ):
        raise TableError(name, "claims more data than its compressed size can hold (a corrupt archive)")
    with archive.open(info) as f:
        try:
            shape, fortran, dtype = npy_header(f, info.file_size, kinds)  # type: ignore[arg-type]
        except ValueError as exc:
            raise TableError(name, str(exc)) from None
        header = f.tell()
        if len(shape) > 2:
            raise TableError(name, f"holds a {len(shape)}-D array")
        order = "F" if fortran else "C"
        if info.compress_type == zipfile.ZIP_STORED and math.prod(shape) and dtype.isnative:
            # the data's place in the archive: after the member's local header (30 bytes, its
            # name and its extra field, whose lengths the header gives) and the .npy header
            with open(path, "rb") as raw:
                raw.seek(info.header_offset + 26)
                lengths = np.frombuffer(raw.read(4), dtype="<u2")
            start = info.header_offset + 30 + int(lengths.sum()) + header
            return np.memmap(path, dtype=dtype, mode="r", offset=start, shape=shape, order=order)
        data = f.read(info.file_size - header)
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order)


def _read_npz(path: Path) -> PromptColumns:
    try:
        with zipfile.ZipFile(path) as archive:
            members = {}
            for info in archive.infolist():
                name = info.filename.removesuffix(".npy")
                if name in _NPZ_KINDS and info.filename.endswith(".npy"):
                    members[name] = _npz_member(path, archive, info, _NPZ_KINDS[name])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise TableError("", f"not a readable .npz archive ({exc})") from None
    except OSError as exc:
        raise TableError("", f"cannot read it ({exc.strerror or exc})") from None
    missing = [name for name in _NPZ_REQUIRED if name not in members]
    if missing:
        raise TableError(missing[0], "missing (a table of prompts has " + ", ".join(_NPZ_REQUIRED) + ")")
    names = None
    if "outcome_utf8" in members or "outcome_ends" in members:
        names = _decode(
            "outcome",
            members.get("outcome_utf8", np.zeros(0, np.uint8)),
            members.get("outcome_ends", np.zeros(0, np.int64)),
        )
    return PromptColumns(
        group_names=_decode("group", members["group_utf8"], members["group_ends"]),
        prompts=_decode("prompt", members["prompt_utf8"], members["prompt_ends"]),
        offsets=members["offsets"],
        rewards=members["rewards"],
        reports=members.get("reports"),
        initial=members.get("initial"),
        weights=members.get("weights"),
        outcome_names=names,
    )


def _write_npz(f: Any, columns: PromptColumns) -> None:
    arrays: dict[str, Array] = {"offsets": np.asarray(columns.offsets, dtype=np.int64)}
    arrays["prompt_utf8"], arrays["prompt_ends"] = _encode(columns.prompts)
    arrays["group_utf8"], arrays["group_ends"] = _encode(columns.group_names)
    optional = {
        "rewards": columns.rewards,
        "reports": columns.reports,
        "initial": columns.initial,
        "weights": columns.weights,
    }
    arrays.update({k: np.asarray(v, dtype=float) for k, v in optional.items() if v is not None})
    if columns.outcome_names is not None:
        arrays["outcome_utf8"], arrays["outcome_ends"] = _encode(columns.outcome_names)
    np.savez(f, allow_pickle=False, **arrays)  # stored, not compressed: members are memory-mapped


# --- .parquet ----------------------------------------------------------------------------------


def _pyarrow() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise TableError(
            "", "a .parquet table needs the parquet extra: pip install 'rlhf-mech[parquet]'"
        ) from None
    return pa, pq


def _list_column(table: Any, name: str, offsets: Array | None) -> tuple[Array, Array]:
    """``(offsets, values)`` of a list column without nulls (and the given ``offsets``)."""
    pa, _ = _pyarrow()
    column = table.column(name).combine_chunks()
    if not pa.types.is_list(column.type) and not pa.types.is_large_list(column.type):
        raise TableError(name, f"expected a list column, got {column.type}")
    if column.null_count or column.flatten().null_count:
        raise TableError(name, "holds nulls")
    ends = column.offsets.to_numpy().astype(np.int64)
    ends -= ends[0]
    if offsets is not None and not np.array_equal(ends, offsets):
        raise TableError(name, "its lists' lengths differ from the other columns' (one value per outcome)")
    return ends, column.flatten()


def _read_parquet(path: Path) -> PromptColumns:
    pa, pq = _pyarrow()
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise TableError("", f"not a readable Parquet file ({str(exc).splitlines()[0][:200]})") from None
    names = table.column_names
    groups = tuple(n.removeprefix("reward.") for n in names if n.startswith("reward."))
    if "prompt" not in names or not groups:
        raise TableError("prompt" if "prompt" not in names else "reward.<group>", "missing column")
    offsets, _ = _list_column(table, f"reward.{groups[0]}", None)

    def numbers(name: str) -> Array:
        values = _list_column(table, name, offsets)[1]
        if not pa.types.is_floating(values.type) and not pa.types.is_integer(values.type):
            raise TableError(name, f"holds {values.type}, not numbers")
        return values.to_numpy(zero_copy_only=False).astype(float, copy=False)

    rewards = np.stack([numbers(f"reward.{g}") for g in groups])
    reported = [g for g in groups if f"report.{g}" in names]
    reports = None
    if reported:
        reports = rewards.copy()
        for g in reported:
            reports[groups.index(g)] = numbers(f"report.{g}")
    prompts = table.column("prompt")
    if not pa.types.is_string(prompts.type) and not pa.types.is_large_string(prompts.type):
        raise TableError("prompt", f"expected text, got {prompts.type}")
    if prompts.null_count:
        raise TableError("prompt", "holds nulls")
    weights = None
    if "weight" in names:
        weight = table.column("weight")
        if weight.null_count or not pa.types.is_floating(weight.type):
            raise TableError("weight", "expected a number per prompt")
        weights = weight.to_numpy().astype(float)
    outcome_names = None
    if "outcomes" in names:
        outcome_names = tuple(_list_column(table, "outcomes", offsets)[1].to_pylist())
        if not all(isinstance(o, str) for o in outcome_names):
            raise TableError("outcomes", "expected lists of names")
    return PromptColumns(
        group_names=groups,
        prompts=tuple(prompts.to_pylist()),
        offsets=offsets,
        rewards=rewards,
        reports=reports,
        initial=numbers("initial") if "initial" in names else None,
        weights=weights,
        outcome_names=outcome_names,
    )


def _write_parquet(f: Any, columns: PromptColumns) -> None:
    pa, pq = _pyarrow()
    offsets = pa.array(np.asarray(columns.offsets, dtype=np.int64), type=pa.int64())

    def lists(values: Any) -> Any:
        return pa.LargeListArray.from_arrays(offsets, values)

    table: dict[str, Any] = {"prompt": pa.array(columns.prompts, type=pa.string())}
    if columns.weights is not None:
        table["weight"] = pa.array(np.asarray(columns.weights, dtype=float))
    if columns.outcome_names is not None:
        table["outcomes"] = lists(pa.array(columns.outcome_names, type=pa.string()))
    if columns.initial is not None:
        table["initial"] = lists(pa.array(np.asarray(columns.initial, dtype=float)))
    for i, group in enumerate(columns.group_names):
        table[f"reward.{group}"] = lists(pa.array(np.asarray(columns.rewards[i], dtype=float)))
    if columns.reports is not None:
        for i, group in enumerate(columns.group_names):
            if not np.array_equal(columns.reports[i], columns.rewards[i]):
                table[f"report.{group}"] = lists(pa.array(np.asarray(columns.reports[i], dtype=float)))
    pq.write_table(pa.table(table), f)


#: The formats of tables of prompts, by suffix.
TABLE_FORMATS: dict[str, TableFormat] = {
    ".npz": TableFormat(
        ".npz",
        None,
        _read_npz,
        _write_npz,
        {"prompts": "prompt_utf8", "group_names": "group_utf8", "outcome_names": "outcome_utf8"},
    ),
    ".parquet": TableFormat(
        ".parquet",
        "parquet",
        _read_parquet,
        _write_parquet,
        {
            "offsets": "reward.<group> (the lengths of its lists)",
            "prompts": "prompt",
            "group_names": "reward.<group> (the columns' names)",
            "rewards": "reward.<group>",
            "reports": "report.<group>",
            "weights": "weight",
            "outcome_names": "outcomes",
        },
    ),
}


def table_format(name: str) -> TableFormat:
    """The format of the table file ``name`` (by its suffix).

    Raises
    ------
    ValueError
        for a suffix no format has.
    """
    fmt = TABLE_FORMATS.get(Path(name).suffix)
    if fmt is None:
        raise ValueError(f"expected a {' or '.join(TABLE_FORMATS)} table of prompts")
    return fmt


def read_table(path: Path) -> PromptColumns:
    """The columns of the table of prompts at ``path``, structure checked.

    Raises
    ------
    TableError
        for a file that is missing, not a regular file, or not a table of its format.
    """
    fmt = table_format(path.name)
    try:
        regular_file(path)
    except ValueError as exc:
        raise TableError("", str(exc)) from None
    return fmt.read(path)


def load_table(
    path: Path, groups: tuple[str, ...], normalization: Normalization, max_prompts: int, max_outcomes: int
) -> CheckedTable:
    """The table of prompts at ``path`` read (:func:`read_table`) and checked against its
    YAML's ``groups`` and ``normalization`` (:func:`checked_columns`).

    Raises
    ------
    TableError
        naming the field as the table's format names it.
    """
    fmt = table_format(path.name)
    columns = read_table(path)
    try:
        return checked_columns(columns, groups, normalization, max_prompts, max_outcomes)
    except TableError as exc:
        field = fmt.fields.get(exc.field, exc.field)
        raise TableError(field, str(exc).removeprefix(f"{exc.field}: ")) from None


# --- the checks a prompts: list gets, over the whole table at once ------------------------------


def _prompt_of(offsets: Array, j: int) -> int:
    return int(np.searchsorted(offsets, j, side="right") - 1)


def _reward_problem(
    field: str, rewards: Array, offsets: Array, groups: tuple[str, ...], normalization: Normalization
) -> None:
    """Every group's reward model on every prompt in ``normalization``'s domain (one
    :meth:`~rlhf_mech.core.Normalization.violation` call names the first that is not)."""
    bad = ~np.isfinite(rewards) | (rewards < 0)
    first = None
    if bad.any():
        i, j = np.argwhere(bad)[0]
        first = int(i), _prompt_of(offsets, int(j))
    elif normalization.normalised:
        reduce = np.add.reduceat if normalization is Normalization.SUM else np.maximum.reduceat
        totals = reduce(rewards, offsets[:-1], axis=1)
        off = np.abs(totals - 1.0) > NORMALIZATION_TOL
        if off.any():
            i, k = np.argwhere(off)[0]
            first = int(i), int(k)
    if first is None:
        return
    i, k = first
    row = np.asarray(rewards[i, offsets[k] : offsets[k + 1]])
    problem = (
        f"a value is {row[~np.isfinite(row)][0]} (must be finite)"
        if not np.all(np.isfinite(row))
        else normalization.violation(row)
    )
    raise TableError(field, f"group {groups[i]!r} on prompt {k}: {problem}")


def _initial(initial: Array, offsets: Array, notes: list[str]) -> Array:
    """Each prompt's ``pi_init``: positive, summing to 1 within 1e-9 (divided by its sum,
    with a note, where that is not 1 to rounding), as ``initial:`` of a prompt."""
    tiny = np.finfo(float).tiny
    bad = np.flatnonzero(~(initial >= tiny) | ~np.isfinite(initial))
    if bad.size:
        k = _prompt_of(offsets, int(bad[0]))
        raise TableError(
            "initial",
            f"prompt {k}: a probability is {initial[bad[0]]:.3g}; every p must be > 0 (at least {tiny:.3g})",
        )
    counts = np.diff(offsets)
    totals = np.add.reduceat(initial, offsets[:-1])
    far = np.flatnonzero(np.abs(totals - 1.0) > NORMALIZATION_TOL)
    if far.size:
        raise TableError(
            "initial", f"prompt {int(far[0])}: probabilities sum to {float(totals[far[0]])!r}, not 1"
        )
    rescale = np.abs(totals - 1.0) > counts * np.finfo(float).eps
    if not rescale.any():
        return initial
    notes += [
        f"initial distribution of prompts[{k}] divided by its sum {float(totals[k])!r} to sum to 1"
        for k in np.flatnonzero(rescale)
    ]
    return initial / np.where(rescale, totals, 1.0).repeat(counts)


def _weights(weights: Array, P: int, notes: list[str]) -> Array:
    if weights.shape != (P,):
        raise TableError("weights", f"expected {P} weights (one per prompt), got shape {weights.shape}")
    bad = np.flatnonzero(~np.isfinite(weights) | (weights <= 0))
    if bad.size:
        raise TableError(
            "weights", f"prompt {int(bad[0])}: weight {float(weights[bad[0]])!r}; weights must be > 0"
        )
    total = float(weights.sum())
    if abs(total - 1.0) <= PROMPT_WEIGHT_TOL:
        return weights
    notes.append(f"prompt weights divided by their sum {total!r} to sum to 1")
    return weights / total


def _names(names: tuple[str, ...], offsets: Array) -> tuple[str, ...] | None:
    """The outcome names (``None`` where every prompt's are ``x0, x1, ...``), checked."""
    for j, name in enumerate(names):
        if not name or _CONTROL.search(name):
            k = _prompt_of(offsets, j)
            raise TableError(
                "outcome_names",
                f"prompt {k}: an outcome name is a non-empty string without control characters",
            )
    bounds = offsets.tolist()
    default = True
    for k in range(len(bounds) - 1):
        own = names[bounds[k] : bounds[k + 1]]
        if len(set(own)) != len(own):
            raise TableError("outcome_names", f"prompt {k}: duplicate outcome names")
        default = default and own == default_outcome_names(len(own))
    return None if default else names


@dataclass(frozen=True)
class CheckedTable:
    """A table of prompts checked against its YAML: the fields of a
    :class:`~rlhf_mech.core.PromptGame` that are per prompt (and the notes of loading)."""

    prompts: tuple[str, ...]
    offsets: Array
    pi_init: Array
    rewards: Array
    reports: Array | None
    weights: Array
    outcome_names: tuple[str, ...] | None
    notes: tuple[str, ...]
    #: (total outcomes,) how often each outcome was drawn where the prompts are samples of the
    #: initial policy (``sampled:``); ``None`` otherwise
    sample_counts: Array | None = None


def checked_columns(
    columns: PromptColumns,
    groups: tuple[str, ...],
    normalization: Normalization,
    max_prompts: int,
    max_outcomes: int,
) -> CheckedTable:
    """``columns`` checked as a ``prompts:`` list is, against the YAML's ``groups``.

    Raises
    ------
    TableError
        naming the field (member or column) and, where it is about one, the prompt.
    """
    offsets = np.asarray(columns.offsets)
    P = len(columns.prompts)
    if offsets.ndim != 1 or offsets.shape[0] != P + 1 or offsets.dtype.kind not in "iu":
        raise TableError(
            "offsets", f"expected {P + 1} integers (one more than the {P} prompts), got shape {offsets.shape}"
        )
    offsets = offsets.astype(np.int64)
    if not 1 <= P <= max_prompts:
        raise TableError("prompts", f"a game holds 1..{max_prompts} prompts, got {P}")
    if offsets[0] != 0 or np.any(np.diff(offsets) < 1):
        raise TableError("offsets", "must grow from 0, by at least 1 a prompt (every prompt has an outcome)")
    total = int(offsets[-1])
    if total > max_outcomes:
        raise TableError("offsets", f"more than {max_outcomes} outcomes in all prompts together")
    if columns.group_names != groups:
        raise TableError(
            "group_names", f"the table's groups {list(columns.group_names)} are not the file's {list(groups)}"
        )
    long = next((k for k, text in enumerate(columns.prompts) if len(text) > MAX_PROMPT_CHARS), None)
    if long is not None:
        raise TableError("prompts", f"prompt {long} is longer than {MAX_PROMPT_CHARS} characters")
    for field, matrix in (("rewards", columns.rewards), ("reports", columns.reports)):
        if matrix is None:
            continue
        if matrix.shape != (len(groups), total):
            raise TableError(
                field,
                f"expected shape {(len(groups), total)} (a row per group, a value per outcome), "
                f"got {matrix.shape}",
            )
        _reward_problem(field, matrix, offsets, groups, normalization)
    notes: list[str] = []
    if columns.initial is None:
        pi_init = np.repeat(1.0 / np.diff(offsets), np.diff(offsets))
    else:
        if columns.initial.shape != (total,):
            raise TableError(
                "initial",
                f"expected {total} probabilities (one per outcome), got shape {columns.initial.shape}",
            )
        pi_init = _initial(np.asarray(columns.initial, dtype=float), offsets, notes)
    weights = (
        np.full(P, 1.0 / P)
        if columns.weights is None
        else _weights(np.asarray(columns.weights, dtype=float), P, notes)
    )
    names = None
    if columns.outcome_names is not None:
        if len(columns.outcome_names) != total:
            raise TableError(
                "outcome_names", f"expected {total} names (one per outcome), got {len(columns.outcome_names)}"
            )
        names = _names(columns.outcome_names, offsets)
    return CheckedTable(
        prompts=columns.prompts,
        offsets=offsets,
        pi_init=pi_init,
        rewards=np.asarray(columns.rewards, dtype=float),
        reports=None if columns.reports is None else np.asarray(columns.reports, dtype=float),
        weights=weights,
        outcome_names=names,
        notes=tuple(notes),
    )


def game_columns(game: PromptGame) -> PromptColumns:
    """The table of a :class:`~rlhf_mech.core.PromptGame`'s prompts (what :func:`checked_columns`
    gives back), the optional fields left out where they have their default."""
    counts = np.diff(game.offsets)
    uniform = np.repeat(1.0 / counts, counts)
    return PromptColumns(
        group_names=game.group_names,
        prompts=game.prompts,
        offsets=game.offsets,
        rewards=game.truth.rewards,
        reports=None if np.array_equal(game.reports.rewards, game.truth.rewards) else game.reports.rewards,
        initial=None if np.array_equal(game.pi_init, uniform) else game.pi_init,
        weights=None if game.uniform_weights else game.weights,
        outcome_names=game.outcome_names,
    )
