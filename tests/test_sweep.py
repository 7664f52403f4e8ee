"""Sweeps of strategic reports (issue #3): batch = per-point reference, DSIC, Theorem 4.2."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import rlhf_mech
from rlhf_mech.analysis import mixing_misreports, polarise_misreports, polarise_rewards, sweep
from rlhf_mech.analysis._internal import family_misreports, others_reward, with_truth
from rlhf_mech.cli import app
from rlhf_mech.core import Game, Mechanism, Normalization, Profile, deviation, outcome
from rlhf_mech.core._internal import FILE_NORMALIZATIONS
from rlhf_mech.errors import RlhfMechError
from rlhf_mech.files._internal import read_reward

SUM = Normalization("sum")

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
    normalization: str | Normalization = "sum",
    costs: bool = False,
    reports: bool = False,
) -> Game:
    """Rewards U(0.05, 1)^m normalised (min rm > 0, s_i >= 2), sizes in 1..10, random pi_init."""
    rng = np.random.default_rng(seed)
    normalization = Normalization(normalization)
    rewards = normalization.normalise(rng.uniform(0.05, 1.0, (n, m)))
    sizes = rng.integers(1, 11, n).astype(float)
    reported_rewards, reported_sizes = rewards, sizes
    if reports:  # the others misreport too: the sweep holds their reports fixed
        reported_rewards = rewards[::-1].copy()
        reported_sizes = sizes + 1.0
    pi_init = rng.dirichlet(np.ones(m))
    return Game(
        name=f"random-{seed}",
        outcomes=tuple(f"x{j}" for j in range(m)),
        group_names=tuple(f"g{i}" for i in range(n)),
        mechanism=Mechanism(
            pi_init,
            divergence,
            lam,
            payment_rule="affine_maximizer",
            outcome_costs=rng.random(m) if costs else None,
        ),
        normalization=normalization,
        truth=Profile(rewards, sizes),
        reports=Profile(reported_rewards, reported_sizes),
    )


def reference(game: Game, group: int, reward: np.ndarray, size: float, rule: str):
    """One separate library call: the profile with group's report replaced."""
    reports = game.reports.with_report(group, reward, size)
    return outcome(game.mechanism.with_payment_rule(rule), game.truth, reports)


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


def test_batch_equals_mechanism_outcome_with_costs_and_max_normalisation(
    normalization: Normalization,
) -> None:
    game = random_game(7, normalization=normalization, costs=True)
    assert game.mechanism.score_offset is not None
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
    report = np.roll(game.truth.rewards[0], 2)
    result = sweep(game, "g0", "explicit", report_reward=report, report_size=7.5)
    assert result.parameters.tolist() == [0.0, 1.0]
    assert result.truthful_index == 0
    np.testing.assert_array_equal(result.reported_rewards[1], report)
    assert result.reported_sizes.tolist() == [game.truth.sizes[0], 7.5]
    assert_matches_reference(result, "affine_maximizer")


@pytest.mark.parametrize("chunk", [1, 40, 1 << 17])
def test_blocks_of_points_and_of_games_agree(chunk: int) -> None:
    """G games x P points in blocks of one game's points or of whole games: same numbers."""
    games = [random_game(seed) for seed in range(5)]
    epsilons = np.array([0.0, 1e-3, 1e-2, 0.05])
    rewards = np.stack([g.truth.rewards for g in games])
    sizes = np.stack([g.truth.sizes for g in games])
    reports, _ = polarise_rewards(rewards[:, 0], epsilons, SUM)
    # every game needs the same pi_init for one batch: use the first game's
    mechanism = Mechanism(games[0].mechanism.pi_init, "kl", 0.3)
    batch = Profile(rewards, sizes)
    out = deviation(mechanism, batch, batch, 0).outcomes(
        reports,
        np.repeat(sizes[:, :1], epsilons.size, axis=1),
        chunk_elements=chunk,
    )
    for g, game in enumerate(games):
        for k in range(epsilons.size):
            ref = outcome(
                mechanism,
                game.truth,
                Profile(np.vstack([reports[g, k], game.truth.rewards[1:]]), game.truth.sizes),
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
    normalization=st.sampled_from(FILE_NORMALIZATIONS),
)
def test_truth_maximises_utility_under_affine_maximizer(
    seed: int, n: int, m: int, divergence: str, lam: float, normalization: Normalization
) -> None:
    """Proposition 4.4 (DSIC): no family and no parameter beats truth by more than 1e-9."""
    game = random_game(seed, n, m, divergence, lam, normalization, reports=seed % 3 == 0)
    group = seed % n
    rng = np.random.default_rng(seed)
    report = normalization.normalise(rng.random(m))
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
    normalization=st.sampled_from(FILE_NORMALIZATIONS),
)
def test_polarising_beats_truth_without_payment(
    seed: int, n: int, m: int, divergence: str, lam: float, normalization: Normalization
) -> None:
    """Theorem 4.2: min rm_i > 0 and s_i >= 2 -> a small polarisation gains without payment."""
    game = random_game(seed, n, m, divergence, lam, normalization)
    group = seed % n
    true_reward = game.truth.rewards[group]
    assert true_reward.min() > 0 and np.unique(true_reward).size >= 2
    result = sweep(game, group, "polarise", [1e-4, 1e-3, 1e-2], payment_rule="none")
    # The theorem assumes pi > 0 everywhere; where pi(x) ~ 1e-16 the gain is below rounding.
    assume(result.distributions[result.truthful_index].min() > 1e-6)
    gain, _ = result.best_deviation(with_payment=False)
    assert gain > 1e-13, result.gains(with_payment=False)


def test_theorem_4_2_case_1_constant_reward_cannot_polarise() -> None:
    game = random_game(1)
    flat = game.truth.rewards.copy()
    flat[0] = 1.0 / game.n_outcomes
    game = dataclasses.replace(
        game, truth=Profile(flat, game.truth.sizes), reports=Profile(flat, game.reports.sizes)
    )
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
    assert any("the report of g1" in note for note in mixing.notes)
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
    rewards, sizes = game.truth.rewards, game.truth.sizes
    others = others_reward(rewards, sizes, 0)
    betas = np.linspace(0, 1, 101)
    reports = mixing_misreports(rewards[0], sizes[0], others, betas, SUM)
    assert not reports.adjusted.any()  # sums to 1 up to rounding: nothing to say
    np.testing.assert_allclose(reports.rewards.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    far = mixing_misreports(rewards[0], sizes[0], others, [4.0], SUM)
    assert far.adjusted[0] and far.rewards.min() == 0 and abs(far.rewards.sum() - 1) < 1e-12
    maxed = mixing_misreports(rewards[0], 1, others, [0.5], Normalization("max"))
    assert abs(maxed.rewards.max() - 1) < 1e-15


def test_mixing_blocks_agree_with_the_formula() -> None:
    rng = np.random.default_rng(0)
    reward, others = rng.dirichlet(np.ones(30_000)), rng.dirichlet(np.ones(30_000))
    betas = np.linspace(0, 1, 12)
    reports = mixing_misreports(reward, 2.0, others, betas, SUM)
    expected = betas[:, None] * reward + (1 - betas[:, None]) * others
    np.testing.assert_allclose(reports.rewards, expected, rtol=0, atol=1e-15)


def test_polarise_rewards_batched_equals_single() -> None:
    rng = np.random.default_rng(1)
    rewards = rng.dirichlet(np.ones(7), size=4)
    epsilons = np.array([0.0, 0.01, 0.5])
    batch, moved = polarise_rewards(rewards, epsilons, SUM)
    for g in range(4):
        single = polarise_misreports(rewards[g], 1.0, epsilons, SUM)
        np.testing.assert_array_equal(batch[g], single.rewards)
        np.testing.assert_array_equal(moved[g] < epsilons, single.adjusted)
    np.testing.assert_allclose(batch.sum(axis=-1), 1.0, rtol=0, atol=1e-15)
    assert batch.min() >= 0


def test_polarise_ties_go_to_the_first_outcome() -> None:
    reports, _ = polarise_rewards(np.array([0.1, 0.4, 0.1, 0.4]), np.array([0.05]), SUM)
    np.testing.assert_allclose(reports[0], [0.05, 0.45, 0.1, 0.4])
    maxed, _ = polarise_rewards(np.array([0.5, 1.0, 0.5]), np.array([0.1]), Normalization("max"))
    np.testing.assert_allclose(maxed[0], [0.4, 1.0, 0.5])


def test_with_truth() -> None:
    values, index = with_truth("mixing", [2.0, 0.5, 2.0])
    assert values.tolist() == [0.5, 1.0, 2.0] and index == 1


# --- input checks ---------------------------------------------------------------------------------
# The parameter lists and the choice of group and strategy are read by the command line
# (``rlhf_mech.cli``, whose public surface is the Typer ``app``): they are checked through
# ``rlhf-mech sweep``, on a game file that does not exist where the check must come first.

runner = CliRunner()


@pytest.fixture(scope="module")
def game_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``random_game(0)`` (three groups g0, g1, g2) as a game file."""
    path = tmp_path_factory.mktemp("sweep") / "random-0.yaml"
    rlhf_mech.write_game(random_game(0), path)
    return path


def _sweep_cli(game_file: Path, *args: str):
    return runner.invoke(app, ["sweep", str(game_file), *args])


def _parameters(game_file: Path, option: str, text: str) -> list[float]:
    """The parameters ``rlhf-mech sweep --group g0 OPTION TEXT`` sweeps (truth's value added)."""
    result = _sweep_cli(game_file, "--group", "g0", option, text, "--format", "json")
    assert result.exit_code == 0, result.output
    return [point["parameter"] for point in json.loads(result.stdout)["sweeps"][0]["points"]]


def test_parse_parameters(game_file: Path) -> None:
    assert _parameters(game_file, "--alpha", "0.2,0.5,1,1.5,2,3") == [0.2, 0.5, 1, 1.5, 2, 3]
    tenths = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert _parameters(game_file, "--beta", "0:1:0.1") == tenths
    assert _parameters(game_file, "--epsilon", " 0.5 ") == [0.0, 0.5]  # truth (epsilon = 0) added
    assert _parameters(game_file, "--beta", "1:2:0.3") == [1.0, 1.3, 1.6, 1.9]


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
def test_parse_parameters_rejects(text: str, message: str, tmp_path: Path) -> None:
    result = _sweep_cli(tmp_path / "missing.yaml", "--group", "g0", "--alpha", text)
    assert result.exit_code == 2
    assert "--alpha" in result.stderr
    assert message in result.stderr


def test_family_domains() -> None:
    game = random_game(0)
    with pytest.raises(RlhfMechError, match="alpha must be >= 0"):
        sweep(game, 0, "size", [-0.5])
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
        ("0.5,0.6,0.1", "rewards sum to 1.2"),  # Normalization.violation's wording
        ("-0.5,1,0.5", ">= 0"),
        ("a,b,c", "cannot read"),
        (str(tmp_path / "missing.csv"), "cannot read"),
    ]:
        with pytest.raises(RlhfMechError, match=message):
            read_reward(text, game)


def test_request_checks_options_before_work(game_file: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"  # the options are checked before the file is read
    for args, message in [
        (["--alpha", "2"], "exactly one of --group NAME and --all-groups"),
        (["--group", "a", "--all-groups", "--alpha", "2"], "exactly one of --group"),
        (["--group", "a", "--alpha", "2", "--beta", "2"], "two strategies at once: --alpha and --beta"),
        (["--group", "a"], "no strategy"),
        (["--group", "a", "--report-size=-1"], "--report-size"),
    ]:
        result = _sweep_cli(missing, *args)
        assert result.exit_code == 2, args
        assert message in result.stderr, (args, result.stderr)
    explicit = _sweep_cli(game_file, "--group", "g0", "--report-size", "4", "--format", "json")
    assert explicit.exit_code == 0, explicit.output
    data = json.loads(explicit.stdout)["sweeps"][0]
    assert data["strategy"] == "explicit" and data["points"][1]["report"]["size"] == 4.0
    every = _sweep_cli(game_file, "--all-groups", "--beta", "0:2:0.5", "--format", "json")
    assert every.exit_code == 0, every.output
    assert sum(len(sweep["points"]) for sweep in json.loads(every.stdout)["sweeps"]) == 15
