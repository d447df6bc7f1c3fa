"""The check report's first section: the answers a reader came for, taken from the sections below it — where the
model fits and at what context, the fastest measured setting, the quantization verdict, and any problem found in
the chat template or the context window. Every line names the section its evidence is in."""

from __future__ import annotations

from typing import Any

from selfhost.report.section import Report, Section

__all__ = ["verdict_section"]


def _fit(s: dict[str, Any]) -> tuple[str, str] | None:
    plan = s.get("plan") or {}
    if not plan:
        return None
    rec = plan.get("recommended") or {}
    total = plan.get("total_bytes")
    if plan.get("fits"):
        where = ", ".join(str(d.get("name")) for d in plan.get("per_device") or []) or "this machine"
        line = f"fits on {where}: {plan.get('quant')} at {plan.get('n_ctx'):,} tokens"
        if total:
            line += f" needs {total / 2**30:.2f} GiB"
        if rec:
            line += f"; fit recommends {rec.get('quant')} at {rec.get('n_ctx'):,} tokens"
        return "fits", line + " (fit)"
    return "fits", f"does not fit this machine at {plan.get('n_ctx'):,} tokens (fit)"


def _fastest(s: dict[str, Any]) -> tuple[str, str] | None:
    runs = [r for r in s.get("runs") or [] if r.get("requests", {}).get("completed")]
    if not runs:
        return None
    best = max(runs, key=lambda r: r.get("output_tokens_per_s") or 0)
    c = (best.get("load") or {}).get("concurrency")
    ttft = (best.get("ttft_s") or {}).get("p50")
    line = f"{best['output_tokens_per_s']:.1f} output tokens/s at concurrency {c}"
    if ttft is not None:
        line += f", TTFT p50 {ttft:.2f} s"
    return "fastest measured", line + f" over {len(runs)} bench runs (bench)"


def _quant(s: dict[str, Any] | None) -> tuple[str, str]:
    if not s:
        return "quantization", "not compared: rerun with --quant to decide between quantizations"
    name = s.get("recommended")
    decided = s.get("decided")
    line = f"{name} recommended" + ("" if decided else " (some variants undecided)")
    return "quantization", line + " (quant)"


def _problems(template: dict[str, Any] | None, context: dict[str, Any] | None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if template:
        findings = (template.get("lint") or {}).get("findings") or []
        for f in findings:
            text = f.get("message") if isinstance(f, dict) else str(f)
            out.append(("template problem", f"{text} (template)"))
        verify = template.get("verify") or {}
        if verify and verify.get("agree") is False:
            out.append(("template problem", "the server does not apply the model's own template (template)"))
    if context:
        probe = context.get("probe") or {}
        if probe.get("silent_truncation"):
            out.append(
                (
                    "context problem",
                    f"the server cuts prompts silently past {probe.get('effective_context')} tokens (context)",
                )
            )
        budget = context.get("budget") or {}
        if budget and budget.get("fits") is False:
            out.append(("context problem", "the sample request does not fit the context window (context)"))
    return out


def verdict_section(report: Report) -> Section:
    sections = {s.name: s.data for s in report.sections}
    rows: list[tuple[str, str]] = []
    for row in (_fit(sections["fit"]) if "fit" in sections else None, _fastest(sections.get("bench") or {})):
        if row:
            rows.append(row)
    rows.append(_quant(sections.get("quant")))
    problems = _problems(sections.get("template"), sections.get("context"))
    rows += problems or [("problems", "none found in the template or the context window (template, context)")]
    answer = rows[0][1] if rows else "nothing was measured"
    if problems:
        answer += f"; {len(problems)} problem(s) found"
    return Section(
        "verdict",
        "Verdict",
        {"answer": answer, "lines": [{"what": k, "line": v} for k, v in rows], "problems": [p[1] for p in problems]},
        rows=rows,
        answer=answer,
    )
