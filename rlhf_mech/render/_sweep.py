"""Renderers for sweeps: Rich table, JSON dict, CSV text. They compute nothing new.

The table has the layout of the paper's tables 2-6 (appendix F): one column per parameter
value, one row per quantity of the deviating group, the best value of each row in brackets
(and bold, where the terminal shows it) and truth's column marked. A sweep of more than
:data:`MAX_COLUMNS` points is shown transposed (one row per point). See
:mod:`rlhf_mech.analysis` (:func:`~rlhf_mech.analysis.sweep`) for the quantities.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich import box
from rich.console import Console
from rich.console import Group as RichGroup
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from rlhf_mech.analysis import FAMILIES, SweepResult
from rlhf_mech.render._fit import Fitted
from rlhf_mech.render._format import annotation, fmt, rule_json
from rlhf_mech.render._uncertainty import sweep_uncertainty_text, uncertainty_json

#: More points than this are shown one row per point instead of one column per point.
MAX_COLUMNS = 10
#: Sweeps of at least this many points (all groups together) get a progress bar on a terminal.
PROGRESS_MIN_POINTS = 200
#: Rows whose best value is marked (the reported size is an input, not a result).
BETTER_ROWS = frozenset(
    {"valuations", "group_valuations", "payments", "utilities", "utilities_no_payment", "social_welfare"}
)

CSV_COLUMNS: tuple[str, ...] = (
    "game",
    "payment_rule",
    "group",
    "strategy",
    "parameter_name",
    "parameter",
    "truthful",
    "reported_size",
    "valuation",
    "group_valuation",
    "payment",
    "utility",
    "utility_no_payment",
    "social_welfare",
    "clipped",
)


def num(x: float) -> str:
    """A number for the sweep table: 4 significant digits (JSON and CSV keep all of them)."""
    return "0" if x == 0 else f"{x:.4g}"


#: SweepResult attribute -> (its row's label, its short label in the compact layout); the
#: compact layout leaves out the utility without payment (= w_i v_i).
LABELS: dict[str, tuple[str, str]] = {
    "reported_sizes": ("reported size", "size"),
    "valuations": ("valuation v_i", "v_i"),
    "group_valuations": ("group valuation w_i v_i", "w_i v_i"),
    "payments": ("payment", "p_i"),
    "utilities": ("utility", "u_i"),
    "utilities_no_payment": ("utility w/o payment", ""),
    "social_welfare": ("social welfare", "SW"),
}


def _rows(result: SweepResult) -> list[tuple[str, str]]:
    """(label, SweepResult attribute) of the table's rows, in the order of tables 2-6."""
    attributes = []
    if result.family in ("size", "explicit"):
        attributes.append("reported_sizes")
    attributes += ["valuations", "group_valuations"]
    if result.payment_rule.charges:
        attributes += ["payments", "utilities"]
    attributes += ["utilities_no_payment", "social_welfare"]
    return [(LABELS[a][0], a) for a in attributes]


def parameter_label(result: SweepResult, k: int) -> str:
    """The header of point ``k``: its value, ``*`` for truth, ``†`` when clipped and ``‡``
    when its reported size is above the game's ``max_size``."""
    if result.family == "explicit":
        label = "truth" if k == result.truthful_index else "report"
    else:
        label = num(float(result.parameters[k]))
    marks = ("*" if k == result.truthful_index else "") + ("†" if result.clipped[k] else "")
    return label + marks + ("" if result.within_max_size[k] else "‡")


def _transposed(result: SweepResult) -> bool:
    """Whether the table has one row per point (more than :data:`MAX_COLUMNS` points)."""
    return result.parameters.size > MAX_COLUMNS


def _caption(result: SweepResult, by_point: bool) -> str:
    """The legend under the table (``by_point``: the layout of one row per point)."""
    parts = ["* truthful report"]
    if result.clipped.any():
        parts.append("† report adjusted to stay valid")
    if not result.within_max_size.all():
        parts.append("‡ reported size above max_size (not in the verdict)")
    parts.append(f"[x]: best for the group in its {'column' if by_point else 'row'}")
    if result.payment_rule.charges:
        parts.append("utility = w_i v_i - payment")
    return "; ".join(parts)


def _cell(result: SweepResult, attribute: str, k: int) -> Text:
    value = num(float(getattr(result, attribute)[k]))
    if attribute in BETTER_ROWS and bool(result.is_best(attribute)[k]):
        return Text(f"[{value}]", style="bold")
    return Text(value)


def _title(result: SweepResult) -> str:
    training = result.game.mechanism.training_rule.name
    return (
        f"{result.group_name}: {FAMILIES[result.family].title}; others' reports fixed "
        f"(game {result.game.name}, training {training}, payment {result.payment_rule.name})"
    )


def sweep_table(result: SweepResult) -> Table:
    """The paper's table layout: parameters as columns (or as rows for long sweeps)."""
    rows = _rows(result)
    points = range(result.parameters.size)
    truth = result.truthful_index
    table = Table(
        title=annotation(_title(result)),
        title_justify="left",
        caption=annotation(_caption(result, _transposed(result))),
        caption_justify="left",
    )
    if not _transposed(result):
        table.add_column(result.parameter_name, no_wrap=True)
        for k in points:
            style = "underline" if k == truth else ""
            table.add_column(parameter_label(result, k), justify="right", header_style=style, no_wrap=True)
        for label, attribute in rows:
            table.add_row(label, *(_cell(result, attribute, k) for k in points))
        return table
    table.add_column(result.parameter_name, justify="right", no_wrap=True)
    for label, _ in rows:
        table.add_column(label, justify="right", no_wrap=True)
    for k in points:
        table.add_row(
            parameter_label(result, k),
            *(_cell(result, attribute, k) for _, attribute in rows),
            style="underline" if k == truth else "",
        )
    return table


def compact_sweep_table(result: SweepResult) -> RichGroup:
    """The compact layout of :func:`sweep_table`: one row per point, short headers, no
    frame, the legend (with the short names) below."""
    rows = [(LABELS[a][1], a) for _, a in _rows(result) if LABELS[a][1]]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column(result.parameter_name, justify="right", no_wrap=True)
    for label, _ in rows:
        table.add_column(label, justify="right", no_wrap=True)
    for k in range(result.parameters.size):
        table.add_row(parameter_label(result, k), *(_cell(result, a, k) for _, a in rows))
    names = "; ".join(f"{short}: {LABELS[a][0].removesuffix(' ' + short)}" for short, a in rows)
    legend = f"{_caption(result, by_point=True)}; {names}; utility w/o payment = w_i v_i"
    return RichGroup(table, Text(legend, style="dim"))


def _deviation_words(result: SweepResult, with_payment: bool) -> str:
    best = result.best_deviation(with_payment)
    assert best is not None
    gain, k = best
    if result.family == "explicit":
        where = "the given report"
    else:
        where = f"{result.parameter_name}={fmt(float(result.parameters[k]))}"
    if result.truth_is_optimal(with_payment):
        return f"truth is optimal (best deviation {gain:+.3g} at {where})"
    edge = " (the edge of the range swept: a wider range may gain more)" if result.at_edge(k) else ""
    return f"{result.group_name} gains {gain:+.3g} by reporting {where}{edge}"


def verdict(result: SweepResult) -> str:
    """The closing sentence: is truth optimal without payment, and under the payment rule."""
    if result.best_deviation() is None:
        return "only the truthful report was evaluated"
    words = f"without payments {_deviation_words(result, with_payment=False)}"
    if result.payment_rule.charges:
        rule = result.payment_rule.name.replace("_", "-")
        words += f"; with {rule} payments {_deviation_words(result, with_payment=True)}"
    return words


def render_sweep(result: SweepResult) -> RichGroup:
    """Everything ``rlhf-mech sweep`` shows for one group, as one Rich renderable (the table
    in its compact layout where it does not fit the width: :class:`~rlhf_mech.render.Fitted`)."""
    parts: list[Any] = [Fitted(sweep_table(result), compact_sweep_table(result))]
    parts += [Text(f"note: {note}", style="dim") for note in result.notes]
    parts.append(Text(verdict(result), style="bold"))
    if result.uncertainty is not None:
        parts.append(sweep_uncertainty_text(result))
    return RichGroup(*parts)


def render_sweeps(results: Sequence[SweepResult]) -> RichGroup:
    """Several sweeps (``--all-groups``), one after the other."""
    parts: list[Any] = []
    for n, result in enumerate(results):
        if n:
            parts.append(Text(""))
        parts.append(render_sweep(result))
    return RichGroup(*parts)


def sweeps_to_json(results: Sequence[SweepResult]) -> dict[str, Any]:
    """``rlhf-mech sweep --format json``: ``{"sweeps": [...]}``, one :func:`sweep_to_json`
    per group swept (one with ``--group``, every group with ``--all-groups``)."""
    return {"sweeps": [sweep_to_json(r) for r in results]}


def sweep_to_json(result: SweepResult) -> dict[str, Any]:
    """The stable machine-readable form of one sweep (with ``--ci`` on a sampled game, an
    ``uncertainty`` key: :func:`~rlhf_mech.render.uncertainty_json`)."""
    data = {
        "game": result.game.name,
        "group": result.group_name,
        "strategy": result.family,
        "parameter_name": result.parameter_name,
        "payment_rule": result.payment_rule.name,
        "training_rule": rule_json(result.game.mechanism.training_rule, result.game.outcomes),
        "notes": list(result.notes),
        "verdict": verdict(result),
        "points": [
            {
                "parameter": float(result.parameters[k]),
                "truthful": k == result.truthful_index,
                "report": {
                    "reward": result.reported_rewards[k],
                    "size": float(result.reported_sizes[k]),
                },
                "distribution": None if result.distributions is None else result.distributions[k],
                "valuation": float(result.valuations[k]),
                "group_valuation": float(result.group_valuations[k]),
                "payment": float(result.payments[k]),
                "utility": float(result.utilities[k]),
                "utility_no_payment": float(result.utilities_no_payment[k]),
                "social_welfare": float(result.social_welfare[k]),
                "clipped": bool(result.clipped[k]),
                "within_max_size": bool(result.within_max_size[k]),
            }
            for k in range(result.parameters.size)
        ],
    }
    if result.uncertainty is not None:
        data["uncertainty"] = uncertainty_json(result.uncertainty)
    return data


def _csv_bool(value: bool) -> str:
    return "true" if value else "false"


def sweeps_to_csv(results: Sequence[SweepResult]) -> str:
    """One row per point (and group), the columns of :data:`CSV_COLUMNS`; no vectors.
    Floats are written with ``repr`` (exact), booleans as ``true``/``false``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in results:
        for k in range(r.parameters.size):
            writer.writerow(
                [
                    r.game.name,
                    r.payment_rule.name,
                    r.group_name,
                    r.family,
                    r.parameter_name,
                    repr(float(r.parameters[k])),
                    _csv_bool(k == r.truthful_index),
                    repr(float(r.reported_sizes[k])),
                    *(
                        repr(float(getattr(r, a)[k]))
                        for a in (
                            "valuations",
                            "group_valuations",
                            "payments",
                            "utilities",
                            "utilities_no_payment",
                            "social_welfare",
                        )
                    ),
                    _csv_bool(bool(r.clipped[k])),
                ]
            )
    return out.getvalue()


@contextmanager
def sweep_progress(
    console: Console, points: int, enabled: bool = True
) -> Iterator[Callable[[int, int], None] | None]:
    """A Rich progress bar on ``console`` for sweeps of many points; ``None`` when piped
    or disabled (``-q``).

    Yields a callback for :func:`rlhf_mech.analysis.sweep`'s ``on_progress``; the bar counts the
    points of all sweeps made inside the ``with`` block (``points`` in all).
    """
    if not (enabled and console.is_terminal) or points < PROGRESS_MIN_POINTS:
        yield None
        return
    columns = (TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("sweep", total=points)
        offset = 0

        def advance(done: int, total: int) -> None:
            nonlocal offset
            progress.update(task, completed=offset + done)
            if done == total:  # this sweep is finished; the next one counts on from here
                offset += total

        yield advance
