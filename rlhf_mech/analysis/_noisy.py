r"""What the theorems predict of a group's gain, and the gain under noisy reward models.

* :func:`predict_no_payment_gain`: Theorems 4.2 / B.2, whether a misreport pays without
  payment, at the truthful profile;
* :func:`noisy_search`: Theorem 4.12, the expected gain of a misreport when the mechanism sees
  noisy reward models, beside the bound ``2 w_i eps``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rlhf_mech.analysis._objective import ReportObjective
from rlhf_mech.analysis._search import search_polytope, vertex_orders
from rlhf_mech.analysis._space import ReportSpace
from rlhf_mech.core import (
    NONE,
    Game,
    Profile,
    deviation,
    outcome,
)

Array = np.ndarray


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
    candidates : reports the search evaluated (each on every sample).
    search_gain : the best report's mean gain on the samples the search optimised over.
    preference : the misreport's preference weights in a basis game, else ``None``.
    """

    eps: float
    samples: int
    bound: float
    gain: float
    stderr: float
    max_sample_gain: float
    reward: Array
    candidates: int
    search_gain: float = math.nan
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
    if not mechanism.training_rule.additive:
        return Prediction(
            False,
            "",
            f"Theorems 4.2 and B.2 are about SW-Max, not {mechanism.training_rule.name}: no prediction",
        )
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


def noisy_objective(
    game: Game, i: int, space: ReportSpace, eps: float, samples: int, seed: np.random.SeedSequence
) -> ReportObjective:
    """The sample-average objective of Theorem 4.12 on one set of noise samples.

    Sample ``s`` is one game of the kernel's batch in which every group's report is its report
    plus noise (uniform on ``[-eps, eps]``, drawn per group in file order, in outcome space);
    the group's own noise enters its contribution as ``w_i eps_s``. Every report is evaluated
    on the same samples (common random numbers).
    """
    rng = np.random.default_rng(seed)
    truth = game.truth
    m = game.n_outcomes
    noise = np.stack([rng.uniform(-eps, eps, size=(samples, m)) for _ in range(game.n_groups)], axis=1)
    batch = (samples, *truth.rewards.shape)
    true_batch = Profile(np.broadcast_to(truth.rewards, batch), np.broadcast_to(truth.sizes, batch[:2]))
    noisy = Profile(truth.rewards + noise, np.broadcast_to(truth.sizes, batch[:2]))
    group = deviation(game.mechanism, true_batch, noisy, i)
    w = float(truth.sizes[i])
    return ReportObjective(group, space, w * space.truth(game, i), extra=w * noise[:, i, :])


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
    seed : seeds the noise and the candidates; budget : reports to evaluate (each on every
        sample).
    seeds : extra candidate parameters (e.g. the best reward misreport of the noiseless
        search, :attr:`Misreport.theta`).

    Notes
    -----
    The noise is uniform on ``[-eps, eps]``, independent per group and outcome, and is *not*
    clipped or renormalised: ``rm_hat`` may leave R, but the mechanism's arithmetic does not
    need it inside, and clipping or renormalising would break the theorem's premise
    ``max_x |rm_hat(x) - rm(x)| <= eps``. Sizes are reported truthfully (the theorem bounds
    reward misreports). The search is the noiseless one's (vertices, faces, the given seeds,
    gradient polishing) on the sample-average utility with common random numbers for every
    report, so truth and misreport see the same noise and every sample's gain is at most
    ``2 w_i eps`` (the proof of Theorem 4.12 holds per sample). The winner's gain is then
    estimated on an independent sample set (its selection does not bias the estimate).
    """
    search_seed, eval_seed, cand_seed = seed.spawn(3)
    rng = np.random.default_rng(cand_seed)
    space = ReportSpace.of(game)
    w = float(game.truth.sizes[i])
    objective = noisy_objective(game, i, space, eps, samples, search_seed)
    cap = space.cap(w)
    seeded = [("seed", space.project(w * np.atleast_2d(t), cap)) for t in seeds]
    truth_z = w * space.truth(game, i)
    orders = vertex_orders(
        space, objective, truth_z, game.truth.rewards[i] if space.basis is None else truth_z
    )
    z, search_gain, _, _ = search_polytope(objective, game, i, cap, budget, rng, seeded, orders)
    theta, _ = space.report(z[None], w)
    fresh = noisy_objective(game, i, space, eps, samples, eval_seed)
    per_sample = _per_sample_gains(fresh, w * theta)
    stderr = float(per_sample.std(ddof=1) / np.sqrt(samples)) if samples > 1 else float("nan")
    return NoisyResult(
        eps=eps,
        samples=samples,
        bound=2.0 * w * eps,
        gain=float(per_sample.mean()),
        stderr=stderr,
        max_sample_gain=float(per_sample.max()),
        reward=space.rewards(theta)[0],
        candidates=objective.evaluations,
        search_gain=float(search_gain),
        preference=theta[0] if space.basis is not None else None,
    )


def _per_sample_gains(objective: ReportObjective, z: Array) -> Array:
    """(S,) the gain of contribution ``z`` (1, d) in each sample of ``objective``."""
    group, space = objective.group, objective.space
    c = np.vstack([space.contributions(objective.truth[None]), space.contributions(z)])
    batch = np.broadcast_to(c, (group.games, 2, c.shape[-1]))
    if objective.extra is not None:
        batch = batch + objective.extra[:, None, :]
    utilities = group.contribution_outcomes(batch, keep_distributions=False).utilities
    return utilities[:, 1] - utilities[:, 0]
