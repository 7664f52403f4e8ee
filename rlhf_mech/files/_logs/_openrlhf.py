"""OpenRLHF reward-model batch inference, one JSONL per reward model -> :class:`RewardLog`.

What ``openrlhf/cli/batch_inference.py`` (``batch_rm_inference``, OpenRLHF 0.6 to 0.9; the
module was removed in March 2026) writes, and what this reader makes of it:

* the data loader is ``strategy.setup_dataloader(dataset, micro_batch_size, True, False,
  collate_fn, drop_last=False)``: ``shuffle=False``, so with W processes OpenRLHF's
  ``DistributedSampler`` gives rank ``r`` the items ``r, r + W, r + 2W, ...`` of the dataset,
  after **padding** it to a multiple of W with copies of its first items. The last line of
  each of the last ``p`` ranks is then a copy of the first line of ranks ``0 .. p - 1``;
* each rank writes ``--output_path`` with its rank appended (``helpful.jsonl0``,
  ``helpful.jsonl1``, ...); rank 0 concatenates them, in rank order, into ``--output_path``.
  ``os.remove`` of the rank files is commented out: they stay beside it;
* a line is ``{"input": prompt, "output": response, "reward": float}``; ``input`` is the
  prompt as the dataset gives it (after ``--input_template`` or the chat template).

The reader takes each reward model's merged file (or, when only its rank files are there,
their concatenation), drops the padding copies (known exactly from the rank files; without
them, from the pattern the padding leaves), and joins the files on ``(input, output)`` and the
occurrence of the pair: a response that a best-of-n run sampled twice is two samples, scored
once in each file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlhf_mech.errors import RlhfMechError, printable, shown
from rlhf_mech.files._logs._layouts import OPENRLHF_KEYS, RANK_FILE
from rlhf_mech.files._logs._record import RewardFile, RewardLog
from rlhf_mech.files._tables import (
    JSONL_SUFFIXES,
    EvalTable,
    located,
    numeric_column,
    read_table,
    require_column,
)
from rlhf_mech.files.spec._document import is_name


def _p(path: Path | str) -> str:
    return printable(str(path))


def _openrlhf_texts(table: EvalTable, key: str) -> list[str]:
    require_column(table, key)
    values = [row.get(key) for row in table.rows]
    bad = next((r for r, v in enumerate(values) if not isinstance(v, str)), None)
    if bad is not None:
        what = "missing value" if values[bad] is None else f"expected a string, got {shown(values[bad])}"
        raise located(_p(table.path), table.lines[bad], key, what)
    return values  # type: ignore[return-value]


@dataclass(frozen=True)
class _Scored:
    """One reward model's lines, padding dropped."""

    path: Path
    name: str
    pairs: list[tuple[str, str]]
    rewards: np.ndarray
    lines: list[int]
    columns: tuple[str, ...]
    dropped: list[str]
    how: str


def _read(path: Path, ranks: Sequence[Path]) -> tuple[EvalTable, list[int] | None, str]:
    """The merged file (or the concatenation of its rank files) and, when the rank files are
    there, each rank's number of lines."""
    if path.exists():
        if path.suffix.lower() not in JSONL_SUFFIXES:
            raise located(_p(path), None, "", "expected a .jsonl file (OpenRLHF's --output_path)")
        table = read_table(path)
        sizes = None
        if ranks:
            sizes = [read_table(r, suffix=".jsonl").n_rows for r in ranks]
            if sum(sizes) != table.n_rows:
                sizes = None  # not what rank 0 concatenated (a --post_processor, or another run's ranks)
        return table, sizes, ""
    tables = [read_table(r, suffix=".jsonl") for r in ranks]
    rows = [row for t in tables for row in t.rows]
    columns = tuple(dict.fromkeys(c for t in tables for c in t.columns))
    merged = EvalTable(path=path, columns=columns, rows=tuple(rows), lines=tuple(range(1, len(rows) + 1)))
    note = (
        f"{_p(path)} is missing: its {len(ranks)} rank files read in rank order, as rank 0 joins them (a "
        "line of it is its line in that concatenation)"
    )
    return merged, [t.n_rows for t in tables], note


def _padding(pairs: Sequence[tuple[str, str]], sizes: list[int] | None) -> tuple[list[int], str]:
    """The rows (0-based) that are ``DistributedSampler`` padding copies, and how that is known.

    With the rank files, W and each rank's lines are known; else every W dividing the line
    count is tried. With ``L = W * S`` lines (rank ``r`` owns rows ``r*S .. r*S + S - 1``),
    padding ``p`` (``1 <= p < W``) leaves rank ``W - p + j``'s last row equal to rank ``j``'s
    first row, for ``j < p``. The largest ``p`` whose rows all match is taken; without the
    rank files, only when every W that fits drops the same rows.
    """
    n = len(pairs)

    def fits(w: int, s: int) -> list[int]:
        for p in range(w - 1, 0, -1):
            if all(pairs[(w - p + j) * s + s - 1] == pairs[j * s] for j in range(p)):
                return [(w - p + j) * s + s - 1 for j in range(p)]
        return []

    if sizes is not None:
        w = len(sizes)
        if w < 2 or len(set(sizes)) != 1:
            return [], f"{w} rank file{'s' if w != 1 else ''}"
        return fits(w, sizes[0]), f"world size {w}, from its {w} rank files"
    found = {}
    for w in range(2, min(n // 2, MAX_WORLD) + 1):  # at least 2 lines per rank to tell a pattern
        if n % w == 0 and (rows := fits(w, n // w)):
            found[w] = tuple(rows)
    if not found:
        return [], ""
    if len(set(found.values())) > 1:
        sizes_text = ", ".join(map(str, found))
        return [], f"ambiguous: world sizes {sizes_text} would each make other lines padding; none dropped"
    worlds = ", ".join(map(str, found))
    return list(
        found[min(found)]
    ), f"world size {worlds}, from the pattern the padding leaves (no rank files)"


#: The largest world size tried when no rank file says it.
MAX_WORLD = 1024


def _scored(path: Path, name: str, ranks: Sequence[Path], notes: list[str]) -> _Scored:
    table, sizes, note = _read(path, ranks)
    if note:
        notes.append(note)
    pairs = list(zip(_openrlhf_texts(table, "input"), _openrlhf_texts(table, "output"), strict=True))
    rewards = numeric_column(table, "reward")
    padding, how = _padding(pairs, sizes)
    dropped = []
    if how.startswith("ambiguous"):
        notes.append(f"{_p(path)}: padding {how}")
    for row in padding:
        j = pairs.index(pairs[row])
        diff = rewards[row] - rewards[j]
        scored = "" if diff == 0 else f", scored {rewards[row]!r} there and {rewards[j]!r} here"
        dropped.append(
            f"{_p(table.path)}:{table.lines[row]}: a copy of line {table.lines[j]} the "
            "DistributedSampler added to "
            f"fill the last batch ({how}){scored}"
        )
    keep = [r for r in range(len(pairs)) if r not in set(padding)]
    return _Scored(
        path,
        name,
        [pairs[r] for r in keep],
        rewards[keep],
        [table.lines[r] for r in keep],
        table.columns,
        dropped,
        how,
    )


def _occurrences(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str, int]]:
    """Each pair with how many times it appeared before: the key the files are joined on."""
    seen: dict[tuple[str, str], int] = {}
    out = []
    for pair in pairs:
        k = seen.get(pair, 0)
        seen[pair] = k + 1
        out.append((*pair, k))
    return out


def read_openrlhf(
    files: Sequence[Path],
    labels: Sequence[str | None] | None = None,
    ranks: Sequence[Sequence[Path]] | None = None,
) -> RewardLog:
    """OpenRLHF reward-model outputs, one JSONL file per reward model, joined on ``(input, output)``.

    Parameters
    ----------
    files : the files ``batch_inference --eval_task rm`` wrote, one per reward model (a
        missing file whose rank files are given is their concatenation).
    labels : per file, the reward model's name (``NAME=FILE``); default the file's stem.
    ranks : per file, its rank files (``FILE0``, ``FILE1``, ...), which say the world size and
        so which lines are padding; default none.

    Notes
    -----
    Read: ``input``, ``output`` and ``reward``. Ignored: any other key. Padding copies are
    dropped and listed in :attr:`RewardLog.dropped`. The first file fixes the row order; the
    k-th occurrence of a pair in one file is joined with its k-th occurrence in another.

    Raises
    ------
    SpecError
        naming ``FILE:LINE`` for a line without a string ``input``/``output`` or a finite
        ``reward``, or a pair that one file scores more often than another.
    """
    names = tuple(
        label or path.stem for label, path in zip(labels or [None] * len(files), files, strict=True)
    )
    bad = next((n for n in names if not is_name(n)), None)
    if bad is not None:
        raise RlhfMechError(
            f"the reward model name {shown(bad)} cannot be written to a game file; use NAME=FILE"
        )
    if len(set(names)) != len(names):
        raise RlhfMechError(
            f"two files name the same reward model ({printable(', '.join(names))}); use NAME=FILE"
        )
    for path in files:
        if RANK_FILE.fullmatch(path.name):
            raise located(_p(path), None, "", "a rank file: give the merged file beside it, or its folder")
    notes: list[str] = []
    scored = [
        _scored(path, name, (ranks or [()] * len(files))[f], notes)
        for f, (path, name) in enumerate(zip(files, names, strict=True))
    ]
    base = scored[0]
    keys = _occurrences(base.pairs)
    index = {key: r for r, key in enumerate(keys)}
    rewards = np.empty((len(keys), len(scored)))
    rewards[:, 0] = base.rewards
    for k, other in enumerate(scored[1:], start=1):
        at = np.full(len(keys), -1, dtype=np.intp)
        for r, key in enumerate(_occurrences(other.pairs)):
            j = index.get(key)
            if j is None:
                times = sum(1 for p in base.pairs if p == key[:2])
                where = (
                    f"is not in {_p(base.path)}"
                    if not times
                    else f"appears {key[2] + 1} times; {times} in {_p(base.path)}"
                )
                raise located(_p(other.path), other.lines[r], "", f"{_pair(key[:2])} {where}")
            at[j] = r
        if (missing := np.flatnonzero(at < 0)).size:
            j = int(missing[0])
            raise located(
                _p(base.path),
                base.lines[j],
                "",
                f"{_pair(keys[j][:2])} is not in {_p(other.path)}"
                + (f" (its occurrence {keys[j][2] + 1})" if keys[j][2] else ""),
            )
        rewards[:, k] = other.rewards[at]
    extra = {c for s in scored for c in s.columns} - set(OPENRLHF_KEYS)
    notes[:0] = [
        "reward models: " + ", ".join(f"{printable(n)} = {_p(p)}" for n, p in zip(names, files, strict=True)),
        f"rows: joined on (input, output) and the occurrence of the pair; the order of {_p(base.path)}",
    ]
    dropped = [d for s in scored for d in s.dropped]
    if dropped:
        notes.append(
            f"padding: {len(dropped)} lines dropped, copies the DistributedSampler added to fill the "
            "last batch "
            f"({'; '.join(dict.fromkeys(s.how for s in scored if s.dropped))})"
        )
    repeats = len(keys) - len(set(base.pairs))
    if repeats:
        notes.append(
            f"{repeats} responses sampled more than once (best-of-n): each copy is a sample, joined with the "
            "same occurrence in every file"
        )
    if extra:
        notes.append(f"ignored keys: {printable(', '.join(sorted(extra)))}")
    return RewardLog(
        trainer="openrlhf",
        reward_names=names,
        reward_columns=("reward",) * len(scored),
        prompts=tuple(p for p, _ in base.pairs),
        responses=tuple(o for _, o in base.pairs),
        rewards=rewards,
        row_steps=None,
        files=(base.path,),
        source=np.zeros(len(keys), dtype=np.intp),
        lines=np.array(base.lines),
        file_columns=(base.columns,),
        notes=tuple(notes),
        dropped=tuple(dropped),
        reward_files=tuple(RewardFile(s.path, s.columns) for s in scored),
    )


def _pair(key: tuple[str, str]) -> str:
    return f"(input, output) = ({shown(key[0])}, {shown(key[1])})"
