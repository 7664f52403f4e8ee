"""Candidate-model games (issue #5): the argmax rule over trained models, files, output."""

from __future__ import annotations

import csv
import dataclasses
import json
from operator import attrgetter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rlhf_mech import SpecError, core, load_game, solve
from rlhf_mech import files as writer
from rlhf_mech.analysis import mixing_misreports
from rlhf_mech.analysis._internal import others_reward
from rlhf_mech.cli import app
from rlhf_mech.core import Game, Profile, candidate_game
from rlhf_mech.core._internal import minmax_scale
from rlhf_mech.files._internal import candidate_document

ROOT = Path(__file__).resolve().parents[1]
#: copies of ../shared/data (tests/data/reference/README.md)
REFERENCE = ROOT / "tests" / "data" / "reference"
runner = CliRunner()

GAME = """\
name: toy
reward_models: [helpful, harmless]
scale: none
candidates:
  - name: a
    scores: {helpful: 1.0, harmless: 0.0}
  - name: b
    scores: {helpful: 0.0, harmless: 1.0}
    divergence: 0.5
  - name: c
    scores: {helpful: 0.6, harmless: 0.6}
    divergence: 0.1
divergence: {lambda: 2.0}
payment: affine_maximizer
max_size: 10
groups:
  - name: g1
    size: 3
    preference: {helpful: 0.8, harmless: 0.2}
    report: {size: 6}
  - name: g2
    size: 2
    preference: {harmless: 1}
"""


def _toy(**changes) -> Game:
    args = dict(
        name="toy",
        candidates=("a", "b", "c"),
        reward_models=("helpful", "harmless"),
        raw_scores=np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.6]]),
        scale="none",
        divergences=np.array([0.0, 0.5, 0.1]),
        lam=2.0,
        payment_rule="affine_maximizer",
        group_names=("g1", "g2"),
        preferences=np.array([[0.8, 0.2], [0.0, 1.0]]),
        sizes=np.array([3.0, 2.0]),
    )
    args.update(changes)
    return candidate_game(**args)


def _brute_force(game: Game, reported_rewards: np.ndarray, reported_sizes: np.ndarray):
    """Chosen candidate, leave-one-out choices and payments by enumeration (eq. 1)."""
    cost = game.mechanism.lam * game.mechanism.outcome_costs
    totals = reported_sizes @ reported_rewards - cost
    chosen = int(np.argmax(totals))
    loo, payments = [], []
    for i in range(game.n_groups):
        others = totals - reported_sizes[i] * reported_rewards[i]
        loo.append(int(np.argmax(others)))
        payments.append(others.max() - others[chosen])
    return chosen, np.array(loo), np.array(payments)


# --- scaling and valuations -------------------------------------------------------------------


def test_minmax_scale_maps_each_reward_model_to_unit_interval():
    scores = np.array([[2.0, -1.0, 5.0], [4.0, -3.0, 5.0], [3.0, 1.0, 5.0]])
    scaled, constant = minmax_scale(scores)
    np.testing.assert_array_equal(scaled[:, 0], [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(scaled[:, 1], [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(scaled[:, 2], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(constant, [False, False, True])


def test_constant_reward_model_is_noted():
    game = _toy(raw_scores=np.array([[1.0, 0.3], [0.0, 0.3], [0.6, 0.3]]), scale="minmax")
    assert game.notes == ("reward model 'harmless' scores every candidate the same; scaled to 0",)
    np.testing.assert_array_equal(game.report_basis.scores[:, 1], 0.0)


def test_rewards_are_preference_combinations_of_scores():
    game = _toy()
    np.testing.assert_allclose(game.truth.rewards, [[0.8, 0.2, 0.6], [0.0, 1.0, 0.6]], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(game.truth.rewards, game.report_basis.rewards(game.truth.preferences))
    np.testing.assert_array_equal(game.mechanism.score_offset, [-0.0, -1.0, -0.2])
    assert game.mechanism.divergence.name == "none" and game.normalization == "none"


# --- the training rule and the payment --------------------------------------------------------


def test_divergence_cost_changes_the_choice():
    # Sizes (1, 5): totals a 0.8, b 5.2, c 3.6; lambda * 1.0 = 2 on b hands the choice to c.
    heavy = np.array([1.0, 5.0])
    cheap = _toy(divergences=np.zeros(3), sizes=heavy)
    costly = _toy(divergences=np.array([0.0, 1.0, 0.1]), sizes=heavy)
    assert solve(cheap).truthful.distribution.tolist() == [0.0, 1.0, 0.0]
    assert solve(costly).truthful.distribution.tolist() == [0.0, 0.0, 1.0]


def test_ties_go_to_the_first_candidate_in_file_order():
    twins = _toy(raw_scores=np.array([[0.5, 0.5], [0.5, 0.5], [0.1, 0.1]]), divergences=np.zeros(3))
    outcome = solve(twins).truthful
    assert outcome.distribution.tolist() == [1.0, 0.0, 0.0]
    assert outcome.leave_one_out_choices.tolist() == [0, 0]


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 4.0])
def test_payments_and_choices_match_enumeration(alpha):
    game = _toy()
    sizes = game.truth.sizes * np.array([alpha, 1.0])
    outcome = core.outcome(game.mechanism, game.truth, Profile(game.truth.rewards, sizes))
    chosen, loo, payments = _brute_force(game, game.truth.rewards, sizes)
    assert outcome.chosen == chosen
    assert outcome.leave_one_out_choices.tolist() == loo.tolist()
    np.testing.assert_allclose(outcome.payments, payments, rtol=0, atol=1e-12)


@st.composite
def candidate_games(draw):
    m = draw(st.integers(2, 6))
    k = draw(st.integers(1, 3))
    n = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    prefs = rng.uniform(0, 1, (n, k))
    prefs[rng.uniform(size=(n, k)) < 0.3] = 0.0
    prefs[np.arange(n), rng.integers(0, k, n)] += 0.1
    game = candidate_game(
        name="random",
        candidates=tuple(f"c{j}" for j in range(m)),
        reward_models=tuple(f"r{j}" for j in range(k)),
        raw_scores=rng.normal(size=(m, k)),
        scale="minmax",
        divergences=rng.uniform(0, 0.5, m) * (rng.uniform(size=m) < 0.5),
        lam=float(rng.uniform(0.1, 2.0)),
        payment_rule="affine_maximizer",
        group_names=tuple(f"g{i}" for i in range(n)),
        preferences=prefs,
        sizes=rng.integers(1, 10, n).astype(float),
    )
    return game, seed


@settings(max_examples=60, deadline=None)
@given(candidate_games())
def test_affine_maximizer_is_dsic_and_ir_over_candidates(drawn):
    # Proposition 4.4 over a finite set of models: truth is a best response, u >= 0, p >= 0.
    game, seed = drawn
    rng = np.random.default_rng(seed + 1)  # the misreports, replayable from the seed
    truthful = solve(game).truthful
    assert np.all(truthful.utilities >= -1e-12)
    assert np.all(truthful.payments >= -1e-12)
    basis = game.report_basis
    for _ in range(10):
        i = int(rng.integers(game.n_groups))
        reported_rewards, reported_sizes = game.truth.rewards.copy(), game.truth.sizes.copy()
        reported_sizes[i] = rng.uniform(0.2, 12.0)
        reported_rewards[i] = basis.rewards(rng.uniform(0, 1, len(basis.reward_models)))
        outcome = core.outcome(game.mechanism, game.truth, Profile(reported_rewards, reported_sizes))
        assert outcome.utilities[i] <= truthful.utilities[i] + 1e-9


def test_mixing_misreports_are_preference_mixtures():
    # Valuations are linear in the preference, so Strategy 2 (beta <= 1) mixes preferences.
    game = _toy()
    truth = game.truth
    others = others_reward(truth.rewards, truth.sizes, 0)
    betas = np.array([0.0, 0.3, 0.7, 1.0])
    reports = mixing_misreports(truth.rewards[0], truth.sizes[0], others, betas, game.normalization)
    mixed = betas[:, None] * truth.preferences[0] + (1 - betas[:, None]) * truth.preferences[1]
    np.testing.assert_allclose(reports.rewards, game.report_basis.rewards(mixed), atol=1e-15)
    assert not reports.adjusted.any()


# --- files ------------------------------------------------------------------------------------


def test_load_candidate_game(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(GAME)
    game = load_game(path)
    expected = _toy(reported_sizes=np.array([6.0, 2.0]), max_size=10.0)
    assert game.report_basis is not None  # a candidate-model game
    assert game.outcomes == ("a", "b", "c")
    for field in (
        "truth.rewards",
        "reports.rewards",
        "truth.sizes",
        "reports.sizes",
        "mechanism.outcome_costs",
        "truth.preferences",
    ):
        get = attrgetter(field)
        np.testing.assert_array_equal(get(game), get(expected), err_msg=field)
    assert game.mechanism.lam == 2.0 and game.max_size == 10.0 and game.misreporting_groups() == (0,)


ERRORS = [
    (
        "    scores: {helpful: 1.0, harmless: 0.0}\n",
        "    scores: {helpful: 1.0, harmful: 0.0}\n",
        6,
        "candidates[0].scores.harmful",
        "unknown reward model 'harmful'",
    ),
    (
        "    scores: {helpful: 1.0, harmless: 0.0}\n",
        "    scores: {helpful: 1.0}\n",
        6,
        "candidates[0].scores",
        "no score for reward model(s) 'harmless'",
    ),
    (
        "    scores: {helpful: 1.0, harmless: 0.0}\n",
        "    scores: {helpful: 1.0, harmless: -0.5}\n",
        6,
        "candidates[0].scores.harmless",
        "score -0.5 is negative; with scale: none",
    ),
    (
        "    divergence: 0.5\n",
        "    divergence: -0.5\n",
        9,
        "candidates[1].divergence",
        "must be >= 0, got -0.5",
    ),
    (
        "    divergence: 0.5\n",
        "    kl: 0.5\n",
        9,
        "candidates[1].kl",
        "unknown field (expected one of: name, scores, divergence)",
    ),
    ("  - name: c\n", "  - name: a\n", 10, "candidates[2].name", "duplicate candidate name 'a'"),
    (
        "    preference: {harmless: 1}\n",
        "    preference: {harmless: -1}\n",
        23,
        "groups[1].preference.harmless",
        "must be >= 0, got -1",
    ),
    (
        "    preference: {harmless: 1}\n",
        "    preference: {harmless: 0}\n",
        23,
        "groups[1].preference",
        "at least one positive weight",
    ),
    (
        "    report: {size: 6}\n",
        "    report: {size: 11}\n",
        20,
        "groups[0].report.size",
        "size 11.0 is above max_size 10.0",
    ),
    (
        "    report: {size: 6}\n",
        "    report: {reward: [1, 0, 0]}\n",
        20,
        "groups[0].report.reward",
        "unknown field (expected one of: preference, size)",
    ),
    ("scale: none\n", "", None, "scale", "required field is missing"),
    (
        "divergence: {lambda: 2.0}\n",
        "divergence: {kind: kl}\n",
        13,
        "divergence.kind",
        "unknown field (expected one of: lambda)",
    ),
]


@pytest.mark.parametrize(("old", "new", "line", "field", "message"), ERRORS)
def test_errors_name_file_line_and_field(tmp_path, old, new, line, field, message):
    assert old in GAME
    path = tmp_path / "bad.yaml"
    path.write_text(GAME.replace(old, new, 1))
    with pytest.raises(SpecError) as info:
        load_game(path)
    err = info.value
    assert (err.field, err.line) == (field, line or err.line)
    assert message in err.message
    assert str(err).startswith(f"{path}:{err.line}: {field}: ")


def test_cli_error_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(GAME.replace("preference: {harmless: 1}", "preference: {harmles: 1}"))
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().count("\n") == 0
    assert "groups[1].preference.harmles: unknown reward model 'harmles'" in result.stderr


def test_write_load_write_is_byte_identical(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(GAME)
    game = load_game(path)
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    writer.write_game(game, first, comment="a header")
    again = load_game(first)
    writer.write_game(again, second, comment="a header")
    assert first.read_bytes() == second.read_bytes()
    for field in (
        "truth.rewards",
        "reports.rewards",
        "reports.sizes",
        "mechanism.outcome_costs",
        "report_basis.raw_scores",
    ):
        get = attrgetter(field)
        np.testing.assert_array_equal(get(again), get(game), err_msg=field)


def test_writer_recovers_a_replaced_preference_report():
    # A replaced report is a whole Profile now: rewards and preferences change together, and
    # reports whose preferences are stale (rewards replaced alone) are refused by Game.
    game = _toy()
    basis = game.report_basis
    mixed = np.array([0.5, 0.5])
    reports = game.reports.with_report(0, basis.rewards(mixed), game.reports.sizes[0], mixed)
    stale = Profile(reports.rewards, reports.sizes, game.reports.preferences)
    with pytest.raises(ValueError, match=r"not `reports\.preferences` in the report basis"):
        dataclasses.replace(game, reports=stale)
    replaced = dataclasses.replace(game, reports=reports)
    data = candidate_document(replaced, basis).data
    report = data["groups"][0]["report"]["preference"]
    assert report == pytest.approx({"helpful": 0.5, "harmless": 0.5})


# --- output -----------------------------------------------------------------------------------


def test_solve_shows_chosen_and_leave_one_out_candidates(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(GAME)
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 0, result.output
    assert "candidate models" in result.stdout
    assert "without g1" in result.stdout and "without g2" in result.stdout
    assert "g1: values 0.8 helpful + 0.2 harmless" in result.stdout
    game = load_game(path)
    truthful = _brute_force(game, game.truth.rewards, game.truth.sizes)
    reported = _brute_force(game, game.reports.rewards, game.reports.sizes)
    data = json.loads(runner.invoke(app, ["solve", str(path), "--format", "json"]).stdout)["candidates"]
    for label, (chosen, loo, _) in (("truthful", truthful), ("reported", reported)):
        assert data[label]["chosen"] == game.outcomes[chosen]
        assert data[label]["leave_one_out"] == {
            g: game.outcomes[c] for g, c in zip(("g1", "g2"), loo, strict=True)
        }


# --- bundled games ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["paper/table2.yaml", "paper/table3.yaml", "rewardedsoups_news.yaml", "import_example/candidates.yaml"],
)
def test_bundled_candidate_games_load_and_are_canonical(tmp_path, name):
    game = load_game(ROOT / "games" / name)
    assert game.report_basis is not None  # a candidate-model game
    solution = solve(game)
    assert np.all(solution.truthful.utilities >= -1e-12)
    out = tmp_path / "again.yaml"
    writer.write_game(game, out)
    np.testing.assert_array_equal(load_game(out).truth.rewards, game.truth.rewards)


def test_rewardedsoups_game():
    game = load_game(ROOT / "games" / "rewardedsoups_news.yaml")
    assert len(game.outcomes) == 23 and game.outcomes[-2:] == ("init", "morl")
    assert game.report_basis.scale == "minmax"
    np.testing.assert_array_equal(game.report_basis.scores.min(axis=0), [0.0, 0.0])
    np.testing.assert_array_equal(game.report_basis.scores.max(axis=0), [1.0, 1.0])
    solution = solve(game)
    assert game.outcomes[int(np.argmax(solution.truthful.distribution))] == "soup-13"
    assert game.outcomes[int(np.argmax(solution.reported.distribution))] == "soup-18"
    assert (
        solution.gains[0] < 0 < solution.reported.group_valuations[0] - solution.truthful.group_valuations[0]
    )


def test_rewardedsoups_game_holds_the_source_numbers():
    with (REFERENCE / "rewardedsoups_llama7b_news_summary_front.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    game = load_game(ROOT / "games" / "rewardedsoups_news.yaml")
    expected = [
        [float(r["R1_gpt2_reward_summarization"]), float(r["R2_bart_faithful_summary_detector_1minus0"])]
        for r in rows
    ]
    np.testing.assert_array_equal(game.report_basis.raw_scores, expected)
