"""Readers of the reward logs RLHF trainers write (``rlhf-mech import --from ...``, issue 16).

Each reader takes one trainer's own layout, as that project's code writes it, and returns a
:class:`RewardLog`: one row per sampled response, with its prompt, its reward vector, its
training step and the file and line it was read from. The layouts (``--from``, or detected):

* ``trl``: TRL's ``GRPOTrainer`` with ``log_completions=True`` (``trl/trainer/grpo_trainer.py``,
  ``log``): at each logging step it builds ``{"step": [global_step] * n, "prompt": ...,
  "completion": ..., **rewards, **extra, "advantage": ...}`` and writes it with pandas to
  ``{output_dir}/completions/completions_{global_step:05d}.parquet``. ``rewards`` holds one
  column per reward function, named after the function (``__name__``, or the last part of a
  reward model's ``_name_or_path``), holding that function's raw, unweighted reward (NaN
  where the function returned ``None``). ``extra`` holds the values passed to ``log_extra``;
  the file keeps no boundary between reward and extra columns. The run's
  ``trainer_state.json`` does: its ``log_history`` has a key ``rewards/{name}/mean`` for each
  reward function. ``reward_weights`` and ``multi_objective_aggregation`` are fields of
  ``GRPOConfig``. The Trainer saves its arguments only as ``training_args.bin``, a pickle,
  which is never read here: unpickling runs code. They are read from a JSON dump of the config
  (``args.to_dict()``), given with ``--trainer-config`` or found as ``training_args.json`` (or a
  ``config.json`` holding those fields) in the output folder.
* ``mod`` and ``ric``: the evaluation scripts of srzer/MOD (``experiment-PPO/ppo/eval_ours.py``)
  and of Rewards-in-Context (``evaluation.py``). For each preference weighting ``w`` they write
  ``pd.DataFrame({"prompt", "response", "obtained_score1", ...}).to_csv(
  "eval_data_pref{w[0]}_{w[1]}[_{w[2]}].csv")``. The reward columns are numbered from 1, in the
  order of the run's ``--reward_names``. The first column is pandas' index, with an empty
  header. RiC also writes ``desired_score{i}`` beside each ``obtained_score{i}``: the target
  the model was conditioned on, not a reward.
* ``openrlhf``: OpenRLHF's ``batch_inference --eval_task rm`` (``openrlhf/cli/batch_inference.py``,
  ``batch_rm_inference``) writes one JSONL file per reward model, one line
  ``{"input": prompt, "output": response, "reward": float}`` per scored pair. Each rank's lines
  are concatenated in rank order, and a ``DistributedSampler`` shuffles them, so the files are
  joined on ``(input, output)`` and never on line order.
* ``csv`` and ``jsonl``: the generic tables of :mod:`rlhf_mech.files._importer`, unchanged.

MOD and RiC files become candidate-model games: one candidate per file, that is, per
preference weighting. :func:`import_logs` builds them with the candidate importer. TRL and
OpenRLHF logs hold many prompts and, for TRL, many steps. A game made from them has one outcome
set per prompt, with ``pi_init`` estimated from the samples of one step (section 2: "our
theoretical model operates on each prompt independently"). :class:`RewardLog`,
:func:`select_step` and :func:`group_by_prompt` are what such a game is built from.

Every problem in a file raises :class:`~rlhf_mech.errors.SpecError` naming the file, the line
(for parquet files: the 1-based row) and the column. Nothing here prints or writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhf_mech.errors import RlhfMechError
from rlhf_mech.files._importer import (
    GroupOption,
    ImportResult,
    check_candidate_options,
    import_files,
)
from rlhf_mech.files._logs._evalcsv import import_eval_candidates, read_eval_csvs
from rlhf_mech.files._logs._layouts import LogInputs
from rlhf_mech.files._logs._openrlhf import read_openrlhf
from rlhf_mech.files._logs._prompts import import_prompts
from rlhf_mech.files._logs._record import RewardLog, select_step
from rlhf_mech.files._logs._trl import read_trl


@dataclass(frozen=True)
class LogImport:
    """What ``rlhf-mech import`` read and built.

    Attributes
    ----------
    inputs : the files and the layout they were read as.
    log : the responses read (TRL, OpenRLHF, MOD, RiC); ``None`` for the generic tables.
    result : the game: of many prompts for TRL and OpenRLHF logs
        (:func:`~rlhf_mech.files._logs._prompts.import_prompts`), candidate models for MOD and
        RiC, as the options say for csv and jsonl.
    """

    inputs: LogInputs
    log: RewardLog | None
    result: ImportResult | None


@dataclass(frozen=True)
class LogOptions:
    """The options of ``import`` that say how to read a log (``None``: not given)."""

    reward_columns: Mapping[str, str] | None = None
    reward_names: tuple[str, ...] | None = None
    reward_weights: Mapping[str, float] | None = None
    aggregation: str | None = None
    step: int | None = None
    trainer_config: Path | None = None
    table: Mapping[str, Any] = field(default_factory=dict)


def _read_trl(inputs: LogInputs, options: LogOptions) -> RewardLog:
    log = read_trl(
        inputs.files,
        reward_columns=options.reward_columns,
        reward_weights=options.reward_weights,
        aggregation=options.aggregation,
        trainer_config=options.trainer_config,
    )
    return log if options.step is None else select_step(log, options.step)


def _read_eval(inputs: LogInputs, options: LogOptions) -> RewardLog:
    return read_eval_csvs(inputs.files, trainer=inputs.layout.name, reward_names=options.reward_names)


def _read_openrlhf(inputs: LogInputs, options: LogOptions) -> RewardLog:
    return read_openrlhf(inputs.files, inputs.labels)


#: The reader of each response-level layout.
_READERS: dict[str, Callable[[LogInputs, LogOptions], RewardLog]] = {
    "trl": _read_trl,
    "openrlhf": _read_openrlhf,
    "mod": _read_eval,
    "ric": _read_eval,
}


def read_log(inputs: LogInputs, options: LogOptions = LogOptions()) -> RewardLog:
    """The :class:`RewardLog` of the files, read as their layout says (TRL: one step when
    ``options.step`` is given).

    Raises
    ------
    RlhfMechError
        for the generic ``csv``/``jsonl`` layouts, which are tables, not logs.
    """
    reader = _READERS.get(inputs.layout.name)
    if reader is None:
        raise RlhfMechError(f"{inputs.layout.title} are read by the generic importer, not as a log")
    return reader(inputs, options)


def import_logs(
    inputs: LogInputs,
    options: LogOptions = LogOptions(),
    *,
    groups: Sequence[GroupOption] = (),
    scale: str = "minmax",
    lam: float = 1.0,
    payment_rule: str = "affine_maximizer",
    name: str | None = None,
    build: bool = True,
) -> LogImport:
    """Read the files as their layout says, and build the game (``build=False``: a TRL or
    OpenRLHF log is only read, for ``--inspect``).

    The layout's ``builds`` decides: ``table`` (csv, jsonl) goes to
    :func:`~rlhf_mech.files.import_files` with ``options.table`` (``kind``,
    ``candidate_column``, ``logratio_column``, ``logprob_column``, ``normalization``,
    ``divergence``); ``candidates`` (mod, ric) to :func:`import_eval_candidates`; ``prompts``
    (trl, openrlhf) to :func:`import_prompts` (``normalization`` and ``divergence`` from
    ``options.table``).
    """
    builds = inputs.layout.builds
    common = {"groups": groups, "scale": scale, "lam": lam, "payment_rule": payment_rule, "name": name}
    if builds == "table":
        result = import_files(inputs.files, reward_columns=options.reward_columns, **common, **options.table)
        return LogImport(inputs, None, result)
    if builds == "candidates":
        check_candidate_options(scale, lam)
    log = read_log(inputs, options)
    if builds == "candidates":
        return LogImport(inputs, log, import_eval_candidates(log, inputs, **common))
    if not build:
        return LogImport(inputs, log, None)
    table = options.table
    result = import_prompts(
        log,
        inputs,
        groups=groups,
        normalization=table.get("normalization", "sum"),
        divergence=table.get("divergence", "kl"),
        lam=lam,
        payment_rule=payment_rule,
        name=name,
    )
    return LogImport(inputs, log, result)
