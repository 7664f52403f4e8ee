"""Sweeps of strategic reports (issue #3): batch = per-point reference, DSIC, Theorem 4.2."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rlhf_mech.errors import RlhfMechError
from rlhf_mech.game import Game
from rlhf_mech.mechanism import mechanism_outcome
from rlhf_mech.strategies import (
    mixing_misreports,
    others_reward,
    polarise_misreports,
    polarise_rewards,
    with_truth,
)
from rlhf_mech.sweep import (
    SweepRequest,
    deviation_outcomes,
    family_misreports,
    parse_parameters,
    read_reward,
    sweep,
)

FAMILIES = {
    "size": [0.2, 0.5, 1.5, 2.0, 3.0],
    "mixing": [-0.5, 0.0, 0.5, 0.8, 1.2, 1.5, 2.0, 3.0],
    "polarise": [1e-3, 1e-2, 0.05, 0.1, 0.5],
}


def random_game(
    seed: int,
    n: int = 3,
    m: int = 6,
    divergence: str = "kl",
    lam: float = 0.3,
    normalization: str = "sum",
    costs: bool = False,
    reports: bool = False,
) -> Game:
    """Rewards U(0.05, 1)^m normalised (min rm > 0, s_i >= 2), sizes in 1..10, random pi_init."""
    rng = np.random.default_rng(seed)
    rewards = rng.uniform(0.05, 1.0, (n, m))
    rewards /= rewards.sum(axis=1, keepdims=True) if normalization == "sum" else rewards.max(axis=1)[:, None]
    sizes = rng.integers(1, 11, n).astype(float)
    reported_rewards, reported_sizes = rewards, sizes
    if reports:  # the others misreport too: the sweep holds their reports fixed
        reported_rewards = rewards[::-1].copy()
        reported_sizes = sizes + 1.0
    return Game(
        name=f"random-{seed}",
        outcomes=tuple(f"x{j}" for j in range(m)),
        pi_init=rng.dirichlet(np.ones(m)),
        normalization=normalization,
        divergence=divergence,
        lam=lam,
        payment_rule="affine_maximizer",
        group_names=tuple(f"g{i}" for i in range(n)),
        rewards=rewards,
        sizes=sizes,
        reported_rewards=reported_rewards,
        reported_sizes=reported_sizes,
        outcome_costs=rng.random(m) if costs else None,
    )


def reference(game: Game, group: int, reward: np.ndarray, size: float, rule: str):
    """One separate library call: the profile with group's report replaced."""
    rewards = game.reported_rewards.copy()
    sizes = game.reported_sizes.copy()
    rewards[group], sizes[group] = reward, size
    return mechanism_outcome(
        game.rewards,
        game.sizes,
        rewards,
        sizes,
        game.pi_init,
        game.divergence,
        game.lam,
        rule,
        game.score_offset,
    )


def assert_matches_reference(result, rule: str) -> None:
    game, i = result.game, result.group
    for k in range(result.parameters.size):
        ref = reference(game, i, result.reported_rewards[k], result.reported_sizes[k], rule)
        np.testing.assert_allclose(result.distributions[k], ref.distribution, rtol=0, atol=1e-12)
        assert abs(result.valuations[k] - ref.valuations[i]) <= 1e-12
        assert abs(result.group_valuations[k] - ref.group_valuations[i]) <= 1e-12
        assert abs(result.payments[k] - ref.payments[i]) <= 1e-12
        assert abs(result.utilities[k] - ref.utilities[i]) <= 1e-12
        assert abs(result.social_welfare[k] - ref.social_welfare) <= 1e-12


# --- batch = separate calls ----------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("divergence", ["kl", "chi2", "tv", "hellinger"])
def test_batch_equals_mechanism_outcome(family: str, divergence: str) -> None:
    for seed in range(3):
        game = random_game(seed, divergence=divergence, reports=seed == 2)
        result = sweep(game, seed % game.n_groups, family, FAMILIES[family])
        assert result.converged
        assert_matches_reference(result, "affine_maximizer")


@pytest.mark.parametrize("normalization", ["sum", "max"])
def test_batch_equals_mechanism_outcome_with_costs_and_max_normalisation(normalization: str) -> None:
    game = random_game(7, normalization=normalization, costs=True)
    assert game.score_offset is not None
    for family, parameters in FAMILIES.items():
        assert_matches_reference(sweep(game, 1, family, parameters), "affine_maximizer")


def test_batch_equals_mechanism_outcome_without_payment() -> None:
    game = random_game(3)
    result = sweep(game, 0, "mixing", FAMILIES["mixing"], payment_rule="none")
    assert_matches_reference(result, "none")
    assert np.all(result.payments == 0)
    np.testing.assert_array_equal(result.utilities, result.group_valuations)


def test_explicit_report_equals_mechanism_outcome() -> None:
    game = random_game(4)
    report = np.roll(game.rewards[0], 2)
    result = sweep(game, "g0", "explicit", report_reward=report, report_size=7.5)
    assert result.parameters.tolist() == [0.0, 1.0]
    assert result.truthful_index == 0
    np.testing.assert_array_equal(result.reported_rewards[1], report)
    assert result.reported_sizes.tolist() == [game.sizes[0], 7.5]
    assert_matches_reference(result, "affine_maximizer")


@pytest.mark.parametrize("chunk", [1, 40, 1 << 17])
def test_blocks_of_points_and_of_games_agree(chunk: int) -> None:
    """G games x P points in blocks of one game's points or of whole games: same numbers."""
    games = [random_game(seed) for seed in range(5)]
    epsilons = np.array([0.0, 1e-3, 1e-2, 0.05])
    rewards = np.stack([g.rewards for g in games])
    sizes = np.stack([g.sizes for g in games])
    reports, _ = polarise_rewards(rewards[:, 0], epsilons, "sum")
    # every game needs the same pi_init for one batch: use the first game's
    pi_init = games[0].pi_init
    out = deviation_outcomes(
        rewards,
        sizes,
        rewards,
        sizes,
        0,
        reports,
        np.repeat(sizes[:, :1], epsilons.size, axis=1),
        pi_init,
        "kl",
        0.3,
        chunk_elements=chunk,
    )
    for g, game in enumerate(games):
        for k in range(epsilons.size):
            ref = mechanism_outcome(
                game.rewards,
                game.sizes,
                np.vstack([reports[g, k], game.rewards[1:]]),
                game.sizes,
                pi_init,
                "kl",
                0.3,
            )
            assert abs(out.utilities[g, k] - ref.utilities[0]) <= 1e-12
            assert abs(out.payments[g, k] - ref.payments[0]) <= 1e-12
            assert abs(out.social_welfare[g, k] - ref.social_welfare) <= 1e-12


def test_progress_reports_every_block() -> None:
    calls: list[tuple[int, int]] = []
    game = random_game(0, m=20_000)
    sweep(game, 0, "size", np.linspace(0.5, 2, 30), on_progress=lambda d, t: calls.append((d, t)))
    assert len(calls) > 1
    assert calls[-1] == (31, 31)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


# --- the paper's claims ----------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 5),
    m=st.integers(2, 12),
    divergence=st.sampled_from(["kl", "chi2", "tv", "hellinger", "reverse_kl", "js"]),
    lam=st.sampled_from([0.05, 0.3, 1.0, 5.0]),
    normalization=st.sampled_from(["sum", "max"]),
)
def test_truth_maximises_utility_under_affine_maximizer(
    seed: int, n: int, m: int, divergence: str, lam: float, normalization: str
) -> None:
    """Proposition 4.4 (DSIC): no family and no parameter beats truth by more than 1e-9."""
    game = random_game(seed, n, m, divergence, lam, normalization, reports=seed % 3 == 0)
    group = seed % n
    rng = np.random.default_rng(seed)
    report = rng.random(m)
    report /= report.sum() if normalization == "sum" else report.max()
    runs = [sweep(game, group, family, parameters) for family, parameters in FAMILIES.items()]
    runs.append(sweep(game, group, "explicit", report_reward=report, report_size=float(rng.uniform(0.5, 12))))
    for result in runs:
        truth = result.utilities[result.truthful_index]
        assert np.all(result.utilities <= truth + 1e-9), (result.family, result.gains())
        assert result.truth_is_optimal()
        assert np.all(result.payments >= -1e-9)  # Proposition 4.4: p >= 0
        assert truth >= -1e-9  # IR


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 5),
    m=st.integers(2, 12),
    divergence=st.sampled_from(["kl", "hellinger", "reverse_kl", "js"]),
    lam=st.sampled_from([0.1, 1.0, 5.0]),
    normalization=st.sampled_from(["sum", "max"]),
)
def test_polarising_beats_truth_without_payment(
    seed: int, n: int, m: int, divergence: str, lam: float, normalization: str
) -> None:
    """Theorem 4.2: min rm_i > 0 and s_i >= 2 -> a small polarisation gains without payment."""
    game = random_game(seed, n, m, divergence, lam, normalization)
    group = seed % n
    assert game.rewards[group].min() > 0 and np.unique(game.rewards[group]).size >= 2
    result = sweep(game, group, "polarise", [1e-4, 1e-3, 1e-2], payment_rule="none")
    # The theorem assumes pi > 0 everywhere; where pi(x) ~ 1e-16 the gain is below rounding.
    assume(result.distributions[result.truthful_index].min() > 1e-6)
    gain, _ = result.best_deviation(with_payment=False)
    assert gain > 1e-13, result.gains(with_payment=False)


def test_theorem_4_2_case_1_constant_reward_cannot_polarise() -> None:
    game = random_game(1)
    flat = game.rewards.copy()
    flat[0] = 1.0 / game.n_outcomes
    game = Game(**{**game.__dict__, "rewards": flat, "reported_rewards": flat})
    result = sweep(game, 0, "polarise", [0.01, 0.1], payment_rule="none")
    assert np.all(result.gains(with_payment=False) == 0)
    assert any("s_i = 1" in note for note in result.notes)


# --- results and verdict helpers ---------------------------------------------------------------


def test_truth_is_always_included_and_sorted() -> None:
    game = random_game(0)
    result = sweep(game, 0, "size", [3, 0.5, 2])
    assert result.parameters.tolist() == [0.5, 1.0, 2.0, 3.0]
    assert result.truthful_index == 1
    assert sweep(game, 0, "size", [1.0, 2.0]).parameters.tolist() == [1.0, 2.0]
    only_truth = sweep(game, 0, "polarise", [])
    assert only_truth.parameters.tolist() == [0.0]
    assert only_truth.best_deviation() is None and only_truth.truth_is_optimal()


def test_is_best_marks_ties_and_the_lowest_payment() -> None:
    game = random_game(0)
    result = sweep(game, 0, "size", [0.5, 2.0])
    assert result.is_best("utilities")[result.truthful_index]
    assert result.is_best("payments")[0]  # the smallest reported size pays least
    capped = sweep(game, 0, "polarise", [5.0, 6.0])  # both capped at rm(least): a tie
    assert capped.is_best("group_valuations")[1:].all()


def test_notes_say_what_was_adjusted() -> None:
    game = random_game(2, n=2)
    mixing = sweep(game, 0, "mixing", [0.5, 3.0])
    assert mixing.clipped.tolist() == [False, False, True]
    assert any("g1's report" in note for note in mixing.notes)
    assert any("beta = 3" in note and "clipped to 0" in note for note in mixing.notes)
    size = sweep(game, 0, "size", [0.37])
    assert any("real-valued" in note for note in size.notes)
    polarise = sweep(game, 0, "polarise", [1e-3, 0.9])
    assert polarise.clipped.tolist() == [False, False, True]
    assert any("capped" in note for note in polarise.notes)
    three = sweep(random_game(2, n=3), 0, "mixing", [0.5])
    assert any("size-weighted mean" in note for note in three.notes)


def test_keep_distributions_false() -> None:
    result = sweep(random_game(0), 0, "size", [2.0], keep_distributions=False)
    assert result.distributions is None
    assert result.utilities.shape == (2,)


# --- strategies ----------------------------------------------------------------------------------


def test_mixing_flags_only_real_adjustments() -> None:
    game = random_game(5, n=2, m=50)
    others = others_reward(game.rewards, game.sizes, 0)
    betas = np.linspace(0, 1, 101)
    reports = mixing_misreports(game.rewards[0], game.sizes[0], others, betas, "sum")
    assert not reports.adjusted.any()  # sums to 1 up to rounding: nothing to say
    np.testing.assert_allclose(reports.rewards.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    far = mixing_misreports(game.rewards[0], game.sizes[0], others, [4.0], "sum")
    assert far.adjusted[0] and far.rewards.min() == 0 and abs(far.rewards.sum() - 1) < 1e-12
    maxed = mixing_misreports(game.rewards[0], 1, others, [0.5], "max")
    assert abs(maxed.rewards.max() - 1) < 1e-15


def test_mixing_blocks_agree_with_the_formula() -> None:
    rng = np.random.default_rng(0)
    reward, others = rng.dirichlet(np.ones(30_000)), rng.dirichlet(np.ones(30_000))
    betas = np.linspace(0, 1, 12)
    reports = mixing_misreports(reward, 2.0, others, betas, "sum")
    expected = betas[:, None] * reward + (1 - betas[:, None]) * others
    np.testing.assert_allclose(reports.rewards, expected, rtol=0, atol=1e-15)


def test_polarise_rewards_batched_equals_single() -> None:
    rng = np.random.default_rng(1)
    rewards = rng.dirichlet(np.ones(7), size=4)
    epsilons = np.array([0.0, 0.01, 0.5])
    batch, moved = polarise_rewards(rewards, epsilons, "sum")
    for g in range(4):
        single = polarise_misreports(rewards[g], 1.0, epsilons, "sum")
        np.testing.assert_array_equal(batch[g], single.rewards)
        np.testing.assert_array_equal(moved[g] < epsilons, single.adjusted)
    np.testing.assert_allclose(batch.sum(axis=-1), 1.0, rtol=0, atol=1e-15)
    assert batch.min() >= 0


def test_polarise_ties_go_to_the_first_outcome() -> None:
    reports, _ = polarise_rewards(np.array([0.1, 0.4, 0.1, 0.4]), np.array([0.05]), "sum")
    np.testing.assert_allclose(reports[0], [0.05, 0.45, 0.1, 0.4])
    maxed, _ = polarise_rewards(np.array([0.5, 1.0, 0.5]), np.array([0.1]), "max")
    np.testing.assert_allclose(maxed[0], [0.4, 1.0, 0.5])


def test_with_truth() -> None:
    values, index = with_truth("mixing", [2.0, 0.5, 2.0])
    assert values.tolist() == [0.5, 1.0, 2.0] and index == 1


# --- input checks ---------------------------------------------------------------------------------


def test_parse_parameters() -> None:
    assert parse_parameters("0.2,0.5,1,1.5,2,3").tolist() == [0.2, 0.5, 1, 1.5, 2, 3]
    assert parse_parameters("0:1:0.1").tolist() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert parse_parameters(" 0.5 ").tolist() == [0.5]
    assert parse_parameters("1:2:0.3").tolist() == [1.0, 1.3, 1.6, 1.9]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0.2,abc", "cannot read"),
        ("", "cannot read"),
        ("1:2", "cannot read"),
        ("1:0:0.1", "start <= stop"),
        ("0:1:0", "step > 0"),
        ("0:1e9:1e-3", "at most"),
        ("1,nan", "finite"),
    ],
)
def test_parse_parameters_rejects(text: str, message: str) -> None:
    with pytest.raises(RlhfMechError, match=message):
        parse_parameters(text, "--alpha")


def test_family_domains() -> None:
    game = random_game(0)
    with pytest.raises(RlhfMechError, match="alpha must be > 0"):
        sweep(game, 0, "size", [0.0])
    with pytest.raises(RlhfMechError, match="epsilon must be >= 0"):
        sweep(game, 0, "polarise", [-0.1])
    with pytest.raises(RlhfMechError, match="no group named 'nobody'; the groups are g0, g1, g2"):
        sweep(game, "nobody", "size", [2.0])
    with pytest.raises(RlhfMechError, match="outside"):
        sweep(game, 5, "size", [2.0])
    solo = random_game(0, n=1)
    with pytest.raises(RlhfMechError, match="at least one other group"):
        sweep(solo, 0, "mixing", [2.0])
    with pytest.raises(RlhfMechError, match="unknown misreport family"):
        family_misreports(game, 0, "bribe", [1.0])


def test_read_reward(tmp_path) -> None:
    game = random_game(0, m=3)
    assert read_reward("0.2,0.3,0.5", game).tolist() == [0.2, 0.3, 0.5]
    np.savetxt(tmp_path / "r.csv", [[0.5, 0.25, 0.25]], delimiter=",")
    assert read_reward(str(tmp_path / "r.csv"), game).tolist() == [0.5, 0.25, 0.25]
    np.save(tmp_path / "r.npy", np.array([0.0, 0.0, 1.0]))
    assert read_reward(str(tmp_path / "r.npy"), game).tolist() == [0.0, 0.0, 1.0]
    for text, message in [
        ("0.5,0.5", "expected 3 rewards"),
        ("0.5,0.6,0.1", "sum is 1.2"),
        ("-0.5,1,0.5", ">= 0"),
        ("a,b,c", "cannot read"),
        (str(tmp_path / "missing.csv"), "cannot read"),
    ]:
        with pytest.raises(RlhfMechError, match=message):
            read_reward(text, game)


def test_request_checks_options_before_work() -> None:
    with pytest.raises(RlhfMechError, match="exactly one of --group NAME and --all-groups"):
        SweepRequest.from_options(group=None, all_groups=False, alpha="2")
    with pytest.raises(RlhfMechError, match="exactly one of --group"):
        SweepRequest.from_options(group="a", all_groups=True, alpha="2")
    with pytest.raises(RlhfMechError, match="two strategies at once: --alpha and --beta"):
        SweepRequest.from_options(group="a", all_groups=False, alpha="2", beta="2")
    with pytest.raises(RlhfMechError, match="no strategy"):
        SweepRequest.from_options(group="a", all_groups=False)
    with pytest.raises(RlhfMechError, match="--report-size"):
        SweepRequest.from_options(group="a", all_groups=False, report_size=-1.0)
    request = SweepRequest.from_options(group="a", all_groups=False, report_size=4.0)
    assert request.family == "explicit" and request.report_size == 4.0
    game = random_game(0)
    assert SweepRequest.from_options(group=None, all_groups=True, beta="0:2:0.5").points(game) == 15
