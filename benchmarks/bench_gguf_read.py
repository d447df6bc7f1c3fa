"""Opening a GGUF for its facts: selfhost's header reader vs the gguf package's GGUFReader, side by side.

Run: .venv/bin/python benchmarks/bench_gguf_read.py [--repeat N]
Prints the median seconds of each and the ratio (GGUFReader / selfhost) per embedded model.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gguf

from selfhost.models.embedded import available_embedded
from selfhost.models.gguf_spec import spec_from_gguf


def median_s(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"{'model':16} {'selfhost s':>11} {'GGUFReader s':>13} {'ratio':>7}")
    for name, path in available_embedded().items():
        ours = median_s(lambda p=path: spec_from_gguf(p), args.repeat)
        theirs = median_s(lambda p=path: gguf.GGUFReader(p), args.repeat)
        print(f"{name:16} {ours:11.4f} {theirs:13.4f} {theirs / ours:6.0f}x")


if __name__ == "__main__":
    main()
