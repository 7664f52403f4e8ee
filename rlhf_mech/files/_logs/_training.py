"""Incentives over training: one game per logged step, audited; and the same from a running trainer.

``rlhf-mech import RUN --step all -o FOLDER`` builds one game of many prompts per step of a
TRL log and audits each (:func:`audit_step`): per group its valuation ``v_i`` and payment
``p_i`` at the truthful profile (``q``-weighted means over the step's prompts, as
``rlhf-mech solve`` reports them) and the largest gains the best-response search finds, under
the game's payment rule and without payment: the whole game's best joint misreport (one
report per prompt, one size for every prompt; :func:`~rlhf_mech.analysis.search_prompts`),
whose gain is the ``q``-weighted sum of the prompts' gains.

The same from Python, while training (no file written, nothing of transformers imported)::

    from rlhf_mech.files import audit_step, game_from_batch

    game = game_from_batch(prompts, completions, {"length": [...], "vowel": [...]},
                           reward_weights=[1, 0.5])
    audit = audit_step(game, step=state.global_step)
    audit.gains_without_payment      # (n,) per group

:func:`incentive_callback` wraps that in a ``transformers.TrainerCallback`` that reads TRL's
in-memory batch (``trainer._logs``, what ``log_completions`` writes) at every log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rlhf_mech.analysis import AuditOptions, GameAudit, audit_game
from rlhf_mech.core import PromptGame
from rlhf_mech.errors import RlhfMechError, printable
from rlhf_mech.files._importer import GAME_DEFAULTS, GameOptions, GroupOption, ImportResult
from rlhf_mech.files._logs._layouts import LogInputs, get_layout
from rlhf_mech.files._logs._prompts import import_prompts
from rlhf_mech.files._logs._record import RewardLog, StepInfo, select_step
from rlhf_mech.files._tables import finite_number

Array = np.ndarray

#: Report evaluations per group and prompt when a step is audited for the table over training
#: (``rlhf-mech audit`` uses 200; a step table audits every prompt of every step).
TRAINING_BUDGET = 50


@dataclass(frozen=True)
class StepAudit:
    """The incentives of one step's game (:func:`audit_step`).

    Attributes
    ----------
    step : the training step (``None`` when not known); info : what the step's samples are.
    group_names : (n,) the groups.
    valuations : (n,) ``v_i``, the ``q``-weighted mean over prompts of ``<pi_x, rm_{i,x}>``
        at the truthful profile.
    payments : (n,) ``p_i`` at the truthful profile.
    gains : (n,) the largest gain the search found under the game's payment rule: the whole
        game's best joint misreport (module docstring), 0 where truth is best.
    gains_without_payment : (n,) the same under payment ``none``.
    prompts : how many prompts the game holds.
    audit : the whole game's audit the gains come from.
    """

    step: int | None
    info: StepInfo | None
    group_names: tuple[str, ...]
    valuations: Array
    payments: Array
    gains: Array
    gains_without_payment: Array
    prompts: int
    audit: GameAudit | None = field(repr=False, default=None)

    @property
    def largest_gain(self) -> tuple[float, str]:
        """The largest of :attr:`gains`, and its group."""
        i = int(np.argmax(self.gains))
        return float(self.gains[i]), self.group_names[i]


def audit_step(
    game: PromptGame,
    *,
    step: int | None = None,
    info: StepInfo | None = None,
    options: AuditOptions | None = None,
    seed: int = 0,
) -> StepAudit:
    """Audit one game of many prompts: valuations and payments (``solve``) and the largest
    gains with and without payment (the whole game's audit).

    Parameters
    ----------
    game : the game (:func:`game_from_batch`, or one step of an import).
    step, info : the step it stands for, for the table.
    options : the audit's options; default ``AuditOptions(budget=TRAINING_BUDGET)``.
    seed : as for :func:`~rlhf_mech.analysis.audit_game`.
    """
    options = options or AuditOptions(budget=TRAINING_BUDGET)
    audit = audit_game(game, options, seed)
    solution = audit.truthful
    gains = np.array([g.dsic.best.gain for g in audit.groups])
    free = np.array([g.no_payment.best.gain for g in audit.groups])
    return StepAudit(
        step=step,
        info=info,
        group_names=game.group_names,
        valuations=solution.truthful.valuations,
        payments=solution.truthful.payments,
        gains=np.maximum(gains, 0.0),
        gains_without_payment=np.maximum(free, 0.0),
        prompts=game.n_prompts,
        audit=audit,
    )


@dataclass(frozen=True)
class StepGame:
    """One step's game of an import of several steps."""

    step: int
    info: StepInfo | None
    result: ImportResult


def import_steps(
    log: RewardLog,
    inputs: LogInputs,
    steps: Sequence[int],
    *,
    options: GameOptions = GAME_DEFAULTS,
    **building: Any,
) -> tuple[StepGame, ...]:
    """One game of many prompts per step (each from that step's samples alone), named
    ``{options.name}-step{N}``; ``building`` (normalization, divergence) as for
    :func:`import_prompts`."""
    out = []
    for step in steps:
        one = select_step(log, step)
        stem = options.name
        named = replace(options, name=None if stem is None else f"{stem}-step{step}")
        result = import_prompts(one, inputs, options=named, **building)
        if stem is None:
            result = _renamed(result, f"{result.game.name}-step{step}")
        out.append(StepGame(step, log.step(step), result))
    return tuple(out)


def _renamed(result: ImportResult, name: str) -> ImportResult:
    from dataclasses import replace

    game = result.game
    assert isinstance(game, PromptGame)
    return replace(result, game=replace(game, name=name))


def audit_steps(
    games: Iterable[StepGame],
    *,
    options: AuditOptions | None = None,
    seed: int = 0,
    on_step: Callable[[StepAudit], None] | None = None,
) -> tuple[StepAudit, ...]:
    """:func:`audit_step` on each step's game, in order (``on_step`` called after each)."""
    out = []
    for one in games:
        game = one.result.game
        assert isinstance(game, PromptGame)
        audit = audit_step(game, step=one.step, info=one.info, options=options, seed=seed)
        out.append(audit)
        if on_step is not None:
            on_step(audit)
    return tuple(out)


# --- from a running trainer --------------------------------------------------------------------


def _text(value: Any) -> str:
    """A prompt or completion as TRL holds it: a string, or a conversation (its JSON text)."""
    if isinstance(value, str):
        return value
    import json

    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        raise RlhfMechError(
            f"a prompt or completion that is neither text nor a conversation: {type(value).__name__}"
        ) from None


def batch_log(
    prompts: Sequence[Any],
    completions: Sequence[Any],
    rewards: Mapping[str, Sequence[float]],
    *,
    step: int | None = None,
    reward_weights: Sequence[float] | None = None,
    aggregation: str | None = None,
) -> RewardLog:
    """A :class:`RewardLog` of one batch held in memory: TRL's ``_logs["prompt"]``,
    ``_logs["completion"]`` (text or conversations) and ``_logs["rewards"]`` (name -> one
    raw reward per completion, in ``reward_funcs`` order), as a reward function or a
    callback sees them.

    Raises
    ------
    RlhfMechError
        for lengths that differ, a reward that is not a finite number (a reward function
        that returned ``None``), or weights that do not match the rewards.
    """
    texts = [_text(p) for p in prompts]
    responses = [_text(c) for c in completions]
    names = tuple(str(n) for n in rewards)
    if not texts or not names:
        raise RlhfMechError("a batch needs at least one completion and one reward")
    if len(responses) != len(texts):
        raise RlhfMechError(f"{len(texts)} prompts but {len(responses)} completions")
    table = np.empty((len(texts), len(names)))
    for k, (name, values) in enumerate(rewards.items()):
        values = list(values)
        if len(values) != len(texts):
            raise RlhfMechError(
                f"reward {printable(name)!r}: {len(values)} values for {len(texts)} completions"
            )
        for r, value in enumerate(values):
            number = finite_number(value, strings=False)
            if number is None:
                raise RlhfMechError(
                    f"reward {printable(name)!r}, completion {r}: {value!r} is not a finite number (a reward "
                    "function that returned None leaves NaN; every completion needs every reward)"
                )
            table[r, k] = number
    weights = None
    if reward_weights is not None:
        weights = np.array([float(w) for w in reward_weights])
        if weights.shape != (len(names),) or not np.isfinite(weights).all():
            raise RlhfMechError(
                f"reward_weights: expected {len(names)} finite numbers, got {list(reward_weights)!r}"
            )
    n = len(texts)
    return RewardLog(
        trainer="trl",
        reward_names=names,
        reward_columns=names,
        prompts=tuple(texts),
        responses=tuple(responses),
        rewards=table,
        row_steps=None if step is None else np.full(n, step),
        files=(Path("<batch>"),),
        source=np.zeros(n, dtype=np.intp),
        lines=np.arange(1, n + 1),
        file_columns=(("prompt", "completion", *names),),
        reward_weights=weights,
        aggregation=aggregation,
        notes=(f"a batch held in memory: {n} completions",),
    )


def game_from_batch(
    prompts: Sequence[Any],
    completions: Sequence[Any],
    rewards: Mapping[str, Sequence[float]],
    *,
    reward_weights: Sequence[float] | None = None,
    groups: Sequence[GroupOption] = (),
    normalization: str = "sum",
    divergence: str = "kl",
    lam: float = 1.0,
    payment_rule: str = "affine_maximizer",
    name: str = "batch",
) -> PromptGame:
    """The game of many prompts of one batch (:func:`batch_log`), built as ``rlhf-mech
    import`` builds a TRL step's: one outcome set per prompt, ``pi_init`` the sample counts,
    rewards normalised per prompt; groups one per reward model unless ``groups`` are given
    (a :class:`GroupOption` each, as ``--group`` parses them)."""
    log = batch_log(prompts, completions, rewards, reward_weights=reward_weights)
    inputs = LogInputs(get_layout("trl"), log.files, (None,), "a batch held in memory", False)
    result = import_prompts(
        log,
        inputs,
        normalization=normalization,
        divergence=divergence,
        options=GameOptions(groups, lam, payment_rule, name),
    )
    game = result.game
    assert isinstance(game, PromptGame)
    return game


def incentive_callback(
    trainer: Any,
    *,
    every: int = 1,
    groups: Sequence[GroupOption] = (),
    options: AuditOptions | None = None,
    on_audit: Callable[[StepAudit], None] | None = None,
    **game_options: Any,
) -> Any:
    """A ``transformers.TrainerCallback`` that audits TRL's batch at every ``every``-th log.

    At ``on_log`` it reads ``trainer._logs`` (the completions ``log_completions`` writes at
    that log: the last generation batch, or an evaluation's last batch), builds
    :func:`game_from_batch` with the trainer's ``reward_weights`` and :func:`audit_step`,
    appends the result to the callback's ``audits`` list and calls ``on_audit``. A log whose
    batch is the one audited last (the summary logged at the end of training) is skipped.
    Install with ``pip install 'rlhf-mech[trl]'`` (transformers); nothing of it is imported
    before this function runs::

        trainer = GRPOTrainer(...)
        callback = incentive_callback(trainer)
        trainer.add_callback(callback)
        trainer.train()
        callback.audits          # one StepAudit per log

    Raises
    ------
    RlhfMechError
        when transformers is not installed.
    """
    try:
        from transformers import TrainerCallback
    except ImportError:
        raise RlhfMechError("incentive_callback needs transformers: pip install 'rlhf-mech[trl]'") from None
    if int(every) != every or every < 1:
        raise ValueError(f"`every` must be a positive integer, got {every!r}")

    class IncentiveCallback(TrainerCallback):  # type: ignore[misc,valid-type]
        """Audits the trainer's logged batch (``rlhf_mech.files.incentive_callback``)."""

        def __init__(self) -> None:
            self.audits: list[StepAudit] = []
            self._logs = 0
            self._last: int | None = None

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> Any:
            batch = getattr(trainer, "_logs", None)
            if not batch or not batch.get("prompt"):
                return control
            # the log at the end of training (train_runtime, ...) holds the last batch again
            fingerprint = hash((tuple(map(_text, batch["prompt"])), tuple(map(_text, batch["completion"]))))
            if fingerprint == self._last:
                return control
            self._last = fingerprint
            self._logs += 1
            if (self._logs - 1) % every:
                return control
            weights = getattr(getattr(trainer, "args", None), "reward_weights", None)
            rewards = {name: list(values) for name, values in batch["rewards"].items()}
            game = game_from_batch(
                list(batch["prompt"]),
                list(batch["completion"]),
                rewards,
                reward_weights=None if weights is None else list(weights),
                groups=groups,
                name=f"step-{state.global_step}",
                **game_options,
            )
            step = int(state.global_step)
            prompts = list(batch["prompt"])
            role = "eval" if any(str(k).startswith("eval_") for k in (logs or {})) else "train"
            counts: dict[str, int] = {}
            for p in prompts:
                text = _text(p)
                counts[text] = counts.get(text, 0) + 1
            info = StepInfo(
                step,
                role,
                (role == "train" and step == 1) or (role == "eval" and step == 0),
                len(prompts),
                len(counts),
                (min(counts.values()), max(counts.values())),
                "the trainer's log" + (" (eval_* metrics)" if role == "eval" else ""),
            )
            audit = audit_step(game, step=step, info=info, options=options)
            self.audits.append(audit)
            if on_audit is not None:
                on_audit(audit)
            return control

    return IncentiveCallback()
