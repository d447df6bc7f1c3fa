"""`bench --workers N`: the load split over client processes, every request in one merged run on one clock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfhost.bench.load import LoadSpec
from selfhost.bench.workers import split_load
from tests.cli.test_info_cli import run
from tests.helpers import mock_server_process


def test_split_load_shares_add_up() -> None:
    load = LoadSpec(concurrency=7, requests=101, warmup=5, seed=3)
    parts = [split_load(load, 3, i) for i in range(3)]
    assert sum(p.concurrency or 0 for p in parts) == 7 and sum(p.requests or 0 for p in parts) == 101
    assert sum(p.warmup for p in parts) == 5 and len({p.seed for p in parts}) == 3
    assert len({p.first_id for p in parts}) == 3
    open_loop = [split_load(LoadSpec(concurrency=None, rate=30.0, requests=90), 3, i) for i in range(3)]
    assert [p.rate for p in open_loop] == [10.0, 10.0, 10.0]


@pytest.mark.parametrize("load", [["--concurrency", "8"], ["--rate", "100"]])
def test_two_workers_merge_into_one_run(tmp_path: Path, load: list[str]) -> None:
    with mock_server_process("--ttft", "0.05", "--itl", "0.002", "--output-tokens", "16") as url:
        r = run(
            "bench", url, *load, "--requests", "120", "--workers", "2", "--records", str(tmp_path / "r.jsonl"), "--json"
        )
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["requests"]["completed"] == 120 and s["client"]["workers"] == 2
    lines = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert len(lines) == 120 and len({x["id"] for x in lines}) == 120
    assert s["ttft_s"]["p50"] == pytest.approx(0.05, abs=0.005)  # the mock's TTFT, seen through both processes
    assert s["output_tokens_per_s"] > 0 and s["load"]["requests"] == 120
