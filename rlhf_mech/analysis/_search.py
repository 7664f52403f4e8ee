r"""Best-response search for profitable misreports of one group (the audit's engine, issue #4).

With the other groups reporting truthfully, :func:`search_misreports` looks for the report
``(rm, w)`` of group ``i`` that maximises its utility under a payment rule (section 3): the
structured families of :mod:`rlhf_mech.strategies` (size, mixing, polarise), random valid
reports, then a pattern-search local optimiser from the best (:func:`_pattern_search`).
:func:`predict_no_payment_gain` states what Theorems 4.2 / B.2 say without payments, and
:func:`noisy_search` estimates Theorem 4.12's gain under noisy reward models. The checks and
their verdicts are :mod:`rlhf_mech.audit`.

The space of valid reports (:class:`ReportSpace`)
-------------------------------------------------
A report is a reward vector in the domain R of section 2 and a size in ``[1, W]``:

* ``sum``: ``rm >= 0``, ``sum rm = 1``; ``max``: ``0 <= rm <= 1``, ``max rm = 1``;
* ``none`` (candidate-model games, whose rewards are measured scores): ``0 <= rm <= R`` with
  ``R`` the largest true reward of any group in the game, so that a report stays on the scale
  of the measurements (scaling by the size is searched separately);
* sizes are real numbers in ``[1, W]``, a superset of the integers of section 3 that game files
  accept; ``W = max_size``, or ``max(10, 2 x the largest size in the file)`` when the file has
  none (the audit says so in its notes).

Every report the search evaluates is mapped into this space by :meth:`ReportSpace.project`
(clip, then divide by the sum or the maximum), so validity holds exactly, to rounding.

Utility gains
-------------
With the others' reports fixed, ``V_{-i}`` in eq. (1) does not depend on group i's report, so
under ``p^AFF`` the gain of a report ``(r, s)`` over truth is (proof of Proposition 4.4)::

    gain = ASW_true(psi(r, s)) - ASW_true(psi(rm_i, w_i))  <= 0,

with ``ASW_true(pi) = <pi, sum_j w_j rm_j + offset> - D_f(pi || pi_init)``; under payment
``none`` it is ``w_i <psi(r, s) - psi(rm_i, w_i), rm_i>``. A batch of B reports costs one
:func:`~rlhf_mech.solver.solve_sw_max` call on a (B, m) array of scores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rlhf_mech.analysis._strategies import (
    mixing_misreports,
    others_reward,
    polarise_misreports,
    size_misreports,
)
from rlhf_mech.core import NONE, Game, Mechanism, Normalization, PaymentRule, Profile, deviation, outcome

Array = np.ndarray

#: ``status`` values of :class:`SearchResult` (scipy's ``flag_map`` idea).
SEARCH_CONVERGED = 0
BUDGET_EXHAUSTED = 1
SEARCH_STATUS_MESSAGES = {
    SEARCH_CONVERGED: "the local search's step fell below 1e-7 without improving",
    BUDGET_EXHAUSTED: "the evaluation budget ran out before the local search converged",
}

#: Games with more outcomes than this get fewer evaluations per search (:func:`evaluations_for`).
LARGE_GAME_OUTCOMES = 10_000
#: The fewest evaluations a search of a large game gets.
MIN_LARGE_GAME_EVALUATIONS = 40

#: The local search stops when its step (a fraction of the reward scale) falls below this.
MIN_STEP = 1e-7
#: Coordinates tried per local-search iteration (all of them when m is at most this).
_COORDINATES = 12
#: Random dense directions tried per local-search iteration when m > _COORDINATES.
_DENSE_DIRECTIONS = 3
#: Step multipliers of the line search along the gradient (it reaches 4^-6 of the step at once,
#: so the search can approach a maximiser that is much closer than the step).
_LINE_SEARCH = (2.0, 1.0, 0.25, 4.0**-2, 4.0**-4, 4.0**-6)


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
    found_by : ``"size"``, ``"mixing"``, ``"polarise"`` (the families of
        :mod:`rlhf_mech.strategies`), ``"random"`` or ``"local"`` (the local optimiser).
    preference : (k,) array, the reported preference over the base reward models of a
        candidate-model game (``reward = preference @ scores.T``); ``None`` otherwise.
    """

    reward: Array
    size: float
    gain: float
    found_by: str
    preference: Array | None = None

    @property
    def theta(self) -> Array:
        """The parameters the search moves (:class:`ReportSpace`)."""
        return self.reward if self.preference is None else self.preference


@dataclass(frozen=True)
class SearchResult:
    """The best-response search of one group under one payment rule.

    Attributes
    ----------
    payment_rule : the rule the utilities were computed under.
    best : the report with the largest gain found (any size in ``[1, W]``).
    best_at_true_size : the best report whose size is the true size (reward misreports only,
        the strategies of Theorems 4.2 and 4.12).
    evaluations : reports evaluated.
    min_payment : smallest payment ``p_i`` over the evaluated reports (0 for rule ``none``).
    status : :data:`SEARCH_CONVERGED` or :data:`BUDGET_EXHAUSTED`.
    priced : reports whose payment ``min_payment`` is taken over (the evaluations less the
        gradient's probes).
    """

    payment_rule: str
    best: Misreport
    best_at_true_size: Misreport
    evaluations: int
    min_payment: float
    status: int
    priced: int = 0

    @property
    def message(self) -> str:
        return SEARCH_STATUS_MESSAGES[self.status]


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
    candidates : reports the search compared.
    preference : the misreport's preference weights in a candidate-model game, else ``None``.
    """

    eps: float
    samples: int
    bound: float
    gain: float
    stderr: float
    max_sample_gain: float
    reward: Array
    candidates: int
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
# The space of valid reports
# --------------------------------------------------------------------------------------------


def size_bound(game: Game) -> tuple[float, str]:
    """``W``, the largest size a group may report, and where it comes from (section 3)."""
    if game.max_size is not None:
        return float(game.max_size), "max_size"
    largest = float(max(game.truth.sizes.max(), game.reports.sizes.max()))
    return max(10.0, 2.0 * largest), "no max_size in the file: max(10, 2 x the largest size)"


@dataclass(frozen=True)
class _Domain:
    """How the search's parameters are constrained: one record per kind of report.

    Attributes
    ----------
    note : the constraint in words, for the audit's notes (``{bound}`` is filled in), or ``""``.
    total : ``x -> (B, 1)`` total that must be 1 (or at most ``bound``), or ``None`` for a box.
    budget : whether the total is an upper bound (preference weights) rather than equal to 1.
    centred : whether a gradient step must keep the total (it is projected on sum 0).
    capped : whether each entry has an upper end (a gradient step into it is dropped).
    dirichlet : whether the entries share a total (a simplex or a budget): spread-out samples
        are Dirichlet(1) draws and steps scale with the largest entry; else uniform draws.
    """

    note: str
    total: Callable[[Array], Array] | None
    budget: bool
    centred: bool
    capped: bool
    dirichlet: bool


def _row_sum(x: Array) -> Array:
    return x.sum(axis=-1, keepdims=True)


def _row_max(x: Array) -> Array:
    return x.max(axis=-1, keepdims=True)


#: The reward domains of section 2, and the box of ``none``-normalised measured scores.
_REWARD_DOMAINS: dict[Normalization, _Domain] = {
    Normalization.SUM: _Domain("", _row_sum, False, True, False, True),
    Normalization.MAX: _Domain("", _row_max, False, False, True, False),
    Normalization.NONE: _Domain(
        "normalization none: rewards searched in [0, {bound:g}] (the largest true reward)",
        None,
        False,
        False,
        True,
        False,
    ),
}
#: Preference weights over a report basis (candidate-model games).
_PREFERENCE_DOMAIN = _Domain(
    "candidate-model game: reports are preferences over the reward models with total weight "
    "at most {bound:g} (the largest true total)",
    _row_sum,
    True,
    False,
    False,
    True,
)


@dataclass(frozen=True)
class ReportSpace:
    """The valid reports of a group: a parameter vector and a size in ``[1, W]``.

    The search moves parameters ``theta``; :meth:`rewards` maps them to reward vectors.

    Attributes
    ----------
    domain : how ``theta`` is constrained: a reward vector in the domain R of section 2 (sum
        or max normalised, or in ``[0, R]`` for measured scores), or a preference over the
        base reward models of the game's report basis (the reward is ``theta @ basis``).
    normalization : the normalisation the parameter vectors obey (the game's for rewards,
        ``none`` for preference weights): what the structured families keep.
    size_bound : ``W``.
    bound : ``R``, the largest entry of a ``none`` reward; for preferences, the largest total
        weight ``sum theta``; 1 otherwise.
    basis : (k, m) array, the candidates' scores per base reward model, or ``None``.
    """

    domain: _Domain
    normalization: Normalization
    size_bound: float
    bound: float = 1.0
    basis: Array | None = None

    @classmethod
    def of(cls, game: Game) -> ReportSpace:
        """The report space of ``game``; ``R`` (or the weight bound) is the largest true value
        over all groups, so a report stays on the scale of the game's measurements."""
        size = size_bound(game)[0]
        if game.report_basis is not None:
            assert game.truth.preferences is not None
            total = float(game.truth.preferences.sum(axis=1).max())
            basis = game.report_basis.scores.T.copy()
            return cls(_PREFERENCE_DOMAIN, Normalization.NONE, size, total if total > 0 else 1.0, basis)
        domain = _REWARD_DOMAINS[game.normalization]
        if domain.total is None:
            top = float(game.truth.rewards.max())
            return cls(domain, game.normalization, size, top if top > 0 else 1.0)
        return cls(domain, game.normalization, size)

    @property
    def bounded(self) -> bool:
        """Whether the space has a bound taken from the game (``R`` or the weight total)."""
        return bool(self.domain.note)

    @property
    def note(self) -> str:
        """The space's constraint in words for the audit's notes (``""`` when standard)."""
        return self.domain.note.format(bound=self.bound)

    def truth(self, game: Game, i: int) -> Array:
        """Group ``i``'s true parameters."""
        truth = game.truth
        source = truth.rewards if self.basis is None or truth.preferences is None else truth.preferences
        return source[i].copy()

    def rewards(self, theta: Array) -> Array:
        """(B, d) parameters -> (B, m) reward vectors."""
        return theta if self.basis is None else theta @ self.basis

    def project(self, theta: Array) -> Array:
        """Map (B, d) finite rows into the space (in place when given a float array): clip at
        0; then divide by the total (sum or maximum; for preferences only down to total
        weight ``<= bound``), or for a box clip at ``R``. A row with nothing left becomes the
        constant reward (or uniform weights)."""
        x = np.asarray(theta, dtype=float)
        np.maximum(x, 0.0, out=x)
        domain = self.domain
        if domain.total is None:
            return np.minimum(x, self.bound, out=x)
        scale = domain.total(x)
        empty = scale[..., 0] <= 0
        if empty.any():
            fill = self.bound / x.shape[-1] if domain.budget else 1.0
            x[empty] = fill
            scale[empty] = domain.total(x[empty])
        if domain.budget:
            return np.divide(x, np.maximum(scale / self.bound, 1.0), out=x)
        return np.divide(x, scale, out=x)

    def clip_sizes(self, sizes: Array) -> Array:
        return np.clip(sizes, 1.0, self.size_bound)

    def scale(self, theta: Array) -> float:
        """The typical size of an entry, for step lengths: ``R`` for a box, 1 for a maximum,
        else the largest entry but at least the total spread evenly."""
        domain = self.domain
        if domain.total is None:
            return self.bound
        if not domain.dirichlet:
            return 1.0
        return float(max(theta.max(), self.bound / theta.size))

    def upper(self) -> float:
        """The upper end of one entry (for the gradient's active constraints)."""
        return self.bound

    def contains(self, theta: Array, sizes: Array, tol: float = 1e-9) -> Array:
        """(B,) bool: whether each report is valid (to ``tol``), as the game files check."""
        theta = np.atleast_2d(theta)
        ok = np.all(theta >= 0, axis=-1) & np.all(np.isfinite(theta), axis=-1)
        domain = self.domain
        if domain.total is None:
            ok &= np.all(theta <= self.bound, axis=-1)
        elif domain.budget:
            total = domain.total(theta)[..., 0]
            ok &= (total > 0) & (total <= self.bound * (1 + tol))
        else:
            ok &= np.abs(domain.total(theta)[..., 0] - 1.0) <= tol
        sizes = np.atleast_1d(sizes)
        return ok & (sizes >= 1.0) & (sizes <= self.size_bound)

    def sample(self, rng: np.random.Generator, k: int, center: Array) -> Array:
        """``k`` random valid parameter rows: perturbations of ``center`` at three scales (rows
        ``0, 1, 2 mod 5``), draws spread over the whole space (Dirichlet(1) / uniform, row
        ``3 mod 5``) and skewed draws (uniform^4, row ``4 mod 5``)."""
        d = center.size
        kinds = np.arange(k) % 5
        sigma = np.array([0.03, 0.15, 0.5, 0.0, 0.0])[kinds]
        noise = rng.standard_normal((k, d))
        rows = center + (self.scale(center) * sigma)[:, None] * noise
        spread = kinds >= 3
        if spread.any():
            domain = self.domain
            draws = rng.random((int(spread.sum()), d))
            if domain.dirichlet:
                draws = -np.log1p(-draws)  # Exp(1): normalised, a Dirichlet(1) draw
            skewed = kinds[spread] == 4
            draws[skewed] = draws[skewed] ** 4
            if domain.budget:
                draws *= (
                    self.bound
                    * rng.random((draws.shape[0], 1))
                    / np.maximum(draws.sum(axis=1, keepdims=True), 1e-300)
                )
            elif domain.total is None:
                draws *= self.bound
            rows[spread] = draws
        return self.project(rows)


# --------------------------------------------------------------------------------------------
# The objective: utility gains of a batch of reports
# --------------------------------------------------------------------------------------------


class _Objective:
    """Gains (and payments) of batches of reports of group ``i``, the others truthful.

    Every evaluation is one call of the mechanism kernel (:meth:`~rlhf_mech.core.Deviation.outcomes`);
    the gain of a report is its utility less the truthful report's, evaluated the same way
    (so truth gains exactly 0).
    """

    def __init__(self, game: Game, i: int, mechanism: Mechanism, space: ReportSpace) -> None:
        self.game, self.i, self.mechanism, self.space = game, i, mechanism, space
        truth = game.truth
        self.rm, self.w = truth.rewards[i], float(truth.sizes[i])
        self.deviation = deviation(mechanism, truth, truth, i)
        at_truth = self.deviation.outcomes(self.rm[None, None], np.array([[self.w]]))
        assert at_truth.distributions is not None
        self.truth_pi = at_truth.distributions[0, 0]
        self.truth_utility = float(at_truth.utilities[0, 0])
        self.evaluations = 0
        self.priced = 0  # reports whose payment was computed (the gradient's probes are not)
        self.min_payment = np.inf

    def __call__(self, rewards: Array, sizes: Array) -> Array:
        """(B,) gains of the reports ``(rewards[b], sizes[b])``."""
        rewards = np.atleast_2d(rewards)
        sizes = np.atleast_1d(np.asarray(sizes, dtype=float))
        out = self.deviation.outcomes(rewards[None], sizes[None], keep_distributions=False)
        self.min_payment = min(self.min_payment, float(out.payments.min()))
        self.evaluations += sizes.size
        self.priced += sizes.size
        return out.utilities[0] - self.truth_utility

    def misreport(self, theta: Array, size: float, gain: float, found_by: str) -> Misreport:
        """A :class:`Misreport` from search parameters (rewards, or a candidate preference)."""
        if self.space.basis is None:
            return Misreport(theta, size, gain, found_by)
        return Misreport(self.space.rewards(theta[None])[0], size, gain, found_by, preference=theta)

    def gradient(self, theta: Array, size: float) -> tuple[Array, float] | None:
        """d gain / d (theta, size) for a divergence with an invertible ``g'`` (else ``None``).

        Implicit differentiation of eq. (OPT): ``pi(x) = q(x) t((s(x) - mu) / lambda)`` gives
        ``d pi / d s = diag(a) - a a^T / sum(a)`` with ``a = q t' / lambda``. The gain's
        derivative in ``pi`` is ``w_i rm_i`` plus, under an affine payment (eq. 1),
        ``d ASW_{-i} / d pi = b - lambda g'(t) = -w~ rm~ + mu`` (``mu`` drops out).
        """
        mechanism = self.mechanism
        div = mechanism.divergence
        if div.g_prime_inverse is None:
            return None
        space = self.space
        reward = space.rewards(theta[None])[0]
        scores = self.deviation.others_scores[0] + size * reward
        sol = mechanism.training_rule.solve_scores(mechanism, scores)
        self.evaluations += 1
        y = (scores - scores.max()) / mechanism.lam - float(sol.nu)
        active = y > div.g_prime_at_zero
        with np.errstate(all="ignore"):
            _, dt = div.g_prime_inverse(np.where(active, y, 0.0))
        a = np.where(active, mechanism.pi_init * dt / mechanism.lam, 0.0)
        total = a.sum()
        if not (np.all(np.isfinite(a)) and total > 0):
            return None
        c = self.w * self.rm - (size * reward if mechanism.payment_rule.affine else 0.0)
        jc = a * (c - (a @ c) / total)
        d_reward = size * jc
        if space.basis is not None:
            return space.basis @ d_reward, float(reward @ jc)
        return d_reward, float(reward @ jc)


# --------------------------------------------------------------------------------------------
# The search
# --------------------------------------------------------------------------------------------


def _family_candidates(game: Game, i: int, space: ReportSpace, k: int) -> list[tuple[str, Array, Array]]:
    """The structured misreports of :mod:`rlhf_mech.strategies`, ``k`` parameters each, as
    ``(family, parameters (P, d), sizes (P,))`` (truthful parameters left out)."""
    theta, w = space.truth(game, i), float(game.truth.sizes[i])
    out: list[tuple[str, Array, Array]] = []
    alphas = np.linspace(1.0 / w, space.size_bound / w, k + 1)
    alphas = alphas[~np.isclose(alphas, 1.0, rtol=0, atol=1e-12)]
    fam = size_misreports(theta, w, alphas)
    out.append(("size", np.array(fam.rewards), fam.sizes))
    if game.n_groups > 1:
        truths = np.array([space.truth(game, j) for j in range(game.n_groups)])
        others = others_reward(truths, game.truth.sizes, i)
        betas = np.linspace(-1.0, 2.0, k + 1)
        betas = betas[~np.isclose(betas, 1.0, rtol=0, atol=1e-12)]
        fam = mixing_misreports(theta, w, others, betas, space.normalization)
        out.append(("mixing", space.project(np.array(fam.rewards)), fam.sizes))
    if space.normalization.normalised:
        fam = polarise_misreports(theta, w, np.geomspace(1e-4, 1.0, k), space.normalization)
        out.append(("polarise", space.project(np.array(fam.rewards)), fam.sizes))
    return out


def _pattern_search(
    objective: _Objective,
    space: ReportSpace,
    start: Misreport,
    rng: np.random.Generator,
    budget: int,
    *,
    fixed_size: bool,
) -> tuple[Misreport, bool]:
    """Batched compass search over valid reports, started at ``start``.

    Each iteration evaluates, as one batch: the projected gradient direction at six step
    lengths from 2 to 4^-6 (smooth divergences), +/- moves along coordinates (all of them for
    small dimension, a random subset otherwise) and along a few random dense directions, and
    +/- size moves. The best improving report becomes the new point and the step doubles (at
    most 1); without one the step is halved. Returns the best report and whether the step
    fell below :data:`MIN_STEP`.
    """
    x, s, g = start.theta.copy(), float(start.size), float(start.gain)
    d = x.size
    step = 0.5
    used = 0
    found_by = start.found_by
    coords_per_iter = min(d, _COORDINATES)
    dense = _DENSE_DIRECTIONS if d > _COORDINATES else 0
    while used < budget:
        if step < MIN_STEP:
            return objective.misreport(x, s, g, found_by), True
        sc = space.scale(x)
        moves = []
        if budget - used > 1:
            before = objective.evaluations
            grad = objective.gradient(x, s)
            used += objective.evaluations - before
            if grad is not None:
                direction = grad[0] - (grad[0].mean() if space.domain.centred else 0.0)
                direction[(x <= 0) & (direction < 0)] = 0.0
                if space.domain.capped:
                    direction[(x >= space.upper()) & (direction > 0)] = 0.0
                peak = np.abs(direction).max()
                # a subnormal peak would overflow sc / peak to inf and the move to NaN
                if np.isfinite(peak) and peak > sc * np.finfo(float).tiny:
                    direction *= sc / peak
                    moves.append(x + np.multiply.outer(np.array(_LINE_SEARCH) * step, direction))
        coords = np.arange(d) if d <= _COORDINATES else rng.choice(d, coords_per_iter, replace=False)
        block = np.repeat(x[None], 2 * coords.size, axis=0)
        block[np.arange(coords.size), coords] += step * sc
        block[coords.size + np.arange(coords.size), coords] -= step * sc
        moves.append(block)
        if dense:
            dirs = rng.standard_normal((dense, d))
            dirs *= (step * sc / np.abs(dirs).max(axis=1))[:, None]
            moves.extend((x + dirs, x - dirs))
        thetas = space.project(np.vstack(moves))
        sizes = np.full(thetas.shape[0], s)
        if not fixed_size:
            delta = step * (space.size_bound - 1.0)
            extra = space.clip_sizes(np.array([s + delta, s - delta]))
            extra = extra[extra != s]
            thetas = np.vstack([thetas, np.repeat(x[None], extra.size, axis=0)])
            sizes = np.concatenate([sizes, extra])
        room = budget - used
        if room <= 0:
            break
        thetas, sizes = thetas[:room], sizes[:room]
        gains = objective(space.rewards(thetas), sizes)
        used += sizes.size
        best = int(np.argmax(gains))
        if gains[best] > g + 4.0 * np.finfo(float).eps * max(1.0, abs(g)):
            x, s, g, found_by = thetas[best].copy(), float(sizes[best]), float(gains[best]), "local"
            step = min(1.0, 2.0 * step)
        else:
            step *= 0.5
    return objective.misreport(x, s, g, found_by), step < MIN_STEP


def search_misreports(
    game: Game,
    i: int,
    payment_rule: str | PaymentRule,
    budget: int,
    rng: np.random.Generator,
    space: ReportSpace | None = None,
) -> SearchResult:
    """Search for group ``i``'s most profitable misreport, the others reporting truthfully.

    Parameters
    ----------
    game : the game; i : the group; payment_rule : the rule the utilities are computed under.
    budget : report evaluations to spend (at least 10).
    rng : the random generator of this task.
    space : the valid reports (default :meth:`ReportSpace.of` the game).

    Returns
    -------
    SearchResult

    Notes
    -----
    1. Structured families (:mod:`rlhf_mech.strategies`): size scaling over ``[1, W]``,
       mixing with the others' mean (beta in [-1, 2]) and the polarisation of the proof of
       Theorem 4.2, ``budget / 12`` parameters each;
    2. ``budget / 4`` random valid reports (half at the true size, half at uniform sizes);
    3. a batched compass search (:func:`_pattern_search`) from the best report so far, then
       one at the true size from the best reward misreport, half the remaining budget each;
    4. the best reward misreport at sizes ``W`` and 1.

    The truthful report is left out of steps 1 and 2, so under a DSIC mechanism the best gain
    is usually slightly negative (the closest approach to truth); it is exactly 0 where the
    outcome does not move with the report (TV, the argmax rule).
    """
    space = space or ReportSpace.of(game)
    mechanism = game.mechanism.with_payment_rule(payment_rule)
    objective = _Objective(game, i, mechanism, space)
    theta, w = space.truth(game, i), float(game.truth.sizes[i])
    k = max(3, budget // 12)
    labels: list[str] = []
    thetas: list[Array] = []
    sizes: list[Array] = []
    for family, fam_thetas, fam_sizes in _family_candidates(game, i, space, k):
        labels += [family] * fam_sizes.size
        thetas.append(fam_thetas)
        sizes.append(np.asarray(fam_sizes, dtype=float))
    n_random = max(4, budget // 4)
    labels += ["random"] * n_random
    thetas.append(space.sample(rng, n_random, theta))
    sizes.append(np.where(np.arange(n_random) % 2 == 0, w, rng.uniform(1.0, space.size_bound, n_random)))
    all_thetas = np.vstack(thetas)
    all_sizes = space.clip_sizes(np.concatenate(sizes))
    keep = all_sizes != w
    keep[~keep] = np.any(all_thetas[~keep] != theta, axis=1)  # truth is not a misreport
    cap = max(1, budget // 2)
    pick = np.flatnonzero(keep)
    if pick.size > cap:  # a tiny budget: keep an even spread of the candidates
        pick = pick[np.unique(np.linspace(0, pick.size - 1, cap).round().astype(int))]
    all_thetas, all_sizes = all_thetas[pick], all_sizes[pick]
    labels = [labels[p] for p in pick]
    gains = objective(space.rewards(all_thetas), all_sizes)

    def best_of(mask: Array) -> Misreport | None:
        if not mask.any():
            return None
        idx = int(np.flatnonzero(mask)[np.argmax(gains[mask])])
        return objective.misreport(
            all_thetas[idx].copy(), float(all_sizes[idx]), float(gains[idx]), labels[idx]
        )

    best = best_of(np.ones(all_sizes.size, dtype=bool))
    at_size = best_of(all_sizes == w)
    if at_size is None:  # only size misreports so far: start next to the truth
        start = space.project((theta + 1e-3 * space.scale(theta) * rng.standard_normal(theta.size))[None])
        gain = float(objective(space.rewards(start), np.array([w]))[0])
        at_size = objective.misreport(start[0], w, gain, "random")
    if best is None:
        best = at_size
    remaining = max(0, budget - objective.evaluations)
    best, conv_a = _pattern_search(objective, space, best, rng, remaining // 2, fixed_size=False)
    remaining = max(0, budget - objective.evaluations - 2)
    at_size, conv_b = _pattern_search(objective, space, at_size, rng, remaining, fixed_size=True)
    if at_size.gain > best.gain:
        best = at_size
    # the best reward misreport at the extreme sizes (cross the two phases)
    ends = np.array([space.size_bound, 1.0])[: max(0, budget - objective.evaluations)]
    ends = ends[ends != at_size.size]
    if ends.size:
        cross = objective(space.rewards(np.repeat(at_size.theta[None], ends.size, axis=0)), ends)
        k = int(np.argmax(cross))
        if cross[k] > best.gain:
            best = objective.misreport(at_size.theta.copy(), float(ends[k]), float(cross[k]), "local")
    return SearchResult(
        payment_rule=mechanism.payment_rule.name,
        best=best,
        best_at_true_size=at_size,
        evaluations=objective.evaluations,
        min_payment=float(objective.min_payment),
        status=SEARCH_CONVERGED if conv_a and conv_b else BUDGET_EXHAUSTED,
        priced=objective.priced,
    )


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


def _noisy_gains(
    game: Game, i: int, rewards: Array, eps: float, samples: int, seed: np.random.SeedSequence
) -> Array:
    """(C, S) per-sample gains of reward reports at the true size, with common noise.

    Sample ``s`` is one game of the kernel's batch in which every group's report is its
    report plus noise (uniform on ``[-eps, eps]``, drawn per group in file order); the
    utilities of truth and of each candidate are evaluated on the same sample.
    """
    rng = np.random.default_rng(seed)
    truth = game.truth
    noise = np.stack(
        [rng.uniform(-eps, eps, size=(samples, game.n_outcomes)) for _ in range(game.n_groups)], axis=1
    )
    batch = (samples, *truth.rewards.shape)
    true_batch = Profile(np.broadcast_to(truth.rewards, batch), np.broadcast_to(truth.sizes, batch[:2]))
    noisy = Profile(truth.rewards + noise, np.broadcast_to(truth.sizes, batch[:2]))
    group = deviation(game.mechanism, true_batch, noisy, i)
    reports = np.vstack([truth.rewards[i][None], rewards])  # row 0: truth
    reported = reports[None] + noise[:, i, None, :]  # (S, C + 1, m): the mechanism sees report + noise
    sizes = np.full(reported.shape[:2], float(truth.sizes[i]))
    utilities = group.outcomes(reported, sizes, keep_distributions=False).utilities
    return (utilities[:, 1:] - utilities[:, :1]).T


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
    seed : seeds the noise and the candidates; budget : the search effort.
    seeds : extra candidate parameters (e.g. the best reward misreport of the noiseless
        search, :attr:`Misreport.theta`).

    Notes
    -----
    The noise is uniform on ``[-eps, eps]``, independent per group and outcome, and is *not*
    clipped or renormalised: ``rm_hat`` may leave R, but the mechanism's arithmetic does not
    need it inside, and clipping or renormalising would break the theorem's premise
    ``max_x |rm_hat(x) - rm(x)| <= eps``. Sizes are reported truthfully (the theorem bounds
    reward misreports). With common noise for truth and misreport, every sample's gain is at
    most ``2 w_i eps`` (the proof of Theorem 4.12 holds per sample), so the check tests the
    mechanism, not luck. Candidates are compared on one sample set; the winner's gain is
    then estimated on an independent one.
    """
    search_seed, eval_seed, cand_seed = seed.spawn(3)
    rng = np.random.default_rng(cand_seed)
    space = ReportSpace.of(game)
    theta = space.truth(game, i)
    rm, w = game.truth.rewards[i], float(game.truth.sizes[i])
    n_cand = int(np.clip(budget // 25, 4, 16))
    # perturbations of the truth of relative size eps / 4 .. 4 eps (relative to the rewards)
    relative = eps / max(float(np.abs(rm).max()), np.finfo(float).tiny)
    steps = space.scale(theta) * relative * np.geomspace(0.25, 4.0, n_cand)
    cands = theta + steps[:, None] * rng.standard_normal((n_cand, theta.size))
    thetas = space.project(np.vstack([*(np.atleast_2d(t) for t in seeds), cands]))
    thetas = thetas[np.any(thetas != theta, axis=1)]
    if thetas.shape[0] == 0:
        thetas = space.project(theta + steps[-1] * rng.standard_normal((1, theta.size)))
    rewards = space.rewards(thetas)
    mean_gains = _noisy_gains(game, i, rewards, eps, samples, search_seed).mean(axis=1)
    pick = int(np.argmax(mean_gains))
    winner = rewards[pick]
    per_sample = _noisy_gains(game, i, winner[None], eps, samples, eval_seed)[0]
    stderr = float(per_sample.std(ddof=1) / np.sqrt(samples)) if samples > 1 else float("nan")
    return NoisyResult(
        eps=eps,
        samples=samples,
        bound=2.0 * w * eps,
        gain=float(per_sample.mean()),
        stderr=stderr,
        max_sample_gain=float(per_sample.max()),
        reward=winner,
        candidates=int(rewards.shape[0]),
        preference=thetas[pick] if space.basis is not None else None,
    )


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
