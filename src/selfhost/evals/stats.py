"""Statistics for pass rates: Wilson intervals for one rate, paired bootstrap for a difference."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["wilson", "paired_bootstrap"]


def wilson(passes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = passes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def paired_bootstrap(
    variant: Sequence[float], reference: Sequence[float], resamples: int = 4000, seed: int = 0, level: float = 0.95
) -> dict[str, float]:
    """Difference in pass rate (variant − reference) over the same cases, with a percentile bootstrap CI that
    resamples cases, keeping each case's pair together."""
    v = np.asarray(variant, dtype=float)
    r = np.asarray(reference, dtype=float)
    if v.size != r.size or v.size == 0:
        raise ValueError("paired bootstrap needs the same, non-empty set of cases")
    d = v - r
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(resamples, d.size))
    means = d[idx].mean(axis=1)
    lo, hi = np.percentile(means, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return {"difference": float(d.mean()), "ci_low": float(lo), "ci_high": float(hi), "level": level}
