r"""Implementability of a training rule on a finite type set: cycle monotonicity (appendix E).

A training rule ``psi`` is *implementable* (some payment rule makes it DSIC, Definition 3.2)
if and only if it is *cycle monotone* (Definition E.1, Proposition E.2, Rochet). For one
group ``i``, the others' reports fixed (the game's reported profile) and a finite set of
types ``T = {t_1, ..., t_K}``, ``t = (rm, w)``, this module decides cycle monotonicity on
``T`` exactly (up to a stated tolerance) and returns either a certificate that no payment
rule makes ``psi`` DSIC (a negative cycle), or payments that make it DSIC on ``T`` (the
Rochet potentials of the proof of Proposition E.2).

Conventions
-----------
``pi_a = psi(t_a, reports_-i)`` is the fine-tuned distribution when the group reports ``t_a``;

* ``V[a, b] = w_b <pi_a, rm_b>``: the group valuation of true type ``b`` reporting ``a``
  (Definition 3.1);
* ``L[a, b] = V[b, b] - V[a, b] = l(t_a, t_b)``: the valuation gain of true type ``b`` from
  reporting ``b`` instead of ``a``, the function ``l(t', t)`` of appendix E with ``t' = t_a``
  (the misreport) and ``t = t_b`` (the truth);
* the complete digraph on ``T`` has an edge ``a -> b`` of weight ``L[a, b]``. A closed walk
  ``t^0 -> t^1 -> ... -> t^0`` has weight ``sum_j l(t^j, t^{j+1})``, the sum of Definition
  E.1, so cycle monotonicity on ``T`` is "no negative cycle";
* utility is quasi-linear (section 3): ``u = w_b <pi_a, rm_b> - p_a`` for true type ``b``
  reporting ``a``. DSIC on ``T`` is ``p_b - p_a <= L[a, b]`` for all ``a, b``: exactly the
  shortest-path inequalities of this digraph, which is why the shortest-path distances
  ``p_b = dist(t_root -> t_b)`` are DSIC payments (the sufficiency half of Proposition E.2;
  ``t_root`` is the group's true type, ``p_root = 0``).

Tolerance
---------
Every edge gets ``eps = tol / K`` added: ``L + eps``. A cycle has at most ``K`` edges, so

* "monotone" means every cycle of ``T`` sums to at least ``-(its length / K) tol >= -tol``,
  and the payments returned satisfy DSIC on ``T`` to ``tol / K`` (plus rounding, measured and
  reported as :attr:`ImplementabilityResult.dsic_violation`);
* "not monotone" means a cycle whose sum is below ``-(its length / K) tol < 0``: a genuine
  negative cycle, whose exact sum is recomputed from ``L`` and reported.

Method
------
1. The ``K`` types are one batch of the mechanism kernel (:meth:`~rlhf_mech.core.Deviation.
   outcomes` with ``P = K``): ``K`` training solves, however the rule is built (SW-Max and
   the non-additive MaxMin and Nash alike).
2. ``V = Pi (w * R)^T``: one ``(K, m) x (m, K)`` product; ``L = diag(V)[None, :] - V``.
3. :func:`scipy.sparse.csgraph.bellman_ford` from the root on ``L + eps`` gives the Rochet
   potentials, or raises :class:`~scipy.sparse.csgraph.NegativeCycleError` (``graph="numpy"``:
   a vectorised Bellman-Ford that stops as soon as the distances settle, :func:`shortest_paths`).
4. On a negative cycle, a vectorised Bellman-Ford (numpy, one ``(K, K)`` relaxation per
   round, a virtual source at distance 0 to every type) keeps a predecessor array; the
   predecessor graph then holds a negative cycle, found by following the predecessors ``K``
   steps from every type at once.
5. For an additive rule (SW-Max), ``p^AFF`` (eq. 1) of every type comes with step 1, and the
   payments are compared with it up to the best constant (payment equivalence,
   Definition 4.5, Corollary 4.10).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import numpy as np

from rlhf_mech.analysis._space import ReportSpace
from rlhf_mech.analysis._sweep import group_index
from rlhf_mech.core import AFFINE_MAXIMIZER, NONE, Deviation, Game, deviation
from rlhf_mech.core._internal import CONVERGED
from rlhf_mech.errors import RlhfMechError

Array = np.ndarray

#: The type-set kinds (see :func:`type_set`).
TYPE_KINDS: tuple[str, ...] = ("grid", "vertices", "random", "user")
#: Shortest-path methods (see :func:`implementability`).
GRAPH_METHODS: tuple[str, ...] = ("scipy", "numpy")
#: Default tolerance of the cycle sums (see the module's Tolerance section).
DEFAULT_TOL = 1e-9
#: Accuracy of one valuation ``<pi, rm>`` relative to the largest one: a cycle of ``C`` steps
#: whose sum is within ``C * SOLVER_ACCURACY * max(1, max V)`` of 0 may be the solves' rounding
#: (the fair rules' duality gap of 1e-12 leaves ``pi`` accurate to ~1e-7; SW-Max is far more
#: accurate), and is reported as undecided (:attr:`ImplementabilityResult.decided`).
SOLVER_ACCURACY = 1e-6
#: Most types a type set may have by default (memory ``K^2``, time ``K^3``: see
#: ``benchmarks/implementability.py``).
DEFAULT_MAX_TYPES = 2000


@dataclass(frozen=True)
class TypeSet:
    """A finite set of types of one group: parameters and sizes, the true type first.

    Attributes
    ----------
    kind : how the set was built (one of :data:`TYPE_KINDS`).
    parameters : (K, d) the reports' parameters: reward vectors, or preference weights over
        the game's report basis.
    rewards : (K, m) the reward models ``rm_a``.
    sizes : (K,) the sizes ``w_a``.
    """

    kind: str
    parameters: Array
    rewards: Array
    sizes: Array

    @property
    def count(self) -> int:
        return int(self.sizes.shape[0])


@dataclass(frozen=True)
class ImplementabilityResult:
    """Cycle monotonicity of a training rule on one group's finite type set (appendix E).

    Attributes
    ----------
    game : the game; group : the group's index ``i``; training_rule : the rule's name.
    types : the :class:`TypeSet`; type 0 is the group's true type (the root).
    distributions : (K, m) ``pi_a = psi(t_a, reports_-i)``.
    valuations : (K, K) ``V[a, b] = w_b <pi_a, rm_b>``: true type ``b`` reporting ``a``.
    gains : (K, K) ``L[a, b] = V[b, b] - V[a, b] = l(t_a, t_b)`` (appendix E): the gain of true
        type ``b`` from truth over reporting ``a``; the weight of the edge ``a -> b``.
    monotone : whether no cycle of ``T`` sums below the tolerance (see the module notes).
    cycle : (C,) type indices ``s_0, ..., s_{C-1}`` of a negative cycle, in the order "type
        ``s_j`` reports ``s_{j+1}``" (indices mod ``C``), or ``None``.
    cycle_gains : (C,) ``g_j = V[s_{j+1}, s_j] - V[s_j, s_j]``: what type ``s_j`` gains by
        reporting ``s_{j+1}`` (payments aside), or ``None``. DSIC would need
        ``p(s_{j+1}) - p(s_j) >= g_j`` for all ``j``; summed around the cycle, ``0 >= sum g``.
    cycle_sum : the Definition E.1 sum of the cycle, ``-sum(cycle_gains) < 0``, recomputed
        from ``L``; ``None`` when monotone.
    payments : (K,) Rochet payments ``p_b = dist(t_0 -> t_b)`` in the digraph ``L + tol/K``
        (``p_0 = 0``; utility ``w_b v_b - p_b``), or ``None`` when not monotone.
    dsic_violation : ``max_{a,b} (V[a, b] - p_a) - (V[b, b] - p_b)`` with those payments (at
        most ``tol / K`` plus rounding), or ``None``.
    aff_payments : (K,) ``p^AFF`` (eq. 1) of each type for an additive rule, else ``None``.
    aff_offset : the constant ``c`` that best aligns them: ``payments ~ aff_payments + c``
        (the midrange of the differences, which minimises the largest deviation), or ``None``.
    aff_gap : ``max_b |payments_b - aff_payments_b - c|`` (payment equivalence, Definition 4.5,
        Corollary 4.10: it shrinks as the type set is refined), or ``None``.
    status : (K,) the solver status of each type's training solve (``CONVERGED`` = 0). Types
        whose solve did not converge (or raised) are left out of ``types`` and named in
        ``notes``; only the true type is kept whatever its status.
    noise_floor : for a cycle of ``C`` steps, ``C * SOLVER_ACCURACY * max(1, max |V|)``: a cycle
        sum above ``-noise_floor`` may be the solves' rounding (0 when monotone).
    tol : the tolerance used.
    seconds : wall time of the whole analysis; solve_seconds : of the ``K`` solves alone.
    notes : what the reader should know (stalled solves, a cycle of tiny weight).
    """

    game: Game
    group: int
    training_rule: str
    types: TypeSet
    distributions: Array
    valuations: Array
    gains: Array
    monotone: bool
    cycle: Array | None
    cycle_gains: Array | None
    cycle_sum: float | None
    payments: Array | None
    dsic_violation: float | None
    aff_payments: Array | None
    aff_offset: float | None
    aff_gap: float | None
    status: Array
    noise_floor: float
    tol: float
    seconds: float
    solve_seconds: float
    notes: tuple[str, ...] = ()

    @property
    def K(self) -> int:
        """The number of types."""
        return self.types.count

    @property
    def decided(self) -> bool:
        """Whether the verdict stands clear of the solves' rounding: monotone, or a cycle whose
        sum is below ``-noise_floor``."""
        return self.monotone or (self.cycle_sum is not None and self.cycle_sum < -self.noise_floor)

    @property
    def group_name(self) -> str:
        return self.game.group_names[self.group]

    @property
    def unconverged(self) -> Array:
        """Indices of the types whose training solve did not converge."""
        return np.flatnonzero(self.status != CONVERGED)


# --------------------------------------------------------------------------------------------
# Type sets
# --------------------------------------------------------------------------------------------


def _compositions(total: int, parts: int) -> Array:
    """(C(total + parts - 1, parts - 1), parts) integer rows summing to ``total`` (stars and
    bars: the bars' positions among ``total + parts - 1`` slots), in lexicographic order."""
    if parts == 1:
        return np.array([[total]])
    bars = np.array(list(itertools.combinations(range(total + parts - 1), parts - 1)), dtype=int)
    edges = np.hstack([np.full((len(bars), 1), -1), bars, np.full((len(bars), 1), total + parts - 1)])
    return np.diff(edges, axis=1) - 1


def _grid_count(space: ReportSpace, n: int) -> int:
    d = space.dimension
    if space.basis is not None:  # {theta >= 0, sum theta <= B}, origin excluded
        return math.comb(n + d, d) - 1
    if space.simplex:
        return math.comb(n + d - 1, d - 1)
    if space.normalization.normalised:  # max: {0..n}^d / n with max 1
        return (n + 1) ** d - n**d
    return (n + 1) ** d


def _grid(space: ReportSpace, n: int) -> Array:
    """The grid of resolution ``n`` over the group's reward domain (section 2)."""
    d = space.dimension
    if space.basis is not None:
        points = _compositions(n, d + 1)[:, :d] * (space.bound / n)
        return points[points.sum(axis=1) > 0]
    if space.simplex:
        return _compositions(n, d) / n
    axes = np.indices((n + 1,) * d).reshape(d, -1).T / n
    if space.normalization.normalised:
        return axes[axes.max(axis=1) == 1.0]
    return axes * space.bound


def _random(space: ReportSpace, count: int, rng: np.random.Generator) -> Array:
    """``count`` random points of the domain: uniform on the simplex (sum), on the box then
    scaled to max 1 (max), on the box ``[0, R]^d`` (none), on the capped simplex (preferences)."""
    d = space.dimension
    if space.basis is not None:
        return rng.dirichlet(np.ones(d + 1), count)[:, :d] * space.bound + 1e-12
    if space.simplex:
        return rng.dirichlet(np.ones(d), count)
    box = rng.random((count, d))
    if space.normalization.normalised:
        return box / box.max(axis=1, keepdims=True)
    return box * space.bound


def type_set(
    game: Game,
    group: int,
    kind: str = "grid",
    points: int = 4,
    sizes: Array | None = None,
    seed: int = 0,
    user_parameters: Array | None = None,
    max_types: int = DEFAULT_MAX_TYPES,
) -> TypeSet:
    """Group ``group``'s finite type set: reward points x sizes, the true type first.

    Parameters
    ----------
    kind : ``grid`` (resolution ``points`` over the domain: the simplex for ``sum``, the
        face ``max = 1`` of the cube for ``max``, the box ``[0, R]^d`` for ``none``), ``vertices``
        (the domain's vertices, :meth:`ReportSpace.vertices`), ``random`` (``points`` uniform
        points, ``numpy.random.default_rng(seed)``) or ``user`` (``user_parameters``).
    sizes : the sizes every reward point is paired with (default: the group's true size);
        each in ``[1, W]``.
    user_parameters : (P, d) extra reward points, each paired with every size, added to any
        kind (``user``: the only ones).
    max_types : the most types allowed (a grid grows as ``points^(d-1)``).

    Returns
    -------
    The types in a deterministic order: the true type, then points x sizes in generation
    order, then the user's points; exact duplicates dropped.

    Raises
    ------
    RlhfMechError
        for an unknown kind, a bad size or user point, or too many types.
    """
    if kind not in TYPE_KINDS:
        raise RlhfMechError(f"unknown type set {kind!r}; the type sets are {', '.join(TYPE_KINDS)}")
    space = ReportSpace.of(game)
    truth = space.truth(game, group)
    true_size = float(game.truth.sizes[group])
    size_list = np.atleast_1d(np.asarray([true_size] if sizes is None else sizes, dtype=float))
    bad = ~((size_list >= 1.0) & (size_list <= space.size_bound) & np.isfinite(size_list))
    if size_list.size == 0 or bad.any():
        shown = size_list[bad][0] if bad.any() else "none"
        raise RlhfMechError(f"size {shown}: sizes must lie in [1, {space.size_bound:g}] (max_size)")
    if kind in ("grid", "random") and points < 1:
        raise RlhfMechError(f"--points must be >= 1 for a {kind} type set, got {points}")
    if kind == "grid":
        count = _grid_count(space, points) * size_list.size
        if count > max_types:
            # a Python int of thousands of digits cannot be printed (sys.int_info's limit)
            shown = str(count) if count < 10**15 else f"about 10^{int(math.log10(count))}"
            raise RlhfMechError(
                f"a grid of resolution {points} over {space.dimension} outcomes has {shown} types, more "
                f"than {max_types}; lower --points or use --types random"
            )
        base = _grid(space, points)
    elif kind == "vertices":
        rng = np.random.default_rng(seed)
        orders = np.argsort(-truth)[None]
        base = space.vertices(space.bound, max_types, orders, rng)
        base = base[base.sum(axis=1) > 0]
        if space.normalization.normalised and space.basis is None:
            base = space.normalization.normalise(base)
    elif kind == "random":
        base = _random(space, points, np.random.default_rng(seed))
    else:
        base = np.zeros((0, space.dimension))
    parameters = np.repeat(base, size_list.size, axis=0)
    point_sizes = np.tile(size_list, base.shape[0])
    if kind == "user" and (user_parameters is None or len(user_parameters) == 0):
        raise RlhfMechError("--types user needs at least one --type-reward")
    if user_parameters is not None and len(user_parameters):
        points_given = np.atleast_2d(np.asarray(user_parameters, dtype=float))
        if points_given.shape[1] != space.dimension:
            raise RlhfMechError(f"user types must have {space.dimension} entries, got {points_given.shape}")
        extra = np.repeat(points_given, size_list.size, axis=0)
        extra_sizes = np.tile(size_list, len(points_given))
        valid = space.contains(extra, extra_sizes)
        if not valid.all():
            raise RlhfMechError(f"user type {int(np.flatnonzero(~valid)[0])} is not a valid report")
        parameters = np.vstack([parameters, extra])
        point_sizes = np.concatenate([point_sizes, extra_sizes])
    parameters = np.vstack([truth[None], parameters])
    point_sizes = np.concatenate([[true_size], point_sizes])
    keys = np.hstack([parameters, point_sizes[:, None]])
    _, first = np.unique(keys, axis=0, return_index=True)
    keep = np.sort(first)
    if keep.size > max_types:
        raise RlhfMechError(f"{keep.size} types, more than {max_types}; lower --points")
    parameters, point_sizes = parameters[keep], point_sizes[keep]
    return TypeSet(kind, parameters, space.rewards(parameters), point_sizes)


# --------------------------------------------------------------------------------------------
# The digraph
# --------------------------------------------------------------------------------------------


def gain_matrix(distributions: Array, rewards: Array, sizes: Array) -> tuple[Array, Array]:
    """``V[a, b] = w_b <pi_a, rm_b>`` and ``L[a, b] = V[b, b] - V[a, b]`` (appendix E's
    ``l(t_a, t_b)``): one ``(K, m) x (m, K)`` product.

    Parameters
    ----------
    distributions : (K, m) ``pi_a``; rewards : (K, m) ``rm_b``; sizes : (K,) ``w_b``.
    """
    valuations = distributions @ (rewards * sizes[:, None]).T
    return valuations, np.diagonal(valuations)[None, :] - valuations


def _pred_cycles(pred: Array) -> list[Array]:
    """Every cycle of the predecessor graph ``b -> pred[b]`` (``-1``: none), each as indices
    in edge order ``pred[c_{j+1}] = c_j``, found by following ``pred`` ``K`` steps from every
    node at once (a node still defined after ``K`` steps lies on a cycle)."""
    k = pred.size
    ext = np.append(pred, -1)  # index -1 maps to itself
    z = np.arange(k)
    for _ in range(k):
        z = ext[z]
    cycles = []
    seen = np.zeros(k, dtype=bool)
    for start in np.unique(z[z >= 0]):
        if seen[start]:
            continue
        walk = [int(start)]
        node = int(pred[start])
        while node != start:
            walk.append(node)
            node = int(pred[node])
        seen[walk] = True
        cycles.append(np.array(walk[::-1]))  # pred order reversed: c_j -> c_{j+1}
    return cycles


def negative_cycle(weights: Array, max_rounds: int | None = None) -> Array | None:
    """A negative cycle of the complete digraph ``weights[a, b]`` (edge ``a -> b``), or ``None``.

    Bellman-Ford from a virtual source joined to every node by an edge of weight 0, every
    node relaxed at once per round (one ``(K, K)`` min per round), with a predecessor array.
    Without a negative cycle the distances settle within ``K`` rounds; otherwise every cycle
    of the predecessor graph is negative (Cherkassky and Goldberg, 1999), and one appears. The
    predecessor graph is searched after rounds 1, 2, 4, 8, ... and every ``K/8`` rounds (each
    search costs about one round), so a short cycle is found early; the most negative cycle
    found (its sum recomputed) is returned, in edge order (``c_j -> c_{j+1}``, mod ``C``).

    Parameters
    ----------
    weights : (K, K) edge weights; the diagonal is ignored.
    max_rounds : rounds before giving up (default ``4 K``).
    """
    w = np.array(weights, dtype=float)
    k = w.shape[0]
    np.fill_diagonal(w, np.inf)
    dist = np.zeros(k)
    pred = np.full(k, -1)
    columns = np.arange(k)
    rounds = 4 * k if max_rounds is None else max_rounds
    every = max(1, k // 8)
    for r in range(1, rounds + 1):
        candidates = dist[:, None] + w
        best = np.argmin(candidates, axis=0)
        new = candidates[best, columns]
        improved = new < dist
        if not improved.any():
            return None
        dist = np.where(improved, new, dist)
        pred = np.where(improved, best, pred)
        if r & (r - 1) == 0 or r % every == 0:  # rounds 1, 2, 4, 8, ... and every K/8
            cycles = _pred_cycles(pred)
            sums = [float(w[c, np.roll(c, -1)].sum()) for c in cycles]
            if sums and min(sums) < 0:
                return cycles[int(np.argmin(sums))]
    return None


def shortest_paths(weights: Array, root: int = 0) -> Array | None:
    """Shortest-path distances from ``root`` in the complete digraph ``weights`` by a
    vectorised Bellman-Ford that stops when no distance moves (numpy), or ``None`` on a
    negative cycle.

    Each round is one ``(K, K)`` min; the rounds needed are the most edges on a shortest path
    (often far fewer than ``K``), so this is usually much faster than
    :func:`rochet_payments`' scipy call, which always runs ``K`` rounds.
    """
    w = np.array(weights, dtype=float)
    k = w.shape[0]
    np.fill_diagonal(w, np.inf)
    dist = np.full(k, np.inf)
    dist[root] = 0.0
    for _ in range(k):
        new = np.minimum(dist, (dist[:, None] + w).min(axis=0))
        if np.array_equal(new, dist):
            return dist
        dist = new
    return None


def rochet_payments(weights: Array, root: int = 0) -> Array | None:
    """Shortest-path distances ``p_b = dist(root -> b)`` in the complete digraph ``weights``
    (:func:`scipy.sparse.csgraph.bellman_ford`), or ``None`` on a negative cycle.

    They satisfy ``p_b - p_a <= weights[a, b]`` for every edge: with ``weights = L`` (+ eps),
    the DSIC inequalities on the type set (proof of Proposition E.2).
    """
    from scipy.sparse.csgraph import NegativeCycleError, bellman_ford, csgraph_from_dense

    w = np.array(weights, dtype=float)
    np.fill_diagonal(w, np.inf)
    graph = csgraph_from_dense(w, null_value=np.inf)  # a zero weight stays an edge
    try:
        return np.asarray(bellman_ford(graph, directed=True, indices=root), dtype=float)
    except NegativeCycleError:
        return None


# --------------------------------------------------------------------------------------------
# The analysis
# --------------------------------------------------------------------------------------------


def _listed(indices: Array) -> str:
    """``types 3, 7, 9`` (the first five, then ``...``)."""
    shown = ", ".join(str(int(a)) for a in indices[:5])
    return ("type " if indices.size == 1 else "types ") + shown + (" ..." if indices.size > 5 else "")


def _without_failing_types(side: Deviation, types: TypeSet) -> tuple[TypeSet, Array]:
    """The type set without the types whose training solve raises (a solver's singular
    system), found one type at a time; only run after the batch failed."""
    failed = []
    for a in range(types.count):
        try:
            side.outcomes(types.rewards[None, a : a + 1], types.sizes[None, a : a + 1])
        except np.linalg.LinAlgError:
            failed.append(a)
    dropped = np.array(failed, dtype=int)
    if dropped.size and dropped[0] == 0:
        raise RlhfMechError("the training rule's solver fails on the group's true type (a singular system)")
    keep = np.setdiff1d(np.arange(types.count), dropped)
    kept = TypeSet(types.kind, types.parameters[keep], types.rewards[keep], types.sizes[keep])
    return kept, dropped


def implementability(
    game: Game,
    group: str | int,
    types: TypeSet | None = None,
    *,
    kind: str = "grid",
    points: int = 4,
    sizes: Array | None = None,
    seed: int = 0,
    tol: float = DEFAULT_TOL,
    max_types: int = DEFAULT_MAX_TYPES,
    graph: str = "numpy",
) -> ImplementabilityResult:
    """Decide cycle monotonicity (Definition E.1) of the game's training rule for one group.

    Parameters
    ----------
    game : the game; the others' reports are its reported profile.
    group : the group (name or index).
    types : the type set; else built by :func:`type_set` from ``kind``, ``points``, ``sizes``
        and ``seed``.
    tol : the tolerance of a cycle sum (module notes: each edge gets ``tol / K``).
    graph : who finds the shortest paths: ``numpy`` (the default: :func:`negative_cycle`,
        then :func:`shortest_paths`, each stopping when the distances settle) or ``scipy``
        (:func:`rochet_payments`, always ``K`` rounds in C); the same distances, bit for bit
        (both take the least of the same float sums along paths; tests/test_scale.py checks
        it on random digraphs with and without negative cycles), and the same verdict.

    Returns
    -------
    :class:`ImplementabilityResult`: a negative cycle (no payment rule makes the rule DSIC,
    Proposition E.2) or the Rochet payments with their measured DSIC violation and, for an
    additive rule, the gap to ``p^AFF`` plus a constant.

    Notes
    -----
    ``K`` training solves in one batch and one ``(K, m) x (m, K)`` product form ``L``; the
    graph work is ``O(K^3)`` (Bellman-Ford on a complete digraph), in C (scipy) for the
    potentials and in ``(K, K)`` numpy rounds for a cycle.
    """
    if not tol >= 0:
        raise RlhfMechError(f"--tol must be >= 0, got {tol}")
    if graph not in GRAPH_METHODS:
        raise RlhfMechError(f"unknown graph method {graph!r}; the methods are {', '.join(GRAPH_METHODS)}")
    start = time.perf_counter()
    i = group_index(game, group)
    if types is None:
        types = type_set(game, i, kind, points, sizes, seed, max_types=max_types)
    rule = game.mechanism.training_rule
    mechanism = game.mechanism.with_payment_rule(AFFINE_MAXIMIZER if rule.additive else NONE)
    k = types.count

    notes: list[str] = []
    solve_start = time.perf_counter()
    side = deviation(mechanism, game.truth, game.reports, i)
    with np.errstate(all="ignore"):  # trouble is reported per type, by the solver's status
        try:
            out = side.outcomes(types.rewards[None], types.sizes[None])
        except np.linalg.LinAlgError:
            types, dropped = _without_failing_types(side, types)
            notes.append(
                f"the {rule.name} solver failed (singular system) on {_listed(dropped)} of the "
                f"{k} types; they are left out: {types.count} types remain"
            )
            k = types.count
            out = side.outcomes(types.rewards[None], types.sizes[None])
    solve_seconds = time.perf_counter() - solve_start
    assert out.distributions is not None
    pi, status, aff = out.distributions[0], out.status[0], out.payments[0]
    stalled = np.flatnonzero(status != CONVERGED)
    if stalled.size and stalled[0] != 0:
        # a row of L from an unconverged solve could make (or hide) a cycle: leave those out
        keep = status == CONVERGED
        notes.append(
            f"{stalled.size} of {k} training solves did not converge ({_listed(stalled)}); those "
            f"types are left out: {int(keep.sum())} types remain"
        )
        types = TypeSet(types.kind, types.parameters[keep], types.rewards[keep], types.sizes[keep])
        pi, status, aff, k = pi[keep], status[keep], aff[keep], int(keep.sum())
    elif stalled.size:
        notes.append(
            f"{stalled.size} of {k} training solves did not converge ({_listed(stalled)}), the true "
            "type's among them: their rows of L are approximate"
        )
    stalled = np.flatnonzero(status != CONVERGED)
    valuations, gains = gain_matrix(pi, types.rewards, types.sizes)
    eps = tol / k
    weights = gains + eps
    found: Array | None = None
    if graph == "scipy":
        payments = rochet_payments(weights, 0)
    else:  # the cycle search first: it stops early either way (settled, or a cycle seen)
        found = negative_cycle(weights)
        payments = shortest_paths(weights, 0) if found is None else None
    cycle = cycle_gains = None
    noise_floor = 0.0
    cycle_sum = dsic_violation = aff_offset = aff_gap = None
    aff_payments = aff.copy() if rule.additive else None
    if payments is None:
        found = negative_cycle(weights) if found is None else found
        if found is None:  # scipy's rounding saw a cycle that numpy's does not: say so
            notes.append(
                "scipy found a negative cycle that the numpy search could not locate: undecided "
                "at this tolerance (raise --tol)"
            )
        else:
            order = found[::-1]  # s_j reports s_{j+1}: the graph's edges reversed
            nxt = np.roll(order, -1)
            cycle = order
            cycle_gains = valuations[nxt, order] - valuations[order, order]
            cycle_sum = float(-cycle_gains.sum())
            doubtful = np.intersect1d(order, stalled)
            if doubtful.size:
                notes.append(
                    f"the cycle passes through {_listed(doubtful)}, whose training solve did not "
                    "converge: the certificate is only as good as those solves"
                )
            if cycle_sum >= 0:
                notes.append(f"the cycle found sums to {cycle_sum:.3g} without the tolerance (rounding)")
            noise_floor = SOLVER_ACCURACY * order.size * max(1.0, float(np.abs(valuations).max()))
            if -noise_floor < cycle_sum < 0:
                notes.append(
                    f"the cycle sums to {cycle_sum:.3g}, within the training solves' accuracy "
                    f"({noise_floor:.2g}): it may be rounding; --tol {noise_floor * k / order.size:.2g} "
                    "(tol / K per edge) looks past it"
                )
    else:
        dsic_violation = float(np.max(payments[None, :] - payments[:, None] - gains))
        if aff_payments is not None:
            diff = payments - aff_payments
            aff_offset = float((diff.max() + diff.min()) / 2)
            aff_gap = float((diff.max() - diff.min()) / 2)
    monotone = payments is not None
    return ImplementabilityResult(
        game=game,
        group=i,
        training_rule=rule.name,
        types=types,
        distributions=pi,
        valuations=valuations,
        gains=gains,
        monotone=bool(monotone),
        cycle=cycle,
        cycle_gains=cycle_gains,
        cycle_sum=cycle_sum,
        payments=payments,
        dsic_violation=dsic_violation,
        aff_payments=aff_payments,
        aff_offset=aff_offset,
        aff_gap=aff_gap,
        status=status,
        noise_floor=noise_floor,
        tol=float(tol),
        seconds=time.perf_counter() - start,
        solve_seconds=solve_seconds,
        notes=tuple(notes),
    )
