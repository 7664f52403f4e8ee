"""Renderer of ``import``: what was read, the game built and every transformation, as Rich."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group as RichGroup
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rlhf_mech.files import ImportResult
from rlhf_mech.render._format import annotation, fmt, plural


def render_import(result: ImportResult, written: tuple[Path, ...] | str) -> RichGroup:
    """What ``rlhf-mech import`` read, the game it built and every transformation applied;
    ``written``: the files written, or where the game went (``standard output``)."""
    files = Table(title=annotation("read"), title_justify="left", caption_justify="left")
    for name in ("file", "column", "role", "min", "max", "mean"):
        files.add_column(name, justify="right" if name in ("min", "max", "mean") else "left", no_wrap=True)
    for summary in result.files:
        for k, stats in enumerate(summary.used):
            numbers = (stats.minimum, stats.maximum, stats.mean)
            files.add_row(
                escape(str(summary.path)) if k == 0 else "",
                escape(stats.column),
                escape(stats.role),
                *(("",) * 3 if stats.role == "candidate" else (fmt(x) for x in numbers)),
            )
    files.caption = annotation(
        "\n".join(
            f"{summary.path}: {summary.rows} rows; columns {', '.join(summary.columns)}"
            for summary in result.files
        )
    )
    parts: list[Any] = [files]
    if result.candidates:
        models = tuple(result.reward_columns)
        cands = Table(
            title=annotation("candidates (mean per reward model, before scaling)"), title_justify="left"
        )
        cands.add_column("candidate", no_wrap=True)
        cands.add_column("rows", justify="right", no_wrap=True)
        for model in models:
            cands.add_column(escape(model), justify="right", no_wrap=True)
        cands.add_column("KL estimate", justify="right", no_wrap=True)
        for cand in result.candidates:
            kl = "" if cand.kl is None else fmt(cand.kl)
            cands.add_row(escape(cand.name), str(cand.rows), *(fmt(v) for v in cand.means), kl)
        parts.append(cands)
    game = result.game
    lines = [
        f"built a {result.kind} game: {plural(game.n_outcomes, 'outcome')}, {plural(game.n_groups, 'group')}"
    ]
    lines += [f"- {step}" for step in result.steps]
    lines.append("wrote " + (written if isinstance(written, str) else ", ".join(str(p) for p in written)))
    parts.append(Text("\n".join(lines)))
    return RichGroup(*parts)
