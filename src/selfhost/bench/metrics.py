"""Summaries of a run's request records: percentiles, throughput, failures by class, client warnings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from selfhost.bench.client import ERROR_CLASSES, RequestRecord
from selfhost.bench.load import LoadStats

__all__ = ["stats", "summarize"]


def stats(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "mean": None, "max": None, "n": 0}
    a = np.asarray(values, dtype=float)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "mean": float(a.mean()),
        "max": float(a.max()),
        "n": int(a.size),
    }


def summarize(records: Sequence[RequestRecord], load: LoadStats, slo: dict[str, float] | None = None) -> dict[str, Any]:
    measured = [r for r in records if not r.warmup]
    ok = [r for r in measured if r.ok]
    failed = Counter(r.status for r in measured if not r.ok)
    # Throughput over the measured window: first scheduled send to last byte.
    if measured:
        start = min(r.scheduled_t for r in measured)
        end = max(r.end_t for r in measured)
        window = max(end - start, 1e-9)
    else:
        window = load.wall_s or 1e-9
    out_tokens = sum(r.output_tokens or 0 for r in ok)
    sources = Counter(r.tokens_source for r in ok)
    lag = stats(load.loop_lag_s)
    warnings = []
    lag_p99 = lag["p99"] or 0.0
    if lag_p99 > 0.010:
        warnings.append(f"client event-loop lag p99 {lag_p99 * 1000:.1f} ms: the client may be the bottleneck")
    if load.client_cpu_fraction > 0.8:
        warnings.append(f"client used {load.client_cpu_fraction * 100:.0f} % of a core: it may be the bottleneck")
    summary: dict[str, Any] = {
        "requests": {
            "completed": len(ok),
            "failed": sum(failed.values()),
            "failed_by_class": {c: failed.get(c, 0) for c in ERROR_CLASSES},
            "total": len(measured),
            "warmup": len(records) - len(measured),
            "reconnects": sum(r.reconnects for r in measured),
        },
        "ttft_s": stats([r.ttft_s for r in ok if r.ttft_s is not None]),
        "ttfat_s": stats([r.ttfat_s for r in ok if r.ttfat_s is not None]),
        "itl_s": stats([g for r in ok for g in r.itl_s()]),
        "tpot_s": stats([r.tpot_s for r in ok if r.tpot_s is not None]),
        "e2e_s": stats([r.e2e_s for r in ok]),
        "queue_s": stats([r.queue_s for r in measured]),
        "output_tokens_per_s": out_tokens / window,
        "requests_per_s": len(ok) / window,
        "output_tokens": out_tokens,
        "input_tokens": sum(r.prompt_tokens or 0 for r in ok),
        "input_tokens_per_s": sum(r.prompt_tokens or 0 for r in ok) / window,
        "tokens_source": dict(sources),
        "window_s": window,
        "latency_percentiles_exclude_failures": True,
        "client": {
            "event_loop_lag_s": lag,
            "cpu_fraction_of_one_core": load.client_cpu_fraction,
            "max_in_flight": load.max_in_flight,
        },
        "warnings": warnings,
    }
    if slo:
        good = [r for r in ok if all(_meets(r, k, v) for k, v in slo.items())]
        summary["goodput_requests_per_s"] = len(good) / window
        summary["slo"] = dict(slo)
        summary["slo_met"] = all(_pct_ok(summary, k, v) for k, v in slo.items())
    return summary


def _meets(r: RequestRecord, key: str, bound: float) -> bool:
    metric = key.split("_p")[0]
    value = {"ttft": r.ttft_s, "tpot": r.tpot_s, "e2e": r.e2e_s}.get(metric)
    return value is not None and value <= bound


def _pct_ok(summary: dict[str, Any], key: str, bound: float) -> bool:
    metric, _, pct = key.partition("_p")
    v = summary.get(f"{metric}_s", {}).get(f"p{pct or '99'}")
    return v is not None and v <= bound
