"""Tests of ``rlhf-mech audit`` (issue #4): exit codes, output formats, parallel runs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlhf_mech.cli import app
from rlhf_mech.core import solve
from rlhf_mech.files import load_game

runner = CliRunner()

GOOD = """\
name: good
outcomes: [a, b, c]
initial: [0.5, 0.3, 0.2]
normalization: sum
divergence: {kind: kl, lambda: 0.5}
max_size: 5
payment: affine_maximizer
groups:
  - name: g1
    size: 2
    reward: [0.2, 0.3, 0.5]
  - name: g2
    size: 1
    reward: [0.6, 0.2, 0.2]
"""

# Theorem 4.2's condition holds for both groups (min rm_i > 0, two distinct values).
NO_PAYMENT = GOOD.replace("name: good", "name: unpaid").replace("affine_maximizer", "none")

INVALID = GOOD.replace("name: good", "name: broken").replace("[0.2, 0.3, 0.5]", "[0.2, 0.3, 0.4]")


@pytest.fixture
def games(tmp_path: Path) -> Path:
    folder = tmp_path / "games"
    folder.mkdir()
    (folder / "good.yaml").write_text(GOOD, encoding="utf-8")
    (folder / "unpaid.yml").write_text(NO_PAYMENT, encoding="utf-8")
    (folder / "notes.txt").write_text("not a game", encoding="utf-8")
    return folder


def audit(*args: str):
    return runner.invoke(app, ["audit", *args, "--budget", "40"])


def test_clean_game_exits_0(games):
    result = audit(str(games / "good.yaml"))
    assert result.exit_code == 0, result.output
    assert "DSIC" in result.output and "no payment" in result.output
    assert "OK: 1 game, 2 groups: 8 checks passed, 0 failed" in result.output


def test_violation_exits_1_and_names_the_misreport(games):
    result = audit(str(games))
    assert result.exit_code == 1, result.output
    # read as words: a long temporary path may wrap the line at the terminal's width
    assert f"✗ {games / 'unpaid.yml'}:9: g1: DSIC (Definition 3.2)" in " ".join(result.output.split())
    assert "best misreport: size" in result.output
    assert "FAIL: 2 games, 4 groups" in result.output


def test_issue_4_counterexample_replays_with_solve(games, tmp_path):
    out = tmp_path / "cx"
    result = runner.invoke(
        app, ["audit", str(games / "unpaid.yml"), "--save-counterexamples", str(out), "--format", "json"]
    )
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    group = data["games"][0]["groups"][0]
    path = Path(group["counterexample"])
    assert path.parent == out
    replay = runner.invoke(app, ["solve", str(path), "--format", "json"])
    assert replay.exit_code == 0, replay.output
    gain = json.loads(replay.stdout)["misreport_gains"][group["name"]]
    assert gain == pytest.approx(group["dsic"]["max_gain"], abs=1e-9)
    assert solve(load_game(path)).gains[0] == pytest.approx(gain, abs=1e-12)


def test_invalid_file_exits_2_and_the_others_are_reported(games):
    (games / "broken.yaml").write_text(INVALID, encoding="utf-8")
    result = audit(str(games))
    assert result.exit_code == 2, result.output
    assert "broken.yaml:11: groups[0].reward: rewards sum to" in result.stderr
    assert "good" in result.stdout and "unpaid" in result.stdout
    assert "; 1 invalid file" in result.stdout


def test_missing_path_is_invalid_input(games):
    result = audit(str(games / "good.yaml"), str(games / "nope.yaml"))
    assert result.exit_code == 2
    assert "cannot read the file: No such file or directory" in result.stderr


def test_globs_and_directories(games):
    result = audit(str(games / "*.yaml"), "--format", "json")
    assert [g["game"] for g in json.loads(result.stdout)["games"]] == ["good"]
    result = audit(str(games / "*.nothing"))
    assert result.exit_code == 2 and "no file matches" in result.stderr


def test_junit_counts_failures(games, tmp_path):
    (games / "broken.yaml").write_text(INVALID, encoding="utf-8")
    junit = tmp_path / "audit.xml"
    result = audit(str(games), "--junit", str(junit))
    assert result.exit_code == 2
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    # good and unpaid: dsic, ir, nonnegative_payments, no_payment; broken: load
    assert len(cases) == 9 and root.get("tests") == "9"
    failed = [(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None]
    assert failed == [("unpaid", "dsic")]
    assert root.get("failures") == "1" and root.get("errors") == "1"
    assert [c.get("name") for c in cases if c.find("error") is not None] == ["load"]


def test_json_has_every_figure(games):
    result = audit(str(games / "good.yaml"), "--format", "json", "--noise", "0.01", "--samples", "8")
    assert result.exit_code == 0, result.output
    game = json.loads(result.stdout)["games"][0]
    assert game["search"]["budget"] == 40 and game["search"]["size_bound"] == 5
    group = game["groups"][0]
    assert set(group) >= {"truthful", "dsic", "no_payment", "noisy", "counterexample"}
    assert len(group["dsic"]["best_misreport"]["reward"]) == 3
    assert group["no_payment"]["prediction"]["theorem"] == "4.2"
    assert group["noisy"]["bound"] == pytest.approx(2 * 2 * 0.01)
    checks = {f["check"] for f in game["findings"]}
    assert checks == {"dsic", "ir", "nonnegative_payments", "no_payment", "noisy_dsic"}


@pytest.mark.slow
def test_same_seed_same_bytes_and_workers_do_not_matter(games):
    first = audit(str(games), "--seed", "7", "--format", "json")
    again = audit(str(games), "--seed", "7", "--format", "json")
    parallel = audit(str(games), "--seed", "7", "--format", "json", "-j", "2")
    assert first.stdout == again.stdout == parallel.stdout
    table_1 = audit(str(games), "--seed", "7")
    table_2 = audit(str(games), "--seed", "7", "-j", "2")
    assert table_1.stdout == table_2.stdout


def test_quiet_prints_the_summary_only(games):
    result = audit(str(games), "--quiet")
    assert result.exit_code == 1
    assert result.stdout.strip().splitlines() == [
        "FAIL: 2 games, 4 groups: 14 checks passed, 2 failed in 1 game"
    ]


def test_expect_block_turns_the_verdict(games):
    text = NO_PAYMENT + "expect:\n  dsic: false\n  profitable_without_payment: true\n"
    (games / "unpaid.yml").write_text(text, encoding="utf-8")
    result = audit(str(games))
    assert result.exit_code == 0, result.output


def test_dask_options_go_together(games):
    result = audit(str(games), "--backend", "dask")
    assert result.exit_code == 2
    assert "--backend dask and --scheduler go together" in result.stderr


def test_bad_noise_is_bad_input(games):
    result = audit(str(games), "--noise", "0")
    assert result.exit_code == 2


@pytest.mark.slow
def test_dask_backend_on_a_local_cluster(games):
    """The same audit on a dask.distributed.LocalCluster gives the same bytes as -j 1."""
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        remote = audit(
            str(games), "--format", "json", "--backend", "dask", "--scheduler", cluster.scheduler_address
        )
    local = audit(str(games), "--format", "json")
    assert remote.exit_code == 1, remote.output
    assert remote.stdout == local.stdout


def test_names_and_errors_are_printed_literally(tmp_path):
    (tmp_path / "[bold]markup.yaml").write_text(
        GOOD.replace("name: good", "name: '[bold]game'").replace("name: g1", "name: '[red]team'"),
        encoding="utf-8",
    )
    (tmp_path / "bad.yaml").write_text(
        GOOD.replace("name: g2", "name: '[red]team'").replace("name: g1", "name: '[red]team'"),
        encoding="utf-8",
    )
    result = audit(str(tmp_path))
    assert result.exit_code == 2
    assert "[bold]markup.yaml" in result.stdout and "[red]team" in result.stdout
    assert "duplicate group name '[red]team'" in result.stderr


def test_progress_bar_only_on_a_terminal():
    import io

    from rich.console import Console

    from rlhf_mech.render._internal import audit_progress

    with audit_progress(Console(file=io.StringIO()), 10) as advance:
        assert advance is None  # piped: no bar
    terminal = Console(file=io.StringIO(), force_terminal=True)
    with audit_progress(terminal, 10) as advance:
        assert callable(advance)
        advance()
    with audit_progress(terminal, 10, enabled=False) as advance:
        assert advance is None  # --quiet


# --- issue 15: CI formats, configuration, files named -----------------------------------------

SARIF_SCHEMA = Path(__file__).parent / "data" / "sarif" / "sarif-schema-2.1.0.json"

#: The unpaid game with an expect: block that fails twice (a range and a verdict).
EXPECTING = (
    NO_PAYMENT
    + """\
expect:
  dsic: true
  utility:
    g2: [5.0, 6.0]
"""
)


def test_issue_15_empty_directory_is_nothing_to_audit(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = audit(str(empty))
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: nothing to audit: no game files (*.yaml, *.yml) in {empty}\n"
    assert result.stdout == ""


def test_no_paths_and_no_configuration_is_bad_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["audit"])
    assert result.exit_code == 2
    assert "nothing to audit: give game files or directories" in result.stderr


def test_issue_15_rows_and_failures_name_the_file_not_the_game(tmp_path):
    """Two files holding games of the same name are told apart; failures carry FILE:LINE."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "unpaid.yaml").write_text(NO_PAYMENT, encoding="utf-8")
    result = audit(str(tmp_path))
    assert result.exit_code == 1, result.output
    for folder in ("a", "b"):
        path = tmp_path / folder / "unpaid.yaml"
        # the table's row, or the title of its table in the compact layout (the path is long)
        assert f"\n {path} " in result.stdout or f"\n{path}\n" in result.stdout
        assert f"✗ {path}:9: g1: DSIC (Definition 3.2)" in result.stdout
        assert f"✗ {path}:12: g2: DSIC (Definition 3.2)" in result.stdout


def test_expect_failures_point_at_their_entry(tmp_path):
    path = tmp_path / "expecting.yaml"
    path.write_text(EXPECTING, encoding="utf-8")
    result = audit(str(path))
    assert result.exit_code == 1
    words = " ".join(result.stdout.split())  # a long temporary path may wrap a line
    assert f"✗ {path}:18: g2: the file's expect: block:" in words  # utility: g2: [5, 6]
    assert f"✗ {path}:9: g1: DSIC (Definition 3.2)" in words  # dsic: true, checked per group


def test_github_annotations_sit_at_the_violated_line(tmp_path):
    path = tmp_path / "expecting.yaml"
    path.write_text(EXPECTING, encoding="utf-8")
    result = audit(str(path), "--output-format", "github")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"::error file={path},line=9,title=rlhf-mech%3A DSIC (Definition 3.2)::g1: ")
    assert any(
        line.startswith(f"::error file={path},line=18,title=rlhf-mech%3A the file's expect%3A block::g2: ")
        for line in lines
    )
    assert lines[-1] == "FAIL: 1 game, 2 groups: 6 checks passed, 3 failed in 1 game"


def test_github_annotations_of_an_invalid_file(games):
    (games / "broken.yaml").write_text(INVALID, encoding="utf-8")
    result = audit(str(games), "--format", "github")
    assert result.exit_code == 2
    broken = games / "broken.yaml"
    assert (
        f"::error file={broken},line=11,title=rlhf-mech%3A invalid game file::groups[0].reward: "
        in result.stdout
    )


def test_every_problem_of_an_invalid_file_is_located_in_every_format(games):
    """A file's problems are all reported in one run (issue 14), each at its own line: one
    ``error:`` line, one annotation and one SARIF result per problem; the file counts once."""
    broken = games / "broken.yaml"
    broken.write_text(INVALID.replace("    size: 1\n", "    size: 9\n"), encoding="utf-8")
    text = audit(str(broken))
    assert text.exit_code == 2, text.output
    assert text.stderr.splitlines() == [
        f"error: {broken}:11: groups[0].reward: rewards sum to 0.9; normalization 'sum' needs 1 (±1e-9)",
        f"error: {broken}:13: groups[1].size: size 9.0 is above max_size 5.0",
    ]
    assert "; 1 invalid file" in text.stdout
    github = audit(str(broken), "--format", "github").stdout.splitlines()
    assert [line.split(",title=")[0] for line in github[:-1]] == [
        f"::error file={broken},line=11",
        f"::error file={broken},line=13",
    ]
    results = json.loads(audit(str(broken), "--format", "sarif").stdout)["runs"][0]["results"]
    assert [(r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in results] == [
        ("invalid_file", 11),
        ("invalid_file", 13),
    ]
    assert results[1]["message"]["text"] == "groups[1].size: size 9.0 is above max_size 5.0"
    data = json.loads(audit(str(broken), "--format", "json").stdout)
    assert data["summary"]["invalid"] == 1
    assert data["games"] == [
        {"source": str(broken), "line": 11, "error": text.stderr.replace("error: ", "").strip()}
    ]


def test_sarif_is_valid_sarif_2_1_0(games, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    (games / "broken.yaml").write_text(INVALID, encoding="utf-8")
    (games / "expecting.yaml").write_text(EXPECTING, encoding="utf-8")
    result = audit(str(games), "--output-format", "sarif")
    assert result.exit_code == 2, result.output
    log = json.loads(result.stdout)
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.Draft4Validator(schema).validate(log)
    run = log["runs"][0]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    located = {
        (r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].rsplit("/", 1)[-1])
        for r in run["results"]
    }
    assert ("invalid_file", "broken.yaml") in located and ("dsic", "unpaid.yml") in located
    assert ("expect", "expecting.yaml") in located
    for r in run["results"]:
        assert rules[r["ruleIndex"]] == r["ruleId"] and r["level"] == "error"
        assert r["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1
    again = audit(str(games), "--output-format", "sarif")
    assert again.stdout == result.stdout  # no timestamps


def test_sarif_uses_relative_uris_for_relative_paths(games, monkeypatch):
    monkeypatch.chdir(games.parent)
    result = runner.invoke(app, ["audit", "games/unpaid.yml", "--budget", "40", "--format", "sarif"])
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in json.loads(result.stdout)["runs"][0]["results"]
    }
    assert uris == {"games/unpaid.yml"}


def test_junit_on_standard_output_equals_the_junit_file(games, tmp_path):
    junit = tmp_path / "audit.xml"
    on_stdout = audit(str(games), "--output-format", "junit", "--junit", str(junit))
    assert on_stdout.exit_code == 1
    assert on_stdout.stdout == junit.read_text(encoding="utf-8")
    assert ET.fromstring(on_stdout.stdout).get("failures") == "1"


PYPROJECT = """\
[project]
name = "my-games"

[tool.rlhf-mech]
paths = ["games"]
budget = 40
seed = 3
output-format = "json"
"""


def test_configuration_from_pyproject(games, monkeypatch):
    (games.parent / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    monkeypatch.chdir(games)  # found from a subdirectory too, as ruff and pytest do
    result = runner.invoke(app, ["audit"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert [g["source"] for g in data["games"]] == ["good.yaml", "unpaid.yml"]  # paths: relative to the file
    assert {g["search"]["budget"] for g in data["games"]} == {40}
    assert {g["search"]["seed"] for g in data["games"]} == {3}


def test_flags_override_the_configuration(games, monkeypatch):
    (games.parent / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    monkeypatch.chdir(games.parent)
    result = runner.invoke(
        app, ["audit", "games/good.yaml", "--budget", "50", "--format", "text", "--seed", "1"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("rlhf-mech audit")
    data = json.loads(runner.invoke(app, ["audit", "games/good.yaml", "--budget", "50"]).stdout)
    assert data["games"][0]["search"]["budget"] == 50 and data["games"][0]["search"]["seed"] == 3


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("budget = 5", "[tool.rlhf-mech] budget: expected an integer in 10..1000000, got 5"),
        ("tol = 'small'", "[tool.rlhf-mech] tol: expected a number >= 0 and <= 1e+100, got 'small'"),
        ("output-format = 'xml'", "[tool.rlhf-mech] output-format: 'xml' is not one of text, json"),
        ("colour = 'red'", "[tool.rlhf-mech]: unknown key 'colour' (expected one of: paths, budget"),
    ],
)
def test_a_bad_configuration_is_one_line_and_exit_2(games, monkeypatch, table, message):
    (games.parent / "pyproject.toml").write_text(f"[tool.rlhf-mech]\n{table}\n", encoding="utf-8")
    monkeypatch.chdir(games.parent)
    result = runner.invoke(app, ["audit", "games"])
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr


def test_a_pyproject_without_the_table_is_passed_over(games, monkeypatch):
    (games.parent / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (games / "pyproject.toml").write_text("[project]\nname = 'inner'\n", encoding="utf-8")
    monkeypatch.chdir(games)
    result = runner.invoke(app, ["audit"])
    assert json.loads(result.stdout)["games"][0]["search"]["budget"] == 40


def test_types_results_are_in_the_text_the_json_and_its_schema(write_game, tmp_path: Path) -> None:
    """Issue 24: ``--types`` (epsilon over the type set, the worst type, its replay file) goes
    to stdout and to each game's JSON, not to stderr alone; the figures are the library's."""
    import jsonschema
    import numpy as np

    from rlhf_mech.analysis import TypesSpec
    from rlhf_mech.analysis._internal import audit_types
    from rlhf_mech.render import audit_schema
    from rlhf_mech.render._internal import AUDIT_SCHEMA_VERSION

    path = write_game(NO_PAYMENT)
    args = ["audit", str(path), "--types", "vertices", "--budget", "20", "--save-counterexamples"]
    result = runner.invoke(app, [*args, str(tmp_path / "cx"), "--format", "json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    jsonschema.validate(data, audit_schema(AUDIT_SCHEMA_VERSION))
    types = data["games"][0]["types"]
    assert types["set"] == "vertices"
    game = load_game(path)
    for i, entry in enumerate(types["groups"]):
        expected = audit_types(
            game, i, TypesSpec("vertices"), game.mechanism.payment_rule, 20, np.random.default_rng([0, i])
        )
        assert entry["group"] == game.group_names[i]
        assert entry["types"] == 4  # the file's type and the simplex's 3 vertices
        assert entry["epsilon"] == expected.epsilon > 0
        assert entry["worst_type"]["parameters"] == expected.types[expected.worst].tolist()
        assert Path(entry["replay"]).is_file()
    text = " ".join(runner.invoke(app, [*args, str(tmp_path / "cx2")]).stdout.split())  # unwrapped
    for i, name in enumerate(game.group_names):
        epsilon = types["groups"][i]["epsilon"]
        assert f"game.yaml: {name}: epsilon over 4 types (vertices) {epsilon:+.4g}, worst type" in text
    assert text.count("; replay: rlhf-mech solve ") == 2
