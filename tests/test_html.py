"""The HTML reports of ``compare --html`` and ``audit --html`` (issue 24): self-contained pages.

The structure test runs everywhere (:mod:`html.parser`): no script, no style sheet, image or
font from elsewhere, every table present, user strings escaped. Where Debian's ``chromium``
is installed the page is also rendered headless: the screenshot must show something, and
nothing may have failed to load (the test is skipped only when the binary is absent).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from dataclasses import replace
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlhf_mech.analysis import CompareOptions, compare
from rlhf_mech.analysis._internal import mechanism_grid
from rlhf_mech.cli import app
from rlhf_mech.files._internal import read_game
from rlhf_mech.render import compare_html

runner = CliRunner()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE = "<script>alert('x')</script> & co"


class _Page(HTMLParser):
    """Every start tag and its attributes; text between ``<caption>`` tags."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def _self_contained(page: str) -> _Page:
    parsed = _parse(page)
    names = [tag for tag, _ in parsed.tags]
    assert names[:1] == ["html"] and "svg" not in names[:3]
    assert "script" not in names and "link" not in names and "img" not in names and "iframe" not in names
    for tag, attrs in parsed.tags:
        for key in ("src", "href", "xlink:href"):
            value = attrs.get(key)
            assert value is None or value.startswith("#"), f"<{tag} {key}={value!r}> loads from elsewhere"
    assert "@import" not in page and "url(" not in page
    return parsed


@cache
def _compare_page() -> str:
    game = replace(read_game("games/harmless_vs_humor.yaml"), name=HOSTILE)
    pairs, skipped = mechanism_grid(game)
    return compare_html(compare(game, pairs, CompareOptions(budget=20, samples=4, type_points=4), skipped))


def test_the_compare_page_is_self_contained_with_every_table_and_an_inline_figure() -> None:
    parsed = _self_contained(_compare_page())
    names = [tag for tag, _ in parsed.tags]
    assert names.count("table") == 3 and names.count("svg") == 1 and names.count("caption") == 3
    text = "".join(parsed.text)
    # the user's string is text, never markup
    assert HOSTILE in text and "<script>" not in _compare_page()
    assert "Pareto front" in text and "rlhf-mech compare" in text and "gameable" in text


def test_the_audit_page_is_self_contained(tmp_path: Path) -> None:
    target = tmp_path / "audit.html"
    result = runner.invoke(
        app,
        ["audit", "games/heuristics/intermediate_checkpoints.yaml", "--budget", "20", "--html", str(target)],
    )
    assert result.exit_code == 0, result.output
    parsed = _self_contained(target.read_text(encoding="utf-8"))
    assert [tag for tag, _ in parsed.tags].count("table") == 1
    text = "".join(parsed.text)
    assert "gameable: " in text and " gains up to " in text and "--payment affine_maximizer" in text
    assert "✓ a required check passed" in text


def _png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the decompressed scanlines of a PNG (no imaging library needed)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        if data[at + 4 : at + 8] == b"IDAT":
            chunks.append(data[at + 8 : at + 8 + length])
        at += 12 + length
    return width, height, zlib.decompress(b"".join(chunks))


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_the_compare_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "compare.html"
    page.write_text(_compare_page(), encoding="utf-8")
    shot = tmp_path / "shot.png"
    assert CHROMIUM is not None
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--window-size=1200,1600",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert shot.exists(), done.stderr[-2000:]
    # nothing failed to load (a network error is logged as net::ERR_...)
    assert "net::ERR" not in done.stderr and "Failed to load resource" not in done.stderr
    width, height, pixels = _png_pixels(shot)
    assert (width, height) == (1200, 1600)
    # a blank page compresses to a handful of distinct bytes; text, tables and a figure do not
    assert len(set(pixels)) > 64
