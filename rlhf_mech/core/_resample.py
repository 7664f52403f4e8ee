r"""Sampled games under other draws of their samples: one batch of the profile kernel.

A game whose outcomes are samples of the initial policy (``sample_counts``, files/spec
``sampled:``) is the *empirical* mechanism: prompt ``x``'s ``pi_init`` is the frequencies
``c_x / N_x`` of its ``N_x`` draws. For the f-divergence SW-Max rules every figure is then a
plug-in estimate of the population's: the optimum reweights ``pi_init`` (KL:
``pi* \propto pi_init exp(s / lambda)``), so each term of eq. (1) is an expectation under
``pi_init`` (``max ASW_{-i} = lambda log E_{pi_init}[exp(s_{-i} / lambda)]``).

Here a draw is held as *slots*: prompt ``x``'s ``N_x`` samples, each an index into the flat
outcome axis (an outcome drawn ``c`` times fills ``c`` slots). A resampled game is a row of
slots (``N`` indices drawn with replacement from the prompt's own), whose ``pi_init`` is
uniform ``1 / N`` over the slots: splitting an outcome of mass ``c / N`` into ``c`` copies of
mass ``1 / N`` with the same rewards changes no figure (an f-divergence of a split with equal
ratios is the divergence of the merge, and the optimum gives the copies equal ratios), and
no outcome of a row has mass 0, which the solvers refuse. Every row with ``N`` slots shares
one ``pi_init``, so a batch of replicates is one call of :func:`~rlhf_mech.core.outcome` on
rewards gathered ``(R, n, N)``, in chunks of at most
:data:`~rlhf_mech.core._numerics.CHUNK_ELEMENTS`.

The *estimand* (:data:`ESTIMANDS`) says what population quantity the draws estimate: the
rewards on the file's fixed scale, or the rewards re-normalised on every draw as the
importers normalise them (shift by the samples' minimum, divide by their sum or maximum), so
that an interval accounts for the normalisation's own sampling error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from rlhf_mech.core._game import Game
from rlhf_mech.core._mechanism import Profile
from rlhf_mech.core._normalizations import Normalization
from rlhf_mech.core._numerics import rows_per_chunk
from rlhf_mech.core._outcomes import Figures, outcome, train
from rlhf_mech.core._prompts import PromptGame

Array = np.ndarray

#: The per-group figures of a profile, and the per-profile ones, in the order of a row.
GROUP_FIGURES = ("valuations", "payments", "utilities")
PROFILE_FIGURES = ("social_welfare", "asw")


@dataclass(frozen=True)
class Samples:
    """A sampled game's draws, one slot per sample (module docstring).

    Attributes
    ----------
    game : the game, as a game of many prompts (one prompt for a core game).
    slots : (S,) the flat outcome index of every sample, prompt by prompt.
    offsets : (P + 1,) where each prompt's slots start.
    """

    game: PromptGame
    slots: Array
    offsets: Array

    @property
    def sizes(self) -> Array:
        """(P,) ``N_x``, each prompt's number of samples."""
        return np.diff(self.offsets)

    def classes(self) -> list[Array]:
        """The prompts with the same number of samples, in order of first appearance: one
        batch of the kernel each."""
        sizes = self.sizes
        values, first = np.unique(sizes, return_index=True)
        return [np.flatnonzero(sizes == values[k]) for k in np.argsort(first, kind="stable")]

    def own(self, prompts: Array) -> Array:
        """(R, N) the original slots (positions in :attr:`slots`) of prompts that all have
        ``N`` samples."""
        N = int(self.sizes[prompts[0]])
        return self.offsets[prompts][:, None] + np.arange(N)


def samples_of(game: Game | PromptGame) -> Samples:
    """The draws of a sampled game.

    Raises
    ------
    ValueError
        for a game whose outcomes are not marked as samples.
    """
    if game.sample_counts is None:
        raise ValueError(
            f"game {game.name!r} is not marked as sampled (sampled: in the file); its pi_init is "
            "taken as exact"
        )
    prompts = (
        game
        if isinstance(game, PromptGame)
        else PromptGame.from_games(game.name, (game.name,), (game,), np.ones(1), source=game.source)
    )
    counts = np.asarray(prompts.sample_counts)
    slots = np.repeat(np.arange(prompts.n_outcomes), counts)
    per_prompt = np.add.reduceat(counts, prompts.offsets[:-1])
    return Samples(prompts, slots, np.concatenate([[0], np.cumsum(per_prompt)]))


Rescale = Callable[[Array, Array, Normalization], Array]


def _fixed(rewards: Array, reference: Array, normalization: Normalization) -> Array:
    return rewards


def _renormalised(rewards: Array, reference: Array, normalization: Normalization) -> Array:
    """``(rm - a_b) t / t_b + a``: each row's reward models shifted by the drawn samples'
    minimum ``a_b`` and divided by their total ``t_b`` (the sum over the draws, or the
    maximum), scaled back by the original draw's ``a`` and ``t``: the identity on the
    original draw, the importers' normalisation (section 2) on every other."""
    if not normalization.normalised:
        return rewards
    shift, base = rewards.min(axis=-1, keepdims=True), reference.min(axis=-1, keepdims=True)
    total = normalization.total(rewards - shift)[..., None]
    original = normalization.total(reference - base)[..., None]
    # all draws equal: nothing to rescale by (the importers then keep the reward as it is)
    ratio = np.divide(original, total, out=np.ones_like(total), where=total > 0)
    return (rewards - shift) * ratio + base


@dataclass(frozen=True)
class Estimand:
    """What population quantity a sampled game's figures estimate (one record).

    Attributes
    ----------
    name : the option's value; description : the quantity, for help texts and the docs.
    rescale : ``(rewards (R, n, N), reference (R, n, N), normalization) -> rewards``: the
        reward models of a draw (``reference``: the same prompts' original draw).
    """

    name: str
    description: str
    rescale: Rescale


ESTIMANDS: dict[str, Estimand] = {
    e.name: e
    for e in (
        Estimand(
            "fixed",
            "the population's figures with the rewards on the file's fixed scale",
            _fixed,
        ),
        Estimand(
            "renormalised",
            "the population's figures with each reward model normalised as the importers do "
            "(shift by the minimum, divide by the sum over the draws or the maximum), the "
            "normalisation re-estimated on every draw",
            _renormalised,
        ),
    )
}


def slot_figures(
    samples: Samples,
    prompts: Array,
    slots: Array,
    reports: Profile,
    estimand: Estimand = ESTIMANDS["fixed"],
    distributions: bool = False,
) -> tuple[Figures, Array | None]:
    """The mechanism on rows of drawn slots, measured on the true types, one batch.

    Parameters
    ----------
    samples : the game's draws; prompts : (R,) each row's prompt; slots : (R, N) each row's
        drawn slots (flat outcome indices of the row's prompt); reports : the reports over the
        game's flat outcome axis, ``(n, T)`` and ``(n,)``.
    estimand : how a row's reward models are put on their scale.
    distributions : also return each row's fine-tuned distribution over its slots.

    Returns
    -------
    The rows' :class:`~rlhf_mech.core.Figures` (leading axis ``R``), and ``(R, N)``
    distributions or ``None``.
    """
    game = samples.game
    R, N = slots.shape
    n = game.n_groups
    outcomes = samples.slots[slots]
    reference = samples.slots[samples.own(prompts)]
    mechanism = replace(game.mechanism, pi_init=np.full(N, 1.0 / N), outcome_costs=None)
    if game.outcome_costs is not None:
        mechanism = replace(
            mechanism, pi_init=np.full((R, N), 1.0 / N), outcome_costs=game.outcome_costs[outcomes]
        )
    names = (
        *GROUP_FIGURES,
        "group_valuations",
        "divergence_value",
        "kkt_residual",
        "status",
        *PROFILE_FIGURES,
    )
    out: dict[str, Array] = {k: np.empty((R, n)) for k in (*GROUP_FIGURES, "group_valuations")}
    out |= {k: np.empty(R) for k in ("divergence_value", "kkt_residual", *PROFILE_FIGURES)}
    out["status"] = np.empty((R, n), dtype=int)
    pi = np.empty((R, N)) if distributions else None
    step = rows_per_chunk(n * N)
    for start in range(0, R, step):
        rows = slice(start, min(R, start + step))
        cols, ref = outcomes[rows], reference[rows]
        truth = _gathered(game.truth, cols, ref, game.normalization, estimand)
        reported = (
            truth if reports is game.truth else _gathered(reports, cols, ref, game.normalization, estimand)
        )
        done = outcome(mechanism.rows(np.arange(rows.start, rows.stop)), truth, reported)
        for name in names:
            out[name][rows] = getattr(done, name)
        if pi is not None:
            pi[rows] = done.distribution
    return Figures(**out), pi


def _gathered(
    profile: Profile, cols: Array, reference: Array, normalization: Normalization, estimand: Estimand
) -> Profile:
    """(R, n, N) the reward models of rows of outcomes ``cols``, on the estimand's scale."""
    rewards = _gather(profile.rewards, cols)
    if estimand.rescale is not _fixed:
        rewards = estimand.rescale(rewards, _gather(profile.rewards, reference), normalization)
    return Profile(rewards, np.tile(profile.sizes, (cols.shape[0], 1)))


def _gather(rewards: Array, cols: Array) -> Array:
    """(R, n, N) ``rewards[i, cols]`` for every group ``i``, written once into one contiguous
    array (measured: 0.9x of a fancy index over both axes and a transposed copy, 0.6x of
    ``np.take`` into the strided views)."""
    out = np.empty((cols.shape[0], rewards.shape[0], cols.shape[1]))
    for i, row in enumerate(rewards):
        out[:, i, :] = row[cols]
    return out


def leave_one_out_distributions(samples: Samples, prompts: Array, reports: Profile) -> Array:
    """(R, n, N) the training rule's distribution over each prompt's original slots without
    each group (its reported size set to 0): what eq. (1)'s ``max ASW_{-i}`` is taken over,
    for the effective sample sizes of :mod:`~rlhf_mech.analysis._bootstrap`."""
    game = samples.game
    slots = samples.own(prompts)
    R, N = slots.shape
    n = game.n_groups
    cols = samples.slots[slots]
    rewards = _gather(reports.rewards, cols)
    sizes = np.tile(reports.sizes, (R, n, 1)) * (1.0 - np.eye(n))  # row k: group k left out
    batch = Profile(
        np.broadcast_to(rewards[:, None], (R, n, n, N)).reshape(R * n, n, N), sizes.reshape(R * n, n)
    )
    mechanism = replace(game.mechanism, pi_init=np.full(N, 1.0 / N), outcome_costs=None)
    if game.outcome_costs is not None:
        costs = np.repeat(game.outcome_costs[cols], n, axis=0)
        mechanism = replace(mechanism, pi_init=np.full((R * n, N), 1.0 / N), outcome_costs=costs)
    solution, _ = train(mechanism, batch, mechanism.scores(batch.rewards, batch.sizes))
    return np.asarray(solution.pi).reshape(R, n, N)
