r"""What payment makes a training rule truthful on a type set, at least (and at most) cost.

For one group with the others' reports fixed and a finite type set ``T = {t_0, ..., t_{K-1}}``
(``t_0`` the true type), :func:`~rlhf_mech.analysis.implementability` builds the digraph of
appendix E: an edge ``a -> b`` of weight ``L[a, b] = V[b, b] - V[a, b]`` (true type ``b``'s
valuation gain from truth over reporting ``a``). A payment vector ``p`` (one payment per
reported type) is, on ``T``,

* DSIC (Definition 3.2): ``p_b - p_a <= L[a, b]`` for every ``a, b``;
* IR (Definition 3.3): ``V[b, b] - p_b >= 0``, i.e. ``p_b <= V[b, b]``;
* non-negative: ``p_b >= 0``.

These are difference constraints, so the feasible set is a lattice (closed under entrywise
``min`` and ``max``) and, when it is not empty, has an entrywise least and an entrywise
greatest element; each is a vector of shortest-path distances on the same digraph as the
Rochet payments (Proposition E.2), with one virtual node added:

* the **cheapest**, ``p_a = -min_c dist(a -> c)`` (``c = a`` included, distance 0): iterating
  ``p_a >= p_b - L[a, b]`` along a path from ``a`` to ``c`` with ``p_c >= 0`` gives
  ``p_a >= -dist(a -> c)``, and the bound is met. It is Bellman-Ford on the reversed graph
  from a virtual source joined to every type at weight 0;
* the **highest**, ``p_b = min_a (V[a, a] + dist(a -> b))``: iterating ``p_b <= p_a + L[a, b]``
  from ``p_a <= V[a, a]``; Bellman-Ford on the graph from a virtual source joined to type
  ``a`` at weight ``V[a, a]``.

Both exist exactly when the cheapest is IR (equivalently the highest is ``>= 0``). Being
entrywise extreme, they minimise (maximise) the revenue ``sum_b p_b`` too, so a linear
programme over the same constraints (``scipy.optimize.linprog``, the tests) reaches the same
values. For SW-Max ``p^AFF`` (eq. 1) is DSIC, IR and ``>= 0`` everywhere (Proposition 4.4), so
``lowest <= p^AFF <= highest`` on every type set. The edge weights carry the implementability
test's tolerance ``tol / K`` (see :mod:`~rlhf_mech.analysis._implementability`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlhf_mech.analysis._implementability import ImplementabilityResult, shortest_paths

Array = np.ndarray


@dataclass(frozen=True)
class LeastCostPayments:
    """The extreme DSIC, IR, non-negative payments of one group on its type set.

    Attributes
    ----------
    result : the implementability analysis they were computed from (its type set, ``V`` and
        ``L``; type 0 is the group's true type).
    lowest : (K,) the entrywise cheapest such payments, or ``None`` (none exist: the rule is
        not cycle monotone on ``T``, or no DSIC payment is both IR and non-negative).
    highest : (K,) the entrywise highest, or ``None``.
    reason : why there are none (``""`` when there are).
    """

    result: ImplementabilityResult
    lowest: Array | None
    highest: Array | None
    reason: str = ""

    @property
    def exists(self) -> bool:
        return self.lowest is not None

    @property
    def at_truth(self) -> tuple[float, float] | None:
        """``(lowest, highest)`` payment of the group's true type (type 0), or ``None``."""
        if self.lowest is None or self.highest is None:
            return None
        return float(self.lowest[0]), float(self.highest[0])


def _with_source(weights: Array, source_edges: Array) -> Array:
    """``weights`` (K, K) with a virtual node K whose edge to type ``a`` weighs
    ``source_edges[a]`` (no edge into it; ``inf`` is no edge, as in :func:`shortest_paths`)."""
    k = weights.shape[0]
    graph = np.full((k + 1, k + 1), np.inf)
    graph[:k, :k] = weights
    graph[k, :k] = source_edges
    return graph


def lowest_payments(weights: Array) -> Array | None:
    """``p_a = -min_c dist(a -> c)`` in the digraph ``weights`` (edge ``a -> b``: the DSIC
    bound ``p_b - p_a <= weights[a, b]``): the entrywise least DSIC payments ``>= 0``, or
    ``None`` on a negative cycle. Shortest paths into a virtual sink are shortest paths from a
    virtual source in the reversed graph."""
    k = weights.shape[0]
    dist = shortest_paths(_with_source(np.asarray(weights, dtype=float).T, np.zeros(k)), root=k)
    return None if dist is None else np.maximum(-dist[:k], 0.0)


def highest_payments(weights: Array, caps: Array) -> Array | None:
    """``p_b = min_a (caps[a] + dist(a -> b))``: the entrywise greatest payments that are DSIC
    and ``<= caps`` (IR: ``caps = diag V``), or ``None`` on a negative cycle."""
    k = weights.shape[0]
    caps = np.asarray(caps, dtype=float)
    dist = shortest_paths(_with_source(np.asarray(weights, dtype=float), caps), root=k)
    return None if dist is None else np.minimum(dist[:k], caps)


def least_cost_payments(result: ImplementabilityResult) -> LeastCostPayments:
    """The cheapest and the highest payments that are DSIC, IR and ``>= 0`` on the type set of
    ``result`` (module notes), on the edge weights of its test (``L + tol / K``).

    The IR and non-negativity checks allow ``tol`` (the analysis' own tolerance).
    """
    if not result.monotone:
        return LeastCostPayments(result, None, None, "not cycle monotone on the type set: no payment is DSIC")
    weights = result.gains + result.tol / result.K
    own = np.diag(result.valuations)
    lowest = lowest_payments(weights)
    highest = highest_payments(weights, own)
    if lowest is None or highest is None:  # monotone at tol, but rounding closed a cycle
        return LeastCostPayments(result, None, None, "a cycle within the tolerance: undecided")
    if np.any(lowest > own + result.tol):
        worst = int(np.argmax(lowest - own))
        return LeastCostPayments(
            result,
            None,
            None,
            f"the cheapest DSIC payments >= 0 leave type {worst} a utility of "
            f"{own[worst] - lowest[worst]:.3g} < 0: none is also IR",
        )
    return LeastCostPayments(result, lowest, highest)
