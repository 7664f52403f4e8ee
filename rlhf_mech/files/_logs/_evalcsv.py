"""MOD and RiC evaluation CSVs -> :class:`RewardLog` -> a candidate-model game (one candidate per file)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from rlhf_mech.errors import RlhfMechError, printable
from rlhf_mech.files._importer import (
    GAME_DEFAULTS,
    CandidateSummary,
    FileSummary,
    GameOptions,
    ImportResult,
    assemble_candidates,
    check_names,
    column_stats,
)
from rlhf_mech.files._logs._layouts import DESIRED, EVAL_FILE, INDEX_COLUMN, OBTAINED, LogInputs
from rlhf_mech.files._logs._record import RewardLog
from rlhf_mech.files._tables import (
    EvalTable,
    finite_number,
    located,
    numeric_column,
    read_table,
    require_column,
)
from rlhf_mech.files.spec._document import is_name
from rlhf_mech.files.spec._schemas import SCORE_LIMIT


def preference_weights(path: Path) -> tuple[float, ...]:
    """The preference weighting in a MOD/RiC file name: ``eval_data_pref0.2_0.8.csv`` -> (0.2, 0.8).

    Raises
    ------
    SpecError
        for a name that is not ``eval_data_pref{w1}_{w2}[_{w3}...].csv`` with weights >= 0.
    """
    match = EVAL_FILE.fullmatch(path.name)
    weights = [finite_number(part) for part in match[1].split("_")] if match else [None]
    if any(w is None or w < 0 for w in weights):
        raise located(
            path,
            None,
            "",
            "file name: expected eval_data_pref{w1}_{w2}[_{w3}].csv with weights >= 0 (as the MOD and RiC "
            "evaluation scripts name their output)",
        )
    return tuple(float(w) for w in weights)  # type: ignore[arg-type]


def _numbered(table: EvalTable, pattern: re.Pattern[str], stem: str, why: str) -> list[str]:
    """The columns ``{stem}1 .. {stem}K`` of a table, checked to run from 1 without a gap."""
    numbers = sorted(int(m[1]) for c in table.columns if (m := pattern.fullmatch(c)))
    for i, number in enumerate(numbers, start=1):
        if number != i:
            raise located(
                table.path, 1, f"{stem}{i}", f"no column named '{stem}{i}' ({why} are numbered from 1)"
            )
    return [f"{stem}{i}" for i in range(1, len(numbers) + 1)]


def read_eval_csvs(
    files: Sequence[Path], *, trainer: str = "mod", reward_names: Sequence[str] | None = None
) -> RewardLog:
    """MOD or RiC evaluation CSVs (``eval_data_pref{w1}_{w2}[_{w3}].csv``) as a :class:`RewardLog`.

    Parameters
    ----------
    files : one file per preference weighting (their weights become :attr:`RewardLog.file_preferences`).
    trainer : ``mod``, ``rs`` (Rewarded Soups: the same files) or ``ric``; RiC files must
        hold ``desired_score{i}`` beside each ``obtained_score{i}``, and their prompts carry
        the score tags (``<rm1_score> 0.5``), removed here (:func:`untagged`).
    reward_names : the run's ``--reward_names`` in order, one per ``obtained_score{i}``;
        default ``score1 .. scoreK`` (the columns' own numbers).

    Notes
    -----
    Read: ``prompt``, ``response`` and ``obtained_score1 .. K`` (the reward models' scores of
    each response). Ignored: pandas' index column (empty header), RiC's ``desired_score{i}``
    (the score the response was conditioned to reach) and any other column.
    """
    if trainer not in ("mod", "rs", "ric"):
        raise ValueError("`trainer` must be 'mod', 'rs' or 'ric'")
    preferences = [preference_weights(path) for path in files]
    tables = [read_table(path) for path in files]
    notes: list[str] = []
    obtained: list[str] = []
    ignored: dict[str, str] = {}
    prompts: list[str] = []
    responses: list[str] = []
    rewards = []
    for f, table in enumerate(tables):
        for column in ("prompt", "response"):
            require_column(table, column)
        columns = _numbered(table, OBTAINED, "obtained_score", "the reward columns")
        if not columns:
            raise located(
                table.path, 1, "", "no obtained_score1 column: these are not MOD/RiC evaluation files"
            )
        if f == 0:
            obtained = columns
        elif columns != obtained:
            raise located(table.path, 1, "", f"{len(columns)} reward columns; {files[0]} has {len(obtained)}")
        desired = _numbered(table, DESIRED, "desired_score", "RiC's desired scores")
        if trainer == "ric" and len(desired) < len(obtained):
            missing = f"desired_score{len(desired) + 1}"
            raise located(table.path, 1, missing, f"no column named {missing!r} (RiC writes one per reward)")
        if len(preferences[f]) != len(obtained):
            raise located(
                table.path,
                None,
                "",
                f"file name: {len(preferences[f])} preference weights for {len(obtained)} reward columns",
            )
        for column in table.columns:
            if INDEX_COLUMN.fullmatch(column):
                ignored.setdefault(column or "the unnamed first column", "pandas' index")
            elif column in desired:
                ignored.setdefault(column, "the score the response was asked for, not a reward")
            elif column not in ("prompt", "response", *obtained):
                ignored.setdefault(column, "not part of the layout")
        texts = [str(row["prompt"]) for row in table.rows]
        if trainer == "ric":
            texts = [untagged(t, len(obtained)) for t in texts]
        prompts += texts
        responses += [str(row["response"]) for row in table.rows]
        scores = np.column_stack([numeric_column(table, c) for c in obtained])
        big = np.argwhere(np.abs(scores) > SCORE_LIMIT)
        if big.size:
            r, k = (int(v) for v in big[0])
            raise located(
                printable(str(table.path)),
                table.lines[r],
                obtained[k],
                f"{float(scores[r, k])!r} is beyond the {SCORE_LIMIT:g} a game file holds as a score",
            )
        rewards.append(scores)
    if reward_names is None:
        names = tuple(c.removeprefix("obtained_") for c in obtained)
        notes.append(
            f"reward models: {', '.join(names)} (columns {', '.join(obtained)}); the run's "
            "--reward_names go in --reward-names"
        )
    else:
        names = tuple(reward_names)
        if len(names) != len(obtained):
            raise RlhfMechError(
                f"--reward-names gives {len(names)} names; the files have {len(obtained)} reward columns "
                f"({', '.join(obtained)})"
            )
        notes.append(
            "reward models: "
            + ", ".join(f"{n} = {c}" for n, c in zip(names, obtained, strict=True))
            + " (--reward-names)"
        )
    if ignored:
        notes.append("ignored columns: " + "; ".join(f"{c} ({why})" for c, why in ignored.items()))
    if trainer == "ric":
        tagged = sum(len({str(row["prompt"]) for row in t.rows}) for t in tables)
        notes.append(
            f"prompts: the <rm1_score> .. <rm{len(obtained)}_score> tags RiC writes into each prompt (the "
            f"scores it asks for) removed: {tagged} tagged prompts over the files are "
            f"{len(set(prompts))} prompts"
        )
    return RewardLog(
        trainer=trainer,
        reward_names=names,
        reward_columns=tuple(obtained),
        prompts=tuple(prompts),
        responses=tuple(responses),
        rewards=np.concatenate(rewards),
        row_steps=None,
        files=tuple(files),
        source=np.repeat(np.arange(len(tables)), [t.n_rows for t in tables]),
        lines=np.concatenate([t.lines for t in tables]),
        file_columns=tuple(t.columns for t in tables),
        file_preferences=np.array(preferences),
        notes=tuple(notes),
    )


#: RiC's score tags in a prompt: ``<rm1_score> 0.5 <rm2_score> -0.3`` (``Instructions_n`` of
#: RiC's utils.py: the scores the model is asked to reach, different for every preference).
_SCORE_TAG = re.compile(r"\s*<rm(\d+)_score>\s*\S*")


def untagged(prompt: str, rewards: int) -> str:
    """A RiC prompt without its score tags: ``"X <rm1_score> 0.5 <rm2_score> 0.1 \n\nAssistant:"``
    -> ``"X \n\nAssistant:"`` (only tags ``<rm1_score>`` .. ``<rm{rewards}_score>``)."""
    return _SCORE_TAG.sub(lambda m: m[0] if not 1 <= int(m[1]) <= rewards else "", prompt)


def candidate_name(path: Path) -> str:
    """The candidate a MOD/RiC file stands for: ``eval_data_pref0.2_0.8.csv`` -> ``pref0.2_0.8``."""
    return path.stem.removeprefix("eval_data_")


def import_eval_candidates(
    log: RewardLog,
    inputs: LogInputs,
    *,
    scale: str = "minmax",
    options: GameOptions = GAME_DEFAULTS,
) -> ImportResult:
    """The candidate-model game of MOD/RiC evaluation files: one candidate per file.

    A candidate's score per reward model is the mean over its file's rows (Definition 3.1 with
    measured means, as :func:`~rlhf_mech.files.import_candidates` computes it); its divergence
    is 0 (the files hold no log-probabilities). The game is named after the run's folder
    unless ``options.name`` is given. The provenance (trainer, files, preference weights, rows) goes
    to :attr:`ImportResult.provenance`, for the game file's header comment.
    """
    assert log.file_preferences is not None
    counts = log.file_rows()
    ends = np.cumsum(counts)
    candidates: list[CandidateSummary] = []
    files: list[FileSummary] = []
    provenance = [
        f"source: {inputs.layout.title} ({inputs.reason}), {len(log.files)} files, {log.n_rows} responses "
        f"to {log.n_prompts} prompts",
        "reward models: "
        + ", ".join(f"{n} = {c}" for n, c in zip(log.reward_names, log.reward_columns, strict=True)),
    ]
    for f, path in enumerate(log.files):
        block = log.rewards[ends[f] - counts[f] : ends[f]]
        label = candidate_name(path)
        clash = next((c for c in candidates if c.name == label), None)
        if clash is not None:
            raise located(path, None, "", f"candidate {label!r} also in {clash.path}")
        candidates.append(CandidateSummary(label, path, int(counts[f]), block.mean(axis=0), None))
        used = tuple(
            column_stats(column, f"reward {model}", block[:, k])
            for k, (model, column) in enumerate(zip(log.reward_names, log.reward_columns, strict=True))
        )
        files.append(FileSummary(path, int(counts[f]), log.file_columns[f], used))
        weights = ", ".join(
            f"{m} {w:g}" for m, w in zip(log.reward_names, log.file_preferences[f], strict=True)
        )
        provenance.append(f"candidate {label}: {path}, {int(counts[f])} rows, preference weights {weights}")
    steps = [
        f"read as {inputs.layout.title} ({inputs.reason})",
        *log.notes,
        f"candidates: {len(candidates)}, one per file (a preference weighting, from its name); each "
        "score is the mean over the file's rows",
    ]
    folder = log.files[0].resolve().parent.name
    result = assemble_candidates(
        tuple(candidates),
        dict(zip(log.reward_names, log.reward_columns, strict=True)),
        tuple(files),
        scale=scale,
        options=replace(options, name=options.name or (folder if is_name(folder) else None)),
        steps=steps,
        provenance=tuple(provenance),
    )
    check_names(result.game)
    return result
