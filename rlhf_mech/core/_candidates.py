r"""Candidate-model games (section 5, appendix F): a finite set of trained models as outcomes.

A platform that cannot optimise over every distribution chooses among K trained models
(e.g. rewarded-soups mixtures), each known only by its mean reward under each base reward
model. Such a game is an ordinary :class:`~rlhf_mech.core.Game` whose outcomes are the
candidates and whose groups report in a :class:`~rlhf_mech.core.ReportBasis`:

* ``rewards[i, c] = preference_i . scores[c]`` (group i's valuation of candidate c,
  Definition 3.1 with the candidate's measured mean rewards; linear in the preference);
* ``outcome_costs[c]`` = candidate c's measured divergence from the initial model, weighted
  by ``lambda`` (``Mechanism.score_offset = -lambda * outcome_costs`` enters ASW and every
  ``ASW_{-i}`` alike);
* divergence ``none`` (the argmax rule: the training objective
  ``sum_i w_i v_i(c) - lambda * divergence(c)`` is maximised over the candidates; ties go to
  the first candidate in file order), normalisation ``none``, ``pi_init`` uniform (unused).

The affine-maximizer payment (eq. 1) then takes its leave-one-out maxima over the same set,
so solve, sweep and audit apply unchanged. This module is pure: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np

from rlhf_mech.core._game import Expectations, Game, ReportBasis
from rlhf_mech.core._mechanism import Mechanism, Profile
from rlhf_mech.core._normalizations import Normalization, Scale
from rlhf_mech.core._payments import PaymentRule
from rlhf_mech.core._training import TrainingRule

Array = np.ndarray


def scale_scores(scores: Array, scale: Scale | str) -> tuple[Array, Array]:
    """``scores`` on the declared scale; returns ``(scaled, constant)`` as :func:`minmax_scale`."""
    return Scale(scale).apply(scores)


def candidate_game(
    *,
    name: str,
    candidates: tuple[str, ...],
    reward_models: tuple[str, ...],
    raw_scores: Array,
    scale: Scale | str,
    divergences: Array,
    lam: float,
    payment_rule: str | PaymentRule | None,
    group_names: tuple[str, ...],
    preferences: Array,
    sizes: Array,
    reported_preferences: Array | None = None,
    reported_sizes: Array | None = None,
    max_size: float | None = None,
    expect: Expectations | None = None,
    source: str | None = None,
    notes: tuple[str, ...] = (),
    training_rule: str | TrainingRule = "sw_max",
) -> Game:
    """Assemble the :class:`~rlhf_mech.core.Game` of a candidate spec (arrays already validated).

    Parameters
    ----------
    candidates : (m,) candidate names (the outcomes); reward_models : (k,) names.
    raw_scores : (m, k) mean rewards; scale : a :class:`~rlhf_mech.core.Scale`.
    divergences : (m,) measured divergence of each candidate from the initial model.
    lam : weight on the divergences (> 0).
    preferences, reported_preferences : (n, k) non-negative weights (reports default to truth).
    sizes, reported_sizes : (n,) sizes (reports default to truth).
    payment_rule, training_rule : the rules (payment default: ``p^AFF`` for SW-Max, ``none``
        for a training rule that is not additive).
    notes : what was changed on loading; a note is added per constant column under minmax.
    """
    raw_scores = np.asarray(raw_scores, dtype=float)
    preferences = np.asarray(preferences, dtype=float)
    sizes = np.asarray(sizes, dtype=float)
    reported_preferences = preferences if reported_preferences is None else reported_preferences
    reported_sizes = sizes if reported_sizes is None else reported_sizes
    scores, constant = scale_scores(raw_scores, scale)
    notes = notes + tuple(
        f"reward model {reward_models[j]!r} scores every candidate the same; scaled to 0"
        for j in np.flatnonzero(constant)
    )
    basis = ReportBasis(
        reward_models=tuple(reward_models), scale=Scale(scale), raw_scores=raw_scores, scores=scores
    )
    m = len(candidates)
    mechanism = Mechanism(
        pi_init=np.full(m, 1.0 / m),
        divergence="none",
        lam=float(lam),
        payment_rule=payment_rule,
        training_rule=training_rule,
        outcome_costs=np.asarray(divergences, dtype=float),
    )
    return Game(
        name=name,
        outcomes=tuple(candidates),
        group_names=tuple(group_names),
        mechanism=mechanism,
        normalization=Normalization.NONE,
        truth=Profile(basis.rewards(preferences), sizes, preferences),
        reports=Profile(basis.rewards(reported_preferences), reported_sizes, reported_preferences),
        report_basis=basis,
        max_size=max_size,
        notes=notes,
        expect=expect,
        source=source,
    )
