"""The deployment card: the decision first (what to run and the command), then the evidence — goodput at the SLO
with its interval, memory predicted vs logged, quality, cost — and the environment it was measured in, which
`plan verify` checks before measuring again. Written as card.json and a self-contained card.html."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from selfhost.plan.space import Workload

__all__ = ["build_card", "write_card", "card_report", "CARD_VERSION"]

CARD_VERSION = 1


def _interval(runs: list[dict[str, Any]]) -> dict[str, Any]:
    values = [float(m["goodput_requests_per_s"]) for m in runs]
    return {
        "median": statistics.median(values),
        "low": min(values),
        "high": max(values),
        "runs": values,
        "method": f"median and range of {len(values)} runs (each a fresh engine start and goodput search)",
    }


def _quality(variant: str, quant_result: Path | None) -> dict[str, Any]:
    if quant_result is None:
        return {
            "measured": False,
            "note": "quality not measured: run `selfhost quant --json > quant.json` and pass --quant-result quant.json",
        }
    from selfhost.files import read_json

    q = read_json(quant_result)
    row = next((r for r in q["variants"] if r["name"] == variant), None)
    if row is None:  # the model's own file, when the quant run's reference was another
        return {"measured": False, "note": f"{variant} is not a variant of {quant_result}"}
    return {
        "measured": True,
        "source": str(quant_result),
        "variant": variant,
        "decision": row.get("decision"),
        "pass_rate": row.get("pass_rate"),
        "pass_rate_ci": row.get("pass_rate_ci"),
        "pass_rate_by_category": row.get("pass_rate_by_category"),
        "difference_vs_reference": row.get("difference_vs_reference"),
        "kld_mean": row.get("kld_mean"),
        "kld_p99": row.get("kld_p99"),
    }


def _cost(price_per_hour: float | None, api_name: str, best: dict[str, Any], w: Workload) -> dict[str, Any] | None:
    if price_per_hour is None or not best.get("best"):
        return None
    from selfhost.cost.model import Hardware, break_even, cost_per_million, hourly_cost
    from selfhost.cost.run import find_api_price

    run = best["best"]
    # Output tokens per second that met the SLO: the run's output rate scaled by its share of good requests.
    share = run["goodput_requests_per_s"] / run["requests_per_s"] if run["requests_per_s"] else 0.0
    out_tps = run["output_tokens_per_s"] * share
    if out_tps <= 0:
        return None
    hw = Hardware("this machine", 1, rent_per_gpu_hour=price_per_hour)
    api = find_api_price(api_name)
    hourly = hourly_cost(hw)["total"]
    return {
        "price_per_hour_usd": price_per_hour,
        "output_tokens_per_s_at_slo": out_tps,
        "usd_per_million_output_tokens": cost_per_million(hourly, out_tps),
        "api": {
            "name": api.name,
            "input_per_million": api.input_per_million,
            "output_per_million": api.output_per_million,
            "source": api.source,
        },
        "break_even": break_even(hw, api, out_tps, w.input_tokens / max(1, w.output_tokens)),
        "formula": "cost.model: $/Mtok = $/hour ÷ (output tokens/s that met the SLO × 3600) × 10^6",
    }


def build_card(
    *,
    spec: Any,
    options: Any,
    workload: Workload,
    slo: dict[str, float],
    ranked: list[tuple[str, list[dict[str, Any]]]],
    measurements: list[dict[str, Any]],
    search: Any,
    grid_size: int,
    pruned: dict[str, str],
    pruned_variants: list[dict[str, Any]],
    variants: dict[str, str],
    environment: dict[str, Any],
    wall_s: float,
) -> dict[str, Any]:
    from selfhost.plan.measure import launch_command

    win_label, win_runs = ranked[0]
    win = win_runs[0]
    config = win["config"]
    best_run = max(win_runs, key=lambda m: m["goodput_requests_per_s"])
    interval = _interval(win_runs)
    decision = {
        "label": win_label,
        "config": config,
        "model_file": variants[config["variant"]],
        "launch_command": launch_command(config, variants[config["variant"]], workload.longest_request_tokens),
        "context_per_slot": workload.longest_request_tokens,
        "goodput_requests_per_s": interval,
        "searched_by": workload.searched_by,
        "best_level": best_run["best"][workload.searched_by] if best_run["best"] else None,
        "at_best_level": best_run["best"],
    }
    runner_up = None
    if len(ranked) > 1:
        ru_label, ru_runs = ranked[1]
        ru = _interval(ru_runs)
        overlap = ru["high"] >= interval["low"]
        runner_up = {
            "label": ru_label,
            "config": ru_runs[0]["config"],
            "goodput_requests_per_s": ru,
            "why_it_lost": (
                f"median goodput {ru['median']:.2f} vs {interval['median']:.2f} requests/s"
                + (" — the ranges overlap: within this machine's run-to-run noise" if overlap else "")
            ),
        }
    if interval["median"] > 0:
        answer = (
            f"run {win_label}: {interval['median']:.2f} requests/s meet the SLO "
            f"(range {interval['low']:.2f}–{interval['high']:.2f} over {len(win_runs)} runs) "
            + _level_text(workload.searched_by, decision["best_level"])
        )
    else:
        lowest = _level_text(workload.searched_by, 1)
        answer = f"no setting met the SLO ({_slo_text(slo)}) even {lowest}: loosen it or use faster hardware"
    per_label: dict[str, list[float]] = {}
    for m in measurements:
        per_label.setdefault(m["label"], []).append(m["goodput_requests_per_s"])
    return {
        "card_version": CARD_VERSION,
        "kind": "measured",
        "answer": answer,
        "model": spec.name,
        "decision": decision,
        "runner_up": runner_up,
        "memory": {
            "predicted": win["memory"]["predicted"],
            "from_engine_log": win["memory"]["from_log"],
            "note": "predicted by fit for this setting; measured = the buffers llama-server logged at start (-lv 4)",
        },
        "quality": _quality(config["variant"], options.quant_result),
        "cost": _cost(options.price_per_hour, options.api, best_run, workload),
        "workload": {
            "description": workload.describe(),
            "input_tokens": workload.input_tokens,
            "output_tokens": workload.output_tokens,
            "prompts_file": workload.prompts_file,
            "longest_request_tokens": workload.longest_request_tokens,
            "trace_file": workload.trace_file,
            "trace_requests": workload.trace_requests,
            "trace_seconds": workload.trace_seconds,
        },
        "slo": slo,
        "search": {
            "method": "coordinate ascent from llama-server's defaults, one knob at a time (plan.search)",
            "grid_size": grid_size,
            "pruned_without_measuring": len(pruned),
            "pruned": pruned,
            "pruned_variants": pruned_variants,
            "measured_settings": len(search.measured),
            "max_measurements": options.max_measurements,
            "stopped_by": search.stopped_by,
            "measured": [{"label": k, "goodput_requests_per_s": v} for k, v in per_label.items()],
        },
        "measurements": measurements,
        "measure_settings": {
            "max_concurrency": options.max_concurrency,
            "requests_per_level": options.requests_per_level,
            "max_speedup": options.max_speedup,
        },
        "environment": environment,
        "wall_s": wall_s,
    }


def _level_text(by: str, level: Any) -> str:
    return f"replaying the trace at {level:g}× its recorded rate" if by == "speedup" else f"at concurrency {level}"


def _slo_text(slo: dict[str, float]) -> str:
    return ", ".join(f"{k} ≤ {v:g} s" for k, v in slo.items())


def card_report(card: dict[str, Any]) -> Any:
    """The card as Sections, answer first (terminal and HTML share them)."""
    from selfhost.report.plots import bar_chart
    from selfhost.report.section import Report, Section

    if card["kind"] == "predicted":
        return _predicted_report(card)

    report = Report(f"selfhost plan: {card['model']}", {"kind": card["kind"], "measured in": _env_line(card)})
    d = card["decision"]
    g = d["goodput_requests_per_s"]
    rows = [
        ("launch", d["launch_command"]),
        (
            "goodput at the SLO",
            f"{g['median']:.2f} requests/s (range {g['low']:.2f}–{g['high']:.2f}, {len(g['runs'])} runs)",
        ),
        ("SLO", _slo_text(card["slo"])),
        ("workload", card["workload"]["description"]),
    ]
    if card.get("runner_up"):
        rows.append(("runner-up", f"{card['runner_up']['label']}: {card['runner_up']['why_it_lost']}"))
    report.add(Section("decision", "Decision", {"decision": d}, rows=rows, answer=card["answer"]))
    measured = card["search"]["measured"]
    labels = [m["label"] for m in measured]
    values = [statistics.median(m["goodput_requests_per_s"]) for m in measured]
    s = card["search"]
    report.add(
        Section(
            "search",
            "Goodput of every measured setting",
            s,
            rows=[
                ("settings in the grid", str(s["grid_size"])),
                ("pruned without measuring", str(s["pruned_without_measuring"])),
                ("measured", f"{s['measured_settings']} (stopped: {s['stopped_by']})"),
            ],
            plots=[bar_chart(labels, values, title="goodput under the SLO (median of runs)", unit="req/s")],
            notes=[s["method"]],
        )
    )
    mem = card["memory"]
    logged = mem.get("from_engine_log") or {}
    checks = logged.get("checks") if isinstance(logged, dict) else None
    if checks:
        head = ["component", "predicted MiB", "llama-server logged MiB", "error"]
        body = [
            [
                c["component"],
                f"{c['predicted_bytes'] / 2**20:.1f}",
                f"{c['actual_bytes'] / 2**20:.1f}",
                f"{c['error']:+.1%}",
            ]
            for c in checks
        ]
        report.add(Section("memory", "Memory: predicted vs logged", mem, table=(head, body), notes=[mem["note"]]))
    else:
        rows = [(k.replace("_bytes", ""), f"{v / 2**20:.1f} MiB predicted") for k, v in mem["predicted"].items()]
        report.add(Section("memory", "Memory: predicted", mem, rows=rows, notes=[mem["note"], "no engine log read"]))
    q = card["quality"]
    if q.get("measured"):
        cats = q.get("pass_rate_by_category") or {}
        qrows = [("decision", str(q.get("decision"))), ("pass rate", _pct(q.get("pass_rate"), q.get("pass_rate_ci")))]
        qrows += [(str(k), _pct(v.get("pass_rate"), v.get("pass_rate_ci"))) for k, v in cats.items()]
        report.add(Section("quality", f"Quality of {q['variant']}", q, rows=qrows))
    else:
        report.add(Section("quality", "Quality", q, rows=[("measured", "no")], notes=[q["note"]]))
    c = card.get("cost")
    if c:
        be = c["break_even"]
        crows = [
            ("$/M output tokens at the SLO", f"${c['usd_per_million_output_tokens']:.3f}"),
            (
                f"{c['api']['name']} $/M output (with input)",
                f"${be['api_usd_per_million_output_tokens_incl_input']:.3f}",
            ),
            ("break-even volume", f"{be['break_even_output_tokens_per_month']:,.0f} output tokens/month"),
        ]
        report.add(Section("cost", "Cost", c, rows=crows, notes=[c["formula"]]))
    else:
        report.add(Section("cost", "Cost", {}, rows=[("priced", "no")], notes=["pass --price-per-hour to price it"]))
    env = card["environment"]
    report.add(
        Section("environment", "Measured in", env, rows=[(k, str(v)) for k, v in env.items() if k != "hardware"])
    )
    return report


def _pct(rate: Any, ci: Any) -> str:
    if rate is None:
        return "—"
    text = f"{rate:.0%}"
    if isinstance(ci, list | tuple) and len(ci) == 2:
        text += f" [{ci[0]:.0%}, {ci[1]:.0%}]"
    return text


def _env_line(card: dict[str, Any]) -> str:
    e = card["environment"]
    hw = e.get("hardware") or {}
    return f"{e.get('engine')} {e.get('engine_version')} · {hw.get('cpu')} ({hw.get('logical_cores')} threads)"


def write_card(card: dict[str, Any], out_dir: Path) -> None:
    from selfhost.files import write_text_atomic
    from selfhost.jsonout import dumps
    from selfhost.report.html import write_html

    write_text_atomic(out_dir / "card.json", dumps(card, indent=2) + "\n")
    write_html(card_report(card), out_dir / "card.html")
    card["card_json"] = str(out_dir / "card.json")
    card["card_html"] = str(out_dir / "card.html")


def _predicted_report(card: dict[str, Any]) -> Any:
    from selfhost.report.plots import bar_chart
    from selfhost.report.section import Report, Section

    hw = card["hardware"]
    report = Report(
        f"selfhost plan (predicted): {card['model']} on {hw['gpus']} × {hw['gpu']}",
        {"kind": "predicted: nothing on this card was measured", "GPU source": hw["source"]},
    )
    best = card["decision"]
    rows = []
    if best:
        rows += [
            (f"launch (predicted, {best['launch']['nodes']} node(s))", line) for line in best["launch"]["commands"]
        ]
        rows.append(
            ("one-stream decode bound (predicted)", f"{best['decode_tokens_per_s_one_stream_bound']:.1f} tokens/s")
        )
    report.add(
        Section(
            "decision",
            "Decision (predicted)",
            {"decision": best},
            rows=rows,
            answer=card["answer"],
            notes=[card["note"]],
        )
    )
    head = ["quant", "TP", "PP", "fits", "weights GiB/GPU", "KV room GiB/GPU", "KV tokens", "decode bound tok/s"]
    body = [
        [
            r["quant"],
            str(r["tensor_parallel"]),
            str(r["pipeline_parallel"]),
            "yes" if r["fits"] else "no",
            f"{r['per_gpu_bytes']['weights'] / 2**30:.1f}",
            f"{r['per_gpu_bytes']['kv_cache_budget'] / 2**30:.1f}",
            f"{r['kv_capacity_tokens']:,}",
            f"{r['decode_tokens_per_s_one_stream_bound'] or 0:.1f}",
        ]
        for r in card["layouts"]
    ]
    labels = [f"{r['quant']} TP{r['tensor_parallel']}×PP{r['pipeline_parallel']}" for r in card["layouts"]]
    per_gpu = [sum(v for k, v in r["per_gpu_bytes"].items() if k != "kv_cache_budget") / 2**30 for r in card["layouts"]]
    report.add(
        Section(
            "layouts",
            "Layouts (predicted memory per GPU)",
            {"layouts": card["layouts"]},
            table=(head, body),
            plots=[bar_chart(labels, per_gpu, title="predicted GiB per GPU before the KV cache", unit="GiB")],
            notes=[card["layouts"][0]["basis"]] if card["layouts"] else [],
        )
    )
    c = card.get("cost")
    if c:
        rows = [
            ("$/hour (predicted)", f"${c['usd_per_hour']:.2f}"),
            (
                "$/M output tokens, upper bound (predicted)",
                f"${c['usd_per_million_output_tokens_one_stream_bound']:.2f}",
            ),
        ]
        report.add(Section("cost", "Cost (predicted)", c, rows=rows, notes=[c["basis"], f"price: {c['price_source']}"]))
    return report
