"""Misreport families (section 5, Strategies 1 and 2; proof of Theorem 4.2, appendix B).

Each family must contain truth at its ``FAMILIES[name].truthful`` parameter, produce reports in the reward
domain of section 2 for the game's normalisation, and flag in ``adjusted`` exactly the
reports that were clipped, renormalised or capped.
"""

from __future__ import annotations

import numpy as np
import pytest
from cases import random_rewards
from hypothesis import given, settings
from hypothesis import strategies as st

from rlhf_mech.analysis import FAMILIES, mixing_misreports, polarise_misreports, size_misreports
from rlhf_mech.analysis._internal import others_reward
from rlhf_mech.core import Normalization
from rlhf_mech.core._internal import FILE_NORMALIZATIONS

#: The game files' tolerance for "sums to 1" / "max is 1" (section 2).
TOL = 1e-9

positive_rows = st.lists(st.floats(0.0, 1.0), min_size=2, max_size=6).filter(lambda r: max(r) > 0.01)


def _valid(rewards: np.ndarray, normalization: Normalization) -> None:
    assert np.all(np.isfinite(rewards))
    assert np.all(rewards >= 0.0)
    # sum_x rm(x) = 1 or max_x rm(x) = 1 (section 2), within the tolerance a mix is kept as computed
    np.testing.assert_allclose(normalization.total(rewards), 1.0, rtol=0, atol=TOL)


def test_truthful_parameters() -> None:
    assert FAMILIES["size"].truthful == 1.0
    assert FAMILIES["mixing"].truthful == 1.0
    assert FAMILIES["polarise"].truthful == 0.0


def test_each_family_contains_truth_at_its_truthful_parameter(normalization: Normalization) -> None:
    """The report at the truthful parameter is the true type, bit for bit, and not adjusted."""
    rng = np.random.default_rng(5)
    for _ in range(300):
        m = int(rng.integers(2, 8))
        rm, other = random_rewards(rng, 2, m, normalization)
        w = float(rng.integers(1, 10))
        families = {
            "size": size_misreports(rm, w, np.array([0.5, FAMILIES["size"].truthful, 2.0])),
            "mixing": mixing_misreports(
                rm, w, other, np.array([0.0, FAMILIES["mixing"].truthful]), normalization
            ),
            "polarise": polarise_misreports(
                rm, w, np.array([FAMILIES["polarise"].truthful, 0.1]), normalization
            ),
        }
        for name, family in families.items():
            assert family.family == name
            k = int(np.flatnonzero(family.parameters == FAMILIES[name].truthful)[0])
            assert not family.adjusted[k], name
            assert family.sizes[k] == w, name
            np.testing.assert_array_equal(family.rewards[k], rm, err_msg=name)


def test_size_family() -> None:
    """Strategy 1: ``(rm_i, alpha w_i)``; nothing to adjust."""
    rm = np.array([0.2, 0.3, 0.5])
    alphas = np.array([0.5, 1.0, 1.5, 3.0])
    family = size_misreports(rm, 2.0, alphas)
    np.testing.assert_array_equal(family.sizes, [1.0, 2.0, 3.0, 6.0])
    np.testing.assert_array_equal(family.rewards, np.broadcast_to(rm, (4, 3)))
    np.testing.assert_array_equal(family.parameters, alphas)
    assert not family.adjusted.any()


def test_mixing_reports_valid_and_flagged_exactly(normalization: Normalization) -> None:
    """Strategy 2: ``beta rm_i + (1 - beta) rm_-i``; a report is flagged iff it had an entry
    below 0 (clipped) or, for ``max``, a maximum off 1 by more than 1e-9 (rescaled); an
    unflagged report is the mix itself, a flagged one the clipped and rescaled mix."""
    rng = np.random.default_rng(6)
    flagged = 0
    for _ in range(300):
        m = int(rng.integers(2, 7))
        rm, other = random_rewards(rng, 2, m, normalization)
        betas = rng.uniform(-1.0, 3.0, size=8)
        family = mixing_misreports(rm, 1.0, other, betas, normalization)
        _valid(family.rewards, normalization)
        mixed = betas[:, None] * rm + (1.0 - betas[:, None]) * other
        clipped = np.any(mixed < 0.0, axis=1)
        rescaled = np.abs(mixed.max(axis=1) - 1.0) > TOL if normalization == "max" else np.zeros(8, bool)
        expected = clipped | rescaled
        np.testing.assert_array_equal(family.adjusted, expected)
        np.testing.assert_allclose(family.rewards[~expected], mixed[~expected], rtol=0, atol=1e-15)
        fixed = normalization.normalise(np.maximum(mixed[expected], 0.0))
        np.testing.assert_allclose(family.rewards[expected], fixed, rtol=0, atol=1e-15)
        np.testing.assert_array_equal(family.sizes, np.ones(8))
        flagged += int(expected.sum())
    assert flagged > 100


def test_mixing_sum_within_unit_interval_is_never_flagged() -> None:
    """For beta in [0, 1] a ``sum`` mix is a convex combination: valid, nothing to adjust
    (a renormalisation by a sum that is 1 to rounding is not an adjustment)."""
    total = Normalization("sum")
    rng = np.random.default_rng(7)
    for _ in range(300):
        m = int(rng.integers(2, 7))
        rm, other = random_rewards(rng, 2, m, "sum")
        family = mixing_misreports(rm, 1.0, other, rng.uniform(0.0, 1.0, size=6), total)
        assert not family.adjusted.any()
        _valid(family.rewards, total)


@settings(max_examples=150, deadline=None)
@given(
    rm=positive_rows,
    other=positive_rows,
    beta=st.floats(-2.0, 4.0),
    normalization=st.sampled_from(FILE_NORMALIZATIONS),
)
def test_mixing_reports_stay_in_the_reward_domain(rm, other, beta, normalization) -> None:
    m = min(len(rm), len(other))
    rm = normalization.normalise(np.array(rm[:m]))
    other = normalization.normalise(np.array(other[:m]))
    if not (np.isfinite(rm).all() and np.isfinite(other).all()):
        return
    family = mixing_misreports(rm, 2.0, other, np.array([beta]), normalization)
    mixed = beta * rm + (1.0 - beta) * other
    if np.all(mixed <= 0.0):  # no valid rescaling exists; not a report a sweep can make
        return
    _valid(family.rewards, normalization)


def test_polarise_moves_eps_and_flags_caps(normalization: Normalization) -> None:
    """Theorem 4.2's report: ``d = min(eps, rm(least))``, ``+d`` at the argmax (sum only),
    ``-d`` at the argmin; flagged iff ``d < eps``."""
    rng = np.random.default_rng(8)
    for _ in range(300):
        m = int(rng.integers(2, 7))
        rm = random_rewards(rng, 1, m, normalization)[0]
        eps = np.concatenate([[0.0], rng.uniform(0.0, 0.6, size=5)])
        family = polarise_misreports(rm, 3.0, eps, normalization)
        _valid(family.rewards, normalization)
        most, least = int(np.argmax(rm)), int(np.argmin(rm))
        d = np.minimum(eps, rm[least]) if rm[most] != rm[least] else np.zeros_like(eps)
        expected = np.repeat(rm[None, :], eps.size, axis=0)
        expected[:, least] -= d
        if normalization == "sum":
            expected[:, most] += d
        np.testing.assert_allclose(family.rewards, expected, rtol=0, atol=1e-15)
        np.testing.assert_array_equal(family.adjusted, d < eps)
        np.testing.assert_array_equal(family.sizes, np.full(eps.size, 3.0))


def test_polarise_ties_go_to_the_first_outcome() -> None:
    family = polarise_misreports(np.array([0.1, 0.4, 0.1, 0.4]), 1.0, np.array([0.05]), Normalization("sum"))
    np.testing.assert_allclose(family.rewards[0], [0.05, 0.45, 0.1, 0.4], rtol=0, atol=1e-16)


def test_polarise_constant_reward_is_left_unchanged() -> None:
    """``s_i = 1`` (Theorem 4.2 case 1): no most or least preferred outcome; d = 0 < eps."""
    family = polarise_misreports(np.full(4, 0.25), 1.0, np.array([0.0, 0.1]), Normalization("sum"))
    np.testing.assert_array_equal(family.rewards, np.full((2, 4), 0.25))
    np.testing.assert_array_equal(family.adjusted, [False, True])


def test_polarise_needs_a_normalised_reward() -> None:
    with pytest.raises(ValueError, match=r"polarisation needs a 'sum' or 'max' normalised reward"):
        polarise_misreports(np.array([0.2, 0.8]), 1.0, np.array([0.1]), Normalization("none"))


def test_others_reward_is_the_size_weighted_mean_of_the_others() -> None:
    rewards = np.array([[0.2, 0.8], [0.6, 0.4], [0.0, 1.0]])
    sizes = np.array([5.0, 1.0, 3.0])
    np.testing.assert_allclose(others_reward(rewards, sizes, 0), (rewards[1] + 3.0 * rewards[2]) / 4.0)
    np.testing.assert_array_equal(others_reward(rewards[:2], sizes[:2], 0), rewards[1])
    with pytest.raises(ValueError, match=r"mixing needs at least one other group"):
        others_reward(rewards[:1], sizes[:1], 0)


def test_normalise() -> None:
    rows = np.array([[1.0, 3.0], [2.0, 2.0]])
    np.testing.assert_array_equal(Normalization("sum").normalise(rows), [[0.25, 0.75], [0.5, 0.5]])
    np.testing.assert_array_equal(Normalization("max").normalise(rows), [[1.0 / 3.0, 1.0], [1.0, 1.0]])
    np.testing.assert_array_equal(Normalization("none").normalise(rows), rows)
