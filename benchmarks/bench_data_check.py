"""`selfhost data check` on 52,002 Alpaca-format rows (the size of the Stanford Alpaca set), synthesised here
with planted exact and near duplicates, near-duplicate detection included. Prints seconds and rows/s.

Run: .venv/bin/python benchmarks/bench_data_check.py [--rows 52002]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from selfhost.data.check import check_dataset

VERBS = "explain describe list compare summarize translate classify rewrite outline define".split()
NOUNS = (
    "photosynthesis gravity inflation democracy recursion volcanoes tides enzymes sonnets bridges glaciers "
    "vaccines markets orbits algorithms rainforests"
).split()
WORDS = (
    "the a of in and to with for on by from about into over under between during without within across "
    "energy system process structure value change effect result example method model data form"
).split()


def synth(n: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    for i in range(n):
        if i > 100 and i % 50 == 0:  # 2 % exact duplicates
            rows.append(dict(rows[rng.randrange(len(rows))]))
            continue
        if i > 100 and i % 50 == 25:  # 2 % near duplicates
            r = dict(rows[rng.randrange(len(rows))])
            r["output"] = r["output"] + " Indeed."
            rows.append(r)
            continue
        rows.append(
            {
                "instruction": f"{rng.choice(VERBS).capitalize()} {rng.choice(NOUNS)} for task {i}.",
                "input": "" if rng.random() < 0.6 else " ".join(rng.choice(WORDS) for _ in range(12)),
                "output": " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60))) + ".",
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=52002)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "alpaca.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in synth(args.rows)) + "\n")
        t = time.perf_counter()
        report = check_dataset(path)
        dt = time.perf_counter() - t
    counts = report.counts
    print(
        f"{report.rows} rows checked in {dt:.1f} s ({report.rows / dt:,.0f} rows/s); "
        f"exact duplicates {counts.get('exact_duplicate', 0)}, near duplicates {counts.get('near_duplicate', 0)}, "
        f"clusters {len(report.clusters)}; target ≤ 30 s"
    )


if __name__ == "__main__":
    main()
