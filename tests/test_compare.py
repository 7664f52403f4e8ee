"""``rlhf-mech compare`` (issue 24): the grid, its figures against independent references, the
least-cost payments against a linear programme, the outputs."""

from __future__ import annotations

import csv
import io
import json
from functools import cache
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from scipy.optimize import linprog
from typer.testing import CliRunner

from rlhf_mech.analysis import (
    CompareOptions,
    Comparison,
    compare,
    implementability,
    least_cost_payments,
    pareto_front,
)
from rlhf_mech.analysis._internal import mechanism_grid
from rlhf_mech.cli import app
from rlhf_mech.core import AFFINE_MAXIMIZER, ALL_PAYMENT_RULES, EARLY_STOPPED, NONE
from rlhf_mech.files._internal import read_game
from rlhf_mech.render import compare_schema, compare_to_csv, compare_to_json, render_compare

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
GAME = "games/harmless_vs_humor.yaml"
SMALL = CompareOptions(budget=30, samples=8, type_points=6)


@cache
def _comparison(path: str = GAME, training: str | None = None) -> Comparison:
    game = read_game(path)
    rules = None if training is None else [game.mechanism.training_rule]
    pairs, skipped = mechanism_grid(game, rules)
    return compare(game, pairs, SMALL, skipped)


# --- least-cost payments ----------------------------------------------------------------------


def _lp(gains: np.ndarray, own: np.ndarray, tol: float, sense: float) -> np.ndarray:
    """The cheapest (sense 1) or highest (sense -1) DSIC, IR, p >= 0 payments by a linear
    programme: min sense * sum p s.t. p_b - p_a <= L[a, b] + tol/K, 0 <= p <= V[b, b]."""
    k = gains.shape[0]
    rows, bounds = [], []
    for a in range(k):
        for b in range(k):
            if a != b:
                row = np.zeros(k)
                row[b], row[a] = 1.0, -1.0
                rows.append(row)
                bounds.append(gains[a, b] + tol / k)
    result = linprog(
        sense * np.ones(k),
        A_ub=np.array(rows),
        b_ub=np.array(bounds),
        bounds=list(zip(np.zeros(k), own, strict=True)),
        method="highs",
    )
    assert result.status == 0
    return result.x


@pytest.mark.parametrize("group", [0, 1])
@pytest.mark.parametrize("kind, points", [("random", 12), ("grid", 3)])
def test_least_cost_payments_are_the_linear_programmes_optima(group: int, kind: str, points: int) -> None:
    """The shortest-path extremes equal linprog's (entrywise extreme, so also the revenue
    optima), and p^AFF (Proposition 4.4: DSIC, IR, >= 0 everywhere) lies between them."""
    game = read_game(GAME)
    result = implementability(game, group, kind=kind, points=points, sizes=[1.0, 3.0, 7.0], seed=3)
    least = least_cost_payments(result)
    assert least.exists and least.lowest is not None and least.highest is not None
    own = np.diag(result.valuations)
    scale = max(1.0, float(np.abs(result.valuations).max()))
    for sense, ours in ((1.0, least.lowest), (-1.0, least.highest)):
        reference = _lp(result.gains, own, result.tol, sense)
        np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-9 * scale)
    assert result.aff_payments is not None
    assert np.all(least.lowest <= result.aff_payments + 1e-9 * scale)
    assert np.all(result.aff_payments <= least.highest + 1e-9 * scale)
    # both are DSIC, IR and >= 0 on the set
    for p in (least.lowest, least.highest):
        assert np.max(p[None, :] - p[:, None] - result.gains) <= result.tol
        assert np.all(p >= 0) and np.all(p <= own + 1e-12 * scale)


def test_no_least_cost_payment_without_cycle_monotonicity() -> None:
    """MaxMin has negative cycles (appendix E): no payment at all, and the reason says so."""
    result = implementability(read_game("games/rules/maxmin.yaml"), 0, kind="random", points=24, seed=0)
    least = least_cost_payments(result)
    assert not result.monotone
    assert not least.exists and least.at_truth is None and "cycle monotone" in least.reason


# --- the grid and its figures -------------------------------------------------------------------


def test_the_default_grid_is_every_pair_that_forms_a_mechanism() -> None:
    game = read_game(GAME)
    pairs, skipped = mechanism_grid(game)
    names = [(t.name, dict(t.parameters).get("over"), p.name, dict(p.parameters)) for t, p in pairs]
    # a parameter with a finite set of choices (Heuristic 1's initial model) is a grid axis
    assert names == [
        ("sw_max", None, "none", {}),
        ("sw_max", None, "affine_maximizer", {}),
        ("sw_max", None, "intermediate_checkpoints", {"initial": "included"}),
        ("sw_max", None, "intermediate_checkpoints", {"initial": "excluded"}),
        ("sw_max", None, "early_stopped", {}),
        ("maxmin", "agents", "none", {}),
        ("maxmin", "groups", "none", {}),
        ("nash", None, "none", {}),
        ("alpha_fair", None, "none", {}),
    ]
    assert {(t, p) for t, p, _ in skipped} == {
        (t, p.name) for t in ("maxmin", "nash", "alpha_fair") for p in ALL_PAYMENT_RULES if p.additive_only
    }
    steps, _ = mechanism_grid(game, payment=[EARLY_STOPPED], payment_grid={"steps": [5, 20]})
    assert [p.setting("steps") for _, p in steps if p.name == "early_stopped"] == [5, 20]


def test_figures_match_the_mechanism_and_the_theorems() -> None:
    c = _comparison(GAME, "sw_max")
    game = read_game(GAME)
    by_rule: dict = {}
    for m in c.mechanisms:  # the first of each rule is at its default settings (the file's)
        by_rule.setdefault(m.payment.name, m)
    for name, m in by_rule.items():
        solved = game.solve(name).truthful
        assert m.social_welfare == pytest.approx(float(solved.social_welfare), abs=1e-12)
        assert m.revenue == pytest.approx(float(solved.payments.sum()), abs=1e-12)
        assert m.lowest_utility == pytest.approx(float(solved.utilities.min()), abs=1e-12)
    n = game.n_groups
    assert (by_rule["affine_maximizer"].full_runs, by_rule["affine_maximizer"].early_stopped_runs) == (
        n + 1,
        0,
    )
    assert (by_rule["none"].full_runs, by_rule["intermediate_checkpoints"].full_runs) == (1, 1)
    assert (by_rule["early_stopped"].full_runs, by_rule["early_stopped"].early_stopped_runs) == (1, n)
    # Theorem 4.2 (no payment: gameable) and Proposition 4.4 (p^AFF: not), both as expected
    assert by_rule["none"].gameable and not by_rule["affine_maximizer"].gameable
    assert all(m.as_expected for m in c.mechanisms)
    assert by_rule["none"].dsic_payment is AFFINE_MAXIMIZER
    # p^AFF never charges a negative payment (Proposition 4.4)
    assert by_rule["affine_maximizer"].negative_share == 0.0
    for g in by_rule["none"].groups:
        assert g.gain_share == pytest.approx(g.gain / g.utility, rel=1e-15)


def test_pareto_front_against_brute_force() -> None:
    rng = np.random.default_rng(0)
    points = rng.integers(0, 4, size=(40, 3)).astype(float)
    expected = [
        not any(np.all(points[b] <= points[a]) and np.any(points[b] < points[a]) for b in range(40))
        for a in range(40)
    ]
    assert pareto_front(points).tolist() == expected


def test_a_game_of_many_prompts() -> None:
    c = _comparison("games/prompts/three_prompts.yaml")
    assert {m.payment.name for m in c.mechanisms} == {"none", "affine_maximizer", "early_stopped"}
    assert not c.least_cost and any("one prompt" in n for n in c.notes)
    none = next(m for m in c.mechanisms if m.payment is NONE)
    assert none.gameable


# --- outputs ------------------------------------------------------------------------------------


def test_json_is_valid_against_its_schema_and_csv_has_a_row_per_mechanism_and_group() -> None:
    c = _comparison(GAME)
    data = json.loads(json.dumps(compare_to_json(c)))
    jsonschema.validate(data, compare_schema())
    assert [m["pareto"] for m in data["mechanisms"]] == [m.pareto for m in c.mechanisms]
    rows = list(csv.DictReader(io.StringIO(compare_to_csv(c))))
    assert len(rows) == len(c.mechanisms) * c.game.n_groups
    assert {r["pareto"] for r in rows} <= {"true", "false"}


def test_the_text_fits_80_columns() -> None:
    from rich.console import Console

    console = Console(width=200, record=True, color_system=None)
    console.print(render_compare(_comparison(GAME)))
    lines = console.export_text().splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80


def test_cli_compare_is_deterministic_and_reports_bad_options() -> None:
    args = ["compare", GAME, "--training", "sw_max", "--payment", "none,affine_maximizer", "--budget", "20"]
    args += ["--samples", "4", "--types", "4", "--format", "json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert runner.invoke(app, args).stdout == first.stdout
    assert len(json.loads(first.stdout)["mechanisms"]) == 2
    for bad, message in (
        (["--training", "sw_maxx"], "--training"),
        (["--payment-param", "stepz=1,2"], "not a parameter to compare"),
        (["--payment-param", "steps=a"], "is not a number"),
        (["--payment-param", "steps=0"], "steps"),
    ):
        result = runner.invoke(app, ["compare", GAME, *bad])
        assert result.exit_code == 2
        assert message in result.stderr and "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_plot_is_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "compare.svg"
    args = ["compare", GAME, "--training", "sw_max", "--budget", "20", "--samples", "4", "--types", "0"]
    result = runner.invoke(app, [*args, "--plot", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8").lstrip().startswith(("<?xml", "<svg"))


# --- small defects of issue 24 ------------------------------------------------------------------


def test_a_typo_in_a_registry_name_gets_a_suggestion() -> None:
    result = runner.invoke(app, ["solve", GAME, "--payment", "afine_maximizer"])
    assert result.exit_code == 2
    assert "(did you mean 'affine_maximizer'?)" in result.stderr


def test_audit_help_keeps_the_configuration_table_name() -> None:
    result = runner.invoke(app, ["audit", "--help"])
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "Default: paths of [tool.rlhf-mech] in pyproject.toml" in text


def test_a_saved_cycle_names_a_replay_path_that_exists_from_where_it_was_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    game = str(Path(GAME).resolve().parent / "rules" / "maxmin.yaml")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app, ["implementability", game, "--group", "safety", "--points", "4", "--save-cycle", "out"]
    )
    assert result.exit_code == 1, result.output
    first = sorted((tmp_path / "out").glob("*.yaml"))[0]
    replay = first.read_text(encoding="utf-8").split("Replay: rlhf-mech solve ")[1].split()[0]
    assert (tmp_path / replay).resolve() == first.resolve()


def test_more_samples_than_implementability_keeps_types_are_all_drawn() -> None:
    """``--samples`` above 2 x implementability's type cap (2,000) is a larger sample of random
    reports for the share of negative payments, not an error naming another command's option."""
    game = str(ROOT / "games" / "harmless_vs_humor.yaml")
    args = ["compare", game, "--training", "sw_max", "--payment", "affine_maximizer", "--format", "json"]
    result = runner.invoke(app, [*args, "--samples", "5000", "--types", "0"])
    assert result.exit_code == 0, result.output
    assert "--points" not in result.output
    mechanism = json.loads(result.stdout)["mechanisms"][0]
    assert mechanism["negative_payment_share"] == 0.0  # p^AFF >= 0 (Proposition 4.4)
