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


def quant_section(spec: ModelSpec, out_dir: Path, names: Sequence[str], n_cases: int = 18) -> Section:
    """`selfhost quant` on the first cases of its built-in suite (which interleaves its six categories)."""
    from selfhost.evals.builtin_suite import builtin_suite
    from selfhost.models.resolve import local_gguf_path
    from selfhost.quant.kld import default_text
    from selfhost.quant.run import QuantConfig, run_quant
    from selfhost.quant.variants import make_variants

    cases = builtin_suite()[:n_cases]
    variants = make_variants(local_gguf_path(spec), out_dir / "variants", list(names), spec.file_type)
    r = run_quant(QuantConfig(variants, cases, default_text(), out_dir / "items.jsonl"))
    rows = []
    for v in r["variants"]:
        rows.append(
            (
                v["name"],
                f"{fmt_bytes(v['file_bytes'])}; {v['decision']}; pass {_pass_cell(v)} (Δ {_difference_cell(v)}); "
                f"KLD {v['kld_mean']:.3f}, top-1 {v['top1_agreement']:.0%}; {v['tokens_per_s'] or 0:.0f} tok/s",
            )
        )
    rows.append(("recommended", f"{r['recommended']}: {r['recommendation']['why']}"))
    labels = [v["name"] for v in r["variants"]]
    plots = [
        bar_chart(labels, [100 * (v["pass_rate"] or 0) for v in r["variants"]], title="Suite pass rate", unit="%"),
        bar_chart(labels, [v["kld_mean"] for v in r["variants"]], title="Mean KL divergence vs reference", unit=""),
    ]
    notes = [
        f"{len(cases)} of the built-in suite's {len(builtin_suite())} cases, too few to decide a variant; "
        "`selfhost quant` runs until each variant is decided, on that suite or your own.",
        f"The reference is {r['reference']['note']}." if r["reference"]["note"] else "",
    ]
    return Section("quant", "Which quantization", r, rows, plots, [n for n in notes if n])


def _or_dash(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _pass_cell(r: dict[str, Any]) -> str:
    return "-" if r["pass_rate"] is None else f"{r['pass_rate']:.0%} of {r['cases_run']}"


def _difference_cell(r: dict[str, Any]) -> str:
    d = r["difference_vs_reference"]
    return "-" if not r["cases_run"] else f"{d['difference']:+.0%} [{d['ci_low']:+.0%}, {d['ci_high']:+.0%}]"


def quant_table_section(result: dict[str, Any], model: str, n_cases: int) -> Section:
    """`selfhost quant` in the terminal: one row per variant, the recommendation first."""
    head = ["variant", "size", "memory", "pass rate", "Δ vs ref (95% CS)", "KLD mean", "KLD p99", "top-1", "tok/s"]
    body = []
    for r in result["variants"]:
        body.append(
            [
                r["name"],
                f"{r['file_bytes'] / 2**20:.1f} MiB" if r["file_bytes"] is not None else "-",
                f"{r['memory_bytes'] / 2**20:.0f} MiB" if r["memory_bytes"] else "-",
                _pass_cell(r),
                _difference_cell(r),
                _or_dash(r["kld_mean"], ".4f") + (f" ± {r['kld_mean_se']:.4f}" if r.get("kld_mean_se") else ""),
                _or_dash(r["kld_p99"], ".3f"),
                _or_dash(r["top1_agreement"], ".0%"),
                f"{r['tokens_per_s']:.0f}" if r["tokens_per_s"] else "-",
                r["decision"],
            ]
        )
    answer = f"recommended: [bold]{result['recommended']}[/] — {result['recommendation']['why']}"
    notes = [f"note: the reference is {result['reference']['note']}"] if result["reference"]["note"] else []
    for r in result["variants"][1:]:
        cats = r["pass_rate_by_category"]
        if cats:
            shown = "; ".join(
                f"{k} {c['pass_rate']:.0%} vs {c['reference_pass_rate']:.0%} over {c['cases']} "
                f"[{c['interval'][0]:+.0%}, {c['interval'][1]:+.0%}] {c['decision']}"
                for k, c in cats.items()
            )
            notes.append(f"{r['name']} by category (variant vs reference, 95% sequence, decision): {shown}")
    by_category = result.get("by_category") or {}
    if by_category:
        notes.insert(
            0,
            "by category (passed: shown at most "
            f"{result['gates']['max_category_drop']:.0%} below the reference there): "
            + "; ".join(
                f"{cat}: " + ", ".join(f"{kind} {' '.join(names)}" for kind, names in verdicts.items() if names)
                for cat, verdicts in by_category.items()
            ),
        )
        if r.get("decision_reason"):
            notes.append(f"{r['name']}: {r['decision_reason']}")
    notes.append(
        "decision: non-inferior / worse once the 95% confidence sequence of the paired difference lies above / "
        f"below −{result['gates']['max_pass_rate_drop']:.0%} overall (Waudby-Smith & Ramdas 2024: valid at every "
        "look, so a variant can stop as soon as it is decided), and in each category above / below "
        f"−{result['gates']['max_category_drop']:.0%}; worse in one category is worse; each category's sequence is "
        "at 95% on its own, not adjusted for the number of categories; undecided: the suite or budget ran out first"
    )
    notes.append(
        "tok/s: decode speed during the run, where the reference and the variant under test run side by side, "
        "each on its share of the cores"
    )
    kld = result.get("kld_settings") or {}
    how = f"chunks of {kld['ctx']} tokens as llama-perplexity -c {kld['ctx']}" if kld.get("ctx") else "one pass"
    notes.append(
        f"KLD over {result['kld_positions']} positions ({how}); ± is llama-perplexity's standard error, which "
        "treats positions as independent"
    )
    title = f"selfhost quant: {model} ({n_cases} of {result.get('suite_cases', n_cases)} cases)"
    return Section("quant", title, result, notes=notes, table=([*head, "decision"], body), answer=answer)
