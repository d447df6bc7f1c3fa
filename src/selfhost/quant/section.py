"""Quantization in the check report: variants made here, pass rates and KL divergence."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from selfhost.models.spec import ModelSpec
from selfhost.report.plots import bar_chart
from selfhost.report.section import Section
from selfhost.units import fmt_bytes

__all__ = ["quant_section", "quant_table_section"]


def quant_section(spec: ModelSpec, out_dir: Path, names: Sequence[str], every: int = 4) -> Section:
    """`selfhost quant` on a slice of its default suite (every `every`-th case, across all categories)."""
    from selfhost.evals.suite import default_suite
    from selfhost.models.resolve import local_gguf_path
    from selfhost.quant.kld import default_text
    from selfhost.quant.run import QuantConfig, run_quant
    from selfhost.quant.variants import make_variants

    cases = default_suite()[::every]
    variants = make_variants(local_gguf_path(spec), out_dir / "variants", list(names), spec.file_type)
    r = run_quant(QuantConfig(variants, cases, default_text(), out_dir / "items.jsonl"))
    rows = []
    for v in r["variants"]:
        d = v["difference_vs_reference"]
        rows.append(
            (
                v["name"],
                f"{fmt_bytes(v['file_bytes'])}; pass {v['pass_rate']:.0%} (Δ {d['difference']:+.0%}, "
                f"CI {d['ci_low']:+.0%}…{d['ci_high']:+.0%}); KLD {v['kld_mean']:.3f}, top-1 "
                f"{v['top1_agreement']:.0%}; {v['tokens_per_s'] or 0:.0f} tok/s",
            )
        )
    rows.append(("recommended", f"{r['recommended']}: {r['recommendation']['why']}"))
    labels = [v["name"] for v in r["variants"]]
    plots = [
        bar_chart(labels, [100 * v["pass_rate"] for v in r["variants"]], title="Suite pass rate", unit="%"),
        bar_chart(labels, [v["kld_mean"] for v in r["variants"]], title="Mean KL divergence vs reference", unit=""),
    ]
    notes = [
        f"{len(cases)} of the default suite's {len(default_suite())} cases; `selfhost quant` runs them all, "
        "or your own suite.",
        f"The reference is {r['reference']['note']}." if r["reference"]["note"] else "",
    ]
    return Section("quant", "Which quantization", r, rows, plots, [n for n in notes if n])


def _or_dash(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def quant_table_section(result: dict[str, Any], model: str, n_cases: int) -> Section:
    """`selfhost quant` in the terminal: one row per variant, the recommendation first."""
    head = ["variant", "size", "memory", "pass rate", "Δ vs ref (95% CI)", "KLD mean", "KLD p99", "top-1", "tok/s"]
    body = []
    for r in result["variants"]:
        d = r["difference_vs_reference"]
        body.append(
            [
                r["name"],
                f"{r['file_bytes'] / 2**20:.1f} MiB" if r["file_bytes"] is not None else "-",
                f"{r['memory_bytes'] / 2**20:.0f} MiB" if r["memory_bytes"] else "-",
                f"{r['pass_rate']:.0%}",
                f"{d['difference']:+.0%} [{d['ci_low']:+.0%}, {d['ci_high']:+.0%}]",
                _or_dash(r["kld_mean"], ".4f") + (f" ± {r['kld_mean_se']:.4f}" if r.get("kld_mean_se") else ""),
                _or_dash(r["kld_p99"], ".3f"),
                _or_dash(r["top1_agreement"], ".0%"),
                f"{r['tokens_per_s']:.0f}" if r["tokens_per_s"] else "-",
                "pass" if r["passes_gates"] else "fail",
            ]
        )
    answer = f"recommended: [bold]{result['recommended']}[/] — {result['recommendation']['why']}"
    notes = [f"note: the reference is {result['reference']['note']}"] if result["reference"]["note"] else []
    kld = result.get("kld_settings") or {}
    how = f"chunks of {kld['ctx']} tokens as llama-perplexity -c {kld['ctx']}" if kld.get("ctx") else "one pass"
    notes.append(
        f"KLD over {result['kld_positions']} positions ({how}); ± is llama-perplexity's standard error, which "
        "treats positions as independent"
    )
    title = f"selfhost quant: {model} ({n_cases} cases)"
    return Section("quant", title, result, notes=notes, table=([*head, "gates"], body), answer=answer)
