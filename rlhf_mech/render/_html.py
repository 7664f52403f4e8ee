"""A report to share: one self-contained HTML page, and the tables it shares with the terminal.

A :class:`TableData` is a table as plain strings (title, columns, rows, the legend of its
marks); :func:`rich_table` prints it in the terminal and :func:`html_table` writes it into the
page, so the two cannot disagree. :func:`html_page` writes a page that needs nothing else: no
script, no style sheet, image or font from elsewhere (the figures are inline SVG, drawn here
by hand, :func:`svg_scatter`), so it opens the same offline, from an e-mail or an archive.
Every user string goes through :func:`html.escape`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich import box
from rich.markup import escape
from rich.table import Table

from rlhf_mech.render._format import annotation


@dataclass(frozen=True)
class TableData:
    """A table as strings.

    Attributes
    ----------
    title : what it shows; columns : the headers; right : per column, whether it is numeric
        (right-aligned).
    rows : the cells; a row of one cell is a section header (a training rule).
    legend : one line per mark or abbreviation used (printed under the table).
    """

    title: str
    columns: tuple[str, ...]
    right: tuple[bool, ...]
    rows: tuple[tuple[str, ...], ...]
    legend: tuple[str, ...] = field(default=())


def rich_table(data: TableData) -> Table:
    """The table for the terminal: compact (one space between columns, no outer padding),
    cells never wrapped; section rows in bold."""
    table = Table(
        title=annotation(data.title),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        padding=0,
        show_edge=False,
    )
    for name, right in zip(data.columns, data.right, strict=True):
        table.add_column(name, justify="right" if right else "left", no_wrap=True)
    for row in data.rows:
        if len(row) == 1:
            table.add_row(f"[bold]{escape(row[0])}[/]", *[""] * (len(data.columns) - 1))
        else:
            table.add_row(*(escape(cell) for cell in row))
    return table


def html_table(data: TableData) -> str:
    """The table as HTML: a caption, a header row, the rows and the legend below."""
    head = "".join(
        f"<th{_align(r)}>{html.escape(c)}</th>" for c, r in zip(data.columns, data.right, strict=True)
    )
    body = []
    for row in data.rows:
        if len(row) == 1:
            body.append(
                f'<tr class="section"><th colspan="{len(data.columns)}">{html.escape(row[0])}</th></tr>'
            )
        else:
            cells = "".join(
                f"<td{_align(r)}>{html.escape(c)}</td>" for c, r in zip(row, data.right, strict=True)
            )
            body.append(f"<tr>{cells}</tr>")
    legend = "".join(f"<li>{html.escape(line)}</li>" for line in data.legend)
    return (
        f"<table><caption>{html.escape(data.title)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>" + (f'<ul class="legend">{legend}</ul>' if legend else "")
    )


def _align(right: bool) -> str:
    return ' class="num"' if right else ""


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem;
       color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.3rem; }
th, td { padding: 0.2rem 0.6rem; border-bottom: 1px solid #ddd; text-align: left; }
td.num, th.num { text-align: right; }
tr.section th { background: #f3f3f3; }
ul.legend { font-size: 0.85rem; color: #444; margin-top: 0.2rem; }
p.verdict { margin: 0.2rem 0; }
code, pre { background: #f6f6f6; padding: 0.1rem 0.3rem; }
pre { padding: 0.6rem; overflow-x: auto; }
svg text { font-family: system-ui, sans-serif; }
"""


def html_page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    """One self-contained page: ``sections`` are ``(heading, HTML body)``; the bodies are
    trusted HTML built by this layer (escaped where they quote user strings)."""
    parts = [f"<h2>{html.escape(heading)}</h2>\n{body}" for heading, body in sections]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )


def paragraphs(lines: Sequence[str], css: str = "verdict") -> str:
    """Lines of text as paragraphs (escaped)."""
    return "\n".join(f'<p class="{css}">{html.escape(line)}</p>' for line in lines)


def code_block(lines: Sequence[str]) -> str:
    """Commands to run, as a preformatted block (escaped)."""
    return "<pre><code>" + html.escape("\n".join(lines)) + "</code></pre>"


def svg_scatter(
    points: Sequence[tuple[float, float, str, bool]],
    x_label: str,
    y_label: str,
    width: int = 640,
    height: int = 360,
) -> str:
    """A scatter plot as inline SVG: ``(x, y, label, highlighted)`` per point, highlighted
    points drawn as filled stars of the Pareto front, the others as circles; linear axes
    with the data's range and 5 ticks each. Deterministic text (fixed number formats)."""
    left, right, top, bottom = 64, 16, 16, 48
    xs = [p[0] for p in points] or [0.0]
    ys = [p[1] for p in points] or [0.0]
    x0, x1 = _span(min(xs), max(xs))
    y0, y1 = _span(min(ys), max(ys))

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y: float) -> float:
        return height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(y_label)} against '
        f'{html.escape(x_label)}">',
        f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
        'fill="none" stroke="#999"/>',
    ]
    for k in range(5):
        tx = x0 + (x1 - x0) * k / 4
        ty = y0 + (y1 - y0) * k / 4
        out.append(
            f'<text x="{sx(tx):.1f}" y="{height - bottom + 16}" font-size="11" '
            f'text-anchor="middle">{tx:.3g}</text>'
        )
        out.append(
            f'<text x="{left - 6}" y="{sy(ty) + 4:.1f}" font-size="11" text-anchor="end">{ty:.3g}</text>'
        )
    out.append(
        f'<text x="{(left + width - right) / 2:.1f}" y="{height - 10}" font-size="12" '
        f'text-anchor="middle">{html.escape(x_label)}</text>'
    )
    out.append(
        f'<text x="14" y="{(top + height - bottom) / 2:.1f}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {(top + height - bottom) / 2:.1f})">{html.escape(y_label)}</text>'
    )
    for x, y, label, highlighted in points:
        cx, cy = sx(x), sy(y)
        if highlighted:
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="#d62728"/>')
        else:
            out.append(
                f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="none" stroke="#1f77b4" stroke-width="2"/>'
            )
        out.append(f'<text x="{cx + 8:.1f}" y="{cy - 6:.1f}" font-size="10">{html.escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _span(low: float, high: float) -> tuple[float, float]:
    """An axis range around ``[low, high]`` with 8% margins (a unit range around one value)."""
    if high - low <= 1e-12 * max(1.0, abs(high)):
        return low - 0.5, high + 0.5
    margin = 0.08 * (high - low)
    return low - margin, high + margin
