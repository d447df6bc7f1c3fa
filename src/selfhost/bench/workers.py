"""`bench --workers N`: the load spread over N client processes, their records merged into one run.

One Python process drives a server at most as fast as one core lets it parse streams; past that the client, not
the server, is measured (the run warns when its event loop lags or it uses most of a core). With N workers,
closed-loop concurrency and request counts are divided among them, and an open-loop rate r becomes N independent
arrival processes of rate r/N (for Poisson, the sum of independent Poisson processes is Poisson with the summed
rate). Every process stamps times with time.perf_counter(), which on Linux is CLOCK_MONOTONIC and shared by all
processes, so the merged records are on one clock and the percentiles are over every request."""

from __future__ import annotations

import multiprocessing
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from selfhost.bench.client import RequestRecord
from selfhost.bench.load import LoadSpec, LoadStats
from selfhost.bench.metrics import summarize
from selfhost.errors import UsageError
from selfhost.files import streamed_output
from selfhost.jsonout import dumps

__all__ = ["split_load", "run_workers"]


_IDS_PER_WORKER = 1 << 40  # request ids stay unique across workers (X-Request-Id is a UUID of the id)


def _share(total: int, n: int, i: int) -> int:
    return total // n + (1 if i < total % n else 0)


def split_load(load: LoadSpec, n: int, i: int) -> LoadSpec:
    """Worker i's part of the load (its own seed, so open-loop arrivals are independent)."""
    out = replace(load, seed=load.seed * 1000 + i, warmup=_share(load.warmup, n, i), first_id=i * _IDS_PER_WORKER)
    if load.concurrency is not None:
        out = replace(out, concurrency=_share(load.concurrency, n, i))
    if load.rate is not None:
        out = replace(out, rate=load.rate / n)
    if load.max_concurrency is not None:
        out = replace(out, max_concurrency=max(1, _share(load.max_concurrency, n, i)))
    if load.requests is not None:
        out = replace(out, requests=_share(load.requests, n, i))
    return out


def run_workers(cfg: Any, count_tokens: Callable[[str], int] | None = None) -> dict[str, Any]:
    from selfhost.bench.run import run_one_worker

    n = cfg.workers
    if cfg.trace_file is not None:
        raise UsageError("--workers does not split a trace yet", "replay a trace with one worker")
    if cfg.load.concurrency is not None and cfg.load.concurrency < n:
        raise UsageError(f"--workers {n} needs a concurrency of at least {n}, not {cfg.load.concurrency}")
    if cfg.load.requests is not None and cfg.load.requests < n:
        raise UsageError(f"--workers {n} needs at least {n} requests, not {cfg.load.requests}")
    with tempfile.TemporaryDirectory(prefix="selfhost-workers-", dir=cfg.records_path.parent or None) as tmp:
        shares = [
            replace(cfg, workers=1, load=split_load(cfg.load, n, i), records_path=Path(tmp) / f"worker{i}.jsonl")
            for i in range(n)
        ]
        # spawn: a fresh interpreter per worker, not a fork of this one with its event loop and threads
        with ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(run_one_worker, shares))
    records: list[RequestRecord] = sorted((r for _, rs, _ in results for r in rs), key=lambda r: r.scheduled_t)
    loads = [load for _, _, load in results]
    merged = LoadStats(
        started=min(x.started for x in loads),
        finished=max(x.finished for x in loads),
        loop_lag_s=[lag for x in loads for lag in x.loop_lag_s],
        cpu_s=max(x.cpu_s for x in loads),  # the busiest process: what says whether one client was saturated
        max_in_flight=sum(x.max_in_flight for x in loads),
    )
    summary = summarize(records, merged, cfg.slo)
    first = results[0][0]
    origin = records[0].scheduled_t if records else None
    with streamed_output(cfg.records_path) as out:
        for r in records:
            out.write(dumps(r.to_json(origin or 0.0)) + "\n")
    for key in ("target", "api", "model", "workload", "gpu_power"):
        summary[key] = first.get(key)
    summary["load"] = {**first["load"], **{k: getattr(cfg.load, k) for k in ("concurrency", "rate", "requests")}}
    summary["client"]["workers"] = n
    summary["client"]["cpu_fraction_of_one_core_per_worker"] = [round(x.client_cpu_fraction, 4) for x in loads]
    summary["records_path"] = str(cfg.records_path)
    summary["interrupted"] = any(s["interrupted"] for s, _, _ in results)
    summary["clock_origin_perf_counter"] = origin
    if count_tokens is not None:
        summary.setdefault("warnings", []).append(
            "--tokenizer is not used with --workers: tokens come from the server's usage (or one per chunk)"
        )
    return summary
