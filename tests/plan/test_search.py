"""The adaptive search on landscapes with a known optimum: it must get close to the best point of the whole grid
while measuring a third of it at most, never measure a point twice or one the rules forbid, and stop on time."""

from __future__ import annotations

import random

import pytest

from selfhost.plan.search import coordinate_search
from selfhost.plan.space import grid, label, llama_server_knobs, llama_server_rule

KNOBS = llama_server_knobs(["Q8_0", "Q4_K_M"], [1, 2, 4, 8], threads=[1, 2])


def _landscape(rng: random.Random):  # type: ignore[no-untyped-def]
    """Goodput = a product of per-knob effects and a random pairwise interaction between slots and threads (more
    slots help less with fewer threads), times ±3 % noise: the shape of a real server's response."""
    effect = {name: {v: rng.uniform(0.6, 1.0) for v in values} for name, values in KNOBS.items()}
    peak = rng.choice(KNOBS["parallel"])
    for v in KNOBS["parallel"]:  # goodput rises to a peak number of slots and falls after it
        effect["parallel"][v] = 1.0 / (1 + 0.3 * abs(v.bit_length() - peak.bit_length()))
    inter = {(p, t): rng.uniform(0.85, 1.0) for p in KNOBS["parallel"] for t in KNOBS["threads"]}

    def value(c: dict, noise: bool = True) -> float:  # type: ignore[type-arg]
        v = inter[(c["parallel"], c["threads"])]
        for name in KNOBS:
            v *= effect[name][c[name]]
        return v * (rng.uniform(0.97, 1.03) if noise else 1.0)

    return value


def test_finds_near_the_grid_best_measuring_a_third_at_most() -> None:
    allowed_points = [c for c in grid(KNOBS) if llama_server_rule(c) is None]
    limit = len(grid(KNOBS)) // 3
    ratios = []
    for seed in range(300):
        value = _landscape(random.Random(seed))
        calls: list[str] = []

        def measure(c: dict, calls: list = calls, value=value) -> float:  # type: ignore[type-arg]  # noqa: ANN001
            calls.append(label(c))
            return value(c)

        start = {"parallel": 4, "variant": "Q8_0", "threads": 2, "flash_attn": True, "kv_type": "f16", "ubatch": 512}
        r = coordinate_search(
            KNOBS, start, measure, allowed=lambda c: llama_server_rule(c) is None, max_measurements=limit
        )
        assert len(calls) == len(set(calls)) <= limit  # never twice, never more than a third of the grid
        assert all(llama_server_rule(dict(c)) is None for c, _ in r.measured)
        best = max(value(c, noise=False) for c in allowed_points)
        ratios.append(value(r.best, noise=False) / best)
    ratios.sort()
    assert ratios[len(ratios) // 2] >= 0.99  # median
    assert sum(x >= 0.95 for x in ratios) / len(ratios) >= 0.9, ratios[:10]


def test_a_point_the_rules_forbid_is_never_measured() -> None:
    seen = []
    start = {"parallel": 1, "variant": "Q8_0", "threads": 1, "flash_attn": True, "kv_type": "q8_0", "ubatch": 128}
    # no-fa scores highest, but with a q8_0 V cache llama.cpp refuses it
    coordinate_search(
        KNOBS,
        start,
        lambda c: seen.append(c) or (2.0 if not c["flash_attn"] else 1.0),  # type: ignore[func-returns-value]
        allowed=lambda c: llama_server_rule(c) is None,
    )
    assert seen and all(llama_server_rule(c) is None for c in seen)
    assert any(not c["flash_attn"] and c["kv_type"] == "f16" for c in seen)


def test_stops_when_out_of_time_and_keeps_the_best_so_far() -> None:
    n = []

    def measure(c: dict) -> float:  # type: ignore[type-arg]
        n.append(c)
        return float(c["parallel"])

    start = {"parallel": 1, "variant": "Q8_0", "threads": 1, "flash_attn": True, "kv_type": "f16", "ubatch": 128}
    r = coordinate_search(KNOBS, start, measure, out_of_time=lambda: len(n) >= 3)
    assert len(n) == 3 and r.stopped_by == "budget" and r.best["parallel"] == 4 and r.best_value == 4.0


def test_a_forbidden_start_is_refused() -> None:
    start = {"parallel": 1, "variant": "Q8_0", "threads": 1, "flash_attn": False, "kv_type": "q8_0", "ubatch": 128}
    with pytest.raises(ValueError):
        coordinate_search(KNOBS, start, lambda c: 1.0, allowed=lambda c: llama_server_rule(c) is None)
