r"""The space of valid reports of one group, as a polytope of contributions.

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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlhf_mech.core import (
    Game,
    Normalization,
)

Array = np.ndarray


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
