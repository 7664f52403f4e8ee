"""Renderer of ``import``: what was read, the game built and every transformation, as Rich."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group as RichGroup
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rlhf_mech.files import ImportResult
from rlhf_mech.render._format import fmt


def render_import(result: ImportResult, written: tuple[Path, ...]) -> RichGroup:
    """What ``rlhf-mech import`` read, the game it built and every transformation applied."""
    files = Table(title="read", title_justify="left", caption_justify="left")
    for name in ("file", "column", "role", "min", "max", "mean"):
        files.add_column(name, justify="right" if name in ("min", "max", "mean") else "left")
    for summary in result.files:
        for k, stats in enumerate(summary.used):
            numbers = (stats.minimum, stats.maximum, stats.mean)
            files.add_row(
                escape(str(summary.path)) if k == 0 else "",
                escape(stats.column),
                escape(stats.role),
                *(("",) * 3 if stats.role == "candidate" else (fmt(x) for x in numbers)),
            )
    files.caption = escape(
        "\n".join(
            f"{summary.path}: {summary.rows} rows; columns {', '.join(summary.columns)}"
            for summary in result.files
        )
    )
    parts: list[Any] = [files]
    if result.candidates:
        models = tuple(result.reward_columns)
        cands = Table(title="candidates (mean per reward model, before scaling)", title_justify="left")
        cands.add_column("candidate")
        cands.add_column("rows", justify="right")
        for model in models:
            cands.add_column(escape(model), justify="right")
        cands.add_column("KL estimate", justify="right")
        for cand in result.candidates:
            kl = "" if cand.kl is None else fmt(cand.kl)
            cands.add_row(escape(cand.name), str(cand.rows), *(fmt(v) for v in cand.means), kl)
        parts.append(cands)
    game = result.game
    lines = [f"built a {result.kind} game: {game.n_outcomes} outcomes, {game.n_groups} groups"]
    lines += [f"- {step}" for step in result.steps]
    lines.append("wrote " + ", ".join(str(p) for p in written))
    parts.append(Text("\n".join(lines)))
    return RichGroup(*parts)
