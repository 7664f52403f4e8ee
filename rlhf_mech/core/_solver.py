r"""The SW-Max training rule (Definition 4.1), solved exactly.

``pi* = argmax_{pi in simplex} <pi, s> - lambda * D_g(pi || pi_init)`` with ``s = sum_i w_i rm_i``.

Method
------
By the KKT conditions of appendix B (eq. OPT, with the non-negativity constraint kept)
the maximiser is, for a multiplier ``mu``,

    t(x) = pi(x) / pi_init(x) = (g')^{-1}((s(x) - mu) / lambda)   if (s(x) - mu)/lambda > g'(0+)
    t(x) = 0                                                      otherwise,

and ``mu`` is the root of ``T(mu) = sum_x pi_init(x) t(x) - 1``, a decreasing convex function.
Divergences with a closed form (KL, TV) use it. For the others the root is found by a
vectorised Newton iteration on the multiplier, one pass over the scores per iteration:

1. start at the largest of the lower bounds of :func:`_start_bracket`, where ``T >= 1``
   (one outcome alone carries mass 1, or Jensen's bound over all outcomes); the upper end
   ``s_max - lambda g'(1)`` has ``T <= 1``. Where ``t`` can be 0 (chi^2) one histogram pass
   raises the start to the best of Jensen's lower bounds over nested sets of outcomes
   (:func:`_histogram_start`);
2. Newton steps on ``T^(-1/p)`` (:func:`_newton_step`): ``log T`` for KL (``p = inf``), ``T``
   for chi^2 (``p = -1``, piecewise linear). For Hellinger, reverse KL and JS (a pole of
   ``(g')^{-1}``) the same pass also sums ``d^2T/dz^2`` and ``p`` is fitted so that
   ``T^(-1/p)`` is linear to second order (a third-order step; ``p`` is the order of the pole,
   2 or 1, for one dominant outcome, and small where ``T`` is log-like). A step that leaves
   the bracket kept from the signs of ``T - 1`` is replaced by the step from the bracket's
   other end, or else by bisection;
3. stop when ``|T - 1| <= 4 eps``, or when the step is below rounding and ``|T - 1|`` is at
   most 1e-10 or what a few ulps of the multiplier change ``T`` by (at lambda ~ 1e-6 the
   multiplier is ~1e8 and the gaps carry that rounding already); a multiplier that stalls
   further from the root is reported as :data:`STALLED`;
   ``pi = pi_init * t / T``.

For the divergences whose ``g'`` is bounded (Hellinger, reverse KL, JS) the iterate is the
best outcome's distance below the pole of ``(g')^{-1}``, so that an outcome with
``pi_init = 1e-300`` can take mass O(1) (distance ~1e-150) without losing digits.

The result is exact up to rounding: chi^2 puts exactly zero mass where
``s(x) - mu <= -2 lambda``, the pole divergences keep every ratio finite.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from rlhf_mech.core._divergences import Divergence, get_divergence
from rlhf_mech.core._numerics import (
    CHUNK_ELEMENTS,
    TILE_ELEMENTS,
    per_row,
    row_dot,
    rows_per_chunk,
    tile_shape,
    total_mass,
)
from rlhf_mech.core._status import CONVERGED, MAXITER, STALLED, STATUS_MESSAGES

Array = np.ndarray


#: A multiplier that no longer moves is accepted when the mass is this close to 1.
_STALL_TOL = 1e-10

_EPS = np.finfo(float).eps
#: The pole divergences fit the power of their Newton step to ``d^2T/dz^2`` while some row's
#: ``|T - 1|`` exceeds this; closer to the root the fixed power is as good (both steps are
#: exact to second order) and the pass skips the extra sum (~30% of its cost).
_FAR = 1e-3
#: A row is packed once at most this fraction of its outcomes can still be active.
_PACK_BELOW = 0.5


@dataclass(frozen=True)
class SolveResult:
    """Maximiser of the SW-Max objective for one score vector or a batch of them.

    Leading (batch) axes of ``scores`` carry over to every field.

    Attributes
    ----------
    pi : (..., m) array, the fine-tuned distribution.
    mu : (...,) array, the multiplier of ``sum pi = 1`` (eq. OPT).
    nu : (...,) array, the same multiplier as ``(mu - max_x s(x)) / lambda``, exact to rounding
        (``mu`` itself cannot resolve ``y = (s - mu) / lambda`` when lambda is tiny).
    value : (...,) array, the optimal objective ``<pi, s> - lambda D_g(pi || pi_init)``.
    divergence : (...,) array, ``lambda * D_g(pi || pi_init)`` at ``pi``.
    status : (...,) int array, :data:`CONVERGED`, :data:`MAXITER` or :data:`STALLED`.
    nit : int, passes over the scores: multiplier iterations, plus the histogram pass that
        starts the bracket (:func:`_histogram_start`); 0 for a closed form.
    method : ``"closed_form"`` or ``"newton"``.
    reference : (...,) array or ``None``: the score the Newton iteration measured the
        multiplier from (:func:`_frames`; ``max s`` except where the mass sits far below a
        rare best outcome), and nu_reference : ``(mu - reference) / lambda``, exact to
        rounding where ``nu`` is not: what :func:`kkt_residual` checks against.
    weights : (..., n) array or ``None``: for a training rule solved through a dual over the
        groups (MaxMin, Nash; :func:`~rlhf_mech.core.solve_fair`), the optimal dual weights;
        ``pi`` is then SW-Max's solution at the scores they weight, and ``value`` the rule's
        own objective.
    residual : (...,) array or ``None``: that rule's optimality residual (the relative
        duality gap, or the inner solve's KKT residual where larger).
    """

    pi: Array
    mu: Array
    nu: Array
    value: Array
    divergence: Array
    status: Array
    nit: int
    method: str
    reference: Array | None = None
    nu_reference: Array | None = None
    weights: Array | None = None
    residual: Array | None = None

    def with_dual(self, weights: Array, residual: Array) -> SolveResult:
        """This result with a dual rule's weights and residual (see :attr:`weights`)."""
        return replace(self, weights=weights, residual=residual)

    @property
    def success(self) -> bool:
        """Whether every problem of the batch converged."""
        return bool(np.all(self.status == CONVERGED))

    @property
    def message(self) -> str:
        """The status in words (the worst status of the batch)."""
        return STATUS_MESSAGES[int(np.max(self.status))]


def initial_rows(pi_init: Array, scores_shape: tuple[int, ...]) -> Array:
    """``pi_init`` as the solver's passes read it: ``(m,)``, one initial distribution shared by
    every score row, or ``(B, m)``, one per row of the scores flattened to ``(B, m)``.

    ``pi_init`` is ``(m,)``, or has leading axes that broadcast against the scores' (a batch
    of prompts, each with its own initial model); a broadcast one is materialised (it then
    costs as much memory as the scores).

    Raises
    ------
    ValueError
        when the shapes do not fit.
    """
    pi_init = np.asarray(pi_init, dtype=float)
    m = scores_shape[-1] if scores_shape else 0
    if pi_init.ndim < 1 or pi_init.shape[-1] != m:
        outcomes = pi_init.shape[-1] if pi_init.ndim else 0
        raise ValueError(
            f"`scores` must end with the {outcomes} outcomes of `pi_init`, got shape {scores_shape}"
        )
    if pi_init.ndim == 1:
        return pi_init
    try:
        rows = np.broadcast_to(pi_init, scores_shape)
    except ValueError:
        raise ValueError(
            f"`pi_init` of shape {pi_init.shape} must be 1-D or broadcast against the scores' {scores_shape}"
        ) from None
    return np.ascontiguousarray(rows).reshape(-1, m)


def _validate(scores: Array, pi_init: Array, lam: float) -> tuple[Array, Array]:
    """Checked scores, and ``pi_init`` as :func:`initial_rows` returns it."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim < 1:
        raise ValueError(f"`scores` must have an outcome axis, got shape {scores.shape}")
    pi_init = initial_rows(pi_init, scores.shape)
    if not np.all(pi_init >= np.finfo(float).tiny):
        raise ValueError("`pi_init` must be positive (and at least 2.2e-308, a normal float)")
    # min and max propagate NaN: two reductions instead of a boolean array of scores.shape
    if scores.size and not (np.isfinite(scores.min()) and np.isfinite(scores.max())):
        raise ValueError("`scores` must be finite")
    if not (np.isfinite(lam) and lam > 0):
        raise ValueError(f"`lam` must be positive and finite, got {lam}")
    return scores, pi_init


def solve_sw_max(
    scores: Array,
    pi_init: Array,
    divergence: str | Divergence,
    lam: float,
    *,
    method: str = "auto",
    maxiter: int = 100,
) -> SolveResult:
    r"""Solve the SW-Max training rule (Definition 4.1) for one or many score vectors.

    Parameters
    ----------
    scores : (..., m) array, ``s = sum_i w_i rm_i`` (the weighted reported rewards).
    pi_init : (m,) array, the initial distribution (positive), or one per score row (leading
        axes broadcasting against the scores': a batch of prompts, each with its own).
    divergence : name or :class:`~rlhf_mech.divergences.Divergence`.
    lam : the regularisation strength ``lambda > 0``.
    method : ``"auto"`` (closed form where the divergence has one), ``"newton"`` (force the
        multiplier root-find; used to check KL's closed form) or ``"closed_form"``.
    maxiter : most Newton iterations.

    Returns
    -------
    SolveResult

    Notes
    -----
    See the module docstring for the method. Work is vectorised over the batch: one
    iteration costs one pass over ``scores``; problems that converged are frozen.
    """
    div = get_divergence(divergence)
    scores, pi_init = _validate(scores, pi_init, lam)
    batch_shape = scores.shape[:-1]
    flat = scores.reshape(-1, scores.shape[-1])
    use_closed = method == "closed_form" or (method == "auto" and div.closed_form is not None)
    if method not in ("auto", "newton", "closed_form"):
        raise ValueError(f"`method` must be 'auto', 'newton' or 'closed_form', got {method!r}")
    if use_closed:
        if div.closed_form is None:
            raise ValueError(f"divergence {div.name!r} has no closed form")
        sol = div.closed_form(flat, np.log(pi_init), pi_init, lam)
        pi, mu, value, dval = sol.pi, sol.mu, sol.value, sol.divergence
        nu = sol.nu
        status, nit, used = np.zeros(flat.shape[0], dtype=int), 0, "closed_form"
        reference = nu_reference = None
    else:
        if div.g_prime_inverse is None:
            raise ValueError(f"divergence {div.name!r} has no inverse of g' for Newton's method")
        pi, mu, nu, value, dval, status, nit, frame = _newton_multiplier(flat, pi_init, div, lam, maxiter)
        used = "newton"
        reference, nu_reference = (None, None) if frame is None else (a.reshape(batch_shape) for a in frame)
    return SolveResult(
        pi=pi.reshape(scores.shape),
        mu=mu.reshape(batch_shape),
        nu=nu.reshape(batch_shape),
        value=value.reshape(batch_shape),
        divergence=dval.reshape(batch_shape),
        status=status.reshape(batch_shape),
        nit=nit,
        method=used,
        reference=reference,
        nu_reference=nu_reference,
    )


def _weighted_ratios(
    gaps: Array, z: Array, q: Array, div: Divergence, curvature: bool = False
) -> tuple[Array, Array, Array | None]:
    """``pi_init * t``, ``pi_init * dt/dy`` and (with a pole, if ``curvature``) ``pi_init * d^2t/dy^2``.

    At iterate ``z`` (eq. OPT; ``t = 0`` below ``g'(0+)``).

    Without a pole ``z = nu`` and ``y = gaps - nu``. With a pole ``z = sup g' + nu`` is the
    best outcome's distance below the pole and every outcome's distance is ``z - gaps``: a
    sum of non-negative numbers, exact to rounding however close to the pole it is; there
    ``pi_init * dt/dy`` is formed as ``(pi_init * t) * d(log t)/dy``, finite where ``dt/dy``
    alone overflows, and ``pi_init * d^2t/dy^2`` as ``(pi_init * dt/dy) * h`` (``pole_curvature``).
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if div.pole_inverse is not None:
            t, dlog_t = div.pole_inverse(z[:, None] - gaps)
            h = div.pole_curvature(t, dlog_t) if curvature else None
            # in place where the inverse returned two arrays of its own (reverse KL returns one)
            qt = np.multiply(q, t, out=None if t is dlog_t else t)
            q_dt = np.multiply(qt, dlog_t, out=None if h is dlog_t else dlog_t)
            return qt, q_dt, (None if h is None else np.multiply(q_dt, h, out=h))
        y = gaps - z[:, None]
        active = y > div.g_prime_at_zero
        # (g')^{-1} runs on every y; where y <= g'(0+) its value (possibly inf or nan, the
        # warnings are off) is replaced by t = 0
        t, dt = div.g_prime_inverse(y)
        if active.all():
            return q * t, q * dt, None
        return np.where(active, q * t, 0.0), np.where(active, q * dt, 0.0), None


def _start_bracket(gaps: Array, q: Array, div: Divergence, top: Array | float = 0.0) -> tuple[Array, Array]:
    """``[lo, hi]`` in the iterate ``z`` with ``T(lo) >= 1 >= T(hi)`` (module docstring, step 1).

    ``T(z) >= 1`` where some outcome ``x`` alone has ``t = 1 / pi_init(x)`` (mass 1), and, by
    Jensen's inequality (``t`` is convex), where ``Q t(gbar - z) = 1`` with ``gbar`` the
    ``pi_init``-mean gap and ``Q = sum pi_init`` (the set "all outcomes" of
    :func:`_histogram_start`). ``lo`` is the largest of these bounds, the first taken over
    every outcome, not only the best one: where the best outcome is rare (``pi_init`` ~
    1e-200) the outcome that carries the mass, or the mean, gives a bound next to the root,
    the best outcome one 200 orders of magnitude below it. ``T <= 1`` where ``y <= g'(1)``
    for every outcome, i.e. from ``top + (-g'(1))`` on (``top``: the largest gap, 0 unless the
    gaps are measured from another score than the best, :func:`_frames`).
    """
    total = total_mass(q)
    # outcome x alone is the set {x}: its bound is gap_x + _jensen_offset(q_x)
    first, best_alone = _mean_and_max(gaps, q, _jensen_offset(q, div))
    lo = np.maximum(first / total + _jensen_offset(np.asarray(total), div), best_alone)
    return lo, np.maximum(top + float(_jensen_offset(np.array(1.0), div)), lo)


def _jensen_offset(mass: Array, div: Divergence) -> Array:
    """``c(Q)`` with ``Q t(gbar - z) = 1`` at ``z = gbar + c(Q)``: the Jensen bound of a set of
    outcomes of ``pi_init``-mass ``Q`` and mean gap ``gbar`` (:func:`_histogram_start`).

    ``c = -g'(1 / Q)``, or ``pole_distance(1 / Q)`` in the iterate of a pole divergence. At
    ``Q = 1`` it is the upper end of the bracket (every ratio 1).
    """
    with np.errstate(divide="ignore", over="ignore"):
        if div.pole_inverse is not None:
            return div.pole_distance(1.0 / mass)
        return -div.g_prime(1.0 / mass)


def _mean_and_max(gaps: Array, q: Array, v: Array) -> tuple[Array, Array]:
    """``(sum(gaps * q), max(gaps + v))`` along rows, in row blocks of at most
    :data:`~rlhf_mech._numerics.CHUNK_ELEMENTS` / 32 values (no ``(B, m)`` temporary)."""
    n_rows, m = gaps.shape
    step = rows_per_chunk(m, CHUNK_ELEMENTS // 32)
    first = np.empty(n_rows)
    largest = np.empty(n_rows)
    work = np.empty((min(step, n_rows), m))
    for k in range(0, n_rows, step):
        rows = slice(k, k + step)
        block = gaps[rows]
        buf = work[: block.shape[0]]
        largest[rows] = np.add(block, per_row(v, rows), out=buf).max(axis=-1)
        first[rows] = row_dot(block, per_row(q, rows), work=buf)
    return first, largest


#: The histogram start (:func:`_histogram_start`) bins a distance below the best outcome by
#: its float64 exponent and this many leading mantissa bits: 2^2 bins per octave (a ratio
#: of 2^(1/4) ~ 1.19 between thresholds), read off the bits without a logarithm.
_HISTOGRAM_MANTISSA_BITS = 2
#: Number of thresholds of the histogram start (they span a ratio of 2^(127/4) ~ 3.6e9).
_HISTOGRAM_BINS = 128


def _histogram_start(gaps: Array, q: Array, div: Divergence, lo: Array, hi: Array) -> Array:
    """A lower end of the bracket next to the root, from one histogram pass over the gaps.

    ``t`` is convex in ``y`` for every divergence here (``g'`` is concave), so for any set
    ``S`` of outcomes Jensen's inequality gives
    ``T(z) >= sum_S q t(gap - z) >= Q_S t(gbar_S - z)`` with ``Q_S = sum_S q`` and ``gbar_S``
    the ``q``-weighted mean gap over ``S``. The right side equals 1 at
    ``z_S = gbar_S - g'(1 / Q_S)`` (with a pole: ``gbar_S + pole_distance(1 / Q_S)``), so
    ``T(z_S) >= 1``: a valid lower end. The sets ``{x : -gap_x <= c}`` for thresholds ``c``
    growing geometrically are read off one histogram per row, and the best ``z_S`` lies near
    the root, where Newton from the left needs few steps. (The bounds of
    :func:`_start_bracket` are the sets "all outcomes" and "the best outcome".) Any sets give
    valid bounds, so the bins come from the bits of ``-gap`` (exponent and two mantissa
    bits, an integer shift), not from a logarithm: at m = 2,000 the pass costs a quarter.
    """
    n_rows, m = gaps.shape
    shift = 52 - _HISTOGRAM_MANTISSA_BITS
    spread = np.maximum(-gaps.min(axis=-1), np.finfo(float).tiny)
    bins = _HISTOGRAM_BINS
    # the farthest outcome falls in the last bin; everything 2^-(127/4) closer, in bin 0
    offset = (spread.view(np.int64) >> shift) - (bins - 1)
    best = lo.copy()
    step = rows_per_chunk(m)
    for start in range(0, n_rows, step):
        rows = slice(start, min(n_rows, start + step))
        block = gaps[rows]
        # -gap >= 0 (or -0.0, whose sign bit makes the index negative: bin 0)
        index = np.negative(block).view(np.int64) >> shift
        index -= offset[rows, None]
        np.clip(index, 0, bins - 1, out=index)
        index += (np.arange(block.shape[0]) * bins)[:, None]
        shape = (block.shape[0], bins)
        weights = np.broadcast_to(per_row(q, rows), block.shape)
        mass = np.bincount(index.ravel(), weights.ravel(), shape[0] * bins).reshape(shape)
        first = np.bincount(index.ravel(), (weights * block).ravel(), shape[0] * bins).reshape(shape)
        np.cumsum(mass, axis=-1, out=mass)
        np.cumsum(first, axis=-1, out=first)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            roots = first / mass + _jensen_offset(mass, div)
        roots = np.where((mass > 0) & np.isfinite(roots), roots, -np.inf)
        best[rows] = np.maximum(best[rows], np.minimum(roots.max(axis=-1), hi[rows]))
    return best


def _newton_step(mass: Array, slope: Array, power: float, curvature: Array | None = None) -> Array:
    """Newton step in ``z`` on ``phi(T) = T^(-1/p) - 1`` (``p = inf``: ``log T``; ``p = -1``: ``T - 1``).

    ``phi'(z) = T^(-1/p - 1) * slope / p`` with ``slope = -dT/dz``, so the step is
    ``p T (T^(1/p) - 1) / slope``: the root of the model ``T = A (z + c)^(-p)`` fitted to
    ``T`` and ``dT/dz``. The power linearises ``T`` near a pole ``t ~ d^-p`` (Hellinger
    p = 2, reverse KL and JS p = 1): there ``T^(-1/p)`` is concave, exactly linear for one
    dominant outcome, and Newton from the left is monotone; ``log T`` is the limit
    ``p -> inf`` (KL: exact in one step) and ``p = -1`` is Newton on ``T`` (chi^2).

    With ``curvature = d^2T/dz^2`` the power is fitted too: the model matches ``T``, ``T'``
    and ``T''`` where ``p = 1 / (T T'' / T'^2 - 1)``, a third-order (Halley-class) step. It
    matters where mass is spread over outcomes at many distances below a pole: there ``T``
    behaves like ``log(1/z)`` (a small fitted ``p``) and the fixed-power step crawls (9 passes
    on uniform scores at lambda ~ 1; at most 7 with the fitted power). ``T`` is log-convex
    for every divergence here, so ``T T'' >= T'^2`` and the fitted ``p`` is positive; where
    rounding says otherwise the fixed power is used.
    """
    if curvature is not None:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            fitted = 1.0 / (curvature * mass / (slope * slope) - 1.0)
            step = fitted * mass * np.expm1(np.log(mass) / fitted) / slope
        usable = (fitted > 0) & np.isfinite(step)
        if usable.all():
            return step
        return np.where(usable, step, _newton_step(mass, slope, power))
    if np.isinf(power):
        return np.log(mass) * mass / slope
    if power == -1.0:
        return (mass - 1.0) / slope
    return power * mass * np.expm1(np.log(mass) / power) / slope


def _row_blocks(rows: Array, rb: int) -> list[slice | Array]:
    """``rows`` (sorted indices) in groups of ``rb``, as slices where they are contiguous."""
    blocks: list[slice | Array] = []
    for k in range(0, rows.size, rb):
        idx = rows[k : k + rb]
        contiguous = int(idx[-1]) - int(idx[0]) + 1 == idx.size
        blocks.append(slice(int(idx[0]), int(idx[-1]) + 1) if contiguous else idx)
    return blocks


def _sweep(
    gaps: Array,
    z: Array,
    q: Array,
    div: Divergence,
    rows: Array,
    mass: Array,
    slope: Array,
    curvature: Array | None,
    packed: dict[int, tuple[Array, Array]],
) -> None:
    """One Newton pass over ``rows``: ``mass = sum q t``, ``slope = sum q dt/dy`` at ``z``.

    ``curvature`` (if given) receives ``sum q d^2t/dy^2``.

    The rows are taken in cache-sized tiles (:func:`~rlhf_mech._numerics.tile_shape`), so the
    temporaries of the inverse stay in cache; a row's sums depend on its length only (whole
    rows below :data:`~rlhf_mech._numerics.TILE_ELEMENTS`, else tile by tile in order). A row
    in ``packed`` is swept over its packed ``(gaps, q)`` instead (see :func:`_pack`).
    """
    rb, cb = tile_shape(gaps.shape[1])
    for sel in _row_blocks(rows, rb):
        if rb > 1 or sel.start not in packed:
            row_gaps, row_q = gaps[sel], per_row(q, sel)
        else:
            row_gaps, row_q = packed[sel.start]
        row_gaps = row_gaps.reshape(-1, row_gaps.shape[-1])
        acc_mass = acc_slope = acc_curvature = 0.0
        for c0 in range(0, row_gaps.shape[1], cb):
            cols = slice(c0, c0 + cb)
            tile = row_gaps[:, cols]
            qt, q_dt, q_d2t = _weighted_ratios(tile, z[sel], row_q[..., cols], div, curvature is not None)
            acc_mass = acc_mass + qt.sum(axis=-1)
            acc_slope = acc_slope + q_dt.sum(axis=-1)
            if q_d2t is not None:
                acc_curvature = acc_curvature + q_d2t.sum(axis=-1)
        mass[sel] = acc_mass
        slope[sel] = acc_slope
        if curvature is not None:
            curvature[sel] = acc_curvature


def _pack(
    gaps: Array, q: Array, div: Divergence, z: Array, rows: Array, packed: dict[int, tuple[Array, Array]]
) -> None:
    """Drop, from each long row in ``rows``, the outcomes that stay at ``t = 0`` from ``z`` on.

    For ``g'(0+) > -inf`` (chi^2) an outcome with ``gap <= z + g'(0+)`` has ``t = 0`` at every
    iterate ``>= z``, and ``z`` here is the left end of the row's bracket, which the iterates
    never go below. Once fewer than half of a row's outcomes can still be active, the sweeps
    run over a packed copy of the rest (Michelot's shrinking active set): later passes over
    a sparse solution touch a fraction of the row.
    """
    for i in rows:
        row_gaps, row_q = packed.get(int(i), (gaps[i], per_row(q, i)))
        keep = row_gaps > z[i] + div.g_prime_at_zero
        kept = int(np.count_nonzero(keep))
        if 0 < kept <= row_gaps.size * _PACK_BELOW:
            packed[int(i)] = (row_gaps[keep], row_q[keep])


def _newton_multiplier(
    scores: Array,
    q: Array,
    div: Divergence,
    lam: float,
    maxiter: int,
    *,
    want_pi: bool = True,
    overwrite_scores: bool = False,
) -> tuple[Array | None, Array, Array, Array, Array, Array, int]:
    """The safeguarded Newton iteration of the module docstring on a ``(B, m)`` batch.

    A batch of at most :data:`~rlhf_mech._numerics.TILE_ELEMENTS` values is evaluated whole,
    one call of the inverse per iteration; a larger one in cache-sized tiles over the rows
    still live (:func:`_sweep`), plus one closing pass that forms ``pi`` (if ``want_pi``) and
    the value. ``overwrite_scores`` lets the iteration keep its gaps in ``scores``.
    """
    # The iteration runs on the scaled multiplier nu = (mu - s_max) / lambda (shifted to the
    # pole, see _weighted_ratios) and the gaps (s - s_max) / lambda, so that the multiplier is
    # resolved to the rounding of nu, not of mu: at lambda = 1e-6 one ulp of mu moves every y
    # by 1e-9.
    n_rows, m = scores.shape
    s_max = scores.max(axis=-1)
    reference = _frames(scores, s_max, q, div, lam)
    origin = s_max if reference is None else reference
    top = 0.0 if reference is None else (s_max - reference) / lam
    gaps = np.subtract(scores, origin[:, None], out=scores if overwrite_scores else None)
    gaps /= lam
    lo, hi = _start_bracket(gaps, q, div, top)
    start_passes = 0
    if np.isfinite(div.g_prime_at_zero) and m > 1:
        # t = 0 below g'(0+) (chi^2): T is piecewise, and Newton from a far start crosses its
        # breakpoints one by one (13 passes at lambda = 1e-3, m = 10^6); for the pole
        # divergences the start is rarely the bottleneck and the pass costs more than it saves.
        lo = _histogram_start(gaps, q, div, lo, hi)
        start_passes = 1  # the histogram is a pass over the data, counted in ``nit``
    nit = start_passes
    pole = div.pole_inverse is not None
    z = lo.copy()
    z_eval = z.copy()  # where mass (and the ratios) were last evaluated, per row
    live = np.ones(n_rows, dtype=bool)
    status = np.full(n_rows, MAXITER)
    one_tile = n_rows * m <= TILE_ELEMENTS
    # long rows of a divergence with t = 0 below g'(0+) shrink to their possible support
    packing = not one_tile and m > TILE_ELEMENTS and np.isfinite(div.g_prime_at_zero)
    packed: dict[int, tuple[Array, Array]] = {}
    mass = np.empty(n_rows)
    slope = np.empty(n_rows)
    curvature_sums = np.empty(n_rows) if pole else None
    far = pole  # whether the next pass also sums d^2T/dz^2 (see _FAR)
    # The Newton step last taken from each end of the bracket (0 at an end not yet
    # evaluated: the start bounds; nan once used as a fallback).
    step_lo = np.zeros(n_rows)
    step_hi = np.zeros(n_rows)
    qt = None
    while nit < start_passes + maxiter:
        if one_tile:
            qt, q_dt, q_d2t = _weighted_ratios(gaps, z, q, div, far)
            # Row sums, not BLAS gemv: their summation order does not depend on the batch
            # size, so a batch and its rows solved one at a time agree bitwise.
            mass = qt.sum(axis=-1)
            slope = q_dt.sum(axis=-1)  # -dT/dz
            curvature = None if q_d2t is None else q_d2t.sum(axis=-1)  # d^2T/dz^2
        else:
            curvature = curvature_sums if far else None
            _sweep(gaps, z, q, div, np.flatnonzero(live), mass, slope, curvature, packed)
        z_eval = np.where(live, z, z_eval)
        nit += 1
        error = np.abs(mass - 1.0)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            step = _newton_step(mass, slope, div.newton_power, curvature)
        left = mass >= 1.0
        lo = np.where(live & left, z, lo)
        hi = np.where(live & ~left, z, hi)
        step_lo = np.where(live & left, step, step_lo)
        step_hi = np.where(live & ~left, step, step_hi)
        if packing:
            _pack(gaps, q, div, lo, np.flatnonzero(live & left), packed)
        candidate = z + step
        outside = ~((candidate >= lo) & (candidate <= hi)) | ~np.isfinite(candidate)
        if outside.any():
            # A step that leaves the bracket is replaced by the step from its other end (or
            # by that end itself if it is a start bound not yet evaluated: a root at the
            # bound is then found at once instead of by halving the distance each pass),
            # once per end; otherwise by bisection, geometric where the bracket is positive
            # (distances below a pole span hundreds of orders of magnitude).
            other = np.where(left, hi + step_hi, lo + step_lo)
            usable = (other >= lo) & (other <= hi) & (other != z)
            middle = np.where(lo > 0, np.sqrt(np.abs(lo * hi)), 0.5 * (lo + hi))
            candidate = np.where(outside, np.where(usable, other, middle), candidate)
            used = outside & usable
            step_hi = np.where(used & left, np.nan, step_hi)
            step_lo = np.where(used & ~left, np.nan, step_lo)
        scale = np.abs(z) if pole else np.maximum(np.abs(z), 1.0)
        stalled = np.abs(candidate - z) <= 2.0 * _EPS * scale
        # a multiplier that cannot move is accepted where |T - 1| is within the _STALL_TOL or
        # within what a few ulps of the multiplier change T by (|nu| ~ 1e8 at lambda ~ 1e-6:
        # then the gaps themselves carry that rounding)
        reachable = np.maximum(_STALL_TOL, 4.0 * _EPS * scale * slope)
        converged = live & ((error <= 4.0 * _EPS) | (stalled & (error <= reachable)))
        status[converged] = CONVERGED
        status[live & stalled & ~converged] = STALLED
        live &= ~(converged | stalled)
        if not live.any():
            break
        far = pole and bool(error[live].max() > _FAR)
        z = np.where(live, candidate, z)
    pi, inner, dval = _newton_finish(gaps, z_eval, mass, qt, q, div, lam, want_pi)
    nu = z - div.g_prime_sup if pole else z  # measured from origin
    frame = None if reference is None else (reference, nu)
    return pi, origin + lam * nu, nu - top, origin + lam * inner - dval, dval, status, nit, frame


#: The gaps of a row are measured from another score than the best where every outcome's
#: bound of :func:`_start_bracket` lies further than this below the best (:func:`_frames`).
_FRAME_SHIFT = 1e4


def _frames(scores: Array, s_max: Array, q: Array, div: Divergence, lam: float) -> Array | None:
    """The score each row's gaps are measured from, where it is not ``max s`` (``None``: none).

    The iteration resolves ``y = gap - z`` to the rounding of the gaps, ``eps |gap|``. Where a
    rare best outcome (``pi_init`` = 1e-297) cannot carry the mass and lambda is tiny (1e-12),
    the outcomes that do carry it sit ~1e13 below it: measured from the best score their
    ``y ~ 0.1`` would keep only 11 digits (a KKT residual of 1e-3, ``pi`` off by 1e-5). For a
    divergence without a pole (chi^2), the outcome whose bound "it alone carries mass 1" is
    the largest lies next to the mass, so such rows measure their gaps from its score. The
    pole divergences can always put the mass on the best outcome, next to the pole: they keep
    ``max s``, whose own gap is 0 exactly. One reduction over the scores decides (spread below
    :data:`_FRAME_SHIFT` lambda: nothing to do); one pass over the rows that may need it picks.
    """
    if div.pole_inverse is not None:
        return None
    rows = np.flatnonzero(s_max - scores.min(axis=-1) > _FRAME_SHIFT * lam)
    if not rows.size:
        return None
    alone = _jensen_offset(q, div)  # outcome x alone carries mass 1 at z = gap_x + alone_x
    reference = s_max.copy()
    step = rows_per_chunk(scores.shape[1])
    for k in range(0, rows.size, step):
        idx = rows[k : k + step]
        bounds = np.subtract(scores[idx], s_max[idx, None])
        bounds /= lam
        bounds += per_row(alone, idx)
        best = bounds.argmax(axis=-1)
        far = bounds[np.arange(idx.size), best] < -_FRAME_SHIFT
        reference[idx[far]] = scores[idx[far], best[far]]
    return reference if np.any(reference != s_max) else None


def _newton_finish(
    gaps: Array, z: Array, mass: Array, qt: Array | None, q: Array, div: Divergence, lam: float, want_pi: bool
) -> tuple[Array | None, Array, Array]:
    """``pi = q t / mass`` at the last evaluation, ``<pi, gaps>`` and ``lambda D_g(pi || q)``.

    ``qt`` is the last iteration's ``q t`` where the batch was one tile; otherwise the ratios
    are evaluated once more, tile by tile, at ``z``. The divergence is taken over
    :func:`_positive` ``pi``.
    """
    if qt is not None:
        pi = qt / mass[:, None]
        return (pi if want_pi else None), row_dot(pi, gaps), div.value(_positive(pi, div), q, lam)
    n_rows, m = gaps.shape
    pi_out = np.empty((n_rows, m)) if want_pi else None
    inner = np.zeros(n_rows)
    terms = np.zeros(n_rows)
    rb, cb = tile_shape(m)
    for sel in _row_blocks(np.arange(n_rows), rb):
        for c0 in range(0, m, cb):
            cols = slice(c0, c0 + cb)
            q_tile = per_row(q, sel)[..., cols]
            qt_tile, _, _ = _weighted_ratios(gaps[sel, cols], z[sel], q_tile, div)
            pi_tile = qt_tile / mass[sel, None]
            inner[sel] += row_dot(pi_tile, gaps[sel, cols])
            terms[sel] += div.terms(_positive(pi_tile, div), q_tile).sum(axis=-1)
            if pi_out is not None:
                pi_out[sel, cols] = pi_tile
    return pi_out, inner, lam * terms


def _positive(pi: Array, div: Divergence) -> Array:
    """``pi`` with entries that underflowed to 0 raised to the smallest positive float, where
    ``g'(0+) = -inf`` (the exact maximiser is positive everywhere).

    Reverse KL's term ``-q log t`` is infinite at ``pi = 0``: an outcome of ``pi_init`` 1e-297
    whose exact mass is 1e-397 would make the optimal value, and every payment, ``-inf``. At
    the smallest subnormal the term is ``q log(q / 5e-324)``, ~1e-294 for that ``q``: below
    the rounding of any value, as the exact term is (an outcome of ordinary ``pi_init`` does
    not underflow within the file's lambda range).
    """
    if not np.isinf(div.g_prime_at_zero) or pi.size == 0 or pi.min() > 0:
        return pi
    return np.maximum(pi, np.nextafter(0.0, 1.0))


def optimal_values(
    scores: Array, pi_init: Array, divergence: str | Divergence, lam: float, *, maxiter: int = 100
) -> tuple[Array, Array, int]:
    """Optimal values alone of a ``(B, m)`` batch, for the leave-one-out problems of eq. (1).

    Unlike :func:`solve_sw_max` this forms no ``pi`` (closed forms use the divergence's
    ``closed_form_value``), does not validate its arguments, and uses ``scores`` as scratch
    space: it is overwritten.

    Returns
    -------
    value : (B,) array; status : (B,) int array; nit : Newton iterations (0 for a closed form).
    """
    div = get_divergence(divergence)
    pi_init = initial_rows(pi_init, scores.shape)
    if div.closed_form_value is not None:
        values = div.closed_form_value(scores, np.log(pi_init), pi_init, lam)
        return values, np.zeros(scores.shape[0], dtype=int), 0
    if div.closed_form is not None:
        sol = div.closed_form(scores, np.log(pi_init), pi_init, lam)
        return sol.value, np.zeros(scores.shape[0], dtype=int), 0
    _, _, _, value, _, status, nit, _ = _newton_multiplier(
        scores, pi_init, div, lam, maxiter, want_pi=False, overwrite_scores=True
    )
    return value, status, nit
