"""The documentation's examples are real (issue 24): every ``$ command`` shown in a console or
text block of README.md and docs/*.md is run, and its output compared with the one shown.

Each document runs in a fresh folder holding copies of ``games/``, ``examples/``,
``tests/data/logs/`` and the
games the documents define (``docs/games/``), its commands in order (a later command may read
what an earlier one wrote, as a reader would). Standard output and standard error are
compared together, as a terminal shows them (``2>&1``). In the text shown, a line ``...``
(or one that starts with ``...`` after its indentation) stands for any lines; timings
(``0.338 s``) are compared as patterns, and so are figures at rounding level (a KKT residual
of ``3.6e-18``, a gain of ``+1.1e-16`` or ``0`` under a DSIC payment): their last bits depend
on the CPU's vector units, so a number below 1e-12 in scientific notation and a bare zero
both read as ``~0``. A command shown without output must exit with 0.
Commands that cannot run here are listed in :data:`NOT_RUN` with the reason, and a test
keeps that list exact.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```(?:console|text)\n(.*?)^```", re.M | re.S)
#: Commands shown but not run, and why.
NOT_RUN = {
    "pip install 'rlhf-mech[dask]'": "installs a package from the network",
    "rlhf-mech audit games/ --backend dask --scheduler tcp://scheduler:8786": "needs a dask cluster",
}
_TIMING = re.compile(r"\d+(?:\.\d+)? s\b")
_ROUNDOFF = re.compile(r"(?<![\w.])[+-]?(?:\d(?:\.\d+)?e-(?:1[3-9]|[2-9]\d|\d{3})|0)(?![\w.])")


_RUNS = re.compile(r" {2,}|[─━]{2,}")


def _comparable(line: str, loose: bool = False) -> str:
    """``line`` without its trailing blanks, timings and rounding-level figures; ``loose``:
    also with every run of blanks or rules as one (a table whose column holds ``1e-16`` on one
    CPU and ``0`` on another is as wide as its widest figure)."""
    line = _ROUNDOFF.sub("~0", _TIMING.sub("N s", line.rstrip()))
    return _RUNS.sub(lambda run: run[0][0], line) if loose else line


def _examples() -> list[tuple[str, str, list[str]]]:
    """``(document, command, expected lines)`` of every ``$ `` line, in document order."""
    found = []
    for doc in DOCUMENTS:
        for block in _BLOCK.findall(doc.read_text(encoding="utf-8")):
            if not block.startswith("$ "):
                continue
            command, lines = None, []
            for line in block.splitlines():
                if line.startswith("$ "):
                    if command is not None:
                        found.append((doc.name, command, lines))
                    command, lines = line[2:].split("  #")[0].strip(), []
                else:
                    lines.append(line)
            assert command is not None
            found.append((doc.name, command, lines))
    return found


EXAMPLES = _examples()


def _pattern(expected: list[str], loose: bool = False) -> re.Pattern[str]:
    parts = []
    for line in expected:
        if line.strip().startswith("..."):
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append(re.escape(_comparable(line, loose)) + r"\n")
    return re.compile("".join(parts) + r"\Z")


def test_the_list_of_commands_not_run_is_exact() -> None:
    shown = {command for _, command, _ in EXAMPLES}
    assert set(NOT_RUN) <= shown, "a command of NOT_RUN is no longer in the documents"


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One folder per document, with the games and examples a reader has."""
    folders = {}
    for doc in DOCUMENTS:
        folder = tmp_path_factory.mktemp(doc.stem)
        # a checkout's games, examples and trainer logs (tests/data/logs: the real runs the
        # import examples read)
        for name in ("games", "examples", "tests/data/logs"):
            shutil.copytree(ROOT / name, folder / name)
        for game in (ROOT / "docs" / "games").glob("*.yaml"):
            shutil.copy(game, folder / game.name)
        folders[doc.name] = folder
    return folders


@pytest.mark.slow
@pytest.mark.parametrize(
    # in document order, on one pytest-xdist worker (--dist loadfile in pyproject.toml)
    "document, command, expected",
    EXAMPLES,
    ids=[f"{d}: {c[:60]}" for d, c, _ in EXAMPLES],
)
def test_the_shown_output_is_what_the_command_prints(
    document: str, command: str, expected: list[str], sandboxes: dict[str, Path]
) -> None:
    if command in NOT_RUN:
        assert NOT_RUN[command]
        return
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR")}
    env |= {
        "NO_COLOR": "1",
        "TERM": "dumb",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
    }
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=sandboxes[document],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1800,  # the audit of every bundled game with --noise takes minutes on a busy machine
    )
    if not expected:  # a command shown without its output: it must run cleanly
        assert done.returncode == 0, f"$ {command}\n{done.stdout}"
        return
    actual = "\n".join(_comparable(line) for line in done.stdout.splitlines()) + "\n"
    loose = "\n".join(_comparable(line, loose=True) for line in done.stdout.splitlines()) + "\n"
    # exactly, but for rounding-level figures; or, where one of those set a column's width,
    # with blanks and rules as runs
    assert _pattern(expected).match(actual) or _pattern(expected, loose=True).match(loose), (
        f"$ {command}\n--- shown\n" + "\n".join(expected) + f"\n--- got\n{actual}"
    )
