"""A TRL run's folder besides its completions: the run's ``output_dir``, its config
(``training_args.json``: ``reward_weights``, ``multi_objective_aggregation``) and
``trainer_state.json`` (which steps were evaluations, the reward functions' names), as
:mod:`rlhf_mech.files._logs._trl` reads them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhf_mech.errors import RlhfMechError, printable
from rlhf_mech.files._tables import json_problem, located, parse_json


def _p(path: Path | str) -> str:
    """A path as messages show it (control characters escaped)."""
    return printable(str(path))


def run_folder(files: Sequence[Path]) -> Path:
    """The run's ``output_dir``: the folder above ``completions/`` (or the files' own folder).

    Raises
    ------
    RlhfMechError
        for files of two runs.
    """
    folders = {f.parent.parent if f.parent.name == "completions" else f.parent for f in files}
    if len(folders) > 1:
        raise RlhfMechError(
            f"the files come from {len(folders)} runs ({', '.join(sorted(map(_p, folders)))}); "
            "import one run at a time"
        )
    return folders.pop()


def _json_object(path: Path) -> dict[str, Any]:
    """A JSON file holding one object (strict: no repeated key, no NaN literal)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise located(_p(path), None, "", f"not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise located(
            _p(path), None, "", f"cannot read the file: {printable(exc.strerror or str(exc))}"
        ) from None
    try:
        data = parse_json(text)
    except json.JSONDecodeError as exc:
        raise located(_p(path), exc.lineno, "", json_problem(exc)) from None
    except (ValueError, RecursionError) as exc:
        raise located(_p(path), None, "", json_problem(exc)) from None
    if not isinstance(data, dict):
        raise located(_p(path), 1, "", "expected a JSON object")
    return data


#: The names a JSON dump of the run's GRPOConfig is looked for under, in the output folder.
TRL_CONFIG_NAMES = ("training_args.json", "config.json")
_TRL_CONFIG_KEYS = ("reward_weights", "multi_objective_aggregation")


def trl_config(run: Path, given: Path | None) -> tuple[Path | None, dict[str, Any]]:
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


@dataclass(frozen=True)
class TrainerState:
    """What ``trainer_state.json`` says about the run (``TrainerState.save_to_json``).

    Attributes
    ----------
    path : the file; global_step : the step it was saved at.
    reward_names : the reward functions' names (``rewards/NAME/mean``), alphabetical: the file
        is written with ``sort_keys=True``, so this is never the trainer's order.
    eval_steps : steps with an ``eval_*`` entry in ``log_history`` (an evaluation ran there).
    logged_steps : steps with a training entry (``loss``).
    logging_steps : the run's ``logging_steps``, when recorded.
    """

    path: Path
    global_step: int | None
    reward_names: frozenset[str]
    eval_steps: frozenset[int]
    logged_steps: frozenset[int]
    logging_steps: int | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def trainer_state(run: Path) -> TrainerState | None:
    """The run's ``trainer_state.json`` (``save_state()``), else the latest checkpoint's."""
    checkpoints = [p for p in run.glob("checkpoint-*/trainer_state.json") if p.parent.name[11:].isdigit()]
    candidates = [run / "trainer_state.json", *sorted(checkpoints, key=lambda p: -int(p.parent.name[11:]))]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        return None
    data = _json_object(path)
    history = data.get("log_history")
    names: set[str] = set()
    evals: set[int] = set()
    logged: set[int] = set()
    for entry in history if isinstance(history, list) else ():
        if not isinstance(entry, dict):
            continue
        step = _int(entry.get("step"))
        for key in entry:
            if match := _REWARD_METRIC.fullmatch(str(key)):
                names.add(match[1])
        if step is None:
            continue
        if any(str(k).startswith("eval_") for k in entry):
            evals.add(step)
        elif "loss" in entry:
            logged.add(step)
    return TrainerState(
        path,
        _int(data.get("global_step")),
        frozenset(names),
        frozenset(evals),
        frozenset(logged),
        _int(data.get("logging_steps")),
        data,
    )
