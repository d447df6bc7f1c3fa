"""One setting's goodput on a real llama-server (the embedded model): where the concurrency search starts, how it
steps, and which run's goodput counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from selfhost.plan.measure import MeasureSettings, bench_server, goodput_of_search
from selfhost.plan.space import Workload


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> Any:
    from selfhost.fit.run import FitOptions
    from selfhost.serve import run as serve

    tmp = tmp_path_factory.mktemp("measure")
    options = serve.ServeOptions(engine="llama-server", port=0, threads=2, log_path=tmp / "llama-server.log")
    launch = serve.prepare(str(smollm2_path), FitOptions(ctx=64, parallel=2), options)
    proc = serve.start(launch, 120)
    yield proc
    proc.stop()


def _settings(tmp_path: Path, slo: dict[str, float], max_concurrency: int) -> MeasureSettings:
    return MeasureSettings(slo, Workload(16, 4, None, 64), tmp_path, max_concurrency, requests_per_level=4)


def test_the_search_starts_at_the_slots_and_confirms_its_best_level(server: Any, tmp_path: Path) -> None:
    """A loose SLO: every level passes, so from 2 (the slots) the search doubles to the limit, 4, and confirms 4 with
    a larger run (3 × a screening run, at least 5 waves); goodput is the confirming run's."""
    settings = _settings(tmp_path, {"ttft_p99": 60.0, "tpot_p99": 10.0}, 4)
    search = bench_server(server.url, settings, None, tmp_path, start_level=2)
    levels = [(r["level"], bool(r.get("confirmation")), r["requests"]["total"]) for r in search["runs"]]
    assert levels == [(2, False, 4), (4, False, 8), (4, True, 20)]
    goodput, best = goodput_of_search(search)
    assert best is search["runs"][-1] and goodput == best["goodput_requests_per_s"] > 0


def test_a_failing_start_is_halved_down_to_one(server: Any, tmp_path: Path) -> None:
    """An SLO no request can meet (TTFT under a microsecond): the search halves from 4 to 1, confirms nothing, and
    the goodput is 0."""
    settings = _settings(tmp_path, {"ttft_p99": 1e-6}, 8)
    search = bench_server(server.url, settings, None, tmp_path, start_level=4)
    assert [r["level"] for r in search["runs"]] == [1, 2, 4]  # sorted by level
    assert not any(r.get("confirmation") for r in search["runs"])
    assert goodput_of_search(search) == (0.0, None)


def _run(level: int, passed: bool, goodput: float, confirmation: bool = False) -> dict[str, Any]:
    return {
        "level": level,
        "slo_met": passed,
        "requests": {"failed": 0},
        "goodput_requests_per_s": goodput,
        "confirmation": confirmation,
    }


def test_goodput_is_the_confirmed_level_not_the_luckiest_screening_run() -> None:
    screening = [_run(4, True, 1.9), _run(6, True, 2.3), _run(8, False, 0.0)]
    # 6 passed its screening by luck: its confirmation missed the SLO, 4's met it
    search = {"runs": [*screening, _run(6, False, 1.4, True), _run(4, True, 1.8, True)]}
    assert goodput_of_search(search)[0] == 1.8
    # both confirmations missed: the best screening run below the lowest level that failed to confirm
    search = {"runs": [*screening, _run(6, False, 1.4, True), _run(4, False, 1.2, True)]}
    assert goodput_of_search(search)[0] == 0.0
    search = {"runs": [_run(2, True, 1.1), *screening, _run(6, False, 1.4, True), _run(4, False, 1.2, True)]}
    assert goodput_of_search(search)[0] == 1.1
    # a trace's replays have no confirmation: the best passing run
    assert goodput_of_search({"runs": screening})[0] == 2.3
