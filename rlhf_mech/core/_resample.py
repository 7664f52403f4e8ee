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

*The Gibbs shortcut* (:class:`Replicates`). For KL under SW-Max with the affine
maximizer's payment (or none) on the fixed scale, a row's ``pi_init`` is ``c_j / N`` for the
counts ``c`` of its prompt's own samples, and every figure is a ratio of sums linear in
``c``: with ``g_j = (s_j - max_x s) / lambda`` over the prompt's samples ``j`` (the maximum
over *all* its samples, so that one ``exp(g_j)`` serves every row),
``E_{pi_init} exp(g) = sum_j c_j e^{g_j} / N``, the optimal value (eq. OPT) ``V(s) = max s +
lambda log E_{pi_init} exp(g)``, ``pi*_j \propto c_j e^{g_j}`` (Prop. 4.8), so
``v_i = sum_j c_j e^{g_j} rm_ij / sum_j c_j e^{g_j}``, ``D = lambda (<pi*, g> - log E exp(g))``
and ``p_i = V(s_{-i}) - V(s) + w_i <pi*, rm_i>`` (eq. 1: ``max ASW_{-i} = V(s_{-i})``,
``ASW_{-i}(pi*) = V(s) - w_i <pi*, rm_i>``). The exponentials are formed once per sample,
not once per row, and a batch of rows is one sparse product of its counts with the
samples' columns. A prompt whose scores spread at most ``lambda`` takes ``expm1`` (the
``log1p`` form of :func:`~rlhf_mech.core._numerics.log_expectation_exp`); a row whose drawn
mass underflows (:data:`GIBBS_FLOOR`) goes through the kernel. *The check*: the first and
the last row of every batch also go through the kernel (:func:`slot_figures`), and unless
their figures agree with the shortcut's within :data:`GIBBS_TOL` (relative to the
figures' scale) the whole batch does; the rows' KKT residual and status are the checked
rows' worst (the shortcut's rows are the closed form on the same arrays).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from scipy.sparse import csr_matrix

from rlhf_mech.core._game import Game
from rlhf_mech.core._mechanism import Mechanism, Profile
from rlhf_mech.core._normalizations import Normalization
from rlhf_mech.core._numerics import rows_per_chunk
from rlhf_mech.core._outcomes import Figures, outcome, train
from rlhf_mech.core._payments import AFFINE_MAXIMIZER, NONE, affine_maximizer_payment
from rlhf_mech.core._prompts import PromptGame
from rlhf_mech.core._registry import by_name
from rlhf_mech.core._training import SW_MAX

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


ESTIMANDS: dict[str, Estimand] = by_name(
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


#: A row of the Gibbs shortcut whose drawn mass ``E_{pi_init} exp(g)`` is below this goes
#: through the kernel (its exponentials lost their digits to underflow).
GIBBS_FLOOR = 1e-250
#: The shortcut's figures on the checked rows agree with the kernel's within this, relative
#: to the largest figure (and 1); rounding is ~1e-15.
GIBBS_TOL = 1e-9


def gibbs_applies(mechanism: Mechanism, estimand: Estimand) -> bool:
    """Whether rows of a sampled game take the Gibbs shortcut (module docstring): KL-type
    divergence, SW-Max, the affine maximizer's payment or none, the fixed scale."""
    return bool(
        mechanism.divergence.gibbs_form
        and mechanism.training_rule is SW_MAX
        and any(mechanism.payment_rule is rule for rule in (AFFINE_MAXIMIZER, NONE))
        and estimand.rescale is _fixed
    )


@dataclass(frozen=True)
class _Table:
    """One profile's columns of the Gibbs shortcut over every sample of the game (module
    docstring), formed once and summed over by every row.

    Attributes
    ----------
    columns : (S, F) ``exp(g)`` of the scores and of each leave-one-out
        scores (``expm1`` for a narrow prompt), then ``e^{g}`` times each true reward, each
        reported term ``w_i rm_i`` (left out where the profile is the truth), ``g``, and the
        offset (where the game has outcome costs).
    top : (P, n + 1) each prompt's largest score of each problem; narrow : (P, n + 1)
        whether a prompt's problem spreads at most ``lambda``.
    truthful : whether the profile is the truth; costs : whether the offset column is there.
    """

    columns: Array
    top: Array
    narrow: Array
    truthful: bool
    costs: bool


@dataclass(frozen=True)
class Replicates:
    """A sampled game's profiles, to be evaluated on rows of drawn slots (every profile on the
    same draws): through the Gibbs shortcut where it applies (``tables``), checked against
    the kernel (module docstring), else through the kernel (:func:`slot_figures`).
    Made by :func:`prepare_replicates`."""

    samples: Samples
    profiles: tuple[Profile, ...]
    estimand: Estimand
    tables: tuple[_Table, ...] | None

    def figures(self, prompts: Array, slots: Array) -> list[Figures]:
        """Each profile's figures on rows ``slots`` (R, N) of prompts ``prompts`` (R,)."""
        samples, estimand = self.samples, self.estimand
        if self.tables is None:
            return [slot_figures(samples, prompts, slots, p, estimand)[0] for p in self.profiles]
        R = slots.shape[0]
        out = []
        for profile, table in zip(self.profiles, self.tables, strict=True):
            fast, underflow = _gibbs(samples, table, prompts, slots)
            check = np.unique(np.concatenate([[0, R - 1], np.flatnonzero(underflow)]))
            slow = slot_figures(samples, prompts[check], slots[check], profile, estimand)[0]
            if not _agree(fast, slow, check, underflow):
                out.append(slot_figures(samples, prompts, slots, profile, estimand)[0])
                continue
            for k, v in vars(slow).items():  # the shortcut's arrays are its own: filled in place
                getattr(fast, k)[check] = v
            fast.kkt_residual[:] = np.max(slow.kkt_residual)
            fast.status[:] = np.max(slow.status)
            fast.status[check] = slow.status
            out.append(fast)
        return out


def prepare_replicates(samples: Samples, profiles: list[Profile], estimand: Estimand) -> Replicates:
    """The profiles of a sampled game, ready for rows of drawn slots (:class:`Replicates`)."""
    tables = None
    if gibbs_applies(samples.game.mechanism, estimand):
        tables = tuple(_table(samples, p) for p in profiles)
    return Replicates(samples, tuple(profiles), estimand, tables)


def _table(samples: Samples, profile: Profile) -> _Table:
    """The Gibbs shortcut's columns of one profile (:class:`_Table`)."""
    game = samples.game
    lam, starts, sizes = game.mechanism.lam, samples.offsets[:-1], samples.sizes
    rewards = profile.rewards[:, samples.slots]  # (n, S): reported
    costs = None if game.outcome_costs is None else -lam * game.outcome_costs[samples.slots]
    full = profile.sizes @ rewards + (0.0 if costs is None else costs)
    scores = np.vstack([full, full - profile.sizes[:, None] * rewards])  # (n + 1, S)
    top = np.maximum.reduceat(scores, starts, axis=1)  # (n + 1, P)
    gaps = (scores - np.repeat(top, sizes, axis=1)) / lam
    narrow = np.minimum.reduceat(gaps, starts, axis=1) >= -1.0
    e = np.exp(gaps[0])
    truthful = profile.equals(game.truth)
    columns = [
        np.where(np.repeat(narrow, sizes, axis=1), np.expm1(gaps), np.exp(gaps)),
        e * game.truth.rewards[:, samples.slots],
        *([] if truthful else [e * profile.sizes[:, None] * rewards]),
        (e * gaps[0])[None],
        *([] if costs is None else [(e * costs)[None]]),
    ]
    table = np.ascontiguousarray(np.vstack(columns).T)
    return _Table(table, top.T.copy(), narrow.T.copy(), truthful, costs is not None)


#: Rows of the Gibbs shortcut formed at a time: its sums and their temporaries stay in the
#: cache (measured: 1.6x faster than one pass over 64,000 rows).
GIBBS_BLOCK_ELEMENTS = 1 << 15


def _gibbs(samples: Samples, table: _Table, prompts: Array, slots: Array) -> tuple[Figures, Array]:
    """The shortcut's figures of rows of drawn slots, and (R,) the rows whose drawn mass
    underflowed (their figures are not to be used)."""
    game = samples.game
    mechanism, truth = game.mechanism, game.truth
    lam, n = mechanism.lam, game.n_groups
    R, N = slots.shape
    columns = table.columns
    valuations, payments = np.empty((R, n)), np.zeros((R, n))
    divergence, underflow = np.empty(R), np.empty(R, dtype=bool)
    tilt = n if table.truthful else 2 * n  # the column of g
    narrow = table.narrow.any()
    step = max(1, GIBBS_BLOCK_ELEMENTS // columns.shape[1])
    # each draw weighs 1 / N (its pi_init): a row's product is the mean over its draws
    weights, ends = np.full(step * N, 1.0 / N), np.arange(0, step * N + 1, N)  # sliced per block
    for start in range(0, R, step):
        rows = slice(start, min(R, start + step))
        count = rows.stop - rows.start
        counts = csr_matrix(
            (weights[: count * N], slots[rows].ravel(), ends[: count + 1]), shape=(count, columns.shape[0])
        )
        sums = counts @ columns  # (rows, F): E_{pi_init} of each column
        mass, ratios = sums[:, : n + 1], sums[:, n + 1 :]  # E exp(g) (minus 1 where narrow)
        # each log form where it applies; an underflowed row's figures are replaced
        with np.errstate(divide="ignore", invalid="ignore"):
            log_mass = np.log(mass)
            if narrow:
                near = table.narrow[prompts[rows]]
                log_mass[near] = np.log1p(mass[near])
                underflow[rows] = np.any((mass < GIBBS_FLOOR) & ~near, axis=1)
                ratios /= mass[:, :1] + near[:, :1]  # <pi*, column>: over E exp(g)
            else:  # one reduction over the block first: rows underflow rarely
                underflow[rows] = mass.min() < GIBBS_FLOOR and mass.min(axis=1) < GIBBS_FLOOR
                ratios /= mass[:, :1]
            values = table.top[prompts[rows]]  # V(s), V(s_{-i})
            values += lam * log_mass
            # D = lambda (<pi*, g> - log E exp(g)), less <pi*, offset>
            divergence[rows] = lam * (ratios[:, tilt] - log_mass[:, 0])
            if table.costs:
                divergence[rows] -= ratios[:, tilt + 1]
            valuations[rows] = ratios[:, :n]
            if mechanism.payment_rule is AFFINE_MAXIMIZER:
                own = ratios[:, :n] * truth.sizes if table.truthful else ratios[:, n:tilt]
                payments[rows] = affine_maximizer_payment(values[:, 1:], values[:, :1], own)
    figures = Figures.of(
        valuations=valuations,
        sizes=truth.sizes,
        payments=payments,
        social_welfare=valuations @ truth.sizes,
        divergence_value=divergence,
        kkt_residual=np.zeros(R),
        status=np.zeros((R, n), dtype=int),
    )
    return figures, underflow


def _agree(fast: Figures, slow: Figures, check: Array, underflow: Array) -> bool:
    """Whether the shortcut's figures on the checked rows that did not underflow agree with
    the kernel's within :data:`GIBBS_TOL` of their scale."""
    keep = ~underflow[check]
    pairs = [
        (np.asarray(getattr(fast, k))[check][keep], np.asarray(getattr(slow, k))[keep])
        for k in (*GROUP_FIGURES, "divergence_value", *PROFILE_FIGURES)
    ]
    scale = max([1.0] + [float(np.max(np.abs(b), initial=0.0)) for _, b in pairs])
    return all(np.all(np.abs(a - b) <= GIBBS_TOL * scale) for a, b in pairs)
