"""Renderers of ``rlhf-mech compare``: the trade-off tables, verdicts, JSON, CSV, plot, HTML.

They compute nothing: every figure is a field of :class:`~rlhf_mech.analysis.Comparison`.
The tables are :class:`~rlhf_mech.render._html.TableData`, printed in the terminal (compact:
a compare of the bundled games fits 80 columns) and written into the HTML page alike.
"""

from __future__ import annotations

import csv
import io
import math
import shlex
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Group as RichGroup
from rich.text import Text

from rlhf_mech.analysis import Comparison, MechanismFigures
from rlhf_mech.analysis._internal import LeastCostRow
from rlhf_mech.core import PromptGame
from rlhf_mech.render._format import rule_json, rule_label
from rlhf_mech.render._html import (
    TableData,
    code_block,
    html_page,
    html_table,
    paragraphs,
    rich_table,
    svg_scatter,
)

#: The version of the compare JSON's layout (``rlhf-mech schema --compare``).
COMPARE_SCHEMA_VERSION = 1
#: The columns of ``--format csv``, one row per mechanism and group.
COMPARE_CSV_COLUMNS = (
    "game",
    "training_rule",
    "payment_rule",
    "social_welfare",
    "asw",
    "group",
    "utility",
    "payment",
    "gain",
    "gain_share",
    "negative_payment_share",
    "full_runs",
    "early_stopped_runs",
    "pareto",
)


def num(x: float | None) -> str:
    """3 significant digits (a table's cell; the JSON has every digit); exact zero (and
    ``-0``) as ``0``; ``None`` as ``-``."""
    if x is None:
        return "-"
    return "0" if x == 0 else f"{x:.3g}"


def signed(x: float, tol: float = 0.0) -> str:
    """A gain with its sign; within ``tol`` of 0 (the solves' rounding) as ``0``."""
    return "0" if abs(x) <= tol else f"{x:+.3g}"


def wrapped(lines: Sequence[str], width: int = 79) -> str:
    """Lines of prose folded to ``width`` columns, continuation lines indented by two spaces
    (the terminal output fits 80 columns)."""
    return "\n".join(
        textwrap.fill(line, width, subsequent_indent="  ", break_on_hyphens=False) for line in lines
    )


def share(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _label(rule: Any, c: Comparison) -> str:
    return rule_label(rule, c.game.outcomes)


def mechanism_name(m: MechanismFigures, c: Comparison) -> str:
    """``sw_max + affine_maximizer`` (parameters set shown)."""
    return f"{_label(m.training, c)} + {_label(m.payment, c)}"


def runs_text(m: MechanismFigures) -> str:
    """``3`` full runs, or ``1+2x20``: one full run and two early-stopped runs of 20 steps."""
    if not m.early_stopped_runs:
        return str(m.full_runs)
    return f"{m.full_runs}+{m.early_stopped_runs}x{m.early_stopped_steps}"


def _summary(c: Comparison) -> str:
    game = c.game
    mechanism = game.mechanism
    prompts = f"{game.n_prompts} prompts, " if isinstance(game, PromptGame) else ""
    return (
        f"{game.name}: {game.n_groups} groups, {prompts}{game.n_outcomes} outcomes, divergence "
        f"{mechanism.divergence.name} (lambda = {mechanism.lam:g}); {len(c.mechanisms)} mechanisms "
        "at truthful reports"
    )


def _short_label(rule: Any, c: Comparison, rules: Sequence[Any]) -> str:
    """A rule's name with only the parameters that differ between the ``rules`` of its name
    (the compact table; the JSON has them all)."""
    same = [r for r in rules if r.name == rule.name]
    varying = {k for k, v in rule.parameters if any(dict(r.parameters).get(k) != v for r in same)}
    base = _label(replace(rule, parameters=()), c)
    if not varying:
        return base
    shown = _label(replace(rule, parameters=tuple((k, v) for k, v in rule.parameters if k in varying)), c)
    # the varying settings on a line of their own: a long rule name and its settings together
    # would not fit 80 columns
    return f"{base}\n    {shown[len(base) :].strip()}"


def trade_off_table(c: Comparison) -> TableData:
    """One row per mechanism, grouped by training rule (section rows)."""
    rows: list[tuple[str, ...]] = []
    current = None
    payments = [m.payment for m in c.mechanisms]
    for m in c.mechanisms:
        training = _label(m.training, c)
        if training != current:
            rows.append((training,))
            current = training
        gain, _ = m.max_gain
        shares = [g.gain_share for g in m.groups if g.gain == gain]
        rows.append(
            (
                "  " + _short_label(m.payment, c, payments),
                num(m.social_welfare),
                num(m.asw),
                num(m.lowest_utility),
                num(m.revenue),
                signed(gain, c.options.tol),
                share(shares[0] if shares else None),
                "✓" if m.ir else "✗",
                share(m.negative_share) if any(g.samples for g in m.groups) else "-",
                runs_text(m),
                "★" if m.pareto else "",
            )
        )
    samples = max((g.samples for m in c.mechanisms for g in m.groups), default=0)
    legend = (
        "SW: social welfare sum_i w_i v_i at truthful reports; ASW: SW - D_f",
        "min u: the lowest group utility; paid: the payments' total (< 0: a deficit)",
        f"gain: the largest gain over truth a search found (a lower bound; 0: at most {c.options.tol:g}), "
        "the others truthful; %u: of that group's truthful utility",
        "IR: ✓ every truthful utility >= 0; p<0: estimated share of negative payments over "
        f"{samples} random reports per group (rules that charge)",
        "runs: training runs (n+1: p^AFF; 1+nxT: n early-stopped runs of T steps)",
        "★ Pareto front: no other row is as good in gain, runs, SW and min u and better in one",
    )
    return TableData(
        title=f"rlhf-mech compare: {c.game.name}",
        columns=("mechanism", "SW", "ASW", "min u", "paid", "gain", "%u", "IR", "p<0", "runs", ""),
        right=(False, *[True] * 6, False, True, True, False),
        rows=tuple(rows),
        legend=legend,
    )


def groups_table(c: Comparison) -> TableData:
    """One row per mechanism and group: utility, payment, gain and its share, negative payments."""
    rows = _sections(
        (
            mechanism_name(m, c),
            (
                g.name,
                num(g.utility),
                num(g.payment),
                signed(g.gain, c.options.tol),
                share(g.gain_share),
                (share(g.negative_share) + f" ±{g.negative_stderr:.0%}") if g.samples else "-",
            ),
        )
        for m in c.mechanisms
        for g in m.groups
    )
    legend = (
        "u, p: utility and payment at truthful reports; gain: the best misreport found (%u: of u)",
        "p<0: estimated share of negative payments over random reports (± standard error)",
    )
    return TableData(
        title="per group",
        columns=("group", "u", "p", "gain", "%u", "p<0"),
        right=(False, True, True, True, True, True),
        rows=rows,
        legend=legend,
    )


def _sections(rows: Iterable[tuple[str, tuple[str, ...]]]) -> tuple[tuple[str, ...], ...]:
    """``(heading, row)`` pairs as table rows: a row of the heading alone wherever it changes,
    then each row with its first cell indented under it."""
    out: list[tuple[str, ...]] = []
    current = None
    for heading, (first, *rest) in rows:
        if heading != current:
            out.append((heading,))
            current = heading
        out.append(("  " + first, *rest))
    return tuple(out)


def _least_cost_row(row: LeastCostRow) -> tuple[str, ...]:
    """A group's least-cost payments: K, the lowest, p^AFF, the highest, the verdict."""
    extremes = row.payments.at_truth
    low, high = extremes if extremes is not None else (None, None)
    verdict = "DSIC possible" if extremes is not None else "no DSIC payment"
    return (row.group, str(row.payments.result.K), num(low), num(row.affine_maximizer), num(high), verdict)


def least_cost_table(c: Comparison) -> TableData | None:
    """Per training rule and group: the cheapest and highest DSIC, IR, ``p >= 0`` payments of
    the true type on its type set, beside ``p^AFF``; ``None`` when none were computed."""
    if not c.least_cost:
        return None
    rows = _sections((_label(row.training, c), _least_cost_row(row)) for row in c.least_cost)
    legend = (
        "K types of the group: random rewards at its true size and at W, the others truthful",
        "lowest, highest: the extreme payments of its true type that are DSIC, IR and >= 0 on the K "
        "types; p^AFF: eq. (1), Proposition 4.4 (additive rules only)",
        "no DSIC payment: a negative cycle on the types (Proposition E.2)",
    )
    return TableData(
        title="what payment makes each training rule truthful, at least and at most cost",
        columns=("group", "K", "lowest", "p^AFF", "highest", "verdict"),
        right=(False, True, True, True, True, False),
        rows=rows,
        legend=legend,
    )


def _source(c: Comparison) -> str:
    return c.game.source or "GAME"


def reproduce(c: Comparison) -> str:
    """The command that reproduces the comparison's figures."""
    o = c.options
    return (
        f"rlhf-mech compare {shlex.quote(_source(c))} --seed {o.seed} --budget {o.budget} "
        f"--samples {o.samples} --types {o.type_points}"
    )


def mechanism_verdict(m: MechanismFigures, c: Comparison) -> str:
    """One sentence: gameable or not, by whom and by how much, expected or not, and the fix."""
    name = mechanism_name(m, c)
    if m.gameable:
        worst = max(m.groups, key=lambda g: g.gain)
        part = f" ({share(worst.gain_share)} of its utility)" if worst.gain_share is not None else ""
        text = f"{name}: gameable: {worst.name} gains up to {signed(worst.gain)}{part}"
    else:
        text = f"{name}: no profitable misreport found"
    text += "; expected" if m.as_expected else "; NOT expected (a theorem says otherwise)"
    if m.gameable and m.dsic_payment is not None and m.dsic_payment.name != m.payment.name:
        text += (
            f"; {m.dsic_payment.name} makes it DSIC ({m.dsic_payment.reference}): "
            f"rlhf-mech audit {shlex.quote(_source(c))} --payment {m.dsic_payment.name}"
        )
    elif m.gameable and m.dsic_payment is None:
        text += "; no theorem gives a DSIC payment (see the least-cost table)"
    return text


def game_verdict(c: Comparison) -> str:
    """One line for the game: the Pareto front."""
    front = ", ".join(mechanism_name(m, c) for m in c.pareto)
    return f"Pareto front ({len(c.pareto)} of {len(c.mechanisms)}): {front}"


def _notes(c: Comparison) -> list[str]:
    notes = list(c.notes)
    skipped = sorted({(t, p) for t, p, _ in c.skipped})
    if skipped:
        notes.append(
            "not compared (no such mechanism: eq. (1) and the heuristics need an additive training rule, "
            "or a rule does not split over prompts): " + ", ".join(f"{t} + {p}" for t, p in skipped)
        )
    return notes


def render_compare(c: Comparison) -> RichGroup:
    """Everything ``rlhf-mech compare`` prints."""
    parts: list[Any] = [Text(wrapped([_summary(c)]))]
    for data in (trade_off_table(c), least_cost_table(c)):
        if data is None:
            continue
        parts.append(rich_table(data))
        parts.append(Text(wrapped(data.legend), style="dim"))
    parts.append(Text(wrapped([mechanism_verdict(m, c) for m in c.mechanisms])))
    parts.append(Text(wrapped([game_verdict(c)]), style="bold"))
    notes = _notes(c)
    if notes:
        parts.append(Text(wrapped([f"note: {n}" for n in notes]), style="dim"))
    return RichGroup(*parts)


# --------------------------------------------------------------------------------------------
# JSON and CSV
# --------------------------------------------------------------------------------------------


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _least_cost_json(row: LeastCostRow, c: Comparison) -> dict[str, Any]:
    extremes = row.payments.at_truth
    return {
        "training_rule": rule_json(row.training, c.game.outcomes),
        "group": row.group,
        "types": row.payments.result.K,
        "monotone": row.payments.result.monotone,
        "lowest": None if extremes is None else extremes[0],
        "highest": None if extremes is None else extremes[1],
        "affine_maximizer": row.affine_maximizer,
        "reason": row.payments.reason,
    }


def _mechanism_json(m: MechanismFigures, c: Comparison) -> dict[str, Any]:
    gain, group = m.max_gain
    return {
        "training_rule": rule_json(m.training, c.game.outcomes),
        "payment_rule": rule_json(m.payment, c.game.outcomes),
        "social_welfare": _finite(m.social_welfare),
        "asw": _finite(m.asw),
        "lowest_utility": _finite(m.lowest_utility),
        "revenue": _finite(m.revenue),
        "max_gain": {"value": _finite(gain), "group": group},
        "total_gain": _finite(m.total_gain),
        "ir": m.ir,
        "negative_payment_share": _finite(m.negative_share),
        "training_runs": {
            "full": m.full_runs,
            "early_stopped": m.early_stopped_runs,
            "early_stopped_steps": m.early_stopped_steps,
        },
        "dsic_by_theorem": m.dsic_by_theorem,
        "gameable": m.gameable,
        "as_expected": m.as_expected,
        "dsic_payment": None if m.dsic_payment is None else m.dsic_payment.name,
        "pareto": m.pareto,
        "verdict": mechanism_verdict(m, c),
        "groups": [
            {
                "name": g.name,
                "utility": _finite(g.utility),
                "payment": _finite(g.payment),
                "gain": _finite(g.gain),
                "gain_share": _finite(g.gain_share),
                "gain_is": "exact" if g.search.exact else "lower_bound",
                "negative_payment_share": _finite(g.negative_share),
                "negative_payment_stderr": _finite(g.negative_stderr),
                "samples": g.samples,
                "evaluations": g.search.evaluations,
            }
            for g in m.groups
        ],
    }


def compare_to_json(c: Comparison) -> dict[str, Any]:
    """``rlhf-mech compare --format json`` (schema: ``rlhf-mech schema --compare``)."""
    o = c.options
    return {
        "schema_version": COMPARE_SCHEMA_VERSION,
        "game": c.game.name,
        "source": c.game.source,
        "options": {
            "budget": o.budget,
            "seed": o.seed,
            "samples": o.samples,
            "types": o.type_points,
            "tol": o.tol,
        },
        "mechanisms": [_mechanism_json(m, c) for m in c.mechanisms],
        "least_cost": [_least_cost_json(row, c) for row in c.least_cost],
        "skipped": [{"training_rule": t, "payment_rule": p, "reason": why} for t, p, why in c.skipped],
        "verdict": game_verdict(c),
        "notes": list(c.notes),
        "reproduce": reproduce(c),
    }


def compare_to_csv(c: Comparison) -> str:
    """``rlhf-mech compare --format csv``: one row per mechanism and group
    (:data:`COMPARE_CSV_COLUMNS`; floats in ``repr``, booleans ``true``/``false``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COMPARE_CSV_COLUMNS)
    for m in c.mechanisms:
        for g in m.groups:
            values = (
                c.game.name,
                _label(m.training, c),
                _label(m.payment, c),
                m.social_welfare,
                m.asw,
                g.name,
                g.utility,
                g.payment,
                g.gain,
                "" if g.gain_share is None else g.gain_share,
                g.negative_share,
                m.full_runs,
                m.early_stopped_runs,
                "true" if m.pareto else "false",
            )
            writer.writerow([repr(float(v)) if isinstance(v, float) else v for v in values])
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# Plot and HTML
# --------------------------------------------------------------------------------------------


def compare_figure(c: Comparison) -> Any:
    """A matplotlib figure: the largest gain against training runs and against SW, one point
    per mechanism, the Pareto front filled (needs the ``plot`` extra)."""
    from rlhf_mech.render._plot import _figure_class

    fig = _figure_class()(figsize=(10, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (x_of, x_label) in zip(
        axes,
        (
            (lambda m: m.runs, "training runs (full + early-stopped)"),
            (lambda m: m.social_welfare, "social welfare"),
        ),
        strict=True,
    ):
        for k, m in enumerate(c.mechanisms):
            style = {"color": "tab:red"} if m.pareto else {"facecolors": "none", "edgecolors": "tab:blue"}
            ax.scatter([x_of(m)], [m.max_gain[0]], s=40, **style)
            ax.annotate(
                str(k + 1), (x_of(m), m.max_gain[0]), textcoords="offset points", xytext=(5, 4), fontsize=8
            )
        ax.set_xlabel(x_label)
        ax.set_ylabel("largest gain found")
        ax.grid(True, alpha=0.3)
    key = "; ".join(f"{k + 1}: {mechanism_name(m, c)}" for k, m in enumerate(c.mechanisms))
    fig.suptitle(f"{c.game.name}: gain against cost and welfare (red: Pareto front)", fontsize=11)
    fig.text(0.01, 0.005, key, fontsize=6, wrap=True)
    return fig


def save_compare_plot(c: Comparison, path: str | Path) -> Path:
    """Draw :func:`compare_figure` to ``path`` (``.png`` added to a name without a suffix)."""
    from rlhf_mech.render._plot import save_figure

    return save_figure(compare_figure(c), path)


def compare_html(c: Comparison) -> str:
    """The page of ``compare --html``: verdicts, the tables with their legends, the figure
    (inline SVG) and the commands that reproduce every number."""
    points = [(m.social_welfare, m.max_gain[0], str(k + 1), m.pareto) for k, m in enumerate(c.mechanisms)]
    key = [f"{k + 1}: {mechanism_name(m, c)}" for k, m in enumerate(c.mechanisms)]
    tables: Sequence[tuple[str, TableData | None]] = (
        ("Trade-offs", trade_off_table(c)),
        ("Per group", groups_table(c)),
        ("Least-cost payments", least_cost_table(c)),
    )
    source = shlex.quote(_source(c))
    commands = [
        reproduce(c),
        reproduce(c) + " --format json   # every figure",
        *sorted(
            {
                f"rlhf-mech audit {source} --training {m.training.name} --payment {m.payment.name}"
                for m in c.mechanisms
            }
        ),
    ]
    sections = [
        (
            "Verdict",
            paragraphs([_summary(c), game_verdict(c), *(mechanism_verdict(m, c) for m in c.mechanisms)]),
        ),
        *((heading, html_table(data)) for heading, data in tables if data is not None),
        (
            "Largest gain against social welfare (filled: Pareto front)",
            svg_scatter(points, "social welfare at truth", "largest gain found") + paragraphs(key, "key"),
        ),
        ("Notes", paragraphs(_notes(c) or ["none"], "note")),
        ("How to reproduce", code_block(commands)),
    ]
    return html_page(f"rlhf-mech compare: {c.game.name}", sections)


def compare_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of :func:`compare_to_json` (``rlhf-mech schema --compare``)."""
    from rlhf_mech.render._audit_schema import NUMBER_OR_NULL, STRING_OR_NULL, _object

    rule = _object({"rule": {"type": "string"}, "parameters": {"type": "object"}})
    count = {"type": "integer", "minimum": 0}
    group = _object(
        {
            "name": {"type": "string"},
            **{k: NUMBER_OR_NULL for k in ("utility", "payment", "gain", "gain_share")},
            "gain_is": {"enum": ["exact", "lower_bound"]},
            "negative_payment_share": NUMBER_OR_NULL,
            "negative_payment_stderr": NUMBER_OR_NULL,
            "samples": count,
            "evaluations": count,
        }
    )
    mechanism = _object(
        {
            "training_rule": rule,
            "payment_rule": rule,
            **{k: NUMBER_OR_NULL for k in ("social_welfare", "asw", "lowest_utility", "revenue")},
            "max_gain": _object({"value": NUMBER_OR_NULL, "group": {"type": "string"}}),
            "total_gain": NUMBER_OR_NULL,
            "ir": {"type": "boolean"},
            "negative_payment_share": NUMBER_OR_NULL,
            "training_runs": _object(
                {"full": count, "early_stopped": count, "early_stopped_steps": {"type": ["integer", "null"]}}
            ),
            **{k: {"type": "boolean"} for k in ("dsic_by_theorem", "gameable", "as_expected")},
            "dsic_payment": STRING_OR_NULL,
            "pareto": {"type": "boolean"},
            "verdict": {"type": "string"},
            "groups": {"type": "array", "items": group},
        }
    )
    least = _object(
        {
            "training_rule": rule,
            "group": {"type": "string"},
            "types": count,
            "monotone": {"type": "boolean"},
            "lowest": NUMBER_OR_NULL,
            "highest": NUMBER_OR_NULL,
            "affine_maximizer": NUMBER_OR_NULL,
            "reason": {"type": "string"},
        }
    )
    skipped = _object(
        {
            "training_rule": {"type": "string"},
            "payment_rule": {"type": "string"},
            "reason": {"type": "string"},
        }
    )
    options = _object(
        {"budget": count, "seed": count, "samples": count, "types": count, "tol": {"type": "number"}}
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://rlhf-mech.invalid/schemas/compare-{COMPARE_SCHEMA_VERSION}.json",
        "title": f"rlhf-mech compare, JSON layout {COMPARE_SCHEMA_VERSION}",
        **_object(
            {
                "schema_version": {"const": COMPARE_SCHEMA_VERSION},
                "game": {"type": "string"},
                "source": STRING_OR_NULL,
                "options": options,
                "mechanisms": {"type": "array", "items": mechanism},
                "least_cost": {"type": "array", "items": least},
                "skipped": {"type": "array", "items": skipped},
                "verdict": {"type": "string"},
                "notes": {"type": "array", "items": {"type": "string"}},
                "reproduce": {"type": "string"},
            }
        ),
    }
