"""Tables that fit the width they are printed in, without wrapping or cutting a cell.

A table is printed whole where it fits (the width of the terminal, or ``$COLUMNS``; a pipe
without ``$COLUMNS`` has no limit: :mod:`rlhf_mech.cli._output`). Where it does not, its
compact layout is printed instead: the renderer's own (the sweep's one row per point with
short headers, the audit's one table per file), else one record per row (``column: value``
lines, as ``psql``'s expanded display). In the compact layout the title and the caption are
paragraphs of their own, wrapped at the width, not lines of the table. The choice is made by
Rich at print time (:meth:`Fitted.__rich_console__`): the renderers compute nothing new.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

from rich.console import Console, ConsoleOptions, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

#: The width a table is measured in to find the width it needs (wider than any table).
_UNBOUNDED = 1 << 16


def _needs(console: Console, options: ConsoleOptions, renderable: RenderableType) -> int:
    """The width ``renderable`` needs to show every cell whole."""
    return Measurement.get(console, options.update_width(_UNBOUNDED), renderable).maximum


def _annotation_width(table: Table) -> int:
    """The longest line of the title and the caption of ``table`` (printed whole, never
    wrapped into the table's width: :func:`~rlhf_mech.render._format.annotation`)."""
    lines = [
        line for part in (table.title, table.caption) if part is not None for line in str(part).split("\n")
    ]
    return max((len(line) for line in lines), default=0)


def _bare(table: Table) -> Table:
    """``table`` without its title and caption."""
    bare = copy.copy(table)
    bare.title = None
    bare.caption = None
    return bare


def _cell_text(cell: RenderableType) -> Text:
    """A cell as text: a string is Rich markup, as :class:`~rich.table.Table` reads it."""
    if isinstance(cell, str):
        return Text.from_markup(cell)
    return cell if isinstance(cell, Text) else Text(str(cell))


def records(table: Table) -> Table:
    """``table`` as one record per row: a ``column`` and a ``value`` column, one line per
    non-empty cell, the rows apart; as narrow as its longest header and cell (a cell wider
    than the width on its own is printed whole all the same)."""
    out = Table.grid(padding=(0, 2))
    out.add_column(no_wrap=True, style="bold")
    out.add_column(no_wrap=True, overflow="ignore")
    headers = [str(column.header).replace("\n", " ") for column in table.columns]
    cells = [list(column.cells) for column in table.columns]
    for r in range(table.row_count):
        if r:
            out.add_row("", "")
        for header, column in zip(headers, cells, strict=True):
            text = _cell_text(column[r])
            if text.plain:
                out.add_row(Text(header), text)
    return out


class Fitted:
    """``table`` where it fits, else its compact layout, under the title as a wrapped
    paragraph: ``table`` without its title where that fits, else ``compact`` (the renderer's
    own, with its own legend; a table is shown as :func:`records` where even it is too
    wide), else the :func:`records` of ``table``; ``table``'s caption follows as a wrapped
    paragraph, except under ``compact``."""

    def __init__(self, table: Table, compact: RenderableType | None = None) -> None:
        self.table = table
        self.compact = compact

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        wide = Measurement.get(console, options, self.table)
        return Measurement(wide.minimum, max(wide.maximum, _annotation_width(self.table)))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[RenderableType]:
        width = options.max_width
        if max(_needs(console, options, self.table), _annotation_width(self.table)) <= width:
            yield self.table
            return
        if self.table.title is not None:
            yield Text(str(self.table.title), style="italic")
        bare = _bare(self.table)
        if _needs(console, options, bare) <= width or self.compact is None:
            yield bare if _needs(console, options, bare) <= width else records(self.table)
            if self.table.caption is not None:
                yield Text(str(self.table.caption), style="dim")
            return
        fits = not isinstance(self.compact, Table) or _needs(console, options, self.compact) <= width
        yield self.compact if fits else records(self.compact)
