"""Renderers of ``import``: what was read (a trainer's log, or evaluation tables), the game built
and every transformation, as Rich."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Group as RichGroup
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rlhf_mech.files import ImportResult, ImportRun, LogInputs, RewardLog
from rlhf_mech.render._format import annotation, fmt, plural


def _read_as(inputs: LogInputs | None) -> list[Text]:
    """The line saying which layout the files were read as, and why (``--from`` or detected)."""
    return [] if inputs is None else [Text(f"read as {inputs.layout.title} ({inputs.reason})")]


def render_import(
    result: ImportResult, written: tuple[Path, ...] | str, inputs: LogInputs | None = None
) -> RichGroup:
    """What ``rlhf-mech import`` read, the game it built and every transformation applied;
    ``written``: the files written, or where the game went (``standard output``); ``inputs``:
    the layout the files were read as."""
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
    parts: list[Any] = [*_read_as(inputs), files]
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
    if result.provenance:
        lines.append("source (the game file's header comment):")
        lines += [f"  {line}" for line in result.provenance]
    lines.append("wrote " + (written if isinstance(written, str) else ", ".join(str(p) for p in written)))
    parts.append(Text("\n".join(lines)))
    return RichGroup(*parts)


def render_log(log: RewardLog, inputs: LogInputs) -> RichGroup:
    """What was read from a trainer's log: per file its steps, rows and prompts; per reward
    its column, the trainer's weight, min, max and mean; then every note (what was ignored,
    where the weights came from)."""
    files = Table(title=annotation("read"), title_justify="left")
    for name in ("file", "step", "rows", "prompts"):
        files.add_column(name, justify="left" if name == "file" else "right", no_wrap=True)
    counts = log.file_rows()
    ends = np.cumsum(counts)
    for f, path in enumerate(log.files):
        rows = slice(int(ends[f] - counts[f]), int(ends[f]))
        steps = "" if log.row_steps is None else ", ".join(map(str, np.unique(log.row_steps[rows])))
        files.add_row(escape(str(path)), steps, str(int(counts[f])), str(len(set(log.prompts[rows]))))
    rewards = Table(title=annotation("rewards (as logged)"), title_justify="left")
    for name in ("reward", "column", "weight", "min", "max", "mean"):
        rewards.add_column(name, justify="left" if name in ("reward", "column") else "right", no_wrap=True)
    for k, name in enumerate(log.reward_names):
        values = log.rewards[:, k]
        weight = "" if log.reward_weights is None else fmt(float(log.reward_weights[k]))
        numbers = (float(values.min()), float(values.max()), float(values.mean()))
        rewards.add_row(escape(name), escape(log.reward_columns[k]), weight, *(fmt(x) for x in numbers))
    steps = f" at {plural(len(log.steps), 'step')} ({', '.join(map(str, log.steps))})" if log.steps else ""
    lines = [
        f"{plural(log.n_rows, 'response')} to {plural(log.n_prompts, 'prompt')}{steps}, "
        f"{plural(len(log.reward_names), 'reward')}"
    ]
    lines += [f"- {note}" for note in log.notes]
    return RichGroup(*_read_as(inputs), files, rewards, Text("\n".join(lines)))


def import_report(run: ImportRun) -> RichGroup:
    """What ``rlhf-mech import`` prints: the log read (``--inspect``), or the game built."""
    imported = run.imported
    if imported.result is None:
        assert imported.log is not None
        return render_log(imported.log, imported.inputs)
    return render_import(imported.result, run.written, imported.inputs)
