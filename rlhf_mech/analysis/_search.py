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
   support (the training rule's ``support_gaps``; :func:`polish_kinks`,
   :func:`plateau_probes`); under MaxMin without payment each start is first settled on its
   piece, the set of groups at the minimum (an active-set method: SLSQP over the report and
   the dual weights with the tied groups' values kept equal, restarted where the set
   changes; :func:`polish_ties`); where the utility has no exact gradient and kinks
   (Heuristic 1's maximum over checkpoints, MaxMin's minimum over groups) the starts in
   turn, by a restarted bounded simplex method (:func:`polish_nonsmooth`), which crosses
   kinks where finite differences mislead (under chi^2 a start whose piece-by-piece polish
   stalls on a support kink is dropped, and what is left goes to the simplex method from
   the best point); where the training rule is not differentiable
   (TV), a batched compass search; beyond 64 parameters a batched projected gradient ascent;
3. for the argmax rule over candidate models, the exact best response: for each candidate a
   linear programme says whether some report selects it (:func:`_argmax_best_response`).

Both the whole space (sizes in ``[1, W]``) and reports at the true size are searched. The
gain found is a *lower bound* on the group's true best-response gain (exact for the argmax
rule). The search is deterministic in its seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rlhf_mech.analysis._objective import (
    BUDGET_EXHAUSTED,
    SEARCH_CONVERGED,
    Misreport,
    ReportObjective,
    SearchResult,
)
from rlhf_mech.analysis._polish import (
    PAST_EDGE,
    SCIPY_DIMENSION,
    flat_starts,
    has_kinks,
    plateau_probes,
    polish,
    polish_kinks,
    polish_nonsmooth,
    polish_starts,
    polish_ties,
)
from rlhf_mech.analysis._space import ReportSpace
from rlhf_mech.analysis._strategies import (
    mixing_misreports,
    others_reward,
    polarise_misreports,
    size_misreports,
)
from rlhf_mech.core import (
    Game,
    PaymentRule,
    Profile,
    deviation,
)

Array = np.ndarray


#: Games with more outcomes than this get fewer evaluations per search (:func:`evaluations_for`).
LARGE_GAME_OUTCOMES = 10_000
#: The fewest evaluations a search of a large game gets.
MIN_LARGE_GAME_EVALUATIONS = 40
#: Distinct starts polished per space.
_STARTS = 4
#: Two points closer than this (relative to the space's extent) are the same start.
_SAME_START = 1e-6
#: The share of a search's budget that goes to the whole space (the rest: the true size).
_WHOLE_SPACE_SHARE = 3 / 4
#: The best vertices whose connecting edges are sampled (:func:`_edges`).
_EDGE_VERTICES = 5
#: Rounds of plateau probing and re-polishing per space.
_PLATEAU_ROUNDS = 2
#: A start of Heuristic 1's piece-by-piece polish under chi^2 whose round raised its gain by
#: less than this (relative) has stalled on a kink of the pieces (a support change) and is
#: dropped (:func:`~rlhf_mech.analysis._polish.polish_starts`): the budget it would have
#: taken goes to the simplex method from the best point, which crosses such kinks.
_STALL = 1e-3


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


def vertex_orders(space: ReportSpace, objective: ReportObjective, truth: Array, own: Array) -> Array:
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
# The search
# --------------------------------------------------------------------------------------------


def search_polytope(
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
    orderings the nested vertex sets follow (:func:`orders`)."""
    space = objective.space
    truth_z = float(game.truth.sizes[i]) * space.truth(game, i)
    start = objective.evaluations
    # a polish that follows the pieces of the utility (Heuristic 1) still gains where the
    # candidates have stopped: half the usual share for the candidates
    share_of = budget // 2 if objective.piecewise else budget
    pool = _Pool.empty()
    # the truth (a start for the polish: the gradient leads away from it where it pays) and
    # the structured families first, so that a tiny budget still tries them
    pool.add(objective, truth_z[None], "truth", start + budget)
    ties = np.zeros((0, truth_z.size))
    if objective.piecewise and space.basis is None:
        # the reports that raise one outcome's score to the others' best: with a small lambda
        # the fine-tuned model is a point mass (a plateau) except near such a tie (outside
        # the candidates' shares)
        others = objective.group.others_scores[0]
        ties = np.diag(others.max() - others)[others < others.max()]
        pool.add(objective, space.project(ties, cap), "tie", start + budget)
    origin = start + len(ties)
    for label, points in families:
        pool.add(objective, space.project(points, cap), label, origin + share_of // 8)
    share = origin + max(4, (3 * share_of) // 8)  # vertices
    vertices = space.vertices(cap, max(2, share - objective.evaluations), orders, rng)
    vertices, vertex_gains = pool.add(objective, vertices, "vertex", share)
    pool.add(objective, _edges(vertices, vertex_gains), "edge", origin + (7 * share_of) // 16)
    faces = _faces(vertices, max(2, share_of // 8), rng)
    pool.add(objective, faces, "face", origin + share_of // 2)
    scale = max(cap, np.finfo(float).tiny)
    noise = truth_z + scale * 0.05 * rng.standard_normal((max(2, share_of // 16), truth_z.size))
    pool.add(objective, space.project(noise, cap), "random", origin + share_of // 2)
    z, gains, slopes, labels = pool.best(_STARTS, scale)
    if len(gains) == 0:
        return truth_z, 0.0, "truth", True
    end = start + budget
    flat = None
    if objective.piecewise:
        # a start on a plateau (a saturated fine-tuned model) is not polished piece by
        # piece; where every start is on one, a quarter of the budget goes to more faces
        gain_scale = max(1.0, float(np.abs(gains[np.isfinite(gains)]).max(initial=0.0)))
        flat = flat_starts(objective, cap, z, gain_scale)
        if flat.all():
            faces = _faces(vertices, max(2, budget // 4), rng)
            pool.add(objective, faces, "face", objective.evaluations + budget // 4)
            z, gains, slopes, labels = pool.best(_STARTS, scale)
            flat = flat_starts(objective, cap, z, gain_scale)
    if not (objective.smooth and z.shape[-1] <= SCIPY_DIMENSION):
        polished, polished_gains, converged = polish(objective, cap, z, gains, slopes, end, rng)
        k = int(np.argmax(polished_gains))
        moved = np.abs(polished[k] - z[k]).max() > 0
        return polished[k], float(polished_gains[k]), "local" if moved else labels[k], converged
    plateaus = has_kinks(objective)
    starts = z.copy()
    if objective.tied:
        # MaxMin: every start settled on its piece of the utility (a few evaluations each,
        # half the polish's budget at most), then the simplex method from the best
        ties_end = objective.evaluations + (end - objective.evaluations) // 2
        for j, k in enumerate(np.argsort(-gains, kind="stable")):
            room = (ties_end - objective.evaluations) // (len(gains) - j)
            z[k], gains[k], _ = polish_ties(
                objective, cap, z[k], float(gains[k]), objective.evaluations + room
            )
    # room for the plateau probes of the best point and a polish from the best probe
    reserve = _PLATEAU_ROUNDS * (len(PAST_EDGE) * z.shape[-1] + 4) if plateaus else 0
    polish_end = max(objective.evaluations + 2, end - min(reserve, budget // 4))
    support_kinks = bool(np.isfinite(objective.group.mechanism.divergence.g_prime_at_zero))
    stall = _STALL if objective.piecewise and support_kinks else 0.0
    polished, polished_gains, converged = polish_starts(objective, cap, z, gains, polish_end, flat, stall)
    k = int(np.argmax(polished_gains))
    best_z, best_gain = polished[k], float(polished_gains[k])
    label = "local" if np.abs(polished[k] - starts[k]).max() > 0 else labels[k]
    if (
        objective.piecewise
        and support_kinks
        and best_gain > 0
        and objective.evaluations + z.shape[-1] + 2 <= end
    ):
        # every start's pieces settled, on a training rule whose solution has kinks of its
        # own (chi^2's support changes, where the pieces are not smooth): what is left goes
        # to the simplex method from the best point, which crosses them
        before = best_gain
        best_z, best_gain, _ = polish_nonsmooth(
            objective, cap, best_z, best_gain, max(1.0, abs(best_gain)), end
        )
        label = "local" if best_gain > before else label
    for _ in range(_PLATEAU_ROUNDS if plateaus else 0):
        if objective.evaluations >= end:
            break
        _, slopes, gaps = objective.probe(best_z[None])
        probes = plateau_probes(
            objective.space, cap, best_z, best_gain, slopes[0], None if gaps is None else gaps[0]
        )[: max(0, end - objective.evaluations)]
        if len(probes) == 0:
            break
        probe_gains, probe_slopes, _ = objective.probe(probes)
        j = int(np.argmax(probe_gains))
        if not probe_gains[j] > best_gain + 4 * np.finfo(float).eps * max(1.0, abs(best_gain)):
            break
        best_z, best_gain, ok = polish_kinks(objective, cap, probes, probe_gains, probe_slopes, end)
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
    distinct points (:func:`polish_starts`; plateau probes where the utility has kinks).
    The best report is re-evaluated as a report (not a contribution) so that its gain
    replays exactly.
    """
    mechanism = game.mechanism.with_payment_rule(payment_rule)
    space = space or ReportSpace.of(game)
    w = float(game.truth.sizes[i])
    truth_z = w * space.truth(game, i)
    objective = ReportObjective(deviation(mechanism, game.truth, others or game.truth, i), space, truth_z)
    families = _family_points(game, i, space, max(3, budget // 24))
    orders = vertex_orders(
        space, objective, truth_z, game.truth.rewards[i] if space.basis is None else truth_z
    )
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
        z, gain, label, ok = search_polytope(
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
