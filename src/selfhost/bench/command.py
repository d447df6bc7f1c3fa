"""`selfhost bench run` as one library call: the command's options (declared once, here) in, the `--json` answer
out. Chooses a single run, a sweep or an SLO search, and serves the embedded model when the target is `embedded`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from selfhost.backends.wire import Api
from selfhost.bench.levels import parse_levels, parse_slo
from selfhost.errors import UsageError
from selfhost.settings import setting

__all__ = ["API_CHOICES", "BenchOptions", "bench_command"]

API_CHOICES: dict[str, Api] = {
    "openai": "openai-chat",
    "openai-chat": "openai-chat",
    "openai-completions": "openai-completions",
    "ollama": "ollama-chat",
    "ollama-chat": "ollama-chat",
    "ollama-generate": "ollama-generate",
}


@dataclass(frozen=True)
class BenchOptions:
    concurrency: str | None = setting(None, "Closed loop: requests in flight (comma list sweeps), default 1.")
    rate: str | None = setting(None, "Open loop: requests/s (comma list sweeps).")
    arrival: str = setting("poisson", "Open-loop arrivals.", choices=("poisson", "gamma", "constant"))
    burstiness: float = setting(1.0, "Gamma shape (1 = Poisson).")
    max_concurrency: int | None = setting(None, "Open loop: cap on requests in flight.")
    requests: int | None = setting(None, "Requests per level (default 100).")
    duration: float | None = setting(None, "Seconds per level instead of a request count.")
    warmup: int = setting(0, "Requests sent first and not counted.")
    input_tokens: str = setting("128", "Prompt tokens (comma list sweeps).")
    output_tokens: int = setting(64, "Tokens asked for per request.")
    prompts_file: Path | None = setting(
        None, 'JSONL: {"prompt": ...} or {"messages": [...]}, optional "max_tokens".', flag="--prompts", path="in"
    )
    trace_file: Path | None = setting(
        None,
        "Replay a recorded trace (Mooncake JSONL: timestamp ms, input_length, output_length, hash_ids) at its own "
        "arrival times.",
        flag="--trace",
        path="in",
    )
    trace_speedup: float = setting(1.0, "Replay the trace this much faster.")
    shared_prefix: int = setting(0, "Tokens of a prefix shared by every prompt.")
    multi_turn: int = setting(0, "Synthetic conversations of this many turns, history growing.")
    model: str | None = setting(None, "Model name to request (default: the server's first model).")
    api: str = setting("openai", "Wire format.", choices=tuple(sorted(API_CHOICES)))
    api_key: str | None = setting(None, "Bearer token (default: $OPENAI_API_KEY).")
    timeout: float = setting(600.0, "Seconds before a request fails.")
    records_path: Path = setting(
        Path("bench-requests.jsonl"), "Per-request JSONL, written as they end.", flag="--records", path="out"
    )
    slo: str | None = setting(None, "Goodput targets, e.g. ttft_p99=1.0,tpot_p99=0.1 (seconds).")
    search_max: float | None = setting(
        None, "With --slo: find the highest concurrency/rate (up to this) meeting every SLO."
    )
    tokenizer: str | None = setting(
        None, "MODEL (GGUF, HF directory, ...) or server URL whose tokenizer sizes prompts and counts tokens."
    )
    seed: int = setting(0, "Seed for prompts and arrivals.")
    workers: int = setting(
        1, "Client processes sharing the load (records merged), for servers one Python process cannot saturate."
    )
    html_path: Path | None = setting(
        None,
        "Also write a self-contained HTML report with latency CDFs and throughput plots.",
        flag="--html",
        path="out",
    )


def _plan(target: str, o: BenchOptions) -> tuple[Any, list[Any], str]:
    """(BenchConfig, levels, what the levels are) from the options, refusing combinations that mean nothing."""
    from selfhost.bench.load import LoadSpec
    from selfhost.bench.run import BenchConfig

    conc = parse_levels(o.concurrency, int, "--concurrency", 1, 1e6)
    rates = parse_levels(o.rate, float, "--rate", 0, 1e6)
    inputs = parse_levels(o.input_tokens, int, "--input-tokens", 1, 1e7)
    if len(inputs) > 1 and (len(conc) > 1 or len(rates) > 1):
        raise UsageError("sweep one thing at a time: input tokens, or concurrency/rate")
    if conc and rates:
        raise UsageError(
            "--concurrency and --rate are two kinds of load; pick one",
            "closed loop: --concurrency N; open loop: --rate R [--max-concurrency N]",
        )
    sweeps = o.search_max is not None or len(inputs) > 1 or o.prompts_file
    if o.trace_file is not None and (conc or rates or sweeps):
        raise UsageError("a trace sets its own arrivals and prompts", "drop --concurrency/--rate/--prompts/sweeps")
    n_requests = o.requests
    if n_requests is None and o.duration is None and o.trace_file is None:
        n_requests = 100
    load = LoadSpec(
        concurrency=None if rates else (conc[0] if conc else 1),
        rate=rates[0] if rates else None,
        arrival=o.arrival,
        burstiness=o.burstiness,
        max_concurrency=o.max_concurrency,
        requests=n_requests,
        duration_s=o.duration,
        warmup=o.warmup,
        seed=o.seed,
    )
    cfg = BenchConfig(
        url=target,
        api=API_CHOICES[o.api],
        model=o.model,
        load=load,
        input_tokens=inputs[0],
        output_tokens=o.output_tokens,
        prompts_file=o.prompts_file,
        trace_file=o.trace_file,
        trace_speedup=o.trace_speedup,
        shared_prefix_tokens=o.shared_prefix,
        multi_turn=o.multi_turn,
        api_key=o.api_key,
        timeout_s=o.timeout,
        records_path=o.records_path,
        slo=parse_slo(o.slo),
        workers=o.workers,
    )
    if len(inputs) > 1:
        return cfg, inputs, "input_tokens"
    return (cfg, rates, "rate") if rates else (cfg, conc or [1], "concurrency")


def bench_command(target: str, options: BenchOptions | None = None) -> dict[str, Any]:
    """Latency and throughput of TARGET (a server URL, or `embedded`): one run, a sweep, or an SLO search.

    The result is the last run's, plus `runs` for a sweep and `slo_search` for a search."""
    from selfhost.bench.run import run_bench, run_sweep, search_slo

    o = options or BenchOptions()
    cfg, levels, by = _plan(target, o)
    count_tokens = None
    if o.tokenizer or target == "embedded":
        from selfhost.backends.tokenizer import token_counter

        count_tokens = token_counter(o.tokenizer)
    server = None
    try:
        if target == "embedded":
            from selfhost.backends.server import LlamaCppServer
            from selfhost.models.embedded import embedded_path

            n_ctx = max(2048, (max(levels) if by == "input_tokens" else cfg.input_tokens) + o.output_tokens + 64)
            server = LlamaCppServer(embedded_path(), n_ctx=int(n_ctx)).start()
            cfg = replace(cfg, url=server.url)
        search = None
        if o.search_max is not None:
            search = search_slo(cfg, by, float(levels[0]), o.search_max, count_tokens)
            runs = search["runs"]
        elif len(levels) > 1:
            runs = run_sweep(cfg, levels, by, count_tokens)
        else:
            runs = [run_bench(cfg, count_tokens)]
    finally:
        if server is not None:
            server.stop()
    result = dict(runs[-1]) | ({"runs": runs} if len(runs) > 1 else {})
    if search is not None:
        result["slo_search"] = {k: v for k, v in search.items() if k != "runs"}
    if o.html_path is not None:
        from selfhost.bench.section import bench_runs_section
        from selfhost.report.html import write_html
        from selfhost.report.section import Report

        report = Report(f"selfhost bench: {runs[0]['target']}", {"model": runs[0]["model"], "api": runs[0]["api"]})
        report.add(bench_runs_section(runs))
        write_html(report, o.html_path)
        result["report_html"] = str(o.html_path)
    return result
