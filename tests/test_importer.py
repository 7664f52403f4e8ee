"""``rlhf-mech import``: games from evaluation files (issue #5). Every input is written here."""

from __future__ import annotations

import json
from operator import attrgetter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rlhf_mech import SpecError, load_game
from rlhf_mech import files as writer
from rlhf_mech.cli import app
from rlhf_mech.core import Normalization
from rlhf_mech.core._internal import minmax_scale
from rlhf_mech.errors import RlhfMechError
from rlhf_mech.files import import_candidates, import_files
from rlhf_mech.files._importer import GameOptions, exact_simplex, normalised_rows, robust_means
from rlhf_mech.files._internal import (
    INLINE_LIMIT,
    import_responses,
    normalise_rewards,
    parse_group_option,
    parse_reward_columns,
    read_table,
    resolve_kind,
    robust_mean,
)

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

MODEL_A = """\
prompt,response,score_helpful,score_harmless,logratio
p1,"a, with a comma",1.0,2.0,0.10
p2,"two
lines",3.0,0.0,0.30
"""
MODEL_B = [
    {"prompt": "p1", "response": "x", "score_helpful": 0.5, "score_harmless": -1.0, "logratio": -0.2},
    {"prompt": "p2", "response": "y", "score_helpful": 2.5, "score_harmless": 1.0, "logratio": 0.1},
    {"prompt": "p3", "response": "z", "score_helpful": 1.5, "score_harmless": 0.0, "logratio": 0.4},
]
COLUMNS = {"helpful": "score_helpful", "harmless": "score_harmless"}


@pytest.fixture
def model_files(tmp_path: Path) -> list[Path]:
    a = tmp_path / "model_a.csv"
    a.write_text(MODEL_A)
    b = tmp_path / "model_b.jsonl"
    b.write_text("\n".join(json.dumps(row) for row in MODEL_B) + "\n")
    return [a, b]


def _responses(tmp_path: Path, m: int, seed: int = 0) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    columns = {
        "score_helpful": rng.normal(0.0, 1.0, m),
        "score_harmless": rng.uniform(0.1, 2.0, m),
        "logprob": rng.normal(-40.0, 8.0, m),
    }
    lines = ["prompt,response," + ",".join(columns)]
    for j in range(m):
        lines.append(f"p,r{j}," + ",".join(repr(float(columns[c][j])) for c in columns))
    path = tmp_path / "init.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, columns


# --- reading ----------------------------------------------------------------------------------


def test_read_csv_and_jsonl(model_files):
    a, b = (read_table(p) for p in model_files)
    assert a.columns == ("prompt", "response", "score_helpful", "score_harmless", "logratio")
    assert a.n_rows == 2 and a.lines == (2, 3)
    assert a.rows[1]["response"] == "two\nlines"
    assert b.n_rows == 3 and b.lines == (1, 2, 3)


@pytest.mark.parametrize(
    ("text", "suffix", "line", "field", "message"),
    [
        ("a,b\n1,x\n", ".csv", 2, "b", "'x' is not a finite number"),
        ("a,b\n1,\n", ".csv", 2, "b", "missing value"),
        ("a,b\n1,nan\n", ".csv", 2, "b", "'nan' is not a finite number"),
        ("a,b\n1,2,3\n", ".csv", 2, "", "expected 2 fields"),
        ("a,a\n1,2\n", ".csv", 1, "a", "duplicate column name"),
        ('{"a": 1, "b": 2}\n{"a": 1}\n', ".jsonl", 2, "b", "missing value"),
        ('{"a": 1, "b": 2}\n[1, 2]\n', ".jsonl", 2, "", "each line must be a JSON object"),
        ('{"a": 1, "b": 2}\n{"a": 1, "b": tru}\n', ".jsonl", 2, "", "invalid JSON"),
        ('{"a": 1, "b": true}\n', ".jsonl", 1, "b", "True is not a finite number"),
    ],
)
def test_file_errors_name_file_line_and_column(tmp_path, text, suffix, line, field, message):
    path = tmp_path / f"scores{suffix}"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        import_candidates([path], reward_columns={"b": "b"})
    err = info.value
    assert (err.path, err.line, err.field) == (str(path), line, field)
    assert message in err.message


def test_unknown_column_and_suffix(tmp_path, model_files):
    with pytest.raises(SpecError, match=r"no column named 'helpfulness' \(columns: prompt, response"):
        import_candidates(model_files, reward_columns={"h": "helpfulness"})
    other = tmp_path / "scores.parquet"
    other.write_text("")
    with pytest.raises(SpecError, match=r"expected a \.csv, \.jsonl or \.ndjson file"):
        read_table(other)


# --- candidate games --------------------------------------------------------------------------


def test_candidate_means_and_kl(model_files):
    result = import_candidates(model_files, reward_columns=COLUMNS, logratio_column="logratio")
    game = result.game
    assert game.report_basis is not None  # a candidate-model game
    assert game.outcomes == ("model_a", "model_b")
    np.testing.assert_allclose(game.report_basis.raw_scores, [[2.0, 1.0], [1.5, 0.0]], atol=1e-15)
    np.testing.assert_allclose(game.mechanism.outcome_costs, [0.2, 0.1], atol=1e-15)
    np.testing.assert_array_equal(game.report_basis.scores, minmax_scale(game.report_basis.raw_scores)[0])
    assert game.group_names == ("helpful", "harmless")
    np.testing.assert_array_equal(game.truth.preferences, np.eye(2))
    assert any("one group per reward model, size 1" in step for step in result.steps)
    stats = {s.column: s for s in result.files[1].used}
    assert (stats["score_harmless"].minimum, stats["score_harmless"].maximum) == (-1.0, 1.0)


def test_negative_kl_estimate_is_written_as_zero(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("s,lr\n1,-0.2\n2,0.1\n")
    result = import_candidates([path], reward_columns={"s": "s"}, logratio_column="lr")
    assert result.game.mechanism.outcome_costs.tolist() == [0.0]
    assert any("KL estimate -0.05" in step and "written as 0" in step for step in result.steps)


def test_candidate_column_splits_one_file(tmp_path):
    path = tmp_path / "all.csv"
    path.write_text("model,s,t\nB,1,0\nA,3,1\nB,2,1\nA,5,1\n")
    result = import_candidates([path], candidate_column="model", scale="none")
    assert result.game.outcomes == ("B", "A")
    assert result.game.report_basis.reward_models == ("s", "t")
    np.testing.assert_array_equal(result.game.report_basis.raw_scores, [[1.5, 0.5], [4.0, 1.0]])
    assert [c.rows for c in result.candidates] == [2, 2]


def test_candidate_in_two_files_is_an_error(tmp_path):
    for name in ("x.csv", "y.csv"):
        (tmp_path / name).write_text("model,s\nA,1\n")
    with pytest.raises(SpecError, match="candidate 'A' also in"):
        import_candidates([tmp_path / "x.csv", tmp_path / "y.csv"], candidate_column="model")


def test_groups_from_options(model_files):
    groups = [parse_group_option("alice:3:helpful=0.8,harmless=0.2"), parse_group_option("bob:2:harmless")]
    game = import_candidates(model_files, reward_columns=COLUMNS, options=GameOptions(groups)).game
    assert game.group_names == ("alice", "bob")
    np.testing.assert_array_equal(game.truth.preferences, [[0.8, 0.2], [0.0, 1.0]])
    np.testing.assert_array_equal(game.truth.sizes, [3.0, 2.0])
    np.testing.assert_allclose(game.truth.rewards, game.truth.preferences @ game.report_basis.scores.T)
    with pytest.raises(RlhfMechError, match="unknown reward model 'humor'"):
        import_candidates(
            model_files, reward_columns=COLUMNS, options=GameOptions([parse_group_option("c:1:humor")])
        )


def test_scale_none_rejects_negative_means(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("s\n-1\n0.5\n")
    with pytest.raises(RlhfMechError, match=r"mean s score -0\.25 < 0; scale none needs scores >= 0"):
        import_candidates([path], scale="none")


def test_candidate_import_loads_back_the_same_numbers(tmp_path, model_files):
    result = import_candidates(model_files, reward_columns=COLUMNS, logratio_column="logratio")
    first = tmp_path / "game.yaml"
    written = writer.write_game(result.game, first, comment="imported")
    assert written == (first,)
    loaded = load_game(first)
    for field in (
        "report_basis.raw_scores",
        "report_basis.scores",
        "truth.rewards",
        "truth.sizes",
        "mechanism.outcome_costs",
        "truth.preferences",
        "mechanism.pi_init",
    ):
        get = attrgetter(field)
        np.testing.assert_array_equal(get(loaded), get(result.game), err_msg=field)
    assert loaded.outcomes == result.game.outcomes and loaded.mechanism.lam == result.game.mechanism.lam
    second = tmp_path / "again.yaml"
    writer.write_game(loaded, second, comment="imported")
    assert first.read_bytes() == second.read_bytes()


# --- response games ---------------------------------------------------------------------------


@pytest.mark.parametrize("normalization", ["sum", "max"])
def test_normalise_rewards_shifts_then_divides(normalization):
    values = np.array([-1.0, 0.0, 3.0])
    rewards, shift, divisor = normalise_rewards(values, Normalization(normalization))
    assert shift == 1.0
    assert divisor == (5.0 if normalization == "sum" else 4.0)
    np.testing.assert_array_equal(rewards, (values + 1.0) / divisor)
    with pytest.raises(ValueError, match="same after shifting"):
        normalise_rewards(np.array([-2.0, -2.0]), Normalization(normalization))


@pytest.mark.parametrize("normalization", ["sum", "max"])
def test_rows_are_normalised_and_averaged_as_each_row_alone(normalization):
    """A (prompts, K, m) block of rows, as the log importer builds them, gives bit for bit what
    each row gives alone: normalised rewards and the flat rows, robust means, and initial
    distributions whose float sum is exactly 1."""
    rng = np.random.default_rng(7)
    for m in (1, 3, 8, 13, 129):
        block = rng.normal(size=(5, 3, m)) * 10.0 ** rng.integers(-200, 200, size=(5, 3, 1))
        block[0, 1] = -2.5  # flat: 0 everywhere once shifted
        rewards, shift, divisor, flat = normalised_rows(block, Normalization(normalization))
        assert flat[0, 1]
        np.testing.assert_array_equal(robust_means(block), [[robust_mean(r) for r in rows] for rows in block])
        for b, k in np.ndindex(5, 3):
            if flat[b, k]:
                with pytest.raises(ValueError, match="same after shifting"):
                    normalise_rewards(block[b, k], Normalization(normalization))
                continue
            alone = normalise_rewards(block[b, k], Normalization(normalization))
            assert rewards[b, k].tobytes() == alone[0].tobytes()
            assert (shift[b, k], divisor[b, k]) == alone[1:]
        counts = rng.integers(1, 9, size=(6, m)).astype(float)
        simplex = exact_simplex(counts)
        assert (simplex.sum(axis=1) == 1.0).all()
        for row, alone in zip(simplex, counts, strict=True):
            assert row.tobytes() == exact_simplex(alone).tobytes()


@pytest.mark.parametrize("normalization", ["sum", "max"])
def test_response_game(tmp_path, normalization):
    path, columns = _responses(tmp_path, 6)
    groups = [parse_group_option("mix:2:helpful=0.5,harmless=0.5"), parse_group_option("safe:1:harmless")]
    result = import_responses(
        path,
        reward_columns=COLUMNS,
        logprob_column="logprob",
        normalization=normalization,
        options=GameOptions(groups),
    )
    game = result.game
    assert game.outcomes == tuple(f"x{j}" for j in range(6))
    logp = columns["logprob"]
    np.testing.assert_allclose(
        game.mechanism.pi_init, np.exp(logp - logp.max()) / np.exp(logp - logp.max()).sum()
    )
    helpful = normalise_rewards(columns["score_helpful"], Normalization(normalization))[0]
    harmless = normalise_rewards(columns["score_harmless"], Normalization(normalization))[0]
    mix = 0.5 * helpful + 0.5 * harmless
    mix /= mix.sum() if normalization == "sum" else mix.max()
    np.testing.assert_allclose(game.truth.rewards, [mix, harmless], rtol=1e-14)
    steps = "\n".join(result.steps)
    assert "reward helpful (column 'score_helpful'): shifted by" in steps  # normal(0, 1) has negatives
    assert "reward harmless (column 'score_harmless'): divided by its" in steps
    assert "logsumexp" in steps


def test_response_game_uniform_by_default(tmp_path):
    path, _ = _responses(tmp_path, 3)
    game = import_responses(path, reward_columns=COLUMNS).game
    np.testing.assert_array_equal(game.mechanism.pi_init, np.full(3, 1 / 3))


def test_underflowing_log_probability_is_an_error(tmp_path):
    path = tmp_path / "init.csv"
    path.write_text("s,lp\n1,0\n2,-800\n")
    with pytest.raises(SpecError) as info:
        import_responses(path, reward_columns={"s": "s"}, logprob_column="lp")
    assert (info.value.line, info.value.field) == (3, "lp")


@pytest.mark.parametrize("m", [5, 40])
def test_response_import_round_trip(tmp_path, m):
    # 40 rows exceed the inline limit: the arrays go to .npy files beside the YAML.
    path, _ = _responses(tmp_path, m, seed=m)
    result = import_responses(path, reward_columns=COLUMNS, logprob_column="logprob")
    out = tmp_path / "out"
    out.mkdir()
    first = out / "game.yaml"
    written = writer.write_game(result.game, first)
    assert len(written) == (1 if m <= INLINE_LIMIT else 3)
    loaded = load_game(first)
    assert loaded.notes == ()
    for field in ("mechanism.pi_init", "truth.rewards", "truth.sizes", "reports.rewards"):
        get = attrgetter(field)
        np.testing.assert_array_equal(get(loaded), get(result.game), err_msg=field)
    blobs = {p.name: p.read_bytes() for p in written}
    again = writer.write_game(loaded, first)
    assert {p.name: p.read_bytes() for p in again} == blobs


# --- options ----------------------------------------------------------------------------------


def test_parse_options():
    assert parse_reward_columns(["helpful=score_h", "harmless"]) == {
        "helpful": "score_h",
        "harmless": "harmless",
    }
    group = parse_group_option("g:2.5:a=0.3,b")
    assert (group.name, group.size, group.preference) == ("g", 2.5, {"a": 0.3, "b": 1.0})
    for bad in ("g:0:a", "g:2", "g:x:a", "g:2:a=-1", "g:2:a=0", ":2:a", "g:2:a,a"):
        with pytest.raises(RlhfMechError, match="--group"):
            parse_group_option(bad)
    with pytest.raises(RlhfMechError, match="given twice"):
        parse_reward_columns(["a=x", "a=y"])


def test_resolve_kind():
    assert resolve_kind(None, 1, None, None, None) == "responses"
    assert resolve_kind(None, 2, None, None, None) == "candidates"
    assert resolve_kind(None, 1, "model", None, None) == "candidates"
    assert resolve_kind(None, 1, None, "lr", None) == "candidates"
    with pytest.raises(RlhfMechError, match="--logprob-col is for --as responses"):
        resolve_kind("candidates", 1, None, None, "lp")
    with pytest.raises(RlhfMechError, match="reads one file"):
        resolve_kind("responses", 2, None, None, None)


def test_import_files_dispatches(model_files):
    assert import_files(model_files, reward_columns=COLUMNS).kind == "candidates"
    assert import_files(model_files[:1], reward_columns=COLUMNS).kind == "responses"


# --- the command ------------------------------------------------------------------------------


def test_cli_import_candidates(tmp_path, model_files):
    out = tmp_path / "game.yaml"
    args = ["import", *map(str, model_files), "-o", str(out), "--logratio-col", "logratio"]
    args += ["--reward-col", "helpful=score_helpful", "--reward-col", "harmless=score_harmless"]
    args += ["--group", "alice:3:helpful=0.8,harmless=0.2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for text in ("model_a.csv: 2 rows", "model_b.jsonl: 3 rows", "KL estimate", "built a candidates game"):
        assert text in result.stdout
    assert f"wrote {out}" in result.stdout
    game = load_game(out)
    assert game.group_names == ("alice",) and game.outcomes == ("model_a", "model_b")
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "exists; pass --force" in again.stderr
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0


def test_cli_import_responses_writes_arrays(tmp_path):
    path, _ = _responses(tmp_path, 30)
    out = tmp_path / "resp.yaml"
    args = ["import", str(path), "-o", str(out), "--logprob-col", "logprob", "--normalization", "max"]
    result = runner.invoke(app, [*args, "--reward-col", "helpful=score_helpful"])
    assert result.exit_code == 0, result.output
    assert "built a responses game: 30 outcomes, 1 group" in result.stdout
    assert (tmp_path / "resp.rewards.npy").is_file() and (tmp_path / "resp.initial.npy").is_file()
    assert load_game(out).normalization == "max"
    solved = runner.invoke(app, ["solve", str(out)])
    assert solved.exit_code == 0, solved.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--logprob-col", "x", "--as", "candidates"], "--logprob-col is for --as responses"),
        (["--reward-col", "h=nope"], "no column named 'nope'"),
        (["--group", "g:0:h"], "--group 'g:0:h': size '0' must be a number >= 1"),
        (["--lambda", "0"], "--lambda must be in [1e-100, 1e+100]"),
    ],
)
def test_cli_import_errors_are_one_line(tmp_path, model_files, extra, message):
    result = runner.invoke(app, ["import", *map(str, model_files), "-o", str(tmp_path / "g.yaml"), *extra])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert not (tmp_path / "g.yaml").exists()


@pytest.mark.parametrize(
    ("output", "args"),
    [
        (
            "candidates.yaml",
            [
                "games/import_example/model_a.csv",
                "games/import_example/model_b.csv",
                "--logratio-col",
                "logratio",
                "--name",
                "import-example-candidates",
            ],
        ),
        (
            "responses.yaml",
            [
                "games/import_example/init_samples.csv",
                "--logprob-col",
                "logprob",
                "--normalization",
                "max",
                "--name",
                "import-example-responses",
            ],
        ),
    ],
)
def test_bundled_import_example_is_reproducible(tmp_path, monkeypatch, output, args):
    # The bundled games are exactly what the documented command writes (docs/candidates.md).
    monkeypatch.chdir(ROOT)
    common = ["--reward-col", "helpful=score_helpful", "--reward-col", "harmless=score_harmless"]
    common += ["--group", "helpers:3:helpful=0.8,harmless=0.2", "--group", "guardians:2:harmless"]
    target = tmp_path / output
    result = runner.invoke(app, ["import", *args, *common, "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == (ROOT / "games" / "import_example" / output).read_bytes()
