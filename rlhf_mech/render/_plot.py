"""Sweep figures in the look of the paper's Figure 2 (optional: needs matplotlib).

Install with ``pip install 'rlhf-mech[plot]'``. The figure is built on a bare
:class:`matplotlib.figure.Figure` (no pyplot, no global backend state), one panel per sweep:
the group's valuation ``w_i v_i``, payment and utility against the parameter, truth marked.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlhf_mech.analysis import FAMILIES, SweepResult
from rlhf_mech.errors import RlhfMechError, printable

MISSING_MATPLOTLIB = "--plot needs matplotlib: pip install matplotlib (the 'plot' extra of rlhf-mech)"

#: (SweepResult attribute, legend label, colour, marker) of the plotted lines.
LINES: tuple[tuple[str, str, str, str], ...] = (
    ("group_valuations", "valuation (w_i v_i)", "tab:blue", "o"),
    ("payments", "payment", "tab:orange", "s"),
    ("utilities", "utility", "tab:green", "^"),
)


def _figure_class() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise RlhfMechError(MISSING_MATPLOTLIB) from None
    return Figure


def _quantities(result: SweepResult) -> str:
    """What a panel shows, in words (the payment and utility only where the rule charges)."""
    if result.payment_rule.charges:
        return "valuation, payment and utility"
    return "valuation (= utility: no payment)"


def sweep_figure(results: Sequence[SweepResult]) -> Any:
    """A :class:`matplotlib.figure.Figure` with one panel per sweep.

    Each panel plots the group's valuation ``w_i v_i`` (and, under a payment rule that
    charges, the payment and the utility) against the family's parameter, truth marked; an
    explicit report is drawn at two named positions (truthful, report), not on a numeric
    axis; points adjusted to stay valid or above ``max_size`` are crossed. The title is wrapped
    to the figure's width.

    Raises
    ------
    RlhfMechError
        when matplotlib is not installed.
    """
    figure_class = _figure_class()
    cols = min(3, len(results))
    rows = math.ceil(len(results) / cols)
    width = max(6.4, 4.2 * cols)
    fig = figure_class(figsize=(width, 3.6 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, result in zip(axes.flat, results, strict=False):
        t = result.truthful_index
        explicit = result.family == "explicit"
        x = np.arange(result.parameters.size) if explicit else result.parameters
        lines = LINES if result.payment_rule.charges else LINES[:1]
        for attribute, label, colour, marker in lines:
            y = getattr(result, attribute)
            ax.plot(
                x,
                y,
                color=colour,
                marker=marker,
                markersize=6 if explicit else 4 if x.size <= 30 else 0,
                linestyle="" if explicit else "-",
                label=label if result.payment_rule.charges else "valuation = utility (w_i v_i)",
            )
        marked = result.clipped | ~result.within_max_size
        if marked.any():  # the points the table marks † (adjusted) or ‡ (above max_size)
            ax.plot(
                x[marked],
                result.utilities[marked],
                marker="x",
                markersize=8,
                color="tab:red",
                linestyle="",
                label="adjusted or above max_size",
            )
        ax.axvline(x[t], color="grey", linestyle="--", linewidth=1, label="truth")
        ax.plot([x[t]], [result.utilities[t]], marker="*", markersize=12, color="tab:green", linestyle="")
        if explicit:
            ax.set_xticks(x, ["truthful" if k == t else "report" for k in range(x.size)])
            ax.set_xlim(-0.5, x.size - 0.5)
            ax.set_xlabel("report")
        else:
            ax.set_xlabel(result.parameter_name)
        ax.set_ylabel(_quantities(result))
        size = f"{result.game.truth.sizes[result.group]:g}"
        rules = f"training {result.game.mechanism.training_rule.name}, payment {result.payment_rule.name}"
        ax.set_title(f"{result.group_name} (w = {size}), {rules}", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(results) :]:
        ax.set_visible(False)
    first = results[0]
    title = f"{first.game.name}: {_quantities(first)} against the report ({FAMILIES[first.family].title})"
    fig.suptitle(textwrap.fill(title, width=int(width * 10)), fontsize=11)
    return fig


def plot_path(path: str | Path) -> Path:
    """Where :func:`save_sweep_plot` writes: ``path``, with ``.png`` added when it has no suffix."""
    path = Path(path)
    return path if path.suffix else path.with_name(path.name + ".png")


def save_figure(figure: Any, path: str | Path, dpi: int = 120) -> Path:
    """Write ``figure`` to ``path`` (PNG, PDF or SVG by its suffix; ``.png`` when it has none,
    :func:`plot_path`; an SVG without its date, so the same figure gives the same bytes) and
    return the path written.

    Raises
    ------
    RlhfMechError
        naming ``--plot`` and the path, when it cannot be written.
    """
    target = plot_path(path)
    try:
        figure.savefig(target, dpi=dpi, metadata={"Date": None} if target.suffix == ".svg" else None)
    except (OSError, ValueError) as exc:
        raise RlhfMechError(f"--plot: cannot write {printable(str(target))}: {printable(str(exc))}") from None
    return target


def save_sweep_plot(results: Sequence[SweepResult], path: str | Path) -> Path:
    """Draw :func:`sweep_figure` to ``path`` (:func:`save_figure`) and return the path written."""
    return save_figure(sweep_figure(results), path)
