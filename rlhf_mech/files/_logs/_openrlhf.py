"""OpenRLHF reward-model batch inference, one JSONL per reward model -> :class:`RewardLog`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rlhf_mech.errors import RlhfMechError, SpecError, shown
from rlhf_mech.files._importer import JSONL_SUFFIXES, EvalTable, numeric_column, read_table, require_column
from rlhf_mech.files._logs._layouts import OPENRLHF_KEYS
from rlhf_mech.files._logs._record import RewardLog
from rlhf_mech.files.spec._document import is_name


def _openrlhf_texts(table: EvalTable, key: str) -> list[str]:
    require_column(table, key)
    values = [row.get(key) for row in table.rows]
    bad = next((r for r, v in enumerate(values) if not isinstance(v, str)), None)
    if bad is not None:
        what = "missing value" if values[bad] is None else f"expected a string, got {shown(values[bad])}"
        raise SpecError(table.path, table.lines[bad], key, what)
    return values  # type: ignore[return-value]


def read_openrlhf(files: Sequence[Path], labels: Sequence[str | None] | None = None) -> RewardLog:
    """OpenRLHF reward-model outputs, one JSONL file per reward model, joined on ``(input, output)``.

    Parameters
    ----------
    files : the files ``batch_inference --eval_task rm`` wrote, one per reward model.
    labels : per file, the reward model's name (``NAME=FILE``); default the file's stem.

    Notes
    -----
    Read: ``input`` (the prompt, as templated for the reward model), ``output`` (the response)
    and ``reward``. Ignored: any other key. The first file fixes the row order; every other file
    must score exactly the same ``(input, output)`` pairs, each once. Files written with
    ``--post_processor`` (rejection sampling and the like) no longer hold one line per pair and
    are not this layout.

    Raises
    ------
    SpecError
        naming ``FILE:LINE`` for a line without a string ``input``/``output`` or a finite
        ``reward``, a pair scored twice in one file, or a pair missing from another file.
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
        raise RlhfMechError(f"two files name the same reward model ({', '.join(names)}); use NAME=FILE")
    tables = [read_table(path) for path in files]
    for table in tables:
        if table.path.suffix.lower() not in JSONL_SUFFIXES:
            raise SpecError(table.path, None, "", "expected a .jsonl file (OpenRLHF's --output_path)")
    base = tables[0]
    inputs, outputs = _openrlhf_texts(base, "input"), _openrlhf_texts(base, "output")
    index: dict[tuple[str, str], int] = {}
    for r, key in enumerate(zip(inputs, outputs, strict=True)):
        if key in index:
            raise SpecError(base.path, base.lines[r], "", _repeated(key, base.lines[index[key]]))
        index[key] = r
    rewards = np.empty((base.n_rows, len(tables)))
    for k, table in enumerate(tables):
        values = numeric_column(table, "reward")
        if k == 0:
            rewards[:, 0] = values
            continue
        keys = zip(_openrlhf_texts(table, "input"), _openrlhf_texts(table, "output"), strict=True)
        at = np.full(base.n_rows, -1, dtype=np.intp)
        for r, key in enumerate(keys):
            j = index.get(key)
            if j is None:
                raise SpecError(table.path, table.lines[r], "", f"{_pair(key)} is not in {base.path}")
            if at[j] >= 0:
                raise SpecError(table.path, table.lines[r], "", _repeated(key, table.lines[at[j]]))
            at[j] = r
        if (missing := np.flatnonzero(at < 0)).size:
            j = int(missing[0])
            raise SpecError(
                base.path, base.lines[j], "", f"{_pair((inputs[j], outputs[j]))} is not in {table.path}"
            )
        rewards[:, k] = values[at]
    extra = {c for t in tables for c in t.columns} - set(OPENRLHF_KEYS)
    notes = [
        "reward models: " + ", ".join(f"{n} = {p}" for n, p in zip(names, files, strict=True)),
        f"rows: joined on (input, output); the order of {base.path}",
    ]
    if extra:
        notes.append(f"ignored keys: {', '.join(sorted(extra))}")
    return RewardLog(
        trainer="openrlhf",
        reward_names=names,
        reward_columns=tuple(str(p) for p in files),
        prompts=tuple(inputs),
        responses=tuple(outputs),
        rewards=rewards,
        row_steps=None,
        files=(base.path,),
        source=np.zeros(base.n_rows, dtype=np.intp),
        lines=np.array(base.lines),
        file_columns=(base.columns,),
        notes=tuple(notes),
    )


def _pair(key: tuple[str, str]) -> str:
    return f"(input, output) = ({shown(key[0])}, {shown(key[1])})"


def _repeated(key: tuple[str, str], first_line: int) -> str:
    return (
        f"{_pair(key)} repeats line {first_line}: each pair must be scored once per file to join the files "
        "(a DistributedSampler repeats samples to fill the last batch: drop the copies)"
    )
