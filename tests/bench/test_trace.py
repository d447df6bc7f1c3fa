"""Replaying a recorded trace (Mooncake format) against the mock: arrivals at the trace's own times, prompts that
keep the trace's shared prefixes, exact output lengths."""

from __future__ import annotations

import json
import random
import statistics
from collections.abc import Callable
from pathlib import Path

import pytest

from selfhost.bench.run import BenchConfig, run_bench
from selfhost.bench.workload import trace_prompts
from selfhost.errors import UsageError
from tests.cli.test_info_cli import _one_line_error, run
from tests.helpers import timing_test

MS = 1e-3


def write_trace(path: Path, n: int = 40, span_ms: int = 1000, seed: int = 0) -> list[dict]:  # type: ignore[type-arg]
    rng = random.Random(seed)
    rows = [
        {
            "timestamp": rng.randrange(span_ms),
            "input_length": rng.randrange(20, 200),
            "output_length": rng.randrange(1, 12),
            "hash_ids": [0, rng.randrange(1, 4)],  # one block every request shares, then one of three
        }
        for _ in range(n)
    ]
    rows[0]["timestamp"] = 0
    rows[1]["timestamp"] = span_ms
    rng.shuffle(rows)  # a trace need not be sorted
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return sorted(rows, key=lambda r: r["timestamp"])


def test_trace_prompts_keep_times_lengths_and_shared_prefixes(tmp_path: Path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text(
        '{"timestamp": 2500, "input_length": 30, "output_length": 5, "hash_ids": [7, 8]}\n'
        '{"timestamp": 1000, "input_length": 30, "output_length": 9, "hash_ids": [7, 9]}\n'
        '{"timestamp": 1000, "prompt": "hello there", "output_length": 3}\n'
        '{"timestamp": 4000, "input_length": 12, "output_length": 2}\n'
    )
    prompts, offsets = trace_prompts(f, block_size=10)
    assert offsets == [0.0, 0.0, 1.5, 3.0]  # milliseconds → seconds from the first arrival; stable for ties
    assert [p.max_tokens for p in prompts] == [9, 3, 5, 2]
    a, b = str(prompts[0].content).split(), str(prompts[2].content).split()
    assert len(a) == len(b) == 30 and a[:10] == b[:10] and a[10:20] != b[10:20]  # block 7 shared, then not
    assert prompts[1].content == "hello there" and len(str(prompts[3].content).split()) == 12
    assert trace_prompts(f, block_size=10, speedup=2.0)[1] == [0.0, 0.0, 0.75, 1.5]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"timestamp": 0, "input_length": 3, "output_length": 1}\n{"input_length": 3, "output_length": 1}\n')
    with pytest.raises(UsageError, match=rf"{bad}:2: no 'timestamp'"):
        trace_prompts(bad)


@timing_test()
def test_replay_sends_at_the_trace_times(mock_server: Callable[..., str], tmp_path: Path) -> None:
    url = mock_server("--ttft", "0.01", "--itl", "0.002")
    rows = write_trace(tmp_path / "trace.jsonl")
    out = tmp_path / "r.jsonl"
    s = run_bench(BenchConfig(url=url, trace_file=tmp_path / "trace.jsonl", records_path=out))
    assert s["requests"]["completed"] == len(rows) and s["requests"]["failed"] == 0
    assert s["load"]["trace"]["requests"] == len(rows) and s["load"]["trace"]["span_s"] == pytest.approx(1.0)
    recs = sorted((json.loads(x) for x in out.read_text().splitlines()), key=lambda r: r["id"])
    sent = [r["sent_t"] - recs[0]["sent_t"] for r in recs]
    want = [(r["timestamp"] - rows[0]["timestamp"]) * MS for r in rows]
    errors = [abs(a - b) for a, b in zip(sent, want, strict=True)]
    assert statistics.median(errors) < 1 * MS and max(errors) < 5 * MS
    assert [r["output_tokens"] for r in recs] == [r["output_length"] for r in rows]  # exact output lengths

    fast = run_bench(BenchConfig(url=url, trace_file=tmp_path / "trace.jsonl", trace_speedup=4.0, records_path=out))
    sent = sorted(json.loads(x)["sent_t"] for x in out.read_text().splitlines())
    assert fast["load"]["trace"]["span_s"] == pytest.approx(0.25) and sent[-1] - sent[0] == pytest.approx(
        0.25, abs=5 * MS
    )


def test_trace_cli(mock_server: Callable[..., str], tmp_path: Path) -> None:
    url = mock_server("--ttft", "0", "--itl", "0")
    write_trace(tmp_path / "t.jsonl", n=10, span_ms=100)
    r = run("bench", url, "--trace", str(tmp_path / "t.jsonl"), "--records", str(tmp_path / "r.jsonl"), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["requests"]["completed"] == 10
    assert "a trace sets its own arrivals" in _one_line_error(
        run("bench", url, "--trace", str(tmp_path / "t.jsonl"), "--rate", "5")
    )
