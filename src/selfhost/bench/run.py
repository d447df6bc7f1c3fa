"""A benchmark run: check the target, build the workload, drive the load, stream records, summarize."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp

from selfhost.backends.wire import Api, build_request
from selfhost.bench.client import RequestRecord, send_request
from selfhost.bench.load import LoadSpec, LoadStats, run_load
from selfhost.bench.metrics import summarize
from selfhost.bench.workload import Prompt, jsonl_prompts, multi_turn_prompts, synthetic_prompts, trace_prompts
from selfhost.errors import BackendError, UsageError
from selfhost.files import streamed_output
from selfhost.hardware.power import PowerSampler

__all__ = ["BenchConfig", "run_bench", "probe_target", "run_sweep", "search_slo", "next_prompt"]


@dataclass(frozen=True)
class BenchConfig:
    url: str
    api: Api = "openai-chat"
    model: str | None = None
    load: LoadSpec = field(default_factory=LoadSpec)
    input_tokens: int = 128
    output_tokens: int = 64
    prompts_file: Path | None = None
    shared_prefix_tokens: int = 0
    multi_turn: int = 0  # turns per synthetic conversation (0: independent prompts)
    trace_file: Path | None = None  # replay: prompts and arrival times from a Mooncake-format trace
    trace_speedup: float = 1.0
    trace_block_size: int = 512
    api_key: str | None = None
    timeout_s: float = 600.0
    records_path: Path = Path("bench-requests.jsonl")
    slo: dict[str, float] | None = None
    ignore_eos: bool = True
    workers: int = 1  # client processes sharing the load (one Python process saturates near one core)
    # Where in the workload a run starts: a search's later runs skip the prompts its earlier runs sent (and a
    # trace's later replays get other words), so a server's prompt cache never answers a repeat it was not sent.
    prompt_offset: int = 0


def _base(url: str) -> str:
    url = url.rstrip("/")
    for suffix in ("/v1/chat/completions", "/v1/completions", "/v1", "/api/chat", "/api/generate"):
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


async def probe_target(session: aiohttp.ClientSession, url: str, api: Api, headers: dict[str, str]) -> str:
    """The served model's name; a one-line error naming the fix when the target is not an LLM server."""
    path = "/api/tags" if api.startswith("ollama") else "/v1/models"
    try:
        async with session.get(url + path, headers=headers, timeout=aiohttp.ClientTimeout(total=10)) as r:
            if r.status in (401, 403):
                raise BackendError(
                    f"{url} refused the request (HTTP {r.status}): it needs an API key",
                    "pass --api-key KEY or set OPENAI_API_KEY",
                )
            if r.status == 404:
                other = "--api openai" if api.startswith("ollama") else "--api ollama"
                raise BackendError(
                    f"{url}{path} answered 404: not an {'Ollama' if 'ollama' in api else 'OpenAI-compatible'} "
                    "server at this base URL",
                    f"pass the server's base URL (no /v1 path), or {other}",
                )
            if r.status >= 400:
                raise BackendError(
                    f"{url}{path} answered HTTP {r.status}", "check the URL and that the server is healthy"
                )
            try:
                data = await r.json(content_type=None)
            except (json.JSONDecodeError, aiohttp.ContentTypeError, UnicodeDecodeError):
                raise BackendError(
                    f"{url}{path} did not answer JSON: not an LLM server",
                    "point selfhost bench at an OpenAI-compatible or Ollama server",
                ) from None
    except aiohttp.ClientConnectorError as exc:
        raise BackendError(
            f"cannot connect to {url}: {exc.os_error.strerror if exc.os_error else exc}",
            "is the server running? start one with `selfhost serve`",
        ) from None
    except TimeoutError:
        raise BackendError(f"{url} did not answer within 10 s", "check the URL and the server") from None
    except aiohttp.ClientError as exc:
        raise BackendError(
            f"{url}{path}: the connection failed ({type(exc).__name__}: {exc})", "check the URL and the server"
        ) from None
    if not isinstance(data, dict):
        raise BackendError(f"{url}{path} answered JSON that is not an object: not an LLM server")
    models = data.get("models") if api.startswith("ollama") else data.get("data")
    if not isinstance(models, list):
        raise BackendError(
            f"{url}{path} answered JSON without a model list: not an LLM server",
            "point selfhost bench at an OpenAI-compatible or Ollama server",
        )
    if not models:
        raise BackendError(f"{url} serves no models", "load a model first (ollama pull / --model)")
    first = models[0]
    return str(first.get("name") or first.get("model") or first.get("id"))


def _prompts(cfg: BenchConfig, n: int, count_tokens: Callable[[str], int] | None) -> list[Prompt]:
    if cfg.prompts_file is not None:
        return jsonl_prompts(cfg.prompts_file, cfg.output_tokens)
    if cfg.multi_turn:
        return multi_turn_prompts(min(n, 4096), cfg.multi_turn, cfg.input_tokens, cfg.output_tokens, cfg.load.seed)
    return synthetic_prompts(
        min(n, 4096),
        cfg.input_tokens,
        cfg.output_tokens,
        seed=cfg.load.seed,
        count_tokens=count_tokens,
        shared_prefix_tokens=cfg.shared_prefix_tokens,
    )


async def _run(
    cfg: BenchConfig, count_tokens: Callable[[str], int] | None
) -> tuple[dict[str, Any], list[RequestRecord], LoadStats]:
    url = _base(cfg.url)
    key = cfg.api_key or os.environ.get("OPENAI_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    # The workload is read (and a bad file refused) before the server is contacted.
    load_spec = cfg.load
    if cfg.trace_file is not None:
        prompts, offsets = trace_prompts(cfg.trace_file, cfg.trace_block_size, cfg.trace_speedup, cfg.prompt_offset)
        load_spec = replace(
            cfg.load,
            concurrency=None,
            rate=None,
            schedule=tuple(offsets),
            requests=min(cfg.load.requests or len(offsets), len(offsets)),
            duration_s=None,
            warmup=0,
        )
    else:
        n = (cfg.load.requests or 1000) + cfg.load.warmup
        prompts = _prompts(cfg, n + cfg.prompt_offset, count_tokens)
    first = 0 if cfg.trace_file is not None else cfg.prompt_offset
    conn = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
    # A large read buffer: a 64 KiB one throttled vLLM's own client at long outputs (vllm#39963).
    async with aiohttp.ClientSession(
        connector=conn, read_bufsize=2**20, timeout=aiohttp.ClientTimeout(total=cfg.timeout_s)
    ) as session:
        model = cfg.model or await probe_target(session, url, cfg.api, headers)
        records: list[RequestRecord] = []
        power = PowerSampler()
        interrupted = False
        origin: list[float] = []
        # Written as requests finish to a file beside the target, renamed over it when the load ends (Ctrl-C
        # included): a crash loses nothing finished, and never leaves half a file where a previous one was.
        with streamed_output(cfg.records_path) as out:

            async def execute(rec: RequestRecord) -> RequestRecord:
                p = prompts[(rec.id + first) % len(prompts)]
                path, body = build_request(cfg.api, model, p.content, p.max_tokens, ignore_eos=cfg.ignore_eos)
                done = await send_request(session, url, cfg.api, path, body, rec, headers, count_tokens)
                if done.prompt_tokens is None and p.input_tokens is not None:
                    done.prompt_tokens = p.input_tokens  # the prompt text by the tokenizer (no template overhead)
                return done

            def on_record(rec: RequestRecord) -> None:
                records.append(rec)
                if not origin:
                    origin.append(rec.scheduled_t)
                out.write(json.dumps(rec.to_json(origin[0])) + "\n")
                out.flush()  # a crash or Ctrl-C loses nothing already finished

            try:
                with power:
                    load = await run_load(load_spec, execute, on_record)
            except (asyncio.CancelledError, KeyboardInterrupt):
                interrupted = True
                load = LoadStats()
                if records:
                    load.started = min(r.scheduled_t for r in records)
                    load.finished = max(r.end_t for r in records)
    summary = summarize(records, load, cfg.slo)
    summary.update(
        {
            "target": url,
            "api": cfg.api,
            "model": model,
            "records_path": str(cfg.records_path),
            "load": {
                "concurrency": cfg.load.concurrency,
                "rate": cfg.load.rate,
                "arrival": cfg.load.arrival,
                "burstiness": cfg.load.burstiness,
                "requests": cfg.load.requests,
                "duration_s": cfg.load.duration_s,
                "warmup": cfg.load.warmup,
                "max_concurrency": cfg.load.max_concurrency,
                "trace": None
                if cfg.trace_file is None
                else {
                    "file": str(cfg.trace_file),
                    "requests": load_spec.requests,
                    "span_s": load_spec.schedule[(load_spec.requests or 1) - 1] if load_spec.schedule else 0.0,
                    "speedup": cfg.trace_speedup,
                    "block_size": cfg.trace_block_size,
                },
            },
            "workload": {
                "input_tokens": cfg.input_tokens,
                "output_tokens": cfg.output_tokens,
                "prompts_file": str(cfg.prompts_file) if cfg.prompts_file else None,
                "shared_prefix_tokens": cfg.shared_prefix_tokens,
                "multi_turn": cfg.multi_turn,
                "input_tokens_counted_with": "model tokenizer" if count_tokens else "words (approximate)",
            },
            "interrupted": interrupted,
            "gpu_power": power.to_dict(),
            # time.perf_counter() of the first scheduled send: the records' times are relative to it
            "clock_origin_perf_counter": origin[0] if origin else None,
        }
    )
    return summary, records, load


def _event_loop_run(coro: Any) -> Any:
    """uvloop when installed (a faster loop is a more accurate client), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def run_bench(cfg: BenchConfig, count_tokens: Callable[[str], int] | None = None) -> dict[str, Any]:
    if not cfg.url.startswith(("http://", "https://")):
        raise UsageError(f"bench target {cfg.url!r} is not a URL", "pass http://HOST:PORT, or `embedded`")
    if cfg.workers > 1:
        from selfhost.bench.workers import run_workers

        return run_workers(cfg, count_tokens)
    return _event_loop_run(_run(cfg, count_tokens))[0]


def run_one_worker(cfg: BenchConfig) -> tuple[dict[str, Any], list[RequestRecord], LoadStats]:
    """One client process's share of a multi-process run (bench/workers.py); its records are returned with
    their absolute perf_counter times, which every process on the machine shares (CLOCK_MONOTONIC)."""
    return _event_loop_run(_run(cfg, None))  # type: ignore[no-any-return]


def _at_level(cfg: BenchConfig, by: str, level: float) -> BenchConfig:
    """cfg at one level of `by` ('concurrency', 'rate', 'speedup' of a trace's replay or 'input_tokens'), with its
    own records file."""
    if by == "speedup":
        cfg = replace(cfg, trace_speedup=float(level))
    elif by == "concurrency":
        cfg = replace(cfg, load=replace(cfg.load, concurrency=int(level), rate=None))
    elif by == "rate":
        cfg = replace(cfg, load=replace(cfg.load, rate=float(level), concurrency=None))
    else:
        cfg = replace(cfg, input_tokens=int(level))
    path = cfg.records_path.with_name(f"{cfg.records_path.stem}-{by}{level:g}{cfg.records_path.suffix}")
    return replace(cfg, records_path=path)


def run_sweep(
    cfg: BenchConfig, levels: list[int | float], by: str, count_tokens: Callable[[str], int] | None = None
) -> list[dict[str, Any]]:
    """One run per level of `by`: 'concurrency', 'rate' or 'input_tokens'; records go to one file per level."""
    out: list[dict[str, Any]] = []
    for level in levels:
        s = run_bench(replace(_at_level(cfg, by, level), prompt_offset=next_prompt(cfg, out)), count_tokens)
        out.append(s)
        if s["interrupted"]:
            break
    return out


def next_prompt(cfg: BenchConfig, runs: list[dict[str, Any]]) -> int:
    """The prompt offset of the run after RUNS in one search: past every prompt they sent, warm-ups included (for
    a trace, the replay's salt: one per run)."""
    if cfg.trace_file is not None:
        return cfg.prompt_offset + len(runs)
    return cfg.prompt_offset + sum(r["requests"]["total"] + r["requests"]["warmup"] for r in runs)


def search_slo(
    cfg: BenchConfig,
    by: str,
    start: float,
    limit: float,
    count_tokens: Callable[[str], int] | None = None,
    precision: float = 0.1,
    load_at: Callable[[float], tuple[int, int]] | None = None,
    floor: float | None = None,
) -> dict[str, Any]:
    """The highest concurrency (by='concurrency') or rate (by='rate') whose run meets every SLO in cfg.slo:
    double from `start` until a run fails or `limit` is reached, then bisect between the last pass and the
    first failure until they are within `precision` (relative) of each other. With a FLOOR below START, a failing
    start is halved (not below FLOOR) until a level passes, so a search can begin where the answer is likely to
    be. LOAD_AT(level) gives each level's (requests, warmup) when a run's size should grow with its level."""
    if not cfg.slo:
        raise UsageError("an SLO search needs targets", "pass --slo, e.g. ttft_p99=1.0,tpot_p99=0.1")
    runs: list[dict[str, Any]] = []

    def probe(level: float) -> bool:
        level = int(round(level)) if by == "concurrency" else level
        at = _at_level(cfg, by, level)
        if load_at is not None:
            n, warmup = load_at(level)
            at = replace(at, load=replace(at.load, requests=n, warmup=warmup))
        at = replace(at, prompt_offset=next_prompt(cfg, runs))
        s = run_bench(at, count_tokens)
        s["level"] = level
        runs.append(s)
        if s["interrupted"]:
            raise KeyboardInterrupt
        return bool(s["slo_met"]) and s["requests"]["failed"] == 0

    best: float | None = None
    level = start
    fail: float | None = None
    while level <= limit:
        if probe(level):
            best = level
            level *= 2
        else:
            fail = level
            break
    while best is None and fail is not None and floor is not None and fail / 2 >= floor:
        level = fail / 2
        if probe(level):
            best = level
        else:
            fail = level
    if best is not None and fail is not None:
        lo, hi = best, fail
        while hi / lo > 1 + precision and (by != "concurrency" or hi - lo > 1):
            mid = (lo + hi) / 2
            if probe(mid):
                lo = mid
            else:
                hi = mid
        best = lo
    if best is not None and by == "concurrency":
        best = int(round(best))
    return {
        "by": by,
        "slo": cfg.slo,
        "best_level": best,
        "first_failing_level": fail,
        "runs": sorted(runs, key=lambda r: r["level"]),
    }
