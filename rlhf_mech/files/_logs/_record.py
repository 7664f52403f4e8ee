"""The one value every response-level reader returns, and how multi-prompt games take it apart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlhf_mech.errors import RlhfMechError
from rlhf_mech.files._tables import located

Array = np.ndarray

#: ``multi_objective_aggregation`` values of TRL's ``GRPOConfig``. ``sum_then_normalize``
#: weighs and sums the reward functions, then normalises the sum within each prompt's group;
#: ``normalize_then_sum`` normalises each function within the group, then weighs and sums.
AGGREGATIONS = ("sum_then_normalize", "normalize_then_sum")


def _frozen(values: Any, dtype: Any) -> Array:
    array = np.array(values, dtype=dtype)
    array.setflags(write=False)
    return array


#: What a step's file holds: the roles :attr:`StepInfo.role` takes.
STEP_ROLES = ("train", "eval", "train or eval")


@dataclass(frozen=True)
class StepInfo:
    """What one logged step of a TRL run holds, and whose samples they are.

    Attributes
    ----------
    step : the step (``global_step`` when the file was written).
    role : ``train`` (the last generation batch of training at that step), ``eval`` (an
        evaluation at that step wrote the file last: ``GRPOTrainer.log`` names the file by the
        step only) or ``train or eval`` (no ``trainer_state.json`` says which).
    initial : whether the samples are of the initial model (step 1's training batch was
        generated before the first update; step 0 is ``eval_on_start``'s evaluation).
    rows, prompts : how many completions, and of how many distinct prompts.
    samples : (min, max) completions per prompt.
    why : how the role is known, in words.
    """

    step: int
    role: str
    initial: bool
    rows: int
    prompts: int
    samples: tuple[int, int]
    why: str

    def __post_init__(self) -> None:
        if self.role not in STEP_ROLES:
            raise ValueError(f"`role` must be one of {STEP_ROLES}")

    @property
    def sample_text(self) -> str:
        """``4 samples each`` or ``1 to 4 samples each``."""
        low, high = self.samples
        count = f"{low}" if low == high else f"{low} to {high}"
        return f"{count} sample{'' if high == 1 else 's'} each"

    @property
    def policy(self) -> str:
        """Whose samples these are: a training step's batch was generated at the start of the
        step (after ``step - 1`` updates, with TRL's defaults ``steps_per_generation =
        gradient_accumulation_steps`` and ``num_iterations = 1``), an evaluation's after it."""
        if self.initial:
            return "the initial model"
        updates = {"train": self.step - 1, "eval": self.step}.get(self.role)
        if updates is None:
            return f"the policy after {self.step - 1} or {self.step} updates"
        return f"the policy after {updates} update{'' if updates == 1 else 's'}"

    @property
    def stands_for(self) -> str:
        """Whose samples these are and of which prompts, in words."""
        prompts = {"train": "training prompts", "eval": "eval prompts"}.get(self.role, "prompts")
        return f"{self.policy}, on {self.prompts} {prompts} ({self.sample_text})"


@dataclass(frozen=True)
class RewardFile:
    """A file that holds one reward model's rewards and nothing of the others (OpenRLHF: one
    JSONL per reward model, its rows joined with the other files' rows).

    Attributes
    ----------
    path : the file (as given).
    columns : all of its columns (keys), in file order.
    """

    path: Path
    columns: tuple[str, ...]


@dataclass(frozen=True)
class RewardLog:
    """Sampled responses with one reward per reward model: what every response-level reader returns.

    This is the contract multi-prompt games are built from: one outcome set per prompt
    (:func:`group_by_prompt`), from the rows of one step (:func:`select_step`). Rows are in
    reading order: files in the order of :attr:`files` (TRL: by step), and within a file in
    file order. For OpenRLHF a row is the join of one line of each file, and its source is the
    first file.

    Attributes
    ----------
    trainer : the layout's name (``trl``, ``openrlhf``, ``mod``, ``ric``).
    reward_names : (K,) names of the reward models (reward functions), K >= 1.
    reward_columns : (K,) the column (JSONL key) each reward was read from.
    prompts, responses : (N,) the prompt and the sampled response of each row, N >= 1.
    rewards : (N, K) float array: ``rewards[r, k]`` is reward model k's reward for row r, as
        the trainer logged it (raw: not weighted, shifted or normalised); finite.
    row_steps : (N,) int array, the training step of each row; ``None`` for a layout without
        steps (MOD, RiC, OpenRLHF).
    files : the files read, each holding at least one row.
    source : (N,) int array, index into :attr:`files` of each row's file; non-decreasing.
    lines : (N,) int array, the 1-based line of each row in its file (parquet: the 1-based
        row), for ``FILE:LINE`` messages (:meth:`where`).
    file_columns : per file, all of its columns (keys), in file order.
    reward_weights : (K,) the trainer's weight of each reward (TRL's ``reward_weights``);
        ``None`` when not known.
    aggregation : how the trainer combined the weighted rewards (:data:`AGGREGATIONS`);
        ``None`` when not known.
    file_preferences : (len(files), K) the preference weighting each file was generated with
        (MOD, RiC: parsed from the file name); ``None`` otherwise.
    notes : what was read, ignored and assumed, one sentence each.
    step_info : per step present (TRL), what its file holds (:class:`StepInfo`); empty for
        layouts without steps.
    dropped : the lines read but not used, ``FILE:LINE: why`` each (OpenRLHF's padding copies).
    reward_files : (K,) per reward, the file it was read from (:class:`RewardFile`) when each
        reward model has its own file (OpenRLHF; the first is :attr:`files`' one file); empty
        when the rewards are columns of :attr:`files`.

    Every array is read-only.
    """

    trainer: str
    reward_names: tuple[str, ...]
    reward_columns: tuple[str, ...]
    prompts: tuple[str, ...]
    responses: tuple[str, ...]
    rewards: Array
    row_steps: Array | None
    files: tuple[Path, ...]
    source: Array
    lines: Array
    file_columns: tuple[tuple[str, ...], ...]
    reward_weights: Array | None = None
    aggregation: str | None = None
    file_preferences: Array | None = None
    notes: tuple[str, ...] = ()
    step_info: tuple[StepInfo, ...] = ()
    dropped: tuple[str, ...] = ()
    reward_files: tuple[RewardFile, ...] = ()

    def __post_init__(self) -> None:
        n, k = len(self.prompts), len(self.reward_names)
        set_ = object.__setattr__
        set_(self, "rewards", _frozen(self.rewards, float))
        set_(self, "source", _frozen(self.source, np.intp))
        set_(self, "lines", _frozen(self.lines, np.int64))
        if self.row_steps is not None:
            set_(self, "row_steps", _frozen(self.row_steps, np.int64))
        if self.reward_weights is not None:
            set_(self, "reward_weights", _frozen(self.reward_weights, float))
        if self.file_preferences is not None:
            set_(self, "file_preferences", _frozen(self.file_preferences, float))
        if n == 0 or k == 0 or len(self.reward_columns) != k or len(self.responses) != n:
            raise ValueError("a RewardLog needs N >= 1 rows and K >= 1 named rewards")
        if self.rewards.shape != (n, k) or not np.isfinite(self.rewards).all():
            raise ValueError(f"`rewards` must be a finite ({n}, {k}) array")
        per_row = [self.source, self.lines] + ([] if self.row_steps is None else [self.row_steps])
        if any(a.shape != (n,) for a in per_row):
            raise ValueError("`source`, `lines` and `row_steps` need one entry per row")
        used = np.unique(self.source)
        if (np.diff(self.source) < 0).any() or used.tolist() != list(range(len(self.files))):
            raise ValueError("`source` must be non-decreasing and use every file")
        if len(self.file_columns) != len(self.files):
            raise ValueError("`file_columns` needs one entry per file")
        if self.reward_files and len(self.reward_files) != k:
            raise ValueError(f"`reward_files` needs one entry per reward ({k}) or none")
        if self.reward_weights is not None and self.reward_weights.shape != (k,):
            raise ValueError(f"`reward_weights` must have shape ({k},)")
        if self.aggregation is not None and self.aggregation not in AGGREGATIONS:
            raise ValueError(f"`aggregation` must be one of {AGGREGATIONS}")
        if self.file_preferences is not None and self.file_preferences.shape != (len(self.files), k):
            raise ValueError(f"`file_preferences` must have shape ({len(self.files)}, {k})")

    @property
    def n_rows(self) -> int:
        return len(self.prompts)

    def step(self, step: int) -> StepInfo | None:
        """What the file of ``step`` holds (``None`` for a step not read)."""
        return next((info for info in self.step_info if info.step == step), None)

    @property
    def steps(self) -> tuple[int, ...]:
        """The steps present, ascending; empty for a layout without steps."""
        return () if self.row_steps is None else tuple(int(s) for s in np.unique(self.row_steps))

    @property
    def n_prompts(self) -> int:
        """How many distinct prompts the rows hold."""
        return len(set(self.prompts))

    def file_rows(self) -> Array:
        """(len(files),) how many rows came from each file."""
        return np.bincount(self.source, minlength=len(self.files))

    def where(self, row: int) -> str:
        """``FILE:LINE`` of a row, for messages."""
        return f"{self.files[int(self.source[row])]}:{int(self.lines[row])}"


def _take(log: RewardLog, rows: Array, notes: tuple[str, ...]) -> RewardLog:
    """The log of the given rows (an ascending index array), files re-indexed."""
    used = np.unique(log.source[rows])
    remap = np.full(len(log.files), -1, dtype=np.intp)
    remap[used] = np.arange(len(used))
    return RewardLog(
        trainer=log.trainer,
        reward_names=log.reward_names,
        reward_columns=log.reward_columns,
        prompts=tuple(log.prompts[r] for r in rows),
        responses=tuple(log.responses[r] for r in rows),
        rewards=log.rewards[rows],
        row_steps=None if log.row_steps is None else log.row_steps[rows],
        files=tuple(log.files[f] for f in used),
        source=remap[log.source[rows]],
        lines=log.lines[rows],
        file_columns=tuple(log.file_columns[f] for f in used),
        reward_weights=log.reward_weights,
        aggregation=log.aggregation,
        file_preferences=None if log.file_preferences is None else log.file_preferences[used],
        notes=log.notes + notes,
        step_info=tuple(
            i
            for i in log.step_info
            if log.row_steps is not None and i.step in set(log.row_steps[rows].tolist())
        ),
        dropped=log.dropped,
        reward_files=log.reward_files,
    )


def select_step(log: RewardLog, step: int | None = None) -> RewardLog:
    """The rows of one training step: the samples of one policy.

    Parameters
    ----------
    log : the log.
    step : the step to keep. ``None`` keeps the log as it is when it holds at most one step
        (or has no steps); rows of several steps are samples of several policies and are
        never mixed silently.

    Raises
    ------
    SpecError
        for ``step=None`` on a log of several steps, at the first row of a second step and
        listing the steps found.
    RlhfMechError
        for a step the log does not hold, or a step given for a log without steps.
    """
    steps = log.steps
    if step is None:
        if len(steps) <= 1:
            return log
        assert log.row_steps is not None
        r = int(np.flatnonzero(log.row_steps != log.row_steps[0])[0])
        raise located(
            log.files[int(log.source[r])],
            int(log.lines[r]),
            "step",
            f"the log holds {len(steps)} steps ({', '.join(map(str, steps))}), samples of different "
            "policies: choose one with --step",
        )
    if log.row_steps is None:
        raise RlhfMechError(f"--step {step}: {log.trainer} logs have no steps")
    if step not in steps:
        raise RlhfMechError(f"--step {step}: no rows of step {step} (steps: {', '.join(map(str, steps))})")
    rows = np.flatnonzero(log.row_steps == step)
    return _take(log, rows, (f"step {step}: the {rows.size} rows of that step, of {log.n_rows}",))


def parse_steps(text: str) -> tuple[int, int] | None:
    """``--step``: ``"3"`` -> (3, 3); ``"2-5"`` or ``"2:5"`` -> (2, 5); ``"all"`` -> ``None``.

    Raises
    ------
    RlhfMechError
        for anything else (a negative step, a range that runs backwards).
    """
    text = text.strip()
    if text == "all":
        return None
    parts = text.replace(":", "-", 1).split("-") if text[1:].count("-") or ":" in text else [text]
    if len(parts) in (1, 2) and all(p.strip().isascii() and p.strip().isdigit() for p in parts):
        low, high = int(parts[0]), int(parts[-1])
        if low <= high:
            return low, high
    raise RlhfMechError(f"--step {text!r}: expected a step (3), a range (2-5) or all")


def steps_in(log: RewardLog, chosen: tuple[int, int] | None) -> tuple[int, ...]:
    """The log's steps within ``chosen`` (:func:`parse_steps`; ``None``: every step).

    Raises
    ------
    RlhfMechError
        for a log without steps, or a range holding none of its steps.
    """
    if log.row_steps is None:
        raise RlhfMechError(f"--step: {log.trainer} logs have no steps")
    steps = log.steps if chosen is None else tuple(s for s in log.steps if chosen[0] <= s <= chosen[1])
    if not steps:
        low, high = chosen  # type: ignore[misc]
        span = str(low) if low == high else f"{low}-{high}"
        raise RlhfMechError(
            f"--step {span}: no rows of step {span} (steps: {', '.join(map(str, log.steps))})"
        )
    return steps


def first_sight_codes(texts: Sequence[str]) -> tuple[Array, tuple[str, ...]]:
    """(N,) the code of each text (0, 1, ... in order of first sight) and the distinct texts
    in that order (C-level dict work: no Python loop per row)."""
    distinct = tuple(dict.fromkeys(texts))
    code = dict(zip(distinct, range(len(distinct)), strict=True))
    return np.fromiter(map(code.__getitem__, texts), np.intp, len(texts)), distinct


@dataclass(frozen=True)
class PromptGroups:
    """The rows of a one-step log, grouped by prompt.

    Prompts are sorted (Python's string order, by code point), so the same prompts give the
    same order in any log and at any step. Within a prompt the rows keep the log's order.

    Attributes
    ----------
    prompts : (P,) the distinct prompts, sorted.
    rows : (N,) int array, the log's row indices, prompt by prompt.
    offsets : (P + 1,) int array: prompt p owns ``rows[offsets[p]:offsets[p + 1]]``.
    log : the log grouped (for :attr:`responses` and :attr:`rewards`, built when asked for:
        the importer works on ``rows`` and never builds a Python object per prompt).
    """

    prompts: tuple[str, ...]
    rows: Array
    offsets: Array
    log: RewardLog = field(repr=False, compare=False)

    @property
    def sizes(self) -> Array:
        """(P,) how many responses each prompt has."""
        return np.diff(self.offsets)

    @property
    def responses(self) -> tuple[tuple[str, ...], ...]:
        """Per prompt, its (m_p,) responses."""
        bounds = zip(self.offsets[:-1], self.offsets[1:], strict=True)
        return tuple(tuple(self.log.responses[r] for r in self.rows[a:b]) for a, b in bounds)

    @property
    def rewards(self) -> tuple[Array, ...]:
        """Per prompt, its (m_p, K) rewards (``log.rewards[rows of p]``)."""
        return tuple(np.split(self.log.rewards[self.rows], self.offsets[1:-1]))


def group_by_prompt(log: RewardLog) -> PromptGroups:
    """The rows of ``log`` grouped by prompt (one outcome set per prompt).

    Raises
    ------
    SpecError
        when the log holds several steps (:func:`select_step` first).
    """
    log = select_step(log)
    first, seen = first_sight_codes(log.prompts)
    order = sorted(range(len(seen)), key=seen.__getitem__)
    rank = np.empty(len(seen), dtype=np.intp)
    rank[order] = np.arange(len(seen))
    prompt_of_row = rank[first]
    rows = np.argsort(prompt_of_row, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(prompt_of_row, minlength=len(seen)))])
    rows.setflags(write=False)
    offsets.setflags(write=False)
    return PromptGroups(prompts=tuple(seen[i] for i in order), rows=rows, offsets=offsets, log=log)
