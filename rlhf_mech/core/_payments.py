r"""Payment rules (section 3): the registry, and the affine-maximizer payment of eq. (1).

A payment rule charges each group for the reports of all (section 3). Each rule is a frozen
:class:`PaymentRule` of pure functions, kept in :data:`PAYMENT_RULES` (the pattern of
:mod:`~rlhf_mech.core._divergences`): a new rule is one entry plus its functions, and no
caller branches on a rule's name.

============================  ======================================================  ===========
rule                          p_i                                                     paper
============================  ======================================================  ===========
``none``                      0                                                       Thm 4.2
``affine_maximizer``          max_pi ASW_-i(pi) - ASW_-i(psi(reports))                eq. (1)
``intermediate_checkpoints``  max over the main run's checkpoints of ASW_-i, less     Heuristic 1
                              ASW_-i(psi(reports))                                    (sec. 4.4)
``early_stopped``             ASW_-i of an early-stopped run without group i, less    Heuristic 2
                              ASW_-i(psi(reports))                                    (sec. 4.4)
============================  ======================================================  ===========

The heuristics replace the exact maximum over all models by a maximum over a constrained set
(section 4.4), the checkpoints of a model of training (:func:`~rlhf_mech.core.mirror_ascent`,
:attr:`~rlhf_mech.core.TrainingRule.trajectory`) with the rule's parameters ``steps``,
``step_size`` and ``checkpoint_every`` (Heuristic 1 in a candidate-model game: the listed
``checkpoints`` among the candidates; with ``initial: included``, the default, the initial
model ``pi_init`` too). Heuristic 1 stays ``>= 0`` (the final model is one of
the checkpoints) but its set depends on group ``i``'s report, so DSIC is not guaranteed;
Heuristic 2's run never sees group ``i``, so it stays DSIC, but its payments may be negative.

``ASW_{-i}(pi) = sum_{j != i} w_j <pi, rm_j> + <pi, offset> - D_f(pi || pi_init)`` on the
*reports*. The first term of eq. (1) is the optimal value of the training problem without
group ``i`` (a leave-one-out solve); the second is ``OBJ(pi*) - w_i <pi*, rm_i>``, the
objective at the fine-tuned model less group ``i``'s own term. :func:`affine_maximizer_payment`
is that one equation; every caller (a profile, a batch of one group's deviations, the
searches) evaluates it there. By Proposition 4.4 ``(psi, p^AFF)`` is DSIC and IR and
``p_i >= 0``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from rlhf_mech.core._numerics import rows_per_chunk, tile_shape
from rlhf_mech.core._parameters import Configurable, Parameter
from rlhf_mech.core._registry import lookup
from rlhf_mech.core._status import CONVERGED

if TYPE_CHECKING:
    from rlhf_mech.core._mechanism import Mechanism, Profile
    from rlhf_mech.core._solver import SolveResult

Array = np.ndarray
_TINY = np.finfo(float).tiny
_EPS = np.finfo(float).eps


@dataclass(frozen=True)
class PaymentResult:
    """Payments of one profile of reports, or of a batch (leading axes).

    Attributes
    ----------
    payments : (..., n) array, ``p_i``.
    leave_one_out_values : (..., n) array, the first term of eq. (1), ``max_pi ASW_{-i}(pi)``
        (zeros for rule ``none``).
    status : (..., n) int array, the solver status of each leave-one-out problem
        (:data:`~rlhf_mech.core.CONVERGED` where none was solved); a payment computed from a
        problem that did not converge says so here.
    rule : the payment rule's name.
    """

    payments: Array
    leave_one_out_values: Array
    status: Array
    rule: str

    @property
    def converged(self) -> bool:
        return bool(np.all(self.status == CONVERGED))


class OthersOptimum(Protocol):
    """``(mechanism, others_scores (B, m)) -> (first (B,), status (B,))``: for a group whose
    report varies while the others' are fixed, the part of its payment that does not depend on
    its report (eq. (1)'s first term), from the others' scores (offset included), one value per
    row; zeros where the rule has none. ``others_scores`` is left unchanged."""

    def __call__(self, mechanism: Mechanism, others_scores: Array) -> tuple[Array, Array]: ...


class GroupPayments(Protocol):
    """``(mechanism, first (G, 1), objective (G, P), own (G, P), scores (G, P, m),
    others_scores (G, m)) -> (G, P)``: that group's payment at each of ``P`` reports in each
    of ``G`` games, from the training objective at the report's fine-tuned model, its reported
    term ``w~ <pi, rm~>`` there and the report's scores (a rule whose reference set depends on
    the report, Heuristic 1, trains on them)."""

    def __call__(
        self, mechanism: Mechanism, first: Array, objective: Array, own: Array, scores: Array, others: Array
    ) -> Array: ...


class ProfileShortcut(Protocol):
    """``(mechanism, reports (one profile), scores (m,), solution) -> PaymentResult``: every
    group's payment of one profile by a faster route than the general one
    (:func:`profile_payments`), to which it must agree (a test checks every shortcut against
    it, for every divergence)."""

    def __call__(
        self, mechanism: Mechanism, reports: Profile, scores: Array, solution: SolveResult
    ) -> PaymentResult: ...


@dataclass(frozen=True)
class TrainingCost:
    """The training a payment rule needs beyond the main run (section 4.4's cost argument).

    Attributes
    ----------
    full_runs_per_group : full training runs per group (eq. (1)'s leave-one-out optimum
        ``max_pi ASW_{-i}``: one run without group ``i``, ``n`` in all).
    early_stopped_runs_per_group : runs of the rule's ``steps`` per group (Heuristic 2's
        ``theta_T^{-i}``).
    """

    full_runs_per_group: int = 0
    early_stopped_runs_per_group: int = 0

    def runs(self, n: int) -> tuple[int, int]:
        """``(full runs, early-stopped runs)`` for ``n`` groups, the main run included:
        ``(1 + n a, n b)``."""
        return 1 + n * self.full_runs_per_group, n * self.early_stopped_runs_per_group


class CheckpointValues(Protocol):
    """``(mechanism, scores (G, P, m), others_scores (G, m)) -> (G, P, C)``: ``ASW_{-i}`` at
    each model of the reference set of a report's scores (see
    :attr:`PaymentRule.checkpoint_values`)."""

    def __call__(self, mechanism: Mechanism, scores: Array, others: Array) -> Array: ...


class UtilityGradient(Protocol):
    """``(true_weighted_reward, contribution) -> g``: the gradient of the group's utility in
    ``pi`` at its fine-tuned model (see :attr:`PaymentRule.utility_gradient`)."""

    def __call__(self, own: Array, contribution: Array) -> Array: ...


@dataclass(frozen=True)
class PaymentRule(Configurable):
    """One payment rule of the registry: two functions, and an optional shortcut.

    Attributes
    ----------
    name : canonical name used in game files and on the command line.
    formula : ``p_i`` as text, for documentation and output.
    reference : where the paper defines or discusses it.
    charges : whether the rule ever charges (``False`` for ``none``: output leaves out the
        payment rows that would all be 0).
    dsic : whether a theorem makes the mechanism DSIC under this rule (Proposition 4.4),
        so that an audit's search is a check of the theorem rather than the verdict.
    nonnegative : whether payments are ``>= 0`` by a theorem (Proposition 4.4).
    others_optimum : :class:`OthersOptimum`, the first term of a group's payment.
    group_payments : :class:`GroupPayments`, a group's payment at its reports.
    utility_gradient : :class:`UtilityGradient` or ``None`` where the payment is not
        differentiable in ``pi`` (Heuristic 1's maximum). From the group's true ``w_i rm_i``
        and its reported contribution ``c = w~ rm~`` (constants drop out, see
        :func:`~rlhf_mech.core.sensitivity`): ``w_i rm_i`` without payment; ``w_i rm_i - c``
        under eq. (1), whose first term the report does not move and whose
        ``d ASW_{-i} / d pi = b - lambda g'(t) = mu - c`` at the optimum.
    shortcut : :class:`ProfileShortcut` or ``None``: every payment of one profile at once,
        where that buys speed (eq. (1) under KL in closed form, Heuristic 1's one run).
    additive_only : whether the rule needs an additive training rule (SW-Max: one whose
        objective is a sum over the groups, so that eq. (1)'s ``ASW_{-i}`` exists); such a
        rule cannot be combined with MaxMin or Nash (appendix E).
    separable : whether, over many prompts, the payment is the prompt-weighted sum of one
        payment per prompt (true of eq. (1), whose terms are sums over prompts; not of
        Heuristic 1, whose maximum over the checkpoints is taken of the whole run's
        ``ASW_{-i}``).
    schema : the rule's :class:`Parameter` records.
    parameters : ``((name, value), ...)``, the values set (:meth:`with_parameters`); a
        parameter not set takes its default (:meth:`setting`).
    cost : :class:`TrainingCost`, the training runs the rule needs besides the main run.
    checkpoint_values : :class:`CheckpointValues` or ``None``: for a rule whose first term is
        ``max(max_t ASW_{-i}(theta_t), ASW_{-i}(psi))`` over a reference set of models
        (Heuristic 1's checkpoints), ``ASW_{-i}`` at each of them. The group's utility is
        then the minimum of smooth pieces, one per model and one for ``psi``, which the
        best-response search follows piece by piece.
    """

    family: ClassVar[str] = "payment rule"

    name: str
    formula: str
    reference: str
    charges: bool
    dsic: bool
    nonnegative: bool
    others_optimum: OthersOptimum
    group_payments: GroupPayments
    utility_gradient: UtilityGradient | None = None
    shortcut: ProfileShortcut | None = None
    additive_only: bool = True
    separable: bool = True
    schema: tuple[Parameter, ...] = ()
    parameters: tuple[tuple[str, Any], ...] = ()
    cost: TrainingCost = TrainingCost()
    checkpoint_values: CheckpointValues | None = None


def affine_maximizer_payment(first: Array, objective: Array, own: Array) -> Array:
    r"""Eq. (1): ``p_i = max_pi ASW_{-i}(pi) - ASW_{-i}(psi(reports))``.

    Parameters
    ----------
    first : ``max_pi ASW_{-i}(pi)``, the optimal value of the training problem without group
        ``i`` (it does not depend on group ``i``'s report: what makes the rule DSIC).
    objective : ``OBJ(pi*)``, the training objective at the fine-tuned model on the reports
        (``sum_j w~_j <pi*, rm~_j> + <pi*, offset> - D_f(pi* || pi_init)``).
    own : ``w~_i <pi*, rm~_i>``, group ``i``'s reported term at ``pi*``.

    Returns
    -------
    ``first - (objective - own)``, broadcast; ``objective - own`` is ``ASW_{-i}(pi*)``.
    """
    return first - (objective - own)


# --- none ------------------------------------------------------------------------------------


def no_first_term(mechanism: Mechanism, others_scores: Array) -> tuple[Array, Array]:
    """The first term of a rule that has none (``none``; Heuristic 1, whose reference set is
    trained on each report's scores): zeros, converged."""
    games = others_scores.shape[0]
    return np.zeros(games), np.full(games, CONVERGED)


def _no_group_payments(
    mechanism: Mechanism, first: Array, objective: Array, own: Array, scores: Array, others: Array
) -> Array:
    return np.zeros(np.shape(objective))


def _no_payments(
    mechanism: Mechanism, reports: Profile, scores: Array, solution: SolveResult
) -> PaymentResult:
    """``none``'s shortcut: zeros, for any batch of profiles, without forming a leave-one-out row."""
    zeros = np.zeros(reports.sizes.shape)
    return PaymentResult(zeros, zeros, np.full(zeros.shape, CONVERGED), NONE.name)


def _affine_group_payments(
    mechanism: Mechanism, first: Array, objective: Array, own: Array, scores: Array, others: Array
) -> Array:
    return affine_maximizer_payment(first, objective, own)


def reported_terms(reports: Profile, pi: Array) -> Array:
    """``w~_i <pi, rm~_i>`` (..., n): each group's reported term at the fine-tuned model ``pi``
    (..., m). One profile is a matrix-vector product; a batch, one per profile."""
    return reports.sizes * row_values(reports.rewards, pi)


def row_values(rewards: Array, pi: Array) -> Array:
    """``<pi, rm_i>`` (..., n) of reward models (..., n, m) at distributions (..., m)."""
    if pi.ndim == 1:
        return rewards @ pi
    return np.einsum("...nm,...m->...n", rewards, pi)


# --- the general route, and the affine maximizer's shortcut ------------------------------------


def profile_payments(
    mechanism: Mechanism, reports: Profile, scores: Array, solution: SolveResult
) -> PaymentResult:
    """Every group's payment for a profile of reports, or a batch of them (leading axes).

    Parameters
    ----------
    mechanism : the mechanism (its payment rule decides); reports : the profile(s);
    scores : (..., m) ``mechanism.scores`` of the reports; solution : the training rule's
        solution there.

    Notes
    -----
    The payment rule's shortcut where it has one and takes the batch, else the general
    route (:func:`general_payments`): the two must agree.
    """
    shortcut = mechanism.payment_rule.shortcut
    if shortcut is not None:
        result = shortcut(mechanism, reports, scores, solution)
        if result is not None:
            return result
    return general_payments(mechanism, reports, scores, solution)


def general_payments(
    mechanism: Mechanism,
    reports: Profile,
    scores: Array,
    solution: SolveResult,
    groups: Array | None = None,
) -> PaymentResult:
    """The general route of every payment rule: each group's leave-one-out scores
    ``s - w~_i rm~_i`` (:func:`leave_one_out_blocks`) through the rule's ``others_optimum``,
    then its ``group_payments`` at the profile's solution.

    ``groups`` (one profile only): the groups to pay; the others' entries are left 0. The
    leave-one-out rows are formed in blocks of at most
    :data:`~rlhf_mech.core._numerics.CHUNK_ELEMENTS` values.
    """
    rule = mechanism.payment_rule
    shape = reports.sizes.shape
    n, m = shape[-1], scores.shape[-1]
    pi = solution.pi.reshape(-1, m)
    values = np.reshape(solution.value, -1)
    own = reported_terms(reports, solution.pi).reshape(-1, n)
    flat_scores = scores.reshape(-1, m)
    first = np.zeros((pi.shape[0], n))
    payments = np.zeros((pi.shape[0], n))
    status = np.full((pi.shape[0], n), CONVERGED)
    pairs = np.arange(first.size) if groups is None else np.asarray(groups)
    for k, block in leave_one_out_blocks(reports, scores, pairs):
        rows = pairs[k : k + block.shape[0]]
        profile, group = np.divmod(rows, n)
        rows_mechanism = mechanism.rows(profile)
        f, st = rule.others_optimum(rows_mechanism, block)
        first[profile, group], status[profile, group] = f, st
        payments[profile, group] = rule.group_payments(
            rows_mechanism,
            f[:, None],
            values[profile][:, None],
            own[profile, group][:, None],
            flat_scores[profile][:, None, :],
            block,
        )[:, 0]
    return PaymentResult(payments.reshape(shape), first.reshape(shape), status.reshape(shape), rule.name)


def affine_maximizer_payments(
    mechanism: Mechanism, reports: Profile, solution: SolveResult | None = None
) -> PaymentResult:
    r"""The affine-maximizer payment rule ``p^AFF`` (eq. 1) for one profile of reports.

    Parameters
    ----------
    mechanism : the mechanism (its training rule, regulariser and outcome costs are used;
        its payment rule is not consulted).
    reports : the reported profile (rewards (n, m), sizes (n,)).
    solution : the training rule's solution for ``mechanism.scores(reports)``, if computed.

    Returns
    -------
    PaymentResult

    Notes
    -----
    :func:`affine_maximizer_payment` with ``V_{-i}`` the optimal value of the scores
    ``s - w_i rm_i`` (``s = mechanism.scores(reports)``), solved as batches of at most
    :data:`~rlhf_mech.core._numerics.CHUNK_ELEMENTS` values (only values are formed, no
    ``pi``). Proposition 4.4: DSIC, IR, ``p_i >= 0`` (up to rounding: a computed payment may
    be -1e-16; it is reported as computed).

    For KL (a divergence with ``gibbs_form``) the leave-one-out maximiser is ``pi*`` tilted by
    ``exp(-w_i rm_i / lambda)``, so (Donsker-Varadhan) ``V_{-i} - V = lambda log E_{pi*}
    exp(-w_i rm_i / lambda)`` and eq. (1) reads

        p_i = lambda log E_{pi*} exp(-w_i (rm_i - c_i) / lambda),   c_i = <pi*, rm_i>,

    a centred cumulant that is >= 0 by Jensen. All n payments then cost one pass over the
    rewards with one exponential per entry and no leave-one-out solve (the rule's shortcut,
    :func:`_affine_shortcut`). The pass evaluates
    ``lambda log E exp(-w_i rm_i / lambda) + w_i c_i``; where that may have lost digits (a
    payment small next to lambda, when lambda is also large next to ``|V|``), the centred
    form is evaluated with ``expm1``. Rows where the exponentials would overflow, or where
    outcomes that ``pi*`` rounds to zero could matter, are solved directly instead.
    """
    mechanism = mechanism.with_payment_rule(AFFINE_MAXIMIZER)
    scores = mechanism.scores(reports.rewards, reports.sizes)
    if solution is None:
        solution = mechanism.training_rule.solve(mechanism, reports.rewards, reports.sizes)
    return profile_payments(mechanism, reports, scores, solution)


def _affine_shortcut(
    mechanism: Mechanism, reports: Profile, scores: Array, solution: SolveResult
) -> PaymentResult | None:
    """eq. (1) under KL for one profile: the Gibbs form (:func:`_gibbs_leave_one_out`), and the
    general route for the rows it cannot do exactly; ``None`` (the general route) otherwise."""
    if not mechanism.divergence.gibbs_form or reports.sizes.ndim != 1:
        return None
    rewards, weights = reports.rewards, reports.sizes
    value = float(solution.value)
    loo, payments, ok = _gibbs_leave_one_out(rewards, weights, solution.pi, value, mechanism.lam)
    status = np.full(rewards.shape[0], CONVERGED)
    todo = np.flatnonzero(~ok)
    if todo.size:
        direct = general_payments(mechanism, reports, scores, solution, todo)
        loo[todo], payments[todo], status[todo] = (
            direct.leave_one_out_values[todo],
            direct.payments[todo],
            direct.status[todo],
        )
    return PaymentResult(payments, loo, status, AFFINE_MAXIMIZER.name)


def leave_one_out_blocks(reports: Profile, scores: Array, rows: Array) -> Iterator[tuple[int, Array]]:
    """The leave-one-out score rows ``s - w_i rm_i`` of the rows ``rows`` (indices into the
    flattened ``(profile, group)`` pairs of ``reports``: for one profile, the groups), in
    blocks of at most :data:`~rlhf_mech.core._numerics.CHUNK_ELEMENTS` values.

    Yields ``(k, block)``: the block holds the rows of ``rows[k : k + len(block)]``. The same
    buffer is reused (and may be overwritten by the consumer) from one block to the next.
    """
    m = reports.rewards.shape[-1]
    rewards = reports.rewards.reshape(-1, m)
    weights = reports.sizes.reshape(-1)
    n = reports.sizes.shape[-1]
    flat_scores = scores.reshape(-1, m)
    step = rows_per_chunk(m)
    buf = np.empty((min(step, rows.size), m))
    for k in range(0, rows.size, step):
        idx = rows[k : k + step]
        block = slice(int(idx[0]), int(idx[-1]) + 1) if int(idx[-1]) - int(idx[0]) + 1 == idx.size else idx
        out = buf[: idx.size]
        np.multiply(weights[block, None], rewards[block], out=out)
        np.subtract(flat_scores[idx // n] if flat_scores.shape[0] > 1 else flat_scores[0], out, out=out)
        yield k, out


def _affine_others_optimum(mechanism: Mechanism, others_scores: Array) -> tuple[Array, Array]:
    """The deviating group's first term of eq. (1) is the optimal value of the others' scores
    alone: one solve per row, whatever the group reports."""
    games, m = others_scores.shape
    first = np.zeros(games)
    status = np.empty(games, dtype=int)
    step = rows_per_chunk(m)
    values = mechanism.training_rule.scores.optimal_values  # type: ignore[union-attr]
    for start in range(0, games, step):
        block = slice(start, min(games, start + step))
        first[block], status[block] = values(mechanism, others_scores[block].copy())
    return first, status


#: Where the centred payment ``p_i`` is below ``lambda`` times this (and lambda exceeds the
#: scale of the values), it is re-evaluated from ``expm1`` of the centred exponents.
_SMALL_PAYMENT = 0.125


def _gibbs_leave_one_out(
    rewards: Array, weights: Array, pi: Array, value: float, lam: float
) -> tuple[Array, Array, Array]:
    """``(V_{-i}, p_i, ok)`` for a Gibbs-form (KL) maximiser ``pi`` with optimal value ``value``.

    Pass 1, over tiles of the rewards: ``c_i = E_pi rm_i`` and
    ``T_i = E_pi exp(k_i rm_i)``, ``k_i = -w_i / lambda``; then ``V_{-i} = V + lambda log T_i``
    and ``p_i = lambda log T_i + w_i c_i``. Pass 2, for the rows where that sum may have lost
    digits or fell outside the normal range: ``p_i = lambda log1p(E_pi expm1(k_i (rm_i - c_i)))``
    (the argument is >= 0 by Jensen, so nothing cancels in ``log1p``). ``ok`` is False where
    neither pass is exact (overflow, or probability lost to underflow in ``pi`` that the
    exponentials could scale back up); those rows must be solved directly.
    """
    m = rewards.shape[1]
    total = float(pi.sum())
    k = -weights / lam
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        means, sums = _tilted_sums(rewards, k, pi)
        means /= total
        log_tilt = np.log(sums / total)  # (V_{-i} - V) / lambda
        payments = lam * log_tilt + weights * means
        loo = value + lam * log_tilt
        # relative loss of the terms that underflowed (each below TINY) is at most m TINY / sums
        ok = np.isfinite(sums) & (sums >= m * _TINY / _EPS**2) & np.isfinite(means)
        underflow = bool(pi.min() < _TINY)
        if underflow:  # outcomes with pi = 0: exp(k rm) must not be able to scale them back up
            r_min, r_max = rewards.min(axis=1), rewards.max(axis=1)
            e_max = np.maximum(k * r_min, k * r_max)
            ok &= e_max - np.log(sums) <= np.log(_EPS**2 / (m * _TINY))
        again = ~ok | ((payments < _SMALL_PAYMENT * lam) & (lam > np.abs(value) + np.abs(weights * means)))
        again &= np.isfinite(means)
        rows2 = np.flatnonzero(again)
        if rows2.size:
            x = _centred_expm1(rewards, k, means, pi, rows2)
            x /= total
            ok2 = np.isfinite(x) & (x > -1.0)
            if underflow:
                k2, c2 = k[rows2], means[rows2]
                e_max2 = np.maximum(k2 * (r_min[rows2] - c2), k2 * (r_max[rows2] - c2))
                ok2 &= e_max2 <= np.log(_EPS**2 / (m * _TINY))
            use = rows2[ok2]
            payments[use] = lam * np.log1p(x[ok2])
            loo[use] = value + payments[use] - weights[use] * means[use]
            ok[use] = True
            ok[rows2[~ok2]] = False
    return loo, payments, ok


def _tilted_sums(rewards: Array, k: Array, pi: Array) -> tuple[Array, Array]:
    """``(rewards @ pi, exp(k[:, None] * rewards) @ pi)`` in one pass over ``rewards``.

    Tiles of at most :data:`~rlhf_mech._numerics.TILE_ELEMENTS` values: each is read
    from memory once, and its exponentials stay in cache for the product that follows.
    """
    n, m = rewards.shape
    rb, cb = tile_shape(m)
    means = np.zeros(n)
    sums = np.zeros(n)
    if rb == 1:  # long rows: 1-D tiles, accumulated in order (the common, hot case)
        pi_tiles = [pi[c0 : c0 + cb] for c0 in range(0, m, cb)]
        buf = np.empty(cb)
        outs = [buf[: p.size] for p in pi_tiles]
        for i in range(n):
            row, k_i = rewards[i], k[i]
            mean = total = 0.0
            for c0, p, out in zip(range(0, m, cb), pi_tiles, outs, strict=True):
                block = row[c0 : c0 + cb]
                mean += np.dot(block, p)
                np.multiply(block, k_i, out=out)
                total += np.dot(np.exp(out, out=out), p)
            means[i] = mean
            sums[i] = total
        return means, sums
    buf = np.empty((rb, m))
    for r0 in range(0, n, rb):
        rows = slice(r0, min(n, r0 + rb))
        block = rewards[rows]
        out = buf[: block.shape[0]]
        means[rows] = block @ pi
        np.multiply(block, k[rows, None], out=out)
        sums[rows] = np.exp(out, out=out) @ pi
    return means, sums


def _centred_expm1(rewards: Array, k: Array, means: Array, pi: Array, rows: Array) -> Array:
    """``sum_x pi_x expm1(k_i (rm_i(x) - c_i))`` for ``i`` in ``rows``."""
    m = rewards.shape[1]
    rb, cb = tile_shape(m)
    x = np.zeros(rows.size)
    for j in range(0, rows.size, rb):
        idx = rows[j : j + rb]
        part = slice(j, j + idx.size)
        for c0 in range(0, m, cb):
            cols = slice(c0, min(m, c0 + cb))
            y = rewards[idx, cols] - means[idx, None]
            y *= k[idx, None]
            np.expm1(y, out=y)
            x[part] += y @ pi[cols]
    return x


# --- the heuristics of section 4.4 -----------------------------------------------------------

#: Heuristic 1's ``initial`` choices: whether the initial model (step 0) is a checkpoint. The
#: paper ("we usually save intermediate models at different training steps", section 4.4)
#: does not settle it; ``included`` is the default (docs/heuristics.md says why).
INITIAL_CHECKPOINT = ("included", "excluded")

#: The training model's parameters, shared by both heuristics.
_TRAINING_PARAMETERS: tuple[Parameter, ...] = (
    # at most 10^4 steps: a run's cost (and its checkpoints' memory) grows with T, and a game
    # file must not be able to ask for an endless one
    Parameter("steps", "int", 20, minimum=1, maximum=10_000, description="training steps T of the model run"),
    Parameter(
        "step_size",
        "float",
        0.5,
        minimum=0.0,
        exclusive=True,
        maximum=1.0,
        description="mirror-ascent step (relative to the curvature; 1 for KL is one exact step)",
    ),
)


def _others_asw(mechanism: Mechanism, theta: Array, others: Array) -> Array:
    """``ASW_{-i}(theta) = <theta, b> - D_f(theta || pi_init)`` for distributions ``theta``
    (..., m) and the others' scores ``b`` (broadcast against them, offset included)."""
    divergence = mechanism.divergence.value(theta, mechanism.pi_init, mechanism.lam)
    return np.einsum("...m,...m->...", theta, np.broadcast_to(others, theta.shape)) - divergence


def _run(mechanism: Mechanism, scores: Array, checkpoints: bool) -> Array:
    """The model run of the rule's training parameters on score rows: (B, C, m) checkpoints
    (every ``checkpoint_every`` steps; the last iterate alone unless ``checkpoints``)."""
    rule = mechanism.payment_rule
    steps = int(rule.setting("steps"))
    every = int(rule.setting("checkpoint_every")) if checkpoints else steps
    trajectory = mechanism.training_rule.scores.trajectory  # type: ignore[union-attr]
    return trajectory(mechanism, scores, steps, float(rule.setting("step_size")), every)


def _early_stopped_others_optimum(mechanism: Mechanism, others_scores: Array) -> tuple[Array, Array]:
    """Heuristic 2's first term: ``ASW_{-i}`` at the last iterate of a run on the others' scores."""
    final = _run(mechanism, others_scores, checkpoints=False)[:, -1]
    return _others_asw(mechanism, final, others_scores), np.full(others_scores.shape[0], CONVERGED)


def _checkpoint_models(mechanism: Mechanism, scores: Array) -> Array:
    """Heuristic 1's constrained set for score rows (B, m) -> (B, C, m): the listed candidate
    models (point masses) when the rule names ``checkpoints``, else the model run's; with
    ``initial: included``, the initial model ``pi_init`` (step 0) first."""
    listed = mechanism.payment_rule.setting("checkpoints")
    if listed is None:
        models = _run(mechanism, scores, checkpoints=True)
    else:
        points = np.zeros((len(listed), scores.shape[-1]))
        points[np.arange(len(listed)), list(listed)] = 1.0
        models = np.broadcast_to(points, (scores.shape[0], *points.shape))
    if mechanism.payment_rule.setting("initial") != "included":
        return models
    # pi_init is (m,), or one row per score row (a batch of problems), as the run takes it
    initial = np.broadcast_to(np.reshape(mechanism.pi_init, (-1, scores.shape[-1])), scores.shape)
    return np.concatenate([initial[:, None, :], np.asarray(models)], axis=1)


def _checkpoints_shortcut(
    mechanism: Mechanism, reports: Profile, scores: Array, solution: SolveResult
) -> PaymentResult:
    """Heuristic 1 for profiles (any batch): ``p_i = max(max_t ASW_{-i}(theta_t), ASW_{-i}(psi))
    - ASW_{-i}(psi)`` with the checkpoints ``theta_t`` of one run on the full scores:
    ``ASW_{-i}(theta) = ASW(theta) - w_i <theta, rm_i>``, every group's at once (one run, one
    matrix product), where the general route would run it once per group."""
    m = scores.shape[-1]
    models = _checkpoint_models(mechanism, scores.reshape(-1, m)).reshape(*scores.shape[:-1], -1, m)
    full = _others_asw(mechanism, models, scores[..., None, :])  # (..., C) ASW at each checkpoint
    weighted = reports.sizes[..., None] * np.matmul(
        reports.rewards, np.swapaxes(models, -1, -2)
    )  # (..., n, C)
    at_checkpoints = (full[..., None, :] - weighted).max(axis=-1)
    at_psi = np.asarray(solution.value)[..., None] - reported_terms(reports, solution.pi)
    first = np.maximum(at_checkpoints, at_psi)
    status = np.full(first.shape, CONVERGED)
    return PaymentResult(first - at_psi, first, status, INTERMEDIATE_CHECKPOINTS.name)


def _checkpoint_values(mechanism: Mechanism, scores: Array, others: Array) -> Array:
    """``ASW_{-i}(theta_t)`` (G, P, C) at the checkpoints of a run on each report's scores
    (G, P, m), with the others' scores ``b`` (G, m)."""
    games, points, m = scores.shape
    models = _checkpoint_models(mechanism, scores.reshape(-1, m)).reshape(games, points, -1, m)
    return _others_asw(mechanism, models, others[:, None, None, :])


def _checkpoints_group_payments(
    mechanism: Mechanism, first: Array, objective: Array, own: Array, scores: Array, others: Array
) -> Array:
    """Per report: the checkpoints of a run on *its* scores, ``ASW_{-i}`` at each with the
    others' scores ``b``, the best of them and of ``psi`` less ``ASW_{-i}(psi)``."""
    at_checkpoints = _checkpoint_values(mechanism, scores, others).max(axis=-1)
    at_psi = objective - own
    return np.maximum(at_checkpoints, at_psi) - at_psi


NONE = PaymentRule(
    name="none",
    formula="p_i = 0",
    reference="Theorem 4.2 (no payment: misreports pay off)",
    charges=False,
    dsic=False,
    nonnegative=True,
    others_optimum=no_first_term,
    group_payments=_no_group_payments,
    utility_gradient=lambda own, contribution: own,
    shortcut=_no_payments,
    additive_only=False,
)
AFFINE_MAXIMIZER = PaymentRule(
    name="affine_maximizer",
    formula="p_i = max_pi ASW_-i(pi) - ASW_-i(psi(reports))",
    reference="eq. (1); DSIC, IR and p >= 0 by Proposition 4.4",
    charges=True,
    dsic=True,
    nonnegative=True,
    others_optimum=_affine_others_optimum,
    group_payments=_affine_group_payments,
    utility_gradient=lambda own, contribution: own - contribution,
    shortcut=_affine_shortcut,
    cost=TrainingCost(full_runs_per_group=1),
)


INTERMEDIATE_CHECKPOINTS = PaymentRule(
    name="intermediate_checkpoints",
    formula="p_i = max(max_t ASW_-i(theta_t), ASW_-i(psi)) - ASW_-i(psi), over the run's checkpoints",
    reference="Heuristic 1 (section 4.4): no extra training, p >= 0, DSIC not guaranteed",
    charges=True,
    dsic=False,
    nonnegative=True,
    others_optimum=no_first_term,
    group_payments=_checkpoints_group_payments,
    shortcut=_checkpoints_shortcut,
    separable=False,
    checkpoint_values=_checkpoint_values,
    schema=(
        *_TRAINING_PARAMETERS,
        Parameter("checkpoint_every", "int", 5, minimum=1, description="a checkpoint every k steps"),
        Parameter(
            "initial",
            "choice",
            "included",
            description="whether the initial model pi_init (step 0) is one of the checkpoints",
            choices=INITIAL_CHECKPOINT,
        ),
        Parameter(
            "checkpoints",
            "outcomes",
            None,
            description="candidate-model games: the candidates that are the main run's checkpoints",
        ),
    ),
)
EARLY_STOPPED = PaymentRule(
    name="early_stopped",
    formula="p_i = ASW_-i(theta_T^{-i}) - ASW_-i(psi(reports)), theta_T^{-i} a T-step run without group i",
    reference="Heuristic 2 (section 4.4): DSIC kept, payments may be negative",
    charges=True,
    dsic=True,
    nonnegative=False,
    others_optimum=_early_stopped_others_optimum,
    group_payments=_affine_group_payments,
    utility_gradient=lambda own, contribution: own - contribution,
    schema=_TRAINING_PARAMETERS,
    cost=TrainingCost(early_stopped_runs_per_group=1),
)

#: Every payment rule, in documentation order.
ALL_PAYMENT_RULES: tuple[PaymentRule, ...] = (NONE, AFFINE_MAXIMIZER, INTERMEDIATE_CHECKPOINTS, EARLY_STOPPED)
#: Canonical name -> payment rule.
PAYMENT_RULES: dict[str, PaymentRule] = {rule.name: rule for rule in ALL_PAYMENT_RULES}


def get_payment_rule(name: str | PaymentRule) -> PaymentRule:
    """Look a payment rule up by name; a :class:`PaymentRule` is returned unchanged.

    Raises
    ------
    ValueError
        for an unknown name, listing the valid ones.
    """
    return lookup("payment rule", PAYMENT_RULES, PaymentRule, name)
