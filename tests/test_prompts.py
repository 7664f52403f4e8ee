"""Games of many prompts: one outcome set per prompt, one size per group (issue 16).

The mechanism runs prompt by prompt (section 2) and a group lives by the prompt-weighted mean
of its per-prompt valuation and payment; these tests pin that down against the one-prompt
mechanism, then the file format, the importers that build such games from trainer logs, and
the commands that take them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from trainer_logs import PROMPTS, TRL_REWARDS, write_openrlhf, write_trl_run
from typer.testing import CliRunner

import rlhf_mech.core._prompts as prompts_module
from rlhf_mech.cli import app
from rlhf_mech.core import (
    MAXMIN,
    NONE,
    Game,
    Mechanism,
    Profile,
    PromptGame,
    solve,
    solve_prompts,
)
from rlhf_mech.errors import SpecError
from rlhf_mech.files import game_schema, load_game, write_game
from rlhf_mech.files._internal import game_text

runner = CliRunner()

EXAMPLE = """\
name: two-prompts
divergence: {kind: kl, lambda: 1.0}
groups:
  - {name: helpful, size: 3}
  - {name: harmless, size: 2, report: {size: 2.5}}
prompts:
  - prompt: "Tell me a joke"
    outcomes: [r0, r1, r2]
    initial: [0.5, 0.25, 0.25]
    rewards: {helpful: [0.2, 0.5, 0.3], harmless: [0.6, 0.1, 0.3]}
    report: {harmless: [0.8, 0.0, 0.2]}
  - prompt: "How do I pick a lock?"
    outcomes: [a, b]
    rewards: {helpful: [0.7, 0.3], harmless: [0.1, 0.9]}
"""


def _simplex_rows(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    rows = rng.random((n, m))
    return rows / rows.sum(axis=1, keepdims=True)


def random_prompt_game(
    rng: np.random.Generator, divergence: str, payment: str = "affine_maximizer", prompts: int = 6
) -> PromptGame:
    """Prompts of 2..5 outcomes, the even ones sharing a uniform initial distribution on 4;
    group 0 misreports its size and, on the odd prompts, its reward model."""
    n = int(rng.integers(2, 4))
    lam = float(rng.uniform(0.3, 3.0))
    sizes = rng.integers(1, 6, n).astype(float)
    reported_sizes = sizes.copy()
    reported_sizes[0] += 1.5
    games = []
    for x in range(prompts):
        m = int(rng.integers(2, 6)) if x % 2 else 4
        pi_init = np.full(m, 1.0 / m) if x % 2 == 0 else _simplex_rows(rng, 1, m)[0]
        truth = _simplex_rows(rng, n, m)
        reports = truth.copy()
        if x % 2:
            reports[0] = _simplex_rows(rng, 1, m)[0]
        games.append(
            Game(
                name=f"g [prompt {x}]",
                outcomes=tuple(f"x{j}" for j in range(m)),
                group_names=tuple(f"g{i}" for i in range(n)),
                mechanism=Mechanism(pi_init, divergence, lam, payment),
                normalization="sum",
                truth=Profile(truth, sizes),
                reports=Profile(reports, reported_sizes),
            )
        )
    weights = rng.random(prompts)
    return PromptGame.from_games("g", tuple(f"p{x}" for x in range(prompts)), games, weights / weights.sum())


def _deviating(game: PromptGame, rewards: list[np.ndarray], size: float) -> PromptGame:
    """``game`` with group 0 reporting ``rewards[x]`` on prompt ``x`` and ``size``, the others truthful."""
    truthful = dataclasses.replace(game, reports=game.truth)
    return truthful.with_report(0, np.concatenate(rewards), size)


# --- the mechanism over prompts ------------------------------------------------------------


@pytest.mark.parametrize("payment", ["affine_maximizer", "none", "early_stopped"])
@pytest.mark.parametrize("divergence", ["kl", "chi2", "tv", "hellinger", "reverse_kl"])
def test_every_figure_is_the_weighted_mean_of_the_prompts_figures(divergence: str, payment: str) -> None:
    rng = np.random.default_rng([7, len(divergence), len(payment)])
    for _ in range(3):
        game = random_prompt_game(rng, divergence, payment)
        solution = solve_prompts(game)
        per_prompt = [solve(g) for g in game.games]
        q = game.weights
        for label in ("truthful", "reported"):
            got = getattr(solution, label)
            ref = [getattr(s, label) for s in per_prompt]
            for name in ("valuations", "payments"):
                expected = sum(w * getattr(r, name) for w, r in zip(q, ref, strict=True))
                np.testing.assert_allclose(getattr(got, name), expected, rtol=0, atol=1e-12)
            assert got.social_welfare == pytest.approx(
                sum(w * r.social_welfare for w, r in zip(q, ref, strict=True)), abs=1e-12
            )
            assert got.asw == pytest.approx(sum(w * r.asw for w, r in zip(q, ref, strict=True)), abs=1e-12)
            for x, r in enumerate(ref):
                np.testing.assert_allclose(got.distributions[x], r.distribution, rtol=0, atol=1e-14)
            np.testing.assert_allclose(got.utilities, got.group_valuations - got.payments, rtol=0, atol=0)
            assert got.converged and got.kkt_residual <= 1e-9
        np.testing.assert_allclose(solution.gains, q @ solution.prompt_gains, rtol=0, atol=1e-13)


def test_prompts_with_as_many_outcomes_are_solved_as_one_batch(monkeypatch) -> None:
    """One call of the profile kernel per outcome count (each prompt with its own pi_init)."""
    batches: list[int] = []
    original = prompts_module.outcome

    def counting(mechanism, truth, reports):
        batches.append(truth.rewards.shape[0])
        return original(mechanism, truth, reports)

    monkeypatch.setattr(prompts_module, "outcome", counting)
    game = random_prompt_game(np.random.default_rng(3), "kl", prompts=8)  # prompts 0, 2, 4, 6: uniform on 4
    prompts_module.prompt_outcome(game, reported=False)
    assert [int(k) for k in game.outcome_counts] == [4, 5, 4, 5, 4, 3, 4, 4]
    # four outcomes (five prompts, four of them uniform and one not), then five, then three
    assert batches == [5, 2, 1]


def test_the_affine_maximizer_stays_dsic_over_prompts_and_no_payment_does_not() -> None:
    """Prop. 4.4 per prompt gives DSIC of the whole game (a sum of per-prompt gains <= 0 at any
    common size); without payment Theorem 4.2's polarised report gains on every prompt."""
    rng = np.random.default_rng(11)
    for divergence in ("kl", "chi2", "hellinger"):
        game = random_prompt_game(rng, divergence, prompts=5)
        for _ in range(20):
            rewards = [_simplex_rows(rng, 1, g.n_outcomes)[0] for g in game.games]
            assert solve_prompts(_deviating(game, rewards, float(rng.uniform(1, 8)))).gains[0] <= 1e-9
        polarised = []
        for g in game.games:
            rm = g.truth.rewards[0]
            eps = 0.3 * rm.min()
            reward = rm + np.where(rm >= np.median(rm), eps, -eps)
            polarised.append(reward / reward.sum())
        truthful_size = float(game.games[0].truth.sizes[0])
        assert solve_prompts(_deviating(game, polarised, truthful_size), "none").gains[0] > 1e-6


def test_rules_that_couple_the_prompts_are_refused() -> None:
    game = random_prompt_game(np.random.default_rng(0), "kl")
    with pytest.raises(ValueError, match="training rule 'maxmin' does not split into one problem per prompt"):
        game.with_rules(MAXMIN, NONE)
    with pytest.raises(ValueError, match="payment rule 'intermediate_checkpoints' does not split"):
        solve_prompts(game, "intermediate_checkpoints")


# --- the file format ---------------------------------------------------------------------------


def _write(tmp_path: Path, text: str, name: str = "game.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_file_of_many_prompts_loads_and_writes_back_to_the_same_bytes(tmp_path: Path) -> None:
    game = load_game(_write(tmp_path, EXAMPLE))
    assert isinstance(game, PromptGame)
    assert game.prompts == ("Tell me a joke", "How do I pick a lock?")
    assert [g.outcomes for g in game.games] == [("r0", "r1", "r2"), ("a", "b")]
    np.testing.assert_array_equal(game.weights, [0.5, 0.5])
    np.testing.assert_array_equal(game.games[1].mechanism.pi_init, [0.5, 0.5])
    assert game.misreporting_groups() == (1,)
    text = game_text(game)
    again = load_game(_write(tmp_path, text, "again.yaml"))
    assert game_text(again) == text
    written = write_game(game, tmp_path / "arrays.yaml", inline_limit=2)
    assert any(p.suffix == ".npy" for p in written)  # the 3-outcome prompt's rows went to .npy files
    from_arrays = load_game(written[0])
    for a, b in zip(game.games, from_arrays.games, strict=True):
        np.testing.assert_array_equal(a.truth.rewards, b.truth.rewards)
        np.testing.assert_array_equal(a.reports.rewards, b.reports.rewards)
        np.testing.assert_array_equal(a.mechanism.pi_init, b.mechanism.pi_init)


def test_prompt_weights_are_kept_as_written_or_divided_by_their_sum_with_a_note(tmp_path: Path) -> None:
    weighted = EXAMPLE.replace('"Tell me a joke"\n', '"Tell me a joke"\n    weight: 3\n').replace(
        '"How do I pick a lock?"\n', '"How do I pick a lock?"\n    weight: 1\n'
    )
    game = load_game(_write(tmp_path, weighted))
    np.testing.assert_array_equal(game.weights, [0.75, 0.25])
    assert game.notes == ("prompt weights divided by their sum 4.0 to sum to 1",)
    exact = load_game(_write(tmp_path, game_text(game), "exact.yaml"))
    np.testing.assert_array_equal(exact.weights, [0.75, 0.25])
    assert exact.notes == ()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "harmless: [0.1, 0.9]",
            "harmles: [0.1, 0.9]",
            ":14: prompts[1].rewards.harmles: unknown group 'harmles'",
        ),
        ("harmless: [0.1, 0.9]", "harmless: [0.1, 0.8]", ":14: prompts[1].rewards.harmless: "),
        ("outcomes: [a, b]", "outcomes: [a, a]", ":13: prompts[1].outcomes[1]: duplicate outcome name 'a'"),
        ("[0.5, 0.25, 0.25]", "[0.5, 0.25, 0.3]", ":9: prompts[0].initial: probabilities sum to 1.05"),
        (
            "report: {harmless: [0.8, 0.0, 0.2]}",
            "report: {harmless: [0.8, 0.2]}",
            ":11: prompts[0].report.harmless",
        ),
        (
            '  - prompt: "Tell me a joke"\n',
            '  - prompt: "Tell me a joke"\n    weight: 2\n',
            ":13: prompts[1]: a weight on every prompt or on none",
        ),
        (
            '  - prompt: "Tell me a joke"\n',
            '  - prompt: "Tell me a joke"\n    weight: 0\n',
            "prompts[0].weight",
        ),
        (
            "{kind: kl, lambda: 1.0}",
            "{kind: kl, lambda: 1.0}\ntraining: maxmin",
            ":3: training: training rule 'maxmin'",
        ),
        (
            "{kind: kl, lambda: 1.0}",
            "{kind: kl, lambda: 1.0}\npayment: intermediate_checkpoints",
            ":3: payment: payment rule",
        ),
        ("{name: helpful, size: 3}", "{name: helpful, size: 0.5}", ":4: groups[0].size"),
    ],
)
def test_a_broken_file_of_many_prompts_names_the_line_and_the_field(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in EXAMPLE
    path = _write(tmp_path, EXAMPLE.replace(old, new, 1))
    with pytest.raises(SpecError) as info:
        load_game(path)
    assert message in info.value.text
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith(f"error: {path}")


def test_the_game_schema_takes_files_of_many_prompts_exactly_as_the_loader(tmp_path: Path) -> None:
    import jsonschema
    import yaml

    schema = game_schema()
    jsonschema.validate(yaml.safe_load(EXAMPLE), schema)
    for bad in (EXAMPLE.replace("size: 3}", "size: 0}"), EXAMPLE.replace("    outcomes: [a, b]\n", "")):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(yaml.safe_load(bad), schema)
        with pytest.raises(SpecError):
            load_game(_write(tmp_path, bad, "bad.yaml"))


# --- from trainer logs ---------------------------------------------------------------------------


def _normalised(values: np.ndarray) -> np.ndarray:
    shifted = values - min(values.min(), 0.0)
    total = shifted.sum()
    return np.full(values.size, 1.0 / values.size) if total == 0 else shifted / total


def test_a_trl_run_becomes_one_outcome_set_per_prompt_from_the_samples_of_step_0(tmp_path: Path) -> None:
    # step 0 is eval_on_start's evaluation of the initial model; with no training step 1 it is the one used
    written = write_trl_run(tmp_path / "run", steps=(0, 2, 3), generations=3, seed=5)
    out = tmp_path / "game.yaml"
    result = runner.invoke(app, ["import", str(tmp_path / "run"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (
        "initial distribution: the samples of step 0, eval completions of the initial model, on 4 eval "
        "prompts (3 samples each); steps 2, 3 are not used" in " ".join(result.stdout.split())
    )
    game = load_game(out)
    assert isinstance(game, PromptGame) and game.group_names == TRL_REWARDS
    # the same game written by hand from the fixture's step-0 rows: prompts sorted, 3 responses each
    step0 = written.steps == 0
    prompts = np.array(written.prompts)[step0]
    rewards = written.rewards[step0]
    assert game.prompts == tuple(sorted(PROMPTS))
    hand = []
    for x, prompt in enumerate(sorted(PROMPTS)):
        rows = np.flatnonzero(prompts == prompt)
        rm = np.array([_normalised(rewards[rows, k]) for k in range(len(TRL_REWARDS))])
        hand.append(
            Game(
                name=f"hand [prompt {x}]",
                outcomes=tuple(f"x{j}" for j in range(rows.size)),
                group_names=TRL_REWARDS,
                mechanism=Mechanism(np.full(rows.size, 1.0 / rows.size), "kl", 1.0),
                normalization="sum",
                truth=Profile(rm, np.ones(2)),
                reports=Profile(rm, np.ones(2)),
            )
        )
    by_hand = solve_prompts(
        PromptGame.from_games("hand", game.prompts, hand, np.full(len(hand), 1 / len(hand)))
    )
    imported = solve_prompts(game)
    for name in ("valuations", "payments", "utilities"):
        np.testing.assert_allclose(
            getattr(imported.truthful, name), getattr(by_hand.truthful, name), rtol=0, atol=1e-15
        )
    data = json.loads(runner.invoke(app, ["solve", str(out), "--format", "json"]).stdout)
    assert [g["utility"] for g in data["profiles"]["truthful"]["groups"]] == pytest.approx(
        list(by_hand.truthful.utilities), abs=1e-15
    )


def test_a_trl_step_is_chosen_with_step_and_steps_are_never_mixed(tmp_path: Path) -> None:
    write_trl_run(tmp_path / "run", steps=(2, 3))
    out = tmp_path / "g.yaml"
    mixed = runner.invoke(app, ["import", str(tmp_path / "run"), "-o", str(out)])
    assert mixed.exit_code == 2 and not out.exists()
    assert "the log holds 2 steps and none is a sample of the initial model" in mixed.stderr
    one = runner.invoke(app, ["import", str(tmp_path / "run"), "--step", "2", "-o", str(out)])
    assert one.exit_code == 0, one.output
    assert (
        "initial distribution: the samples of step 2, train completions of the policy after 1 update"
        in " ".join(one.stdout.split())
    )
    assert "step 2" in out.read_text().splitlines()[2]  # provenance in the header comment


def _one_prompt_log(tmp_path: Path, completions: list[str], rewards: list[float]) -> Path:
    n = len(completions)
    table = {
        "step": pa.array([0] * n, pa.int64()),
        "prompt": pa.array(["p"] * n),
        "completion": pa.array(completions),
        "accuracy_reward": pa.array(rewards, pa.float64()),
        "advantage": pa.array([0.0] * n, pa.float64()),
    }
    path = tmp_path / "completions" / "completions_00000.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(table), path)
    return path


def test_a_response_sampled_twice_counts_twice_in_the_initial_distribution(tmp_path: Path) -> None:
    path = _one_prompt_log(tmp_path, ["a", "b", "a", "c"], [1.0, 0.0, 1.0, 2.0])
    out = tmp_path / "g.yaml"
    result = runner.invoke(app, ["import", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "(1 repeated samples counted)" in result.stdout
    game = load_game(out)
    np.testing.assert_array_equal(game.games[0].mechanism.pi_init, [0.5, 0.25, 0.25])
    np.testing.assert_allclose(game.games[0].truth.rewards[0], [1 / 3, 0.0, 2 / 3], rtol=0, atol=1e-16)


def test_a_repeated_response_with_another_reward_gets_the_mean_and_it_is_said(tmp_path: Path) -> None:
    path = _one_prompt_log(tmp_path, ["a", "b", "a"], [1.0, 0.0, 0.5])
    out = tmp_path / "g.yaml"
    result = runner.invoke(app, ["import", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 repeated responses were rewarded differently" in " ".join(result.stdout.split())
    np.testing.assert_allclose(load_game(out).games[0].truth.rewards[0], [1.0, 0.0], rtol=0, atol=1e-16)


def test_openrlhf_files_join_into_a_game_of_many_prompts(tmp_path: Path) -> None:
    written = write_openrlhf(tmp_path / "rm")
    out = tmp_path / "g.yaml"
    result = runner.invoke(app, ["import", *map(str, written.files), "-o", str(out)])
    assert result.exit_code == 0, result.output
    game = load_game(out)
    assert game.group_names == ("helpful", "harmless") and game.n_prompts == len(PROMPTS)
    assert all(g.n_outcomes == 2 for g in game.games)
    # rewards are normal draws: shifted to >= 0 per prompt, then divided by their sum
    first = sorted(PROMPTS)[0]
    rows = [r for r, p in enumerate(written.prompts) if p == first]
    np.testing.assert_allclose(
        game.games[0].truth.rewards[0], _normalised(written.rewards[rows, 0]), rtol=0, atol=1e-15
    )


# --- the commands ------------------------------------------------------------------------------


def test_solve_shows_the_weighted_means_and_each_prompts_share(tmp_path: Path) -> None:
    path = _write(tmp_path, EXAMPLE)
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "prompts        2, weights uniform (each prompt counts the same)" in out
    assert "truthful reports (weighted means over the prompts)" in out and "per prompt" in out
    assert "harmless misreports: group valuation +0.1606" in out
    data = json.loads(runner.invoke(app, ["solve", str(path), "--format", "json"]).stdout)
    solution = solve_prompts(load_game(path))
    assert data["misreport_gains"] == {"harmless": pytest.approx(float(solution.gains[1]), abs=1e-15)}
    assert [p["weight"] for p in data["prompts"]] == [0.5, 0.5]
    assert len(data["profiles"]["reported"]["prompts"][0]["distribution"]) == 3
    refused = runner.invoke(app, ["solve", str(path), "--training", "maxmin"])
    assert refused.exit_code == 2 and "does not split into one problem per prompt" in refused.stderr
    swept = runner.invoke(app, ["sweep", str(path), "--group", "helpful", "--alpha", "1,2"])
    assert (
        swept.exit_code == 2
        and "a game of 2 prompts; sweep takes one outcome set: give --prompt K (0 to 1)" in swept.stderr
    )
    implementable = runner.invoke(app, ["implementability", str(path), "--group", "helpful"])
    assert implementable.exit_code == 2 and "implementability takes one outcome set" in implementable.stderr


def test_a_prompt_with_terminal_escapes_is_shown_escaped(tmp_path: Path) -> None:
    path = _write(tmp_path, EXAMPLE.replace('"Tell me a joke"', '"Tell me \\x1b[31ma joke"'))
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "Tell me \\x1b[31ma joke" in result.stdout


def test_audit_checks_a_game_of_many_prompts_whole(tmp_path: Path) -> None:
    """One audit of the whole game: each group's best joint misreport over every prompt, whose
    gain is the weighted sum of its prompts' gains (issue 22), and those gains per prompt."""
    path = _write(tmp_path, EXAMPLE)
    result = runner.invoke(app, ["audit", str(path), "--format", "json", "--budget", "40"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [g["part"] for g in data["games"]] == [""] and data["games"][0]["passed"]
    assert data["summary"]["games"] == 1
    for group in data["games"][0]["groups"]:
        for search in (group["dsic"], group["no_payment"]):
            prompts = search["prompts"]
            whole = float(np.dot(prompts["weights"], prompts["whole"]))
            true_size = float(np.dot(prompts["weights"], prompts["at_true_size"]))
            assert search["max_gain"] == pytest.approx(max(whole, true_size), abs=1e-12)
            assert search["best_misreport"]["gain"] == search["max_gain"]
        assert group["no_payment"]["max_gain"] > 0.01 and group["dsic"]["max_gain"] <= 1e-9
    text = runner.invoke(app, ["audit", str(path), "--budget", "40"]).stdout
    assert "[prompt" not in text and str(path) in text
