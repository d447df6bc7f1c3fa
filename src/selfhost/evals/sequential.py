"""Deciding a variant as cases come in: an always-valid confidence sequence for the paired difference in pass rate.

A fixed-size interval is valid only if it is looked at once; stopping at the first look where it happens to be
decisive makes its error rate grow with the number of looks. A confidence sequence holds at every look at once:
P(for all n, the true difference lies in CS_n) ≥ 1 − alpha, so a run may look after every case and stop as soon as
it is decisive.

The construction is the hedged capital process with predictable plug-in bets of Waudby-Smith & Ramdas,
"Estimating means of bounded random variables by betting", JRSS-B 86(1), 2024 (arXiv:2010.09686), Theorem 3 and
eq. (26)-(27), applied to x = (variant − reference + 1) / 2 ∈ [0, 1] for each paired case."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Interval", "running_bounds", "difference_sequence", "decide"]

_GRID = np.linspace(0.0, 1.0, 1001)[1:-1]  # candidate means of x, (0, 1) exclusive: bounds to 0.002 in difference
_TRUNCATION = 0.75  # c in the paper (it uses 1/2 or 3/4): a bet never risks more than 3/4 of the capital


@dataclass(frozen=True)
class Interval:
    """The confidence sequence of (variant pass rate − reference pass rate) after n paired cases, as the running
    intersection of every look so far."""

    n: int
    low: float
    high: float
    difference: float


def _bets(x: np.ndarray, alpha: float) -> np.ndarray:
    """λ_t from the cases before t only (predictable): the plug-in of eq. (26) with the paper's priors 1/2, 1/4."""
    t = np.arange(1, x.size + 1, dtype=np.float64)
    mean = (0.5 + np.cumsum(x)) / (t + 1)
    var = (0.25 + np.cumsum((x - mean) ** 2)) / (t + 1)
    var_before = np.concatenate(([0.25], var[:-1]))
    return np.sqrt(2 * math.log(2 / alpha) / (var_before * t * np.log(1 + t)))


def _log_capital(x: np.ndarray, alpha: float) -> np.ndarray:
    """log K_t(m) for every t (rows) and candidate m (columns): max of the two one-sided processes, each with half
    of the capital (θ = 1/2)."""
    lam = _bets(x, alpha)[:, None]
    m = _GRID[None, :]
    up = np.log1p(np.minimum(lam, _TRUNCATION / m) * (x[:, None] - m))
    down = np.log1p(-np.minimum(lam, _TRUNCATION / (1 - m)) * (x[:, None] - m))
    return np.maximum(np.cumsum(up, axis=0), np.cumsum(down, axis=0)) + math.log(0.5)


def running_bounds(variant: Sequence[bool], reference: Sequence[bool], alpha: float = 0.05) -> list[Interval]:
    """The (1 − alpha) confidence sequence for the difference in pass rate after each prefix of these paired cases:
    element n−1 is the interval after n cases (the running intersection of the looks before it)."""
    if len(variant) != len(reference):
        raise ValueError("paired outcomes need the same cases for both")
    if not variant:
        return []
    d = np.asarray(variant, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    x = (d + 1) / 2
    inside = _log_capital(x, alpha) < math.log(1 / alpha)  # [t, m]: m not rejected after t + 1 cases
    any_kept = inside.any(axis=1)
    first = np.where(any_kept, _GRID[np.argmax(inside, axis=1)], 0.0)
    last = np.where(any_kept, _GRID[inside.shape[1] - 1 - np.argmax(inside[:, ::-1], axis=1)], 1.0)
    low, high = np.maximum.accumulate(first), np.minimum.accumulate(last)
    means = np.cumsum(d) / np.arange(1, d.size + 1)
    out = []
    for lo, hi, mean in zip(low, high, means, strict=True):
        lo, hi = min(lo, hi), max(lo, hi)  # all m rejected (only by chance): an empty sequence kept as a point
        out.append(Interval(len(out) + 1, float(2 * lo - 1), float(2 * hi - 1), float(mean)))
    return out


def difference_sequence(variant: Sequence[bool], reference: Sequence[bool], alpha: float = 0.05) -> Interval:
    """The confidence sequence after all of these paired cases, in the order they were run."""
    found = running_bounds(variant, reference, alpha)
    return found[-1] if found else Interval(0, -1.0, 1.0, 0.0)


def decide(interval: Interval, max_drop: float) -> str:
    """'non-inferior' when the whole sequence is above −max_drop, 'worse' when it is entirely below, else 'open'."""
    if interval.low >= -max_drop:
        return "non-inferior"
    if interval.high < -max_drop:
        return "worse"
    return "open"
