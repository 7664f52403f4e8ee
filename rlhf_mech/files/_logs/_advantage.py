"""TRL's logged ``advantage`` column: which reward weights produced it.

``GRPOTrainer._generate_and_score_completions`` (trl 1.16) turns the (N, K) raw rewards of one
generation batch into advantages, in float32, as ``multi_objective_aggregation`` and
``scale_rewards`` say (``num_generations`` consecutive rows share a prompt: a group):

* ``sum_then_normalize`` (the default): ``R = rewards @ w``; ``A = R - mean_group(R)``,
  divided by ``std_group(R) + 1e-4`` (``scale_rewards="group"``, the default), by
  ``std_batch(R) + 1e-4`` (``"batch"``), or not divided (``"none"``);
* ``normalize_then_sum``: each reward standardised within its group
  (``(r - mean_group) / (std_group + 1e-4)``), ``R = z @ w``, then
  ``A = (R - mean_batch(R)) / (std_batch(R) + 1e-4)``.

Standard deviations are unbiased (``nanstd``). The file keeps every row's advantage, so the
weights a run trained with can be checked against it, or recovered from it: in every variant
the advantage of a block (a group; the batch where the scaling is batch-wide) is a positive
multiple of ``D w``, with ``D`` the block's centred (or standardised) rewards. The weights are
therefore the direction ``w`` with ``D w`` parallel to the logged advantages in every block:
the null vector of ``sum_blocks D' P D`` (``P`` projecting out the block's advantage). Their
scale shows only through the ``1e-4``, so inferred weights are given up to a common factor
(the first nonzero one set to 1).

Only blocks known to be whole are used: a file keeps the last ``generation_batch_size``
completions (a ``deque``), so its first group may be cut; a group is a run of exactly ``n``
consecutive rows with one prompt, ``n`` the most common run length of the file. Blocks whose
advantages are all 0 (every response rewarded alike) say nothing and are skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Array = np.ndarray

#: float32's machine epsilon: TRL computes the advantages in float32.
_EPS32 = float(np.finfo(np.float32).eps)
#: TRL's ``1e-4`` added to every standard deviation before dividing.
STD_EPS = 1e-4

#: (multi_objective_aggregation, scale_rewards) pairs TRL computes advantages with.
VARIANTS: tuple[tuple[str, str], ...] = (
    ("sum_then_normalize", "group"),
    ("sum_then_normalize", "batch"),
    ("sum_then_normalize", "none"),
    ("normalize_then_sum", "group"),
)


@dataclass(frozen=True)
class Batch:
    """The rows of one file that the check can use: its whole groups.

    Attributes
    ----------
    rewards : (n_rows, K) raw rewards; advantage : (n_rows,) the logged advantages.
    groups : (n_rows,) int, the group of each row (0, 1, ...; consecutive rows share one).
    whole : whether the file holds only whole groups (a batch-wide mean and std can then be
        recomputed).
    """

    rewards: Array
    advantage: Array
    groups: Array
    whole: bool


def file_batch(keys: Sequence[str], rewards: Array, advantage: Array) -> Batch | None:
    """The whole groups of one file (consecutive rows of one prompt, ``n`` of them, ``n`` the
    most common run length); ``None`` when there is none."""
    if not len(keys):
        return None
    text = np.array(keys, dtype=object)
    starts = np.flatnonzero(np.concatenate([[True], text[1:] != text[:-1]]))
    lengths = np.diff(np.append(starts, len(keys)))
    n = Counter(lengths.tolist()).most_common(1)[0][0]
    whole = starts[lengths == n]
    if n < 2 or not whole.size:
        return None
    index = (whole[:, None] + np.arange(n)).ravel()
    groups = np.repeat(np.arange(len(whole)), n)
    return Batch(rewards[index], advantage[index], groups, whole=len(whole) * n == len(keys))


def _group_sums(values: Array, groups: Array) -> Array:
    """(G, ...) the sum of ``values`` (rows, ...) over each group's rows, in row order."""
    if values.ndim == 1:
        return np.bincount(groups, weights=values)
    return np.stack([_group_sums(column, groups) for column in np.moveaxis(values, 1, 0)], axis=1)


def _group_stats(values: Array, groups: Array) -> tuple[Array, Array]:
    """Per row: its group's mean and unbiased standard deviation of ``values`` (rows, ...)."""
    count = np.bincount(groups).reshape((-1,) + (1,) * (values.ndim - 1))
    mean = _group_sums(values, groups) / count
    dev = values - mean[groups]
    std = np.sqrt(_group_sums(dev**2, groups) / (count - 1))
    return mean[groups], std[groups]


def _blocks(batch: Batch, variant: tuple[str, str]) -> tuple[Array, Array] | None:
    """(D, block): the rows' centred (or standardised) rewards and each row's block, where the
    advantage of a block is a positive multiple of ``D w``; ``None`` when the variant needs the
    whole batch and the file does not hold it."""
    aggregation, scale = variant
    if aggregation == "normalize_then_sum":
        if not batch.whole:
            return None
        mean, std = _group_stats(batch.rewards, batch.groups)
        z = (batch.rewards - mean) / (std + STD_EPS)
        return z - z.mean(axis=0), np.zeros(len(z), dtype=np.intp)
    mean, _ = _group_stats(batch.rewards, batch.groups)
    centred = batch.rewards - mean
    if scale == "batch":
        if not batch.whole:
            return None
        return centred, np.zeros(len(centred), dtype=np.intp)
    return centred, batch.groups


def predict(batch: Batch, weights: Array, variant: tuple[str, str]) -> Array | None:
    """The advantages TRL computes from the batch's rewards with ``weights`` under ``variant``
    (float64); ``None`` when the variant needs a whole batch the file does not hold."""
    found = _predict(batch, weights, variant)
    return None if found is None else found[0]


def _predict(batch: Batch, weights: Array, variant: tuple[str, str]) -> tuple[Array, Array] | None:
    """:func:`predict`, with each row's group standard deviation of ``rewards @ weights``
    (what :func:`_tolerance` scales by)."""
    aggregation, scale = variant
    total = batch.rewards @ weights
    mean, std = _group_stats(total, batch.groups)
    if aggregation == "normalize_then_sum":
        if not batch.whole:
            return None
        r_mean, r_std = _group_stats(batch.rewards, batch.groups)
        summed = ((batch.rewards - r_mean) / (r_std + STD_EPS)) @ weights
        return (summed - summed.mean()) / (summed.std(ddof=1) + STD_EPS), std
    if scale == "none":
        return total - mean, std
    if scale == "batch":
        if not batch.whole:
            return None
        return (total - mean) / (total.std(ddof=1) + STD_EPS), std
    return (total - mean) / (std + STD_EPS), std


def _tolerance(batch: Batch, weights: Array, predicted: Array, std: Array) -> Array:
    """Per row: how far float32 arithmetic can move TRL's advantage from the float64 one
    (``std``: each row's group standard deviation of ``rewards @ weights``).

    The weighted sum, the group mean and the standard deviation each carry a few float32
    roundings of the terms ``|w_k r_k|``; divided by the group's ``std + 1e-4`` they move the
    advantage by about ``eps32 * (K + n) * sum_k |w_k r_k| / (std + 1e-4)``, and the division
    itself by ``eps32 * |A|``. The factor 16 leaves room for the order of the sums.
    """
    k = batch.rewards.shape[1]
    size = np.bincount(batch.groups)[batch.groups]
    magnitude = np.abs(batch.rewards) @ np.abs(weights)
    top = np.maximum.reduceat(magnitude, np.flatnonzero(np.diff(batch.groups, prepend=-1)))
    return 16 * _EPS32 * ((k + size) * top[batch.groups] / (std + STD_EPS) + np.abs(predicted)) + 1e-12


@dataclass(frozen=True)
class Fit:
    """How well weights reproduce the logged advantages.

    Attributes
    ----------
    variant : the (aggregation, scale_rewards) the advantages were recomputed under.
    fits : whether every row is within float32 rounding (:func:`_tolerance`).
    residual : the largest ``|recomputed - logged|``; rows, files : how many were compared.
    """

    variant: tuple[str, str]
    fits: bool
    residual: float
    rows: int
    files: int


@np.errstate(all="ignore")  # a logged advantage of 1e308 overflows the squares: that block is skipped
def check(batches: Sequence[Batch], weights: Array, variant: tuple[str, str]) -> Fit | None:
    """Recompute every usable row's advantage with ``weights``; ``None`` when no row can be."""
    residual, rows, files, fits = 0.0, 0, 0, True
    for batch in batches:
        found = _predict(batch, weights, variant)
        if found is None or not np.isfinite(found[0]).all():
            continue
        predicted, std = found
        error = np.abs(predicted - batch.advantage)
        fits = fits and bool((error <= _tolerance(batch, weights, predicted, std)).all())
        residual = max(residual, float(error.max()))
        if not np.isfinite(residual):
            return None
        rows += len(error)
        files += 1
    return Fit(variant, fits, residual, rows, files) if rows else None


@np.errstate(all="ignore")
def infer(batches: Sequence[Batch], variant: tuple[str, str]) -> Array | None:
    """The weights under which the logged advantages are reproduced (up to a common factor,
    the first nonzero one set to 1; under ``scale_rewards="none"`` exactly), or ``None`` when
    the advantages do not single out one direction (too few informative groups, or rewards
    that never vary independently of each other)."""
    k = batches[0].rewards.shape[1] if batches else 0
    exact = variant == ("sum_then_normalize", "none")  # A = D w: no unknown factor
    gram = np.zeros((k + 1, k + 1) if exact else (k, k))
    used = 0
    for batch in batches:
        found = _blocks(batch, variant)
        if found is None:
            continue
        d, block = found
        a = batch.advantage
        norm = np.bincount(block, weights=a * a)
        informative = (norm != 0) & np.isfinite(norm)
        rows = informative[block]
        if exact:
            part = np.column_stack([d, -a])[rows]
        else:  # each row minus its projection on the block's advantages: P D, block by block
            along = _group_sums(a[:, None] * d, block)
            part = (d - a[:, None] * along[block] / norm[block, None])[rows]
        gram += part.T @ part
        used += int(informative.sum())
    if not used or not np.isfinite(gram).all():
        return None
    values, vectors = np.linalg.eigh(gram)
    top = max(float(values[-1]), 1e-300)
    if len(values) > 1 and values[1] <= 1e-10 * top:
        return None  # a second direction fits as well: not identified
    w = vectors[:, 0]
    if exact:
        return None if abs(w[-1]) < 1e-12 else w[:-1] / w[-1]
    nonzero = np.flatnonzero(np.abs(w) > 1e-9 * np.abs(w).max())
    return w / w[nonzero[0]]


def scaled(batches: Sequence[Batch], weights: Array, variant: tuple[str, str]) -> tuple[Array, Fit | None]:
    """``weights`` times the factor that best reproduces the advantages: a common factor
    ``c`` changes them only through TRL's ``1e-4`` (``D cw / (c std + 1e-4)``), so it matters
    where a group's rewards barely vary. ``weights`` itself when they already fit. With the
    :func:`check` of the weights returned."""
    fit = check(batches, weights, variant)
    if fit is None or fit.fits:
        return weights, fit
    from scipy.optimize import minimize_scalar

    def loss(log_c: float) -> float:
        total = 0.0
        for batch in batches:
            predicted = predict(batch, weights * np.exp(log_c), variant)
            if predicted is not None:
                total += float(np.sum((predicted - batch.advantage) ** 2))
        return total

    best = minimize_scalar(loss, bounds=(-14.0, 14.0), method="bounded", options={"xatol": 1e-10})
    weights = weights * float(np.exp(best.x))
    return weights, check(batches, weights, variant)


def rounded(
    batches: Sequence[Batch], weights: Array, variant: tuple[str, str], fit: Fit
) -> tuple[Array, Fit]:
    """``weights`` (which fit, as ``fit`` says) rounded to the fewest significant digits (up
    to 6) that still fit, with their :func:`check`."""
    for digits in range(1, 7):
        candidate = np.array([float(f"{w:.{digits}g}") for w in weights])
        found = check(batches, candidate, variant)
        if found is not None and found.fits:
            return candidate, found
    return weights, fit
