"""Renderers of ``import``: what was read (a trainer's log, or evaluation tables), the game built
and every transformation, as Rich; the table over training (``--step all``) and its figure.

Every name, path and note a file supplied goes through :func:`~rlhf_mech.errors.printable`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Group as RichGroup
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rlhf_mech.errors import printable
from rlhf_mech.files import ImportResult, RewardLog, StepAudit
from rlhf_mech.files._internal import ImportRun, LogInputs
from rlhf_mech.render._fit import Fitted
from rlhf_mech.render._format import annotation, fmt, plural


def _t(value: object) -> str:
    """User text for a table cell: printable, and never Rich markup."""
    return escape(printable(str(value)))


def _read_as(inputs: LogInputs | None) -> list[Text]:
    """The line saying which layout the files were read as, and why (``--from`` or detected)."""
    return [] if inputs is None else [Text(printable(f"read as {inputs.layout.title} ({inputs.reason})"))]


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
                _t(summary.path) if k == 0 else "",
                _t(stats.column),
                _t(stats.role),
                *(("",) * 3 if stats.role == "candidate" else (fmt(x) for x in numbers)),
            )
    files.caption = annotation(
        printable(
            "\n".join(
                f"{summary.path}: {summary.rows} rows; columns {', '.join(summary.columns)}"
                for summary in result.files
            ),
            keep_newlines=True,
        )
    )
    parts: list[Any] = [*_read_as(inputs), Fitted(files)]
    if result.candidates:
        models = tuple(result.reward_columns)
        cands = Table(
            title=annotation("candidates (mean per reward model, before scaling)"), title_justify="left"
        )
        cands.add_column("candidate", no_wrap=True)
        cands.add_column("rows", justify="right", no_wrap=True)
        for model in models:
            cands.add_column(_t(model), justify="right", no_wrap=True)
        cands.add_column("KL estimate", justify="right", no_wrap=True)
        for cand in result.candidates:
            kl = "" if cand.kl is None else fmt(cand.kl)
            cands.add_row(_t(cand.name), str(cand.rows), *(fmt(v) for v in cand.means), kl)
        parts.append(Fitted(cands))
    parts.append(Text(printable(_built(result, written), keep_newlines=True)))
    return RichGroup(*parts)


def _built(result: ImportResult, written: tuple[Path, ...] | str | None) -> str:
    game = result.game
    lines = [
        f"built a {result.kind} game: {plural(game.n_outcomes, 'outcome')}, {plural(game.n_groups, 'group')}"
    ]
    lines += [f"- {printable(step)}" for step in result.steps]
    if result.provenance:
        lines.append("source (the game file's header comment):")
        lines += [f"  {printable(line)}" for line in result.provenance]
    if written is not None:
        lines.append(
            "wrote "
            + (written if isinstance(written, str) else ", ".join(printable(str(p)) for p in written))
        )
    return "\n".join(lines)


def _steps_table(log: RewardLog) -> Table:
    """Per file: its step, what wrote it (training or evaluation), rows, prompts, samples per
    prompt, and whose samples they are."""
    files = Table(title=annotation("read"), title_justify="left")
    for name in ("file", "step", "role", "rows", "prompts", "per prompt", "samples of"):
        files.add_column(
            name, justify="right" if name in ("step", "rows", "prompts") else "left", no_wrap=True
        )
    counts = log.file_rows()
    ends = np.cumsum(counts)
    for f, path in enumerate(log.files):
        rows = slice(int(ends[f] - counts[f]), int(ends[f]))
        steps = () if log.row_steps is None else tuple(int(s) for s in np.unique(log.row_steps[rows]))
        info = log.step(steps[0]) if len(steps) == 1 else None
        prompts = log.prompts[rows]
        per = {}
        for p in prompts:
            per[p] = per.get(p, 0) + 1
        low, high = min(per.values()), max(per.values())
        files.add_row(
            _t(path),
            ", ".join(map(str, steps)),
            "" if info is None else info.role,
            str(int(counts[f])),
            str(len(per)),
            str(low) if low == high else f"{low}-{high}",
            "" if info is None else info.policy,
        )
    return files


def render_log(log: RewardLog, inputs: LogInputs) -> RichGroup:
    """What was read from a trainer's log: per file its step, role, rows, prompts and samples;
    per reward its column, the trainer's weight, min, max and mean; then every note (what was
    ignored, where the weights came from, which lines were padding)."""
    rewards = Table(title=annotation("rewards (as logged)"), title_justify="left")
    for name in ("reward", "column", "weight", "min", "max", "mean"):
        rewards.add_column(name, justify="left" if name in ("reward", "column") else "right", no_wrap=True)
    from rlhf_mech.files._internal import robust_mean

    for k, name in enumerate(log.reward_names):
        values = log.rewards[:, k]
        weight = "" if log.reward_weights is None else fmt(float(log.reward_weights[k]))
        numbers = (float(values.min()), float(values.max()), robust_mean(values))
        rewards.add_row(_t(name), _t(log.reward_columns[k]), weight, *(fmt(x) for x in numbers))
    steps = f" at {plural(len(log.steps), 'step')} ({', '.join(map(str, log.steps))})" if log.steps else ""
    lines = [
        f"{plural(log.n_rows, 'response')} to {plural(log.n_prompts, 'prompt')}{steps}, "
        f"{plural(len(log.reward_names), 'reward')}"
    ]
    lines += [f"- {printable(note)}" for note in log.notes]
    for info in log.step_info:
        lines.append(f"- step {info.step}: {info.role} ({printable(info.why)}); samples of {info.stands_for}")
    if log.dropped:
        lines.append(f"- {plural(len(log.dropped), 'line')} read and not used:")
        lines += [f"  {printable(d)}" for d in log.dropped[:20]]
        if len(log.dropped) > 20:
            lines.append(f"  ... {len(log.dropped) - 20} more")
    return RichGroup(*_read_as(inputs), Fitted(_steps_table(log)), Fitted(rewards), Text("\n".join(lines)))


def training_table(training: Sequence[StepAudit]) -> Table:
    """Each step's groups: valuation, payment, and the largest gains the audit found under the
    game's payment rule and without payment (``--step all``)."""
    table = Table(
        title=annotation(
            "incentives over training (truthful reports; gains: largest found, prompt-weighted)"
        ),
        title_justify="left",
    )
    for name in (
        "step",
        "role",
        "prompts",
        "group",
        "valuation",
        "payment",
        "largest gain",
        "without payment",
    ):
        table.add_column(name, justify="left" if name in ("role", "group") else "right", no_wrap=True)
    for audit in training:
        role = "" if audit.info is None else audit.info.role
        for i, group in enumerate(audit.group_names):
            first = i == 0
            table.add_row(
                str(audit.step) if first and audit.step is not None else "",
                role if first else "",
                str(audit.prompts) if first else "",
                _t(group),
                fmt(float(audit.valuations[i])),
                fmt(float(audit.payments[i])),
                fmt(float(audit.gains[i])),
                fmt(float(audit.gains_without_payment[i])),
                end_section=i == len(audit.group_names) - 1,
            )
    return table


def import_report(run: ImportRun) -> RichGroup:
    """What ``rlhf-mech import`` prints: the log read (``--inspect``), the game built, or with
    several steps each step's game and the table over training."""
    imported = run.imported
    if run.training or imported.steps:
        assert imported.log is not None
        parts: list[Any] = [*_read_as(imported.inputs), Fitted(_steps_table(imported.log))]
        lines = [f"- {printable(note)}" for note in imported.log.notes]
        for one in imported.steps:
            game = one.result.game
            lines.append(
                f"step {one.step}: {plural(game.n_outcomes, 'outcome')} over "
                f"{plural(game.n_prompts, 'prompt')}"
                + ("" if one.info is None else f", samples of {one.info.stands_for}")
            )
        parts.append(Text(printable("\n".join(lines), keep_newlines=True)))
        if run.training:
            parts.append(Fitted(training_table(run.training)))
        written = run.written if isinstance(run.written, str) else f"{len(run.written)} files"
        parts.append(Text(printable(f"wrote {written}")))
        return RichGroup(*parts)
    if imported.result is None:
        assert imported.log is not None
        return render_log(imported.log, imported.inputs)
    return render_import(imported.result, run.written, imported.inputs)


def training_figure(training: Sequence[StepAudit]) -> Any:
    """A matplotlib figure of the table over training: per group, its valuation, payment and
    largest gain without payment against the step (one panel each).

    Raises
    ------
    RlhfMechError
        when matplotlib is not installed.
    """
    from rlhf_mech.render._plot import _figure_class

    figure = _figure_class()(figsize=(11, 3.4), layout="constrained")
    axes = figure.subplots(1, 3)
    steps = [a.step if a.step is not None else k for k, a in enumerate(training)]
    names = training[0].group_names if training else ()
    for ax, (attribute, label) in zip(
        axes,
        (
            ("valuations", "valuation v_i"),
            ("payments", "payment p_i"),
            ("gains_without_payment", "gain without payment"),
        ),
        strict=True,
    ):
        for i, name in enumerate(names):
            ax.plot(
                steps, [float(getattr(a, attribute)[i]) for a in training], marker="o", label=printable(name)
            )
        ax.set_xlabel("step")
        ax.set_title(label)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if names:
        axes[0].legend(fontsize="small")
    return figure


def save_training_plot(training: Sequence[StepAudit], path: str | Path) -> Path:
    """Draw :func:`training_figure` to ``path`` (``.png`` added when it has no suffix)."""
    from rlhf_mech.render._plot import save_figure

    return save_figure(training_figure(training), path, dpi=110)
