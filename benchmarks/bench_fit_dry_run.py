"""fit's compute buffer from llama.cpp's own allocator in a dry run (fit/dry_run.py) against what a real llama-server
logs when it starts, with fit's formula beside it, on the embedded models and every zoo architecture at the small
width. Also the time each takes: the dry run (a child process that reads the file's metadata and reserves the
graphs without allocating) against llama-server's start up to its /health answer (which loads the weights).

Each row: one model, one setting (context per slot, slots, flash attention, ubatch), llama-server's -lv 4 log read
by selfhost's log parser. One run of the script; times are single measurements per row, summarized by their median.

Run: .venv/bin/python benchmarks/bench_fit_dry_run.py [--arch NAME ...]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

MIB = 2**20
# (context per slot, slots, flash attention, ubatch)
SETTINGS = [(2048, 1, True, 512), (1024, 4, False, 512), (2048, 2, True, 128)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", action="append", help="zoo architectures (default: all) at the small width")
    args = ap.parse_args()

    from selfhost.errors import BackendError
    from selfhost.fit import dry_run, zoo
    from selfhost.fit.run import FitOptions
    from selfhost.models.embedded import available_embedded
    from selfhost.serve import run as serve

    models: dict[str, Path] = {f"{name} (embedded)": path for name, path in available_embedded().items()}
    built = zoo.build_many(args.arch or [a.name for a in zoo.architectures()], "small")
    for name, m in built.items():
        if isinstance(m, BackendError):
            print(f"{name}: not built ({m})")
            continue
        models[name] = m.path

    rows = []
    header = "model | ctx/slot | slots | fa | ub | llama-server logged | dry run | formula | formula error | dry run s"
    print(f"| {header} | server start s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        for name, path in models.items():
            for ctx, slots, fa, ub in SETTINGS:
                dry_run._cache.clear()
                fit = FitOptions(ctx=ctx, parallel=slots, flash_attn=fa, ubatch=ub)
                t = time.perf_counter()
                launch = serve.prepare(
                    str(path), fit, serve.ServeOptions(engine="llama-server", port=0, log_path=Path(d) / "server.log")
                )
                dry_s = time.perf_counter() - t
                t = time.perf_counter()
                proc = serve.start(launch, 120)
                start_s = time.perf_counter() - t
                try:
                    checks = {c["component"]: c for c in serve.started_report(launch, proc.url)["from_log"]["checks"]}
                finally:
                    proc.stop()
                logged = checks["compute buffer"]["actual_bytes"]
                plan = launch.plan
                formula = plan.detail["compute_formula_bytes"]
                exact = abs(plan.compute_bytes - logged) <= 0.01 * MIB
                rows.append((exact, (formula - logged) / logged, dry_s, start_s, plan.detail["compute_source"]))
                print(
                    f"| {name} | {ctx} | {slots} | {'on' if fa else 'off'} | {ub} | {logged / MIB:.2f} MiB | "
                    f"{plan.compute_bytes / MIB:.2f} MiB{'' if exact else ' (differs)'} | {formula / MIB:.2f} MiB | "
                    f"{(formula - logged) / logged:+.1%} | {dry_s:.2f} | {start_s:.2f} |",
                    flush=True,
                )
    n = len(rows)
    exact = sum(r[0] for r in rows)
    errors = sorted(abs(r[1]) for r in rows)
    print(f"\ndry run equal to llama-server's logged compute buffer (to the log's 0.01 MiB): {exact} of {n} rows")
    print(
        f"formula: within 5 % on {sum(e <= 0.05 for e in errors)} of {n} rows, median |error| "
        f"{statistics.median(errors):.1%}, worst {max(errors):.1%}"
    )
    print(
        f"time: dry run median {statistics.median(r[2] for r in rows):.2f} s (fit's plan included), llama-server "
        f"start median {statistics.median(r[3] for r in rows):.2f} s"
    )


if __name__ == "__main__":
    main()
