"""Guarded numerics shared by the solvers (the optax ``numerics.py`` idea).

Each helper names the failure of the naive formula that it avoids.
"""

from __future__ import annotations

import numpy as np

#: Work is split so that no temporary holds more than this many float64 values (32 MiB).
CHUNK_ELEMENTS = 1 << 22


def rows_per_chunk(m: int, budget: int = CHUNK_ELEMENTS) -> int:
    """How many rows of length ``m`` fit in one temporary of ``budget`` elements (at least 1)."""
    return max(1, budget // max(m, 1))


def log_expectation_exp(gaps: np.ndarray, log_q: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``log E_q[exp(gaps)] = log sum_j q_j exp(gaps_j)`` along the last axis, for ``gaps <= 0``.

    Parameters
    ----------
    gaps : (B, m) array with row maxima 0, e.g. ``(s - max s) / lambda``.
    log_q, q : (m,) arrays, a probability vector and its logarithm.

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
    (down to q = 1e-300) that ``expm1`` would round to -1.
    """
    narrow = gaps.min(axis=-1) >= -1.0
    out = np.empty(gaps.shape[0])
    if narrow.any():
        rows = gaps if narrow.all() else gaps[narrow]
        # Row sums rather than BLAS gemv: the summation order then does not depend on the
        # batch size, so a batch and its rows solved one at a time agree bitwise.
        terms = np.expm1(rows)
        terms *= q
        out[narrow] = np.log1p(terms.sum(axis=-1) + (float(np.sum(q)) - 1.0))
    wide = ~narrow
    if wide.any():
        z = (gaps if wide.all() else gaps[wide]) + log_q
        z_max = z.max(axis=-1)
        out[wide] = z_max + np.log(np.exp(z - z_max[:, None]).sum(axis=-1))
    return out
