"""Tables of the ``hil`` command that fit the terminal and never cut what a person copies.

Why not rich's own fitting: when a table is too wide, rich shrinks the widest columns first,
whatever they hold, and cuts with an ellipsis: a port became ``/tmp/mpy-h…``, a header broke
mid-word (``quaranti``/``ned``) and one long board id squeezed every other column to 3 characters.
Here each column says what it holds, and that decides how it may give way:

* ``id``: never wraps, never shrinks (a board id, a port a person copies).
* ``token``: one word-like value (a firmware id, a platform): whole while it fits, folded (never
  cut) below that, but never narrower than its header's longest word and ``shrink_to``.
* ``text``: free text (a reason, an error): wraps at word boundaries, at least ``shrink_to`` wide
  (or as wide as its longest text, if that is less), so a line of text stays a readable line.

When even those minimum widths do not fit, the table is printed as one block per row (the first
cell as its heading, then ``header  value`` lines): longer, but nothing is cut or squeezed.

The width is the console's: ``$COLUMNS`` when set, the terminal's, else 80 (rich's default when
the output is piped). 80 is kept for pipes on purpose: at that width nothing is cut either, and a
log or a pager shows it as a terminal would, where an unlimited width gives 200-column lines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

Kind = Literal["id", "token", "text"]
Cell = str | Text

#: Where a word too long for its column (a path, a firmware id, a URL) is best broken: after these.
_BREAK_AFTER = "-/_:.,@=+"


@dataclass(frozen=True)
class Column:
    """One column: its header, what it holds (see the module docstring), how it is aligned."""

    header: str
    kind: Kind = "token"
    #: The narrowest it gets when the table must give way (default: 12 for a token, 24 for text).
    shrink_to: int | None = None
    justify: Literal["left", "right", "center"] = "left"
    style: str | None = None


def _text(cell: Cell) -> Text:
    """A cell as rich text: a plain ``str`` is shown as it is (never parsed as markup)."""
    return cell if isinstance(cell, Text) else Text(cell)


def _natural(cell: Text) -> int:
    return max((Text(line).cell_len for line in cell.plain.splitlines()), default=0)


def _longest_word(text: str) -> int:
    return max((Text(word).cell_len for word in text.split()), default=0)


def minimum_width(column: Column, cells: Sequence[Text]) -> int:
    """The narrowest this column may be made (content width, without padding)."""
    natural = max((_natural(cell) for cell in cells), default=0)
    header = _longest_word(column.header)
    if column.kind == "id":
        return max(natural, header)
    shrink_to = column.shrink_to or (12 if column.kind == "token" else 24)
    return max(header, min(natural, shrink_to))


def natural_width(column: Column, cells: Sequence[Text]) -> int:
    """The width the column takes when nothing needs to give way."""
    return max([_natural(cell) for cell in cells] + [Text(column.header).cell_len])


def chrome(columns: int) -> int:
    """Characters a boxed table adds around its columns: a border and two padding spaces per
    column, and the closing border."""
    return 3 * columns + 1


def fit(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], width: int) -> list[int] | None:
    """Content widths of ``columns`` for a table ``width`` characters wide, or None when even
    their minimum widths do not fit (print the rows as blocks then).

    Room beyond the minimums goes first to whole words (no column folds a word while another
    has room to spare), then to each column in proportion to what it still lacks."""
    cells = [[_text(row[i]) for row in rows] for i in range(len(columns))]
    natural = [natural_width(c, cs) for c, cs in zip(columns, cells, strict=True)]
    least = [minimum_width(c, cs) for c, cs in zip(columns, cells, strict=True)]
    words = [
        max(low, min(top, max((_longest_word(cell.plain) for cell in cs), default=0)))
        for low, top, cs in zip(least, natural, cells, strict=True)
    ]
    room = width - chrome(len(columns))
    if sum(natural) <= room:
        return natural
    if sum(least) > room:
        return None
    widths = list(least)
    for goal in (words, natural):
        _grow(widths, goal, room - sum(widths))
    return widths


def _grow(widths: list[int], goal: Sequence[int], spare: int) -> None:
    """Widen ``widths`` towards ``goal`` by ``spare`` characters, in proportion to each lack."""
    wants = [max(0, g - w) for g, w in zip(goal, widths, strict=True)]
    total = sum(wants)
    if total == 0 or spare <= 0:
        return
    if total <= spare:
        widths[:] = [max(g, w) for g, w in zip(goal, widths, strict=True)]
        return
    gains = [want * spare // total for want in wants]
    for i in sorted(range(len(wants)), key=lambda i: gains[i] - wants[i]):
        if sum(gains) >= spare:
            break
        if gains[i] < wants[i]:
            gains[i] += 1
    for i, gain in enumerate(gains):
        widths[i] += gain


def table(
    title: str | None,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    widths: Sequence[int],
) -> Table:
    """A boxed rich table whose columns have exactly ``widths`` (from :func:`fit`)."""
    result = Table(title=Text(title) if title else None, title_justify="left")
    for column, width in zip(columns, widths, strict=True):
        result.add_column(
            column.header,
            width=width,
            justify=column.justify,
            style=column.style,
            no_wrap=column.kind == "id",
            overflow="fold",  # a word wider than its column is folded, never cut
        )
    for row in rows:
        result.add_row(
            *(
                _break_words(_text(cell), width) if column.kind != "id" else _text(cell)
                for column, width, cell in zip(columns, widths, row, strict=True)
            )
        )
    return result


def _break_words(cell: Text, width: int) -> Text:
    """Each word wider than ``width`` broken into lines after punctuation where it can
    (``esp32-generic-`` / ``v1.24.1``), else at the width: rich would fold it anywhere."""
    plain = cell.plain
    if width < 1 or all(Text(word).cell_len <= width for word in plain.split()):
        return cell
    offsets: list[int] = []
    for word in re.finditer(r"\S+", plain):
        start, end = word.span()
        while end - start > width:
            window = plain[start : start + width]
            cut = max(window.rfind(c) for c in _BREAK_AFTER) + 1
            if cut <= width // 3:  # no punctuation in a good place: at the width
                cut = width
            start += cut
            offsets.append(start)
    return Text("\n").join(cell.divide(offsets))


def blocks(title: str | None, columns: Sequence[Column], rows: Sequence[Sequence[Cell]]) -> Group:
    """The rows as blocks: the first cell as heading, then one ``header  value`` line per cell,
    a long value wrapping under itself (never cut, a word longer than the line folded)."""
    parts: list[RenderableType] = [Text(title, style="bold")] if title else []
    for row in rows:
        heading = _text(row[0]).copy()
        heading.stylize("bold")
        heading.overflow = "fold"
        grid = Table.grid(padding=(0, 2, 0, 0))
        grid.add_column(no_wrap=True, style="dim")
        grid.add_column(overflow="fold")
        for column, cell in zip(columns[1:], row[1:], strict=True):
            grid.add_row(Text(column.header), _text(cell))
        parts += [heading, Padding(grid, (0, 0, 0, 2), expand=False)]
    return Group(*parts)


def layout(
    title: str | None,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    width: int,
) -> Table | Group:
    """These rows for a ``width``-column terminal: a table, or a block per row if none fits."""
    widths = fit(columns, rows, width)
    if widths is None:
        return blocks(title, columns, rows)
    return table(title, columns, rows, widths)


def render(
    console: Console,
    title: str | None,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
) -> Table | Group:
    """What to print for these rows at the console's width (see :func:`layout`)."""
    return layout(title, columns, rows, console.width)
