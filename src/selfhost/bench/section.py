"""bench in the check report (and `bench --html`): runs against a real server, latency CDFs and throughput."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from selfhost.report.plots import line_chart
from selfhost.report.section import Section
from selfhost.units import fmt_s

__all__ = ["bench_section", "bench_runs_section", "swept_by", "bench_table_section"]


def bench_section(
    model_path: Path,
    server_url: str,
    records_dir: Path,
    levels: Sequence[int] = (1, 2, 4),
    requests: int = 6,
    input_tokens: int = 64,
    output_tokens: int = 16,
) -> Section:
    """Latency and throughput through a real HTTP server (llama-cpp-python's) at several concurrencies."""
    from selfhost.backends.tokenizer import token_counter
    from selfhost.bench.load import LoadSpec
    from selfhost.bench.run import BenchConfig, run_bench, run_sweep

    count = token_counter(str(model_path))
    runs = []
    for c in levels:
        cfg = BenchConfig(
            url=server_url,
            load=LoadSpec(concurrency=c, requests=requests, warmup=1 if c == 1 else 0),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            records_path=records_dir / f"bench-concurrency{c}.jsonl",
        )
        runs.append(run_bench(cfg, count))
    input_runs = run_sweep(
        BenchConfig(
            url=server_url,
            load=LoadSpec(concurrency=1, requests=3),
            output_tokens=4,
            records_path=records_dir / "bench-input.jsonl",
        ),
        [64, 256, 512],
        "input_tokens",
        count,
    )
    notes = [
        "Server: llama-cpp-python's OpenAI-compatible server on 127.0.0.1 with the embedded model (one request "
        "at a time: extra concurrency waits, which TTFT shows). Output tokens counted with the model's tokenizer "
        "(this server sends no usage when streaming)."
    ]
    section = bench_runs_section(runs, notes)
    by_input = bench_runs_section(input_runs)
    section.plots.extend(by_input.plots[1:])
    section.rows.extend(by_input.rows)
    section.data["input_sweep"] = input_runs
    return section


def swept_by(runs: Sequence[dict[str, Any]]) -> tuple[str, list[float]]:
    """What a list of runs varies (input_tokens, rate or concurrency), and its value in each run."""
    inputs = [r["workload"]["input_tokens"] for r in runs]
    if len(set(inputs)) > 1:
        return "input_tokens", [float(x) for x in inputs]
    by = "rate" if runs and runs[0]["load"].get("rate") else "concurrency"
    return by, [float(r["load"][by] or 0) for r in runs]


def _ms(d: dict[str, Any], k: str) -> str:
    v = d.get(k)
    return "-" if v is None else f"{v * 1000:.1f}"


def bench_table_section(result: dict[str, Any]) -> Section:
    """`selfhost bench` in the terminal: one row per level, failures by class, where the numbers came from."""
    runs = result.get("runs") or [result]
    by, levels = swept_by(runs)
    head = [by, "ok", "failed", "TTFT p50/p99 ms", "ITL p50/p99 ms", "TPOT p50 ms", "e2e p50 s", "req/s", "out tok/s"]
    body = [
        [
            f"{level:g}",
            str(r["requests"]["completed"]),
            str(r["requests"]["failed"]),
            f"{_ms(r['ttft_s'], 'p50')} / {_ms(r['ttft_s'], 'p99')}",
            f"{_ms(r['itl_s'], 'p50')} / {_ms(r['itl_s'], 'p99')}",
            _ms(r["tpot_s"], "p50"),
            f"{(r['e2e_s']['p50'] or 0):.2f}",
            f"{r['requests_per_s']:.2f}",
            f"{r['output_tokens_per_s']:.1f}",
        ]
        for r, level in zip(runs, levels, strict=True)
    ]
    last = runs[-1]
    notes = []
    failed = {k: v for k, v in last["requests"]["failed_by_class"].items() if v}
    if failed:
        notes.append(f"failures by class: {failed}")
    notes.append(
        f"output tokens from: {last['tokens_source']}; latency percentiles exclude failed requests; "
        f"per-request records: {last['records_path']}"
    )
    notes += [f"warning: {w}" for w in last["warnings"]]
    answer = None
    search = result.get("slo_search")
    if search is not None:
        best = search["best_level"]
        answer = (
            f"highest {by} meeting {search['slo']}: [bold]{best}[/]"
            if best is not None
            else f"no {by} tried met {search['slo']}"
        )
    title = f"selfhost bench: {runs[0]['target']} ({runs[0]['model']})"
    return Section("bench", title, result, notes=notes, table=(head, body), answer=answer)


def bench_runs_section(runs: Sequence[dict[str, Any]], notes: Sequence[str] = ()) -> Section:
    """Tables and plots for one or more `bench` runs (a sweep over concurrency or rate)."""
    by, levels = swept_by(runs)
    rows = []
    cdf = []
    for r, level in zip(runs, levels, strict=True):
        name = f"{by} {level:g}"
        rows.append(
            (
                name,
                f"TTFT p50 {fmt_s(r['ttft_s']['p50'])}, ITL p50 {fmt_s(r['itl_s']['p50'])}, "
                f"{r['output_tokens_per_s']:.1f} output tok/s, {r['requests_per_s']:.2f} req/s, "
                f"{r['requests']['failed']} failed",
            )
        )
        recs = [json.loads(line) for line in Path(r["records_path"]).read_text().splitlines()]
        ttfts = sorted(x["ttft_s"] for x in recs if x["status"] == "ok" and not x["warmup"])
        if ttfts:
            cdf.append((name, ttfts, [100 * (i + 1) / len(ttfts) for i in range(len(ttfts))]))
    plots = [
        line_chart(
            cdf, title="Time to first token: cumulative distribution", x_label="TTFT (s)", y_label="% of requests"
        )
    ]
    if by == "input_tokens":
        plots.append(
            line_chart(
                [("TTFT p50", levels, [r["ttft_s"]["p50"] or 0.0 for r in runs])],
                title="Time to first token against input length",
                x_label="input tokens",
                y_label="seconds",
            )
        )
    elif len(runs) > 1:
        plots.append(
            line_chart(
                [("output tokens/s", levels, [r["output_tokens_per_s"] for r in runs])],
                title=f"Throughput against {by}",
                x_label=by,
                y_label="output tokens/s",
            )
        )
    notes = [
        *notes,
        "Latencies count from each request's scheduled send time; percentiles exclude failed requests; "
        "per-request records are in the JSONL files named in the data.",
    ]
    return Section(
        "bench", "Serving latency and throughput (measured over HTTP)", {"runs": list(runs)}, rows, plots, notes
    )
