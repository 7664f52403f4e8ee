r"""A model of training by steps (section 4.4): mirror ascent on the SW-Max objective.

Heuristic 1 (intermediate checkpoints) and Heuristic 2 (early stopping) price a report by
models saved along a training run rather than by the optimum of Definition 4.1; this module
runs that training for a batch of score rows and returns its checkpoints.
"""

from __future__ import annotations

import numpy as np

from rlhf_mech.core._divergences import Divergence, get_divergence
from rlhf_mech.core._solver import _positive, _validate

Array = np.ndarray

#: The largest step of ``log pi`` taken (see :func:`mirror_ascent`).
_LOG_STEP_LIMIT = 1e300


def mirror_ascent(
    scores: Array,
    pi_init: Array,
    divergence: str | Divergence,
    lam: float,
    steps: int,
    step_size: float,
    every: int | None = None,
) -> Array:
    r"""A model of training: ``steps`` steps of mirror ascent on the SW-Max objective.

    From ``pi_0 = pi_init``, each step is the entropic mirror (multiplicative-weights, natural
    policy gradient) step on ``F(pi) = <pi, s> - lambda D_g(pi || pi_init)``::

        log pi_{t+1} = log pi_t + eta_t (s / lambda - g'(pi_t / pi_init)) + const,

    with ``eta_t = step_size / max_x t g''(t)`` at the current ratios ``t = pi_t / pi_init``:
    the objective's curvature in ``log pi`` is ``t g''(t)``, so ``step_size <= 1`` keeps every
    step stable (for KL ``t g'' = 1`` and ``eta = step_size``). Its fixed point is the
    maximiser of Definition 4.1 (the KKT conditions of appendix B).
    For KL (``g'(t) = log t + 1``, a divergence with ``gibbs_form``) the steps have a closed
    form, ``pi_t ∝ pi_init exp((s / lambda) (1 - (1 - step_size)^t))``: the Gibbs solution at
    the temperature ``lambda / (1 - (1 - step_size)^t)``, which converges to ``pi*``
    geometrically, ``log pi_t - log pi* = O((1 - step_size)^t)``, for ``0 < step_size <= 1``.
    Other divergences are iterated; the smooth ones converge linearly. TV, whose ``g'`` jumps
    at 1, takes subgradient steps ``eta_t / sqrt(t)`` (its objective converges as
    ``O(1 / sqrt(T))``, its iterates need not); for the argmax rule (``g = 0``) the iterates
    are softmaxes of ``step_size sum_t s / lambda``.

    Parameters
    ----------
    scores : (B, m) score rows; pi_init, divergence, lam : the regulariser.
    steps : ``T >= 1``; step_size : ``> 0`` (``<= 1`` for KL's monotone convergence).
    every : a checkpoint every ``every`` steps (default: only the last iterate).

    Returns
    -------
    (B, C, m) array, the iterates ``t = every, 2 every, ..., T`` (``C = T // every``; the last
    iterate is always included).
    """
    div = get_divergence(divergence)
    scores, pi_init = _validate(np.atleast_2d(scores), pi_init, lam)
    if int(steps) != steps or steps < 1:
        raise ValueError(f"`steps` must be a positive integer, got {steps!r}")
    if not (np.isfinite(step_size) and step_size > 0):
        raise ValueError(f"`step_size` must be positive and finite, got {step_size!r}")
    every = int(steps) if every is None else int(every)
    if every < 1:
        raise ValueError(f"`every` must be a positive integer, got {every!r}")
    marks = sorted({*range(every, int(steps) + 1, every), int(steps)})
    gaps = (scores - scores.max(axis=-1, keepdims=True)) / lam  # s / lambda, up to a constant
    log_q = np.log(pi_init)
    out = np.empty((scores.shape[0], len(marks), scores.shape[1]))
    if div.gibbs_form:
        for c, t in enumerate(marks):
            shrink = -np.expm1(t * np.log1p(-min(step_size, 1.0))) if step_size < 1 else 1.0
            out[:, c] = _normalised_exp(log_q + gaps * shrink)
        return _positive(out, div)
    log_pi = np.broadcast_to(log_q, scores.shape).copy()
    c = 0
    for t in range(1, int(steps) + 1):
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            ratio = np.exp(log_pi - log_q)
            slope = div.g_prime(ratio)
            slope = np.where(np.isfinite(slope), slope, 0.0)
            eta = step_size / _log_curvature(div, ratio, slope)
        if div.g_prime_inverse is None:  # a subgradient step: diminishing, O(1 / sqrt(T))
            eta = eta / np.sqrt(t)
        # where every ratio is flat (tiny curvature) the step overflows: a step of 1e300 in log
        # space already puts all mass on the row's best outcomes, as the infinite one would,
        # and keeps log_pi finite (inf - inf in the normalisation below would be nan)
        with np.errstate(over="ignore"):
            step = eta[:, None] * (gaps - slope)
        log_pi += np.clip(step, -_LOG_STEP_LIMIT, _LOG_STEP_LIMIT, out=step)
        # normalise (the ratios above are of probabilities), shifted by the maximum
        top = log_pi.max(axis=-1, keepdims=True)
        with np.errstate(under="ignore"):
            log_pi -= top + np.log(np.exp(log_pi - top).sum(axis=-1, keepdims=True))
        if t == marks[c]:
            out[:, c] = _normalised_exp(log_pi)
            c += 1
    # a checkpoint's mass that underflowed to 0 where g'(0+) = -inf (reverse KL) would make its
    # divergence, and every payment measured at it, infinite (lambda = 1e-8: the mass of a
    # tiny-lambda run concentrates on one outcome within a few steps)
    return _positive(out, div)


def _log_curvature(div: Divergence, ratio: Array, slope: Array) -> Array:
    """Per row, ``max_x t g''(t)`` at the ratios ``t``: the curvature of the objective in
    ``log pi``, which a step must stay below for the iteration to be stable (1 for KL).

    ``g''(t) = 1 / (dt/dy)`` at ``y = g'(t)`` from the registry's inverse; 1 where ``g'`` has
    no inverse (TV's subgradient steps, the argmax rule).
    """
    if div.g_prime_inverse is None:
        return np.ones(ratio.shape[0])
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        _, dt_dy = div.g_prime_inverse(slope)
        curvature = np.where(dt_dy > 0, ratio / dt_dy, 0.0)
    curvature = np.where(np.isfinite(curvature), curvature, 0.0).max(axis=-1)
    return np.maximum(curvature, np.finfo(float).tiny)


def _normalised_exp(log_weights: Array) -> Array:
    """``exp(x) / sum exp(x)`` along the last axis, shifted by the maximum (no overflow; an
    entry far below the maximum underflows to 0, silently: :func:`_positive` decides)."""
    with np.errstate(under="ignore"):
        w = np.exp(log_weights - log_weights.max(axis=-1, keepdims=True))
    return w / w.sum(axis=-1, keepdims=True)
