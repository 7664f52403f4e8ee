"""Issue 24: the audit, sweep and import output fits ``$COLUMNS`` (80 included) with no cell
wrapped or cut: a table too wide is printed in its compact layout
(:class:`rlhf_mech.render.Fitted`), paragraphs are wrapped at the width; a pipe without
``$COLUMNS`` has no limit (the lines stay whole)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from rlhf_mech.cli import app
from rlhf_mech.core import PromptGame
from rlhf_mech.files import load_game
from rlhf_mech.render._internal import Fitted

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
GAMES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "games").rglob("*.yaml"))
LOGS = Path("tests") / "data" / "logs"  # from ROOT, as a user of the checkout names them
WIDTHS = (80, 200)


def _widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def _run(args: list[str], width: int) -> str:
    result = runner.invoke(app, args, env={"COLUMNS": str(width)})
    assert result.exit_code in (0, 1), result.output
    return result.stdout


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("game", [g for g in GAMES if "large" not in g])
def test_a_sweep_fits_the_width(game: str, width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    prompt = ["--prompt", "0"] if isinstance(load_game(game), PromptGame) else []
    text = _run(["sweep", game, "--all-groups", "--alpha", "0.2,0.5,1.5,2,3,4,5,6", *prompt], width)
    assert _widest(text) <= width
    assert "…" not in text  # no cell cut


@pytest.mark.parametrize("width", WIDTHS)
def test_imports_fit_the_width(width: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    example = "games/import_example"
    for args in (
        ["import", str(LOGS / "trl" / "plain"), "--inspect"],
        ["import", str(LOGS / "trl" / "plain"), "--step", "all", "-o", str(tmp_path / f"steps{width}")],
        [
            "import",
            str(LOGS / "openrlhf" / "helpful.jsonl"),
            str(LOGS / "openrlhf" / "harmless.jsonl"),
            "-o",
            str(tmp_path / f"rm{width}.yaml"),
        ],
        [
            "import",
            f"{example}/model_a.csv",
            f"{example}/model_b.csv",
            "--reward-col",
            "helpful=score_helpful",
            "--reward-col",
            "harmless=score_harmless",
            "--logratio-col",
            "logratio",
            "-o",
            str(tmp_path / f"candidates{width}.yaml"),
        ],
    ):
        result = runner.invoke(app, args, env={"COLUMNS": str(width)})
        assert result.exit_code == 0, result.output
        assert _widest(result.output) <= width, args
        assert "…" not in result.output


@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_the_audit_of_every_bundled_game_fits_the_width(width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    text = _run(["audit", "games", "--budget", "10"], width)
    assert _widest(text) <= width
    assert "…" not in text
    for game in GAMES:
        assert game in text  # every file named whole


def _table(columns: int) -> Table:
    table = Table(title="a title that is longer than the table itself, by some way")
    for k in range(columns):
        table.add_column(f"column {k}", no_wrap=True)
    table.add_row(*(f"cell-{k}-of-the-row" for k in range(columns)))
    return table


@pytest.mark.parametrize("width", (40, 80, 200))
def test_fitted_keeps_the_table_where_it_fits_and_its_records_where_not(width: int) -> None:
    console = Console(width=width, no_color=True, record=True)
    with console.capture() as capture:
        console.print(Fitted(_table(4)))
    text = capture.get()
    assert _widest(text) <= width
    cells = [f"cell-{k}-of-the-row" for k in range(4)]
    assert all(cell in text for cell in cells)  # never cut
    assert ("│" in text) == (width == 200)  # the table at 200; below, its records (no frame)
