"""Measure this machine's memory bandwidth (the decode-speed ceiling for CPU inference)."""

from __future__ import annotations

import statistics
import time

import numpy as np

__all__ = ["measure_memory_bandwidth"]


def measure_memory_bandwidth(n_bytes: int = 256 * 1024 * 1024, repeat: int = 5) -> float:
    """Bytes per second of a large array copy (read + write counted), median of `repeat` runs."""
    src = np.ones(n_bytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in before timing
    rates = []
    for _ in range(repeat):
        t = time.perf_counter()
        np.copyto(dst, src)
        rates.append(2 * src.nbytes / (time.perf_counter() - t))
    return float(statistics.median(rates))
