"""Cost in the check report: $/1M tokens at the measured throughput and the break-even against APIs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from selfhost.report.plots import line_chart
from selfhost.report.section import Section

__all__ = ["cost_summary_section", "cost_section"]


# This machine's power draw is not measured (no NVML for a CPU): an explicit assumption, shown in the report.
ASSUMED_CPU_WATTS = 35.0


def cost_section(bench_runs: Sequence[dict[str, Any]], bench_source: str) -> Section:
    """$/1M tokens for the embedded model on this CPU, from the bench section's measured throughput."""
    from selfhost.cost.model import HOURS_PER_MONTH, Hardware
    from selfhost.cost.run import cost_report, find_api_price, prices

    vm = prices()["cpu_vm"]
    apis = [find_api_price("gpt-4o-mini")]
    rented = Hardware(
        vm["name"],
        rent_per_gpu_hour=vm["usd_per_hour"],
        sources=(f"rent: {vm['source_url']} ({vm['as_of']})",),
        assumptions=(f"this machine priced as a {vm['name']}; it may not be one",),
    )
    owned = Hardware(
        "this machine, already owned",
        purchase_usd=0.0,
        watts=ASSUMED_CPU_WATTS,
        kwh_price=0.15,
        assumptions=(
            f"power {ASSUMED_CPU_WATTS:g} W at load for 2 cores (assumed, not measured)",
            "electricity $0.15/kWh (assumed)",
            "hardware already paid for",
        ),
    )
    bench = {"runs": list(bench_runs)}
    rent = cost_report(bench, rented, apis, 1.0, bench_source)
    power = cost_report(bench, owned, apis, 1.0, bench_source)
    best = rent["best_level"]
    rows = [
        (
            "measured throughput",
            f"{best['output_tokens_per_s']:.1f} output tokens/s at concurrency {best['concurrency']} ({bench_source})",
        ),
        (
            "rented equivalent",
            f"${rented.rent_per_gpu_hour}/h → ${best['usd_per_million_output_tokens']:.2f} per 1M output tokens",
        ),
        ("electricity only", f"${power['best_level']['usd_per_million_output_tokens']:.3f} per 1M output tokens"),
    ]
    be = best["break_even"]["gpt-4o-mini"]
    rows.append(
        (
            "vs gpt-4o-mini",
            f"break-even at {be['break_even_output_tokens_per_month'] / 1e6:,.0f}M output "
            f"tokens/month; this server makes at most "
            f"{be['capacity_output_tokens_per_month'] / 1e6:,.1f}M "
            f"({'reachable' if be['reachable_with_one_server'] else 'not reachable'})",
        )
    )
    api_cost = be["api_usd_per_million_output_tokens_incl_input"]
    cap = be["capacity_output_tokens_per_month"] / 1e6
    xs = [cap * i / 10 for i in range(11)]
    plot = line_chart(
        [
            ("gpt-4o-mini API", xs, [x * api_cost for x in xs]),
            ("rented VM, always on", xs, [rent["hourly_usd"]["total"] * HOURS_PER_MONTH] * len(xs)),
        ],
        title="Monthly cost against volume (up to one server's capacity)",
        x_label="million output tokens per month",
        y_label="USD per month",
    )
    notes = [
        *rent["sources"],
        *rent["assumptions"],
        *power["assumptions"],
        rent["definitions"],
        f"API price: {apis[0].source}",
    ]
    return Section(
        "cost", "Cost (from measured throughput)", {"rented": rent, "electricity_only": power}, rows, [plot], notes
    )


def cost_summary_section(r: dict[str, Any], hardware: str, utilization: float) -> Section:
    """`selfhost cost` in the terminal: $/1M tokens per measured level, break-even per API, sources and assumptions."""
    rows = [
        ("hardware", hardware),
        ("cost per hour", f"${r['hourly_usd']['total']:.4f}"),
        ("utilization", f"{utilization:.0%}"),
    ]
    for lv in r["levels"]:
        tag = f"concurrency {lv['concurrency']}" if lv["concurrency"] else f"rate {lv['rate']}"
        per_m = f"${lv['usd_per_million_output_tokens']:.2f} per 1M output tokens"
        rows.append((tag, f"{lv['output_tokens_per_s']:.1f} output tok/s → {per_m}"))
    for name, be in r["best_level"]["break_even"].items():
        reach = "reachable" if be["reachable_with_one_server"] else "NOT reachable"
        rows.append(
            (
                f"vs {name}",
                f"break-even {be['break_even_output_tokens_per_month'] / 1e6:,.1f}M output tokens/month "
                f"(utilization needed {be['utilization_needed']:.0%}; {reach} with one server)",
            )
        )
    notes = [f"source: {s}" for s in r["sources"]] + [f"assumed: {a}" for a in r["assumptions"]]
    notes.append(f"throughput from: {r['throughput_from']}")
    return Section("cost", "selfhost cost", r, rows, notes=notes)
