"""What `selfhost fit` shows: the verdict first, then the memory plan, max context per quantization, the
recommendation, the launch commands, and predicted vs actual where it was checked."""

from __future__ import annotations

from typing import Any

from selfhost.report.section import Section
from selfhost.units import fmt_bytes

__all__ = ["fit_answer_sections"]


def _memory_rows(a: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("weights", f"{fmt_bytes(a['weights_bytes'])} ({'exact' if a['weights_exact'] else 'estimated'})"),
        ("KV cache", fmt_bytes(a["kv_cache_bytes"])),
        *([("recurrent state", fmt_bytes(a["recurrent_state_bytes"]))] if a.get("recurrent_state_bytes") else []),
        ("compute buffers", fmt_bytes(a["compute_bytes"])),
        ("overhead", fmt_bytes(a["overhead_bytes"])),
        ("total", fmt_bytes(a["total_bytes"])),
    ]
    if a.get("n_gpu_layers") is not None:
        rows.append(("GPU layers", str(a["n_gpu_layers"])))
    if a.get("kv_capacity_tokens") is not None:
        rows.append(("KV capacity", f"{a['kv_capacity_tokens']:,} tokens"))
    for d in a["per_device"]:
        comps = ", ".join(f"{k} {fmt_bytes(v)}" for k, v in d["components"].items() if v)
        used = f"{fmt_bytes(d['used_bytes'])} of {fmt_bytes(d['capacity_bytes'])}"
        rows.append((d["name"], f"{used} ({'ok' if d['fits'] else 'OVER'}; {comps})"))
    if a.get("decode_tokens_per_s_upper_bound"):
        per_token = fmt_bytes(a["bytes_read_per_token"])
        ceiling = f"{a['decode_tokens_per_s_upper_bound']:.0f} tokens/s (bandwidth ÷ {per_token} read per token)"
        rows.append(("decode ceiling", ceiling))
    if a.get("prefill_tokens_per_s_upper_bound"):
        rows.append(("prefill ceiling", f"{a['prefill_tokens_per_s_upper_bound']:.0f} tokens/s (peak FLOPs)"))
    return rows


def fit_answer_sections(a: dict[str, Any]) -> list[Section]:
    """The `fit --json` answer as Sections, verdict first."""
    verdict = "[green]fits[/]" if a["fits"] else "[red]does not fit[/]"
    answer = (
        f"[bold]{a['model']}[/] on {a['engine']}, {a['quant']}, {a['n_ctx']:,} tokens × {a['parallel']} "
        f"slot(s), KV {a['kv_type']}: {verdict}"
    )
    rec = a.get("recommended")
    recommended = (
        f"recommended: [bold]{rec['quant']}[/] — {rec['why']}"
        if rec
        else "[red]no quantization fits this context on these devices[/]"
    )
    contexts = [(q, f"{c:,}" if c else "does not fit") for q, c in a["max_context"].items()]
    sections = [
        Section("fit", "memory plan", a, _memory_rows(a), answer=answer),
        Section("max_context", "largest context that fits, per quantization", a, contexts),
        Section("launch", "launch", a, list(a["launch"].items()), notes=list(a["notes"]), answer=recommended),
    ]
    for key in ("verify", "from_log"):
        if key in a:
            rows = [
                (
                    c["component"],
                    f"{fmt_bytes(c['predicted_bytes'])} vs {fmt_bytes(c['actual_bytes'])} "
                    f"({c['error'] * 100:+.1f} %) — {c['source']}",
                )
                for c in a[key]["checks"]
            ]
            sections.append(Section(key, f"{key}: predicted vs actual", a[key], rows))
    return sections
