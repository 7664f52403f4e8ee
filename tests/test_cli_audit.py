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
    assert f"✗ {games / 'unpaid.yml'}:9: g1: DSIC (Definition 3.2)" in result.output
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
    gain = json.loads(replay.stdout)["gains"][group["name"]]
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
    assert "no such file or directory" in result.stderr


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

    from rlhf_mech.render import audit_progress

    with audit_progress(Console(file=io.StringIO()), 10) as advance:
        assert advance is None  # piped: no bar
    terminal = Console(file=io.StringIO(), force_terminal=True)
    with audit_progress(terminal, 10) as advance:
        assert callable(advance)
        advance()
    with audit_progress(terminal, 10, enabled=False) as advance:
        assert advance is None  # --quiet
