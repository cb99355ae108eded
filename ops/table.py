"""Aligned tables for the CLI, drawn by rich: a missing figure prints as `-`, never `None`.

On a terminal the header is bold and underlined by a rule, and long cells (ids, URLs) fold
onto the next line within the terminal's width rather than being cut. Into a pipe the table is
plain text with no colour codes and no rule: one line per row, columns two spaces apart, so
`grep`, `awk` and `cut` keep working on it.
See docs/ARCHITECTURE.md ("Operator tooling (`ops/`)").
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table

# Wide enough that no row of a piped table is ever wrapped: a pipe reader wants whole lines.
PIPE_WIDTH = 100_000
# On a terminal, a column whose cells are all this short is kept whole while the width allows
# ("2026-03-01 09:30:05", a timestamp as `ops.output.moment` prints it); the longer ones share
# the rest, at least FLEXIBLE_WIDTH characters a line each.
UNBROKEN_WIDTH = 19
FLEXIBLE_WIDTH = 8


def cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render(headers: Sequence[str], rows: Sequence[Sequence[object]], *,
           terminal: bool | None = None) -> str:
    """Left-aligned text columns, numbers right-aligned, two spaces apart.

    `terminal` says whether the text goes to a terminal; by default, whether stdout is one.
    """
    on_terminal = sys.stdout.isatty() if terminal is None else terminal
    width = shutil.get_terminal_size().columns if on_terminal else PIPE_WIDTH
    table = _table(headers, rows, on_terminal, width)
    # On a terminal, NO_COLOR (https://no-color.org) still turns the colour off.
    console = Console(width=width, force_terminal=on_terminal,
                      no_color=None if on_terminal else True,
                      color_system="standard" if on_terminal else None,
                      highlight=False, emoji=False, markup=False)
    with console.capture() as captured:
        console.print(table)
    return "\n".join(line.rstrip() for line in captured.get().rstrip("\n").splitlines())


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], on_terminal: bool,
           width: int) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD if on_terminal else None,
        # Two spaces between columns either way: the rule's blank divider plus one of padding.
        show_edge=False, pad_edge=False, padding=(0, 1, 0, 0) if on_terminal else (0, 1),
        header_style="bold" if on_terminal else "",
        # A pipe gets every column at its natural width; a terminal shares out its width.
        expand=False,
    )
    text = [[cell(value) for value in row] for row in rows]
    fixed = _fixed_widths(headers, text, width) if on_terminal else [None] * len(headers)
    for index, header in enumerate(headers):
        right = bool(rows) and _numeric(rows, index)
        table.add_column(header, justify="right" if right else "left", overflow="fold",
                         no_wrap=not on_terminal, width=fixed[index])
    for values in text:
        table.add_row(*values)
    return table


def _fixed_widths(headers: Sequence[str], text: Sequence[Sequence[str]],
                  width: int) -> list[int | None]:
    """Columns whose every cell is short (times, states, counts, names) keep their whole width,
    narrowest first, while the others can still have FLEXIBLE_WIDTH each: only long values
    (ids, URLs, reasons) wrap or fold. Rich would cut a table wider than the terminal."""
    longest = [max([len(header), *(len(values[index]) for values in text)])
               for index, header in enumerate(headers)]
    fixed: list[int | None] = [None] * len(headers)
    room = width - 2 * (len(headers) - 1) - FLEXIBLE_WIDTH * len(headers)
    short = [index for index in range(len(headers)) if longest[index] <= UNBROKEN_WIDTH]
    for index in sorted(short, key=lambda i: longest[i]):
        if longest[index] - FLEXIBLE_WIDTH > room:
            break
        fixed[index] = longest[index]
        room -= longest[index] - FLEXIBLE_WIDTH
    return fixed


def _numeric(rows: Sequence[Sequence[object]], index: int) -> bool:
    return all(
        (isinstance(row[index], int | float) and not isinstance(row[index], bool))
        or row[index] is None
        for row in rows
    )
