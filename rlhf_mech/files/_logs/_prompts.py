"""TRL and OpenRLHF logs -> a game of many prompts (:class:`~rlhf_mech.core.PromptGame`).

A log holds, per prompt ``x``, responses sampled from a policy and each reward model's
reward for each. The game has one outcome set per prompt (the paper's model is per prompt,
section 2; prompts are never flattened into one outcome set):

* outcomes of prompt ``x``: its distinct responses at the step used, in log order
  (``x0, x1, ...``); the initial distribution: how often each was sampled,
  ``pi_init(y | x) = count(y) / k_x`` (repeated samples counted, not dropped). Only samples
  of the initial model estimate ``pi_init``: TRL's training batch of step 1 (generated
  before the first update) or ``eval_on_start``'s evaluation at step 0 are; another step is
  used only when asked for (``--step``), and rows of several steps are never mixed. A
  response sampled twice whose rewards differ (a stochastic reward model) gets the mean of
  its rewards, and the steps say so;
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
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from rlhf_mech.core import (
    Mechanism,
    Normalization,
    Profile,
    PromptGame,
)
from rlhf_mech.errors import RlhfMechError, printable, shown
from rlhf_mech.files._importer import (
    GAME_DEFAULTS,
    ColumnStats,
    FileSummary,
    GameOptions,
    ImportResult,
    _group_arrays,
    check_response_options,
    column_stats,
    combine_rewards,
    exact_simplex,
    normalised_rows,
    robust_means,
)
from rlhf_mech.files._logs._layouts import LogInputs
from rlhf_mech.files._logs._record import (
    Array,
    PromptGroups,
    RewardLog,
    StepInfo,
    first_sight_codes,
    group_by_prompt,
    select_step,
)
from rlhf_mech.files._tables import located
from rlhf_mech.files.spec._document import NAME_RULE, is_name
from rlhf_mech.files.spec._prompts import MAX_PROMPTS
from rlhf_mech.files.spec._schemas import MAX_OUTCOMES


def initial_step(log: RewardLog) -> StepInfo | None:
    """The step whose samples stand for the initial model: step 1's training batch (the
    training prompts), else step 0's evaluation (``eval_on_start``: the eval prompts), else
    step 1 when no ``trainer_state.json`` says whether it was a training step."""
    info = {i.step: i for i in log.step_info}
    for step, roles in ((1, ("train",)), (0, ("eval",)), (1, ("train or eval",))):
        if step in info and info[step].role in roles:
            return info[step]
    return None


def _one_step(log: RewardLog, notes: list[str]) -> RewardLog:
    """The rows whose responses are samples of ``pi_init``: the only step, or the initial
    model's step (:func:`initial_step`)."""
    steps = log.steps
    if len(steps) <= 1:
        info = log.step(steps[0]) if steps else None
        if info is not None:
            notes.append(f"initial distribution: the samples of step {info.step}, {_standing(info)}")
        return log
    chosen = initial_step(log)
    if chosen is None:
        listed = "; ".join(f"{i.step}: {i.role}, {i.policy}" for i in log.step_info)
        raise RlhfMechError(
            f"the log holds {len(steps)} steps and none is a sample of the initial model ({listed}): "
            "choose one with --step, or --step all for one game per step"
        )
    others = [s for s in steps if s != chosen.step]
    notes.append(
        f"initial distribution: the samples of step {chosen.step}, {_standing(chosen)}; steps "
        f"{', '.join(map(str, others))} are not used (--step N for another, --step all for one game per step)"
    )
    return select_step(log, chosen.step)


def _standing(info: StepInfo) -> str:
    """What a step's samples stand for, and how sure that is, in words."""
    text = f"{info.role} completions of {info.stands_for}"
    if info.role == "train or eval" and info.step == 1:
        text += " (the initial model's if step 1 was a training step: " + info.why + ")"
    elif not info.initial:
        text += "; pi_init is estimated from them, not from the initial model's samples"
    return text


def _runs(lengths: Array) -> Iterator[tuple[int, Array, Array]]:
    """For each distinct length ``m`` of the consecutive runs ``lengths``: ``m``, which runs
    have it, and the (runs, m) positions of their entries. Arrays of one length stack into a
    (runs, ..., m) block whose reductions along the last axis are, bit for bit, those of each
    run alone (the same summation order)."""
    starts = np.cumsum(lengths) - lengths
    for m in np.unique(lengths):
        which = np.flatnonzero(lengths == m)
        yield int(m), which, starts[which, None] + np.arange(m)


def _distinct_responses(log: RewardLog, by_prompt: PromptGroups) -> tuple[Array, Array, Array]:
    """The outcomes of every prompt at once: per position of ``by_prompt.rows``, its outcome
    (0 .. U - 1, prompt by prompt, each prompt's distinct responses in log order); per
    outcome, the log row of its first sample and its prompt."""
    response, distinct = first_sight_codes(log.responses)
    prompt = np.repeat(np.arange(len(by_prompt.prompts)), by_prompt.sizes)
    _, first, inverse = np.unique(
        prompt * len(distinct) + response[by_prompt.rows], return_index=True, return_inverse=True
    )
    order = np.argsort(first)  # by first sight: prompt by prompt, log order within one
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    first = first[order]
    return rank[inverse], by_prompt.rows[first], prompt[first]


def _repeated_means(values: Array, outcome: Array, raw: Array) -> list[float]:
    """Give each response sampled more than once whose copies' rewards differ the mean of
    its rewards, in ``raw`` (U, K); ``values`` (N, K) are the positions' rewards and
    ``outcome`` (N,) their outcomes. Returns how far apart each such response's copies were
    (relative to their magnitude)."""
    copies = np.bincount(outcome, minlength=len(raw))
    at = np.flatnonzero(copies[outcome] > 1)
    at = at[np.argsort(outcome[at], kind="stable")]  # copy by copy, in log order
    runs = copies[copies > 1]
    if not at.size:
        return []
    starts = np.cumsum(runs) - runs
    mine = values[at]
    low, high = np.minimum.reduceat(mine, starts), np.maximum.reduceat(mine, starts)
    differ = (high > low).any(axis=1)
    which = outcome[at[starts]]
    for m, these, _ in _runs(runs[differ]):
        block = mine[starts[differ][these, None] + np.arange(m)]  # (r, m, K): copy by copy
        raw[which[differ][these]] = robust_means(np.ascontiguousarray(block.transpose(0, 2, 1)))
    scale = np.maximum(np.abs(low), np.abs(high))[differ]
    return list(np.max((high - low)[differ] / np.where(scale > 0, scale, 1.0), axis=1))


def _default_name(inputs: LogInputs) -> str:
    """The single file's stem, or the run's folder (TRL: the ``output_dir`` above ``completions/``)."""
    if len(inputs.files) == 1:
        return inputs.files[0].stem
    folder = Path(os.path.commonpath([str(f.resolve()) for f in inputs.files]))
    if folder.name == "completions":
        folder = folder.parent
    return folder.name if is_name(folder.name) else "log"


#: Longest prompt a game file holds (the loader's ``PromptSpec.prompt``), in characters.
PROMPT_CHARS = 1 << 20


def _check_writable(log: RewardLog, by_prompt: PromptGroups, name: str, outcomes: int) -> None:
    """What the game file will hold is what the loader accepts: a name without control
    characters, prompts of at most :data:`PROMPT_CHARS` characters, at most
    :data:`MAX_PROMPTS` prompts and :data:`MAX_OUTCOMES` outcomes.

    Raises
    ------
    RlhfMechError
        (a :class:`SpecError` at the row of a prompt) naming what does not fit.
    """
    if not is_name(name):
        raise RlhfMechError(f"the game name {shown(name)}: a name {NAME_RULE}; choose one with --name")
    long = next((p for p, text in enumerate(by_prompt.prompts) if len(text) > PROMPT_CHARS), None)
    if long is not None:
        r = int(by_prompt.rows[by_prompt.offsets[long]])
        raise located(
            printable(str(log.files[int(log.source[r])])),
            int(log.lines[r]),
            "prompt",
            f"the prompt is {len(by_prompt.prompts[long])} characters; a game file holds prompts of at most "
            f"{PROMPT_CHARS} (1 MiB)",
        )
    if len(by_prompt.prompts) > MAX_PROMPTS:
        raise RlhfMechError(
            f"{len(by_prompt.prompts)} prompts; a game file holds at most {MAX_PROMPTS}: import fewer "
            "steps or files"
        )
    if outcomes > MAX_OUTCOMES:
        raise RlhfMechError(f"{outcomes} outcomes in all prompts; a game file holds at most {MAX_OUTCOMES}")


def prompt_game(
    name: str,
    prompts: Sequence[str],
    offsets: Array,
    initial: Array,
    rewards: Array,
    *,
    group_names: tuple[str, ...],
    sizes: Array,
    normalization: Normalization,
    divergence: str = "kl",
    lam: float = 1.0,
    payment_rule: str = "affine_maximizer",
    sample_counts: Array | None = None,
) -> PromptGame:
    """The game of many prompts, truthful reports: prompt ``x`` has outcomes
    ``x0 .. x{m_x - 1}`` (``m_x = offsets[x + 1] - offsets[x]``), initial distribution
    ``initial[offsets[x]:offsets[x + 1]]`` and the groups' reward models the same columns of
    the (n, U) ``rewards``; prompt weights uniform. The one place the importers build a
    :class:`~rlhf_mech.core.PromptGame`."""
    truth = Profile(rewards, sizes)
    return PromptGame(
        name=name,
        prompts=tuple(prompts),
        group_names=group_names,
        mechanism=Mechanism(
            pi_init=initial[offsets[0] : offsets[1]],
            divergence=divergence,
            lam=lam,
            payment_rule=payment_rule,
        ),
        normalization=normalization,
        offsets=offsets,
        pi_init=initial,
        truth=truth,
        reports=truth,
        weights=np.full(len(offsets) - 1, 1.0 / (len(offsets) - 1)),
        sample_counts=sample_counts,
    )


def import_prompts(
    log: RewardLog,
    inputs: LogInputs,
    *,
    normalization: Normalization | str = Normalization.SUM,
    divergence: str = "kl",
    options: GameOptions = GAME_DEFAULTS,
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
    normalization, divergence = check_response_options(normalization, divergence, options.lam)
    steps: list[str] = []
    log = _one_step(log, steps)
    by_prompt = group_by_prompt(log)
    models = log.reward_names
    group_names, prefs, sizes = _group_arrays(options.groups, models, steps)
    if log.reward_weights is not None and not options.groups:
        weights = ",".join(f"{m}={w:g}" for m, w in zip(models, log.reward_weights, strict=True))
        steps.append(
            f"the trainer weighted the rewards {weights} ({log.aggregation or 'aggregation unknown'}): "
            f"--group trainer:1:{weights} makes that one group's preference"
        )
    game_name = options.name if options.name is not None else _default_name(inputs)
    outcome, first, prompt_of = _distinct_responses(log, by_prompt)
    P, U = len(by_prompt.prompts), len(first)
    raw = log.rewards[first]  # (U, K): each distinct response's rewards
    spread = _repeated_means(log.rewards[by_prompt.rows], outcome, raw)
    copies = np.bincount(outcome, minlength=U)
    pi_init, rewards = np.empty(U), np.empty((len(group_names), U))
    flat = np.zeros((P, len(models)), dtype=bool)  # reward model k gives every response of x 0
    for m, which, index in _runs(np.bincount(prompt_of, minlength=P)):
        pi_init[index] = exact_simplex(copies[index].astype(float))
        normalised, _, _, zero = normalised_rows(raw[index].transpose(0, 2, 1).copy(), normalization)
        normalised[zero] = 1.0 / m if normalization is Normalization.SUM else 1.0  # uniform there
        flat[which] = zero
        rewards[:, index] = combine_rewards(prefs, normalised, normalization).transpose(1, 0, 2)
    repeated = log.n_rows - U
    _check_writable(log, by_prompt, game_name, U)
    game = prompt_game(
        game_name,
        by_prompt.prompts,
        np.concatenate([[0], np.cumsum(np.bincount(prompt_of, minlength=P))]),
        pi_init,
        rewards,
        group_names=group_names,
        sizes=sizes,
        normalization=normalization,
        divergence=divergence,
        lam=options.lam,
        payment_rule=options.payment_rule,
        sample_counts=np.rint(pi_init * by_prompt.sizes[prompt_of]).astype(np.int64),  # a sampled game
    )
    listed = ", ".join(shown(p) for p in by_prompt.prompts[:3]) + (", ..." if P > 3 else "")
    steps.append(
        f"prompts: {P}, in sorted order ({listed}); outcomes of a prompt: its {U / P:.3g} "
        f"distinct responses on average ({U} in all), x{{j}} the j-th in log order; prompt weights "
        f"uniform (1/{P})"
    )
    sizes_per_prompt = np.diff(by_prompt.offsets)
    low, high = int(sizes_per_prompt.min()), int(sizes_per_prompt.max())
    samples = f"{low}" if low == high else f"{low} to {high}"
    steps.append(
        "initial distribution of a prompt: how often each response was sampled"
        + (
            f" ({repeated} repeated samples counted)"
            if repeated
            else " (every response sampled once: uniform)"
        )
        + f"; {samples} samples per prompt"
    )
    if spread:
        steps.append(
            f"{len(spread)} repeated responses were rewarded differently by a reward model (relative "
            f"difference up to {max(spread):.3g}): each gets the mean of its rewards"
        )
    steps.append(
        f"rewards: per prompt and reward model, shifted to be >= 0 where negative and divided by their "
        f"{normalization.value} (section 2)"
    )
    for k in sorted(np.flatnonzero(flat.any(axis=0)), key=lambda k: (np.argmax(flat[:, k]), k)):
        steps.append(
            f"reward {printable(models[k])} is 0 on every response of {int(flat[:, k].sum())} of {P} "
            "prompts: uniform there"
        )
    read_from = [str(f.path) for f in log.reward_files] or log.reward_columns
    columns = ", ".join(f"{m} = {c}" for m, c in zip(models, read_from, strict=True))
    provenance = [f"trainer: {log.trainer}; {P} prompts; {log.n_rows} responses; reward models {columns}"]
    counts = log.file_rows()

    def used(rows: Array | slice, k: int) -> ColumnStats:
        return column_stats(log.reward_columns[k], f"reward {models[k]}", log.rewards[rows, k])

    # a file of one reward model (OpenRLHF) holds that model's rewards only, of every row
    files = [
        FileSummary(f.path, log.n_rows, f.columns, (used(slice(None), k),))
        for k, f in enumerate(log.reward_files)
    ]
    for f, path in enumerate(log.files):
        mine = log.source == f
        if not log.reward_files:
            stats = tuple(used(mine, k) for k in range(len(models)))
            files.append(FileSummary(path, int(counts[f]), log.file_columns[f], stats))
        step = "" if log.row_steps is None else f", step {int(log.row_steps[mine][0])}"
        provenance.append(f"{printable(str(path))}: {int(counts[f])} rows{step}")
    return ImportResult(
        game=game,
        kind="prompts",
        reward_columns=dict(zip(models, log.reward_columns, strict=True)),
        files=tuple(files),
        candidates=(),
        steps=tuple([*log.notes, *steps]),
        provenance=tuple(provenance),
    )
