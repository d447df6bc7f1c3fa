"""How long `selfhost quant` takes to a decided recommendation with its defaults, and how much of the suite it
needed: the embedded model, the 510-case built-in suite, Q8_0 and the K-quants made fresh in an empty --out.

The comparison is the work a fixed-size procedure would do for the same decision: every case of the suite on the
reference and on every variant the KL divergence gate lets through (a count from the same run's variants, not a
second run).

Run: .venv/bin/python benchmarks/bench_quant_decides.py [--budget-minutes M]
Prints the wall time, the recommendation and whether every variant was decided, one row per variant (decision,
cases it took, the look at which it was decided overall, pass rate, the 95 % confidence sequence of its difference
to F16), each category of every variant that ran (its verdict at the 10-point category margin), which variants
passed each category, and the generation counts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget-minutes", type=float, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, "-m", "selfhost", "quant", "--out", str(Path(d) / "quant"), "--json"]
        if args.budget_minutes is not None:
            cmd += ["--budget-minutes", str(args.budget_minutes)]
        start = time.perf_counter()
        got = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        seconds = time.perf_counter() - start
        generations = sum(1 for _ in open(Path(d) / "quant" / "items.jsonl"))
    print(f"{seconds / 60:.2f} min (one run), recommended {got['recommended']}, all decided: {got['decided']}")
    print(f"{'variant':8} {'decision':13} {'cases':>5} {'pass':>6} {'Δ vs F16 [95% CS]':>24}  KLD p99")
    for v in got["variants"]:
        d = v["difference_vs_reference"]
        shown = f"{d['difference']:+6.1%} [{d['ci_low']:+6.1%}, {d['ci_high']:+6.1%}]" if v["cases_run"] else "-"
        rate = f"{v['pass_rate']:6.1%}" if v["pass_rate"] is not None else "     -"
        print(f"{v['name']:8} {v['decision']:13} {v['cases_run']:5} {rate} {shown:>24}  {v['kld_p99']:.3f}")
    print(
        "overall verdict after (cases): "
        + ", ".join(
            f"{v['name']} {v['overall_decided_after_cases']}"
            for v in got["variants"][1:]
            if v["overall_decided_after_cases"]
        )
    )
    for v in got["variants"][1:]:
        for cat, c in v["pass_rate_by_category"].items():
            lo, hi = c["interval"]
            print(
                f"  {v['name']:8} {cat:13} {c['cases']:3} cases  {c['pass_rate']:6.1%} vs "
                f"{c['reference_pass_rate']:6.1%}  [{lo:+6.1%}, {hi:+6.1%}]  {c['decision']}"
            )
    print(
        "by category: "
        + "; ".join(
            f"{cat}: " + ", ".join(f"{k} {' '.join(n)}" for k, n in verdicts.items() if n)
            for cat, verdicts in got["by_category"].items()
        )
    )
    gated = [v for v in got["variants"] if v["kld_p99"] is None or v["kld_p99"] <= got["gates"]["max_kld_p99"]]
    fixed = got["suite_cases"] * len(gated)
    print(
        f"generations: {generations}; the whole suite on the {len(gated)} variants the KLD gate passes: {fixed} "
        f"({generations / fixed:.2f}x)"
    )


if __name__ == "__main__":
    main()
