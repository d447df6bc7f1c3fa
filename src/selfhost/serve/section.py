"""What `selfhost serve` shows once the engine answers: where, with which command, and its memory against fit's."""

from __future__ import annotations

from typing import Any

from selfhost.report.section import Section
from selfhost.units import fmt_bytes

__all__ = ["serve_section"]


def serve_section(r: dict[str, Any]) -> Section:
    if r["url"] is None:
        return Section("serve", "serve (not started: --print)", r, [("command", r["command"])])
    answer = f"[bold]{r['engine']}[/] serving {r['model']} at {r['url']}/v1 (OpenAI-compatible); Ctrl-C stops it"
    rows = [("command", r["command"]), ("engine log", r["log"])]
    p = r["predicted"]
    rows.append(
        (
            "fit predicted",
            f"weights {fmt_bytes(p['weights_bytes'])}, KV {fmt_bytes(p['kv_cache_bytes'])}, compute "
            f"{fmt_bytes(p['compute_bytes'])}, total {fmt_bytes(p['total_bytes'])}",
        )
    )
    logged = r.get("from_log") or {}
    for c in logged.get("checks", []):
        name = c["component"]
        if name.endswith("(tokens)"):  # vLLM logs its KV cache as a capacity in tokens
            name = name.removesuffix(" (tokens)")
            actual, predicted = f"{c['actual_bytes']:,} tokens", f"{c['predicted_bytes']:,}"
        else:
            actual, predicted = fmt_bytes(c["actual_bytes"]), fmt_bytes(c["predicted_bytes"])
        rows.append((f"{name}: engine logged", f"{actual} (predicted {predicted}, {c['error'] * 100:+.1f} %)"))
    if "error" in logged:
        rows.append(("engine log", logged["error"]))
    return Section("serve", "serve", r, rows, answer=answer)
