"""The registries of the core: payment rules, training rules, normalisations; and the scores.

Every test runs over every entry (the ``payment_rule``, ``training_rule`` and
``normalization`` fixtures of ``conftest.py``), so that a new entry gets them all:

* records are frozen, names unique, the dict keyed by the records' names in documentation
  order; lookup by name and by record; an unknown name raises ``ValueError`` listing the
  valid ones;
* a training rule's ``solve_scores``, ``optimal_values`` and ``kkt_residual`` agree with
  each other (Definition 4.1);
* ``Normalization``: ``total``, ``normalise`` and ``violation`` for each member (section 2);
* ``Mechanism.scores`` is ``sizes @ rewards + offset`` with ``offset = -lambda * costs``.

The payment rules' properties on games (finite, converged, ``charges``, ``nonnegative``,
``dsic``, a deviation batch equal to ``outcome``) are in ``test_payments.py``.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from cases import random_game, random_pi_init, random_rewards

import rlhf_mech
from rlhf_mech.core import (
    ALL_PAYMENT_RULES,
    ALL_TRAINING_RULES,
    PAYMENT_RULES,
    TRAINING_RULES,
    Mechanism,
    Normalization,
    PaymentRule,
    TrainingRule,
    get_divergence,
    get_payment_rule,
    get_training_rule,
)
from rlhf_mech.core._internal import CONVERGED, FILE_NORMALIZATIONS, NORMALIZATION_TOL

#: kind -> (registry, every record in documentation order, lookup, record type).
REGISTRIES = {
    "payment rule": (PAYMENT_RULES, ALL_PAYMENT_RULES, get_payment_rule, PaymentRule),
    "training rule": (TRAINING_RULES, ALL_TRAINING_RULES, get_training_rule, TrainingRule),
}


# --- the registries -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", REGISTRIES)
def test_names_are_unique_and_key_the_registry_in_order(kind: str) -> None:
    registry, records, _, record_type = REGISTRIES[kind]
    names = [record.name for record in records]
    assert len(set(names)) == len(names)
    assert tuple(registry) == tuple(names)
    assert all(registry[name] is record for name, record in zip(names, records, strict=True))
    assert all(isinstance(record, record_type) for record in records)


def test_payment_rule_registry_contents() -> None:
    assert tuple(PAYMENT_RULES) == ("none", "affine_maximizer", "intermediate_checkpoints", "early_stopped")
    assert tuple(TRAINING_RULES) == ("sw_max", "maxmin", "nash", "alpha_fair")
    assert rlhf_mech.PAYMENT_RULES is PAYMENT_RULES
    assert rlhf_mech.TRAINING_RULES is TRAINING_RULES
    assert rlhf_mech.get_payment_rule is get_payment_rule
    assert rlhf_mech.get_training_rule is get_training_rule


def test_payment_rule_record_is_frozen(payment_rule: str) -> None:
    record = PAYMENT_RULES[payment_rule]
    assert dataclasses.is_dataclass(record)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.dsic = not record.dsic  # type: ignore[misc]


def test_training_rule_record_is_frozen(training_rule: str) -> None:
    record = TRAINING_RULES[training_rule]
    assert dataclasses.is_dataclass(record)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.name = "other"  # type: ignore[misc]


def test_payment_rule_lookup_by_name_and_record(payment_rule: str) -> None:
    record = PAYMENT_RULES[payment_rule]
    assert record.name == payment_rule
    assert get_payment_rule(payment_rule) is record
    assert get_payment_rule(record) is record
    mechanism = Mechanism(np.full(3, 1 / 3), "kl", 1.0, payment_rule=payment_rule)
    assert mechanism.payment_rule is record
    assert Mechanism(np.full(3, 1 / 3), "kl", 1.0, payment_rule=record).payment_rule is record
    for other in ALL_PAYMENT_RULES:
        assert mechanism.with_payment_rule(other.name).payment_rule is other
        assert mechanism.with_payment_rule(other).payment_rule is other
    assert mechanism.with_payment_rule(None) is mechanism


def test_training_rule_lookup_by_name_and_record(training_rule: str) -> None:
    record = TRAINING_RULES[training_rule]
    assert record.name == training_rule
    assert get_training_rule(training_rule) is record
    assert get_training_rule(record) is record
    assert Mechanism(np.full(3, 1 / 3), "kl", 1.0, training_rule=training_rule).training_rule is record
    assert Mechanism(np.full(3, 1 / 3), "kl", 1.0, training_rule=record).training_rule is record


@pytest.mark.parametrize("kind", REGISTRIES)
def test_unknown_name_lists_the_valid_ones(kind: str) -> None:
    registry, _, lookup, _ = REGISTRIES[kind]
    message = f"unknown {kind} 'vcg'; expected one of {', '.join(registry)}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        lookup("vcg")


def test_mechanism_rejects_unknown_rules() -> None:
    q = np.full(3, 1 / 3)
    with pytest.raises(
        ValueError, match=r"unknown payment rule 'vcg'; expected one of none, affine_maximizer"
    ):
        Mechanism(q, "kl", 1.0, payment_rule="vcg")
    with pytest.raises(
        ValueError, match=r"unknown training rule 'rlhf'; expected one of sw_max, maxmin, nash"
    ):
        Mechanism(q, "kl", 1.0, training_rule="rlhf")


# --- training rules ---------------------------------------------------------------------------


def test_training_rule_functions_agree(training_rule: str, divergence: str, rng: np.random.Generator) -> None:
    """``solve``: distributions on the simplex at which ``residual`` <= 1e-9; for an additive
    rule its score functions' ``solve`` gives the same on the profile's scores, their
    ``kkt_residual`` <= 1e-10, and ``optimal_values`` the same optimal values. A rule that does
    not take the divergence says so when the mechanism is built."""
    rule = TRAINING_RULES[training_rule]
    if divergence not in rule.divergences:
        with pytest.raises(ValueError, match=f"training rule '{training_rule}' takes the divergences"):
            Mechanism(np.full(3, 1 / 3), divergence, 1.0, training_rule=rule)
        return
    for _ in range(10):
        m, n = int(rng.integers(2, 8)), int(rng.integers(1, 4))
        mechanism = Mechanism(
            random_pi_init(rng, m), divergence, float(10.0 ** rng.uniform(-2, 2)), training_rule=rule
        )
        rewards = rng.uniform(0.0, 1.0, size=(4, n, m))
        sizes = rng.integers(1, 5, size=(4, n)).astype(float)
        solution = rule.solve(mechanism, rewards, sizes)
        assert solution.pi.shape == (4, m)
        assert np.all(solution.pi >= 0.0)
        np.testing.assert_allclose(solution.pi.sum(axis=-1), 1.0, rtol=0, atol=1e-13)
        assert np.all(solution.status == CONVERGED)
        assert float(np.max(rule.residual(mechanism, solution, rewards, sizes))) <= 1e-9
        if rule.scores is None:
            assert not rule.additive
            continue
        scores = mechanism.scores(rewards, sizes)
        direct = rule.scores.solve(mechanism, scores)
        np.testing.assert_array_equal(direct.pi, solution.pi)
        assert float(np.max(rule.scores.kkt_residual(mechanism, direct, scores))) <= 1e-10
        values, status = rule.scores.optimal_values(mechanism, scores.copy())
        np.testing.assert_allclose(values, direct.value, rtol=1e-12, atol=1e-12)
        assert np.all(status == CONVERGED)


def test_payment_rules_built_on_eq_1_need_an_additive_training_rule() -> None:
    """MaxMin and Nash have no ASW_-i: their default payment is ``none``, and asking for one of
    the payment rules that needs eq. (1) is an error that says so."""
    q = np.full(3, 1 / 3)
    assert Mechanism(q, "kl", 1.0).payment_rule.name == "affine_maximizer"
    for rule in ("maxmin", "nash"):
        assert Mechanism(q, "kl", 1.0, training_rule=rule).payment_rule.name == "none"
        for payment in ("affine_maximizer", "intermediate_checkpoints", "early_stopped"):
            with pytest.raises(ValueError, match=f"payment rule '{payment}' needs an additive training rule"):
                Mechanism(q, "kl", 1.0, training_rule=rule, payment_rule=payment)


# --- normalisations ----------------------------------------------------------------------------


def test_file_normalizations() -> None:
    assert FILE_NORMALIZATIONS == (Normalization.SUM, Normalization.MAX)
    assert [n.value for n in Normalization] == ["sum", "max", "none"]
    assert Normalization("sum") is Normalization.SUM and Normalization.SUM == "sum"
    assert rlhf_mech.Normalization is Normalization


def test_the_normalization_fixture_is_a_file_normalization(normalization: Normalization) -> None:
    assert isinstance(normalization, Normalization)
    assert normalization in FILE_NORMALIZATIONS
    assert normalization.normalised


#: member -> (total of each row of ROWS, normalised ROWS, linear_total)
ROWS = np.array([[1.0, 3.0], [2.0, 2.0], [0.0, 0.5]])
EXPECTED = {
    Normalization.SUM: ([4.0, 4.0, 0.5], [[0.25, 0.75], [0.5, 0.5], [0.0, 1.0]], True),
    Normalization.MAX: ([3.0, 2.0, 0.5], [[1.0 / 3.0, 1.0], [1.0, 1.0], [0.0, 1.0]], False),
    Normalization.NONE: (None, ROWS, False),
}


@pytest.mark.parametrize("member", list(Normalization))
def test_normalization_total_and_normalise(member: Normalization) -> None:
    totals, normalised, linear_total = EXPECTED[member]
    assert member.linear_total is linear_total
    assert member.normalised is (totals is not None)
    if totals is None:
        with pytest.raises(ValueError, match=r"normalization 'none' has no total"):
            member.total(ROWS)
        assert member.normalise(ROWS) is ROWS
    else:
        np.testing.assert_array_equal(member.total(ROWS), totals)
        np.testing.assert_array_equal(member.total(ROWS[0]), totals[0])
        np.testing.assert_array_equal(member.normalise(ROWS), normalised)
        np.testing.assert_allclose(member.total(member.normalise(ROWS)), 1.0, rtol=0, atol=1e-15)


@pytest.mark.parametrize("member", list(Normalization))
def test_normalization_violation(member: Normalization, rng: np.random.Generator) -> None:
    """``rm >= 0`` for every member; the total within 1e-9 of 1 for ``sum`` and ``max``."""
    negative = np.array([0.7, -0.2, 0.5])
    assert member.violation(negative) == "reward of outcome 1 is -0.2; rewards must be >= 0"
    assert member.violation(negative, ("a", "b", "c")) == "reward of 'b' is -0.2; rewards must be >= 0"
    for row in random_rewards(rng, 20, 5, member if member.normalised else "sum"):
        assert member.violation(row) is None
    if not member.normalised:
        assert member.violation(np.array([3.0, 0.0, 7.5])) is None
        return
    phrase = "rewards sum to" if member is Normalization.SUM else "largest reward is"
    assert member.violation(np.array([0.2, 0.3, 0.6])) == (
        f"{phrase} {float(member.total(np.array([0.2, 0.3, 0.6])))!r}; "
        f"normalization {member.value!r} needs 1 (±1e-9)"
    )
    unit = member.normalise(np.array([0.2, 0.3, 0.5]))
    inside = unit * (1.0 + 0.5 * NORMALIZATION_TOL)
    outside = unit * (1.0 + 2.0 * NORMALIZATION_TOL)
    assert member.violation(inside) is None
    assert member.violation(outside) is not None
    assert f"normalization {member.value!r} needs 1" in member.violation(outside)
    assert member.violation(outside, tol=1e-6) is None


# --- scores ------------------------------------------------------------------------------------


def test_mechanism_scores_are_sizes_at_rewards_plus_offset(divergence: str, rng: np.random.Generator) -> None:
    """``s = sum_i w_i rm_i + offset`` (Definition 4.1), ``offset = -lambda * outcome_costs``."""
    for _ in range(20):
        game = random_game(rng)
        rw, w = game.rewards, game.sizes
        m = rw.shape[1]
        plain = game.mechanism(divergence)
        assert plain.score_offset is None
        np.testing.assert_array_equal(plain.scores(rw, w), w @ rw)
        costs = rng.random(m)
        priced = Mechanism(game.pi_init, divergence, game.lam, outcome_costs=costs)
        np.testing.assert_array_equal(priced.score_offset, -game.lam * costs)
        np.testing.assert_array_equal(priced.scores(rw, w), w @ rw + priced.score_offset)
        # a batch of G games: one (m,) row of scores per game
        batch_rw = np.stack([rw, rw[::-1], 2.0 * rw])
        batch_w = np.stack([w, w + 1.0, w[::-1]])
        expected = np.stack([batch_w[g] @ batch_rw[g] for g in range(3)]) + priced.score_offset
        np.testing.assert_allclose(priced.scores(batch_rw, batch_w), expected, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("lookup", [get_divergence, get_payment_rule, get_training_rule])
@pytest.mark.parametrize("wrong", [42, None, 3.5, object()])
def test_lookup_refuses_what_is_neither_a_name_nor_a_record(lookup, wrong) -> None:
    with pytest.raises(ValueError, match="expected one of"):
        lookup(wrong)
