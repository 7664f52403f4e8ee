"""What every command of ``rlhf-mech`` shares, as CI users expect from ruff or pytest (issue 15).

``--version``; shell completion; ``-q``/``-v`` and ``--color`` on every command; ``-`` for
standard input (game files) and output (``import -o -``); ``--help`` shows flags as flags;
names are never cut and no printed line ends in spaces; messages name no pydantic class.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cases import INVALID_GAME_FILES, VALID_GAME
from conftest import write_arrays
from typer.testing import CliRunner

from rlhf_mech import __version__
from rlhf_mech.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "games" / "harmless_vs_humor.yaml"
IMPORT_FILES = [str(ROOT / "games" / "import_example" / name) for name in ("model_a.csv", "model_b.csv")]

#: One valid invocation of every command (the game file last where the command takes one).
COMMANDS: dict[str, list[str]] = {
    "solve": ["solve", str(EXAMPLE)],
    "schema": ["schema"],
    "sweep": ["sweep", str(EXAMPLE), "--group", "alices", "--alpha", "2"],
    "audit": ["audit", str(EXAMPLE), "--budget", "20"],
}


def test_version_prints_the_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"rlhf-mech {__version__}\n"


def test_shell_completion_is_typers(monkeypatch: pytest.MonkeyPatch) -> None:
    # typer asks shellingham for the shell from the process tree, which a detached CI job
    # may not have: name it, so that the test is about our wiring of typer's completion
    import shellingham

    monkeypatch.setattr(shellingham, "detect_shell", lambda: ("bash", "/bin/bash"))
    result = runner.invoke(app, ["--show-completion"])
    assert result.exit_code == 0, result.output
    assert "_RLHF_MECH_COMPLETE" in result.stdout
    assert "--install-completion" in runner.invoke(app, ["--help"]).stdout


@pytest.mark.parametrize("command", [*COMMANDS, "import"])
def test_every_command_takes_quiet_verbose_and_color(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--quiet", "-q", "--verbose", "-v", "--color"):
        assert option in result.stdout, option


@pytest.mark.parametrize("command", COMMANDS)
def test_verbose_prints_each_step_with_its_time_on_stderr(command: str) -> None:
    quiet = runner.invoke(app, [*COMMANDS[command], "-q"])
    verbose = runner.invoke(app, [*COMMANDS[command], "-v"])
    assert quiet.exit_code == verbose.exit_code == 0, verbose.output
    assert quiet.stderr == ""
    if command != "schema":
        assert "rlhf-mech: load " in verbose.stderr and " s\n" in verbose.stderr
    assert verbose.stdout == runner.invoke(app, COMMANDS[command]).stdout  # stdout is the same


def test_quiet_and_verbose_together_are_bad_input() -> None:
    result = runner.invoke(app, [*COMMANDS["solve"], "-q", "-v"])
    assert result.exit_code == 2
    assert result.stderr == "error: give at most one of -q/--quiet and -v/--verbose\n"


def test_color_always_colours_a_pipe_even_with_no_color_set() -> None:
    always = runner.invoke(app, [*COMMANDS["solve"], "--color", "always"])  # NO_COLOR=1 in conftest
    assert always.exit_code == 0, always.output
    assert "\x1b[" in always.stdout
    for choice in ("never", "auto"):
        result = runner.invoke(app, [*COMMANDS["solve"], "--color", choice])
        assert "\x1b[" not in result.stdout, choice


def test_color_always_keeps_the_words_and_no_trailing_spaces() -> None:
    plain = runner.invoke(app, [*COMMANDS["solve"], "--color", "never"]).stdout
    coloured = runner.invoke(app, [*COMMANDS["solve"], "--color", "always"]).stdout
    import re

    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain
    assert not any(line.endswith(" ") for line in coloured.splitlines())


def test_bad_color_is_bad_input() -> None:
    result = runner.invoke(app, [*COMMANDS["solve"], "--color", "sometimes"])
    assert result.exit_code == 2


TYPER_VERSION = tuple(int(part) for part in importlib.metadata.version("typer").split(".")[:2])


@pytest.mark.skipif(TYPER_VERSION >= (0, 27), reason="Typer 0.27-0.29 show <type> metavars (their own style)")
def test_help_shows_flags_as_flags_and_arguments_by_name() -> None:
    """With Typer 0.26, no ``--all-groups <bool>`` nor ``{game_file}`` (issue 15); Typer 0.27
    to 0.29 print every option's type that way, which the pin now allows (issue 21)."""
    result = runner.invoke(app, ["sweep", "--help"])
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout and "{game_file}" not in result.stdout
    assert "GAME_FILE" in result.stdout
    line = next(line for line in result.stdout.splitlines() if "--all-groups" in line)
    assert "Sweep every group in turn." in line and "BOOL" not in line.upper().split("SWEEP")[0]


def test_a_game_file_can_come_from_standard_input() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    piped = runner.invoke(app, ["solve", "-", "--format", "json"], input=text)
    direct = runner.invoke(app, ["solve", str(EXAMPLE), "--format", "json"])
    assert piped.exit_code == 0, piped.output
    assert piped.stdout == direct.stdout
    sweep = runner.invoke(
        app, ["sweep", "-", "--group", "alices", "--alpha", "2", "--format", "csv"], input=text
    )
    assert sweep.exit_code == 0 and sweep.stdout.count("\n") == 3
    audit = runner.invoke(app, ["audit", "-", "--budget", "20", "-q"], input=text)
    assert audit.exit_code == 0, audit.output


def test_errors_in_standard_input_are_located_in_stdin() -> None:
    bad = VALID_GAME.replace("lambda: 1.0", "lambda: -1")
    result = runner.invoke(app, ["solve", "-"], input=bad)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: <stdin>:5: divergence.lambda: lambda -1 is outside [1e-100, 1e+100]"
    )
    assert result.stderr.count("\n") == 1


def test_import_writes_the_game_to_standard_output(tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", *IMPORT_FILES, "-o", "-"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Written by rlhf-mech import from")
    assert "wrote standard output" in result.stderr  # the report goes to stderr
    path = tmp_path / "piped.yaml"
    path.write_text(result.stdout, encoding="utf-8")
    written = tmp_path / "written.yaml"
    assert runner.invoke(app, ["import", *IMPORT_FILES, "-o", str(written)]).exit_code == 0
    solved = [runner.invoke(app, ["solve", str(p), "--format", "json"]).stdout for p in (path, written)]
    assert json.loads(solved[0])["profiles"] == json.loads(solved[1])["profiles"]


def test_import_to_standard_output_puts_every_array_inline(tmp_path: Path) -> None:
    rows = "\n".join(f"{i / 40:.3f},{1 - i / 40:.3f}" for i in range(40))
    samples = tmp_path / "samples.csv"
    samples.write_text("helpful,harmless\n" + rows + "\n", encoding="utf-8")
    result = runner.invoke(app, ["import", str(samples), "-o", "-", "-q"])
    assert result.exit_code == 0, result.output
    assert "file:" not in result.stdout and result.stderr == ""
    game = tmp_path / "game.yaml"
    game.write_text(result.stdout, encoding="utf-8")
    assert runner.invoke(app, ["solve", str(game)]).exit_code == 0


LONG_NAMES = """\
name: a-game-whose-name-is-longer-than-eighty-columns-of-any-terminal-that-prints-it-whole
outcomes: [an_outcome_with_a_rather_long_identifier, another_outcome_with_a_long_identifier]
groups:
  - name: summary-quality-of-the-news-articles
    size: 2
    reward: [0.7, 0.3]
  - name: harmlessness
    size: 1
    reward: [0.2, 0.8]
    report: {reward: [0.1, 0.9]}
"""


def _run_piped(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed entry point with stdout a pipe and no COLUMNS: what CI and `| less` see."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run(
        [sys.executable, "-m", "rlhf_mech", *args], capture_output=True, text=True, env=env, check=False
    )


@pytest.mark.slow
def test_issue_15_names_are_never_cut_and_no_line_ends_in_spaces(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text(LONG_NAMES, encoding="utf-8")
    names = ("summary-quality-of-the-news-articles", "an_outcome_with_a_rather_long_identifier")
    for args in (
        ["solve", str(path)],
        ["sweep", str(path), "--group", "summary-quality-of-the-news-articles", "--alpha", "0.5,2"],
        ["audit", str(path), "--budget", "20"],
    ):
        result = _run_piped(*args)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert not [line for line in lines if line != line.rstrip()], args
        assert "…" not in result.stdout, args
        assert "summary-quality-of-the-news-articles" in result.stdout, args
        if args[0] == "solve":
            assert all(name in result.stdout for name in names)
            assert "a-game-whose-name-is-longer-than-eighty-columns-of-any-terminal-that-prints-it-whole" in (
                result.stdout
            )


def test_the_audit_table_keeps_every_path_whole_at_80_columns(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder-with-a-long-name" / "and-another-one-below-it"
    folder.mkdir(parents=True)
    (folder / "first-game-file-with-a-long-name.yaml").write_text(VALID_GAME, encoding="utf-8")
    (folder / "second-game-file-with-a-long-name.yaml").write_text(VALID_GAME, encoding="utf-8")
    result = runner.invoke(app, ["audit", str(folder), "--budget", "20"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    for name in ("first-game-file-with-a-long-name.yaml", "second-game-file-with-a-long-name.yaml"):
        assert str(folder / name) in result.stdout


@pytest.mark.parametrize("case", INVALID_GAME_FILES, ids=lambda c: c.name)
def test_no_message_names_a_pydantic_class(case, tmp_path: Path) -> None:
    write_arrays(tmp_path, case.files)
    path = tmp_path / "bad.yaml"
    path.write_text(case.text, encoding="utf-8")
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 2
    assert "Spec" not in result.stderr and "instance of" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "outcomes: [a, b]\ngroups:\n  - [1, 2]\n",
            "groups[0]: expected a mapping (key: value lines), got a list",
        ),
        (
            "outcomes: [a, b]\ndivergence: kl\ngroups:\n  - {name: g, size: 1, reward: [0.5, 0.5]}\n",
            "divergence: expected a mapping (key: value lines), got the text 'kl'",
        ),
    ],
)
def test_a_list_where_a_mapping_belongs_is_said_in_yaml_terms(
    text: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip().endswith(message), result.stderr
