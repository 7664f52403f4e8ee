"""Guards of the file edge, the comparison and the fair rules (issue 27): each test fails under
a mutant of benchmarks/mutation.py that the module's own tests let through (tolerances probed
on both sides, boundary counts, error locations, the axis of a dominance test, ...)."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf_mech.core import Normalization
from rlhf_mech.files._prompt_tables import PromptColumns, TableError, checked_columns

REWARDS = np.array([[0.5, 0.5, 0.2, 0.3, 0.5], [1.0, 0.0, 0.0, 0.5, 0.5]])


def _checked(max_outcomes: int = 5, **fields):
    """Two prompts (2 and 3 outcomes) of two groups, ``fields`` replacing the defaults."""
    columns = {"group_names": ("a", "b"), "prompts": ("p0", "p1"), "offsets": np.array([0, 2, 5])}
    columns["rewards"] = REWARDS.copy()
    columns.update(fields)
    return checked_columns(PromptColumns(**columns), ("a", "b"), Normalization("sum"), 10, max_outcomes)


# --- tables of prompts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("excess", "accepted"), [(0.5e-9, True), (-0.5e-9, True), (2e-9, False), (-1e-7, False)]
)
def test_a_prompts_rewards_must_sum_to_one_within_1e_9(excess: float, accepted: bool) -> None:
    rewards = REWARDS.copy()
    rewards[1, 4] += excess
    if accepted:
        np.testing.assert_array_equal(_checked(rewards=rewards).rewards, rewards)  # kept as written
    else:
        with pytest.raises(TableError, match=r"^rewards: group 'b' on prompt 1: "):
            _checked(rewards=rewards)


@pytest.mark.parametrize("excess", [2.0**-31, -(2.0**-31)])  # 4.7e-10: sums exact in any order
def test_an_initial_distribution_within_1e_9_of_one_is_divided_by_its_sum(excess: float) -> None:
    initial = np.array([0.5, 0.5, 0.25, 0.25, 0.5 + excess])
    table = _checked(initial=initial)
    np.testing.assert_allclose(table.pi_init[2:], initial[2:] / initial[2:].sum(), rtol=0, atol=1e-15)
    total = 1.0 + excess
    assert table.notes == (f"initial distribution of prompts[1] divided by its sum {total!r} to sum to 1",)


@pytest.mark.parametrize("excess", [2.0**-28, -(2.0**-28), 2.0**-23])  # 3.7e-9, 1.2e-7
def test_an_initial_distribution_off_one_by_more_than_1e_9_is_refused(excess: float) -> None:
    initial = np.array([0.5, 0.5, 0.25, 0.25, 0.5 + excess])
    total = 1.0 + excess
    with pytest.raises(TableError) as err:
        _checked(initial=initial)
    assert (
        str(err.value) == f"initial: prompt 1: probabilities sum to {total!r}, not 1"
    )  # a number, no numpy repr


def test_a_prompt_without_outcomes_is_refused() -> None:
    with pytest.raises(TableError, match=r"^offsets: must grow from 0, by at least 1 a prompt"):
        _checked(prompts=("p0", "p1", "p2"), offsets=np.array([0, 2, 2, 5]))


@pytest.mark.parametrize("zero", [0, 1])
def test_a_prompt_weight_of_zero_is_refused(zero: int) -> None:
    weights = np.array([1.0, 1.0])
    weights[zero] = 0.0
    with pytest.raises(TableError, match=rf"^weights: prompt {zero}: weight 0.0; weights must be > 0"):
        _checked(weights=weights)


@pytest.mark.parametrize(("outcome", "prompt"), [(0, 0), (1, 0), (2, 1), (4, 1)])
def test_a_bad_reward_names_the_prompt_that_owns_its_outcome(outcome: int, prompt: int) -> None:
    """Outcomes 0-1 belong to prompt 0 and 2-4 to prompt 1 (offsets 0, 2, 5): the first
    outcome of a prompt is its own, not the previous prompt's last."""
    rewards = REWARDS.copy()
    rewards[0, outcome] = -0.25
    with pytest.raises(TableError, match=rf"^rewards: group 'a' on prompt {prompt}: "):
        _checked(rewards=rewards)


@pytest.mark.parametrize(("max_outcomes", "accepted"), [(6, True), (5, True), (4, False)])
def test_a_table_may_hold_exactly_the_largest_outcome_count(max_outcomes: int, accepted: bool) -> None:
    if accepted:
        assert _checked(max_outcomes).offsets.tolist() == [0, 2, 5]
    else:
        with pytest.raises(TableError, match=r"^offsets: more than 4 outcomes in all prompts together"):
            _checked(max_outcomes)
