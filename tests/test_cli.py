"""``rlhf-mech solve`` and ``rlhf-mech schema`` (other commands are tested in their own files).

Each test checks ``exit_code`` first (with the output as the failure message), then what
the user reads. Bad input exits 2 with one line on stderr naming ``file:line`` and the
field, never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cases import INVALID_GAME_FILES, VALID_GAME, InvalidGameFile
from typer.testing import CliRunner

from rlhf_mech.cli import app
from rlhf_mech.errors import SpecError
from rlhf_mech.files import load_game

runner = CliRunner()

EXAMPLE = Path(__file__).resolve().parents[1] / "games" / "harmless_vs_humor.yaml"

PROFILE_KEYS = {"distribution", "social_welfare", "asw", "groups"}
GROUP_KEYS = {"name", "size", "valuation", "group_valuation", "payment", "utility"}


def _ok(result) -> None:
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


def test_solve_example_table() -> None:
    result = runner.invoke(app, ["solve", str(EXAMPLE)])
    _ok(result)
    out = result.stdout
    for text in ("harmless-vs-humor", "affine_maximizer", "fine-tuned distribution", "truthful reports"):
        assert text in out, text
    assert "reported (as in the file)" in out
    assert "alices misreports:" in out and "(not profitable)" in out
    assert "KKT residual" in out
    assert result.stderr == ""
    assert "\x1b[" not in out  # no colour codes
    assert max(len(line) for line in out.splitlines()) <= 120


def test_solve_top_limits_the_distribution_table() -> None:
    result = runner.invoke(app, ["solve", str(EXAMPLE), "--top", "2"])
    _ok(result)
    assert "(top 2 of 4 outcomes, by max(truthful, reported))" in result.stdout


def test_solve_json_has_the_stable_keys() -> None:
    result = runner.invoke(app, ["solve", str(EXAMPLE), "--format", "json"])
    _ok(result)
    data = json.loads(result.stdout)
    assert {"game", "divergence", "payment_rule", "profiles"} <= set(data)
    assert data["game"] == "harmless-vs-humor"
    assert data["payment_rule"] == "affine_maximizer"
    assert data["divergence"]["kind"] == "kl" and data["divergence"]["lambda"] == 1.0
    assert set(data["profiles"]) == {"truthful", "reported"}
    for profile in data["profiles"].values():
        assert set(profile) >= PROFILE_KEYS
        assert abs(sum(profile["distribution"]) - 1.0) <= 1e-12
        assert len(profile["distribution"]) == 4
        assert [g["name"] for g in profile["groups"]] == ["alices", "bobs"]
        for group in profile["groups"]:
            assert set(group) >= GROUP_KEYS
            assert group["utility"] == pytest.approx(group["group_valuation"] - group["payment"], abs=1e-15)
            assert group["payment"] >= -1e-12
        assert profile["social_welfare"] == pytest.approx(
            sum(g["group_valuation"] for g in profile["groups"])
        )
    reported = data["profiles"]["reported"]["groups"][0]
    truthful = data["profiles"]["truthful"]["groups"][0]
    assert reported["utility"] < truthful["utility"]  # Prop. 4.4 on the example's misreport


def test_solve_json_is_deterministic() -> None:
    first = runner.invoke(app, ["solve", str(EXAMPLE), "--format", "json"])
    second = runner.invoke(app, ["solve", str(EXAMPLE), "--format", "json"])
    _ok(first)
    _ok(second)
    assert first.stdout_bytes == second.stdout_bytes


@pytest.mark.slow
def test_solve_json_deterministic_across_processes() -> None:
    """Byte-identical JSON from two separate ``rlhf-mech solve`` processes."""
    cmd = [sys.executable, "-m", "rlhf_mech", "solve", str(EXAMPLE), "--format", "json"]
    first = subprocess.run(cmd, capture_output=True, check=False)
    second = subprocess.run(cmd, capture_output=True, check=False)
    assert first.returncode == 0, first.stderr.decode()
    assert first.stdout == second.stdout


def test_solve_payment_override() -> None:
    result = runner.invoke(app, ["solve", str(EXAMPLE), "--format", "json", "--payment", "none"])
    _ok(result)
    data = json.loads(result.stdout)
    assert data["payment_rule"] == "none"
    for profile in data["profiles"].values():
        assert all(g["payment"] == 0.0 for g in profile["groups"])
    # without payments the polarised report of the example is profitable (Theorem 4.2)
    assert (
        data["profiles"]["reported"]["groups"][0]["utility"]
        > data["profiles"]["truthful"]["groups"][0]["utility"]
    )


def test_solve_training_override_runs_the_rule_and_says_the_payment_falls_to_none() -> None:
    result = runner.invoke(
        app,
        [
            "solve",
            str(EXAMPLE),
            "--format",
            "json",
            "--training",
            "maxmin",
            "--training-param",
            "over=groups",
        ],
    )
    _ok(result)
    assert "payment: none (the file's affine_maximizer needs an additive training rule" in result.stderr
    data = json.loads(result.stdout)
    assert data["training_rule"] == {"rule": "maxmin", "parameters": {"over": "groups"}}
    assert data["payment_rule"] == "none"
    sw_max = json.loads(runner.invoke(app, ["solve", str(EXAMPLE), "--format", "json"]).stdout)

    def maxmin_objective(profile: dict) -> float:  # min_i w_i v_i - D_f, with D_f = SW - ASW
        worst = min(g["group_valuation"] for g in profile["groups"])
        return worst - (profile["social_welfare"] - profile["asw"])

    mm, sw = data["profiles"]["truthful"], sw_max["profiles"]["truthful"]
    assert mm["distribution"] != sw["distribution"]
    assert maxmin_objective(mm) > maxmin_objective(sw)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--training", "nash", "--training-param", "over=groups"],
            "training rule 'nash' has no parameter 'over'",
        ),
        (["--training", "maxmin", "--training-param", "over=group"], "`over` must be one of agents, groups"),
        (["--training", "maxmin", "--payment", "affine_maximizer"], "needs an additive training rule"),
        (["--training", "maxmin", "--training-param", "over"], "--training-param 'over': expected KEY=VALUE"),
    ],
)
def test_solve_training_override_errors(options: list[str], message: str) -> None:
    result = runner.invoke(app, ["solve", str(EXAMPLE), *options])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_solve_prints_the_note_on_a_renormalised_initial(tmp_path: Path) -> None:
    path = tmp_path / "note.yaml"
    path.write_text(VALID_GAME.replace("[0.5, 0.25, 0.25]", "[0.5, 0.25, 0.2499999995]"))
    result = runner.invoke(app, ["solve", str(path)])
    _ok(result)
    assert "note" in result.stdout and "initial distribution divided by its sum" in result.stdout
    data = json.loads(runner.invoke(app, ["solve", str(path), "--format", "json"]).stdout)
    assert data["notes"] == ["initial distribution divided by its sum 0.9999999995 to sum to 1"]


def test_solve_truthful_game_says_so(tmp_path: Path) -> None:
    path = tmp_path / "truthful.yaml"
    path.write_text(VALID_GAME)
    result = runner.invoke(app, ["solve", str(path)])
    _ok(result)
    assert "every group reports truthfully" in result.stdout
    data = json.loads(runner.invoke(app, ["solve", str(path), "--format", "json"]).stdout)
    assert data["profiles"]["truthful"] == data["profiles"]["reported"]


@pytest.mark.parametrize("case", INVALID_GAME_FILES, ids=lambda c: c.name)
def test_solve_bad_game_file_exits_2_with_a_line_per_problem(case: InvalidGameFile, tmp_path: Path) -> None:
    for name, values in case.files.items():
        array = np.asarray(values, dtype=float)
        if name.endswith(".npy"):
            np.save(tmp_path / name, array)
        else:
            np.savetxt(tmp_path / name, np.atleast_2d(array), delimiter=",")
    path = tmp_path / "bad.yaml"
    path.write_text(case.text)
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    with pytest.raises(SpecError) as info:
        load_game(path)
    assert lines == [f"error: {line}" for line in info.value.lines()], result.stderr
    where = f"{path}:{case.line}: " if case.line is not None else f"{path}: "
    assert lines[0].startswith(f"error: {where}"), lines[0]
    if case.field:
        assert lines[0].startswith(f"error: {where}{case.field}: "), lines[0]
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_solve_missing_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["solve", str(tmp_path / "absent.yaml")])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {tmp_path / 'absent.yaml'}: cannot read the file")
    assert len(result.stderr.splitlines()) == 1


def test_error_line_prints_user_text_literally(tmp_path: Path) -> None:
    """Names from the file are not Rich markup: '[red]team' must reach the user as written."""
    path = tmp_path / "markup.yaml"
    path.write_text(
        VALID_GAME.replace("name: g1", 'name: "[red]team"').replace("name: g2", 'name: "[red]team"')
    )
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 2, result.output
    assert "duplicate group name '[red]team'" in result.stderr, result.stderr


def test_solve_table_prints_names_literally(tmp_path: Path) -> None:
    path = tmp_path / "markup.yaml"
    path.write_text(VALID_GAME.replace("name: g1", 'name: "[bold]team"'))
    result = runner.invoke(app, ["solve", str(path)])
    _ok(result)
    assert "[bold]team" in result.stdout


def test_solve_bad_option_exits_2() -> None:
    result = runner.invoke(app, ["solve", str(EXAMPLE), "--format", "xml"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_solve_bad_file_in_a_real_process(tmp_path: Path) -> None:
    """The installed entry point: exit 2, one stderr line, no traceback."""
    path = tmp_path / "bad.yaml"
    path.write_text(VALID_GAME.replace("lambda: 1.0", "lambda: -1"))
    proc = subprocess.run(
        [sys.executable, "-m", "rlhf_mech", "solve", str(path)], capture_output=True, check=False
    )
    stderr = proc.stderr.decode()
    assert proc.returncode == 2, stderr
    assert stderr.splitlines() == [
        f"error: {path}:5: divergence.lambda: lambda -1 is outside [1e-100, 1e+100], the range over "
        "which the solvers are checked: below it scores / lambda leave the float range, above it "
        "every payment is smaller than the rounding of the values it is a difference of"
    ]
    assert proc.stdout == b""


def test_schema_prints_json() -> None:
    result = runner.invoke(app, ["schema"])
    _ok(result)
    schema = json.loads(result.stdout)
    assert schema["title"] == "rlhf-mech game file (format v1: core, candidate-model or many-prompt game)"
    assert "groups" in schema["$defs"]["GameSpec"]["properties"]
    assert "candidates" in schema["$defs"]["CandidateGameSpec"]["properties"]
    assert "prompts" in schema["$defs"]["PromptGameSpec"]["properties"]
    assert runner.invoke(app, ["schema"]).stdout_bytes == result.stdout_bytes


def test_schema_of_the_candidate_format() -> None:
    result = runner.invoke(app, ["schema", "--candidates"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema["title"] == "rlhf-mech candidate-model game file"
    assert {"reward_models", "candidates", "groups"} <= set(schema["properties"])


@pytest.mark.slow
def test_help_lists_solve_and_schema() -> None:
    result = runner.invoke(app, ["--help"])
    _ok(result)
    assert "solve" in result.stdout and "schema" in result.stdout
    proc = subprocess.run([sys.executable, "-m", "rlhf_mech", "--help"], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"solve" in proc.stdout


# --- issue 15 ---------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def test_issue_15_top_n_ranks_by_truthful_and_reported() -> None:
    """rewardedsoups_news: the truthful winner (soup-13) was hidden below the reported ranking."""
    game = ROOT / "games" / "rewardedsoups_news.yaml"
    result = runner.invoke(app, ["solve", str(game), "--top", "2"])
    _ok(result)
    assert "fine-tuned distribution (top 2 of 23 outcomes, by max(truthful, reported))" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("│ soup-")][:2]
    assert [row.split()[1] for row in rows] == ["soup-13", "soup-18"]


def test_a_truthful_game_ranks_by_the_truthful_distribution(tmp_path: Path) -> None:
    path = tmp_path / "truthful.yaml"
    path.write_text(VALID_GAME)
    result = runner.invoke(app, ["solve", str(path)])
    assert "fine-tuned distribution (by truthful)" in result.stdout


def test_issue_15_json_gains_list_the_misreporting_groups_only() -> None:
    data = json.loads(runner.invoke(app, ["solve", str(EXAMPLE), "--format", "json"]).stdout)
    assert list(data["misreport_gains"]) == ["alices"]  # bobs reports truthfully


def test_issue_24_the_json_names_its_gains_apart_from_the_librarys() -> None:
    """The library's ``gains`` is every group's utility change; the JSON's key holds the
    misreporting groups' only, so it is named ``misreport_gains``, not ``gains``."""
    from rlhf_mech.core import solve

    solution = solve(load_game(EXAMPLE))
    data = json.loads(runner.invoke(app, ["solve", str(EXAMPLE), "--format", "json"]).stdout)
    assert "gains" not in data
    utilities = {
        p: {g["name"]: g["utility"] for g in data["profiles"][p]["groups"]} for p in ("truthful", "reported")
    }
    change = {name: utilities["reported"][name] - utilities["truthful"][name] for name in ("alices", "bobs")}
    assert data["misreport_gains"] == {"alices": pytest.approx(change["alices"], rel=0, abs=1e-15)}
    assert abs(float(solution.gains[0]) - data["misreport_gains"]["alices"]) <= 1e-15
    # alices' misreport moves the model, so the truthful bobs' utility changes too: the library has it
    assert abs(float(solution.gains[1]) - change["bobs"]) <= 1e-15 and solution.gains[1] > 1e-3


def test_issue_15_a_zero_kkt_residual_reads_0() -> None:
    result = runner.invoke(app, ["solve", str(ROOT / "games" / "rewardedsoups_news.yaml")])
    _ok(result)
    assert "KKT residual 0\n" in result.stdout and "-0.0e+00" not in result.stdout


def test_save_distribution_writes_both_rows_and_the_json_references_them(tmp_path: Path) -> None:
    target = tmp_path / "dist.npy"
    result = runner.invoke(
        app, ["solve", str(EXAMPLE), "--format", "json", "--save-distribution", str(target)]
    )
    _ok(result)
    data = json.loads(result.stdout)
    rows = np.load(target)
    assert rows.shape == (2, 4)
    assert data["profiles"]["truthful"]["distribution"] == {"file": str(target), "row": 0}
    assert data["profiles"]["reported"]["distribution"] == {"file": str(target), "row": 1}
    inline = json.loads(runner.invoke(app, ["solve", str(EXAMPLE), "--format", "json"]).stdout)
    assert rows.tolist() == [inline["profiles"][p]["distribution"] for p in ("truthful", "reported")]
    assert f"distributions written to {target}" in result.stderr


def test_save_distribution_needs_an_npy_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["solve", str(EXAMPLE), "--save-distribution", str(tmp_path / "d.csv")])
    assert result.exit_code == 2
    assert result.stderr == f"error: --save-distribution {tmp_path / 'd.csv'}: the file must end in .npy\n"


def test_solve_json_puts_each_distribution_on_one_line() -> None:
    result = runner.invoke(app, ["solve", str(EXAMPLE), "--format", "json"])
    line = next(line for line in result.stdout.splitlines() if '"distribution"' in line)
    assert line.strip().startswith('"distribution": [') and line.endswith("],")


def test_the_top_n_of_tied_outcomes_are_the_first_in_file_order(tmp_path: Path) -> None:
    from rlhf_mech.core import solve as solve_game
    from rlhf_mech.files import load_game
    from rlhf_mech.render._internal import distribution_table

    path = tmp_path / "ties.yaml"
    path.write_text(
        "outcomes: [a, b, c, d, e]\ngroups:\n  - {name: g, size: 1, reward: [0.2, 0.2, 0.2, 0.2, 0.2]}\n"
    )
    table = distribution_table(solve_game(load_game(path)), top=3)
    assert list(table.columns[0].cells) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            "training: {rule: maxmin, over: everyone}",
            ":3: training.over: Input should be 'agents' or 'groups'",
        ),
        ("payment: {rule: early_stopped, steps: many}", ":3: payment.steps: Input should be a valid integer"),
    ],
)
def test_an_invalid_rule_parameter_is_an_error_at_its_line(tmp_path: Path, rule: str, message: str) -> None:
    path = tmp_path / "rule.yaml"
    path.write_text(f"name: t\noutcomes: 2\n{rule}\ngroups:\n  - {{name: a, size: 1, reward: [0.5, 0.5]}}\n")
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {path}{message}\n"
