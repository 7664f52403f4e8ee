"""TRL ``GRPOTrainer`` completions (``log_completions=True``) -> :class:`RewardLog`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlhf_mech.errors import RlhfMechError, SpecError, shown
from rlhf_mech.files._importer import finite_number
from rlhf_mech.files._logs._layouts import TRL_FILE
from rlhf_mech.files._logs._record import AGGREGATIONS, Array, RewardLog
from rlhf_mech.files.spec._document import is_name

_INSTALL_PARQUET = "pip install 'rlhf-mech[parquet]'"


def _pyarrow(path: Path) -> tuple[Any, Any]:
    """``pyarrow`` and ``pyarrow.parquet``, imported on first use (the ``parquet`` extra)."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise RlhfMechError(f"reading {path} needs pyarrow: {_INSTALL_PARQUET}") from None
    return pyarrow, pyarrow.parquet


def _parquet(pa: Any, path: Path, read: Callable[..., Any], **options: Any) -> Any:
    """``read(path, **options)``; a file pyarrow cannot read (not parquet, truncated) raises a SpecError."""
    try:
        return read(path, **options)
    except (OSError, pa.ArrowException) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SpecError(path, None, "", f"cannot read the parquet file: {first}") from None


def _run_folder(files: Sequence[Path]) -> Path:
    """The run's ``output_dir``: the folder above ``completions/`` (or the files' own folder).

    Raises
    ------
    RlhfMechError
        for files of two runs.
    """
    folders = {f.parent.parent if f.parent.name == "completions" else f.parent for f in files}
    if len(folders) > 1:
        raise RlhfMechError(
            f"the files come from {len(folders)} runs ({', '.join(sorted(map(str, folders)))}); "
            "import one run at a time"
        )
    return folders.pop()


def _json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(path, None, "", f"cannot read the file: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SpecError(path, exc.lineno, "", f"invalid JSON: {exc.msg}") from None
    except (RecursionError, ValueError):
        raise SpecError(path, None, "", "invalid JSON") from None
    if not isinstance(data, dict):
        raise SpecError(path, 1, "", "expected a JSON object")
    return data


#: The names a JSON dump of the run's GRPOConfig is looked for under, in the output folder.
TRL_CONFIG_NAMES = ("training_args.json", "config.json")
_TRL_CONFIG_KEYS = ("reward_weights", "multi_objective_aggregation")


def _trl_config(run: Path, given: Path | None) -> tuple[Path | None, dict[str, Any]]:
    """The run's config: ``given``, else the first of :data:`TRL_CONFIG_NAMES` that holds
    ``reward_weights`` or ``multi_objective_aggregation`` (a model's ``config.json`` does not)."""
    if given is not None:
        return given, _json_object(given)
    for name in TRL_CONFIG_NAMES:
        path = run / name
        if path.is_file() and any(key in (data := _json_object(path)) for key in _TRL_CONFIG_KEYS):
            return path, data
    return None, {}


_REWARD_METRIC = re.compile(r"rewards/(.+)/mean")


def _trainer_state_names(run: Path) -> tuple[Path | None, tuple[str, ...]]:
    """The reward functions' names from ``trainer_state.json`` (``rewards/{name}/mean`` keys of
    its ``log_history``): the run's own, else the latest checkpoint's."""
    checkpoints = [p for p in run.glob("checkpoint-*/trainer_state.json") if p.parent.name[11:].isdigit()]
    candidates = [run / "trainer_state.json", *sorted(checkpoints, key=lambda p: -int(p.parent.name[11:]))]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        return None, ()
    history = _json_object(path).get("log_history")
    names: dict[str, None] = {}
    for entry in history if isinstance(history, list) else ():
        for key in entry if isinstance(entry, dict) else ():
            if match := _REWARD_METRIC.fullmatch(str(key)):
                names.setdefault(match[1])
    return path, tuple(names)


def _arrow_kind(pa: Any, type_: Any) -> str:
    if pa.types.is_integer(type_):
        return "integer"
    if pa.types.is_floating(type_):
        return "number"
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "text"
    return str(type_)


#: What each column TRL itself names must hold.
_TRL_REQUIRED = {"step": "integer", "prompt": "text", "completion": "text"}


def _check_schema(pa: Any, path: Path, schema: Any, columns: Sequence[str]) -> None:
    """The required columns and the reward ``columns`` exist with the types TRL writes."""
    kinds = {name: _arrow_kind(pa, schema.field(name).type) for name in schema.names}
    wanted = {**_TRL_REQUIRED, **dict.fromkeys(columns, "number")}
    for column, kind in wanted.items():
        if column not in kinds:
            raise SpecError(
                path, None, column, f"no column named {column!r} (columns: {', '.join(schema.names)})"
            )
        if kinds[column] != kind and not (kind == "number" and kinds[column] == "integer"):
            what = {"integer": "integers", "number": "numbers", "text": "text"}[kind]
            raise SpecError(path, None, column, f"expected {what}, got {kinds[column]}")


def _nulls(column: Any) -> Array:
    return np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _texts(path: Path, column: Any, name: str) -> list[str]:
    values = column.to_pylist()
    if column.null_count:
        raise SpecError(path, int(np.flatnonzero(_nulls(column))[0]) + 1, name, "missing value")
    return values


def _numbers(path: Path, column: Any, name: str, hint: str = "") -> Array:
    if column.null_count:
        raise SpecError(path, int(np.flatnonzero(_nulls(column))[0]) + 1, name, "missing value" + hint)
    values = np.asarray(column.to_numpy(), dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        r = int(bad[0])
        raise SpecError(path, r + 1, name, f"{float(values[r])!r} is not a finite number{hint}")
    return values


_NONE_HINT = " (TRL logs NaN where a reward function returned None; every response needs every reward)"


def _trl_reward_columns(
    pa: Any,
    path: Path,
    schema: Any,
    run: Path,
    reward_columns: Mapping[str, str] | None,
    reward_weights: Mapping[str, float] | None,
    notes: list[str],
) -> dict[str, str]:
    """Reward name -> column: ``--reward-col``, else the ``--reward-weights`` names, else the
    names in ``trainer_state.json``, else every numeric column TRL does not name itself."""
    if reward_columns:
        notes.append("reward functions: as given with --reward-col")
        return dict(reward_columns)
    if reward_weights:
        notes.append("reward functions: the names given with --reward-weights")
        return {name: name for name in reward_weights}
    state, names = _trainer_state_names(run)
    if names:
        notes.append(f"reward functions: {', '.join(names)}, the rewards/NAME/mean metrics of {state}")
        return {name: name for name in names}
    numeric = [
        n
        for n in schema.names
        if n not in (*_TRL_REQUIRED, "advantage")
        and _arrow_kind(pa, schema.field(n).type) in ("integer", "number")
    ]
    if not numeric:
        raise SpecError(path, None, "", "no reward column: no numeric column besides step and advantage")
    notes.append(
        f"reward functions: every numeric column but step and advantage ({', '.join(numeric)}); no "
        "trainer_state.json says which are rewards and which log_extra values: name the rewards with "
        "--reward-col or --reward-weights if any is not one"
    )
    return {name: name for name in numeric}


def _trl_weights(
    names: tuple[str, ...],
    reward_weights: Mapping[str, float] | None,
    aggregation: str | None,
    config_path: Path | None,
    config: Mapping[str, Any],
    notes: list[str],
) -> tuple[Array | None, str | None]:
    """The trainer's reward weights and aggregation: the options, else the run's config."""
    weights: Array | None = None
    if reward_weights:
        unknown = [n for n in reward_weights if n not in names]
        missing = [n for n in names if n not in reward_weights]
        if unknown or missing:
            raise RlhfMechError(
                f"--reward-weights must weigh each reward function ({', '.join(names)}) once"
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
                + (f"; missing: {', '.join(missing)}" if missing else "")
            )
        weights = np.array([reward_weights[n] for n in names])
        notes.append("reward weights: as given with --reward-weights")
    elif config_path is not None and "reward_weights" in config:
        raw = config["reward_weights"]
        if raw is None:
            weights = np.ones(len(names))
            notes.append(f"reward weights: 1 each (reward_weights is null in {config_path}: TRL's default)")
        else:
            values = [finite_number(v) for v in raw] if isinstance(raw, list) else []
            if len(values) != len(names) or any(v is None for v in values):
                raise SpecError(
                    config_path,
                    None,
                    "reward_weights",
                    f"expected a list of {len(names)} numbers, one per reward function "
                    f"({', '.join(names)}), got {shown(raw)}",
                )
            weights = np.array(values, dtype=float)
            notes.append(
                f"reward weights: reward_weights of {config_path}, in the order of the reward columns"
            )
    else:
        notes.append("reward weights: not known (no --reward-weights, no config with reward_weights)")
    if aggregation is not None:
        notes.append(f"aggregation: {aggregation}, as given with --aggregation")
        return weights, aggregation
    if config_path is not None and "multi_objective_aggregation" in config:
        value = config["multi_objective_aggregation"]
        if value not in AGGREGATIONS:
            raise SpecError(
                config_path,
                None,
                "multi_objective_aggregation",
                f"expected one of {', '.join(AGGREGATIONS)}, got {shown(value)}",
            )
        notes.append(f"aggregation: {value}, multi_objective_aggregation of {config_path}")
        return weights, value
    if config_path is not None:
        notes.append(
            f"aggregation: sum_then_normalize ({config_path} has no multi_objective_aggregation: "
            "TRL before that option always weighed and summed first)"
        )
        return weights, "sum_then_normalize"
    notes.append("aggregation: not known (no --aggregation, no config)")
    return weights, None


def read_trl(
    files: Sequence[Path],
    *,
    reward_columns: Mapping[str, str] | None = None,
    reward_weights: Mapping[str, float] | None = None,
    aggregation: str | None = None,
    trainer_config: Path | None = None,
) -> RewardLog:
    """A TRL run's logged completions (``completions_{step:05d}.parquet``) as a :class:`RewardLog`.

    Parameters
    ----------
    files : the parquet files of one run, in step order (:func:`log_inputs` expands a folder).
    reward_columns : reward name -> column (``--reward-col``). Default: the names given in
        ``reward_weights``, else the ``rewards/{name}/mean`` metrics of the run's
        ``trainer_state.json``, else every numeric column but ``step`` and ``advantage``.
    reward_weights : reward name -> TRL ``reward_weights`` entry; default from the config.
    aggregation : one of :data:`AGGREGATIONS`; default from the config.
    trainer_config : a JSON dump of the run's ``GRPOConfig``; default ``training_args.json``
        (or a ``config.json`` with those fields) in the output folder.

    Notes
    -----
    Read: ``step``, ``prompt``, ``completion`` and the reward columns. Ignored: ``advantage``
    (GRPO's group-normalised weighted sum, a training signal, not a reward), the
    ``log_extra`` columns and pandas' ``__index_level_*`` columns. A row's line in messages is
    its 1-based row in the file. A step in the ``step`` column must match the file name's.
    """
    if aggregation is not None and aggregation not in AGGREGATIONS:
        raise RlhfMechError(f"--aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
    pa, pq = _pyarrow(files[0])
    run = _run_folder(files)
    notes: list[str] = []
    schemas = []
    for path in files:
        if path.suffix.lower() != ".parquet":
            raise SpecError(path, None, "", "expected a .parquet file (TRL's completions_{step:05d}.parquet)")
        schemas.append(_parquet(pa, path, pq.read_schema))
    columns = _trl_reward_columns(pa, files[0], schemas[0], run, reward_columns, reward_weights, notes)
    names = tuple(columns)
    bad = next((n for n in names if not is_name(n)), None)
    if bad is not None:
        raise RlhfMechError(
            f"the reward name {shown(bad)} cannot be written to a game file; use --reward-col"
        )
    config_path, config = _trl_config(run, trainer_config)
    weights, combined = _trl_weights(names, reward_weights, aggregation, config_path, config, notes)
    steps, prompts, responses, rewards, source, lines = [], [], [], [], [], []
    ignored: dict[str, None] = {}
    for f, (path, schema) in enumerate(zip(files, schemas, strict=True)):
        _check_schema(pa, path, schema, tuple(columns.values()))
        ignored.update(dict.fromkeys(n for n in schema.names if n not in (*_TRL_REQUIRED, *columns.values())))
        wanted = [*_TRL_REQUIRED, *dict.fromkeys(columns.values())]
        table = _parquet(pa, path, pq.read_table, columns=wanted)
        if not table.num_rows:
            raise SpecError(path, None, "", "the file has no rows")
        file_steps = _numbers(path, table.column("step"), "step").astype(np.int64)  # integers (schema)
        named = TRL_FILE.fullmatch(path.name)
        if named and (off := np.flatnonzero(file_steps != int(named[1]))).size:
            r = int(off[0])
            raise SpecError(
                path, r + 1, "step", f"step {int(file_steps[r])} in the file of step {int(named[1])}"
            )
        steps.append(file_steps)
        prompts += _texts(path, table.column("prompt"), "prompt")
        responses += _texts(path, table.column("completion"), "completion")
        rewards.append(
            np.column_stack([_numbers(path, table.column(c), c, _NONE_HINT) for c in columns.values()])
        )
        source.append(np.full(table.num_rows, f, dtype=np.intp))
        lines.append(np.arange(1, table.num_rows + 1))
    if ignored:
        notes.append(
            f"ignored columns: {', '.join(ignored)} (advantage and log_extra values are not rewards)"
        )
    return RewardLog(
        trainer="trl",
        reward_names=names,
        reward_columns=tuple(columns.values()),
        prompts=tuple(prompts),
        responses=tuple(responses),
        rewards=np.concatenate(rewards),
        row_steps=np.concatenate(steps),
        files=tuple(files),
        source=np.concatenate(source),
        lines=np.concatenate(lines),
        file_columns=tuple(tuple(s.names) for s in schemas),
        reward_weights=weights,
        aggregation=combined,
        notes=tuple(notes),
    )
