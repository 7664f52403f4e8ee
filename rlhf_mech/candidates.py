r"""Candidate-model games (section 5, appendix F): a finite set of trained models as outcomes.

A platform that cannot optimise over every distribution chooses among K trained models
(e.g. rewarded-soups mixtures), each known only by its mean reward under each base reward
model. Such a game is an ordinary :class:`~rlhf_mech.game.Game` whose outcomes are the
candidates:

* ``rewards[i, c] = preference_i . scores[c]`` (group i's valuation of candidate c,
  Definition 3.1 with the candidate's measured mean rewards; linear in the preference);
* ``outcome_costs[c]`` = candidate c's measured divergence from the initial model, weighted
  by ``lambda``; ``Game.score_offset = -lambda * outcome_costs`` enters ASW and every
  ``ASW_{-i}`` alike;
* divergence ``none`` (the argmax rule: the training objective
  ``sum_i w_i v_i(c) - lambda * divergence(c)`` is maximised over the candidates; ties go to
  the first candidate in file order), normalisation ``none``, ``pi_init`` uniform (unused).

The affine-maximizer payment (eq. 1) then takes its leave-one-out maxima over the same set,
so solve, sweep and audit apply unchanged. This module is pure: arrays in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlhf_mech.game import Expectations, Game

Array = np.ndarray

#: ``minmax``: each base reward model rescaled to [0, 1] across the candidates (section 5);
#: ``none``: the scores as given.
SCALES: tuple[str, ...] = ("minmax", "none")


@dataclass(frozen=True)
class CandidateGame(Game):
    """A :class:`~rlhf_mech.game.Game` over candidate models that keeps the preference weights.

    Every core function sees a plain ``Game`` (``rewards`` etc. are filled in); the extra
    fields are for output and for writing the game back to a file.

    Attributes
    ----------
    reward_models : (k,) names of the base reward models.
    scale : one of :data:`SCALES`.
    raw_scores : (m, k) array, candidates' mean rewards as given in the file.
    scores : (m, k) array, the scores on the scale used; ``rewards = preferences @ scores.T``.
    preferences : (n, k) array, the groups' true non-negative preference weights.
    reported_preferences : (n, k) array, the preferences reported in the file. A caller that
        replaces ``reported_rewards`` (a sweep) leaves this field as it was:
        ``reported_rewards`` is what the mechanism uses.
    """

    reward_models: tuple[str, ...] = ()
    scale: str = "none"
    raw_scores: Array | None = None
    scores: Array | None = None
    preferences: Array | None = None
    reported_preferences: Array | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        m, n, k = self.n_outcomes, self.n_groups, len(self.reward_models)
        if self.scale not in SCALES:
            raise ValueError(f"`scale` must be one of {SCALES}, got {self.scale!r}")
        for label, arr, shape in (
            ("raw_scores", self.raw_scores, (m, k)),
            ("scores", self.scores, (m, k)),
            ("preferences", self.preferences, (n, k)),
            ("reported_preferences", self.reported_preferences, (n, k)),
        ):
            if np.shape(arr) != shape:
                raise ValueError(f"`{label}` must have shape {shape}, got {np.shape(arr)}")


def minmax_scale(scores: Array) -> tuple[Array, Array]:
    """Rescale each column (base reward model) to [0, 1] across the candidates (section 5).

    Parameters
    ----------
    scores : (m, k) array of mean rewards.

    Returns
    -------
    scaled : (m, k) array, ``(s - min) / (max - min)`` per column; a column that is the same
        for every candidate carries no preference between them and is set to 0.
    constant : (k,) bool array, which columns were constant.
    """
    scores = np.asarray(scores, dtype=float)
    lo, hi = scores.min(axis=0), scores.max(axis=0)
    span = hi - lo
    constant = span == 0
    scaled = np.where(constant, 0.0, (scores - lo) / np.where(constant, 1.0, span))
    # The extremes are exactly 0 and 1, whatever the rounding of the division.
    scaled = np.where(scores == hi, 1.0, scaled)
    scaled = np.where(scores == lo, 0.0, scaled)
    return scaled, constant


def scale_scores(scores: Array, scale: str) -> tuple[Array, Array]:
    """``scores`` on the declared scale; returns ``(scaled, constant)`` as :func:`minmax_scale`."""
    scores = np.asarray(scores, dtype=float)
    if scale == "minmax":
        return minmax_scale(scores)
    if scale == "none":
        return scores.copy(), np.zeros(scores.shape[1], dtype=bool)
    raise ValueError(f"`scale` must be one of {SCALES}, got {scale!r}")


def candidate_valuations(preferences: Array, scores: Array) -> Array:
    """``v_i(c) = preference_i . scores[c]``: (n, k) and (m, k) -> (n, m) valuations."""
    return np.asarray(preferences, dtype=float) @ np.asarray(scores, dtype=float).T


def build_candidate_game(
    *,
    name: str,
    candidates: tuple[str, ...],
    reward_models: tuple[str, ...],
    raw_scores: Array,
    scale: str,
    divergences: Array,
    lam: float,
    payment_rule: str,
    group_names: tuple[str, ...],
    preferences: Array,
    sizes: Array,
    reported_preferences: Array | None = None,
    reported_sizes: Array | None = None,
    max_size: float | None = None,
    expect: Expectations | None = None,
    source: str | None = None,
    notes: tuple[str, ...] = (),
) -> CandidateGame:
    """Assemble the :class:`CandidateGame` of a candidate spec (arrays already validated).

    Parameters
    ----------
    candidates : (m,) candidate names (the outcomes); reward_models : (k,) names.
    raw_scores : (m, k) mean rewards; scale : one of :data:`SCALES`.
    divergences : (m,) measured divergence of each candidate from the initial model.
    lam : weight on the divergences (> 0).
    preferences, reported_preferences : (n, k) non-negative weights (reports default to truth).
    sizes, reported_sizes : (n,) sizes (reports default to truth).
    notes : what was changed on loading; a note is added per constant column under minmax.
    """
    raw_scores = np.asarray(raw_scores, dtype=float)
    preferences = np.asarray(preferences, dtype=float)
    sizes = np.asarray(sizes, dtype=float)
    reported_preferences = preferences if reported_preferences is None else reported_preferences
    reported_sizes = sizes if reported_sizes is None else reported_sizes
    reported_preferences = np.asarray(reported_preferences, dtype=float)
    scores, constant = scale_scores(raw_scores, scale)
    notes = notes + tuple(
        f"reward model {reward_models[j]!r} scores every candidate the same; scaled to 0"
        for j in np.flatnonzero(constant)
    )
    m = len(candidates)
    return CandidateGame(
        name=name,
        outcomes=tuple(candidates),
        pi_init=np.full(m, 1.0 / m),
        normalization="none",
        divergence="none",
        lam=float(lam),
        payment_rule=payment_rule,
        group_names=tuple(group_names),
        rewards=candidate_valuations(preferences, scores),
        sizes=sizes,
        reported_rewards=candidate_valuations(reported_preferences, scores),
        reported_sizes=np.asarray(reported_sizes, dtype=float),
        max_size=max_size,
        outcome_costs=np.asarray(divergences, dtype=float),
        notes=notes,
        expect=expect,
        source=source,
        reward_models=tuple(reward_models),
        scale=scale,
        raw_scores=raw_scores,
        scores=scores,
        preferences=preferences,
        reported_preferences=reported_preferences,
    )


def is_candidate_game(game: Game) -> bool:
    """Whether ``game`` uses the argmax rule over a finite set of models (divergence ``none``)."""
    return game.divergence == "none"


def chosen_candidate(distribution: Array) -> int:
    """Index of the candidate an argmax-rule distribution puts its mass on."""
    return int(np.argmax(distribution))


def leave_one_out_choices(
    reported_rewards: Array, reported_sizes: Array, score_offset: Array | None = None
) -> Array:
    """The candidate the argmax rule picks without each group in turn (eq. 1's ``psi(rm_{-i})``).

    Parameters
    ----------
    reported_rewards : (n, m) reported valuations; reported_sizes : (n,) reported sizes.
    score_offset : (m,) array, ``-lambda * divergence`` (``Game.score_offset``), or ``None``.

    Returns
    -------
    (n,) int array; ties go to the first candidate, as in the training rule.
    """
    rewards = np.asarray(reported_rewards, dtype=float)
    sizes = np.asarray(reported_sizes, dtype=float)
    scores = sizes @ rewards
    if score_offset is not None:
        scores = scores + score_offset
    # Row i: s - w_i rm_i, the same rows the payment rule solves (payments.leave_one_out_values).
    rows = scores[None, :] - sizes[:, None] * rewards
    return np.argmax(rows, axis=1)


@dataclass(frozen=True)
class CandidateChoice:
    """Which candidate a profile of reports selects, and the leave-one-out choices.

    Attributes
    ----------
    chosen : index of the chosen candidate.
    objective : the training objective at it, on the reports:
        ``sum_i w~_i v~_i(c) - lambda * divergence(c)``.
    leave_one_out : (n,) index of the candidate chosen without each group.
    """

    chosen: int
    objective: float
    leave_one_out: Array


def profile_choice(
    distribution: Array, reported_rewards: Array, reported_sizes: Array, score_offset: Array | None
) -> CandidateChoice:
    """The :class:`CandidateChoice` of one profile whose argmax distribution is ``distribution``."""
    chosen = chosen_candidate(distribution)
    scores = np.asarray(reported_sizes, dtype=float) @ np.asarray(reported_rewards, dtype=float)
    if score_offset is not None:
        scores = scores + score_offset
    return CandidateChoice(
        chosen=chosen,
        objective=float(scores[chosen]),
        leave_one_out=leave_one_out_choices(reported_rewards, reported_sizes, score_offset),
    )
