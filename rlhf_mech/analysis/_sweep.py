r"""Strategic reports of one group, swept as one batch, the others' reports held fixed.

Section 5 (Strategies 1 and 2, Figure 2), Theorem 4.2 and appendix F (tables 1-6): for a
group ``i`` and a family of reports indexed by a parameter (``alpha``, ``beta``, ``epsilon``,
the :data:`~rlhf_mech.analysis.FAMILIES`), each point's reports give the fine-tuned
distribution ``pi_k = psi(report_k, reports_-i)`` (Definition 4.1), which is measured on the
group's *true* type: valuation ``v_i`` (Definition 3.1), group valuation ``w_i v_i``, payment
``p_i`` (eq. 1), utility ``u_i = w_i v_i - p_i`` and the social welfare ``sum_j w_j v_j``.

Method
------
The whole family is one batch of the mechanism kernel (:class:`~rlhf_mech.core.Deviation`):
with ``b`` the others' (fixed) scores, point ``k`` solves the scores ``b + w~_k rm~_k``, in
blocks of bounded size, and the payment rule prices each point; under ``p^AFF`` the
deviating group's leave-one-out problem does not depend on its report, so it is solved once.
The other groups' leave-one-out problems do not enter group ``i``'s figures and are not
solved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rlhf_mech.analysis._strategies import (
    FAMILIES,
    Misreports,
    explicit_misreports,
    mixing_misreports,
    others_reward,
    polarise_misreports,
    size_misreports,
    with_truth,
)
from rlhf_mech.core import Game, PaymentRule, PromptGame, deviation
from rlhf_mech.core._internal import CONVERGED, ProgressCallback
from rlhf_mech.errors import RlhfMechError

if TYPE_CHECKING:
    from rlhf_mech.analysis._bootstrap import Uncertainty

Array = np.ndarray

#: Two values closer than this (times ``max(1, |value|)``) tie for "best" in a row.
TIE_TOL = 1e-9
#: A deviation gains when it beats truth by more than this (times ``max(1, |truth|)``).
GAIN_TOL = 1e-9

#: Quantity -> whether larger (``max``) or smaller (``min``) is better for the group.
BETTER: dict[str, str] = {
    "valuations": "max",
    "group_valuations": "max",
    "payments": "min",
    "utilities": "max",
    "utilities_no_payment": "max",
    "social_welfare": "max",
}


@dataclass(frozen=True)
class SweepResult:
    """One group's misreport family on a game: every point measured on the true types.

    Attributes
    ----------
    game : the game; group : index of the deviating group.
    family : a key of :data:`~rlhf_mech.analysis.FAMILIES`.
    payment_rule : the payment rule applied.
    parameters : (P,) the family's parameter (ascending; truth's value included).
    truthful_index : index of the truthful point.
    reported_rewards, reported_sizes : (P, m), (P,) the group's report at each point.
    clipped : (P,) whether a report was clipped/renormalised/capped to stay valid.
    distributions : (P, m) fine-tuned distributions (``None`` if not kept).
    valuations : (P,) per-agent valuation ``v_i`` (Definition 3.1, true rm_i).
    group_valuations : (P,) ``w_i v_i`` (true w_i): the utility without payment.
    payments : (P,) ``p_i`` under ``payment_rule`` (eq. 1; zeros for ``none``).
    utilities : (P,) ``w_i v_i - p_i``.
    social_welfare : (P,) ``sum_j w_j v_j`` on the true types.
    leave_one_out_value : the group's first term of eq. (1), the same at every point (0 for
        rule ``none``).
    status : (P,) solver status per point (the leave-one-out solve's where that failed).
    notes : what the output must say about the reports (clipping, real-valued sizes, ...).
    uncertainty : for a sampled game with ``--ci``, every point's figures with their sampling
        error (:func:`~rlhf_mech.analysis.sweep_uncertainty`); ``None`` otherwise.
    """

    game: Game
    group: int
    family: str
    payment_rule: PaymentRule
    parameters: Array
    truthful_index: int
    reported_rewards: Array
    reported_sizes: Array
    clipped: Array
    distributions: Array | None
    valuations: Array
    group_valuations: Array
    payments: Array
    utilities: Array
    social_welfare: Array
    leave_one_out_value: float
    status: Array
    notes: tuple[str, ...] = ()
    uncertainty: Uncertainty | None = None

    @property
    def group_name(self) -> str:
        return self.game.group_names[self.group]

    @property
    def parameter_name(self) -> str:
        """``alpha``, ``beta``, ``epsilon`` or ``report``."""
        return FAMILIES[self.family].parameter

    @property
    def utilities_no_payment(self) -> Array:
        """The utility without payment, ``w_i v_i`` (= :attr:`group_valuations`)."""
        return self.group_valuations

    @property
    def converged(self) -> bool:
        return bool(np.all(self.status == CONVERGED))

    @property
    def within_max_size(self) -> Array:
        """(P,) bool: the points whose reported size is at most the game's ``max_size`` (all of
        them when it has none); a point above it is not a report the game allows, and is left
        out of :meth:`best_deviation` and :meth:`truth_is_optimal`."""
        if self.game.max_size is None:
            return np.ones(self.parameters.size, dtype=bool)
        return self.reported_sizes <= self.game.max_size * (1 + TIE_TOL)

    def gains(self, with_payment: bool = True) -> Array:
        """(P,) utility minus truth's utility, under the payment rule or without payment."""
        utility = self.utilities if with_payment else self.utilities_no_payment
        return utility - utility[self.truthful_index]

    def best_deviation(self, with_payment: bool = True) -> tuple[float, int] | None:
        """The largest gain over truth among the other points within ``max_size``
        (:attr:`within_max_size`) and its index (``None``: no other)."""
        gains = self.gains(with_payment)
        others = np.flatnonzero((np.arange(gains.size) != self.truthful_index) & self.within_max_size)
        if others.size == 0:
            return None
        k = int(others[np.argmax(gains[others])])
        return float(gains[k]), k

    def at_edge(self, k: int) -> bool:
        """Whether point ``k`` is the smallest or the largest parameter swept within
        ``max_size`` (a best point there may not be the best of the family: a wider range may
        do better); never for an explicit report, or a sweep of two points or fewer."""
        inside = np.flatnonzero(self.within_max_size)
        if self.family == "explicit" or inside.size <= 2:
            return False
        return k in (int(inside[0]), int(inside[-1]))

    def truth_is_optimal(self, with_payment: bool = True) -> bool:
        """Whether no point within ``max_size`` beats truth by more than :data:`GAIN_TOL`
        (relative)."""
        best = self.best_deviation(with_payment)
        utility = self.utilities if with_payment else self.utilities_no_payment
        scale = max(1.0, abs(float(utility[self.truthful_index])))
        return best is None or best[0] <= GAIN_TOL * scale

    def is_best(self, quantity: str) -> Array:
        """(P,) bool: the points within ``max_size`` where ``quantity`` is best for the group
        (ties within TIE_TOL)."""
        values = np.asarray(getattr(self, quantity))
        allowed = values[self.within_max_size]
        best = allowed.max() if BETTER[quantity] == "max" else allowed.min()
        return (np.abs(values - best) <= TIE_TOL * max(1.0, abs(float(best)))) & self.within_max_size


def _num(x: float) -> str:
    return f"{x:.6g}"


def group_index(game: Game, group: str | int) -> int:
    """Index of a group given by name (or index); :class:`RlhfMechError` when unknown."""
    if isinstance(group, int) and not isinstance(group, bool):
        if not 0 <= group < game.n_groups:
            raise RlhfMechError(f"group index {group} is outside 0..{game.n_groups - 1}")
        return group
    if group not in game.group_names:
        raise RlhfMechError(f"no group named {group!r}; the groups are {', '.join(game.group_names)}")
    return game.group_names.index(group)


def group_of(game: Game | PromptGame, group: str | None, command: str) -> int:
    """The group a command that takes one outcome set was asked about (``--group NAME``).

    Raises
    ------
    RlhfMechError
        for a game of many prompts, a missing ``--group`` or an unknown name.
    """
    if isinstance(game, PromptGame):
        raise RlhfMechError(
            f"{game.source or game.name}: a game of many prompts; {command} takes one outcome set "
            "(a game of one prompt)"
        )
    if group is None:
        raise RlhfMechError(f"give --group NAME; the groups are {', '.join(game.group_names)}")
    return group_index(game, group)


def _check(values: Array, ok: Array, option: str, rule: str) -> None:
    if not np.all(ok):
        bad = values[~ok][0]
        raise RlhfMechError(f"{option} = {_num(bad)}: {rule}")


def _size_reports(game: Game, i: int, values: Array) -> tuple[Misreports, list[str]]:
    _check(values, values >= 0, "alpha", "alpha must be >= 0 (a reported size is not negative)")
    notes = []
    if np.any(values == 0):
        notes.append(f"alpha = 0: {game.group_names[i]} reports size 0 (abstains: no weight, no payment)")
    return size_misreports(game.truth.rewards[i], float(game.truth.sizes[i]), values), notes


def _mixing_reports(game: Game, i: int, values: Array) -> tuple[Misreports, list[str]]:
    if game.n_groups < 2:
        raise RlhfMechError("mixing (beta) needs at least one other group")
    others = others_reward(game.reports.rewards, game.reports.sizes, i)
    truth = game.truth
    reports = mixing_misreports(truth.rewards[i], float(truth.sizes[i]), others, values, game.normalization)
    names = [name for j, name in enumerate(game.group_names) if j != i]
    notes = [
        f"rm_-i = the report of {names[0]}"
        if len(names) == 1
        else "rm_-i = the size-weighted mean of the other groups' reports"
    ]
    if reports.adjusted.any():
        shown = ", ".join(_num(b) for b in values[reports.adjusted])
        notes.append(f"beta = {shown}: the mix {game.normalization.repair} (marked †)")
    return reports, notes


def _polarise_reports(game: Game, i: int, values: Array) -> tuple[Misreports, list[str]]:
    if not game.normalization.normalised:
        raise RlhfMechError("polarisation (epsilon) needs a 'sum' or 'max' normalised game")
    _check(values, values >= 0, "epsilon", "epsilon must be >= 0")
    reports = polarise_misreports(
        game.truth.rewards[i], float(game.truth.sizes[i]), values, game.normalization
    )
    return reports, _polarise_notes(game, i, reports)


#: Family name -> ``(game, group, parameters) -> (reports, notes)`` (``explicit`` is given whole).
_REPORTS: dict[str, Callable[[Game, int, Array], tuple[Misreports, list[str]]]] = {
    "size": _size_reports,
    "mixing": _mixing_reports,
    "polarise": _polarise_reports,
}


def family_misreports(
    game: Game,
    group: int,
    family: str,
    parameters: Sequence[float] | Array = (),
    report_reward: Array | None = None,
    report_size: float | None = None,
) -> tuple[Misreports, int, tuple[str, ...]]:
    """Group ``group``'s reports for a family, truth included; its index; notes for the output.

    Parameters
    ----------
    game, group : the game and the deviating group's index.
    family : ``"size"`` (Strategy 1), ``"mixing"`` (Strategy 2), ``"polarise"`` (Theorem 4.2)
        or ``"explicit"`` (``report_reward`` and/or ``report_size``, the rest truthful).
    parameters : the family's parameters (ignored for ``explicit``).

    Raises
    ------
    RlhfMechError
        for parameters outside the family's domain or a family the game cannot use.
    """
    i = group
    reward, size = game.truth.rewards[i], float(game.truth.sizes[i])
    if family == "explicit":
        reports = explicit_misreports(
            reward,
            size,
            reward if report_reward is None else report_reward,
            size if report_size is None else report_size,
        )
        _check(reports.sizes, reports.sizes > 0, "--report-size", "a reported size must be > 0")
        return reports, 0, _common_notes(game, i, reports)
    if family not in _REPORTS:
        raise RlhfMechError(f"unknown misreport family {family!r}")
    values, truth = with_truth(family, np.asarray(parameters, dtype=float))
    reports, notes = _REPORTS[family](game, i, values)
    return reports, truth, tuple(notes) + _common_notes(game, i, reports)


def _polarise_notes(game: Game, i: int, reports: Misreports) -> list[str]:
    reward = game.truth.rewards[i]
    most, least = int(np.argmax(reward)), int(np.argmin(reward))
    if reward[most] == reward[least]:
        return [f"{game.group_names[i]} values every outcome equally (s_i = 1): the report cannot change"]
    plus = f"+eps at {game.outcomes[most]!r} (most preferred), " if game.normalization.linear_total else ""
    notes = [f"{plus}-eps at {game.outcomes[least]!r} (least preferred); ties: first outcome in file order"]
    if reports.adjusted.any():
        shown = ", ".join(_num(e) for e in reports.parameters[reports.adjusted])
        notes.append(
            f"epsilon = {shown}: capped at rm_i({game.outcomes[least]!r}) = {_num(reward[least])} "
            "to keep the report non-negative (marked †)"
        )
    return notes


def _common_notes(game: Game, i: int, reports: Misreports) -> tuple[str, ...]:
    notes = []
    sizes = reports.sizes
    upper = game.max_size if game.max_size is not None else np.inf
    if np.any((sizes != np.round(sizes)) | (sizes < 1)):
        bound = f"1..{_num(game.max_size)}" if game.max_size is not None else "the positive integers"
        notes.append(f"reported sizes are real-valued in this sweep (the game's sizes are {bound})")
    above = sizes > upper * (1 + TIE_TOL)
    if np.any(above):
        if reports.family == "explicit":
            which = "the given report"
        else:
            shown = ", ".join(_num(p) for p in reports.parameters[above])
            which = f"{FAMILIES[reports.family].parameter} = {shown}"
        notes.append(
            f"{which}: reported size above max_size {_num(upper)}, a report the game does not allow "
            "(marked ‡; left out of the verdict)"
        )
    if i in game.misreporting_groups():
        notes.append(f"the report of {game.group_names[i]} in the file is replaced by the swept reports")
    liars = [game.group_names[j] for j in game.misreporting_groups() if j != i]
    if liars:
        notes.append(f"the other groups report as in the file ({', '.join(liars)} misreport)")
    return tuple(notes)


def sweep(
    game: Game,
    group: str | int,
    family: str,
    parameters: Sequence[float] | Array = (),
    payment_rule: str | PaymentRule | None = None,
    *,
    report_reward: Array | None = None,
    report_size: float | None = None,
    on_progress: ProgressCallback | None = None,
    keep_distributions: bool = True,
) -> SweepResult:
    """Sweep one group's misreport family with the others' reports held fixed.

    Parameters
    ----------
    game : the game (true types; the other groups' reports are taken from it).
    group : the deviating group's name or index.
    family : ``"size"`` (alpha, Strategy 1), ``"mixing"`` (beta, Strategy 2), ``"polarise"``
        (epsilon, Theorem 4.2) or ``"explicit"``.
    parameters : the family's parameter values; truth's value is always added.
    payment_rule : overrides the game's payment rule when given.
    report_reward, report_size : the explicit report (family ``"explicit"``).
    on_progress : called with ``(points done, points in all)`` after each block.
    keep_distributions : keep the (P, m) fine-tuned distributions (``False``: ``None``; saves
        a (P, m) array when only the figures are wanted).

    Returns
    -------
    SweepResult

    Notes
    -----
    One batch of the kernel (:meth:`~rlhf_mech.core.Deviation.outcomes`); every point equals
    :func:`~rlhf_mech.core.outcome` on the profile with group ``i``'s report replaced. Under
    the affine-maximizer payment truth maximises the utility (Proposition 4.4); without
    payment a polarised report beats it when ``min rm_i > 0`` and ``s_i >= 2`` (Theorem 4.2).
    """
    i = group_index(game, group)
    mechanism = game.mechanism.with_payment_rule(payment_rule)
    reports, truth, notes = family_misreports(game, i, family, parameters, report_reward, report_size)
    out = deviation(mechanism, game.truth, game.reports, i).outcomes(
        reports.rewards[None],
        reports.sizes[None],
        on_progress=on_progress,
        keep_distributions=keep_distributions,
    )
    status = out.status[0]
    if np.any(status != CONVERGED):
        shown = ", ".join(_num(p) for p in reports.parameters[status != CONVERGED][:5])
        notes = (*notes, f"the solver did not converge at {FAMILIES[family].parameter} = {shown}")
    return SweepResult(
        game=game,
        group=i,
        family=reports.family,
        payment_rule=mechanism.payment_rule,
        parameters=reports.parameters,
        truthful_index=truth,
        reported_rewards=np.asarray(reports.rewards),
        reported_sizes=reports.sizes,
        clipped=reports.adjusted,
        distributions=None if out.distributions is None else out.distributions[0],
        valuations=out.valuations[0],
        group_valuations=out.group_valuations[0],
        payments=out.payments[0],
        utilities=out.utilities[0],
        social_welfare=out.social_welfare[0],
        leave_one_out_value=float(out.leave_one_out_values[0]),
        status=status,
        notes=notes,
    )
