r"""Best-response search: the most profitable report of one group, the others' reports fixed.

Under the affine-maximizer payment a search's verdict is backed by Proposition 4.4; under any
other payment (none, the heuristics of section 4.4) the search *is* the audit. It is built on
the structure of the problem rather than on luck.

The report space as a polytope of contributions
-----------------------------------------------
The training rule sees group ``i`` only through its contribution ``c = w~ rm~`` to the scores
(Definition 4.1), and SW-Max ignores a constant added to every score (``sum pi = 1``), so the
reports that matter form a polytope of contributions ``z`` (:class:`ReportSpace`):

================  ===========================================  ==============================
reports           contributions, up to a constant              vertices
================  ===========================================  ==============================
``sum`` rewards   ``z >= 0, sum z <= W``  (sizes in [1, W])     ``0`` and ``W e_x``
``max`` rewards   ``0 <= z <= W``                               ``W 1_S`` for sets ``S``
``none`` scores   ``0 <= z <= W R``                             ``W R 1_S``
preferences       ``phi >= 0, sum phi <= W B``, ``c = phi S^T`` ``0`` and ``W B e_j``
================  ===========================================  ==============================

(``R``: the largest true score; ``B``: the largest true total weight; for reports at the true
size ``w_i`` replace ``W`` by ``w_i``.) Every point maps back to a valid report
(:meth:`ReportSpace.report`).

The search (:func:`search_misreports`)
--------------------------------------
1. candidates, evaluated as batches of the mechanism kernel: the polytope's vertices (all of
   them where there are few; nested sets along several orderings and random sets where
   there are many), points on random faces, the structured families of section 5 and
   Theorem 4.2, random perturbations of the truth;
2. polishing from the best distinct starts with the exact gradient of the utility
   (implicit differentiation of the KKT conditions,
   :meth:`~rlhf_mech.core.Deviation.contribution_outcomes`): scipy's L-BFGS-B (box) or
   SLSQP (capped simplex) by successive halving of the starts; where the trained
   distribution can lose outcomes (chi^2: the utility has kinks, and is piecewise linear
   without payment) a trust-region cutting-plane method settles the best point on its kink,
   and the flat directions of a plateau are probed just past where their outcomes enter the
   support (the training rule's ``support_gaps``; :func:`_polish_kinks`,
   :func:`_plateau_probes`); where the training rule is not differentiable (TV), a batched
   compass search; beyond 64 parameters a batched projected gradient ascent;
3. for the argmax rule over candidate models, the exact best response: for each candidate a
   linear programme says whether some report selects it (:func:`_argmax_best_response`).

Both the whole space (sizes in ``[1, W]``) and reports at the true size are searched. The
gain found is a *lower bound* on the group's true best-response gain (exact for the argmax
rule). The search is deterministic in its seed.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rlhf_mech.analysis._strategies import (
    mixing_misreports,
    others_reward,
    polarise_misreports,
    size_misreports,
)
from rlhf_mech.core import (
    CONVERGED,
    NONE,
    Deviation,
    Game,
    Mechanism,
    Normalization,
    PaymentRule,
    Profile,
    deviation,
    outcome,
    rows_per_chunk,
)

Array = np.ndarray

#: ``status`` values of :class:`SearchResult` (scipy's ``flag_map`` idea).
SEARCH_CONVERGED = 0
BUDGET_EXHAUSTED = 1
SEARCH_STATUS_MESSAGES = {
    SEARCH_CONVERGED: "the polish of the best starts reached a local optimum in both spaces",
    BUDGET_EXHAUSTED: "the evaluation budget ran out before the polish of the best start converged",
}

#: Games with more outcomes than this get fewer evaluations per search (:func:`evaluations_for`).
LARGE_GAME_OUTCOMES = 10_000
#: The fewest evaluations a search of a large game gets.
MIN_LARGE_GAME_EVALUATIONS = 40
#: A polished start stops when its step falls below this fraction of the space's extent.
MIN_STEP = 1e-9
#: Distinct starts polished per space.
_STARTS = 4
#: Trial step multipliers of the line search along the projected gradient (per iteration,
#: for every start at once).
_TRIALS = (4.0, 1.0, 0.25)
#: Shrink factor of a start's step when no trial improved.
_SHRINK = 1.0 / 16.0
#: Up to this many parameters the polish is scipy's (L-BFGS-B, SLSQP); beyond, a batched
#: projected gradient ascent (SLSQP's dense quadratic programmes grow as d^3).
_SCIPY_DIMENSION = 64
#: Polishing without an exact gradient uses forward differences up to this many parameters.
_FD_DIMENSION = 16
#: Two points closer than this (relative to the space's extent) are the same start.
_SAME_START = 1e-6
#: The share of a search's budget that goes to the whole space (the rest: the true size).
_WHOLE_SPACE_SHARE = 3 / 4
#: The best vertices whose connecting edges are sampled (:func:`_edges`).
_EDGE_VERTICES = 5
#: Steps (fractions of the space's extent) of the probes that leave a plateau.
_PLATEAU_STEPS = (0.5, 0.25, 0.125)
#: Probes past a plateau's edge: fractions of the room beyond the edge.
_PAST_EDGE = (1.0 / 64.0, 0.25, 0.75)
#: Rounds of plateau probing and re-polishing per space.
_PLATEAU_ROUNDS = 2


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Misreport:
    """One report of one group and what it gains over truthful reporting.

    Attributes
    ----------
    reward : (m,) array, the reported reward model (valid for the game's normalisation).
    size : the reported size.
    gain : utility of this report minus utility of the truthful report.
    found_by : ``"vertex"``, ``"face"``, ``"size"``, ``"mixing"``, ``"polarise"`` (the
        families of :data:`~rlhf_mech.analysis.FAMILIES`), ``"random"``, ``"local"`` (the
        polish) or ``"exact"`` (the argmax rule's linear programmes).
    preference : (k,) array, the reported preference over the base reward models of a game
        whose groups report in a basis (``reward = preference @ scores.T``); ``None`` otherwise.
    """

    reward: Array
    size: float
    gain: float
    found_by: str
    preference: Array | None = None

    @property
    def theta(self) -> Array:
        """The report's parameters in its space (the reward, or the preference)."""
        return self.reward if self.preference is None else self.preference


@dataclass(frozen=True)
class SearchResult:
    """The best-response search of one group under one payment rule.

    The gains are lower bounds on the group's true best-response gain over the reports the
    space admits (exact for the argmax rule of candidate-model games).

    Attributes
    ----------
    payment_rule : the rule the utilities were computed under.
    best : the report with the largest gain found (any size in ``[1, W]``).
    best_at_true_size : the best report whose size is the true size (reward misreports only,
        the strategies of Theorems 4.2 and 4.12).
    evaluations : reports evaluated (each one training solve).
    min_payment : smallest payment ``p_i`` over the evaluated reports (0 for rule ``none``).
    status : :data:`SEARCH_CONVERGED` or :data:`BUDGET_EXHAUSTED`.
    priced : reports whose payment ``min_payment`` is taken over.
    stalled : evaluated reports whose solve did not converge (their gains are not trusted:
        they are left out of ``best``).
    exact : whether the gains are exact (the argmax rule), not lower bounds.
    """

    payment_rule: str
    best: Misreport
    best_at_true_size: Misreport
    evaluations: int
    min_payment: float
    status: int
    priced: int = 0
    stalled: int = 0
    exact: bool = False

    @property
    def message(self) -> str:
        return SEARCH_STATUS_MESSAGES[self.status]

    @property
    def converged(self) -> bool:
        return self.status == SEARCH_CONVERGED


@dataclass(frozen=True)
class NoisyResult:
    """Theorem 4.12 for one group: the mechanism sees ``rm_hat = report + noise``.

    Attributes
    ----------
    eps : the noise bound; noise is uniform on ``[-eps, eps]``, independent per group and
        outcome, on every group's report.
    samples : noise samples per estimate.
    bound : ``2 w_i eps``, the theorem's bound on the gain.
    gain : the best misreport's expected gain, estimated on samples independent of those the
        search used (so the search's selection does not bias it).
    stderr : standard error of ``gain``.
    max_sample_gain : the largest gain over those samples (also bounded by ``2 w_i eps``).
    reward : (m,) the misreport (at the true size, as in the theorem).
    candidates : reports the search evaluated (each on every sample).
    search_gain : the best report's mean gain on the samples the search optimised over.
    preference : the misreport's preference weights in a basis game, else ``None``.
    """

    eps: float
    samples: int
    bound: float
    gain: float
    stderr: float
    max_sample_gain: float
    reward: Array
    candidates: int
    search_gain: float = math.nan
    preference: Array | None = None


@dataclass(frozen=True)
class Prediction:
    """What Theorems 4.2 / B.2 say about a profitable misreport without payment.

    Attributes
    ----------
    predicted : whether a theorem guarantees a strictly profitable reward misreport.
    theorem : ``"4.2"``, ``"B.2"`` or ``""``.
    reason : the condition, in words.
    """

    predicted: bool
    theorem: str
    reason: str


# --------------------------------------------------------------------------------------------
# The space of valid reports and its polytope of contributions
# --------------------------------------------------------------------------------------------


def size_bound(game: Game) -> tuple[float, str]:
    """``W``, the largest size a group may report, and where it comes from (section 3)."""
    if game.max_size is not None:
        return float(game.max_size), "max_size"
    largest = float(max(game.truth.sizes.max(), game.reports.sizes.max()))
    return max(10.0, 2.0 * largest), "no max_size in the file: max(10, 2 x the largest size)"


@dataclass(frozen=True)
class ReportSpace:
    """The valid reports of a group, and the polytope of their contributions to the scores.

    A report is parameters ``theta`` (a reward vector, or preference weights over a basis) and
    a size in ``[1, W]``. Its contribution in the space's coordinates is ``z = size * theta``;
    the scores it adds are ``z`` (rewards) or ``z @ basis`` (preferences).

    Attributes
    ----------
    normalization : what the reward vectors satisfy (section 2); ``none`` for preference
        weights.
    size_bound : ``W``.
    dimension : ``d``, the number of parameters (``m`` outcomes, or ``k`` base reward models).
    bound : per unit of size, the extent of one coordinate: ``R`` (the largest true score) for
        ``none`` rewards, ``B`` (the largest true total weight) for preferences, 1 otherwise.
    basis : (k, m) array, the candidates' scores per base reward model, or ``None``.
    shift_invariant : whether the training rule ignores a constant added to every score (an
        additive rule, SW-Max): then a point maps to a report whose contribution equals it up
        to a constant; otherwise (MaxMin, Nash) to the report ``z / |z|`` of size ``|z|``
        (``|z|`` the reward's total or largest entry), scaled up to size 1 where ``|z| < 1``.
    """

    normalization: Normalization
    size_bound: float
    dimension: int
    bound: float = 1.0
    basis: Array | None = None
    shift_invariant: bool = True

    @classmethod
    def of(cls, game: Game) -> ReportSpace:
        """The report space of ``game``; ``R`` (or ``B``) is the largest true value over all
        groups, so that a report stays on the scale of the game's measurements."""
        size = size_bound(game)[0]
        shift = game.mechanism.training_rule.additive
        if game.report_basis is not None:
            assert game.truth.preferences is not None
            total = float(game.truth.preferences.sum(axis=1).max())
            basis = game.report_basis.scores.T.copy()
            return cls(Normalization.NONE, size, basis.shape[0], total if total > 0 else 1.0, basis, shift)
        m = game.n_outcomes
        if not game.normalization.normalised:
            top = float(game.truth.rewards.max())
            return cls(game.normalization, size, m, top if top > 0 else 1.0, shift_invariant=shift)
        return cls(game.normalization, size, m, shift_invariant=shift)

    # --- the polytope ------------------------------------------------------------------------

    @property
    def simplex(self) -> bool:
        """Whether the contributions form a capped simplex ``{z >= 0, sum z <= U}`` (sum-
        normalised rewards, preferences); else a box ``[0, U]^d``."""
        return self.basis is not None or self.normalization is Normalization.SUM

    def cap(self, size: float) -> float:
        """``U``: the polytope's extent for reports of size at most ``size``."""
        return float(size) * self.bound

    @property
    def bounded(self) -> bool:
        """Whether the space has a bound taken from the game (``R`` or the weight total)."""
        return self.basis is not None or not self.normalization.normalised

    @property
    def note(self) -> str:
        """The space's constraint in words for the audit's notes (``""`` when standard)."""
        if self.basis is not None:
            return (
                "candidate-model game: reports are preferences over the reward models with total "
                f"weight at most {self.bound:g} (the largest true total)"
            )
        if not self.normalization.normalised:
            return f"normalization none: rewards searched in [0, {self.bound:g}] (the largest true reward)"
        return ""

    def project(self, z: Array, cap: float) -> Array:
        """Euclidean projection of (B, d) rows onto the polytope of extent ``cap`` (a new array).

        A box is clipped; a capped simplex is clipped at 0 and, where the row sums above
        ``cap``, projected onto ``{z >= 0, sum z = cap}`` (the sort-based algorithm).
        Preferences keep a total of at least ``1e-9 cap`` (a preference needs a positive
        weight).
        """
        x = np.clip(np.asarray(z, dtype=float), 0.0, None if self.simplex else cap)
        if not self.simplex:
            return x
        over = x.sum(axis=-1) > cap
        if over.any():
            x[over] = _project_simplex(np.asarray(z, dtype=float)[over], cap)
        if self.basis is not None:
            empty = x.sum(axis=-1) < 1e-9 * cap
            x[empty] = 1e-9 * cap / x.shape[-1]
        return x

    def vertices(self, cap: float, limit: int, orders: Array, rng: np.random.Generator) -> Array:
        """Vertices of the polytope of extent ``cap``: all of them when there are at most
        ``limit``; else the nested sets ``U 1_S`` along each row of ``orders`` ((r, d)
        permutations, e.g. by true reward), then random sets, ``limit`` in all."""
        d = self.dimension
        if self.simplex:  # the origin (no influence) and the corners
            corners = np.vstack([np.zeros(d), cap * np.eye(d)])
            return corners[:limit]
        if d <= 20 and 2**d - 1 <= limit:
            codes = np.arange(1, 2**d)
            return cap * ((codes[:, None] >> np.arange(d)) & 1).astype(float)
        sets = []
        per_order = max(1, (limit // 2) // max(1, len(orders)))
        sizes = np.unique(np.geomspace(1, d - 1, min(per_order, d - 1)).round().astype(int))
        for order in orders:
            for k in sizes:
                row = np.zeros(d)
                row[order[:k]] = cap
                sets.append(row)
        rows = np.array(sets)[:limit] if sets else np.zeros((0, d))
        extra = limit - rows.shape[0]
        if extra > 0:
            density = rng.uniform(0.05, 0.95, (extra, 1))
            rows = np.vstack([rows, cap * (rng.random((extra, d)) < density)])
        return rows

    # --- reports and contributions ---------------------------------------------------------

    def truth(self, game: Game, i: int) -> Array:
        """Group ``i``'s true parameters (reward vector, or preference)."""
        truth = game.truth
        source = truth.rewards if self.basis is None or truth.preferences is None else truth.preferences
        return source[i].copy()

    def rewards(self, theta: Array) -> Array:
        """(B, d) parameters -> (B, m) reward vectors."""
        return theta if self.basis is None else theta @ self.basis

    def contributions(self, z: Array) -> Array:
        """(B, d) contributions in the space's coordinates -> (B, m) added scores."""
        return z if self.basis is None else z @ self.basis

    def report(self, z: Array, size: float | None = None) -> tuple[Array, Array]:
        """Valid reports ``(theta (B, d), sizes (B,))`` whose contributions equal ``z`` up to a
        constant (exactly, for preferences and ``none`` rewards).

        ``size`` fixes every report's size (a point of the polytope of that extent); else the
        size is the one the point needs, at least 1: the total (``sum``), the largest entry
        (``max``), the largest entry over ``R`` (``none``) or the total weight over ``B``
        (preferences). Where that is below the size used, ``sum`` and ``max`` rewards are
        shifted by a constant (which changes no score difference), or, where the training
        rule is not :attr:`shift_invariant`, scaled (the report ``z / |z|``).
        """
        z = np.atleast_2d(np.asarray(z, dtype=float))
        if self.basis is not None or not self.normalization.normalised:
            extent = z.sum(axis=-1) if self.basis is not None else z.max(axis=-1)
            sizes = (
                np.clip(extent / self.bound, 1.0, self.size_bound) if size is None else np.full(len(z), size)
            )
            return z / sizes[:, None], sizes
        total = self.normalization.total(z)
        sizes = np.clip(total, 1.0, self.size_bound) if size is None else np.full(len(z), float(size))
        if not self.shift_invariant:
            empty = total <= 0
            direction = np.where(empty[:, None], 1.0, z) / np.where(empty, 1.0, total)[:, None]
            return self.normalization.normalise(direction), sizes
        shift = np.maximum(sizes - total, 0.0)
        if self.normalization.linear_total:  # sum: spread the missing mass evenly
            shift = shift / z.shape[-1]
        theta = (z + shift[:, None]) / sizes[:, None]
        return self.normalization.normalise(theta), sizes

    def contains(self, theta: Array, sizes: Array, tol: float = 1e-9) -> Array:
        """(B,) bool: whether each report is valid (to ``tol``), as the game files check."""
        theta = np.atleast_2d(theta)
        ok = np.all(theta >= 0, axis=-1) & np.all(np.isfinite(theta), axis=-1)
        if self.basis is not None:
            total = theta.sum(axis=-1)
            ok &= (total > 0) & (total <= self.bound * (1 + tol))
        elif not self.normalization.normalised:
            ok &= np.all(theta <= self.bound * (1 + tol), axis=-1)
        else:
            ok &= np.abs(self.normalization.total(theta) - 1.0) <= tol
        sizes = np.atleast_1d(sizes)
        return ok & (sizes >= 1.0 - tol) & (sizes <= self.size_bound * (1 + tol))


def _project_simplex(v: Array, total: float) -> Array:
    """Rows of ``v`` projected onto ``{x >= 0, sum x = total}`` (Held et al.; Duchi et al. 2008)."""
    u = -np.sort(-v, axis=-1)
    css = np.cumsum(u, axis=-1) - total
    k = np.arange(1, v.shape[-1] + 1)
    rho = np.count_nonzero(u - css / k > 0, axis=-1)
    theta = css[np.arange(v.shape[0]), rho - 1] / rho
    return np.maximum(v - theta[:, None], 0.0)


# --------------------------------------------------------------------------------------------
# The objective: utility gains (and their gradients) of batches of contributions
# --------------------------------------------------------------------------------------------


class ReportObjective:
    """Gains, gradients and payments of batches of one group's reports, the others fixed.

    Every evaluation is one call of the mechanism kernel
    (:meth:`~rlhf_mech.core.Deviation.contribution_outcomes`) over ``G`` games: one (the
    others' reports), or the noise samples of Theorem 4.12 with ``extra`` the own noise
    ``w_i eps_s`` added to the contribution in sample ``s``. The gain of a report is its mean
    utility over the games less the truthful report's, evaluated the same way (so truth
    gains exactly 0).

    Parameters
    ----------
    group : the kernel's deviation of the group (``G`` games).
    space : the group's report space.
    truth : (d,) the truthful contribution ``w_i theta_i``.
    extra : (G, m) added to every contribution, or ``None``.
    """

    def __init__(
        self, group: Deviation, space: ReportSpace, truth: Array, extra: Array | None = None
    ) -> None:
        self.group, self.space, self.truth, self.extra = group, space, truth, extra
        mechanism = group.mechanism
        self.additive = mechanism.training_rule.additive
        if extra is not None and not self.additive:
            raise ValueError("noise on the contributions needs an additive training rule")
        self.differentiable = self.additive and group.differentiable
        # the training rule is smooth even where the payment has no gradient (Heuristic 1)
        self.smooth = mechanism.training_rule.smooth(mechanism)
        #: for a training rule that is not additive, the size every point is reported at
        #: (``None``: the size the point needs, :meth:`ReportSpace.report`); an additive rule
        #: sees only the contribution, whatever the size
        self.fixed_size: float | None = None
        self.evaluations = 0
        self.priced = 0
        self.stalled = 0
        self.min_payment = np.inf
        self.truth_utility = float(self._utilities(truth[None], gradients=False)[0][0])
        self.evaluations = self.priced = 0

    def __call__(self, z: Array, gradients: bool = False) -> tuple[Array, Array | None]:
        """``(gains (B,), gradients (B, d) or None)`` of the contributions ``z`` (B, d).

        Reports whose solve did not converge get gain ``-inf`` (they cannot be trusted) and
        are counted in :attr:`stalled`.
        """
        utilities, slopes, _ = self._utilities(np.atleast_2d(z), gradients and self.differentiable)
        return utilities - self.truth_utility, slopes

    def probe(self, z: Array) -> tuple[Array, Array, Array | None]:
        """``(gains (B,), gradients (B, d), support gaps (B, d) or None)`` of the contributions
        ``z``: the gaps (:attr:`~rlhf_mech.core.DeviationOutcomes.support_gaps`) are how far
        each coordinate must rise for its outcome to enter the support, where coordinates are
        outcomes (no preference basis) and there is one game. Needs :attr:`differentiable`."""
        utilities, slopes, gaps = self._utilities(np.atleast_2d(z), True)
        assert slopes is not None
        return utilities - self.truth_utility, slopes, gaps

    def _utilities(self, z: Array, gradients: bool) -> tuple[Array, Array | None, Array | None]:
        c = self.space.contributions(z)  # (B, m)
        games = self.group.games
        step = max(1, rows_per_chunk(c.shape[-1]) // games)
        utilities = np.empty(len(c))
        slopes = np.empty((len(c), z.shape[-1])) if gradients else None
        outcome_coordinates = gradients and self.space.basis is None and games == 1
        gaps = np.empty((len(c), z.shape[-1])) if outcome_coordinates else None
        for start in range(0, len(c), step):
            block = slice(start, min(len(c), start + step))
            if self.additive:
                batch = np.broadcast_to(c[block], (games, *c[block].shape))
                if self.extra is not None:
                    batch = batch + self.extra[:, None, :]
                out = self.group.contribution_outcomes(batch, gradients=gradients, keep_distributions=False)
            else:
                theta, sizes = self.space.report(z[block], self.fixed_size)
                rewards = np.broadcast_to(self.space.rewards(theta), (games, len(theta), c.shape[-1]))
                out = self.group.outcomes(
                    rewards, np.broadcast_to(sizes, (games, len(sizes))), keep_distributions=False
                )
            utility = out.utilities.mean(axis=0)
            bad = np.any(out.status != CONVERGED, axis=0)
            self.stalled += int(bad.sum())
            utilities[block] = np.where(bad, -np.inf, utility)
            self.min_payment = min(self.min_payment, float(out.payments.min()))
            if slopes is not None:
                assert out.gradients is not None
                g = out.gradients.mean(axis=0)
                slopes[block] = g if self.space.basis is None else g @ self.space.basis.T
            if gaps is not None:
                assert out.support_gaps is not None
                gaps[block] = out.support_gaps[0]
        self.evaluations += len(c)
        self.priced += len(c)
        return utilities, slopes, gaps

    def misreport(self, z: Array, gain: float, found_by: str, size: float | None = None) -> Misreport:
        """The :class:`Misreport` of the contribution ``z`` (one row)."""
        theta, sizes = self.space.report(z[None], size)
        reward = self.space.rewards(theta)[0]
        preference = theta[0] if self.space.basis is not None else None
        return Misreport(reward, float(sizes[0]), float(gain), found_by, preference)


def group_objective(
    game: Game, i: int, mechanism: Mechanism | None = None, others: Profile | None = None
) -> ReportObjective:
    """The :class:`ReportObjective` of group ``i`` under ``mechanism`` (default the game's),
    the others reporting ``others`` (default truthfully)."""
    mechanism = mechanism or game.mechanism
    space = ReportSpace.of(game)
    truth_z = float(game.truth.sizes[i]) * space.truth(game, i)
    return ReportObjective(deviation(mechanism, game.truth, others or game.truth, i), space, truth_z)


# --------------------------------------------------------------------------------------------
# Candidates
# --------------------------------------------------------------------------------------------


@dataclass
class _Pool:
    """Evaluated points of one polytope: contributions, gains, gradients, labels (per batch)."""

    z: list[Array]
    gains: list[Array]
    slopes: list[Array | None]
    labels: list[str]

    @classmethod
    def empty(cls) -> _Pool:
        return cls([], [], [], [])

    def add(self, objective: ReportObjective, z: Array, label: str, budget: int) -> tuple[Array, Array]:
        """Evaluate the points ``z`` that fit before ``budget`` evaluations; returns them and
        their gains."""
        room = budget - objective.evaluations
        if room <= 0 or len(z) == 0:
            return np.zeros((0, z.shape[-1])), np.zeros(0)
        z = z[:room]
        gains, slopes = objective(z, gradients=True)
        self.z.append(z)
        self.gains.append(gains)
        self.slopes.append(slopes)
        self.labels.append(label)
        return z, gains

    def best(self, count: int, scale: float) -> tuple[Array, Array, Array | None, list[str]]:
        """The ``count`` best points that are pairwise more than ``_SAME_START`` apart (their
        contributions, gains, gradients and labels); nothing else is copied."""
        where = [(b, k) for b, gains in enumerate(self.gains) for k in range(len(gains))]
        if not where:
            return np.zeros((0, 0)), np.zeros(0), None, []
        gains = np.concatenate(self.gains)
        picked: list[tuple[int, int]] = []
        for j in np.argsort(-gains, kind="stable"):
            if not np.isfinite(gains[j]):
                break
            b, k = where[j]
            point = self.z[b][k]
            if all(np.abs(point - self.z[pb][pk]).max() > _SAME_START * scale for pb, pk in picked):
                picked.append((b, k))
            if len(picked) == count:
                break
        if not picked:
            return np.zeros((0, 0)), np.zeros(0), None, []
        z = np.array([self.z[b][k] for b, k in picked])
        best_gains = np.array([self.gains[b][k] for b, k in picked])
        has_slopes = all(self.slopes[b] is not None for b, _ in picked)
        slopes = np.array([self.slopes[b][k] for b, k in picked]) if has_slopes else None  # type: ignore[index]
        return z, best_gains, slopes, [self.labels[b] for b, _ in picked]


def _orders(space: ReportSpace, objective: ReportObjective, truth: Array, own: Array) -> Array:
    """Orderings of the coordinates for nested vertex sets: by the true reward, by the
    utility's gradient at the truth, and by the others' scores (low first)."""
    rows = [np.argsort(-own, kind="stable")]
    if objective.differentiable:
        _, slopes = objective(truth[None], gradients=True)  # one evaluation, at the truth
        assert slopes is not None
        rows.append(np.argsort(-slopes[0], kind="stable"))
    if space.basis is None:
        rows.append(np.argsort(objective.group.others_scores[0], kind="stable"))
    return np.array(rows)


def _family_points(game: Game, i: int, space: ReportSpace, k: int) -> list[tuple[str, Array]]:
    """The structured misreports of :data:`~rlhf_mech.analysis.FAMILIES` (section 5, Theorem
    4.2), ``k`` parameters each, as contributions (truthful parameters left out)."""
    theta, w = space.truth(game, i), float(game.truth.sizes[i])
    out: list[tuple[str, Array]] = []
    alphas = np.linspace(1.0 / w, space.size_bound / w, k + 1)
    alphas = alphas[~np.isclose(alphas, 1.0, rtol=0, atol=1e-12)]
    fam = size_misreports(theta, w, alphas)
    out.append(("size", np.asarray(fam.rewards) * fam.sizes[:, None]))
    if game.n_groups > 1:
        truths = game.truth.rewards if space.basis is None else game.truth.preferences
        assert truths is not None
        others = others_reward(truths, game.truth.sizes, i)
        betas = np.linspace(-1.0, 2.0, k + 1)
        betas = betas[~np.isclose(betas, 1.0, rtol=0, atol=1e-12)]
        fam = mixing_misreports(theta, w, others, betas, space.normalization)
        out.append(("mixing", np.asarray(fam.rewards) * fam.sizes[:, None]))
    if space.normalization.normalised and space.basis is None:
        fam = polarise_misreports(theta, w, np.geomspace(1e-4, 1.0, k), space.normalization)
        out.append(("polarise", np.asarray(fam.rewards) * fam.sizes[:, None]))
    return out


def _edges(vertices: Array, gains: Array) -> Array:
    """Points at a third and two thirds of the edges between the :data:`_EDGE_VERTICES` best
    vertices: a best response that mixes two outcomes (chi^2 often gives one with a dip
    between its ends) lies on such an edge, which random faces rarely hit."""
    finite = np.flatnonzero(np.isfinite(gains))
    top = finite[np.argsort(-gains[finite], kind="stable")][:_EDGE_VERTICES]
    a, b = np.triu_indices(len(top), k=1)
    ends, starts = vertices[top[b]], vertices[top[a]]
    fractions = np.array([1.0 / 3.0, 2.0 / 3.0])[:, None, None]
    return (starts[None] + fractions * (ends - starts)[None]).reshape(-1, vertices.shape[-1])


def _faces(vertices: Array, count: int, rng: np.random.Generator) -> Array:
    """``count`` random points on faces spanned by 2-3 of ``vertices`` (and the origin)."""
    if len(vertices) == 0 or count <= 0:
        return np.zeros((0, vertices.shape[-1]))
    corners = np.vstack([vertices, np.zeros(vertices.shape[-1])])
    picks = rng.integers(0, len(corners), (count, 3))
    weights = rng.dirichlet(np.ones(3), count)
    return np.einsum("cj,cjd->cd", weights, corners[picks])


# --------------------------------------------------------------------------------------------
# Polishing
# --------------------------------------------------------------------------------------------


def _forward_differences(objective: ReportObjective, z: Array, gains: Array, cap: float) -> Array:
    """(S, d) forward-difference gradients at the points ``z`` (their gains known), stepping
    inward at the polytope's upper bounds: for a payment without an exact gradient."""
    s, d = z.shape
    h = 1e-6 * cap
    at_top = (
        z >= cap - h
        if not objective.space.simplex
        else np.broadcast_to(z.sum(axis=1, keepdims=True) >= cap - h, z.shape)
    )
    signs = np.where(at_top, -1.0, 1.0)
    probes = z[:, None, :] + h * signs[:, :, None] * np.eye(d)[None]
    values, _ = objective(probes.reshape(-1, d))
    return (values.reshape(s, d) - gains[:, None]) / (h * signs)


class _OutOfBudget(Exception):
    """Raised inside a scipy optimiser's objective when the search's budget is spent."""


class _Tracked:
    """The negated, scaled objective a scipy optimiser minimises, remembering the best point
    it visited (projected onto the polytope, so that every evaluation is a valid report) and
    stopping the optimiser at the budget."""

    def __init__(
        self, objective: ReportObjective, cap: float, start: Array, gain: float, scale: float, budget: int
    ) -> None:
        self.objective, self.cap, self.scale, self.budget = objective, cap, scale, budget
        self.best_z, self.best_gain = start.copy(), float(gain)

    def __call__(self, x: Array) -> tuple[float, Array] | float:
        if self.objective.evaluations >= self.budget:
            raise _OutOfBudget
        point = self.objective.space.project(x[None], self.cap)
        exact = self.objective.differentiable
        value, slopes = self.objective(point, gradients=exact)
        if value[0] > self.best_gain:
            self.best_gain, self.best_z = float(value[0]), point[0].copy()
        if not np.isfinite(value[0]):
            return (1e300, np.zeros_like(x)) if exact else 1e300
        if exact:
            assert slopes is not None
            return -float(value[0]) / self.scale, -slopes[0] / self.scale
        return -float(value[0]) / self.scale


def _has_kinks(objective: ReportObjective) -> bool:
    """Whether the utility has kinks where the trained distribution drops or gains an outcome
    (a divergence with a finite ``g'(0)``: chi^2), with an exact gradient between them."""
    divergence = objective.group.mechanism.divergence
    return objective.differentiable and bool(np.isfinite(divergence.g_prime_at_zero))


def _polish_start(
    objective: ReportObjective, cap: float, z: Array, gain: float, scale: float, end: int
) -> tuple[Array, float, bool]:
    """Local ascent from one start until the evaluation count reaches ``end``.

    Where the utility has kinks (:func:`_has_kinks`) the trust-region cutting-plane method
    (:func:`_polish_kinks`); else a constrained quasi-Newton optimiser (scipy): L-BFGS-B on a
    box, SLSQP on a capped simplex (``sum z <= cap``), with the exact gradient where the
    mechanism has one and finite differences where only the training rule is smooth.
    Returns the best point visited, its gain and whether the method converged."""
    from scipy.optimize import minimize

    if _has_kinks(objective):
        values, slopes, _ = objective.probe(z[None])
        return _polish_kinks(objective, cap, z[None], values, slopes, end)
    d = z.size
    exact = objective.differentiable
    room = end - objective.evaluations
    tracked = _Tracked(objective, cap, z, gain, scale, end)
    bounds = [(0.0, cap)] * d
    iterations = max(1, room // (1 if exact else d + 1))
    result = None
    with np.errstate(all="ignore"), contextlib.suppress(_OutOfBudget):
        if objective.space.simplex:
            total = {"type": "ineq", "fun": lambda x: cap - x.sum(), "jac": lambda x: -np.ones_like(x)}
            result = minimize(
                tracked,
                z,
                jac=exact,
                method="SLSQP",
                bounds=bounds,
                constraints=[total],
                options={"maxiter": iterations, "ftol": 1e-15},
            )
        else:
            result = minimize(
                tracked,
                z,
                jac=exact,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxfun": room, "maxiter": iterations, "ftol": 1e-15, "gtol": 1e-13},
            )
    return tracked.best_z, tracked.best_gain, result is not None and bool(result.success)


def _polish_starts(
    objective: ReportObjective,
    cap: float,
    z: Array,
    gains: Array,
    budget: int,
) -> tuple[Array, Array, bool]:
    """Local ascent from the starts ``z`` (S, d) by successive halving: every round shares
    an equal part of the budget left among the live starts (:func:`_polish_start`, resumed
    from where the last round stopped), then keeps the better half of those that have not
    converged. A start that converged, or one that fell behind, keeps its best point.
    Returns the points, their gains and whether every start still live at the end (the best
    among them) converged."""
    z, gains = z.copy(), gains.copy()
    per_iteration = 1 if objective.differentiable else z.shape[-1] + 1
    scale = max(1.0, float(np.abs(gains[np.isfinite(gains)]).max(initial=0.0)))
    live = list(np.argsort(-gains, kind="stable"))
    rounds = max(1, math.ceil(math.log2(len(live))) + 1) if live else 0
    for r in range(rounds):
        end = objective.evaluations + (budget - objective.evaluations) // (rounds - r)
        still = []
        for j, k in enumerate(live):
            room = (end - objective.evaluations) // (len(live) - j)
            if room < 2 * per_iteration:
                still.append(k)
                continue
            z[k], gains[k], converged = _polish_start(
                objective, cap, z[k], float(gains[k]), scale, objective.evaluations + room
            )
            if not converged:
                still.append(k)
        if not still:
            return z, gains, True
        still.sort(key=lambda k: -gains[k])
        live = still[: max(1, len(still) // 2)] if r < rounds - 1 else still
    return z, gains, not live


def _polish_kinks(
    objective: ReportObjective, cap: float, z: Array, values: Array, slopes: Array, end: int
) -> tuple[Array, float, bool]:
    """Local ascent to a kink: a trust-region cutting-plane (bundle) method.

    Where the support of the trained distribution changes (chi^2, and any divergence with a
    finite ``g'(0)``) the utility has kinks; under no payment with chi^2 it is piecewise
    linear, so that its best response typically sits at a kink, where a quasi-Newton method
    stalls. Every evaluated point ``z_k`` (the rows of ``z``, with their gains ``values``
    and gradients ``slopes`` to begin with) gives the plane ``f_k + g_k (y - z_k)``; the next
    point maximises the lowest plane over the polytope within a box of radius ``r`` around
    the best point (a linear programme, scipy's HiGHS). Only planes that lie above the best
    point's gain there are kept (the utility is not concave everywhere: a plane from a
    plateau or another basin would cap the model below what is known). A piecewise-linear
    concave model is exact after finitely many planes; where the model promises more than
    the evaluation gives, ``r`` halves. Stops when the promise falls below ``1e-12`` of the
    gain's scale or ``r`` below :data:`MIN_STEP` of the extent (converged), or at ``end``
    evaluations. Returns the best point, its gain and whether it converged.
    """
    from scipy.optimize import linprog

    d = z.shape[-1]
    finite = np.isfinite(values)
    points, gains, planes = list(z[finite]), list(values[finite]), list(slopes[finite])
    if not points:
        return z[0], float(values[0]), False
    k = int(np.argmax(gains))
    best_z, best_gain = points[k].copy(), float(gains[k])
    radius = 0.25 * cap
    simplex = objective.space.simplex
    tol = 1e-12 * max(1.0, abs(best_gain))
    while objective.evaluations < end:
        at_best = np.array([g + p @ (best_z - q) for g, p, q in zip(gains, planes, points, strict=True)])
        near = np.array([np.abs(q - best_z).max() <= 2 * radius for q in points])
        keep = np.flatnonzero(near & (at_best >= best_gain - tol))
        # variables (y, t): maximise t subject to t <= f_k + g_k (y - z_k)
        a_ub = np.hstack([-np.array([planes[k] for k in keep]), np.ones((len(keep), 1))])
        b_ub = np.array([gains[k] - planes[k] @ points[k] for k in keep])
        if simplex:
            a_ub = np.vstack([a_ub, [*np.ones(d), 0.0]])
            b_ub = np.r_[b_ub, cap]
        low, high = np.maximum(0.0, best_z - radius), np.minimum(cap, best_z + radius)
        bounds = [*zip(low, high, strict=True), (None, None)]
        result = linprog(np.r_[np.zeros(d), -1.0], A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
        if result.status != 0:
            return best_z, best_gain, False
        promise = -result.fun - best_gain
        if promise <= tol:
            return best_z, best_gain, True
        y = objective.space.project(result.x[None, :d], cap)
        value, slope = objective(y, gradients=True)
        improved = bool(np.isfinite(value[0]) and value[0] > best_gain)
        if np.isfinite(value[0]) and slope is not None:
            points.append(y[0])
            gains.append(float(value[0]))
            planes.append(slope[0])
        # the usual trust-region rule: a step that gives under a quarter of its promise
        # shrinks the region, one that gives three quarters of it at the region's edge grows it
        ratio = (value[0] - best_gain) / promise if improved else 0.0
        if ratio < 0.25:
            radius /= 2
        elif ratio > 0.75 and np.abs(y[0] - best_z).max() >= 0.99 * radius:
            radius = min(2 * radius, cap)
        if improved:
            best_z, best_gain = y[0].copy(), float(value[0])
        if radius < MIN_STEP * cap:
            return best_z, best_gain, True
    return best_z, best_gain, False


def _plateau_probes(
    space: ReportSpace, cap: float, z: Array, gain: float, slope: Array, gaps: Array | None
) -> Array:
    """Probes from a polished point along the coordinates where the utility is flat.

    Where an outcome carries no probability (chi^2 and the other divergences with a finite
    ``g'(0)``) a small change of its score changes nothing, so the gradient in its direction
    is zero and a local optimiser stops on the plateau; the best response may lie past the
    plateau's edge, where the outcome enters the support. With the support gaps (how far
    each coordinate must rise against the support for its outcome to enter,
    :meth:`ReportObjective.probe`) each flat coordinate that can enter is moved just past its
    edge and by :data:`_PAST_EDGE` of the room beyond it; without them, by
    :data:`_PLATEAU_STEPS` of the extent towards the side with more room. ``slope`` is the
    gradient at ``z``; the probes are projected."""
    tiny = 1e-9 * max(1.0, abs(gain)) / max(cap, np.finfo(float).tiny)
    flat = np.abs(slope) <= tiny
    d = z.size
    moves: list[Array] = []
    if gaps is not None:
        # only score differences matter: outcome j's score rises against the support's by
        # raising z_j to the top and then lowering the support's coordinates together (on
        # a capped simplex the projection does the lowering)
        support = gaps == 0
        room = cap - z + float(z[support].min(initial=cap))
        entering = np.flatnonzero(flat & (gaps > 0) & (gaps < room))
        for fraction in _PAST_EDGE:
            rise = gaps[entering] + fraction * (room[entering] - gaps[entering])
            up = rise if space.simplex else np.minimum(rise, cap - z[entering])
            step = np.zeros((len(entering), d))
            step[np.arange(len(entering)), entering] = up
            step -= (rise - up)[:, None] * support[None, :]
            moves.append(step)
        flat &= ~(gaps > 0)  # the outcomes that cannot enter stay where they are
    others = np.flatnonzero(flat)
    up = np.where(z[others] <= cap / 2, 1.0, -1.0)
    for fraction in _PLATEAU_STEPS:
        step = np.zeros((len(others), d))
        step[np.arange(len(others)), others] = fraction * cap * up
        moves.append(step)
    return space.project(z + np.concatenate(moves), cap)


def _polish(
    objective: ReportObjective,
    cap: float,
    z: Array,
    gains: Array,
    slopes: Array | None,
    budget: int,
    rng: np.random.Generator,
) -> tuple[Array, Array, bool]:
    """Local ascent from the starts ``z`` (S, d) in the polytope of extent ``cap``.

    With gradients: projected gradient ascent; each iteration tries, for every live start at
    once, the steps ``alpha * cap * g / max|g|`` for the multipliers :data:`_TRIALS`
    (projected on the polytope) and keeps the best if it improves, else shrinks ``alpha``.
    Where the payment has no exact gradient but the training rule is smooth (Heuristic 1),
    forward differences stand in for it (up to :data:`_FD_DIMENSION` parameters); otherwise
    (TV) a compass search over a few coordinates per iteration. Returns the final points,
    their gains and whether every start converged (``alpha`` below :data:`MIN_STEP`).
    """
    space = objective.space
    z, gains = z.copy(), gains.copy()
    alpha = np.full(len(z), 0.25)
    live = np.ones(len(z), dtype=bool)
    d = z.shape[-1]
    finite_differences = slopes is None and objective.smooth and d <= _FD_DIMENSION
    while live.any() and objective.evaluations < budget:
        idx = np.flatnonzero(live)
        if finite_differences:
            if objective.evaluations + len(idx) * (d + len(_TRIALS)) > budget:
                break
            slopes = np.zeros_like(z)
            slopes[idx] = _forward_differences(objective, z[idx], gains[idx], cap)
        if slopes is not None:
            g = slopes[idx]
            peak = np.abs(g).max(axis=-1)
            usable = peak > 0
            direction = np.where(usable[:, None], g / np.where(usable, peak, 1.0)[:, None], 0.0)
            steps = np.array(_TRIALS)[None, :, None] * (alpha[idx, None, None] * cap) * direction[:, None, :]
            trials = z[idx, None, :] + steps
        else:
            coords = rng.integers(0, d, (len(idx), 2))
            sign = np.where(rng.random((len(idx), 2)) < 0.5, -1.0, 1.0)
            steps = np.zeros((len(idx), 2, d))
            rows = np.arange(len(idx))[:, None]
            steps[rows, np.arange(2)[None, :], coords] = sign * (alpha[idx, None] * cap)
            trials = z[idx, None, :] + steps
        shape = trials.shape
        flat = space.project(trials.reshape(-1, d), cap)
        room = budget - objective.evaluations
        if room <= 0:
            break
        take = min(len(flat), room)
        trial_gains = np.full(len(flat), -np.inf)
        trial_slopes = np.zeros((len(flat), d)) if slopes is not None else None
        got, got_slopes = objective(flat[:take], gradients=slopes is not None)
        trial_gains[:take] = got
        if trial_slopes is not None and got_slopes is not None:
            trial_slopes[:take] = got_slopes
        trial_gains = trial_gains.reshape(shape[:2])
        best = np.argmax(trial_gains, axis=1)
        rows = np.arange(len(idx))
        improved = trial_gains[rows, best] > gains[idx] + 4 * np.finfo(float).eps * np.maximum(
            1.0, np.abs(gains[idx])
        )
        flat = flat.reshape(shape)
        for r in np.flatnonzero(improved):
            k = idx[r]
            z[k] = flat[r, best[r]]
            gains[k] = trial_gains[r, best[r]]
            if slopes is not None and trial_slopes is not None:
                slopes[k] = trial_slopes.reshape(*shape[:2], d)[r, best[r]]
            alpha[k] = min(1.0, alpha[k] * max(1.0, _TRIALS[best[r]]))
        alpha[idx[~improved]] *= _SHRINK
        live &= alpha >= MIN_STEP
    return z, gains, not live.any()


# --------------------------------------------------------------------------------------------
# The search
# --------------------------------------------------------------------------------------------


def _search_polytope(
    objective: ReportObjective,
    game: Game,
    i: int,
    cap: float,
    budget: int,
    rng: np.random.Generator,
    families: Sequence[tuple[str, Array]],
    orders: Array,
) -> tuple[Array, float, str, bool]:
    """Candidates, then polishing, in the polytope of extent ``cap``; the best point, its
    gain, how it was found and whether the polish converged. ``orders`` are the coordinate
    orderings the nested vertex sets follow (:func:`_orders`)."""
    space = objective.space
    truth_z = float(game.truth.sizes[i]) * space.truth(game, i)
    start = objective.evaluations
    pool = _Pool.empty()
    # the truth (a start for the polish: the gradient leads away from it where it pays) and
    # the structured families first, so that a tiny budget still tries them
    pool.add(objective, truth_z[None], "truth", start + budget)
    for label, points in families:
        pool.add(objective, space.project(points, cap), label, start + budget // 8)
    share = start + max(4, (3 * budget) // 8)  # vertices
    vertices = space.vertices(cap, max(2, share - objective.evaluations), orders, rng)
    vertices, vertex_gains = pool.add(objective, vertices, "vertex", share)
    pool.add(objective, _edges(vertices, vertex_gains), "edge", start + (7 * budget) // 16)
    faces = _faces(vertices, max(2, budget // 8), rng)
    pool.add(objective, faces, "face", start + budget // 2)
    scale = max(cap, np.finfo(float).tiny)
    noise = truth_z + scale * 0.05 * rng.standard_normal((max(2, budget // 16), truth_z.size))
    pool.add(objective, space.project(noise, cap), "random", start + budget // 2)
    z, gains, slopes, labels = pool.best(_STARTS, scale)
    if len(gains) == 0:
        return truth_z, 0.0, "truth", True
    end = start + budget
    if not (objective.smooth and z.shape[-1] <= _SCIPY_DIMENSION):
        polished, polished_gains, converged = _polish(objective, cap, z, gains, slopes, end, rng)
        k = int(np.argmax(polished_gains))
        moved = np.abs(polished[k] - z[k]).max() > 0
        return polished[k], float(polished_gains[k]), "local" if moved else labels[k], converged
    plateaus = _has_kinks(objective)
    # room for the plateau probes of the best point and a polish from the best probe
    reserve = _PLATEAU_ROUNDS * (len(_PAST_EDGE) * z.shape[-1] + 4) if plateaus else 0
    polish_end = max(objective.evaluations + 2, end - min(reserve, budget // 4))
    polished, polished_gains, converged = _polish_starts(objective, cap, z, gains, polish_end)
    k = int(np.argmax(polished_gains))
    best_z, best_gain = polished[k], float(polished_gains[k])
    label = "local" if np.abs(polished[k] - z[k]).max() > 0 else labels[k]
    for _ in range(_PLATEAU_ROUNDS if plateaus else 0):
        if objective.evaluations >= end:
            break
        _, slopes, gaps = objective.probe(best_z[None])
        probes = _plateau_probes(
            objective.space, cap, best_z, best_gain, slopes[0], None if gaps is None else gaps[0]
        )[: max(0, end - objective.evaluations)]
        if len(probes) == 0:
            break
        probe_gains, probe_slopes, _ = objective.probe(probes)
        j = int(np.argmax(probe_gains))
        if not probe_gains[j] > best_gain + 4 * np.finfo(float).eps * max(1.0, abs(best_gain)):
            break
        best_z, best_gain, ok = _polish_kinks(objective, cap, probes, probe_gains, probe_slopes, end)
        label = "local"
        converged &= ok
    return best_z, best_gain, label, converged


def _argmax_best_response(
    objective: ReportObjective, game: Game, i: int, cap: float
) -> tuple[Array, float] | None:
    """The exact best response under the argmax rule (a point-mass training rule).

    The selected candidate ``c`` determines the utility (``w_i v_i(c)`` less a payment that,
    under eq. (1), is ``first - ASW_{-i}(e_c)`` with ``ASW_{-i}(e_c) = b_c``). For every
    candidate a linear programme (scipy's HiGHS) asks whether a point ``z`` of the polytope
    makes it the argmax with a positive margin over the earlier candidates (ties go to the
    first) and no loss to the later ones; the best of the candidates some report selects is
    the best response, evaluated by the kernel. Returns ``(z, gain)``, or ``None`` when no
    programme succeeded.
    """
    from scipy.optimize import linprog

    space = objective.space
    others = objective.group.others_scores[0]
    m = others.size
    basis = np.eye(m) if space.basis is None else space.basis  # (d, m)
    d = basis.shape[0]
    values = []
    for c in range(m):
        # maximise t: (z B)_c - (z B)_x - t >= b_x - b_c (x < c), (z B)_c - (z B)_x >= b_x - b_c (x > c)
        diff = basis[:, [c]] - basis  # (d, m): column x is B_c - B_x
        a_ub = np.hstack([-diff.T, np.zeros((m, 1))])
        a_ub[:c, -1] = 1.0
        b_ub = -(others - others[c])
        a_ub, b_ub = np.delete(a_ub, c, axis=0), np.delete(b_ub, c)
        bounds = [(0.0, cap)] * d + [(None, 1.0)]
        extra_a = np.hstack([np.ones((1, d)), np.zeros((1, 1))]) if space.simplex else np.zeros((0, d + 1))
        extra_b = np.array([cap]) if space.simplex else np.zeros(0)
        res = linprog(
            np.r_[np.zeros(d), -1.0],
            A_ub=np.vstack([a_ub, extra_a]),
            b_ub=np.r_[b_ub, extra_b],
            bounds=bounds,
            method="highs",
        )
        if res.status != 0:
            values.append(None)
            continue
        margin = -res.fun
        feasible = margin > 1e-12 * max(1.0, float(np.abs(others).max())) if c > 0 else margin >= 0
        values.append(res.x[:d] if feasible else None)
    points = [z for z in values if z is not None]
    if not points:
        return None
    z = space.project(np.array(points), cap)
    gains, _ = objective(z)
    k = int(np.argmax(gains))
    return z[k], float(gains[k])


def search_misreports(
    game: Game,
    i: int,
    payment_rule: str | PaymentRule,
    budget: int,
    rng: np.random.Generator,
    space: ReportSpace | None = None,
    others: Profile | None = None,
) -> SearchResult:
    """Search for group ``i``'s most profitable report (its best response).

    Parameters
    ----------
    game : the game; i : the group; payment_rule : the rule the utilities are computed under.
    budget : report evaluations to spend (at least 10); each is one training solve.
    rng : the random generator of this task (the search is deterministic in it).
    space : the valid reports (default :meth:`ReportSpace.of` the game).
    others : the other groups' reports (default: truthful); group ``i``'s row is ignored.

    Returns
    -------
    SearchResult

    Notes
    -----
    See the module docstring. :data:`_WHOLE_SPACE_SHARE` of the budget goes to the whole
    space (sizes in ``[1, W]``), the rest to reports at the true size; each evaluates the
    truth and the structured families (to an eighth), the vertices (to three eighths), faces
    and perturbations (to a half), and spends the rest polishing the best :data:`_STARTS`
    distinct points (:func:`_polish_starts`; plateau probes where the utility has kinks).
    The best report is re-evaluated as a report (not a contribution) so that its gain
    replays exactly.
    """
    mechanism = game.mechanism.with_payment_rule(payment_rule)
    space = space or ReportSpace.of(game)
    w = float(game.truth.sizes[i])
    truth_z = w * space.truth(game, i)
    objective = ReportObjective(deviation(mechanism, game.truth, others or game.truth, i), space, truth_z)
    families = _family_points(game, i, space, max(3, budget // 24))
    orders = _orders(space, objective, truth_z, game.truth.rewards[i] if space.basis is None else truth_z)
    # the two best points are evaluated once more, as reports; the argmax rule's exact best
    # responses take one evaluation per candidate and polytope
    exact = mechanism.divergence.point_mass and mechanism.training_rule.additive
    search_budget = budget - 2 - (2 * game.n_outcomes if exact else 0)
    whole_budget = max(6, int(_WHOLE_SPACE_SHARE * search_budget))
    found: list[tuple[Array, float, str, float | None]] = []
    converged = True
    for cap, size, share in (
        (space.cap(space.size_bound), None, whole_budget),
        (space.cap(w), w, search_budget),
    ):
        in_space = [(label, z) for label, z in families if size is None or label != "size"]
        objective.fixed_size = size
        z, gain, label, ok = _search_polytope(
            objective, game, i, cap, share - objective.evaluations, rng, in_space, orders
        )
        if exact:
            best = _argmax_best_response(objective, game, i, cap)
            if best is not None and best[1] >= gain:
                z, gain, label, ok = best[0], best[1], "exact", True
        converged &= ok
        found.append((z, gain, label, size))
    objective.fixed_size = None
    best, at_size = (_as_report(objective, z, label, size) for z, _, label, size in found)
    if at_size.gain > best.gain:
        best = at_size
    return SearchResult(
        payment_rule=mechanism.payment_rule.name,
        best=best,
        best_at_true_size=at_size,
        evaluations=objective.evaluations,
        min_payment=float(objective.min_payment),
        status=SEARCH_CONVERGED if converged else BUDGET_EXHAUSTED,
        priced=objective.priced,
        stalled=objective.stalled,
        exact=exact,
    )


def _as_report(objective: ReportObjective, z: Array, label: str, size: float | None) -> Misreport:
    """The report of contribution ``z``, its gain evaluated from the report itself."""
    theta, sizes = objective.space.report(z[None], size)
    exact = float(sizes[0]) * theta
    gains, _ = objective(exact)
    return objective.misreport(exact[0], float(gains[0]), label, float(sizes[0]))


# --------------------------------------------------------------------------------------------
# Theorem 4.2 / B.2 and Theorem 4.12
# --------------------------------------------------------------------------------------------


def predict_no_payment_gain(game: Game, i: int) -> Prediction:
    """Whether Theorem 4.2 (or B.2) guarantees group ``i`` a profitable reward misreport
    without payment, at the truthful profile.

    Notes
    -----
    Theorem 4.2: ``s_i >= 2`` distinct reward values and ``min rm_i > 0``. Its proof moves a
    little reward away from the least preferred outcome, which stays valid for ``sum``,
    ``max`` and ``none`` rewards, and needs a strictly convex ``f`` (an invertible ``g'``)
    and a fine-tuned model with full support (section 4.1's assumption), checked here at
    the truthful profile. When ``min rm_i = 0``, Theorem B.2 predicts a gain if
    ``t(z) = sum_x (rm_i(z) - rm_i(x)) pi_init(x) / f''(pi(x)/pi_init(x))`` is non-zero for
    some ``z``; ``pi_init / f''`` is ``q t' / lambda`` in the solver's terms.
    """
    truth = game.truth
    rm = truth.rewards[i]
    mechanism = game.mechanism.with_payment_rule(NONE)
    div = mechanism.divergence
    distinct = np.unique(rm).size
    if not mechanism.training_rule.additive:
        return Prediction(
            False,
            "",
            f"Theorems 4.2 and B.2 are about SW-Max, not {mechanism.training_rule.name}: no prediction",
        )
    if distinct < 2:
        return Prediction(False, "", "constant reward (s_i = 1): truth is optimal (Theorem 4.2, case 1)")
    if div.g_prime_inverse is None:
        return Prediction(False, "", f"f = {div.name} is not strictly convex: no prediction")
    at_truth = outcome(mechanism, truth, truth)
    if not np.all(at_truth.distribution > 0):
        return Prediction(False, "", "the fine-tuned model lacks full support: no prediction")
    if rm.min() > 0:
        return Prediction(True, "4.2", f"s_i = {distinct} >= 2 and min rm_i = {rm.min():.3g} > 0")
    scores = mechanism.scores(truth.rewards, truth.sizes)
    y = (scores - scores.max()) / mechanism.lam - float(at_truth.solve.nu)
    with np.errstate(all="ignore"):
        _, dt = div.g_prime_inverse(y)
    a = mechanism.pi_init * dt / mechanism.lam
    t = rm * a.sum() - a @ rm
    if np.all(np.isfinite(t)) and np.abs(t).max() > 1e-12 * max(1.0, float(np.abs(a).sum())):
        return Prediction(True, "B.2", f"min rm_i = 0 and max |t(x)| = {np.abs(t).max():.3g} > 0")
    return Prediction(False, "", "min rm_i = 0 and t(x) = 0 for every x: no prediction")


def noisy_objective(
    game: Game, i: int, space: ReportSpace, eps: float, samples: int, seed: np.random.SeedSequence
) -> ReportObjective:
    """The sample-average objective of Theorem 4.12 on one set of noise samples.

    Sample ``s`` is one game of the kernel's batch in which every group's report is its report
    plus noise (uniform on ``[-eps, eps]``, drawn per group in file order, in outcome space);
    the group's own noise enters its contribution as ``w_i eps_s``. Every report is evaluated
    on the same samples (common random numbers).
    """
    rng = np.random.default_rng(seed)
    truth = game.truth
    m = game.n_outcomes
    noise = np.stack([rng.uniform(-eps, eps, size=(samples, m)) for _ in range(game.n_groups)], axis=1)
    batch = (samples, *truth.rewards.shape)
    true_batch = Profile(np.broadcast_to(truth.rewards, batch), np.broadcast_to(truth.sizes, batch[:2]))
    noisy = Profile(truth.rewards + noise, np.broadcast_to(truth.sizes, batch[:2]))
    group = deviation(game.mechanism, true_batch, noisy, i)
    w = float(truth.sizes[i])
    return ReportObjective(group, space, w * space.truth(game, i), extra=w * noise[:, i, :])


def noisy_search(
    game: Game,
    i: int,
    eps: float,
    samples: int,
    seed: np.random.SeedSequence,
    budget: int,
    seeds: Sequence[Array] = (),
) -> NoisyResult:
    """Theorem 4.12: the best expected gain of a reward misreport when the mechanism uses
    ``rm_hat = report + noise`` (under the game's payment rule, ``p^AFF`` in the theorem).

    Parameters
    ----------
    game, i : the game and the group; eps : the noise bound; samples : noise samples.
    seed : seeds the noise and the candidates; budget : reports to evaluate (each on every
        sample).
    seeds : extra candidate parameters (e.g. the best reward misreport of the noiseless
        search, :attr:`Misreport.theta`).

    Notes
    -----
    The noise is uniform on ``[-eps, eps]``, independent per group and outcome, and is *not*
    clipped or renormalised: ``rm_hat`` may leave R, but the mechanism's arithmetic does not
    need it inside, and clipping or renormalising would break the theorem's premise
    ``max_x |rm_hat(x) - rm(x)| <= eps``. Sizes are reported truthfully (the theorem bounds
    reward misreports). The search is the noiseless one's (vertices, faces, the given seeds,
    gradient polishing) on the sample-average utility with common random numbers for every
    report, so truth and misreport see the same noise and every sample's gain is at most
    ``2 w_i eps`` (the proof of Theorem 4.12 holds per sample). The winner's gain is then
    estimated on an independent sample set (its selection does not bias the estimate).
    """
    search_seed, eval_seed, cand_seed = seed.spawn(3)
    rng = np.random.default_rng(cand_seed)
    space = ReportSpace.of(game)
    w = float(game.truth.sizes[i])
    objective = noisy_objective(game, i, space, eps, samples, search_seed)
    cap = space.cap(w)
    seeded = [("seed", space.project(w * np.atleast_2d(t), cap)) for t in seeds]
    truth_z = w * space.truth(game, i)
    orders = _orders(space, objective, truth_z, game.truth.rewards[i] if space.basis is None else truth_z)
    z, search_gain, _, _ = _search_polytope(objective, game, i, cap, budget, rng, seeded, orders)
    theta, _ = space.report(z[None], w)
    fresh = noisy_objective(game, i, space, eps, samples, eval_seed)
    per_sample = _per_sample_gains(fresh, w * theta)
    stderr = float(per_sample.std(ddof=1) / np.sqrt(samples)) if samples > 1 else float("nan")
    return NoisyResult(
        eps=eps,
        samples=samples,
        bound=2.0 * w * eps,
        gain=float(per_sample.mean()),
        stderr=stderr,
        max_sample_gain=float(per_sample.max()),
        reward=space.rewards(theta)[0],
        candidates=objective.evaluations,
        search_gain=float(search_gain),
        preference=theta[0] if space.basis is not None else None,
    )


def _per_sample_gains(objective: ReportObjective, z: Array) -> Array:
    """(S,) the gain of contribution ``z`` (1, d) in each sample of ``objective``."""
    group, space = objective.group, objective.space
    c = np.vstack([space.contributions(objective.truth[None]), space.contributions(z)])
    batch = np.broadcast_to(c, (group.games, 2, c.shape[-1]))
    if objective.extra is not None:
        batch = batch + objective.extra[:, None, :]
    utilities = group.contribution_outcomes(batch, keep_distributions=False).utilities
    return utilities[:, 1] - utilities[:, 0]


def evaluations_for(budget: int, m: int) -> int:
    """Report evaluations per search for a game with ``m`` outcomes.

    ``budget`` for games of up to :data:`LARGE_GAME_OUTCOMES` outcomes; beyond that
    ``budget * sqrt(LARGE_GAME_OUTCOMES / m)``, but at least
    :data:`MIN_LARGE_GAME_EVALUATIONS` (or ``budget`` if smaller), so that the time per group
    grows as ``sqrt(m)``: an evaluation is one solve over all m outcomes.
    """
    if m <= LARGE_GAME_OUTCOMES:
        return int(budget)
    scaled = round(float(budget) * math.sqrt(LARGE_GAME_OUTCOMES / m))
    return max(min(int(budget), MIN_LARGE_GAME_EVALUATIONS), scaled)
