"""Command-line option parsing that is more than Typer's types: parameter lists, the sweep request.

Everything here raises :class:`~rlhf_mech.errors.RlhfMechError` with the option named, before
any work starts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from rlhf_mech.analysis import OTHERS_KINDS, OthersSpec, SweepResult, sweep
from rlhf_mech.analysis._internal import group_index, with_truth
from rlhf_mech.core import (
    NONE,
    Game,
    PaymentRule,
    PromptGame,
    TrainingRule,
    get_payment_rule,
    get_training_rule,
)
from rlhf_mech.core._internal import Configurable, ProgressCallback, rule_conflict
from rlhf_mech.errors import RlhfMechError, shown
from rlhf_mech.files._internal import SIZE_LIMIT, finite_number, read_reward

Array = np.ndarray
T = TypeVar("T")


def parse_others(text: str) -> OthersSpec:
    """``file``, ``truthful``, ``grid K`` or ``random N`` (also ``grid:K``, ``grid=K``).

    Raises
    ------
    RlhfMechError
        naming ``--others`` and the valid forms.
    """
    kind, _, count = text.strip().replace(":", " ").replace("=", " ").partition(" ")
    forms = "file, truthful, 'grid K' or 'random N'"
    if kind not in OTHERS_KINDS:
        raise RlhfMechError(f"--others {text!r}: expected {forms}")
    sampled = OTHERS_KINDS[kind][1]
    count = count.strip()
    if sampled != bool(count) or (count and not count.isdigit()) or (count and int(count) < 1):
        raise RlhfMechError(f"--others {text!r}: expected {forms} with a positive integer K or N")
    return OthersSpec(kind, int(count) if count else 1)


def _configured(
    game: Game | PromptGame, rule: Configurable, option: str, settings: list[str]
) -> Configurable:
    """``rule`` with the ``KEY=VALUE`` settings of ``option`` (``--payment-param``,
    ``--training-param``) read by the kinds of its parameter records."""
    values: dict[str, object] = {}
    kinds = {p.name: p.kind for p in rule.schema}
    for item in settings:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RlhfMechError(f"{option} {item!r}: expected KEY=VALUE")
        kind = kinds.get(key)
        if kind == "outcomes":
            names = [part.strip() for part in text.split(",") if part.strip()]
            unknown = [n for n in names if n not in game.outcomes]
            if unknown:
                raise RlhfMechError(f"{option} {key}: unknown outcome {unknown[0]!r}")
            repeated = [n for n, count in Counter(names).items() if count > 1]
            if repeated:
                raise RlhfMechError(f"{option} {key}: outcome {shown(repeated[0])} given twice")
            values[key] = [game.outcomes.index(n) for n in names]
        elif kind in ("choice", None):  # None: with_parameters names the rule's parameters
            values[key] = text.strip()
        else:
            values[key] = _number(text, kind == "int", f"{option} {key}")
    try:
        return rule.with_parameters(**values)
    except ValueError as exc:
        raise RlhfMechError(f"{option}: {exc}") from None


def _decimal(text: str) -> float:
    """``text`` as a plain ASCII decimal (:func:`~rlhf_mech.files.finite_number`): Python's
    ``float()`` would also read ``1_0`` as 10 and Arabic-Indic digits as their values.

    Raises
    ------
    ValueError
        for anything else, or a number that is not finite.
    """
    value = finite_number(text.strip())
    if value is None:
        raise ValueError(text)
    return value


def _number(text: str, integer: bool, option: str) -> float:
    """A rule parameter's value (:func:`_decimal`; an integer parameter written as one, ``5``).

    Raises
    ------
    RlhfMechError
        naming ``option``.
    """
    digits = text.strip().removeprefix("-").removeprefix("+")
    try:
        value = _decimal(text)
        if integer and not (digits.isascii() and digits.isdigit()):
            raise ValueError(text)
    except ValueError:
        kind = "an integer" if integer else "a finite number"
        raise RlhfMechError(f"{option}: {shown(text)} is not {kind} (ASCII digits, as 5 or 0.5)") from None
    return int(text) if integer else value


def _named(lookup: Callable[[str], T], name: str, option: str) -> T:
    """A registry's record of ``name`` (:class:`RlhfMechError` naming ``option`` when unknown)."""
    try:
        return lookup(name)
    except ValueError as exc:
        raise RlhfMechError(f"{option}: {exc}") from None


def rules_override(
    game: Game | PromptGame,
    *,
    payment: str | None = None,
    payment_settings: list[str] | None = None,
    training: str | None = None,
    training_settings: list[str] | None = None,
) -> tuple[Game | PromptGame, str]:
    """The game under the rules ``--training NAME --training-param KEY=VALUE ... --payment NAME
    --payment-param KEY=VALUE ...`` ask for, and a note for the user (``""`` when none).

    A rule not named keeps the file's (its parameters are kept, or replaced by the ones
    given). A training rule that is not additive has no eq. (1): when it replaces SW-Max and
    no payment rule is named, the payment becomes ``none`` and the note says so.

    Raises
    ------
    RlhfMechError
        for a parameter a rule does not have, a value it does not accept, or rules that
        cannot form one mechanism (:func:`~rlhf_mech.core.rule_conflict`).
    """
    mechanism = game.mechanism
    train: TrainingRule = mechanism.training_rule
    if training is not None or training_settings:
        base = _named(get_training_rule, training, "--training") if training is not None else train
        train = _configured(game, base, "--training-param", training_settings or [])  # type: ignore[assignment]
    pay: PaymentRule = mechanism.payment_rule
    note = ""
    if payment is not None or payment_settings:
        base = _named(get_payment_rule, payment, "--payment") if payment is not None else pay
        pay = _configured(game, base, "--payment-param", payment_settings or [])  # type: ignore[assignment]
    elif not train.additive and pay.additive_only:
        note = f"payment: none (the file's {pay.name} needs an additive training rule; {train.name} is not)"
        pay = NONE
    if train == mechanism.training_rule and pay == mechanism.payment_rule:
        return game, note
    conflict = rule_conflict(train, pay, mechanism.divergence)
    if conflict:
        raise RlhfMechError(f"--training/--payment: {conflict}")
    try:
        return game.with_rules(train, pay), note
    except ValueError as exc:  # a rule that does not split over the prompts of a PromptGame
        raise RlhfMechError(f"--training/--payment: {exc}") from None


#: The most points a parameter list may expand to.
MAX_POINTS = 1_000_000


def parse_parameters(text: str, option: str = "parameter") -> Array:
    """A comma list ``0.2,0.5,1`` or an inclusive range ``start:stop:step`` -> (P,) floats.

    Raises
    ------
    RlhfMechError
        for anything else (the message names ``option``).
    """
    spec = text.strip()
    try:
        if ":" in spec:
            start, stop, step = (_decimal(part) for part in spec.split(":"))
            if not all(math.isfinite(v) for v in (start, stop, step)) or step <= 0 or stop < start:
                raise RlhfMechError(f"{option}: range {text!r} needs finite start <= stop and step > 0")
            count = math.floor((stop - start) / step + 1e-9) + 1
            if count > MAX_POINTS:
                raise RlhfMechError(f"{option}: range {text!r} has {count} points (at most {MAX_POINTS})")
            # 12 significant digits: 0.1 * 3 is reported as 0.3, not 0.30000000000000004.
            return np.array([float(f"{start + k * step:.12g}") for k in range(count)])
        values = np.array([_decimal(part) for part in spec.split(",")])
    except ValueError:
        if any(_non_finite(part) for part in spec.replace(":", ",").split(",")):
            raise RlhfMechError(f"{option}: {shown(text)} has a value that is not a finite number") from None
        raise RlhfMechError(
            f"{option}: cannot read {shown(text)}; expected a comma list (0.5,1,2) or start:stop:step"
        ) from None
    return values


def _non_finite(text: str) -> bool:
    """Whether ``text`` is ``nan``, ``inf`` or a number past the float range (for the message)."""
    try:
        return not math.isfinite(float(text))
    except ValueError:
        return False


@dataclass(frozen=True)
class SweepRequest:
    """What ``rlhf-mech sweep`` was asked for, checked before any work starts.

    Attributes
    ----------
    family : the misreport family; parameters : its values (empty for ``explicit``).
    report_reward : the ``--report-reward`` text (comma list or file), or ``None``.
    report_size : the ``--report-size`` value, or ``None``.
    group : the group's name (``None`` with ``all_groups``).
    all_groups : sweep every group in turn.
    prompt : for a game of many prompts, the prompt swept (``--prompt K``, from 0), as its
        own game (:meth:`~rlhf_mech.core.PromptGame.game`).
    """

    family: str
    parameters: Array
    report_reward: str | None = None
    report_size: float | None = None
    group: str | None = None
    all_groups: bool = False
    prompt: int | None = None

    @classmethod
    def from_options(
        cls,
        *,
        group: str | None,
        all_groups: bool,
        alpha: str | None = None,
        beta: str | None = None,
        epsilon: str | None = None,
        report_reward: str | None = None,
        report_size: float | None = None,
        prompt: int | None = None,
    ) -> SweepRequest:
        """Check the command line's choice of group and strategy.

        Raises
        ------
        RlhfMechError
            unless exactly one of ``--group``/``--all-groups`` and exactly one strategy
            (``--alpha``, ``--beta``, ``--epsilon``, or ``--report-reward``/``--report-size``)
            is given, or when a parameter list cannot be read.
        """
        if (group is None) == (not all_groups):
            raise RlhfMechError("give exactly one of --group NAME and --all-groups")
        given = {
            "--alpha": alpha is not None,
            "--beta": beta is not None,
            "--epsilon": epsilon is not None,
            "--report-reward/--report-size": report_reward is not None or report_size is not None,
        }
        chosen = [name for name, on in given.items() if on]
        if len(chosen) != 1:
            what = "two strategies at once: " + " and ".join(chosen) if chosen else "no strategy"
            raise RlhfMechError(
                f"{what}; give one of --alpha, --beta, --epsilon or --report-reward/--report-size"
            )
        if report_size is not None and not (math.isfinite(report_size) and report_size > 0):
            raise RlhfMechError(f"--report-size {report_size}: a reported size must be a positive number")
        for family, option, text in (
            ("size", "--alpha", alpha),
            ("mixing", "--beta", beta),
            ("polarise", "--epsilon", epsilon),
        ):
            if text is not None:
                parameters = parse_parameters(text, option)
                return cls(family, parameters, group=group, all_groups=all_groups, prompt=prompt)
        return cls("explicit", np.empty(0), report_reward, report_size, group, all_groups, prompt)

    def outcome_set(self, game: Game | PromptGame) -> Game:
        """The game swept: ``game`` itself, or prompt :attr:`prompt` of a game of many prompts.

        Raises
        ------
        RlhfMechError
            for a game of many prompts without ``--prompt``, a prompt it does not have, or
            ``--prompt`` on a game of one prompt.
        """
        if not isinstance(game, PromptGame):
            if self.prompt is not None:
                raise RlhfMechError(f"--prompt {self.prompt}: {shown(game.name)} is a game of one prompt")
            return game
        last = game.n_prompts - 1
        if self.prompt is None:
            raise RlhfMechError(
                f"{game.source or game.name}: a game of {game.n_prompts} prompts; sweep takes one "
                f"outcome set: give --prompt K (0 to {last}) to sweep prompt K as its own game"
            )
        if self.prompt > last:
            raise RlhfMechError(f"--prompt {self.prompt}: the game has prompts 0 to {last}")
        return game.game(self.prompt)

    def groups(self, game: Game) -> list[int]:
        """The deviating groups' indices (:class:`RlhfMechError` for an unknown name)."""
        if self.all_groups:
            return list(range(game.n_groups))
        assert self.group is not None
        return [group_index(game, self.group)]

    def points(self, game: Game) -> int:
        """How many points all the sweeps have together (for a progress bar)."""
        per_group = 2 if self.family == "explicit" else with_truth(self.family, self.parameters)[0].size
        return per_group * len(self.groups(game))

    def run(
        self,
        game: Game,
        payment_rule: str | PaymentRule | None = None,
        on_progress: ProgressCallback | None = None,
        keep_distributions: bool = True,
    ) -> list[SweepResult]:
        """One :func:`sweep` per requested group.

        Raises
        ------
        RlhfMechError
            for a reported size above :data:`~rlhf_mech.files.SIZE_LIMIT` (the limit of a
            game file's sizes: beyond it the scores, and so every payment, lose their digits).
        """
        reward = None if self.report_reward is None else read_reward(self.report_reward, game)
        for i in self.groups(game):
            largest = self.report_size or 0.0
            if self.family == "size":
                largest = float(np.max(self.parameters)) * float(game.truth.sizes[i])
            if largest > SIZE_LIMIT:
                option = "--alpha" if self.family == "size" else "--report-size"
                raise RlhfMechError(
                    f"{option}: a reported size of {largest:g} is above {SIZE_LIMIT:g}, the largest size "
                    "a game may have (scores that large lose every digit of the payments)"
                )
        return [
            sweep(
                game,
                i,
                self.family,
                self.parameters,
                payment_rule,
                report_reward=reward,
                report_size=self.report_size,
                on_progress=on_progress,
                keep_distributions=keep_distributions,
            )
            for i in self.groups(game)
        ]
