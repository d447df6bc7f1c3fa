"""Adaptive search over a grid of settings: coordinate ascent from a starting point, one knob at a time.

Why this and not successive halving: each measurement here is a whole goodput search on a freshly started engine
(tens of seconds), and the knobs of an inference server mostly act separately (slots set the batch, threads the
per-token speed, flash attention and the KV type the attention cost). Varying one knob at a time from the best
point so far finds the best setting of each in len(values) - 1 measurements, and a second pass catches the
interactions that move an optimum; successive halving would measure every point at least once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SearchResult", "coordinate_search"]

Point = tuple[tuple[str, Any], ...]


def point(values: Mapping[str, Any]) -> Point:
    return tuple(sorted(values.items()))


@dataclass
class SearchResult:
    best: dict[str, Any]
    best_value: float
    measured: list[tuple[dict[str, Any], float]] = field(default_factory=list)  # in the order they were measured
    stopped_by: str = "converged"  # "converged", "budget" or "max_measurements"


def coordinate_search(
    knobs: Mapping[str, Sequence[Any]],
    start: Mapping[str, Any],
    measure: Callable[[dict[str, Any]], float],
    *,
    allowed: Callable[[dict[str, Any]], bool] = lambda _: True,
    max_measurements: int | None = None,
    out_of_time: Callable[[], bool] = lambda: False,
    min_gain: float = 0.02,
    max_passes: int = 3,
) -> SearchResult:
    """The best point found by varying one knob at a time (in the order of KNOBS) from START, moving to a
    neighbour only when it beats the current point by more than MIN_GAIN (relative), until a whole pass moves
    nothing. Points that ALLOWED rejects are never measured; no point is measured twice."""
    seen: dict[Point, float] = {}
    result = SearchResult(dict(start), float("-inf"))

    def run(p: dict[str, Any]) -> float | None:
        key = point(p)
        if key in seen:
            return seen[key]
        if max_measurements is not None and len(seen) >= max_measurements:
            result.stopped_by = "max_measurements"
            return None
        if seen and out_of_time():
            result.stopped_by = "budget"
            return None
        value = measure(dict(p))
        seen[key] = value
        result.measured.append((dict(p), value))
        return value

    current = dict(start)
    first = run(current) if allowed(current) else None
    if first is None:
        raise ValueError("the starting point is not allowed")
    best_value = first
    for _ in range(max_passes):
        moved = False
        for name, values in knobs.items():
            for v in values:
                if v == current[name]:
                    continue
                for candidate in _moves(knobs, current, name, v, allowed):
                    value = run(candidate)
                    if value is None:
                        result.best, result.best_value = current, best_value
                        return result
                    if value > best_value * (1 + min_gain) or (best_value <= 0 < value):
                        current, best_value, moved = candidate, value, True
        if not moved:
            break
    result.best, result.best_value = current, best_value
    return result


def _moves(
    knobs: Mapping[str, Sequence[Any]],
    current: dict[str, Any],
    name: str,
    value: Any,
    allowed: Callable[[dict[str, Any]], bool],
) -> list[dict[str, Any]]:
    """Setting NAME to VALUE; when the rules forbid that alone (a quantized V cache without flash attention), the
    allowed points that also change one other knob, so a rule never walls the search off from a corner."""
    one = current | {name: value}
    if allowed(one):
        return [one]
    return [
        one | {other: w}
        for other, values in knobs.items()
        if other != name
        for w in values
        if w != current[other] and allowed(one | {other: w})
    ]
