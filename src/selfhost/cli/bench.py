"""`selfhost bench`, `selfhost serve` and `selfhost mock-server`."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from selfhost.bench.wire import Api
from selfhost.cli.output import print_json, print_rows, stderr, stdout
from selfhost.errors import UsageError
from selfhost.files import read_json

API_CHOICES: dict[str, Api] = {
    "openai": "openai-chat",
    "openai-chat": "openai-chat",
    "openai-completions": "openai-completions",
    "ollama": "ollama-chat",
    "ollama-chat": "ollama-chat",
    "ollama-generate": "ollama-generate",
}


def _levels(text: str | None, conv: Callable[[str], Any], option: str, lo: float, hi: float) -> list[Any]:
    """A comma list of numbers, each finite and in [lo, hi] (lo itself excluded for rates)."""
    if not text:
        return []
    try:
        values = [conv(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"{option} {text!r}: not a comma-separated list of numbers") from None
    for v in values:
        if not (math.isfinite(v) and lo <= v <= hi) or (conv is float and v <= 0):
            raise UsageError(f"{option} {v!r} is out of range: each value must be > 0 and ≤ {hi:g}")
    return values


def _slo(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    known = {f"{m}_p{p}" for m in ("ttft", "tpot", "e2e") for p in (50, 90, 99)}
    out = {}
    for part in text.split(","):
        k, _, v = part.partition("=")
        if k.strip() not in known:
            raise UsageError(f"--slo: unknown target {k!r}", "use e.g. ttft_p99=1.0,tpot_p99=0.1 (seconds)")
        try:
            seconds = float(v)
        except ValueError:
            raise UsageError(f"--slo {k.strip()}={v!r}: not a number of seconds", "e.g. ttft_p99=1.0") from None
        if not (math.isfinite(seconds) and seconds > 0):
            raise UsageError(f"--slo {k.strip()}={v}: must be a positive number of seconds")
        out[k.strip()] = seconds
    return out


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("target")
@click.argument("more", nargs=-1)
@click.option("--concurrency", default=None, help="Closed loop: requests in flight (comma list sweeps), default 1.")
@click.option("--rate", default=None, help="Open loop: requests/s (comma list sweeps).")
@click.option("--arrival", type=click.Choice(["poisson", "gamma", "constant"]), default="poisson", show_default=True)
@click.option("--burstiness", type=float, default=1.0, show_default=True, help="Gamma shape (1 = Poisson).")
@click.option("--max-concurrency", type=int, default=None, help="Open loop: cap on requests in flight.")
@click.option("--requests", "n_requests", type=int, default=None, help="Requests per level (default 100).")
@click.option("--duration", type=float, default=None, help="Seconds per level instead of a request count.")
@click.option("--warmup", type=int, default=0, show_default=True, help="Requests sent first and not counted.")
@click.option("--input-tokens", default="128", show_default=True, help="Prompt tokens (comma list sweeps).")
@click.option("--output-tokens", type=int, default=64, show_default=True)
@click.option(
    "--prompts",
    "prompts_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help='JSONL: {"prompt": ...} or {"messages": [...]}, optional "max_tokens".',
)
@click.option(
    "--trace",
    "trace_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Replay a recorded trace (Mooncake JSONL: timestamp ms, input_length, output_length, hash_ids) at its "
    "own arrival times.",
)
@click.option("--trace-speedup", type=float, default=1.0, show_default=True, help="Replay the trace this much faster.")
@click.option("--shared-prefix", type=int, default=0, help="Tokens of a prefix shared by every prompt.")
@click.option("--multi-turn", type=int, default=0, help="Synthetic conversations of this many turns, history growing.")
@click.option("--model", default=None, help="Model name to request (default: the server's first model).")
@click.option("--api", type=click.Choice(sorted(API_CHOICES)), default="openai", show_default=True)
@click.option("--api-key", default=None, help="Bearer token (default: $OPENAI_API_KEY).")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds before a request fails.")
@click.option(
    "--records",
    "records_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("bench-requests.jsonl"),
    show_default=True,
    help="Per-request JSONL, written as they end.",
)
@click.option("--slo", default=None, help="Goodput targets, e.g. ttft_p99=1.0,tpot_p99=0.1 (seconds).")
@click.option(
    "--search-max",
    type=float,
    default=None,
    help="With --slo: find the highest concurrency/rate (up to this) meeting every SLO.",
)
@click.option("--tokenizer", default=None, help="MODEL whose tokenizer sizes prompts and counts tokens.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="Client processes sharing the load (records merged), for servers one Python process cannot saturate.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a self-contained HTML report with latency CDFs and throughput plots.",
)
@click.option("--json", "as_json", is_flag=True)
def bench(
    target: str,
    more: tuple[str, ...],
    concurrency: str | None,
    rate: str | None,
    arrival: str,
    burstiness: float,
    max_concurrency: int | None,
    n_requests: int | None,
    duration: float | None,
    warmup: int,
    input_tokens: str,
    output_tokens: int,
    prompts_file: Path | None,
    trace_file: Path | None,
    trace_speedup: float,
    shared_prefix: int,
    multi_turn: int,
    model: str | None,
    api: str,
    api_key: str | None,
    timeout: float,
    records_path: Path,
    slo: str | None,
    search_max: float | None,
    tokenizer: str | None,
    seed: int,
    workers: int,
    html_path: Path | None,
    as_json: bool,
) -> None:
    """Latency and throughput of TARGET (a server URL, or `embedded` to serve the embedded model here).

    `selfhost bench compare A.json B.json` shows saved `--json` results side by side."""
    if target == "compare":
        _compare([Path(p) for p in more], as_json)
        return
    if more:
        raise UsageError(f"unexpected arguments: {' '.join(more)}")
    from dataclasses import replace

    from selfhost.bench.load import LoadSpec
    from selfhost.bench.run import BenchConfig, run_bench, run_sweep, search_slo

    conc = _levels(concurrency, int, "--concurrency", 1, 1e6)
    rates = _levels(rate, float, "--rate", 0, 1e6)
    inputs = _levels(input_tokens, int, "--input-tokens", 1, 1e7)
    if len(inputs) > 1 and (len(conc) > 1 or len(rates) > 1):
        raise UsageError("sweep one thing at a time: input tokens, or concurrency/rate")
    if conc and rates:
        raise UsageError(
            "--concurrency and --rate are two kinds of load; pick one",
            "closed loop: --concurrency N; open loop: --rate R [--max-concurrency N]",
        )
    if trace_file is not None and (conc or rates or len(inputs) > 1 or search_max is not None or prompts_file):
        raise UsageError("a trace sets its own arrivals and prompts", "drop --concurrency/--rate/--prompts/sweeps")
    if n_requests is None and duration is None and trace_file is None:
        n_requests = 100
    load = LoadSpec(
        concurrency=None if rates else (conc[0] if conc else 1),
        rate=rates[0] if rates else None,
        arrival=arrival,
        burstiness=burstiness,
        max_concurrency=max_concurrency,
        requests=n_requests,
        duration_s=duration,
        warmup=warmup,
        seed=seed,
    )
    cfg = BenchConfig(
        url=target,
        api=API_CHOICES[api],
        model=model,
        load=load,
        input_tokens=inputs[0],
        output_tokens=output_tokens,
        prompts_file=prompts_file,
        trace_file=trace_file,
        trace_speedup=trace_speedup,
        shared_prefix_tokens=shared_prefix,
        multi_turn=multi_turn,
        api_key=api_key,
        timeout_s=timeout,
        records_path=records_path,
        slo=_slo(slo),
        workers=workers,
    )
    levels, by = (rates, "rate") if rates else (conc or [1], "concurrency")
    if len(inputs) > 1:
        levels, by = inputs, "input_tokens"
    count_tokens = None
    server = None
    if tokenizer or target == "embedded":
        from selfhost.backends.tokenizer import gguf_token_counter
        from selfhost.models.resolve import local_gguf_path, resolve_model

        count_tokens = gguf_token_counter(local_gguf_path(resolve_model(tokenizer or None)))
    try:
        if target == "embedded":
            from selfhost.backends.server import LlamaCppServer
            from selfhost.models.embedded import embedded_path

            stderr.print("starting llama-cpp-python's server with the embedded model on 127.0.0.1 ...")
            server = LlamaCppServer(embedded_path(), n_ctx=max(2048, max(inputs) + output_tokens + 64)).start()
            cfg = replace(cfg, url=server.url)
        search = None
        if search_max is not None:
            search = search_slo(cfg, by, float(levels[0]), search_max, count_tokens)
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
    if html_path is not None:
        from selfhost.bench.section import bench_runs_section
        from selfhost.report.html import write_html
        from selfhost.report.section import Report

        report = Report(f"selfhost bench: {runs[0]['target']}", {"model": runs[0]["model"], "api": runs[0]["api"]})
        report.add(bench_runs_section(runs))
        write_html(report, html_path)
        result["report_html"] = str(html_path)
    if as_json:
        print_json(result)
    else:
        _print_runs(runs, by)
        if search is not None:
            best = search["best_level"]
            stdout.print(
                f"highest {by} meeting {search['slo']}: [bold]{best}[/]"
                if best is not None
                else f"no {by} tried met {search['slo']}"
            )
    if any(r["interrupted"] for r in runs):
        raise KeyboardInterrupt


def _ms(d: dict[str, Any], k: str) -> str:
    v = d.get(k)
    return "-" if v is None else f"{v * 1000:.1f}"


def _print_runs(runs: list[dict[str, Any]], by: str) -> None:
    from rich.table import Table

    t = Table(title=f"selfhost bench: {runs[0]['target']} ({runs[0]['model']})", title_justify="left")
    for col in (
        by,
        "ok",
        "failed",
        "TTFT p50/p99 ms",
        "ITL p50/p99 ms",
        "TPOT p50 ms",
        "e2e p50 s",
        "req/s",
        "out tok/s",
    ):
        t.add_column(col, justify="right")
    for r in runs:
        level = r["load"]["rate"] if by == "rate" else r["load"]["concurrency"]
        t.add_row(
            str(level),
            str(r["requests"]["completed"]),
            str(r["requests"]["failed"]),
            f"{_ms(r['ttft_s'], 'p50')} / {_ms(r['ttft_s'], 'p99')}",
            f"{_ms(r['itl_s'], 'p50')} / {_ms(r['itl_s'], 'p99')}",
            _ms(r["tpot_s"], "p50"),
            f"{(r['e2e_s']['p50'] or 0):.2f}",
            f"{r['requests_per_s']:.2f}",
            f"{r['output_tokens_per_s']:.1f}",
        )
    stdout.print(t)
    last = runs[-1]
    failed = {k: v for k, v in last["requests"]["failed_by_class"].items() if v}
    if failed:
        stdout.print(f"failures by class: {failed}")
    stdout.print(
        f"[dim]output tokens from: {last['tokens_source']}; latency percentiles exclude failed requests; "
        f"per-request records: {last['records_path']}[/]"
    )
    for w in last["warnings"]:
        stdout.print(f"[yellow]warning:[/] {w}")


def _compare(paths: list[Path], as_json: bool) -> None:
    if len(paths) < 2:
        raise UsageError("bench compare needs two or more saved --json results")
    runs = []
    for p in paths:
        r = read_json(p)
        if not isinstance(r, dict) or not isinstance(r.get("ttft_s"), dict):
            raise UsageError(f"{p}: not a saved `selfhost bench --json` result of one run (no ttft_s)")
        runs.append(r)

    def number(v: Any) -> float | None:
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    keys = [("ttft_s", "p50"), ("ttft_s", "p99"), ("itl_s", "p50"), ("tpot_s", "p50"), ("e2e_s", "p50")]
    rows = {
        f"{m} {p}": [number((r.get(m) or {}).get(p)) if isinstance(r.get(m), dict) else None for r in runs]
        for m, p in keys
    }
    rows["requests_per_s"] = [number(r.get("requests_per_s")) for r in runs]
    rows["output_tokens_per_s"] = [number(r.get("output_tokens_per_s")) for r in runs]
    if as_json:
        print_json({"files": [str(p) for p in paths], "metrics": rows})
        return
    print_rows(
        "compare: " + " vs ".join(p.name for p in paths),
        [(k, "  |  ".join("-" if v is None else f"{v:.4g}" for v in vs)) for k, vs in rows.items()],
    )
