"""What `bench --workers N` gains: the highest sustained requests/s selfhost's client drives against a no-op
server (`selfhost mock-server --ttft 0 --itl 0 --output-tokens 4`), 128 requests in flight, with 1 and with 2
client processes, alternated over several rounds in one run; prints the medians and their ratio.

On a 2-core machine the mock server shares the cores with the clients, so the ratio here is a floor: the gain
is for servers on other machines (or with cores to spare).
Run: .venv/bin/python benchmarks/bench_workers.py [--rounds 3] [--requests 4000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from selfhost.bench.load import LoadSpec
from selfhost.bench.run import BenchConfig, run_bench


@contextmanager
def mock(*args: str) -> Iterator[str]:
    p = subprocess.Popen(
        [sys.executable, "-m", "selfhost", "mock-server", "--port", "0", *args], stdout=subprocess.PIPE, text=True
    )
    assert p.stdout is not None
    url = p.stdout.readline().split()[-1]
    try:
        yield url
    finally:
        p.terminate()
        p.wait(10)
        p.stdout.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--concurrency", type=int, default=128)
    a = ap.parse_args()
    rates: dict[int, list[float]] = {1: [], 2: []}
    cpu: dict[int, list[float]] = {1: [], 2: []}
    with mock("--ttft", "0", "--itl", "0", "--output-tokens", "4") as url, tempfile.TemporaryDirectory() as tmp:
        base = BenchConfig(
            url=url,
            model="mock",
            load=LoadSpec(concurrency=a.concurrency, requests=a.requests),
            input_tokens=8,
            output_tokens=4,
            records_path=Path(tmp) / "r.jsonl",
        )
        for rnd in range(a.rounds):
            for workers in (1, 2) if rnd % 2 == 0 else (2, 1):
                s = run_bench(replace(base, workers=workers))
                assert s["requests"]["failed"] == 0, s["requests"]
                rates[workers].append(s["requests_per_s"])
                cpu[workers].append(s["client"]["cpu_fraction_of_one_core"])
                print(f"round {rnd + 1}, {workers} worker(s): {s['requests_per_s']:.0f} req/s", flush=True)
    m1, m2 = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"\nmedian of {a.rounds} rounds, {a.requests} requests at concurrency {a.concurrency} each:")
    print(f"  1 worker : {m1:.0f} req/s (client busiest-process CPU {statistics.median(cpu[1]):.0%} of a core)")
    print(f"  2 workers: {m2:.0f} req/s (client busiest-process CPU {statistics.median(cpu[2]):.0%} of a core)")
    print(f"  ratio 2/1: {m2 / m1:.2f}x")


if __name__ == "__main__":
    main()
