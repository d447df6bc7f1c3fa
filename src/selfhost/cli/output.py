"""Where command output goes: one JSON object on stdout with --json, rich text otherwise; logs on stderr."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from selfhost.jsonout import dumps

if TYPE_CHECKING:
    from selfhost.report.section import Section

__all__ = ["stdout", "stderr", "print_json", "printed_json", "print_rows", "emit"]

stdout = Console()
stderr = Console(stderr=True)


_printed: list[bool] = []


def print_json(obj: dict[str, Any]) -> None:
    """The command's one JSON object (a second call is a bug: --json promises exactly one)."""
    sys.stdout.write(dumps(obj, indent=2) + "\n")
    sys.stdout.flush()
    _printed.append(True)


def printed_json() -> bool:
    return bool(_printed)


def print_rows(title: str, rows: list[tuple[str, str]]) -> None:
    table = Table(title=title, show_header=False, title_justify="left", title_style="bold")
    table.add_column(style="dim")
    table.add_column(overflow="fold")
    for a, b in rows:
        table.add_row(a, b)
    stdout.print(table)


def emit(result: dict[str, Any], sections: Section | list[Section], as_json: bool) -> None:
    """The one way a command shows its answer: the result as one JSON object, or its Sections as text."""
    if as_json:
        print_json(result)
        return
    from selfhost.report.terminal import print_section

    for s in sections if isinstance(sections, list) else [sections]:
        print_section(s, stdout)
