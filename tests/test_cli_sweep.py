"""``rlhf-mech sweep`` (issue #3): exit code first, then what the user reads."""

from __future__ import annotations

import builtins
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from rich.progress import Progress
from typer.testing import CliRunner

from rlhf_mech.analysis import sweep
from rlhf_mech.cli import app
from rlhf_mech.files import load_game
from rlhf_mech.render._internal import MISSING_MATPLOTLIB, sweep_progress

runner = CliRunner()
GAME = str(Path(__file__).resolve().parents[1] / "games" / "harmless_vs_humor.yaml")

THREE_GROUPS = """\
name: three
outcomes: [a, b, c, d]
normalization: sum
divergence: {kind: kl, lambda: 0.5}
groups:
  - {name: ann, size: 3, reward: [0.1, 0.2, 0.3, 0.4]}
  - {name: ben, size: 2, reward: [0.4, 0.3, 0.2, 0.1]}
  - {name: cat, size: 1, reward: [0.25, 0.25, 0.4, 0.1]}
"""


def invoke(*args: str):
    return runner.invoke(app, ["sweep", *args])


def words(text: str) -> str:
    """The text with every run of whitespace as one space (Rich wraps long lines)."""
    return " ".join(text.split())


def test_alpha_table_like_the_paper() -> None:
    result = invoke(GAME, "--group", "alices", "--alpha", "0.2,0.5,1.5,2,3")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "alices: Strategy 1" in out
    for header in ("0.2", "0.5", "1*", "1.5", "2", "3"):
        assert header in out
    for row in (
        "valuation v_i",
        "group valuation w_i v_i",
        "payment",
        "utility w/o payment",
        "social welfare",
    ):
        assert row in out
    assert "reported sizes are real-valued" in words(out)
    assert "without payments alices gains +0.348 by reporting alpha=3" in words(out)
    assert "with affine-maximizer payments truth is optimal (best deviation -0.0328 at alpha=1.5)" in words(
        out
    )


def test_truth_is_added_and_range_lists_work() -> None:
    result = invoke(GAME, "--group", "bobs", "--beta", "0:3:0.5", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["sweeps"][0]
    assert [p["parameter"] for p in data["points"]] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert [p["truthful"] for p in data["points"]].count(True) == 1
    eps = json.loads(invoke(GAME, "--group", "bobs", "--epsilon", "0.01,0.02", "--format", "json").stdout)
    eps = eps["sweeps"][0]
    assert [p["parameter"] for p in eps["points"]] == [0.0, 0.01, 0.02]


def test_json_keys_are_stable() -> None:
    result = invoke(GAME, "--group", "alices", "--beta", "0.5,3", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["sweeps"][0]
    assert {"game", "group", "strategy", "points"} <= set(data)
    assert (data["game"], data["group"], data["strategy"]) == ("harmless-vs-humor", "alices", "mixing")
    point_keys = {
        "parameter",
        "report",
        "distribution",
        "valuation",
        "group_valuation",
        "payment",
        "utility",
        "utility_no_payment",
        "social_welfare",
        "clipped",
    }
    game = load_game(GAME)
    for point in data["points"]:
        assert point_keys <= set(point)
        assert set(point["report"]) == {"reward", "size"}
        assert len(point["report"]["reward"]) == len(point["distribution"]) == game.n_outcomes
        assert point["group_valuation"] == pytest.approx(game.truth.sizes[0] * point["valuation"], rel=1e-15)
        assert point["utility"] == pytest.approx(point["group_valuation"] - point["payment"], abs=1e-15)
        assert point["utility_no_payment"] == point["group_valuation"]
    assert [p["clipped"] for p in data["points"]] == [False, False, True]
    assert any("clipped to 0" in note for note in data["notes"])


def test_json_equals_the_library() -> None:
    data = json.loads(invoke(GAME, "--group", "alices", "--alpha", "2", "--format", "json").stdout)["sweeps"][
        0
    ]
    expected = sweep(load_game(GAME), "alices", "size", [2.0])
    assert [p["utility"] for p in data["points"]] == expected.utilities.tolist()
    assert [p["payment"] for p in data["points"]] == expected.payments.tolist()


def test_csv_has_one_row_per_point() -> None:
    result = invoke(GAME, "--group", "alices", "--epsilon", "0.01,0.2", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["parameter"] for r in rows] == ["0.0", "0.01", "0.2"]
    assert [r["truthful"] for r in rows] == ["true", "false", "false"]
    assert [r["clipped"] for r in rows] == ["false", "false", "true"]  # eps 0.2 > rm(refuse) = 0.1
    assert {r["payment_rule"] for r in rows} == {"affine_maximizer"}
    assert {r["strategy"] for r in rows} == {"polarise"}
    assert float(rows[0]["utility"]) > float(rows[1]["utility"]) > float(rows[2]["utility"])


def test_all_groups(tmp_path: Path) -> None:
    path = tmp_path / "three.yaml"
    path.write_text(THREE_GROUPS, encoding="utf-8")
    result = invoke(str(path), "--all-groups", "--beta", "0.5,2", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["sweeps"]
    assert [d["group"] for d in data] == ["ann", "ben", "cat"]
    assert all("size-weighted mean" in " ".join(d["notes"]) for d in data)
    table = invoke(str(path), "--all-groups", "--alpha", "2")
    assert table.exit_code == 0, table.output
    assert all(f"{name}: Strategy 1" in table.stdout for name in ("ann", "ben", "cat"))
    rows = list(
        csv.DictReader(
            io.StringIO(invoke(str(path), "--all-groups", "--alpha", "2", "--format", "csv").stdout)
        )
    )
    assert len(rows) == 6


def test_explicit_report() -> None:
    result = invoke(GAME, "--group", "alices", "--report-reward", "0.05,0.6,0.05,0.3", "--report-size", "4")
    assert result.exit_code == 0, result.output
    assert "truth*" in result.stdout and "report" in result.stdout
    assert "without payments alices gains" in words(result.stdout)
    assert "by reporting the given report" in words(result.stdout)
    data = json.loads(invoke(GAME, "--group", "alices", "--report-size", "4", "--format", "json").stdout)
    data = data["sweeps"][0]
    assert [p["report"]["size"] for p in data["points"]] == [3.0, 4.0]
    assert data["points"][1]["report"]["reward"] == data["points"][0]["report"]["reward"]


def test_explicit_report_from_a_file(tmp_path: Path) -> None:
    np.savetxt(tmp_path / "report.csv", [[0.05, 0.6, 0.05, 0.3]], delimiter=",")
    result = invoke(
        GAME, "--group", "alices", "--report-reward", str(tmp_path / "report.csv"), "--format", "json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sweeps"][0]["points"][1]["report"]["reward"] == [0.05, 0.6, 0.05, 0.3]


def test_payment_none_shows_no_payment_rows() -> None:
    result = invoke(GAME, "--group", "alices", "--alpha", "2", "--payment", "none")
    assert result.exit_code == 0, result.output
    assert "payment none" in words(result.stdout)
    assert "affine-maximizer" not in result.stdout
    assert "without payments alices gains" in words(result.stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--group", "carol", "--alpha", "2"], "no group named 'carol'; the groups are alices, bobs"),
        (["--group", "alices", "--alpha", "2", "--beta", "2"], "two strategies at once: --alpha and --beta"),
        (["--group", "alices", "--alpha", "2", "--report-size", "4"], "two strategies at once"),
        (["--group", "alices"], "no strategy"),
        (["--alpha", "2"], "exactly one of --group NAME and --all-groups"),
        (["--group", "alices", "--all-groups", "--alpha", "2"], "exactly one of --group"),
        (["--group", "alices", "--alpha", "0.2,x"], "--alpha: cannot read '0.2,x'"),
        (["--group", "alices", "--beta", "3:1:0.5"], "--beta: range '3:1:0.5' needs finite start <= stop"),
        (["--group", "alices", "--alpha", "-1"], "alpha = -1: alpha must be >= 0"),
        (["--group", "alices", "--epsilon", "-0.1"], "epsilon must be >= 0"),
        (["--group", "alices", "--report-reward", "0.5,0.5"], "expected 4 rewards"),
        (["--group", "alices", "--report-reward", "0.5,0.5,0.5,0.5"], "--report-reward: rewards sum to 2.0"),
        (["--group", "alices", "--report-size", "0"], "a reported size must be a positive number"),
    ],
)
def test_bad_options_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = invoke(GAME, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert result.stdout == ""


def test_missing_file_and_bad_format_exit_2(tmp_path: Path) -> None:
    result = invoke(str(tmp_path / "nope.yaml"), "--group", "a", "--alpha", "2")
    assert result.exit_code == 2, result.output
    assert "cannot read the file" in result.stderr
    assert invoke(GAME, "--group", "alices", "--alpha", "2", "--format", "xml").exit_code == 2


@pytest.mark.slow
def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "sweep.png"
    result = invoke(GAME, "--all-groups", "--beta", "0:3:0.25", "--plot", str(target), "--format", "csv")
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "plot written to" in result.stderr
    assert "plot written" not in result.stdout


def test_plot_without_matplotlib_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = invoke(GAME, "--group", "alices", "--alpha", "2", "--plot", str(tmp_path / "x.png"))
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"error: {MISSING_MATPLOTLIB}"
    assert "pip install matplotlib" in MISSING_MATPLOTLIB


def test_no_progress_bar_when_piped() -> None:
    result = invoke(GAME, "--group", "alices", "--beta", "0:3:0.001", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert len(result.stdout.splitlines()) == 3002


def test_progress_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    completed: list[float] = []

    class RecordingProgress(Progress):
        def update(self, task_id, **fields) -> None:
            completed.append(fields["completed"])
            super().update(task_id, **fields)

    monkeypatch.setattr("rlhf_mech.render._sweep.Progress", RecordingProgress)
    console = Console(file=io.StringIO(), force_terminal=True, width=80)
    game = load_game(GAME)
    with sweep_progress(console, 2 * 3001) as on_progress:
        assert on_progress is not None
        for group in ("alices", "bobs"):  # two sweeps count on one bar
            sweep(game, group, "mixing", np.linspace(0, 3, 3000), on_progress=on_progress)
    assert completed[-1] == 6002 and 3001 in completed
    assert completed == sorted(completed)
    with sweep_progress(console, 10) as on_progress:
        assert on_progress is None  # few points: no bar
    with sweep_progress(Console(file=io.StringIO()), 5000) as on_progress:
        assert on_progress is None  # not a terminal: no bar


def test_help_mentions_every_option() -> None:
    result = runner.invoke(app, ["sweep", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--group", "--all-groups", "--alpha", "--beta", "--epsilon", "--report-reward", "--plot"):
        assert option in result.stdout


# --- issue 15 ---------------------------------------------------------------------------------


def test_issue_15_the_documented_range_from_zero_works() -> None:
    """``--alpha 0:3:0.25`` (README): alpha = 0 is the group abstaining (size 0, no payment)."""
    result = invoke(GAME, "--group", "alices", "--alpha", "0:3:0.25", "--format", "json")
    assert result.exit_code == 0, result.output
    sweep_ = json.loads(result.stdout)["sweeps"][0]
    first = sweep_["points"][0]
    assert first["parameter"] == 0.0 and first["report"]["size"] == 0.0 and first["payment"] == 0.0
    assert any("alpha = 0: alices reports size 0 (abstains" in note for note in sweep_["notes"])
    assert len(sweep_["points"]) == 13


def test_issue_15_json_is_one_shape_for_one_group_and_for_all() -> None:
    one = json.loads(invoke(GAME, "--group", "alices", "--alpha", "2", "--format", "json").stdout)
    every = json.loads(invoke(GAME, "--all-groups", "--alpha", "2", "--format", "json").stdout)
    assert set(one) == set(every) == {"sweeps"}
    assert [s["group"] for s in one["sweeps"]] == ["alices"]
    assert [s["group"] for s in every["sweeps"]] == ["alices", "bobs"]
    assert one["sweeps"][0] == every["sweeps"][0]


def test_issue_15_csv_booleans_are_lowercase_and_the_payment_rule_is_a_column() -> None:
    result = invoke(GAME, "--group", "alices", "--alpha", "2", "--payment", "none", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0].keys() >= {"payment_rule", "truthful", "clipped"}
    assert [(r["payment_rule"], r["truthful"], r["clipped"]) for r in rows] == [
        ("none", "true", "false"),
        ("none", "false", "false"),
    ]


def test_issue_15_plot_reports_the_file_it_wrote(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    result = invoke(GAME, "--group", "alices", "--alpha", "2", "--plot", str(tmp_path / "noext"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "noext.png").read_bytes()[:4] == b"\x89PNG"
    assert f"plot written to {tmp_path / 'noext.png'}" in result.stderr
    quiet = invoke(GAME, "--group", "alices", "--alpha", "2", "--plot", str(tmp_path / "q.png"), "-q")
    assert quiet.stderr == "" and (tmp_path / "q.png").is_file()


def _axes(args: list[str]):
    from rlhf_mech.cli._options import SweepRequest
    from rlhf_mech.render._internal import sweep_figure

    options = dict(zip(args[::2], args[1::2], strict=True))
    request = SweepRequest.from_options(group="alices", all_groups=False, **options)
    results = request.run(load_game(GAME), None, None, False)
    figure = sweep_figure(results)
    return figure, figure.axes[0]


def test_issue_15_plot_labels_say_what_is_drawn() -> None:
    pytest.importorskip("matplotlib")
    figure, ax = _axes(["alpha", "0.5,2"])
    assert ax.get_ylabel() == "valuation, payment and utility"
    assert ax.get_xlabel() == "alpha"
    assert "harmless-vs-humor: valuation, payment and utility" in figure._suptitle.get_text()


def test_issue_15_an_explicit_report_is_drawn_at_two_named_positions() -> None:
    pytest.importorskip("matplotlib")
    _, ax = _axes(["report_size", 4.0])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["truthful", "report"]
    assert ax.get_xlabel() == "report"


def test_issue_15_a_plot_without_payment_does_not_speak_of_payments() -> None:
    pytest.importorskip("matplotlib")
    from rlhf_mech.analysis import sweep as run_sweep
    from rlhf_mech.render._internal import sweep_figure

    figure = sweep_figure([run_sweep(load_game(GAME), "alices", "size", [2.0], "none")])
    assert "payment and utility" not in figure._suptitle.get_text()
    assert figure.axes[0].get_ylabel() == "valuation (= utility: no payment)"
    assert figure.axes[0].get_lines()[0].get_label() == "valuation = utility (w_i v_i)"


def test_issue_15_a_long_title_is_wrapped_to_the_figure() -> None:
    pytest.importorskip("matplotlib")
    figure, _ = _axes(["alpha", "2"])
    lines = figure._suptitle.get_text().splitlines()
    assert len(lines) >= 2 and max(len(line) for line in lines) <= 64  # 6.4 inches x 10 characters


def test_sizes_above_max_size_are_marked_and_left_out_of_the_verdict() -> None:
    """Issue 24: harmless_vs_humor has max_size 10 and alices size 3, so alpha = 4 and 5
    report sizes 12 and 15, which the game does not allow; without payment they gain more
    than any allowed point, yet the verdict is alpha = 3's (the largest allowed: an edge)."""
    game = load_game(GAME)
    result = sweep(game, "alices", "size", [0.5, 2, 3, 4, 5], payment_rule="none")
    np.testing.assert_array_equal(result.within_max_size, [True, True, True, True, False, False])
    gains = result.gains(with_payment=False)
    assert gains[4] > gains[3] and gains[5] > gains[3]  # the disallowed points gain more
    assert result.best_deviation(with_payment=False) == (float(gains[3]), 3)
    assert result.at_edge(3) and not result.at_edge(2)
    assert not result.is_best("group_valuations")[4:].any()
    out = invoke(GAME, "--group", "alices", "--alpha", "0.5,2,3,4,5", "--payment", "none")
    assert out.exit_code == 0, out.output
    text = " ".join(out.stdout.split())  # the paragraphs unwrapped
    assert "4‡" in text and "5‡" in text and "3‡" not in text
    assert "alpha = 4, 5: reported size above max_size 10" in text
    assert (
        f"alices gains {gains[3]:+.3g} by reporting alpha=3 (the edge of the range swept: a wider "
        "range may gain more)" in text
    )
    assert "training sw_max, payment none" in text
    points = json.loads(invoke(GAME, "--group", "alices", "--alpha", "3,4", "--format", "json").stdout)
    assert [p["within_max_size"] for p in points["sweeps"][0]["points"]] == [True, True, False]


def test_the_legend_names_the_mark_of_the_best_value_for_each_layout() -> None:
    """The best value is bracketed (bold is lost without colour); the legend says row or
    column, as the layout has them."""
    wide = invoke(GAME, "--group", "alices", "--alpha", "0.5,2", "--payment", "none").stdout
    assert "[x]: best for the group in its row" in wide and "bold" not in wide
    long = ",".join(str(a) for a in np.linspace(0.2, 3, 12))
    tall = invoke(GAME, "--group", "alices", "--alpha", long, "--payment", "none").stdout
    assert "[x]: best for the group in its column" in tall
    best = sweep(load_game(GAME), "alices", "size", [0.5, 2], payment_rule="none")
    k = int(np.argmax(best.group_valuations))
    assert f"[{best.group_valuations[k]:.4g}]" in wide


PROMPTS = str(Path(GAME).parent / "prompts" / "three_prompts.yaml")


def test_a_game_of_many_prompts_is_swept_one_prompt_at_a_time() -> None:
    """Issue 24: ``--prompt K`` sweeps prompt K of a game of many prompts as its own game."""
    game = load_game(PROMPTS)
    out = invoke(PROMPTS, "--group", "helpful", "--alpha", "0.5,2", "--prompt", "1", "--format", "json")
    assert out.exit_code == 0, out.output
    points = json.loads(out.stdout)["sweeps"][0]["points"]
    expected = sweep(game.game(1), "helpful", "size", [0.5, 2])
    assert [p["utility"] for p in points] == expected.utilities.tolist()
    assert json.loads(out.stdout)["sweeps"][0]["game"] == "three-prompts [prompt 1]"
    for args, message in (
        ((), "a game of 3 prompts; sweep takes one outcome set: give --prompt K (0 to 2)"),
        (("--prompt", "3"), "--prompt 3: the game has prompts 0 to 2"),
    ):
        bad = invoke(PROMPTS, "--group", "helpful", "--alpha", "2", *args)
        assert bad.exit_code == 2 and message in bad.output, bad.output
    one = invoke(GAME, "--group", "alices", "--alpha", "2", "--prompt", "0")
    assert one.exit_code == 2 and "is a game of one prompt" in one.output
