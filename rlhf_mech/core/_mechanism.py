r"""The mechanism as a value: what the platform announces, and what the groups report.

A :class:`Mechanism` is what the platform announces (section 3): a training rule (SW-Max with
its divergence and lambda, Definition 4.1, or a fairness-minded rule of appendix E), a payment
rule, the initial model ``pi_init`` and the outcome costs that belong to no group. A
:class:`Profile` is what the groups report (or are): reward models and sizes.
:meth:`Mechanism.scores` forms ``s = sum_i w_i rm_i + offset``, the only place scores are
formed; the profile kernel that runs a mechanism on profiles is
:mod:`~rlhf_mech.core._outcomes`, one group's deviations :mod:`~rlhf_mech.core._deviation`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from rlhf_mech.core._divergences import Divergence, get_divergence
from rlhf_mech.core._payments import AFFINE_MAXIMIZER, NONE, PaymentRule, get_payment_rule
from rlhf_mech.core._training import SW_MAX, TrainingRule, get_training_rule

Array = np.ndarray


@dataclass(frozen=True)
class Profile:
    """A profile of types or of reports (section 3): every group's reward model and size.

    Leading batch axes (a batch of games) are allowed: ``rewards (..., n, m)``, ``sizes (..., n)``.

    Attributes
    ----------
    rewards : (..., n, m) array, the reward models ``rm_i`` (or the reports ``rm~_i``).
    sizes : (..., n) array, the sizes ``w_i`` (or ``w~_i``).
    preferences : (..., n, k) array or ``None``: the same reward models as weights over the
        game's report basis (:class:`~rlhf_mech.core.ReportBasis`), in a game whose groups
        report preferences; ``rewards`` is then ``preferences @ basis.scores``.
    """

    rewards: Array
    sizes: Array
    preferences: Array | None = None

    def __post_init__(self) -> None:
        rewards = np.asarray(self.rewards, dtype=float)
        sizes = np.asarray(self.sizes, dtype=float)
        if rewards.ndim < 2 or sizes.shape != rewards.shape[:-1]:
            raise ValueError(
                f"`rewards` (..., n, m) and `sizes` (..., n) disagree: {rewards.shape} and {sizes.shape}"
            )
        object.__setattr__(self, "rewards", rewards)
        object.__setattr__(self, "sizes", sizes)
        if self.preferences is not None:
            preferences = np.asarray(self.preferences, dtype=float)
            if preferences.shape[:-1] != sizes.shape:
                raise ValueError(
                    f"`preferences` must have shape {(*sizes.shape, 'k')}, got {preferences.shape}"
                )
            object.__setattr__(self, "preferences", preferences)

    @property
    def n_groups(self) -> int:
        return int(self.sizes.shape[-1])

    @property
    def n_outcomes(self) -> int:
        return int(self.rewards.shape[-1])

    def with_report(self, i: int, reward: Array, size: float, preference: Array | None = None) -> Profile:
        """This profile with group ``i``'s reward model and size replaced (one game)."""
        rewards = self.rewards.copy()
        rewards[i] = reward
        sizes = self.sizes.copy()
        sizes[i] = size
        preferences = None
        if self.preferences is not None:
            if preference is None:
                raise ValueError("a profile of preferences needs group i's preference")
            preferences = self.preferences.copy()
            preferences[i] = preference
        return Profile(rewards, sizes, preferences)

    def equals(self, other: Profile) -> bool:
        """Whether both profiles have the same reward models and sizes (the same arrays are
        not compared entry by entry: a truthful game's truth and reports are one array)."""
        same_rewards = self.rewards is other.rewards or np.array_equal(self.rewards, other.rewards)
        return bool(same_rewards and (self.sizes is other.sizes or np.array_equal(self.sizes, other.sizes)))


def weighted_rewards(rewards: Array, sizes: Array) -> Array:
    """``sum_i w_i rm_i`` over the group axis: (..., n, m), (..., n) -> (..., m).

    One game is a matrix-vector product; a batch of games, one per game.
    """
    if sizes.ndim == 1:
        return sizes @ rewards
    return np.matmul(sizes[..., None, :], rewards)[..., 0, :]


def rule_conflict(training: TrainingRule, payment: PaymentRule, divergence: Divergence) -> str:
    """Why the rules cannot form one mechanism, or ``""``: a payment built on eq. (1) needs an
    additive training rule (its ``ASW_-i``, appendix E), and a training rule may take only
    some divergences (Nash: the smooth ones)."""
    if payment.additive_only and not training.additive:
        return (
            f"payment rule {payment.name!r} needs an additive training rule (sw_max: eq. (1)'s "
            f"ASW_-i); training rule {training.name!r} is not additive, use payment 'none'"
        )
    if not training.accepts(divergence):
        return (
            f"training rule {training.name!r} takes the divergences "
            f"{', '.join(training.divergences)}, not {divergence.name!r}"
        )
    return ""


@dataclass(frozen=True)
class Mechanism:
    """The mechanism a platform announces (section 3): training rule, payment rule, pi_init.

    Attributes
    ----------
    pi_init : (m,) array, the initial model's distribution (positive, sums to 1).
    divergence : the regulariser ``f = lambda * g`` of the training rule (a
        :class:`~rlhf_mech.core.Divergence`; a registry name is looked up).
    lam : lambda > 0, the strength of the regulariser.
    payment_rule : a :class:`~rlhf_mech.core.PaymentRule` (or its name); by default ``p^AFF``
        for an additive training rule (SW-Max) and ``none`` for the others, where eq. (1)
        does not apply.
    training_rule : a :class:`~rlhf_mech.core.TrainingRule` (or its name), default SW-Max.
    outcome_costs : (m,) array or ``None``; a cost per outcome that the training rule
        subtracts as ``lambda * <pi, cost>`` (a candidate model's measured divergence from the
        initial model, section 5). It belongs to no group: it enters ASW and every ASW_{-i}.
    """

    pi_init: Array
    divergence: Divergence
    lam: float
    payment_rule: PaymentRule = None  # type: ignore[assignment]  # resolved in __post_init__
    training_rule: TrainingRule = SW_MAX
    outcome_costs: Array | None = None

    def __post_init__(self) -> None:
        pi_init = np.asarray(self.pi_init, dtype=float)
        if pi_init.ndim != 1:
            raise ValueError(f"`pi_init` must be a 1-D array, got shape {pi_init.shape}")
        object.__setattr__(self, "pi_init", pi_init)
        object.__setattr__(self, "divergence", get_divergence(self.divergence))
        object.__setattr__(self, "training_rule", get_training_rule(self.training_rule))
        default = AFFINE_MAXIMIZER if self.training_rule.additive else NONE
        object.__setattr__(self, "payment_rule", get_payment_rule(self.payment_rule or default))
        object.__setattr__(self, "lam", float(self.lam))
        conflict = rule_conflict(self.training_rule, self.payment_rule, self.divergence)
        if conflict:
            raise ValueError(conflict)
        if self.outcome_costs is not None:
            costs = np.asarray(self.outcome_costs, dtype=float)
            if costs.shape != pi_init.shape:
                raise ValueError(f"`outcome_costs` must have shape {pi_init.shape}, got {costs.shape}")
            object.__setattr__(self, "outcome_costs", costs)

    @property
    def n_outcomes(self) -> int:
        return int(self.pi_init.shape[0])

    @property
    def score_offset(self) -> Array | None:
        """``-lambda * outcome_costs``: the part of the training objective owned by no group."""
        return None if self.outcome_costs is None else -self.lam * self.outcome_costs

    def scores(self, rewards: Array, sizes: Array) -> Array:
        """``s = sum_i w_i rm_i + offset`` (Definition 4.1): what SW-Max sees of a profile.

        Parameters
        ----------
        rewards : (..., n, m) reported reward models; sizes : (..., n) reported sizes.

        Returns
        -------
        (..., m) array. Leaving a group's rows out gives the scores of its leave-one-out
        problem (eq. 1).
        """
        scores = weighted_rewards(rewards, sizes)
        offset = self.score_offset
        return scores if offset is None else scores + offset

    def with_payment_rule(self, rule: str | PaymentRule | None) -> Mechanism:
        """The same mechanism under another payment rule (``None``: unchanged)."""
        return self if rule is None else replace(self, payment_rule=get_payment_rule(rule))

    def with_training_rule(self, rule: str | TrainingRule | None) -> Mechanism:
        """The same mechanism under another training rule (``None``: unchanged)."""
        return self if rule is None else replace(self, training_rule=get_training_rule(rule))
