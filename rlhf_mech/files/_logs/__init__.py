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

from rlhf_mech.errors import RlhfMechError, printable, shown
from rlhf_mech.files._importer import (
    GameOptions,
    GroupOption,
    ImportResult,
    check_candidate_options,
    import_files,
    parse_group_option,
)
from rlhf_mech.files._logs._evalcsv import import_eval_candidates, read_eval_csvs
from rlhf_mech.files._logs._layouts import LogInputs, check_layout_options, log_inputs
from rlhf_mech.files._logs._openrlhf import read_openrlhf
from rlhf_mech.files._logs._prompts import import_prompts
from rlhf_mech.files._logs._record import AGGREGATIONS, RewardLog, parse_steps, select_step, steps_in
from rlhf_mech.files._logs._training import StepAudit, StepGame, audit_steps, import_steps
from rlhf_mech.files._logs._trl import read_trl
from rlhf_mech.files.spec._document import NAME_RULE, is_name


@dataclass(frozen=True)
class LogImport:
    """What ``rlhf-mech import`` read and built.

    Attributes
    ----------
    inputs : the files and the layout they were read as.
    log : the responses read (TRL, OpenRLHF, MOD, RiC); ``None`` for the generic tables.
    result : the game: of many prompts for TRL and OpenRLHF logs
        (:func:`~rlhf_mech.files._logs._prompts.import_prompts`), candidate models for MOD and
        RiC, as the options say for csv and jsonl; ``None`` with several steps.
    steps : with ``--step all`` (or a range of several steps), one game per step.
    """

    inputs: LogInputs
    log: RewardLog | None
    result: ImportResult | None
    steps: tuple[StepGame, ...] = ()


@dataclass(frozen=True)
class LogOptions:
    """The options of ``import`` that say how to read a log (``None``: not given)."""

    reward_columns: Mapping[str, str] | None = None
    reward_names: tuple[str, ...] | None = None
    reward_weights: Mapping[str, float] | Sequence[float] | None = None
    aggregation: str | None = None
    step: int | str | None = None
    trainer_config: Path | None = None
    table: Mapping[str, Any] = field(default_factory=dict)


def _read_trl(inputs: LogInputs, options: LogOptions) -> RewardLog:
    return read_trl(
        inputs.files,
        reward_columns=options.reward_columns,
        reward_weights=options.reward_weights,
        aggregation=options.aggregation,
        trainer_config=options.trainer_config,
    )


def per_step(step: int | str | None) -> bool:
    """Whether ``--step`` asks for one game per step (``all``, or a range such as ``2-5``)."""
    if step is None:
        return False
    chosen = parse_steps(str(step))
    return chosen is None or chosen[0] != chosen[1]


def chosen_steps(log: RewardLog, step: int | str | None) -> tuple[int, ...] | None:
    """The steps ``--step`` names in the log (``None``: not given)."""
    if step is None:
        return None
    return steps_in(log, parse_steps(str(step)))


def _read_eval(inputs: LogInputs, options: LogOptions) -> RewardLog:
    return read_eval_csvs(inputs.files, trainer=inputs.layout.name, reward_names=options.reward_names)


def _read_openrlhf(inputs: LogInputs, options: LogOptions) -> RewardLog:
    return read_openrlhf(inputs.files, inputs.labels, inputs.ranks or None)


#: The reader of each response-level layout.
_READERS: dict[str, Callable[[LogInputs, LogOptions], RewardLog]] = {
    "trl": _read_trl,
    "openrlhf": _read_openrlhf,
    "mod": _read_eval,
    "rs": _read_eval,
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
    log = reader(inputs, options)
    steps = chosen_steps(log, options.step)
    if steps is not None and len(steps) == 1:
        return select_step(log, steps[0])
    if steps is not None and len(steps) < len(log.steps):
        return _steps_of(log, steps)
    return log


def _steps_of(log: RewardLog, steps: Sequence[int]) -> RewardLog:
    """The rows of the given steps (a range of ``--step``)."""
    import numpy as np

    from rlhf_mech.files._logs._record import _take

    assert log.row_steps is not None
    rows = np.flatnonzero(np.isin(log.row_steps, steps))
    return _take(log, rows, (f"steps {', '.join(map(str, steps))}: {rows.size} rows of {log.n_rows}",))


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
    if builds == "table":
        result = import_files(
            inputs.files,
            reward_columns=options.reward_columns,
            groups=groups,
            scale=scale,
            lam=lam,
            payment_rule=payment_rule,
            name=name,
            **options.table,
        )
        return LogImport(inputs, None, result)
    game = GameOptions(groups, lam, payment_rule, name)
    if builds == "candidates":
        check_candidate_options(scale, lam)
    log = read_log(inputs, options)
    if builds == "candidates":
        return LogImport(inputs, log, import_eval_candidates(log, inputs, scale=scale, options=game))
    if not build:
        return LogImport(inputs, log, None)
    building = {key: options.table[key] for key in ("normalization", "divergence") if key in options.table}
    if per_step(options.step):
        return LogImport(inputs, log, None, import_steps(log, inputs, log.steps, options=game, **building))
    return LogImport(inputs, log, import_prompts(log, inputs, options=game, **building))


@dataclass(frozen=True)
class ImportRequest:
    """Everything ``rlhf-mech import`` was asked for.

    Attributes
    ----------
    files : the log files or folders, as given (``NAME=FILE`` names an OpenRLHF reward model).
    output : the game file to write; ``-`` for standard output; ``None`` with ``inspect``.
    layout : ``--from``, or ``None`` to detect it.
    inspect : read the files and build nothing.
    force : overwrite ``output``.
    options : how to read the log (:class:`LogOptions`).
    given : the layout-specific options given on the command line (``--step``, ...), which
        :func:`~rlhf_mech.files.check_layout_options` checks against the layout.
    groups : the ``--group NAME:SIZE:PREF`` texts; scale, lam, payment_rule, name : the game's.
    prompt_table : where a game of many prompts keeps its prompts (``--prompt-table``:
        :func:`~rlhf_mech.files._writer.table_suffix`).
    """

    files: tuple[str, ...]
    output: Path | None
    layout: str | None = None
    inspect: bool = False
    force: bool = False
    options: LogOptions = field(default_factory=LogOptions)
    given: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    scale: str = "minmax"
    lam: float = 1.0
    payment_rule: str = "affine_maximizer"
    name: str | None = None
    prompt_table: str = "auto"

    @property
    def to_stdout(self) -> bool:
        return str(self.output) == "-"


@dataclass(frozen=True)
class ImportRun:
    """What one ``rlhf-mech import`` did.

    Attributes
    ----------
    request : what was asked; imported : what was read and built.
    written : the files written, or where the game went (``standard output``, ``nothing``).
    text : the game file's text when it goes to standard output (the command writes it).
    training : with several steps, each step's audit (:func:`audit_steps`), in step order.
    """

    request: ImportRequest
    imported: LogImport
    written: tuple[Path, ...] | str
    text: str | None = None
    training: tuple[StepAudit, ...] = ()


def _check_names(request: ImportRequest) -> None:
    """The registry names of the request, before any file is read."""
    from rlhf_mech.core import Scale, get_payment_rule
    from rlhf_mech.core._internal import FILE_NORMALIZATIONS
    from rlhf_mech.files._writer import TABLE_CHOICES

    table = request.options.table
    named = (
        ("--scale", request.scale, tuple(s.value for s in Scale)),
        ("--normalization", table.get("normalization", "sum"), tuple(n.value for n in FILE_NORMALIZATIONS)),
        ("--aggregation", request.options.aggregation, (None, *AGGREGATIONS)),
        ("--prompt-table", request.prompt_table, TABLE_CHOICES),
    )
    for option, value, valid in named:
        if value not in valid:
            listed = ", ".join(str(v) for v in valid if v is not None)
            raise RlhfMechError(f"{option} must be one of {listed}, got {shown(value)}")
    try:
        get_payment_rule(request.payment_rule)
    except ValueError as exc:
        raise RlhfMechError(f"--payment: {exc}") from None
    if request.name is not None and not is_name(request.name):
        raise RlhfMechError(f"--name {shown(request.name)}: a game's name {NAME_RULE}")
    if request.options.step is not None:
        parse_steps(str(request.options.step))


def _round_trip(written: Sequence[Path] | None, name: str, text: str | None = None) -> None:
    """The game just written loads back (``rlhf-mech solve`` will accept it).

    Raises
    ------
    RlhfMechError
        naming what the loader refused; the files just written are removed.
    """
    from rlhf_mech.files.spec import load_game

    try:
        if text is not None:
            load_game(name, text)
        else:
            assert written
            load_game(written[0])
    except RlhfMechError as exc:
        for path in written or ():
            path.unlink(missing_ok=True)
        raise RlhfMechError(
            f"the game built does not load back, so nothing was written: {printable(exc.lines()[0])}"
        ) from None


def _write_steps(request: ImportRequest, imported: LogImport) -> ImportRun:
    """One game file per step into the folder ``request.output``, and the table over training."""
    from rlhf_mech.files._writer import write_game

    folder = request.output
    assert folder is not None
    if request.to_stdout:
        raise RlhfMechError("--step with several steps writes one game per step: give -o FOLDER, not -")
    if folder.exists() and not folder.is_dir():
        raise RlhfMechError(f"{printable(str(folder))} is a file; with several steps -o names a folder")
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for one in imported.steps:
        target = folder / f"step-{one.step:05d}.yaml"
        if target.exists() and not request.force:
            raise RlhfMechError(f"{printable(str(target))} exists; pass --force to overwrite it")
        comment = "\n".join(
            ["Written by rlhf-mech import from " + ", ".join(request.files), *one.result.provenance]
        )
        paths = tuple(write_game(one.result.game, target, comment=comment, table=request.prompt_table))
        _round_trip(paths, str(target))
        written += paths
    training = audit_steps(imported.steps)
    return ImportRun(request, imported, tuple(written), training=training)


def run_import(request: ImportRequest) -> ImportRun:
    """Read the logs, build the game and write it, as ``request`` says.

    With several steps (``--step all`` or a range), ``request.output`` is a folder: one game
    file per step (``step-00001.yaml``), and :attr:`ImportRun.training` holds each step's audit.
    An import that returns has written files that load back (:func:`load_game`).

    Raises
    ------
    RlhfMechError
        for a missing ``--output``, an output that exists without ``force``, an option that
        does not belong to the layout, any problem of the files (at its line), or a game the
        game-file format cannot hold.
    """
    from rlhf_mech.files._writer import game_text, write_game

    _check_names(request)
    output = request.output
    if output is None and not request.inspect:
        raise RlhfMechError("give -o/--output GAME.yaml (or --inspect to read without writing)")
    inputs = log_inputs(request.files, request.layout)
    check_layout_options(inputs, request.given)
    several = per_step(request.options.step)
    if (
        output is not None
        and not (request.to_stdout or request.force or request.inspect or several)
        and output.exists()
    ):
        raise RlhfMechError(f"{printable(str(output))} exists; pass --force to overwrite it")
    imported = import_logs(
        inputs,
        request.options,
        groups=[parse_group_option(g) for g in request.groups],
        scale=request.scale,
        lam=request.lam,
        payment_rule=request.payment_rule,
        name=request.name,
        build=not request.inspect,
    )
    if several and not request.inspect and output is not None:
        return _write_steps(request, imported)
    result = imported.result
    if result is None or request.inspect or output is None:
        return ImportRun(request, imported, "nothing (--inspect)")
    comment = "\n".join(["Written by rlhf-mech import from " + ", ".join(request.files), *result.provenance])
    if request.to_stdout:
        text = game_text(result.game, comment=comment)
        _round_trip(None, "<standard output>", text)
        return ImportRun(request, imported, "standard output", text)
    paths = tuple(write_game(result.game, output, comment=comment, table=request.prompt_table))
    _round_trip(paths, str(output))
    return ImportRun(request, imported, paths)
