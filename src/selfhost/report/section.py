"""A Section holds one capability's measured results; a Report is the list of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Section", "Report"]


@dataclass
class Section:
    name: str  # key in report.json, e.g. "model", "generation"
    title: str
    data: dict[str, Any]
    # (label, value) rows for the human summary table; values are already formatted.
    rows: list[tuple[str, str]] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)  # inline SVG documents
    notes: list[str] = field(default_factory=list)  # where a number came from, caveats
    # A grid where rows share columns (a bench sweep): header, then formatted cells.
    table: tuple[list[str], list[list[str]]] | None = None
    answer: str | None = None  # the one line a reader wants first (rich markup allowed in the terminal)


@dataclass
class Report:
    title: str
    meta: dict[str, Any]
    sections: list[Section] = field(default_factory=list)

    def add(self, section: Section) -> None:
        self.sections.append(section)

    def to_dict(self) -> dict[str, Any]:
        return {"meta": self.meta, "sections": {s.name: s.data for s in self.sections}}

    def write_json(self, path: Path) -> None:
        from selfhost.files import write_text_atomic
        from selfhost.jsonout import dumps

        write_text_atomic(path, dumps(self.to_dict(), indent=2) + "\n")
