"""The sequential decision keeps its error rate across looks, on simulated paired outcomes with a known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from selfhost.evals.sequential import Interval, decide, difference_sequence, running_bounds

MAX_DROP = 0.05
LOOK_EVERY = 8
N = 320
RUNS = 200


def _paired(rng: np.random.Generator, n: int, ref_only: float, var_only: float) -> tuple[list[bool], list[bool]]:
    """Cases where both pass (0.65), both fail, or only one of them passes: true difference var_only − ref_only."""
    u = rng.random(n)
    ref = (u < 0.65) | ((u >= 0.65) & (u < 0.65 + ref_only))
    var = (u < 0.65) | ((u >= 0.65 + ref_only) & (u < 0.65 + ref_only + var_only))
    return [bool(v) for v in var], [bool(r) for r in ref]


def _stopped(bounds: list[Interval]) -> Interval:
    """A run that looks every LOOK_EVERY cases and stops at the first decisive look."""
    for i in range(LOOK_EVERY - 1, len(bounds), LOOK_EVERY):
        if decide(bounds[i], MAX_DROP) != "open":
            return bounds[i]
    return bounds[-1]


def _wald(var: list[bool], ref: list[bool]) -> list[Interval]:
    """The fixed-sample 95 % interval, recomputed at every look: what peeking at a plain interval does."""
    d = np.asarray(var, dtype=float) - np.asarray(ref, dtype=float)
    out = []
    for n in range(1, d.size + 1):
        m, sd = d[:n].mean(), d[:n].std(ddof=1) if n > 1 else 1.0
        half = 1.96 * max(sd, 1e-9) / math.sqrt(n)
        out.append(Interval(n, m - half, m + half, m))
    return out


@pytest.mark.parametrize(
    ("ref_only", "var_only"),
    [(0.05, 0.05), (0.08, 0.03), (0.12, 0.02), (0.02, 0.02)],
    ids=["equal", "at-the-margin", "worse", "rarely-different"],
)
def test_coverage_holds_across_looks(ref_only: float, var_only: float) -> None:
    truth = var_only - ref_only
    rng = np.random.default_rng(20261201)
    covered = covered_always = 0
    for _ in range(RUNS):
        var, ref = _paired(rng, N, ref_only, var_only)
        bounds = running_bounds(var, ref, alpha=0.05)
        stop = _stopped(bounds)
        covered += stop.low <= truth <= stop.high
        covered_always += all(b.low <= truth <= b.high for b in bounds)
    assert covered / RUNS >= 0.93  # at the look where the run stopped
    assert covered_always / RUNS >= 0.93  # and at every look at once, which is what makes stopping safe


def test_peeking_at_a_fixed_interval_breaks_it() -> None:
    """The same looks on the plain interval lose coverage at the margin, where an early stop is an error: the
    simulation can tell a valid procedure from an invalid one."""
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(RUNS):
        var, ref = _paired(rng, N, 0.08, 0.03)
        stop = _stopped(_wald(var, ref))
        covered += stop.low <= -0.05 <= stop.high
    assert covered / RUNS < 0.9


def test_decides_both_ways_and_stays_open_when_unsure() -> None:
    rng = np.random.default_rng(3)
    var, ref = _paired(rng, 400, 0.01, 0.01)  # nearly identical: non-inferior well before 400 cases
    bounds = running_bounds(var, ref)
    n_decided = next(b.n for b in bounds if decide(b, MAX_DROP) != "open")
    assert decide(bounds[n_decided - 1], MAX_DROP) == "non-inferior" and n_decided < 400
    var, ref = _paired(rng, 400, 0.3, 0.0)  # loses 30 points
    assert decide(difference_sequence(var, ref), MAX_DROP) == "worse"
    var, ref = _paired(rng, 24, 0.05, 0.05)
    assert decide(difference_sequence(var, ref), MAX_DROP) == "open"  # 24 cases cannot tell
    # Bounds only ever narrow, and always contain the observed difference.
    bounds = running_bounds(*_paired(rng, 200, 0.1, 0.05))
    assert all(a.low <= b.low and b.high <= a.high for a, b in zip(bounds, bounds[1:], strict=False))
    assert all(b.low <= b.difference <= b.high for b in bounds[10:])
