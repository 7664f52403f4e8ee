"""Renderers of audits: a Rich table, JSON, JUnit XML, GitHub annotations, SARIF 2.1.0.

They compute nothing: every figure comes from :mod:`rlhf_mech.analysis`; these functions only
format and arrange it. An invalid file is an :class:`InvalidFile` (its path, line and the
one-line error). Each failed finding and each invalid file is one :class:`Problem`, located
at a line of its file (the violated ``expect:`` entry, or the group; :func:`problems`), which
the text, GitHub and SARIF formats all report. The CLI prints what these return
(:mod:`rlhf_mech.cli`).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from rich import box
from rich.console import Console
from rich.console import Group as RichGroup
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from rlhf_mech.analysis import CHECKS, Finding, GameAudit, GroupAudit, Misreport, SearchResult
from rlhf_mech.analysis._internal import AuditSummary, PromptGains, audit_verdict
from rlhf_mech.core import Game, Profile
from rlhf_mech.errors import printable
from rlhf_mech.files import AuditRun
from rlhf_mech.files._internal import InvalidFile, TypeRow
from rlhf_mech.render._fit import Fitted
from rlhf_mech.render._format import annotation, plural, rule_json
from rlhf_mech.render._html import TableData, code_block, html_page, html_table, paragraphs
from rlhf_mech.render._uncertainty import audit_uncertainty_text, uncertainty_json

#: The version of the audit JSON's layout (``rlhf-mech schema --audit`` prints its schema).
AUDIT_SCHEMA_VERSION = 2
#: Reward vectors with more entries than this are left out of JSON and shortened in tables.
JSON_VECTOR_LIMIT = 1000
_TABLE_VECTOR_LIMIT = 6

#: The rule of a file that could not be loaded (beside the checks of :data:`CHECKS`).
INVALID_FILE = "invalid_file"
#: What a CI report says of it (the checks' own records say it of theirs).
_INVALID_FILE_HELP = "The game file cannot be loaded: it is not a valid game file."


@dataclass(frozen=True)
class Problem:
    """A failed finding or an invalid file, where it is: what every CI format reports.

    Attributes
    ----------
    rule : a key of :data:`CHECKS`, or :data:`INVALID_FILE`.
    source : the file (the game's name for a game built in code); line : its line or ``None``.
    message : one line, naming the group.
    finding : the failed finding (``None`` for an invalid file); audit : its game's audit.
    """

    rule: str
    source: str
    line: int | None
    message: str
    finding: Finding | None = None
    audit: GameAudit | None = None

    @property
    def location(self) -> str:
        return self.source if self.line is None else f"{self.source}:{self.line}"


def game_source(game: Game) -> str:
    """The file a game came from, or its name when it was built in code, printable (a file
    name may hold ESC, or a newline and ``::error::``: :func:`~rlhf_mech.errors.printable`)."""
    return printable(game.source or game.name)


def game_label(game: Game) -> str:
    """The file a game came from and, for a part of a file, which part (``g.yaml [prompt 3]``)."""
    return game_source(game) + (f" [{printable(game.part)}]" if game.part else "")


def invalid_lines(bad: InvalidFile) -> list[str]:
    """An invalid file's problems, one printable line each (``FILE:LINE: reason``): the path
    and a library's message may hold a newline, which must not start a line of its own."""
    if not bad.reason:
        return [printable(bad.message)]
    source = printable(bad.source)
    return [
        f"{source}{'' if line is None else f':{line}'}: {printable(reason)}" for line, reason in bad.problems
    ]


def finding_line(game: Game, finding: Finding) -> int | None:
    """The line a finding points at: its ``expect:`` entry, else its group, else ``expect:``.

    ``expect`` findings sit at the entry they check (``expect.utility.alices``,
    ``expect.dsic``); the per-group checks at the group. Lines come from ``Game.lines``.
    """
    lines = game.lines
    if finding.check == "expect":
        entry = ".".join(["expect", finding.quantity, *([finding.group] if finding.group else [])])
        return lines.get(entry, lines.get("expect"))
    if finding.group in game.group_names:
        return lines.get(f"groups[{game.group_names.index(finding.group)}]")
    return lines.get("expect")


def finding_message(finding: Finding) -> str:
    """A failed finding in one line: group, check, figure, the property it fails, detail."""
    where = f"{finding.group}: " if finding.group else ""
    text = f"{where}{CHECKS[finding.check].title}: {fmt_figure(finding.value)} fails {finding.statement}"
    return text + (f" ({finding.detail})" if finding.detail else "")


def problems(audits: Sequence[GameAudit], invalid: Sequence[InvalidFile] = ()) -> list[Problem]:
    """Every failed finding (in audit order) and every problem of every invalid file, located;
    paths and messages printable (every CI format reads them from here)."""
    out = [
        Problem(f.check, game_source(a.game), finding_line(a.game, f), printable(finding_message(f)), f, a)
        for a in audits
        for f in a.failures
    ]
    out += [
        Problem(INVALID_FILE, printable(bad.source), line, printable(reason))
        for bad in invalid
        for line, reason in bad.problems
    ]
    return out


def fmt_figure(x: float) -> str:
    """A figure as in the issue: two significant digits with a sign (``+0.083``, ``-2.1e-15``)."""
    if not math.isfinite(x):
        return str(x)
    return "0" if x == 0 else f"{x:+.2g}"


def _mark(finding: Finding) -> str:
    if finding.expected is None:
        return "[dim]·[/]"
    return "[green]✓[/]" if finding.passed else "[bold red]✗[/]"


def _cell(findings: Sequence[Finding]) -> str:
    if not findings:
        return ""
    if len(findings) == 1 and findings[0].check != "expect":
        f = findings[0]
        return f"{_mark(f)} {fmt_figure(f.value)}"
    failed = [f for f in findings if not f.passed]
    if not failed:
        return f"[green]✓[/] {len(findings)}/{len(findings)}"
    first = failed[0]
    return f"[bold red]✗[/] {first.quantity} {fmt_figure(first.value)}" + (
        f" (+{len(failed) - 1})" if len(failed) > 1 else ""
    )


def vector_text(reward: Sequence[float]) -> str:
    """A reward vector, shortened to its first entries for large games."""
    shown = ", ".join(f"{v:.4g}" for v in reward[:_TABLE_VECTOR_LIMIT])
    more = len(reward) - _TABLE_VECTOR_LIMIT
    return f"[{shown}" + (f", ... ({more} more)]" if more > 0 else "]")


def audit_table_data(audits: Sequence[GameAudit], invalid: Sequence[InvalidFile] = ()) -> TableData:
    """:func:`audit_table` as plain strings, for the HTML report."""
    table = audit_table(audits, invalid)
    columns = tuple(str(c.header) for c in table.columns)
    cells = [list(c.cells) for c in table.columns]
    rows = tuple(
        tuple(Text.from_markup(str(cells[k][r])).plain for k in range(len(columns)))
        for r in range(table.row_count)
    )
    right = tuple(c.justify == "right" for c in table.columns)
    return TableData("rlhf-mech audit", columns, right, rows, AUDIT_LEGEND)


def audit_html(run: AuditRun) -> str:
    """The page of ``audit --html``: the summary, a verdict per game, the table with its
    legend, the failures, the notes and the command that reproduces it."""
    sources = sorted({game_source(a.game) for a in run.audits} | {bad.source for bad in run.invalid})
    options = run.audits[0].options if run.audits else None
    command = "rlhf-mech audit " + " ".join(quote_arg(s) for s in sources)
    if options is not None:
        command += f" --seed {run.audits[0].seed} --budget {options.budget} --tol {options.tol:g}"
    notes = [f"{game_label(a.game)}: {note}" for a in run.audits for note in a.notes]
    failures = failure_lines(run.audits, run.saved).plain.splitlines()
    sections = [
        (
            "Verdict",
            paragraphs(
                [summary_text(run.summary), *(game_verdict(a) for a in run.audits), *types_lines(run)]
            ),
        ),
        ("Checks", html_table(audit_table_data(run.audits, run.invalid))),
        ("Failures", paragraphs(failures or ["none"])),
        ("Notes", paragraphs(notes or ["none"], "note")),
        ("How to reproduce", code_block([command, command + " --format json   # every figure"])),
    ]
    return html_page("rlhf-mech audit", sections)


def audit_table(audits: Sequence[GameAudit], invalid: Sequence[InvalidFile] = ()) -> Table:
    """One row per file and group, one column per check with its figure (✓ pass, ✗ fail,
    · reported but not required); a ``(game)`` row for the game-level ``expect:`` findings.
    File and group names are never cut or folded (the caller widens the console to fit)."""
    checks = _checks(audits)
    table = _frame("rlhf-mech audit")
    table.add_column("file", no_wrap=True)
    _check_columns(table, checks)
    for audit in audits:
        for k, (name, cells) in enumerate(_group_rows(audit, checks)):
            table.add_row(escape(game_label(audit.game)) if k == 0 else "", name, *cells)
        table.add_section()
    for bad in invalid:
        table.add_row(
            escape(printable(bad.source)), "", "[bold red]invalid file[/]", *[""] * (len(checks) - 1)
        )
    return table


def compact_audit_table(audits: Sequence[GameAudit], invalid: Sequence[InvalidFile] = ()) -> RichGroup:
    """The compact layout of :func:`audit_table`: one table per file, titled by the file,
    without the file column and with the columns of its own checks (each as records where
    even it is too wide: :class:`~rlhf_mech.render.Fitted`); the invalid files after them."""
    parts: list[Any] = []
    for audit in audits:
        checks = _checks([audit])
        table = _frame(None)
        _check_columns(table, checks)
        for name, cells in _group_rows(audit, checks):
            table.add_row(name, *cells)
        parts += [annotation(printable(game_label(audit.game))), Fitted(table)]  # the file's name whole
    parts += [Text.assemble(printable(bad.source) + ": ", ("invalid file", "bold red")) for bad in invalid]
    return RichGroup(*parts)


def _checks(audits: Sequence[GameAudit]) -> list[str]:
    """The checks some finding of ``audits`` is about, in the order of :data:`CHECKS`."""
    return [c for c in CHECKS if any(f.check == c for a in audits for f in a.findings)]


def _frame(title: str | None) -> Table:
    """The frame of the audit's tables (``title``: none for a file's table in the compact
    layout, whose name stands above it whole)."""
    return Table(
        title=None if title is None else annotation(title),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )


def _check_columns(table: Table, checks: Sequence[str]) -> None:
    """The group column and one column per check."""
    table.add_column("group", no_wrap=True)
    for check in checks:
        table.add_column(CHECKS[check].column, justify="right" if check != "expect" else "left", no_wrap=True)


def _group_rows(audit: GameAudit, checks: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The game's rows: each group with findings (``(game)``: the game-level ones) and its
    cell per check."""
    rows = []
    for name in [*audit.game.group_names, ""]:
        row = [f for f in audit.findings if f.group == name]
        if row:
            rows.append((escape(name) or "(game)", [_cell([f for f in row if f.check == c]) for c in checks]))
    return rows


def failure_lines(audits: Sequence[GameAudit], saved: Mapping[tuple[int, str], str] | None = None) -> Text:
    """One line per failed finding, ``FILE:LINE: group: check: ...``; DSIC violations name
    the best misreport (and the file it was saved to)."""
    saved = saved or {}
    index = {id(a): k for k, a in enumerate(audits)}
    lines: list[str] = []
    for problem in problems(audits):
        f, audit = problem.finding, problem.audit
        assert f is not None and audit is not None
        lines.append(f"✗ {problem.location}: {problem.message}")
        if f.check == "dsic":
            group = next(g for g in audit.groups if g.name == f.group)
            best = group.dsic.best
            key = (index[id(audit)], f.group)
            lines.append(
                f"    best misreport: size {best.size:.6g}, reward {vector_text(best.reward)}, "
                f"gain {fmt_figure(best.gain)}"
                + (f"; saved to {printable(saved[key])}" if key in saved else "")
            )
    return Text("\n".join(lines))


def summary_text(summary: AuditSummary) -> str:
    """The one-line summary (``OK: 2 games, 4 groups: 16 checks passed, 0 failed``)."""
    verdict = "FAIL" if summary.exit_code else "OK"
    text = (
        f"{verdict}: {plural(summary.games, 'game')}, {plural(summary.groups, 'group')}: "
        f"{plural(summary.passed, 'check')} passed, {summary.failed} failed"
    )
    if summary.failed:
        text += f" in {plural(summary.failed_games, 'game')}"
    if summary.invalid:
        text += f"; {plural(summary.invalid, 'invalid file')}"
    return text


#: What the marks of :func:`audit_table` mean (printed under it).
AUDIT_LEGEND = (
    "✓ a required check passed, ✗ it failed; · reported, not required (the gain without payment, "
    "or a property the file's expect: says fails); k/n: expect: entries met",
    "figures: the largest gain a search found (a lower bound), the lowest utility or payment",
)


def game_verdict(audit: GameAudit) -> str:
    """One line: is the game gameable, by whom and by how much (also as a share of the group's
    truthful utility), is that expected, and which payment a theorem says would fix it."""
    v = audit_verdict(audit)
    rule = audit.game.mechanism.payment_rule.name
    source = game_label(audit.game)
    if v.gameable:
        share = f" ({v.share:.0%} of its utility)" if v.share is not None else ""
        text = f"{source}: gameable: {v.group} gains up to {fmt_figure(v.gain)}{share} under {rule}"
    else:
        text = f"{source}: no profitable misreport found under {rule}"
    if v.expected:
        text += "; expected"
    else:
        text += "; NOT expected: the file expects " + (
            "DSIC" if v.gameable else "a gain (expect: dsic: false)"
        )
    if v.fix is not None:
        text += (
            f"; {v.fix.name} makes it DSIC (Proposition 4.4): "
            f"rlhf-mech audit {quote_arg(game_source(audit.game))} --payment {v.fix.name}"
        )
    return text


def noise_line(audit: GameAudit) -> str | None:
    """``--noise``: each group's expected gain under noise against its bound ``2 w_i eps``
    (Theorem 4.12); ``None`` when the game was audited without noise."""
    noisy = [(g.name, g.noisy) for g in audit.groups if g.noisy is not None]
    if not noisy:
        return None
    eps = noisy[0][1].eps
    figures = ", ".join(f"{printable(name)} {fmt_figure(n.gain)} <= {n.bound:.3g}" for name, n in noisy)
    return f"{game_label(audit.game)}: under noise eps {eps:g} (Theorem 4.12), E gain <= 2 w_i eps: {figures}"


def verdict_lines(run: AuditRun) -> list[str]:
    """A verdict per game (:func:`game_verdict`), its noise bounds (:func:`noise_line`) and
    each group's audit over the type set of ``--types`` (:func:`types_lines`)."""
    lines = []
    for audit in run.audits:
        lines.append(game_verdict(audit))
        noise = noise_line(audit)
        if noise is not None:
            lines.append(noise)
    return lines + types_lines(run)


def types_lines(run: AuditRun) -> list[str]:
    """``--types``: per group, the largest gain found over the set of true types (a lower
    bound on epsilon_IC over every type), the worst type and the file that replays it."""
    lines = []
    for row in run.types:
        result = row.result
        audit = run.audits[row.audit]
        worst = vector_text(result.types[result.worst])
        size = f"{result.sizes[result.worst]:.4g}"
        text = (
            f"{game_label(audit.game)}: {printable(row.group)}: epsilon over "
            f"{plural(result.gains.size, 'type')} ({run.types_label}) {result.epsilon:+.4g}, "
            f"worst type {worst} size {size}"
        )
        if row.path is not None:
            text += f"; replay: rlhf-mech solve {quote_arg(row.path)}"
        lines.append(text)
    return lines


def quote_arg(text: str) -> str:
    """A path as a shell argument."""
    import shlex

    return shlex.quote(text)


def render_audit(run: AuditRun) -> RichGroup:
    """Everything ``rlhf-mech audit`` prints: the table, the failures, notes and the summary
    (``run.quiet``: the summary only)."""
    audits, invalid, summary, saved = run.audits, run.invalid, run.summary, run.saved
    style = "bold red" if summary.exit_code else "bold green"
    if run.quiet:
        return RichGroup(Text(summary_text(summary), style=style))
    table = Fitted(audit_table(audits, invalid), compact_audit_table(audits, invalid))
    parts: list[Any] = [table, Text("\n".join(AUDIT_LEGEND), style="dim")]
    if audits:
        parts.append(Text("\n".join(verdict_lines(run))))
    failures = failure_lines(audits, saved)
    if failures.plain:
        parts.append(failures)
    notes = [f"note: {game_label(a.game)}: {note}" for a in audits for note in a.notes]
    if notes:
        parts.append(Text("\n".join(notes), style="dim"))
    parts += [
        audit_uncertainty_text(game_label(a.game), u)
        for a, u in zip(audits, run.uncertainty, strict=False)
        if u is not None
    ]
    parts.append(Text(summary_text(summary), style=style))
    return RichGroup(*parts)


@contextmanager
def audit_progress(console: Console, tasks: int, enabled: bool = True) -> Iterator[Callable[[], None] | None]:
    """A Rich progress bar on ``console`` over the audit's per-group tasks; ``None`` (no bar)
    when the console is not a terminal (piped), when disabled or for a single task."""
    if not (enabled and console.is_terminal and tasks > 1):
        yield None
        return
    columns = (TextColumn("audit"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("audit", total=tasks)
        yield lambda: progress.advance(task)


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def _num(x: float) -> float | None:
    """A JSON-safe float: non-finite values become ``null``."""
    x = float(x)
    return x if math.isfinite(x) else None


def _misreport_json(report: Misreport) -> dict[str, Any]:
    small = report.reward.size <= JSON_VECTOR_LIMIT
    return {
        "gain": _num(report.gain),
        "size": _num(report.size),
        "reward": [float(v) for v in report.reward] if small else None,
        "found_by": report.found_by,
    }


def _search_json(result: SearchResult) -> dict[str, Any]:
    return {
        "payment_rule": result.payment_rule,
        "max_gain": _num(result.best.gain),
        "gain_is": "exact" if result.exact else "lower_bound",
        "best_misreport": _misreport_json(result.best),
        "best_at_true_size": _misreport_json(result.best_at_true_size),
        "evaluations": result.evaluations,
        "min_payment": _num(result.min_payment),
        "priced": result.priced,
        "stalled": result.stalled,
        "converged": result.converged,
        "status": result.status,
        "message": result.message,
        **({} if result.prompts is None else {"prompts": _prompt_gains_json(result.prompts)}),
    }


def _profile_json(profile: Profile, others: Sequence[int], names: Sequence[str]) -> dict[str, Any]:
    """The others' reports of one audited profile (reward vectors only for small games)."""
    small = profile.n_outcomes <= JSON_VECTOR_LIMIT
    return {
        names[j]: {
            "reward": [float(v) for v in profile.rewards[j]] if small else None,
            "size": float(profile.sizes[j]),
        }
        for j in others
    }


def _group_json(audit: GameAudit, group: GroupAudit, saved: str | None) -> dict[str, Any]:
    truthful = audit.truthful.truthful
    i = group.index
    noisy = group.noisy
    names = audit.game.group_names
    others = [j for j in range(len(names)) if j != i]
    worst = group.profiles[group.worst_profile] if group.profiles else audit.game.truth
    return {
        "name": group.name,
        "size": group.size,
        "epsilon_ic": {
            "value": _num(group.epsilon_ic),
            "profile": group.worst_profile,
            "others": _profile_json(worst, others, names),
        },
        "profile_gains": [_num(g) for g in group.profile_gains],
        "truthful": {
            "valuation": _num(truthful.valuations[i]),
            "group_valuation": _num(truthful.group_valuations[i]),
            "payment": _num(truthful.payments[i]),
            "utility": _num(truthful.utilities[i]),
        },
        "dsic": _search_json(group.dsic),
        "no_payment": {
            **_search_json(group.no_payment),
            "prediction": {
                "predicted": group.prediction.predicted,
                "theorem": group.prediction.theorem or None,
                "reason": group.prediction.reason,
            },
        },
        "noisy": None
        if noisy is None
        else {
            "eps": noisy.eps,
            "samples": noisy.samples,
            "bound": _num(noisy.bound),
            "gain": _num(noisy.gain),
            "stderr": _num(noisy.stderr),
            "max_sample_gain": _num(noisy.max_sample_gain),
            "search_gain": _num(noisy.search_gain),
            "candidates": noisy.candidates,
            "reward": [float(v) for v in noisy.reward] if noisy.reward.size <= JSON_VECTOR_LIMIT else None,
        },
        "counterexample": saved,
    }


def _prompt_gains_json(gains: PromptGains) -> dict[str, Any]:
    return {
        "description": "the best gain found on each prompt (the terms of the whole game's)",
        "weights": [float(w) for w in gains.weights],
        "whole": [_num(g) for g in gains.whole],
        "at_true_size": [_num(g) for g in gains.at_true_size],
    }


def _finding_json(game: Game, f: Finding) -> dict[str, Any]:
    return {
        "check": f.check,
        "line": finding_line(game, f),
        "group": f.group or None,
        "quantity": f.quantity or None,
        "value": _num(f.value),
        "passed": f.passed,
        "holds": f.holds,
        "expected": f.expected,
        "statement": f.statement,
        "detail": f.detail,
    }


def audit_to_json(audit: GameAudit, saved: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One game's audit with every figure (``saved``: group name -> counterexample path)."""
    game, options = audit.game, audit.options
    saved = saved or {}
    epsilon, group = audit.epsilon_ic
    health = audit.health
    return {
        "source": game.source,
        "part": game.part,
        "sha256": game.digest,
        "game": game.name,
        "passed": audit.passed,
        "epsilon_ic": {"value": _num(epsilon), "group": group},
        "health": None
        if health is None
        else {
            "max_kkt_residual": _num(health.max_kkt_residual),
            "stalled_solves": health.stalled,
            "healthy": health.healthy,
        },
        "payment_rule": game.mechanism.payment_rule.name,
        "training_rule": rule_json(game.mechanism.training_rule, game.outcomes),
        "normalization": game.normalization.value,
        "divergence": {"kind": game.mechanism.divergence.name, "lambda": game.mechanism.lam},
        "outcomes": game.n_outcomes,
        "search": {
            "seed": audit.seed,
            "budget": options.budget,
            "tol": options.tol,
            "noise": options.noise,
            "samples": options.samples if options.noise is not None else None,
            "others": options.others.label,
            "size_bound": audit.size_bound,
            "size_bound_source": audit.size_bound_source,
            "reward_bound": audit.reward_bound,
        },
        "truthful": {
            "social_welfare": _num(audit.truthful.truthful.social_welfare),
            "asw": _num(audit.truthful.truthful.asw),
        },
        "groups": [_group_json(audit, g, saved.get(g.name)) for g in audit.groups],
        "findings": [_finding_json(game, f) for f in audit.findings],
        "notes": list(audit.notes),
    }


def _types_json(row: TypeRow) -> dict[str, Any]:
    """One group's audit over the type set of ``--types``."""
    result = row.result
    worst = result.types[result.worst]
    return {
        "group": row.group,
        "types": int(result.gains.size),
        "epsilon": _num(result.epsilon),
        "worst_type": {
            "parameters": [float(v) for v in worst] if worst.size <= JSON_VECTOR_LIMIT else None,
            "size": _num(result.sizes[result.worst]),
        },
        "best_misreport": _misreport_json(result.best),
        "replay": row.path,
    }


def audits_to_json(run: AuditRun) -> dict[str, Any]:
    """``rlhf-mech audit --format json``: one object per game (invalid files as
    ``{"source", "line", "error"}``, the error one line per problem) and the summary."""
    audits, invalid, summary, saved = run.audits, run.invalid, run.summary, run.saved
    games = [
        audit_to_json(a, {group: path for (k, group), path in saved.items() if k == index})
        for index, a in enumerate(audits)
    ]
    for entry, u in zip(games, run.uncertainty, strict=False):
        if u is not None:
            entry["uncertainty"] = uncertainty_json(u)
    for k, entry in enumerate(games):
        rows = [row for row in run.types if row.audit == k]
        if rows:
            entry["types"] = {"set": run.types_label, "groups": [_types_json(row) for row in rows]}
    games += [{"source": bad.source, "line": bad.line, "error": bad.message} for bad in invalid]
    return {
        "schema_version": AUDIT_SCHEMA_VERSION,
        "games": games,
        "summary": {
            "games": summary.games,
            "groups": summary.groups,
            "invalid": summary.invalid,
            "passed": summary.passed,
            "failed": summary.failed,
            "exit_code": summary.exit_code,
        },
    }


# --------------------------------------------------------------------------------------------
# JUnit XML
# --------------------------------------------------------------------------------------------


def to_junit(run: AuditRun) -> str:
    """JUnit XML for CI dashboards: a test suite per file, a test case per game x check.

    A check's test case fails when any of its findings fails; the failure lists them. An
    invalid file is a test case ``load`` with an ``<error>`` listing its problems. No timings,
    so the output is the same for the same input.
    """
    audits, invalid = run.audits, run.invalid
    root = ET.Element("testsuites", name="rlhf-mech audit")
    total = failures = errors = 0
    for audit in audits:
        checks = [c for c in CHECKS if any(f.check == c for f in audit.findings)]
        suite = ET.SubElement(root, "testsuite", name=game_label(audit.game))
        suite_failures = 0
        for check in checks:
            findings = [f for f in audit.findings if f.check == check]
            case = ET.SubElement(
                suite,
                "testcase",
                classname=printable(audit.game.name),
                name=check,
                file=game_source(audit.game),
            )
            failed = [f for f in findings if not f.passed]
            if failed:
                suite_failures += 1
                lines = [finding_message(f) for f in failed]
                node = ET.SubElement(case, "failure", message=lines[0], type=check)
                node.text = "\n".join(lines)
            else:
                out = ET.SubElement(case, "system-out")
                out.text = "\n".join(
                    f"{f.group or '(game)'}: {fmt_figure(f.value)} ({f.statement})"
                    + (f"; {f.detail}" if f.detail else "")
                    for f in findings
                )
        suite.set("tests", str(len(checks)))
        suite.set("failures", str(suite_failures))
        suite.set("errors", "0")
        total += len(checks)
        failures += suite_failures
    for bad in invalid:
        source = printable(bad.source)  # XML 1.0 cannot even hold most control characters
        suite = ET.SubElement(root, "testsuite", name=source, tests="1", failures="0", errors="1")
        case = ET.SubElement(suite, "testcase", classname=source, name="load")
        # the first problem as the message, every problem of the file (one a line) as the text
        lines = invalid_lines(bad)
        node = ET.SubElement(case, "error", message=lines[0], type="invalid file")
        node.text = "\n".join(lines)
        total += 1
        errors += 1
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --------------------------------------------------------------------------------------------
# GitHub workflow annotations
# --------------------------------------------------------------------------------------------


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def to_github(run: AuditRun) -> str:
    """GitHub Actions workflow commands: one ``::error file=F,line=L,title=T::message`` per
    :class:`Problem` (at the violated ``expect:`` entry or the group), then the summary."""
    lines = []
    for problem in problems(run.audits, run.invalid):
        title = "rlhf-mech: " + (
            CHECKS[problem.rule].title if problem.rule in CHECKS else "invalid game file"
        )
        where = f"file={_escape_property(problem.source)}"
        if problem.line is not None:
            where += f",line={problem.line}"
        lines.append(f"::error {where},title={_escape_property(title)}::{_escape_data(problem.message)}")
    lines.append(summary_text(run.summary))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# SARIF 2.1.0
# --------------------------------------------------------------------------------------------

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _artifact_uri(source: str) -> str:
    """A SARIF artifact URI: relative paths as they are (POSIX, %-encoded), absolute as file:."""
    path = PurePath(source)
    if path.is_absolute():
        return Path(source).as_uri()
    return quote(path.as_posix())


def to_sarif(run: AuditRun) -> dict[str, Any]:
    """A SARIF 2.1.0 log (GitHub code scanning): one rule per check, one result per
    :class:`Problem` at its file and line. No timestamps: the same input gives the same log."""
    from rlhf_mech import __version__ as version

    rule_ids = [*CHECKS, INVALID_FILE]
    described = [(c.name, c.title, c.violation) for c in CHECKS.values()]
    described.append((INVALID_FILE, "invalid game file", _INVALID_FILE_HELP))
    rules = [
        {
            "id": rule,
            "name": rule,
            "shortDescription": {"text": title},
            "fullDescription": {"text": violation},
            "defaultConfiguration": {"level": "error"},
        }
        for rule, title, violation in described
    ]
    results = []
    for problem in problems(run.audits, run.invalid):
        location: dict[str, Any] = {"artifactLocation": {"uri": _artifact_uri(problem.source)}}
        if problem.line is not None:
            location["region"] = {"startLine": problem.line}
        results.append(
            {
                "ruleId": problem.rule,
                "ruleIndex": rule_ids.index(problem.rule),
                "level": "error",
                "message": {"text": printable(problem.message)},
                "locations": [{"physicalLocation": location}],
            }
        )
    driver: dict[str, Any] = {"name": "rlhf-mech", "rules": rules, "version": version}
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": results}],
    }
