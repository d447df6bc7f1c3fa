"""`plan verify`'s answer as a Section."""

from __future__ import annotations

from typing import Any

from selfhost.report.section import Section

__all__ = ["verify_section"]


def verify_section(r: dict[str, Any]) -> Section:
    rows = [(x["what"], x["reason"]) for x in r["drifted"]]
    g = r["card_goodput_requests_per_s"]
    rows.append(("card", f"{r['card']}: {g['median']:.2f} requests/s (range {g['low']:.2f}–{g['high']:.2f})"))
    m = r.get("measured_goodput_requests_per_s")
    if m:
        rows.append(("now", f"{m['median']:.2f} requests/s ({len(m['runs'])} run(s))"))
    return Section("verify", "plan verify", r, rows=rows, answer=r["answer"])
