"""Parsing what `selfhost bench` is told to sweep: comma lists of levels, and SLO targets."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from selfhost.errors import UsageError

__all__ = ["parse_levels", "parse_slo", "SLO_TARGETS"]

SLO_TARGETS = frozenset(f"{m}_p{p}" for m in ("ttft", "tpot", "e2e") for p in (50, 90, 99))


def parse_levels(text: str | None, conv: Callable[[str], Any], option: str, lo: float, hi: float) -> list[Any]:
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


def parse_slo(text: str | None) -> dict[str, float] | None:
    """`ttft_p99=1.0,tpot_p99=0.1` → {"ttft_p99": 1.0, "tpot_p99": 0.1} (seconds)."""
    if not text:
        return None
    out = {}
    for part in text.split(","):
        k, _, v = part.partition("=")
        k = k.strip()
        if k not in SLO_TARGETS:
            raise UsageError(f"--slo: unknown target {k!r}", "use e.g. ttft_p99=1.0,tpot_p99=0.1 (seconds)")
        try:
            seconds = float(v)
        except ValueError:
            raise UsageError(f"--slo {k}={v!r}: not a number of seconds", "e.g. ttft_p99=1.0") from None
        if not (math.isfinite(seconds) and seconds > 0):
            raise UsageError(f"--slo {k}={v}: must be a positive number of seconds")
        out[k] = seconds
    return out
