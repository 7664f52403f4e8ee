"""TRL and OpenRLHF logs -> a game of many prompts (:class:`~rlhf_mech.core.PromptGame`).

A log holds, per prompt ``x``, responses sampled from a policy and each reward model's
reward for each. The game has one outcome set per prompt (the paper's model is per prompt,
section 2; prompts are never flattened into one outcome set):

* outcomes of prompt ``x``: its distinct responses at the step used, in log order
  (``x0, x1, ...``); the initial distribution: how often each was sampled,
  ``pi_init(y | x) = count(y) / k_x`` (repeated samples counted, not dropped). Only samples
  of the initial model estimate ``pi_init``: TRL's completions at step 0 are; another step
  is used only when asked for (``--step``), and rows of several steps are never mixed;
* reward model ``k`` on prompt ``x``: its rewards of those responses, shifted to be
  non-negative where one is negative and divided by their sum (or maximum): section 2's
  normalisation, per prompt. A reward model that gives every response of a prompt 0 ranks
  nothing there: it becomes the uniform reward on that prompt, and the steps say on how
  many prompts;
* groups: one per reward model (size 1) unless ``--group`` combines them; the trainer's own
  ``reward_weights`` are shown with the ``--group`` option that makes them one group's
  preference;
* prompt weights: uniform (each prompt of the log counts the same).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rlhf_mech.core import (
    Game,
    Mechanism,
    Normalization,
    Profile,
    PromptGame,
)
from rlhf_mech.errors import SpecError
from rlhf_mech.files._importer import (
    FileSummary,
    GroupOption,
    ImportResult,
    _exact_simplex,
    _group_arrays,
    check_response_options,
    column_stats,
    combine_rewards,
    normalise_rewards,
)
from rlhf_mech.files._logs._layouts import LogInputs
from rlhf_mech.files._logs._record import RewardLog, group_by_prompt, select_step

#: Relative difference above which two rewards of one repeated response disagree.
REPEAT_TOL = 1e-9


def _one_step(log: RewardLog, notes: list[str]) -> RewardLog:
    """The rows whose responses are samples of ``pi_init``: the only step, or step 0."""
    steps = log.steps
    if len(steps) <= 1:
        if steps and steps[0] != 0:
            notes.append(
                f"initial distribution: the samples of step {steps[0]}, the only step read (the policy "
                "at that step stands for the initial model)"
            )
        return log
    if 0 in steps:
        notes.append(
            f"initial distribution: the samples of step 0 (the initial model); steps "
            f"{', '.join(map(str, steps[1:]))} are not used (--step N for another)"
        )
        return select_step(log, 0)
    return select_step(log)  # refuses, listing the steps


def _per_prompt_rewards(
    log: RewardLog, rows: np.ndarray, normalization: Normalization, counts: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(m,) pi_init and (K, m) normalised rewards of one prompt's rows, and the (m,) first
    row of each distinct response."""
    responses = [log.responses[r] for r in rows]
    index: dict[str, int] = {}
    of_row = np.array([index.setdefault(y, len(index)) for y in responses])
    m = len(index)
    first = rows[np.unique(of_row, return_index=True)[1]]  # codes run 0..m-1 in order of first sight
    raw = log.rewards[first].T  # (K, m): each distinct response's rewards
    repeats = log.rewards[rows] - raw[:, of_row].T
    bad = np.argwhere(np.abs(repeats) > REPEAT_TOL * (1.0 + np.abs(log.rewards[rows])))
    if bad.size:
        position, k = (int(v) for v in bad[0])
        r = int(rows[position])
        raise SpecError(
            log.files[int(log.source[r])],
            int(log.lines[r]),
            log.reward_columns[k],
            f"the response of line {log.lines[first[of_row[position]]]} again, with another reward "
            f"{log.rewards[r, k]!r} (was {raw[k, of_row[position]]!r}): a repeated response must get "
            "the same reward to be one outcome",
        )
    pi_init = _exact_simplex(np.bincount(of_row, minlength=m).astype(float))
    rewards = np.empty_like(raw)
    uniform = np.full(m, 1.0 / m) if normalization is Normalization.SUM else np.ones(m)
    for k, name in enumerate(log.reward_names):
        try:
            rewards[k] = normalise_rewards(raw[k], normalization)[0]
        except ValueError:  # 0 on every response of the prompt: it ranks nothing here
            rewards[k] = uniform
            counts[name] = counts.get(name, 0) + 1
    return pi_init, rewards, first


def _default_name(inputs: LogInputs) -> str:
    """The single file's stem, or the run's folder (TRL: the ``output_dir`` above ``completions/``)."""
    if len(inputs.files) == 1:
        return inputs.files[0].stem
    folder = Path(os.path.commonpath([str(f.resolve()) for f in inputs.files]))
    if folder.name == "completions":
        folder = folder.parent
    return folder.name or "log"


def import_prompts(
    log: RewardLog,
    inputs: LogInputs,
    *,
    groups: Sequence[GroupOption] = (),
    normalization: Normalization | str = Normalization.SUM,
    divergence: str = "kl",
    lam: float = 1.0,
    payment_rule: str = "affine_maximizer",
    name: str | None = None,
) -> ImportResult:
    """The game of many prompts of a TRL or OpenRLHF log (module docstring).

    Raises
    ------
    SpecError
        at the line of a row that cannot be used (a repeated response with another reward,
        rows of several steps without step 0).
    RlhfMechError
        for an option that does not fit (normalisation, divergence, lambda, groups).
    """
    normalization, divergence = check_response_options(normalization, divergence, lam)
    steps: list[str] = []
    log = _one_step(log, steps)
    by_prompt = group_by_prompt(log)
    models = log.reward_names
    group_names, prefs, sizes = _group_arrays(groups, models, steps)
    if log.reward_weights is not None and not groups:
        weights = ",".join(f"{m}={w:g}" for m, w in zip(models, log.reward_weights, strict=True))
        steps.append(
            f"the trainer weighted the rewards {weights} ({log.aggregation or 'aggregation unknown'}): "
            f"--group trainer:1:{weights} makes that one group's preference"
        )
    flat_counts: dict[str, int] = {}
    games = []
    game_name = name or _default_name(inputs)
    mechanism_args = {"divergence": divergence, "lam": lam, "payment_rule": payment_rule}
    repeated = 0
    for x, (a, b) in enumerate(zip(by_prompt.offsets[:-1], by_prompt.offsets[1:], strict=True)):
        rows = by_prompt.rows[a:b]
        pi_init, normalised, first = _per_prompt_rewards(log, rows, normalization, flat_counts)
        repeated += rows.size - first.size
        truth = Profile(combine_rewards(prefs, normalised, normalization), sizes)
        games.append(
            Game(
                name=f"{game_name} [prompt {x}]",
                outcomes=tuple(f"x{j}" for j in range(first.size)),
                group_names=group_names,
                mechanism=Mechanism(pi_init=pi_init, **mechanism_args),
                normalization=normalization,
                truth=truth,
                reports=truth,
                part=f"prompt {x}",
            )
        )
    P = len(games)
    outcomes = sum(g.n_outcomes for g in games)
    steps.append(
        f"prompts: {P}, in sorted order; outcomes of a prompt: its {outcomes / P:.3g} distinct responses on "
        f"average ({outcomes} in all), x{{j}} the j-th in log order; prompt weights uniform (1/{P})"
    )
    steps.append(
        "initial distribution of a prompt: how often each response was sampled"
        + (
            f" ({repeated} repeated samples counted)"
            if repeated
            else " (every response sampled once: uniform)"
        )
    )
    steps.append(
        f"rewards: per prompt and reward model, shifted to be >= 0 where negative and divided by their "
        f"{normalization.value} (section 2)"
    )
    for model, count in flat_counts.items():
        steps.append(f"reward {model} is 0 on every response of {count} of {P} prompts: uniform there")
    columns = ", ".join(f"{m} = {c}" for m, c in zip(models, log.reward_columns, strict=True))
    files = []
    provenance = [f"trainer: {log.trainer}; {P} prompts; {log.n_rows} responses; reward models {columns}"]
    counts = log.file_rows()
    for f, path in enumerate(log.files):
        mine = log.source == f
        used = tuple(
            column_stats(column, f"reward {model}", log.rewards[mine, k])
            for k, (model, column) in enumerate(zip(models, log.reward_columns, strict=True))
        )
        files.append(FileSummary(path, int(counts[f]), log.file_columns[f], used))
        step = "" if log.row_steps is None else f", step {int(log.row_steps[mine][0])}"
        provenance.append(f"{path}: {int(counts[f])} rows{step}")
    game = PromptGame.from_games(game_name, by_prompt.prompts, games, np.full(P, 1.0 / P))
    return ImportResult(
        game=game,
        kind="prompts",
        reward_columns=dict(zip(models, log.reward_columns, strict=True)),
        files=tuple(files),
        candidates=(),
        steps=tuple([*log.notes, *steps]),
        provenance=tuple(provenance),
    )
