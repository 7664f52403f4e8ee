"""Renderers of ``implementability``: a result -> Rich tables or a JSON-ready dict.

They compute nothing (:func:`rlhf_mech.analysis.implementability` does): the verdict, the
negative cycle (each type, the report it makes, its gain, the sum of Definition E.1) or the
Rochet payments beside ``p^AFF`` plus the aligning constant, in type order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Group as RichGroup
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rlhf_mech.analysis import ImplementabilityResult
from rlhf_mech.render._audit import vector_text
from rlhf_mech.render._format import annotation, fmt, fmt_residual, fmt_signed, plural

#: Payment rows shown in the table (the JSON has every type).
PAYMENT_ROWS = 10


def implementability_verdict(result: ImplementabilityResult) -> str:
    """The verdict in one sentence."""
    rule = result.training_rule
    if result.monotone:
        return (
            f"cycle monotone on the {result.K} types: {rule} is implementable on this set "
            "(Rochet payments, Proposition E.2)"
        )
    if result.cycle is None or not result.decided:
        return f"undecided on the {result.K} types: a cycle within the solves' accuracy (see the notes)"
    return (
        f"NOT cycle monotone: a negative cycle of {plural(result.cycle.size, 'type')} "
        f"(sum {result.cycle_sum:.6g}); no payment rule makes {rule} DSIC (Proposition E.2)"
    )


def _summary(result: ImplementabilityResult) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("game", Text(result.game.name, no_wrap=True))
    table.add_row("group", escape(result.group_name))
    table.add_row("training rule", result.training_rule)
    table.add_row("types", f"{result.K} ({result.types.kind}, the true type is type 0)")
    table.add_row("tol", f"{result.tol:g} (each edge +tol/K)")
    if result.dsic_violation is not None:
        table.add_row("DSIC violation", fmt_residual(max(result.dsic_violation, 0.0)) + " (Rochet payments)")
    if result.aff_gap is not None and result.aff_offset is not None:
        table.add_row(
            "payment equivalence",
            f"max |p - p^AFF - c| = {fmt(result.aff_gap)} with c = {fmt(result.aff_offset)}",
        )
    table.add_row("verdict", Text(implementability_verdict(result), style="bold"))
    for note in result.notes:
        table.add_row("note", escape(note))
    return table


def _cycle_table(result: ImplementabilityResult) -> Table:
    assert result.cycle is not None and result.cycle_gains is not None
    types = result.types
    table = Table(
        title=annotation("negative cycle: each type reports the next one"),
        title_justify="left",
        caption=annotation(
            f"gains sum to {fmt_signed(-float(result.cycle_sum or 0.0))} > 0: DSIC would need "
            "p(next) - p(type) >= gain at every step, which sums to 0 >= that"
        ),
        caption_justify="left",
    )
    for name in ("step", "type", "reward", "size", "reports type", "gain"):
        table.add_column(name, justify="left" if name == "reward" else "right", no_wrap=True)
    c = result.cycle.size
    for j in range(c):
        a, b = int(result.cycle[j]), int(result.cycle[(j + 1) % c])
        table.add_row(
            str(j),
            str(a),
            vector_text(types.parameters[a]),
            fmt(float(types.sizes[a])),
            str(b),
            fmt_signed(float(result.cycle_gains[j])),
        )
    return table


def _payment_table(result: ImplementabilityResult, rows: int) -> Table:
    assert result.payments is not None
    types = result.types
    shown = min(rows, result.K)
    aligned = result.aff_payments is not None and result.aff_offset is not None
    table = Table(
        title=annotation(
            f"Rochet payments p_b = dist(type 0 -> type b) (utility w v - p), types 0..{shown - 1} "
            f"of {result.K}"
        ),
        title_justify="left",
    )
    for name in ("type", "reward", "size", "p (Rochet)"):
        table.add_column(name, justify="left" if name == "reward" else "right", no_wrap=True)
    if aligned:
        table.add_column("p^AFF + c", justify="right")
        table.add_column("difference", justify="right")
    for b in range(shown):
        row = [str(b), vector_text(types.parameters[b]), fmt(float(types.sizes[b])), fmt(result.payments[b])]
        if aligned:
            assert result.aff_payments is not None and result.aff_offset is not None
            reference = float(result.aff_payments[b] + result.aff_offset)
            row += [fmt(reference), fmt_signed(float(result.payments[b]) - reference)]
        table.add_row(*row)
    return table


@dataclass(frozen=True)
class ImplementabilityOutput:
    """What ``rlhf-mech implementability`` shows: the result, the cycle files written
    (``--save-cycle``) and the payment rows of the table (``--rows``)."""

    result: ImplementabilityResult
    saved: tuple[str, ...] = ()
    rows: int = PAYMENT_ROWS


def render_implementability(output: ImplementabilityOutput) -> RichGroup:
    """The summary, then the cycle or the first ``output.rows`` payments."""
    result, rows = output.result, output.rows
    parts: list[Any] = [_summary(result)]
    if result.cycle is not None:
        parts.append(_cycle_table(result))
    elif result.payments is not None:
        parts.append(_payment_table(result, rows))
    return RichGroup(*parts)


def implementability_to_json(output: ImplementabilityOutput) -> dict[str, Any]:
    """The stable machine-readable form of a result (every type; the cycle files written)."""
    result, saved = output.result, output.saved
    types = result.types
    cycle = None
    if result.cycle is not None and result.cycle_gains is not None:
        c = result.cycle.size
        cycle = {
            "sum": result.cycle_sum,
            "steps": [
                {
                    "type": int(result.cycle[j]),
                    "reports": int(result.cycle[(j + 1) % c]),
                    "gain": float(result.cycle_gains[j]),
                }
                for j in range(c)
            ],
            "files": list(saved),
        }
    return {
        "game": result.game.name,
        "group": result.group_name,
        "training_rule": result.training_rule,
        "type_set": types.kind,
        "K": result.K,
        "tol": result.tol,
        "monotone": result.monotone,
        "decided": result.decided,
        "verdict": implementability_verdict(result),
        "notes": list(result.notes),
        "unconverged_types": [int(a) for a in result.unconverged],
        "cycle": cycle,
        "dsic_violation": result.dsic_violation,
        "aff_offset": result.aff_offset,
        "aff_gap": result.aff_gap,
        "types": [
            {
                "parameters" if result.game.report_basis is not None else "reward": types.parameters[a],
                "size": float(types.sizes[a]),
                "payment": None if result.payments is None else float(result.payments[a]),
                "aff_payment": None if result.aff_payments is None else float(result.aff_payments[a]),
            }
            for a in range(result.K)
        ],
    }
