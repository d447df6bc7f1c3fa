"""`selfhost bench compare A.json B.json …`: saved `bench --json` results side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selfhost.errors import UsageError
from selfhost.files import read_json
from selfhost.report.section import Section

__all__ = ["compare_results", "compare_section"]

_METRICS = [("ttft_s", "p50"), ("ttft_s", "p99"), ("itl_s", "p50"), ("tpot_s", "p50"), ("e2e_s", "p50")]


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def compare_results(paths: list[Path]) -> dict[str, Any]:
    if len(paths) < 2:
        raise UsageError("bench compare needs two or more saved --json results")
    runs = []
    for p in paths:
        r = read_json(p)
        if not isinstance(r, dict) or not isinstance(r.get("ttft_s"), dict):
            raise UsageError(f"{p}: not a saved `selfhost bench --json` result of one run (no ttft_s)")
        runs.append(r)
    rows = {
        f"{m} {p}": [_number((r.get(m) or {}).get(p)) if isinstance(r.get(m), dict) else None for r in runs]
        for m, p in _METRICS
    }
    rows["requests_per_s"] = [_number(r.get("requests_per_s")) for r in runs]
    rows["output_tokens_per_s"] = [_number(r.get("output_tokens_per_s")) for r in runs]
    return {"files": [str(p) for p in paths], "metrics": rows}


def compare_section(result: dict[str, Any]) -> Section:
    names = [Path(p).name for p in result["files"]]
    rows = [(k, "  |  ".join("-" if v is None else f"{v:.4g}" for v in vs)) for k, vs in result["metrics"].items()]
    return Section("bench_compare", "compare: " + " vs ".join(names), result, rows)
