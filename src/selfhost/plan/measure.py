"""One configuration measured on the real engine: start it with the command `serve` would run, find the highest
concurrency (or, for a trace, the fastest replay) whose run meets the SLO (bench's SLO search from the setting's
slots, doubling or halving, then bisecting to a whole number of concurrent requests), confirm that level with a
larger run, stop it. Goodput is the requests per second that met every SLO target in the confirming run.

Why a confirming run: a screening run's p99 over a few requests is nearly their maximum, so whether a level passes
near the SLO's edge is partly chance, and the best of several small runs is biased upward. The confirming run is
three times a screening run, and when it misses the SLO the next lower passing level is confirmed instead, so a
level that passed by luck does not set the goodput. benchmarks/bench_plan.py measures the spread: three settings,
three launches each, spread 4-16 % (RESULTS.md, 2026-12-02), where the earlier search's spread 10-23 %."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from selfhost.plan.space import Workload, label

__all__ = ["MeasureSettings", "measure_config", "goodput_of_search"]


@dataclass(frozen=True)
class MeasureSettings:
    slo: dict[str, float]
    workload: Workload
    out_dir: Path
    max_concurrency: int = 16
    requests_per_level: int = 8  # a screening run: at least this many; 2 × the concurrency when that is more
    max_speedup: float = 16.0  # a trace's fastest replay
    engine_timeout_s: float = 120.0
    max_confirmations: int = 2

    def confirm_requests(self, level: int) -> int:
        """The confirming run's size: three times a screening run's, and at least 5 waves of LEVEL requests."""
        return max(3 * self.requests_per_level, 5 * level)


def _passed(run: dict[str, Any]) -> bool:
    return bool(run.get("slo_met")) and run["requests"]["failed"] == 0


def goodput_of_search(search: dict[str, Any]) -> tuple[float, dict[str, Any] | None]:
    """The goodput of the best passing confirming run; without confirming runs (a trace's replays, or a search
    whose confirmations all missed the SLO), the best passing run below the lowest level that failed to confirm
    (0 when none)."""
    runs = search["runs"]
    confirmations = [r for r in runs if r.get("confirmation")]
    passing = [r for r in confirmations if _passed(r)]
    if not passing:
        ceiling = min((r["level"] for r in confirmations), default=float("inf"))
        passing = [r for r in runs if not r.get("confirmation") and _passed(r) and r["level"] < ceiling]
    if not passing:
        return 0.0, None
    best = max(passing, key=lambda r: r["goodput_requests_per_s"])
    return float(best["goodput_requests_per_s"]), best


def _run_summary(r: dict[str, Any] | None, by: str) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        by: r["level"],
        "confirmation": bool(r.get("confirmation")),
        "requests": r["requests"]["total"],
        "goodput_requests_per_s": r["goodput_requests_per_s"],
        "requests_per_s": r["requests_per_s"],
        "output_tokens_per_s": r["output_tokens_per_s"],
        "ttft_p99_s": r["ttft_s"]["p99"],
        "tpot_p99_s": r["tpot_s"]["p99"],
        "e2e_p50_s": r["e2e_s"]["p50"],
    }


def measure_config(
    config: dict[str, Any],
    model_path: str,
    settings: MeasureSettings,
    count_tokens: Callable[[str], int] | None,
    run_index: int = 0,
) -> dict[str, Any]:
    """Start llama-server for CONFIG on MODEL_PATH, search its goodput under the SLO, stop it."""
    from selfhost.serve import run as serve

    name = label(config).replace(" ", "_")
    where = settings.out_dir / "runs" / f"{name}-{run_index}"
    where.mkdir(parents=True, exist_ok=True)
    ctx = settings.workload.longest_request_tokens
    launch = serve.prepare(model_path, *_options(config, ctx, where / "engine.log", 0))
    started = time.perf_counter()
    proc = serve.start(launch, settings.engine_timeout_s)
    try:
        report = serve.started_report(launch, proc.url)
        search = bench_server(proc.url, settings, count_tokens, where, run_index, config["parallel"])
    finally:
        proc.stop()
    goodput, best = goodput_of_search(search)
    return {
        "config": config,
        "label": label(config),
        "run": run_index,
        "goodput_requests_per_s": goodput,
        "searched_by": search["by"],
        "best": _run_summary(best, search["by"]),
        "levels": [_run_summary(r, search["by"]) for r in search["runs"]],
        "command": report["command"],
        "memory": {"predicted": report["predicted"], "from_log": report.get("from_log")},
        "engine_log": str(launch.log_path),
        "wall_s": time.perf_counter() - started,
    }


def bench_server(
    url: str,
    settings: MeasureSettings,
    count_tokens: Callable[[str], int] | None,
    where: Path,
    seed: int = 0,
    start_level: int = 1,
) -> dict[str, Any]:
    """The goodput search against a server that is already up (one plan measures, or any other launch), its
    concurrency search starting at START_LEVEL."""
    from selfhost.bench.load import LoadSpec
    from selfhost.bench.run import BenchConfig, search_slo

    w = settings.workload
    trace = Path(w.trace_file) if w.trace_file else None
    cfg = BenchConfig(
        url=url,
        load=LoadSpec(concurrency=1, requests=None if trace else settings.requests_per_level, warmup=1, seed=seed),
        input_tokens=w.input_tokens,
        output_tokens=w.output_tokens,
        prompts_file=Path(w.prompts_file) if w.prompts_file else None,
        trace_file=trace,
        records_path=where / "requests.jsonl",
        slo=settings.slo,
    )
    if trace is not None:  # every request of the trace at each replay speed, arrivals as recorded ÷ the speedup
        return dict(search_slo(cfg, "speedup", 1.0, settings.max_speedup, count_tokens, 1.0))
    return _search(cfg, settings, count_tokens, search_slo, start_level)


def _search(
    cfg: Any, settings: MeasureSettings, count_tokens: Any, search_slo: Any, start_level: int
) -> dict[str, Any]:
    """Bench's SLO search over concurrency: from START_LEVEL (the engine's parallel slots: below them a server
    idles, so the answer is rarely lower), doubling while it passes or halving while it fails, then bisecting to a
    whole number of requests; each level screened with at least requests_per_level requests and as many warm-up
    requests as its concurrency. Then the best passing level is confirmed by a run of confirm_requests(level)
    requests, stepping down to the next lower passing level (at most max_confirmations runs) when a confirmation
    misses the SLO."""
    from selfhost.bench.run import next_prompt, run_bench

    def load_at(level: float) -> tuple[int, int]:
        return max(settings.requests_per_level, 2 * int(level)), int(level)

    start = min(start_level, settings.max_concurrency)
    search = dict(search_slo(cfg, "concurrency", start, settings.max_concurrency, count_tokens, 0.0, load_at, 1.0))
    passed = sorted({int(r["level"]) for r in search["runs"] if _passed(r)}, reverse=True)
    for level in passed[: settings.max_confirmations]:
        at = replace(cfg, load=replace(cfg.load, concurrency=level, rate=None))
        at = replace(at, load=replace(at.load, requests=settings.confirm_requests(level), warmup=level))
        at = replace(
            at,
            records_path=cfg.records_path.with_name(f"{cfg.records_path.stem}-confirm{level}.jsonl"),
            prompt_offset=next_prompt(cfg, search["runs"]),
        )
        run = run_bench(at, count_tokens)
        run["level"], run["confirmation"] = level, True
        search["runs"].append(run)
        if run["interrupted"]:
            raise KeyboardInterrupt
        if _passed(run):
            search["confirmed_level"] = level
            break
    return search


def launch_command(config: dict[str, Any], model_path: str, ctx: int, port: int = 8080) -> str:
    """The command a user runs for CONFIG: the one measured, without the verbose logging the memory check reads."""
    import shlex

    from selfhost.serve import run as serve

    launch = serve.prepare(model_path, *_options(config, ctx, None, port, print_only=True))
    argv = list(launch.argv)
    if "-lv" in argv:
        i = argv.index("-lv")
        del argv[i : i + 2]
    argv[0] = "llama-server"
    return shlex.join(argv)


def _options(
    config: dict[str, Any], ctx: int, log: Path | None, port: int, print_only: bool = False
) -> tuple[Any, Any]:
    from selfhost.fit.run import FitOptions
    from selfhost.serve import run as serve

    fit_options = FitOptions(
        ctx=ctx,
        parallel=config["parallel"],
        kv_type=config["kv_type"],
        flash_attn=config["flash_attn"],
        ubatch=config["ubatch"],
    )
    serve_options = serve.ServeOptions(
        engine="llama-server", port=port, threads=config["threads"], log_path=log, print_only=print_only
    )
    return fit_options, serve_options
