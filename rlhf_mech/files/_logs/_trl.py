"""TRL ``GRPOTrainer`` completions (``log_completions=True``) -> :class:`RewardLog`.

What trl 1.16 writes (``GRPOTrainer.log``), and what this reader makes of it:

* ``{output_dir}/completions/completions_{global_step:05d}.parquet``, written by pandas from
  ``{"step", "prompt", "completion", **rewards, **extra, "advantage"}``. ``prompt`` and
  ``completion`` are strings (``large_string`` in the file) for a plain dataset and
  ``list<struct<role, content>>`` for a conversational one; a conversation is read as its
  JSON text (``[{"role": "user", "content": "..."}]``), which tells any two apart.
* The reward columns come first, in ``reward_funcs`` order (the order of ``reward_weights``),
  then the ``log_extra`` columns in sorted order. ``trainer_state.json`` is written with
  ``sort_keys=True``: its ``rewards/NAME/mean`` keys are in alphabetical order, so they say
  which columns are rewards, never in which order.
* A file holds the last ``generation_batch_size`` completions only (a ``deque``): one
  generation batch, a subset of the prompts, and for an evaluation the last of its batches.
* ``GRPOTrainer.log`` names the file by ``global_step`` only: an evaluation at a training
  step (every ``eval_steps``, and at the end of training when ``eval_strategy="steps"``)
  writes the same file again, with eval completions. ``trainer_state.json`` has an
  ``eval_*`` entry at those steps. Step 0 is only ever written by ``eval_on_start``.
* ``advantage`` is the training signal computed from the rewards with ``reward_weights``
  (:mod:`~rlhf_mech.files._logs._advantage`): the weights are checked against it, or
  recovered from it when no config gives them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlhf_mech.errors import RlhfMechError, printable, shown
from rlhf_mech.files._logs import _advantage
from rlhf_mech.files._logs._layouts import TRL_FILE
from rlhf_mech.files._logs._record import AGGREGATIONS, Array, RewardLog, StepInfo, first_sight_codes
from rlhf_mech.files._logs._trl_run import TrainerState, run_folder, trainer_state, trl_config
from rlhf_mech.files._tables import finite_number, located
from rlhf_mech.files.spec._document import is_name

_INSTALL_PARQUET = "pip install 'rlhf-mech[parquet]'"


def _p(path: Path | str) -> str:
    """A path as messages show it (control characters escaped)."""
    return printable(str(path))


def _pyarrow(path: Path) -> tuple[Any, Any]:
    """``pyarrow`` and ``pyarrow.parquet``, imported on first use (the ``parquet`` extra)."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise RlhfMechError(f"reading {_p(path)} needs pyarrow: {_INSTALL_PARQUET}") from None
    return pyarrow, pyarrow.parquet


def _parquet(pa: Any, path: Path, read: Callable[..., Any], **options: Any) -> Any:
    """``read(path, **options)``; a file pyarrow cannot read (not parquet, truncated) raises a SpecError."""
    try:
        return read(path, **options)
    except (OSError, pa.ArrowException, ValueError, TypeError, KeyError, IndexError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise located(_p(path), None, "", f"cannot read the parquet file: {printable(first)}") from None


# --- columns ---------------------------------------------------------------------------------


def _arrow_kind(pa: Any, type_: Any) -> str:
    """``integer``, ``number``, ``text``, ``conversation`` or the arrow type's name."""
    types = pa.types
    if types.is_integer(type_):
        return "integer"
    if types.is_floating(type_):
        return "number"
    if (
        types.is_string(type_)
        or types.is_large_string(type_)
        or getattr(types, "is_string_view", bool)(type_)
    ):
        return "text"
    if (types.is_list(type_) or types.is_large_list(type_)) and types.is_struct(type_.value_type):
        fields = {type_.value_type.field(i).name for i in range(type_.value_type.num_fields)}
        if {"role", "content"} <= fields:
            return "conversation"
    return str(type_)


_KIND_WORDS = {
    "integer": "integers",
    "number": "numbers",
    "text": "text or a conversation (a list of {role, content} messages)",
}


def _check_schema(pa: Any, path: Path, schema: Any, columns: Sequence[str]) -> dict[str, str]:
    """Each column's kind; the required columns and the reward ``columns`` exist with the types
    TRL writes, and no column name appears twice."""
    seen: set[str] = set()
    for name in schema.names:
        if name in seen:
            raise located(_p(path), None, printable(name), "the column name appears twice in the file")
        seen.add(name)
    kinds = {name: _arrow_kind(pa, schema.field(name).type) for name in schema.names}
    wanted = {"step": "integer", "prompt": "text", "completion": "text", **dict.fromkeys(columns, "number")}
    for column, kind in wanted.items():
        if column not in kinds:
            listed = printable(", ".join(schema.names))
            raise located(
                _p(path), None, printable(column), f"no column named {shown(column)} (columns: {listed})"
            )
        got = kinds[column]
        if (
            got == kind
            or (kind == "number" and got == "integer")
            or (kind == "text" and got == "conversation")
        ):
            continue
        raise located(
            _p(path), None, printable(column), f"expected {_KIND_WORDS[kind]}, got {printable(got)}"
        )
    return kinds


def _nulls(column: Any) -> Array:
    return np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _texts(path: Path, column: Any, name: str, kind: str) -> list[str]:
    """A text column as strings; a conversation as its JSON text."""
    if column.null_count:
        raise located(_p(path), int(np.flatnonzero(_nulls(column))[0]) + 1, name, "missing value")
    values = column.to_pylist()
    if kind == "text":
        return values
    out = []
    for r, messages in enumerate(values):
        try:
            out.append(json.dumps(messages, ensure_ascii=False))
        except (TypeError, ValueError):
            raise located(_p(path), r + 1, name, "a conversation that is not JSON text") from None
    return out


def _numbers(path: Path, column: Any, name: str, hint: str = "") -> Array:
    if column.null_count:
        raise located(_p(path), int(np.flatnonzero(_nulls(column))[0]) + 1, name, "missing value" + hint)
    values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        r = int(bad[0])
        raise located(_p(path), r + 1, name, f"{float(values[r])!r} is not a finite number{hint}")
    return values


_NONE_HINT = " (TRL logs NaN where a reward function returned None; every response needs every reward)"


def _between(names: Sequence[str]) -> list[str]:
    """The columns TRL writes between ``completion`` and ``advantage``: the rewards in
    ``reward_funcs`` order, then the ``log_extra`` columns."""
    start = names.index("completion") + 1 if "completion" in names else 0
    end = names.index("advantage") if "advantage" in names else len(names)
    return [n for n in names[start:end] if not n.startswith("__index_level_")]


@dataclass(frozen=True)
class _Tables:
    """The files' columns read once: the texts, the numeric columns and the advantages."""

    prompts: list[list[str]]
    responses: list[list[str]]
    steps: list[Array]
    numeric: list[dict[str, Array]]
    advantage: list[Array | None]


def _read_tables(
    pa: Any,
    pq: Any,
    files: Sequence[Path],
    schemas: Sequence[Any],
    required: Sequence[str],
    optional: Sequence[str],
) -> _Tables:
    """The files' columns: the ``required`` numeric ones must be in every file, the
    ``optional`` ones (``log_extra`` columns, which a run may log at some steps only) are read
    where present."""
    prompts, responses, steps, values, advantages = [], [], [], [], []
    for path, schema in zip(files, schemas, strict=True):
        kinds = _check_schema(pa, path, schema, required)
        present = [c for c in dict.fromkeys([*required, *optional]) if kinds.get(c) in ("integer", "number")]
        wanted = ["step", "prompt", "completion", *present]
        has_advantage = kinds.get("advantage") in ("number", "integer")
        table = _parquet(
            pa, path, pq.read_table, columns=[*wanted, *(["advantage"] if has_advantage else [])]
        )
        if not table.num_rows:
            raise located(_p(path), None, "", "the file has no rows")
        file_steps = _numbers(path, table.column("step"), "step").astype(np.int64)
        named = TRL_FILE.fullmatch(path.name)
        if named and (off := np.flatnonzero(file_steps != int(named[1]))).size:
            r = int(off[0])
            raise located(
                _p(path), r + 1, "step", f"step {int(file_steps[r])} in the file of step {int(named[1])}"
            )
        steps.append(file_steps)
        prompts.append(_texts(path, table.column("prompt"), "prompt", kinds["prompt"]))
        responses.append(_texts(path, table.column("completion"), "completion", kinds["completion"]))
        values.append({c: table.column(c) for c in present})
        advantage = None
        if has_advantage and not table.column("advantage").null_count:
            advantage = np.asarray(table.column("advantage").to_numpy(zero_copy_only=False), dtype=float)
        advantages.append(advantage)
    return _Tables(prompts, responses, steps, values, advantages)


# --- which columns are rewards, and their weights --------------------------------------------


@dataclass
class _Weights:
    """What is known of the weights while reading: values, where from, the notes."""

    values: Array | None = None
    source: str = ""
    given: bool = False
    config: Path | None = None


def _numeric_between(pa: Any, schema: Any) -> list[str]:
    names = list(schema.names)
    return [n for n in _between(names) if _arrow_kind(pa, schema.field(n).type) in ("integer", "number")]


def _reward_columns(
    pa: Any,
    path: Path,
    schema: Any,
    state: TrainerState | None,
    reward_columns: Mapping[str, str] | None,
    reward_weights: Mapping[str, float] | Sequence[float] | None,
    config_weights: Any,
    notes: list[str],
) -> tuple[dict[str, str] | None, str]:
    """Reward name -> column, in the file's order where the file decides it; ``None`` when
    only the advantage column can tell (no trainer_state.json, no weights, no --reward-col).
    The second value says how the columns were chosen."""
    names = list(schema.names)
    between = _between(names)
    if reward_columns:
        return dict(reward_columns), "as given with --reward-col"
    if isinstance(reward_weights, Mapping):
        ordered = [n for n in between if n in reward_weights] + [
            n for n in reward_weights if n not in between
        ]
        return {n: n for n in ordered}, "the names given with --reward-weights"
    if state is not None and state.reward_names:
        missing = sorted(state.reward_names - set(names))
        if missing:
            raise located(
                _p(path),
                None,
                printable(missing[0]),
                f"{_p(state.path)} names the reward function {shown(missing[0])} "
                f"(rewards/{printable(missing[0])}/mean); "
                "the file has no such column",
            )
        ordered = [n for n in between if n in state.reward_names]
        return {n: n for n in ordered}, (
            f"the rewards/NAME/mean metrics of {_p(state.path)}, in the order of the file's columns "
            "(reward_funcs order; the JSON's keys are sorted)"
        )
    count = None
    if isinstance(reward_weights, Sequence) and reward_weights:
        count, why = len(reward_weights), "--reward-weights gives"
    elif isinstance(config_weights, list):
        count, why = len(config_weights), "reward_weights of the config gives"
    if count is not None:
        numeric = _numeric_between(pa, schema)
        if len(between) < count:
            raise located(
                _p(path),
                None,
                "",
                f"{why} {count} weights; the file has {len(between)} columns between completion and "
                f"advantage ({printable(', '.join(between))})",
            )
        chosen = between[:count]
        bad = next((c for c in chosen if c not in numeric), None)
        if bad is not None:
            raise located(
                _p(path), None, printable(bad), f"the reward column {shown(bad)} does not hold numbers"
            )
        extra = between[count:]
        tail = (
            f"; the columns after them ({printable(', '.join(extra))}) are log_extra values" if extra else ""
        )
        return {n: n for n in chosen}, (
            f"the first {count} columns after completion ({why} {count} weights; TRL writes the reward "
            f"columns first, in reward_funcs order){tail}"
        )
    return None, ""


def _weight_values(
    names: tuple[str, ...],
    reward_weights: Mapping[str, float] | Sequence[float] | None,
    config_path: Path | None,
    config: Mapping[str, Any],
    notes: list[str],
) -> _Weights:
    """The weights in the order of ``names`` (the trainer's): the option, else the config."""
    if isinstance(reward_weights, Mapping) and reward_weights:
        unknown = [n for n in reward_weights if n not in names]
        missing = [n for n in names if n not in reward_weights]
        if unknown or missing:
            raise RlhfMechError(
                f"--reward-weights must weigh each reward function ({printable(', '.join(names))}) once"
                + (f"; unknown: {printable(', '.join(unknown))}" if unknown else "")
                + (f"; missing: {printable(', '.join(missing))}" if missing else "")
            )
        return _Weights(np.array([reward_weights[n] for n in names]), "--reward-weights", given=True)
    if isinstance(reward_weights, Sequence) and reward_weights:
        if len(reward_weights) != len(names):
            raise RlhfMechError(
                f"--reward-weights gives {len(reward_weights)} weights for {len(names)} reward functions "
                f"({printable(', '.join(names))})"
            )
        return _Weights(
            np.array(reward_weights, dtype=float), "--reward-weights, in the trainer's order", given=True
        )
    if config_path is not None and "reward_weights" in config:
        raw = config["reward_weights"]
        if raw is None:
            return _Weights(
                np.ones(len(names)),
                f"1 each (reward_weights is null in {_p(config_path)}: TRL's default)",
                config=config_path,
            )
        values = [finite_number(v, strings=False) for v in raw] if isinstance(raw, list) else []
        if len(values) != len(names) or any(v is None for v in values):
            raise located(
                _p(config_path),
                None,
                "reward_weights",
                f"expected a list of {len(names)} numbers, one per reward function "
                f"({printable(', '.join(names))}), got {shown(raw)}",
            )
        return _Weights(
            np.array(values, dtype=float),
            f"reward_weights of {_p(config_path)}, paired with the reward columns in the file's order "
            "(reward_funcs order)",
            config=config_path,
        )
    return _Weights()


def _variants(aggregation: str | None, config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The advantage variants the run may have used: the known options, else every one."""
    scale = config.get("scale_rewards")
    if isinstance(scale, bool):  # TRL before 0.22: scale_rewards=True/False
        scale = "group" if scale else "none"
    return [
        v
        for v in _advantage.VARIANTS
        if (aggregation is None or v[0] == aggregation)
        and (scale not in ("group", "batch", "none") or v[0] == "normalize_then_sum" or v[1] == scale)
    ]


def _fmt_weights(names: Sequence[str], weights: Array) -> str:
    return ", ".join(f"{printable(n)}={w:g}" for n, w in zip(names, weights, strict=True))


def _check_weights(
    names: tuple[str, ...],
    batches: list[_advantage.Batch],
    weights: _Weights,
    variants: list[tuple[str, str]],
    notes: list[str],
    aggregation_given: bool = False,
) -> tuple[Array | None, tuple[str, str] | None]:
    """Check the weights against the logged advantages, or infer them; the weights to use and
    the advantage variant that reproduced them. Weights or an aggregation the user gave that
    do not reproduce the advantages are kept, with a warning; a config's are refused."""
    if not batches or not variants:
        if weights.values is not None:
            notes.append(
                f"reward weights: {weights.source}; not checked (no advantage column with whole groups)"
            )
        else:
            notes.append(
                "reward weights: not known (no --reward-weights, no config, no advantage column to infer "
                "them)"
            )
        return weights.values, None
    if weights.values is not None:
        for variant in variants:
            fit = _advantage.check(batches, weights.values, variant)
            if fit is not None and fit.fits:
                notes.append(
                    f"reward weights: {_fmt_weights(names, weights.values)}, {weights.source}; checked "
                    "against "
                    f"the logged advantage column: reproduced to {fit.residual:.1e} on {fit.rows} rows of "
                    f"{fit.files} files ({variant[0]}, scale_rewards={variant[1]})"
                )
                return weights.values, variant
    # no weights, or weights that do not reproduce the advantages: which would?
    inferred: tuple[Array, _advantage.Fit] | None = None
    others = [v for v in _advantage.VARIANTS if v not in variants]
    for variant in [*variants, *(others if weights.values is not None else ())]:
        found = _advantage.infer(batches, variant)
        if found is None:
            continue
        found, fit = _advantage.scaled(batches, found, variant)
        if fit is not None and fit.fits:
            inferred = _advantage.rounded(batches, found, variant, fit)
            break
    if weights.values is not None:
        worst = _advantage.check(batches, weights.values, variants[0])
        residual = f" (largest difference {worst.residual:.3g})" if worst is not None else ""
        if inferred is None:
            notes.append(
                f"reward weights: {_fmt_weights(names, weights.values)}, {weights.source}; the logged "
                "advantage "
                f"column is not reproduced by them{residual} nor by any other weights (an option of the run "
                "this check does not model): not checked"
            )
            return weights.values, None
        better = _fmt_weights(names, inferred[0])
        if inferred[1].variant not in variants:
            better += f" with {inferred[1].variant[0]}, scale_rewards={inferred[1].variant[1]}"
        if weights.given or aggregation_given:
            notes.append(
                f"WARNING reward weights: {_fmt_weights(names, weights.values)}, {weights.source}, do not "
                f"reproduce the logged advantage column{residual}; {better} (up to a common factor) do: "
                "the run did not train with the weights given"
            )
            return weights.values, None
        assert weights.config is not None
        raise located(
            _p(weights.config),
            None,
            "reward_weights",
            f"{_fmt_weights(names, weights.values)} (in the order of the file's reward columns) do not "
            "reproduce "
            f"the logged advantage column{residual}; {better} (up to a common factor) do: the config is not "
            "this run's, or its weights are in another order; pass the run's weights with --reward-weights",
        )
    if inferred is not None:
        w, fit = inferred
        variant = fit.variant
        notes.append(
            f"reward weights: {_fmt_weights(names, w)}, inferred from the logged advantage column (up to a "
            "common factor, which shows only through TRL's 1e-4); they reproduce it to "
            f"{fit.residual:.1e} on {fit.rows} "
            f"rows of {fit.files} files ({variant[0]}, scale_rewards={variant[1]}); no config gave them"
        )
        return w, variant
    notes.append(
        "reward weights: not known (no --reward-weights, no config; the logged advantage column does not "
        "single them out)"
    )
    return None, None


def _infer_count(between: list[str], tables: _Tables, variants: list[tuple[str, str]]) -> int | None:
    """The fewest leading columns whose weighted sum reproduces the logged advantages: the
    reward columns, when nothing else says which columns are rewards."""
    for k in range(1, len(between) + 1):
        batches = _batches(tables, between[:k])
        if not batches:
            return None
        for variant in variants:
            w = _advantage.infer(batches, variant)
            if w is None:
                continue
            fit = _advantage.scaled(batches, w, variant)[1]
            if fit is not None and fit.fits:
                return k
    return None


def _batches(tables: _Tables, columns: Sequence[str]) -> list[_advantage.Batch]:
    out = []
    for f, advantage in enumerate(tables.advantage):
        if advantage is None:
            continue
        values = []
        for c in columns:
            column = tables.numeric[f].get(c)
            if column is None or column.null_count:
                break
            values.append(np.asarray(column.to_numpy(zero_copy_only=False), dtype=float))
        else:
            rewards = np.column_stack(values)
            if not np.isfinite(rewards).all():
                continue
            with np.errstate(all="ignore"):
                scale = np.abs(rewards).max(initial=0.0)
            if not np.isfinite(scale) or scale > 1e150:
                continue  # float32 TRL would have overflowed: nothing to check against
            batch = _advantage.file_batch(tables.prompts[f], rewards, advantage)
            if batch is not None:
                out.append(batch)
    return out


# --- steps -----------------------------------------------------------------------------------


def _step_info(step: int, samples: Array, state: TrainerState | None) -> StepInfo:
    """What the file of ``step`` holds; ``samples`` (P,): how many rows each of its prompts has."""
    sizes = (int(samples.min()), int(samples.max()))
    known = state is not None and (state.global_step is None or step <= state.global_step)
    if known and step in state.eval_steps:  # type: ignore[union-attr]
        role, why = (
            "eval",
            f"{_p(state.path)} has an eval_* entry at step {step}: an evaluation wrote the file last",
        )  # type: ignore[union-attr]
    elif step == 0:
        role, why = "eval", "only an evaluation writes step 0 (eval_on_start=True)"
    elif known:
        role, why = "train", f"{_p(state.path)} has no eval_* entry at step {step}"  # type: ignore[union-attr]
    else:
        role, why = (
            "train or eval",
            (
                "no trainer_state.json says whether an evaluation ran at this step (it replaces the "
                "step's file)"
                if state is None
                else f"{_p(state.path)} was saved at step {state.global_step}, before this step"
            ),
        )
    initial = (role == "train" and step == 1) or (role == "eval" and step == 0)
    return StepInfo(step, role, initial, int(samples.sum()), len(samples), sizes, why)


# --- the reader ------------------------------------------------------------------------------


def read_trl(
    files: Sequence[Path],
    *,
    reward_columns: Mapping[str, str] | None = None,
    reward_weights: Mapping[str, float] | Sequence[float] | None = None,
    aggregation: str | None = None,
    trainer_config: Path | None = None,
) -> RewardLog:
    """A TRL run's logged completions (``completions_{step:05d}.parquet``) as a :class:`RewardLog`.

    Parameters
    ----------
    files : the parquet files of one run, in step order (:func:`log_inputs` expands a folder).
    reward_columns : reward name -> column (``--reward-col``).
    reward_weights : the run's ``reward_weights``: name -> weight, or the list in the
        trainer's (``reward_funcs``) order. Default: from the config, else inferred from the
        logged ``advantage`` column.
    aggregation : one of :data:`AGGREGATIONS`; default from the config.
    trainer_config : a JSON dump of the run's ``GRPOConfig``; default ``training_args.json``
        (or a ``config.json`` with those fields) in the output folder.

    Notes
    -----
    Which columns are rewards: ``--reward-col``; else the names in ``reward_weights``; else
    the ``rewards/NAME/mean`` metrics of ``trainer_state.json`` (in the file's column order);
    else, given K weights, the first K columns after ``completion``; else the fewest leading
    columns that reproduce the ``advantage`` column; else every numeric column, said so.
    Weights given or configured are checked against the ``advantage`` column (a config whose
    weights do not reproduce it is refused). A row's line in messages is its 1-based row.
    """
    if aggregation is not None and aggregation not in AGGREGATIONS:
        raise RlhfMechError(
            f"--aggregation must be one of {', '.join(AGGREGATIONS)}, got {shown(aggregation)}"
        )
    pa, pq = _pyarrow(files[0])
    run = run_folder(files)
    notes: list[str] = []
    schemas = []
    for path in files:
        if path.suffix.lower() != ".parquet":
            raise located(
                _p(path), None, "", "expected a .parquet file (TRL's completions_{step:05d}.parquet)"
            )
        schema = _parquet(pa, path, pq.read_schema)
        _check_schema(pa, path, schema, ())
        schemas.append(schema)
    state = trainer_state(run)
    config_path, config = trl_config(run, trainer_config)
    columns, how = _reward_columns(
        pa, files[0], schemas[0], state, reward_columns, reward_weights, config.get("reward_weights"), notes
    )
    required = list(columns.values()) if columns else []
    optional = list(dict.fromkeys(n for schema in schemas for n in _numeric_between(pa, schema)))
    tables = _read_tables(pa, pq, files, schemas, required, optional)
    combined = aggregation if aggregation is not None else config.get("multi_objective_aggregation")
    if combined is not None and combined not in AGGREGATIONS:
        raise located(
            _p(config_path or ""),
            None,
            "multi_objective_aggregation",
            f"expected one of {', '.join(AGGREGATIONS)}, got {shown(combined)}",
        )
    variants = _variants(combined, config)
    if columns is None:
        between = _numeric_between(pa, schemas[0])
        if not between:
            raise located(
                _p(files[0]), None, "", "no reward column: no numeric column between completion and advantage"
            )
        count = _infer_count(between, tables, variants)
        if count is not None:
            columns = {n: n for n in between[:count]}
            rest = between[count:]
            how = (
                f"the first {count} numeric columns after completion: the fewest whose weighted sum "
                "reproduces "
                "the logged advantage column (no trainer_state.json, config or --reward-weights says)"
                + (f"; {printable(', '.join(rest))} taken for log_extra values" if rest else "")
            )
        else:
            columns = {n: n for n in between}
            how = (
                f"every numeric column after completion ({printable(', '.join(between))}); no "
                "trainer_state.json "
                "says which are rewards and which log_extra values, and the advantage column does not tell: "
                "name the rewards with --reward-col or give the run's --reward-weights"
            )
        for path, schema in zip(files, schemas, strict=True):
            _check_schema(pa, path, schema, list(columns.values()))
    names = tuple(columns)
    bad = next((n for n in names if not is_name(n)), None)
    if bad is not None:
        raise RlhfMechError(
            f"the reward name {shown(bad)} cannot be written to a game file; use --reward-col"
        )
    notes.append(f"reward functions: {printable(', '.join(names))}, {how}")
    weights = _weight_values(names, reward_weights, config_path, config, notes)
    batches = _batches(tables, list(columns.values()))
    values, variant = _check_weights(names, batches, weights, variants, notes, aggregation is not None)
    if aggregation is not None:
        notes.append(f"aggregation: {aggregation}, as given with --aggregation")
    elif combined is not None:
        notes.append(f"aggregation: {combined}, multi_objective_aggregation of {_p(config_path or '')}")
    elif variant is not None:
        combined = variant[0]
        notes.append(f"aggregation: {combined}, the one that reproduces the logged advantage column")
    elif config_path is not None:
        combined = "sum_then_normalize"
        notes.append(
            f"aggregation: sum_then_normalize ({_p(config_path)} has no multi_objective_aggregation: "
            "TRL before that option always weighed and summed first)"
        )
    else:
        notes.append("aggregation: not known (no --aggregation, no config)")
    rewards, lines, source, infos = [], [], [], []
    for f, path in enumerate(files):
        rewards.append(
            np.column_stack([_numbers(path, tables.numeric[f][c], c, _NONE_HINT) for c in columns.values()])
        )
        n = len(tables.prompts[f])
        lines.append(np.arange(1, n + 1))
        source.append(np.full(n, f, dtype=np.intp))
        prompt_codes, _ = first_sight_codes(tables.prompts[f])
        for step in np.unique(tables.steps[f]):
            samples = np.bincount(prompt_codes[tables.steps[f] == step])
            infos.append(_step_info(int(step), samples[samples > 0], state))
    used = {"step", "prompt", "completion", "advantage", *columns.values()}
    ignored = [n for n in schemas[0].names if n not in used]
    if ignored:
        notes.append(f"ignored columns: {printable(', '.join(ignored))} (log_extra values are not rewards)")
    if state is None:
        notes.append(
            "no trainer_state.json (neither save_state() nor a checkpoint): whether a step's file holds "
            "training or eval completions is known only for step 0"
        )
    elif state.logging_steps is not None:
        notes.append(f"logging_steps: {state.logging_steps} ({_p(state.path)})")
    size = config.get("generation_batch_size")
    notes.append(
        "each file holds only the last generation batch of its step"
        + (f" (at most generation_batch_size = {size} completions)" if isinstance(size, int) else "")
        + ": a sample of that step's prompts, not all of them"
    )
    return RewardLog(
        trainer="trl",
        reward_names=names,
        reward_columns=tuple(columns.values()),
        prompts=tuple(itertools.chain.from_iterable(tables.prompts)),
        responses=tuple(itertools.chain.from_iterable(tables.responses)),
        rewards=np.concatenate(rewards),
        row_steps=np.concatenate(tables.steps),
        files=tuple(files),
        source=np.concatenate(source),
        lines=np.concatenate(lines),
        file_columns=tuple(tuple(s.names) for s in schemas),
        reward_weights=values,
        aggregation=combined,
        notes=tuple(notes),
        step_info=tuple(sorted(infos, key=lambda i: i.step)),
    )
