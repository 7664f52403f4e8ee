"""Sweep figures in the look of the paper's Figure 2 (optional: needs matplotlib).

Install with ``pip install 'rlhf-mech[plot]'``. The figure is built on a bare
:class:`matplotlib.figure.Figure` (no pyplot, no global backend state), one panel per sweep:
the group's valuation ``w_i v_i``, payment and utility against the parameter, truth marked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlhf_mech.analysis import SweepResult
from rlhf_mech.errors import RlhfMechError

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


def sweep_figure(results: Sequence[SweepResult]) -> Any:
    """A :class:`matplotlib.figure.Figure` with one panel per sweep.

    Raises
    ------
    RlhfMechError
        when matplotlib is not installed.
    """
    figure_class = _figure_class()
    cols = min(3, len(results))
    rows = math.ceil(len(results) / cols)
    fig = figure_class(figsize=(4.2 * cols, 3.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, result in zip(axes.flat, results, strict=False):
        x = result.parameters
        t = result.truthful_index
        lines = LINES if result.payment_rule.charges else LINES[:1]
        for attribute, label, colour, marker in lines:
            y = getattr(result, attribute)
            ax.plot(x, y, color=colour, marker=marker, markersize=4 if x.size <= 30 else 0, label=label)
        ax.axvline(x[t], color="grey", linestyle="--", linewidth=1, label="truth")
        ax.plot([x[t]], [result.utilities[t]], marker="*", markersize=12, color="tab:green", linestyle="")
        ax.set_xlabel(result.parameter_name)
        size = f"{result.game.truth.sizes[result.group]:g}"
        ax.set_title(f"{result.group_name} (w = {size}), payment {result.payment_rule.name}", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(results) :]:
        ax.set_visible(False)
    fig.suptitle(f"{results[0].game.name}: valuation, payment and utility against the report")
    return fig


def save_sweep_plot(results: Sequence[SweepResult], path: str | Path) -> Path:
    """Draw :func:`sweep_figure` to ``path`` (PNG, PDF or SVG by its suffix)."""
    fig = sweep_figure(results)
    try:
        fig.savefig(path, dpi=120)
    except (OSError, ValueError) as exc:
        raise RlhfMechError(f"--plot: cannot write {path}: {exc}") from None
    return Path(path)
