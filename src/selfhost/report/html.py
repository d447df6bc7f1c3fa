"""A self-contained HTML page: inline CSS and SVG only, nothing fetched when it is opened."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from selfhost.files import write_text_atomic
from selfhost.report.section import Report

__all__ = ["render_html", "write_html"]

_CSS = """
body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.25em .8em;border-bottom:1px solid #eee;text-align:left}
td:first-child{color:#555}.note{color:#666;font-size:.9em}.plot{margin:1em 0}.answer{font-size:1.15em;font-weight:600}
details pre{background:#f6f6f6;padding:.8em;overflow:auto;font-size:.85em;white-space:pre-wrap;overflow-wrap:anywhere}
svg{max-width:100%;height:auto}td,th{overflow-wrap:break-word}.kv td{overflow-wrap:anywhere}
.grid{overflow-x:auto;max-width:100%}
@media (max-width:600px){body{padding:0 .5em}td,th{padding:.2em .35em}}
"""


def _plain(markup: str) -> str:
    from rich.text import Text

    return Text.from_markup(markup).plain


def render_html(report: Report) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><title>{escape(report.title)}</title>",
        f"<style>{_CSS}</style></head><body><h1>{escape(report.title)}</h1>",
        "<table class='kv'>",
    ]
    for k, v in report.meta.items():
        parts.append(f"<tr><td>{escape(str(k))}</td><td>{escape(str(v))}</td></tr>")
    parts.append("</table>")
    for s in report.sections:
        parts.append(f"<section id='{escape(s.name)}'><h2>{escape(s.title)}</h2>")
        if s.answer:
            parts.append(f"<p class='answer'>{escape(_plain(s.answer))}</p>")
        if s.table:
            head, body = s.table
            parts.append("<div class='grid'><table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>")
            parts.extend("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in body)
            parts.append("</table></div>")
        if s.rows:
            parts.append("<table class='kv'>")
            parts.extend(f"<tr><td>{escape(a)}</td><td>{escape(b)}</td></tr>" for a, b in s.rows)
            parts.append("</table>")
        parts.extend(f"<div class='plot'>{svg}</div>" for svg in s.plots)
        parts.extend(f"<p class='note'>{escape(n)}</p>" for n in s.notes)
        data = json.dumps(s.data, indent=1, default=str)
        parts.append(f"<details><summary>data</summary><pre>{escape(data)}</pre></details></section>")
    parts.append("</body></html>")
    return "".join(parts)


def write_html(report: Report, path: Path) -> None:
    write_text_atomic(path, render_html(report))
