"""Guarded numerics shared by the solvers (the optax ``numerics.py`` idea).

Each helper names the failure of the naive formula that it avoids. The constants bound the
memory of every temporary and choose the cache-sized tiles that the row passes run over.
"""

from __future__ import annotations

import numpy as np

#: Work is split so that no temporary holds more than this many float64 values (32 MiB).
CHUNK_ELEMENTS = 1 << 22
#: A pass that chains several operations runs over tiles of at most this many float64 values
#: (64 KiB). Three limits meet here: the temporaries stay in the core's L2 cache between
#: operations; they stay below glibc's mmap threshold (128 KiB), above which every temporary
#: is a fresh mapping whose page faults cost ~10x the arithmetic (measured in a VM); and a
#: product ``tile @ v`` stays below OpenBLAS's threading threshold (~10^4 elements), above
#: which waking its threads for every tile costs more than the product (10x more under load).
TILE_ELEMENTS = 1 << 13

_TINY = np.finfo(float).tiny


def rows_per_chunk(m: int, budget: int = CHUNK_ELEMENTS) -> int:
    """How many rows of length ``m`` fit in one temporary of ``budget`` elements (at least 1)."""
    return max(1, budget // max(m, 1))


def tile_shape(m: int, budget: int = TILE_ELEMENTS) -> tuple[int, int]:
    """``(rows, columns)`` of the tiles that cover rows of length ``m`` in :func:`tiles`.

    Both depend on ``m`` alone, never on how many rows there are, so a row is reduced in the
    same order whether it is solved alone or inside a batch.
    """
    cols = max(1, min(m, budget))
    return max(1, budget // cols), cols


def row_dot(a: np.ndarray, v: np.ndarray, work: np.ndarray | None = None) -> np.ndarray:
    """``sum(a * v, axis=-1)``, each row summed in an order that depends on its length only.

    ``a @ v`` (BLAS ``gemv``) rounds a row differently depending on where it sits in the batch,
    so a batch would not reproduce rows solved one at a time; numpy's pairwise row sum does.
    ``v`` is an ``(m,)`` vector or shaped like ``a``; ``work`` (shaped like ``a``, possibly
    ``a`` itself) receives the products when given.
    """
    return np.multiply(a, v, out=work).sum(axis=-1)


def log_ratio(a: np.ndarray, b: np.ndarray, difference: np.ndarray | None = None) -> np.ndarray:
    """``log(a / b)`` for ``a >= 0``, ``b > 0``, accurate where ``a ~ b`` and where ``a << b``.

    Where ``a`` is within a factor 2 of ``b`` it is ``log1p((a - b) / b)``: the difference is
    exact there (Sterbenz; or pass ``difference``, ``a - b`` formed more exactly than from the
    rounded ``a`` and ``b``), so the result is accurate to a few ulps of itself, where
    ``log(a / b)`` would carry an absolute error of ~1e-16 (the rounding of the quotient). A
    divergence at lambda = 1e16 is lambda times a sum of such logarithms of ratios ~1 + 1e-16,
    and that error then is O(1). Elsewhere it is ``log a - log b``, which stays finite where
    ``a / b`` underflows (``a = 1e-266``, ``b = 0.1``) and ``(a - b) / b`` rounds to -1.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (a - b if difference is None else difference) / b
        near = np.abs(delta) <= 0.5
        return np.where(near, np.log1p(np.where(near, delta, 0.0)), np.log(a) - np.log(b))


def per_row(q: np.ndarray, rows: np.ndarray | slice) -> np.ndarray:
    """The rows ``rows`` of per-row initial distributions ``(B, m)``; a shared ``(m,)`` one as it is."""
    return q if q.ndim == 1 else q[rows]


def total_mass(q: np.ndarray) -> np.ndarray | float:
    """``sum q`` of each row's initial distribution (one number where it is shared): 1 up to
    rounding, and the rounding is what the ``log1p`` forms below keep."""
    return float(np.sum(q)) if q.ndim == 1 else q.sum(axis=-1)


def log_expectation_exp(gaps: np.ndarray, log_q: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``log E_q[exp(gaps)] = log sum_j q_j exp(gaps_j)`` along the last axis, for ``gaps <= 0``.

    Parameters
    ----------
    gaps : (B, m) array with row maxima 0, e.g. ``(s - max s) / lambda``. It is used as
        scratch space and overwritten.
    log_q, q : (m,) arrays, a probability vector and its logarithm, or (B, m): one per row.

    Returns
    -------
    (B,) array, at most ``log sum q`` (about 0).

    Notes
    -----
    Shifting by the row maximum keeps ``exp`` from overflowing (lambda = 1e-6 makes the
    unshifted exponents ~1e6). When a row's spread is small (lambda = 1e6) the result is
    ~-1e-6, and ``log(sum(q * exp(gaps)))`` would return it as ``log`` of a number that was
    rounded near 1, losing ten digits that lambda then multiplies back into an optimal
    value (and payments are differences of those). Rows whose spread is at most 1 therefore
    use ``log1p(sum q expm1(gaps) + (sum q - 1))``, accurate to full relative precision;
    wider rows use the max-shift over ``gaps + log q``, which cannot lose the small masses
    (down to q = 1e-300) that ``expm1`` would round to -1. Rows are reduced by numpy's
    pairwise row sums (:func:`row_dot`), so a row's result does not depend on its batch.
    """
    narrow = gaps.min(axis=-1) >= -1.0
    out = np.empty(gaps.shape[0])
    if narrow.all():
        terms = np.expm1(gaps, out=gaps)
        return np.log1p(row_dot(terms, q, work=terms) + (total_mass(q) - 1.0))
    if narrow.any():
        terms = np.expm1(gaps[narrow])
        q_narrow = per_row(q, narrow)
        out[narrow] = np.log1p(row_dot(terms, q_narrow, work=terms) + (total_mass(q_narrow) - 1.0))
    wide = ~narrow
    z = gaps if not narrow.any() else gaps[wide]
    z += log_q if not narrow.any() else per_row(log_q, wide)
    z_max = z.max(axis=-1)
    z -= z_max[:, None]
    out[wide] = z_max + np.log(np.exp(z, out=z).sum(axis=-1))
    return out
