r"""One group's best responses on every prompt of a game of many prompts, all at once.

A game of many prompts runs a separable rule (SW-Max and a payment whose terms are sums
over prompts, :mod:`rlhf_mech.core._prompts`), so a group's utility is
``u_i = sum_x q_x u_{i,x}(c_x)``: each term depends on the group's contribution ``c_x`` on
prompt ``x`` alone, and the group reports one size for every prompt. SW-Max sees a report
only through its contribution up to a constant (Definition 4.1), and the polytopes of
contributions are nested in the size (:class:`~rlhf_mech.analysis.ReportSpace`: a point of
the polytope of extent ``s`` is a valid report at any size ``>= s``). So the best joint
misreport is the best report on every prompt at once, all at the largest size ``W``, and the
whole game's best gain is exactly

.. math::  g_i = \sum_x q_x \max_{c_x \in P(W)} \big(u_{i,x}(c_x) - u_{i,x}(\text{truth})\big),

a concrete report (one reward model per prompt, size ``W``) that :func:`search_prompts`
replays through the whole game; at the true size ``w_i`` (reward misreports only) the same
holds with ``P(w_i)``.

Every prompt's search runs at once, batch by batch of the prompts with as many outcomes
(one call of the kernel's deviation batch, :meth:`~rlhf_mech.core.Deviation.contribution_outcomes`,
with the prompts as its games): candidates (the polytope's vertices, the truth, polarised
and mixed reports, random points), then projected gradient ascent from each prompt's best
starts with the exact gradient of the utility (implicit differentiation of the KKT
conditions), every prompt advancing together and each dropping out when its steps fall
below :data:`~rlhf_mech.analysis._polish.MIN_STEP` of its extent. Where the divergence has
no gradient (TV, the argmax rule) the candidates are the search. Under a payment rule that
no theorem makes DSIC (where the search is the verdict), the :data:`REFINED` prompts that
weigh most in the whole game's gain are searched again one by one
(:func:`~rlhf_mech.analysis.search_misreports`: scipy's polish, the kinks and plateaus of
chi^2), and keep the better report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlhf_mech.analysis._objective import SEARCH_CONVERGED, Misreport, PromptGains, SearchResult
from rlhf_mech.analysis._polish import MIN_STEP
from rlhf_mech.analysis._search import search_misreports
from rlhf_mech.analysis._space import ReportSpace, size_bound
from rlhf_mech.core import CHUNK_ELEMENTS, Deviation, Mechanism, PaymentRule, PromptGame, deviation
from rlhf_mech.core._internal import CONVERGED

Array = np.ndarray

#: Distinct starts polished per prompt.
STARTS = 2
#: Trial step multipliers of each ascent step (per start, all evaluated in one batch).
TRIALS = (4.0, 1.0, 0.25)
#: Shrink factor of a start's step when no trial improved.
SHRINK = 1.0 / 16.0
#: The share of a search's evaluations spent on candidates (the rest: the ascent).
CANDIDATE_SHARE = 0.4
#: A box with at most this many vertices has all of them among the candidates.
BOX_VERTICES = 255
#: The prompts, heaviest in the whole game's gain first, that the one-prompt search refines.
REFINED = 16
#: Mixing and polarising weights of the structured candidates.
_MIX = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class _Found:
    """The best point of each prompt of a batch in one polytope."""

    z: Array  # (B, k)
    gains: Array  # (B,)
    min_payment: Array  # (B,)
    evaluations: int
    stalled: int


#: Prompts per task of a game of many prompts (:func:`prompt_chunks`): the audit of a game of
#: more searches it chunk by chunk, each chunk with its own seed, so that a cluster spreads
#: one game's work over its workers; a game of at most this many is one chunk.
PROMPT_CHUNK = 2048


def prompt_chunks(n_prompts: int) -> list[range]:
    """The consecutive chunks of at most :data:`PROMPT_CHUNK` prompts a search is cut into."""
    return [range(a, min(n_prompts, a + PROMPT_CHUNK)) for a in range(0, n_prompts, PROMPT_CHUNK)]


@dataclass(frozen=True)
class PromptPart:
    """One chunk of a group's search (:func:`search_prompt_chunk`): the best report found on
    each of its prompts, over every size up to ``W`` (``whole``) and at the true size.

    Attributes
    ----------
    prompts : the chunk's prompts (consecutive); their outcomes are the flat columns
        ``offsets[prompts.start]:offsets[prompts.stop]``.
    rewards : ``whole`` / ``true`` -> the reports on those columns; gains : -> (len(prompts),).
    min_payment : (len(prompts),) the smallest payment met on each prompt.
    evaluations, stalled : report evaluations spent, and those whose solve did not converge.
    """

    prompts: range
    rewards: dict[str, Array]
    gains: dict[str, Array]
    min_payment: Array
    evaluations: int
    stalled: int


def search_prompts(
    game: PromptGame, i: int, payment_rule: str | PaymentRule, budget: int, rng: np.random.Generator
) -> SearchResult:
    """Group ``i``'s best joint misreport on every prompt (module docstring), under
    ``payment_rule``, the others reporting as in the file.

    Parameters
    ----------
    budget : report evaluations per prompt and polytope (the whole space and the true size).
    rng : the random generator of this task (the search is deterministic in it).

    Returns
    -------
    The whole game's :class:`~rlhf_mech.analysis.SearchResult`: its reports are one reward
    model per prompt on the flat outcome axis, ``(T,)``, its gains ``sum_x q_x g_x``, and its
    ``prompts`` each prompt's gains.
    """
    part = search_prompt_chunk(game, i, payment_rule, budget, rng, range(game.n_prompts))
    return finish_prompt_search(game, i, payment_rule, budget, rng, [part])


def search_prompt_chunk(
    game: PromptGame,
    i: int,
    payment_rule: str | PaymentRule,
    budget: int,
    rng: np.random.Generator,
    prompts: range,
) -> PromptPart:
    """The search of :func:`search_prompts` on the chunk ``prompts`` alone (each prompt's
    search needs only that prompt: the terms of the whole game's gain are separate)."""
    mechanism = game.mechanism.with_payment_rule(payment_rule)
    W, true_size = size_bound(game)[0], float(game.truth.sizes[i])
    first = int(game.offsets[prompts.start])
    columns = int(game.offsets[prompts.stop]) - first
    rewards = {"whole": np.empty(columns), "true": np.empty(columns)}
    gains = {"whole": np.empty(len(prompts)), "true": np.empty(len(prompts))}
    min_payment = np.full(len(prompts), np.inf)
    evaluations = stalled = 0
    for batch in game.batches():
        batch = batch[(batch >= prompts.start) & (batch < prompts.stop)]
        if not batch.size:
            continue
        k = int(game.outcome_counts[batch[0]])
        space = ReportSpace.of(game.game(int(batch[0])))
        step = max(1, CHUNK_ELEMENTS // (max(budget, 1) * k))
        for start in range(0, batch.size, step):
            rows = batch[start : start + step]
            rules, truth, reports = game.batch(rows, mechanism)
            group = deviation(rules, truth, reports, i)
            truth_z = true_size * truth.rewards[:, i, :]
            cols, here = game.columns(rows) - first, rows - prompts.start
            for key, size in (("whole", W), ("true", true_size)):
                found = _search_batch(group, space, space.cap(size), truth_z, budget, rng)
                theta, _ = space.report(found.z, size)
                rewards[key][cols] = theta
                gains[key][here] = found.gains
                min_payment[here] = np.minimum(min_payment[here], found.min_payment)
                evaluations += found.evaluations
                stalled += found.stalled
    return PromptPart(prompts, rewards, gains, min_payment, evaluations, stalled)


def finish_prompt_search(
    game: PromptGame,
    i: int,
    payment_rule: str | PaymentRule,
    budget: int,
    rng: np.random.Generator,
    parts: list[PromptPart],
) -> SearchResult:
    """The whole game's search from its chunks' (in prompt order, covering every prompt):
    the one-prompt refinement of the prompts that weigh most (:func:`_refine`, drawing from
    ``rng``), then the joint report and its gains."""
    mechanism = game.mechanism.with_payment_rule(payment_rule)
    W, true_size = size_bound(game)[0], float(game.truth.sizes[i])
    rewards = {key: np.concatenate([p.rewards[key] for p in parts]) for key in ("whole", "true")}
    gains = {key: np.concatenate([p.gains[key] for p in parts]) for key in ("whole", "true")}
    min_payment = np.concatenate([p.min_payment for p in parts])
    evaluations = sum(p.evaluations for p in parts)
    stalled = sum(p.stalled for p in parts)
    refined = _refine(game, i, mechanism, gains, rewards, budget, rng)
    evaluations += refined
    q = game.weights
    name = mechanism.payment_rule.name
    best = Misreport(rewards["whole"], W, float(q @ gains["whole"]), "prompts")
    at_size = Misreport(rewards["true"], true_size, float(q @ gains["true"]), "prompts")
    result = SearchResult(
        payment_rule=name,
        best=best if best.gain > at_size.gain else at_size,
        best_at_true_size=at_size,
        evaluations=evaluations,
        min_payment=float(q @ min_payment) if name != "none" else 0.0,
        status=SEARCH_CONVERGED,
        priced=evaluations,
        stalled=stalled,
        prompts=PromptGains(q, gains["whole"], gains["true"]),
    )
    return result


def _refine(
    game: PromptGame,
    i: int,
    mechanism: Mechanism,
    gains: dict[str, Array],
    rewards: dict[str, Array],
    budget: int,
    rng: np.random.Generator,
) -> int:
    """The one-prompt search (:func:`~rlhf_mech.analysis.search_misreports`: scipy's polish,
    kinks and plateaus) on the :data:`REFINED` prompts that weigh most in the whole game's
    gain, where a payment rule without a theorem leaves the search as the verdict; each
    prompt keeps the better of the two. Returns the evaluations spent."""
    if mechanism.payment_rule.dsic:
        return 0
    weight = game.weights * np.maximum(gains["whole"], 0.0)
    top = np.argsort(-weight, kind="stable")[: min(REFINED, game.n_prompts)]
    spent = 0
    W = size_bound(game)[0]
    for x in top[weight[top] > 0]:
        single = game.game(int(x))
        space = ReportSpace.of(single)
        result = search_misreports(single, i, mechanism.payment_rule, 2 * budget, rng, space, single.reports)
        cols = slice(int(game.offsets[x]), int(game.offsets[x + 1]))
        for key, found in (("whole", result.best), ("true", result.best_at_true_size)):
            if found.gain > gains[key][x]:
                gains[key][x] = found.gain
                # the same contribution, reported at the whole game's size (a constant apart)
                size = W if key == "whole" else found.size
                rewards[key][cols] = space.report((found.size * found.reward)[None], size)[0][0]
        spent += result.evaluations
    return spent


def _search_batch(
    group: Deviation, space: ReportSpace, cap: float, truth_z: Array, budget: int, rng: np.random.Generator
) -> _Found:
    """The best point of the polytope of extent ``cap`` for each prompt of the batch."""
    candidates = _candidates(space, cap, truth_z, max(8, int(CANDIDATE_SHARE * budget)), rng)
    out = group.contribution_outcomes(candidates, keep_distributions=False)
    bad = out.status != CONVERGED
    utilities = np.where(bad, -np.inf, out.utilities)
    # the truth is candidate 0: its utility is the baseline every gain is measured from
    baseline = out.utilities[:, 0]
    gains = utilities - baseline[:, None]
    gains[:, 0] = 0.0
    payments = np.where(bad, np.inf, out.payments).min(axis=1)
    evaluations, stalled = candidates.shape[0] * candidates.shape[1], int(bad.sum())
    best = np.argmax(gains, axis=1)
    take = np.arange(candidates.shape[0])
    z, found = candidates[take, best].copy(), gains[take, best].copy()
    if group.differentiable:
        starts = _distinct_starts(candidates, gains, cap)
        z, found, extra, pays, lost = _ascend(
            group, space, cap, starts, baseline, budget - candidates.shape[1]
        )
        evaluations += extra
        stalled += lost
        payments = np.minimum(payments, pays)
        better = found < gains[take, best]
        z[better], found[better] = candidates[take, best][better], gains[take, best][better]
    return _Found(z, found, payments, evaluations, stalled)


def _candidates(
    space: ReportSpace, cap: float, truth_z: Array, count: int, rng: np.random.Generator
) -> Array:
    """(B, C, k) points of the polytope for each prompt: the truth first, then the vertices
    (:func:`_vertices`), the truth scaled to the extent, polarised towards its best outcome,
    and random points (uniform in the polytope) up to ``count``."""
    B, k = truth_z.shape
    own = truth_z / np.maximum(space.normalization.total(truth_z), np.finfo(float).tiny)[:, None]
    order = np.argsort(-own, axis=1, kind="stable")
    top = np.zeros((B, k))
    top[np.arange(B), order[:, 0]] = cap
    structured = [truth_z[:, None, :], _vertices(space, cap, order, count // 2, rng), (cap * own)[:, None, :]]
    structured += [((1 - t) * cap * own + t * top)[:, None, :] for t in _MIX]
    points = np.concatenate(structured, axis=1)
    extra = max(0, count - points.shape[1])
    if space.simplex:  # uniform in {z >= 0, sum z <= cap}: k + 1 Dirichlet coordinates, the last dropped
        random = cap * rng.dirichlet(np.ones(k + 1), size=(B, extra))[..., :k]
    else:
        random = cap * rng.random((B, extra, k))
    return space.project(np.concatenate([points, random], axis=1).reshape(-1, k), cap).reshape(B, -1, k)


def _vertices(space: ReportSpace, cap: float, order: Array, limit: int, rng: np.random.Generator) -> Array:
    """(B, V, k) vertices of each prompt's polytope: the capped simplex's ``k + 1``; every one
    of a box with at most ``min(limit, BOX_VERTICES)`` (where the utility without payment is
    often largest: a chi^2 model loses outcomes, and its utility is piecewise linear); else
    the nested sets ``cap 1_S`` along the prompt's own order of its true rewards, both ways,
    and random sets, ``limit`` in all."""
    B, k = order.shape
    if space.simplex:
        return np.broadcast_to(np.vstack([np.zeros(k), cap * np.eye(k)]), (B, k + 1, k))
    if 2**k - 1 <= min(BOX_VERTICES, limit):
        codes = np.arange(1, 2**k)
        return np.broadcast_to(cap * ((codes[:, None] >> np.arange(k)) & 1), (B, codes.size, k)).astype(float)
    rank = np.argsort(order, axis=1)  # rank[b, x]: the place of outcome x in prompt b's order
    nested = np.arange(1, k)[None, :, None]
    best_first = cap * (rank[:, None, :] < nested)
    worst_first = cap * (rank[:, None, :] >= k - nested)
    random = cap * (
        rng.random((B, BOX_VERTICES // 2, k)) < rng.uniform(0.05, 0.95, (B, BOX_VERTICES // 2, 1))
    )
    return np.concatenate([best_first, worst_first, random], axis=1).astype(float)


def _distinct_starts(points: Array, gains: Array, cap: float) -> Array:
    """(B, S, k) each prompt's best point and its best point at least 1% of the extent away."""
    order = np.argsort(-gains, axis=1, kind="stable")
    take = np.arange(points.shape[0])
    first = points[take, order[:, 0]]
    distance = np.abs(points - first[:, None, :]).max(axis=-1)
    far = np.where(distance > 0.01 * cap, gains, -np.inf)
    second = points[take, np.argmax(far, axis=1)]
    return np.stack([first, second], axis=1)[:, :STARTS]


def _ascend(
    group: Deviation, space: ReportSpace, cap: float, z: Array, baseline: Array, budget: int
) -> tuple[Array, Array, int, Array, int]:
    """Projected gradient ascent from the starts ``z`` (B, S, k) of every prompt at once.

    Each round evaluates every live start's gradient and, along it, :data:`TRIALS` steps
    (one batch); a start moves to its best trial where that gains, else its step shrinks by
    :data:`SHRINK`; a prompt drops out when every start's step is below ``MIN_STEP * cap``,
    or when its evaluations reach ``budget``. Returns each prompt's best point and gain, the
    evaluations, the smallest payment seen per prompt and the solves that did not converge.
    """
    B, S, k = z.shape
    step = np.full((B, S), 0.1 * cap)
    out = group.contribution_outcomes(z, gradients=True, keep_distributions=False)
    value = np.where(out.status == CONVERGED, out.utilities - baseline[:, None], -np.inf)
    slope = out.gradients
    assert slope is not None
    payments = out.payments.min(axis=1)
    evaluations, stalled = B * S, int((out.status != CONVERGED).sum())
    live = np.arange(B)
    per_round = S * (len(TRIALS) + 1)
    spent = S
    while live.size and spent + per_round <= budget:
        sub = group.games_at(live)
        g = slope[live]
        norm = np.maximum(np.abs(g).max(axis=-1, keepdims=True), np.finfo(float).tiny)
        trials = np.stack([z[live] + (t * step[live])[..., None] * g / norm for t in TRIALS], axis=2)
        trials = space.project(trials.reshape(-1, k), cap).reshape(live.size, S * len(TRIALS), k)
        tried = sub.contribution_outcomes(trials, keep_distributions=False)
        ok = tried.status == CONVERGED
        gains = np.where(ok, tried.utilities - baseline[live, None], -np.inf).reshape(live.size, S, -1)
        payments[live] = np.minimum(payments[live], np.where(ok, tried.payments, np.inf).min(axis=1))
        stalled += int((~ok).sum())
        pick = np.argmax(gains, axis=2)
        best = np.take_along_axis(gains, pick[..., None], axis=2)[..., 0]
        moved = best > value[live]
        chosen = trials.reshape(live.size, S, len(TRIALS), k)[
            np.arange(live.size)[:, None], np.arange(S)[None, :], pick
        ]
        z[live] = np.where(moved[..., None], chosen, z[live])
        value[live] = np.where(moved, best, value[live])
        step[live] = np.where(moved, step[live] * np.asarray(TRIALS)[pick], step[live] * SHRINK)
        evaluations += live.size * S * len(TRIALS)
        spent += S * len(TRIALS)
        live = live[(step[live] >= MIN_STEP * cap).any(axis=1)]
        if live.size and spent + per_round <= budget:
            again = group.games_at(live).contribution_outcomes(
                z[live], gradients=True, keep_distributions=False
            )
            slope[live] = again.gradients
            evaluations += live.size * S
            spent += S
    best = np.argmax(value, axis=1)
    take = np.arange(B)
    return z[take, best], value[take, best], evaluations, payments, stalled
