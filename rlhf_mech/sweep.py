r"""Strategic reports of one group, swept as one batch, the others' reports held fixed.

Section 5 (Strategies 1 and 2, Figure 2), Theorem 4.2 and appendix F (tables 1-6): for a
group ``i`` and a family of reports indexed by a parameter (``alpha``, ``beta``, ``epsilon``,
see :mod:`rlhf_mech.strategies`), each point's reports give the fine-tuned distribution
``pi_k = psi(report_k, reports_-i)`` (Definition 4.1), which is measured on the group's *true*
type: valuation ``v_i`` (Definition 3.1), group valuation ``w_i v_i``, payment ``p_i``
(eq. 1), utility ``u_i = w_i v_i - p_i`` and the social welfare ``sum_j w_j v_j``.

Method
------
With ``b = sum_{j != i} w~_j rm~_j + offset`` the others' (fixed) part of the scores, point
``k`` solves the scores ``b + w~_k rm~_k``; every point of every game is a row of one batch
for :func:`~rlhf_mech.solver.solve_sw_max`, taken in blocks of at most
:data:`~rlhf_mech._numerics.CHUNK_ELEMENTS` values. Group ``i``'s payment is

    p_i(k) = V_{-i} - (V(k) - w~_k <pi_k, rm~_k>)                              (eq. 1)

where ``V(k)`` is the optimal value at point ``k`` and ``V_{-i} = max_pi ASW_{-i}(pi)`` is the
optimal value for the scores ``b`` alone: the deviating group's leave-one-out problem does
not depend on its report, so it is solved once per game. The other groups' leave-one-out
problems do not enter group ``i``'s figures and are not solved.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlhf_mech._numerics import CHUNK_ELEMENTS, rows_per_chunk
from rlhf_mech.divergences import Divergence
from rlhf_mech.errors import RlhfMechError
from rlhf_mech.game import Game
from rlhf_mech.payments import check_payment_rule
from rlhf_mech.solver import CONVERGED, solve_sw_max
from rlhf_mech.strategies import (
    NORMALIZATION_TOL,
    PARAMETER_NAMES,
    Misreports,
    explicit_misreports,
    mixing_misreports,
    others_reward,
    polarise_misreports,
    size_misreports,
    with_truth,
)

Array = np.ndarray
#: ``(rows done, rows in all)``, called after each block of the batch.
ProgressCallback = Callable[[int, int], None]

#: Two values closer than this (times ``max(1, |value|)``) tie for "best" in a row.
TIE_TOL = 1e-9
#: A deviation gains when it beats truth by more than this (times ``max(1, |truth|)``).
GAIN_TOL = 1e-9
#: Rows per block of the batch: 2^17 values (1 MiB) stay in cache through the solver's passes,
#: which makes a block ~1.6x faster per value than one of CHUNK_ELEMENTS = 2^22 (measured on a
#: 2-core box, m = 10^4); both bound the temporaries.
BLOCK_ELEMENTS = 1 << 17
#: The most points a parameter list may expand to.
MAX_POINTS = 1_000_000

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
class DeviationOutcomes:
    """Outcomes of ``G`` games x ``P`` reports of one group, the others' reports fixed.

    Attributes
    ----------
    distributions : (G, P, m) fine-tuned distributions, or ``None`` when not kept.
    values : (G, P) optimal SW-Max values ``V(k)`` on the reports.
    leave_one_out_values : (G,) ``V_{-i}`` (zeros for payment rule ``none``).
    valuations : (G, P) per-agent valuations ``v_i = <pi, rm_i>`` (true rm_i).
    group_valuations : (G, P) ``w_i v_i`` (true w_i).
    payments : (G, P) ``p_i`` under the payment rule.
    utilities : (G, P) ``w_i v_i - p_i``.
    social_welfare : (G, P) ``sum_j w_j v_j`` (true types).
    status : (G, P) solver status (:data:`~rlhf_mech.solver.CONVERGED` or not).
    """

    distributions: Array | None
    values: Array
    leave_one_out_values: Array
    valuations: Array
    group_valuations: Array
    payments: Array
    utilities: Array
    social_welfare: Array
    status: Array


def _blocks(games: int, points: int, rows: int) -> list[tuple[slice, slice]]:
    """(games, points) slices of at most ``rows`` rows (one game's points, or whole games)."""
    if points >= rows:
        return [
            (slice(g, g + 1), slice(a, min(points, a + rows)))
            for g in range(games)
            for a in range(0, points, rows)
        ]
    per = max(1, rows // points)
    return [(slice(g, min(games, g + per)), slice(0, points)) for g in range(0, games, per)]


def deviation_outcomes(
    rewards: Array,
    sizes: Array,
    reported_rewards: Array,
    reported_sizes: Array,
    group: int,
    deviation_rewards: Array,
    deviation_sizes: Array,
    pi_init: Array,
    divergence: str | Divergence,
    lam: float,
    payment_rule: str = "affine_maximizer",
    score_offset: Array | None = None,
    *,
    keep_distributions: bool = True,
    on_progress: ProgressCallback | None = None,
    chunk_elements: int = BLOCK_ELEMENTS,
) -> DeviationOutcomes:
    """Group ``group``'s outcomes for a batch of its reports, in a batch of games.

    Parameters
    ----------
    rewards, sizes : (G, n, m), (G, n) true reward models and sizes.
    reported_rewards, reported_sizes : (G, n, m), (G, n) the others' reports (row ``group``
        is ignored).
    group : the deviating group ``i``.
    deviation_rewards, deviation_sizes : (G, P, m), (G, P) group ``i``'s reports (broadcast
        views are fine; nothing is copied whole).
    pi_init : (m,) initial distribution; divergence, lam : the regulariser.
    payment_rule : ``"none"`` or ``"affine_maximizer"`` (eq. 1).
    score_offset : (m,) scores owned by no group (``Game.score_offset``) or ``None``.
    keep_distributions : whether to return the (G, P, m) distributions.
    on_progress : called with ``(rows done, rows in all)`` after each block.
    chunk_elements : most values in one block of score rows (at most
        :data:`~rlhf_mech._numerics.CHUNK_ELEMENTS`; see :data:`BLOCK_ELEMENTS`).

    Returns
    -------
    DeviationOutcomes

    Notes
    -----
    See the module docstring: one :func:`~rlhf_mech.solver.solve_sw_max` call per block of
    rows, plus one for the ``G`` leave-one-out problems of group ``i``. Equal, up to rounding
    in the order of the sums, to :func:`~rlhf_mech.mechanism.mechanism_outcome` at each point.
    """
    rule = check_payment_rule(payment_rule)
    chunk_elements = min(chunk_elements, CHUNK_ELEMENTS)
    rewards = np.asarray(rewards, dtype=float)
    sizes = np.asarray(sizes, dtype=float)
    reported_rewards = np.asarray(reported_rewards, dtype=float)
    reported_sizes = np.asarray(reported_sizes, dtype=float)
    deviation_rewards = np.asarray(deviation_rewards, dtype=float)
    deviation_sizes = np.asarray(deviation_sizes, dtype=float)
    games, n, m = rewards.shape
    points = deviation_sizes.shape[1]
    if deviation_rewards.shape != (games, points, m):
        raise ValueError(
            f"`deviation_rewards` must have shape {(games, points, m)}, got {deviation_rewards.shape}"
        )
    if not 0 <= group < n:
        raise ValueError(f"`group` must be in 0..{n - 1}, got {group}")
    others = np.flatnonzero(np.arange(n) != group)
    # b = sum_{j != i} w~_j rm~_j (+ offset): the scores of the leave-one-out problem of i.
    base = np.matmul(reported_sizes[:, None, others], reported_rewards[:, others])[:, 0]
    if score_offset is not None:
        base = base + score_offset
    true_scores = np.matmul(sizes[:, None, :], rewards)[:, 0]  # sum_j w_j rm_j, for SW
    own = rewards[:, group]
    loo = np.zeros(games)
    if rule == "affine_maximizer":
        step = rows_per_chunk(m, chunk_elements)
        for start in range(0, games, step):
            block = slice(start, min(games, start + step))
            loo[block] = solve_sw_max(base[block], pi_init, divergence, lam).value
    # One GEMM per block reads pi once for <pi, rm_i>, <pi, sum_j w_j rm_j> and <pi, b>.
    measures = np.stack([own, true_scores, base], axis=-1)  # (G, m, 3)
    shape = (games, points)
    values, divergences, valuations, welfare, others_at_pi = (np.empty(shape) for _ in range(5))
    status = np.empty(shape, dtype=int)
    distributions = np.empty((games, points, m)) if keep_distributions else None
    rows_per_block = rows_per_chunk(m, chunk_elements)
    buffer = np.empty(min(rows_per_block, games * points) * m)
    done = 0
    for gs, ps in _blocks(games, points, rows_per_block):
        rows = deviation_rewards[gs, ps]
        block_shape = rows.shape[:2]
        scores = buffer[: rows.size].reshape(rows.shape)
        np.multiply(rows, deviation_sizes[gs, ps, None], out=scores)
        scores += base[gs, None, :]
        solution = solve_sw_max(scores.reshape(-1, m), pi_init, divergence, lam)
        pi = solution.pi.reshape(rows.shape)
        if distributions is not None:
            distributions[gs, ps] = pi
        values[gs, ps] = solution.value.reshape(block_shape)
        divergences[gs, ps] = solution.divergence.reshape(block_shape)
        status[gs, ps] = solution.status.reshape(block_shape)
        measured = np.matmul(pi, measures[gs])
        valuations[gs, ps] = measured[..., 0]
        welfare[gs, ps] = measured[..., 1]
        others_at_pi[gs, ps] = measured[..., 2]
        done += block_shape[0] * block_shape[1]
        if on_progress is not None:
            on_progress(done, games * points)
    group_valuations = sizes[:, group, None] * valuations
    # eq. (1): p_i = V_{-i} - ASW_{-i}(pi_k) with ASW_{-i}(pi_k) = <pi_k, b> - D_f(pi_k || pi_init)
    # (= V(k) - w~_k <pi_k, rm~_k>, the form of payments.affine_maximizer_payments).
    affine = loo[:, None] - (others_at_pi - divergences)
    payments = affine if rule == "affine_maximizer" else np.zeros(shape)
    return DeviationOutcomes(
        distributions=distributions,
        values=values,
        leave_one_out_values=loo,
        valuations=valuations,
        group_valuations=group_valuations,
        payments=payments,
        utilities=group_valuations - payments,
        social_welfare=welfare,
        status=status,
    )


@dataclass(frozen=True)
class SweepResult:
    """One group's misreport family on a game: every point measured on the true types.

    Attributes
    ----------
    game : the game; group : index of the deviating group.
    family : ``"size"``, ``"mixing"``, ``"polarise"`` or ``"explicit"``
        (:mod:`rlhf_mech.strategies`).
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
    leave_one_out_value : ``V_{-i}``, the same at every point (0 for rule ``none``).
    status : (P,) solver status per point.
    notes : what the output must say about the reports (clipping, real-valued sizes, ...).
    """

    game: Game
    group: int
    family: str
    payment_rule: str
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

    @property
    def group_name(self) -> str:
        return self.game.group_names[self.group]

    @property
    def parameter_name(self) -> str:
        """``alpha``, ``beta``, ``epsilon`` or ``report``."""
        return PARAMETER_NAMES[self.family]

    @property
    def utilities_no_payment(self) -> Array:
        """The utility without payment, ``w_i v_i`` (= :attr:`group_valuations`)."""
        return self.group_valuations

    @property
    def converged(self) -> bool:
        return bool(np.all(self.status == CONVERGED))

    def gains(self, with_payment: bool = True) -> Array:
        """(P,) utility minus truth's utility, under the payment rule or without payment."""
        utility = self.utilities if with_payment else self.utilities_no_payment
        return utility - utility[self.truthful_index]

    def best_deviation(self, with_payment: bool = True) -> tuple[float, int] | None:
        """The largest gain over truth among the other points and its index (``None``: no other)."""
        gains = self.gains(with_payment)
        others = np.flatnonzero(np.arange(gains.size) != self.truthful_index)
        if others.size == 0:
            return None
        k = int(others[np.argmax(gains[others])])
        return float(gains[k]), k

    def truth_is_optimal(self, with_payment: bool = True) -> bool:
        """Whether no point beats truth by more than :data:`GAIN_TOL` (relative)."""
        best = self.best_deviation(with_payment)
        utility = self.utilities if with_payment else self.utilities_no_payment
        scale = max(1.0, abs(float(utility[self.truthful_index])))
        return best is None or best[0] <= GAIN_TOL * scale

    def is_best(self, quantity: str) -> Array:
        """(P,) bool: the points where ``quantity`` is best for the group (ties within TIE_TOL)."""
        values = np.asarray(getattr(self, quantity))
        best = values.max() if BETTER[quantity] == "max" else values.min()
        return np.abs(values - best) <= TIE_TOL * max(1.0, abs(float(best)))


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
            start, stop, step = (float(part) for part in spec.split(":"))
            if not all(math.isfinite(v) for v in (start, stop, step)) or step <= 0 or stop < start:
                raise RlhfMechError(f"{option}: range {text!r} needs finite start <= stop and step > 0")
            count = math.floor((stop - start) / step + 1e-9) + 1
            if count > MAX_POINTS:
                raise RlhfMechError(f"{option}: range {text!r} has {count} points (at most {MAX_POINTS})")
            # 12 significant digits: 0.1 * 3 is reported as 0.3, not 0.30000000000000004.
            return np.array([float(f"{start + k * step:.12g}") for k in range(count)])
        values = np.array([float(part) for part in spec.split(",")])
    except ValueError:
        raise RlhfMechError(
            f"{option}: cannot read {text!r}; expected a comma list (0.5,1,2) or start:stop:step"
        ) from None
    if not np.all(np.isfinite(values)):
        raise RlhfMechError(f"{option}: {text!r} has a value that is not a finite number")
    return values


def read_reward(text: str, game: Game, option: str = "--report-reward") -> Array:
    """A reported reward: a comma list of ``m`` numbers, or a ``.csv``/``.npy`` file of them."""
    path = Path(text)
    if path.suffix in (".csv", ".npy"):
        try:
            values = np.load(path) if path.suffix == ".npy" else np.loadtxt(path, delimiter=",", ndmin=1)
        except (OSError, ValueError) as exc:
            raise RlhfMechError(f"{option}: cannot read {text}: {exc}") from None
        values = np.asarray(values, dtype=float).reshape(-1)
    else:
        try:
            values = np.array([float(part) for part in text.split(",")])
        except ValueError:
            raise RlhfMechError(
                f"{option}: cannot read {text!r}; expected a comma list of rewards or a .csv/.npy file"
            ) from None
    if values.shape != (game.n_outcomes,):
        raise RlhfMechError(
            f"{option}: expected {game.n_outcomes} rewards (one per outcome), got {values.size}"
        )
    if not np.all(np.isfinite(values)):
        raise RlhfMechError(f"{option}: rewards must be finite numbers")
    if game.normalization != "none":
        if np.any(values < 0):
            raise RlhfMechError(f"{option}: rewards must be >= 0")
        total = float(values.sum() if game.normalization == "sum" else values.max())
        if abs(total - 1.0) > NORMALIZATION_TOL:
            what = "sum" if game.normalization == "sum" else "largest reward"
            raise RlhfMechError(
                f"{option}: {what} is {total!r}; normalization {game.normalization!r} needs 1 (±1e-9)"
            )
    return values


def _check(values: Array, ok: Array, option: str, rule: str) -> None:
    if not np.all(ok):
        bad = values[~ok][0]
        raise RlhfMechError(f"{option} = {_num(bad)}: {rule}")


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
    reward, size = game.rewards[i], float(game.sizes[i])
    option = {"size": "alpha", "mixing": "beta", "polarise": "epsilon"}.get(family, family)
    notes: list[str] = []
    if family == "explicit":
        reports = explicit_misreports(
            reward,
            size,
            reward if report_reward is None else report_reward,
            size if report_size is None else report_size,
        )
        _check(reports.sizes, reports.sizes > 0, "--report-size", "a reported size must be > 0")
        return reports, 0, _common_notes(game, i, reports)
    if family not in PARAMETER_NAMES:
        raise RlhfMechError(f"unknown misreport family {family!r}")
    values, truth = with_truth(family, np.asarray(parameters, dtype=float))
    if family == "size":
        _check(values, values > 0, option, "alpha must be > 0 (a reported size is positive)")
        reports = size_misreports(reward, size, values)
    elif family == "mixing":
        if game.n_groups < 2:
            raise RlhfMechError("mixing (beta) needs at least one other group")
        others = others_reward(game.reported_rewards, game.reported_sizes, i)
        reports = mixing_misreports(reward, size, others, values, game.normalization)
        names = [name for j, name in enumerate(game.group_names) if j != i]
        notes.append(
            f"rm_-i = {names[0]}'s report"
            if len(names) == 1
            else "rm_-i = the size-weighted mean of the other groups' reports"
        )
        if reports.adjusted.any():
            shown = ", ".join(_num(b) for b in values[reports.adjusted])
            what = (
                "had negative entries: clipped to 0 and renormalised to sum 1"
                if game.normalization == "sum"
                else "had negative entries or a maximum off 1: clipped to 0 and rescaled to max 1"
                if game.normalization == "max"
                else "had negative entries: clipped to 0"
            )
            notes.append(f"beta = {shown}: the mix {what} (marked †)")
    else:
        if game.normalization not in ("sum", "max"):
            raise RlhfMechError("polarisation (epsilon) needs a 'sum' or 'max' normalised game")
        _check(values, values >= 0, option, "epsilon must be >= 0")
        reports = polarise_misreports(reward, size, values, game.normalization)
        notes.extend(_polarise_notes(game, i, reports))
    return reports, truth, tuple(notes) + _common_notes(game, i, reports)


def _polarise_notes(game: Game, i: int, reports: Misreports) -> list[str]:
    reward = game.rewards[i]
    most, least = int(np.argmax(reward)), int(np.argmin(reward))
    if reward[most] == reward[least]:
        return [f"{game.group_names[i]} values every outcome equally (s_i = 1): the report cannot change"]
    plus = f"+eps at {game.outcomes[most]!r} (most preferred), " if game.normalization == "sum" else ""
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
    if np.any((sizes != np.round(sizes)) | (sizes < 1) | (sizes > upper)):
        bound = f"1..{_num(game.max_size)}" if game.max_size is not None else "the positive integers"
        notes.append(f"reported sizes are real-valued in this sweep (the game's sizes are {bound})")
    if game.reported_sizes[i] != game.sizes[i] or np.any(game.reported_rewards[i] != game.rewards[i]):
        notes.append(f"{game.group_names[i]}'s report in the file is replaced by the swept reports")
    liars = [game.group_names[j] for j in game.misreporting_groups() if j != i]
    if liars:
        notes.append(f"the other groups report as in the file ({', '.join(liars)} misreport)")
    return tuple(notes)


def sweep(
    game: Game,
    group: str | int,
    family: str,
    parameters: Sequence[float] | Array = (),
    payment_rule: str | None = None,
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
    payment_rule : overrides ``game.payment_rule`` when given.
    report_reward, report_size : the explicit report (family ``"explicit"``).
    on_progress : see :func:`deviation_outcomes`.
    keep_distributions : keep the (P, m) fine-tuned distributions (``False``: ``None``; saves
        a (P, m) array when only the figures are wanted).

    Returns
    -------
    SweepResult

    Notes
    -----
    One batch (:func:`deviation_outcomes`); every point equals
    :func:`~rlhf_mech.mechanism.mechanism_outcome` on the profile with group ``i``'s report
    replaced. Under the affine-maximizer payment truth maximises the utility (Proposition
    4.4); without payment a polarised report beats it when ``min rm_i > 0`` and ``s_i >= 2``
    (Theorem 4.2).
    """
    i = group_index(game, group)
    rule = payment_rule or game.payment_rule
    reports, truth, notes = family_misreports(game, i, family, parameters, report_reward, report_size)
    out = deviation_outcomes(
        game.rewards[None],
        game.sizes[None],
        game.reported_rewards[None],
        game.reported_sizes[None],
        i,
        reports.rewards[None],
        reports.sizes[None],
        game.pi_init,
        game.divergence,
        game.lam,
        rule,
        game.score_offset,
        on_progress=on_progress,
        keep_distributions=keep_distributions,
    )
    status = out.status[0]
    if np.any(status != CONVERGED):
        shown = ", ".join(_num(p) for p in reports.parameters[status != CONVERGED][:5])
        notes = (*notes, f"the solver did not converge at {PARAMETER_NAMES[family]} = {shown}")
    return SweepResult(
        game=game,
        group=i,
        family=reports.family,
        payment_rule=rule,
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
    """

    family: str
    parameters: Array
    report_reward: str | None = None
    report_size: float | None = None
    group: str | None = None
    all_groups: bool = False

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
                return cls(family, parse_parameters(text, option), group=group, all_groups=all_groups)
        return cls("explicit", np.empty(0), report_reward, report_size, group, all_groups)

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
        payment_rule: str | None = None,
        on_progress: ProgressCallback | None = None,
        keep_distributions: bool = True,
    ) -> list[SweepResult]:
        """One :func:`sweep` per requested group."""
        reward = None if self.report_reward is None else read_reward(self.report_reward, game)
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
