"""Results of every command as Sections, presented as terminal text, JSON and self-contained HTML."""

from selfhost.report.section import Report, Section

__all__ = ["Report", "Section"]
