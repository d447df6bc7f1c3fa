"""A Section in the terminal: its answer line, its table, its rows and its notes (the HTML report shows the same
Section; `--json` prints the result the Section was built from)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from selfhost.report.section import Section

__all__ = ["print_section"]


def print_section(section: Section, console: Console) -> None:
    if section.answer:
        console.print(section.answer, highlight=False, soft_wrap=True)  # one line: URLs and paths stay whole
    if section.table:
        head, body = section.table
        grid = Table(title=section.title, title_justify="left", title_style="bold")
        for h in head:
            grid.add_column(h, justify="right")
        for row in body:
            grid.add_row(*row)
        console.print(grid)
    if section.rows:
        rows = Table(
            title=None if section.table else section.title,
            show_header=False,
            title_justify="left",
            title_style="bold",
        )
        rows.add_column(style="dim")
        rows.add_column(overflow="fold")
        for a, b in section.rows:
            rows.add_row(a, b)
        console.print(rows)
    for n in section.notes:
        console.print(Text(n, style="dim"))
