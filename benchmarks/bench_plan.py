"""Does `selfhost plan` choose well while measuring little? The embedded model on llama-server, one workload and
SLO, three things measured in one run on the same machine:

1. `selfhost plan` with its defaults (15-minute budget, at most a third of the grid measured);
2. the full grid, every setting llama.cpp accepts measured once by the same goodput search;
3. llama-server's own default launch (`llama-server -m MODEL`: its default slots, threads, context and batch).

4. the grid's best settings (`--confirm-top`, 3) and the plan's choice measured again, `--confirm-runs` (3) times
   each, interleaved: the best of 48 single noisy runs is biased upward, so the like-for-like comparison is
   median against median.

Prints the plan's choice, how many settings it measured out of the grid, the full grid's best, and the ratios:
the choice's goodput in the grid pass ÷ the grid's best, the choice's median ÷ the best median of the grid's top
settings measured again (the issue asks ≥ 95 %), and the choice ÷ the default launch. The whole script is one run.
Goodput (plan/measure.py): requests/s meeting every SLO target in the confirming run of the highest concurrency that
passed the search (from the setting's slots, doubling or halving, then bisecting to a whole number of requests, at
most 16); every run of a search sends prompts the server has not seen before.

Run: .venv/bin/python benchmarks/bench_plan.py [--slo ttft_p99=2,tpot_p99=0.1] [--skip-grid] [--save F | --from F]
(--from F: steps 1-3 from an earlier run's saved results, step 4 measured now)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slo", default="ttft_p99=2.0,tpot_p99=0.1")
    ap.add_argument("--input-tokens", type=int, default=128)
    ap.add_argument("--output-tokens", type=int, default=32)
    ap.add_argument("--skip-grid", action="store_true")
    ap.add_argument("--confirm-top", type=int, default=3, help="the grid's best settings measured again")
    ap.add_argument("--confirm-runs", type=int, default=3, help="how many times each is measured again")
    ap.add_argument(
        "--save",
        type=Path,
        default=Path(tempfile.gettempdir()) / "selfhost-bench_plan.json",
        help="where steps 1-3's results are written, for --from",
    )
    ap.add_argument("--from", dest="from_file", type=Path, help="reuse steps 1-3 from a --save file: only step 4")
    args = ap.parse_args()

    from selfhost.backends.tokenizer import token_counter
    from selfhost.bench.levels import parse_slo
    from selfhost.models.embedded import embedded_path
    from selfhost.plan.measure import MeasureSettings
    from selfhost.plan.run import PlanOptions, _ctx
    from selfhost.plan.space import Workload

    model = str(embedded_path())
    with tempfile.TemporaryDirectory() as d:
        out = Path(d)
        o = PlanOptions(input_tokens=args.input_tokens, output_tokens=args.output_tokens)
        workload = Workload(o.input_tokens, o.output_tokens, None, _ctx(o.input_tokens + o.output_tokens))
        settings = MeasureSettings(parse_slo(args.slo) or {}, workload, out / "grid")
        count = token_counter(model)
        if args.from_file:
            saved = json.loads(args.from_file.read_text())
            print(f"steps 1-3 from {args.from_file} ({saved['when']})")
        else:
            saved = _plan_default_grid(args, model, settings, count, out)
            saved["when"] = time.strftime("%Y-%m-%d %H:%M")
            args.save.write_text(json.dumps(saved, indent=1))
        if saved.get("grid"):
            _confirm(args, saved, model, settings, count)


def _plan_default_grid(args: argparse.Namespace, model: str, settings: Any, count: Any, out: Path) -> dict[str, Any]:
    from selfhost.backends.server import EngineProcess, free_port
    from selfhost.plan.measure import bench_server, goodput_of_search, measure_config
    from selfhost.plan.space import grid, label, llama_server_knobs, llama_server_rule
    from selfhost.serve.engines import find_llama_server

    cmd = [sys.executable, "-m", "selfhost", "plan", "--slo", args.slo, "--out", str(out / "plan"), "--json"]
    cmd += ["--input-tokens", str(args.input_tokens), "--output-tokens", str(args.output_tokens)]
    t = time.perf_counter()
    card = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    plan_s = time.perf_counter() - t
    chosen = card["decision"]
    s = card["search"]
    print(
        f"plan: {plan_s / 60:.1f} min, measured {s['measured_settings']} of {s['grid_size']} settings "
        f"({s['pruned_without_measuring']} pruned unmeasured), stopped: {s['stopped_by']}"
    )
    g = chosen["goodput_requests_per_s"]
    print(
        f"plan chose: {chosen['label']}: {g['median']:.3f} req/s (range {g['low']:.3f}-{g['high']:.3f}, "
        f"{len(g['runs'])} runs)"
    )
    saved: dict[str, Any] = {"plan": {"label": chosen["label"], "config": chosen["config"], "goodput": g}}

    port = free_port("127.0.0.1")
    argv = [find_llama_server(), "-m", model, "--host", "127.0.0.1", "--port", str(port)]
    proc = EngineProcess(argv, host="127.0.0.1", port=port, log_path=out / "default.log").start(120)
    try:
        default, _ = goodput_of_search(bench_server(proc.url, settings, count, out / "default"))
    finally:
        proc.stop()
    saved["default"] = default
    print(f"llama-server's default launch: {default:.3f} req/s")
    print(f"plan's choice / default launch: {g['median'] / default:.2f}x" if default else "default met no SLO")

    if args.skip_grid:
        return saved
    knobs = llama_server_knobs([chosen["config"]["variant"]], [1, 2, 4, 8])
    points = [c for c in grid(knobs) if llama_server_rule(c) is None]
    t = time.perf_counter()
    results: dict[str, float] = {}
    for i, c in enumerate(points):
        m = measure_config(c, model, settings, count)
        results[label(c)] = m["goodput_requests_per_s"]
        print(f"  grid {i + 1:2}/{len(points)} {label(c):32} {m['goodput_requests_per_s']:.3f}", flush=True)
    best_label = max(results, key=lambda k: results[k])
    in_grid = results[chosen["label"]]
    print(
        f"full grid: {len(points)} settings measured once in {(time.perf_counter() - t) / 60:.1f} min; "
        f"best {best_label}: {results[best_label]:.3f} req/s"
    )
    print(
        f"plan's choice in the grid pass: {in_grid:.3f} req/s = {in_grid / results[best_label]:.1%} of the "
        f"grid's best; measured {s['measured_settings']}/{s['grid_size']} = "
        f"{s['measured_settings'] / s['grid_size']:.0%} of the grid"
    )
    ranked = sorted(results.values(), reverse=True)
    print(f"the choice ranks {ranked.index(in_grid) + 1} of {len(ranked)} in the grid pass")
    saved["grid"] = results
    saved["grid_configs"] = {label(c): c for c in points}
    return saved


def _confirm(args: argparse.Namespace, saved: dict[str, Any], model: str, settings: Any, count: Any) -> None:
    """The best of 48 single noisy runs is biased upward (winner's curse): measure the grid's best settings and the
    plan's choice again, the same number of times each, interleaved, and compare medians."""
    from selfhost.plan.measure import measure_config

    results, configs, chosen = saved["grid"], saved["grid_configs"], saved["plan"]["label"]
    top = sorted(results, key=lambda k: results[k], reverse=True)[: args.confirm_top]
    candidates = {k: configs[k] for k in dict.fromkeys([*top, chosen])}
    again: dict[str, list[float]] = {k: [] for k in candidates}
    t = time.perf_counter()
    for run in range(1, args.confirm_runs + 1):
        for k, c in candidates.items():
            again[k].append(measure_config(c, model, settings, count, run)["goodput_requests_per_s"])
            print(f"  again {run}/{args.confirm_runs} {k:32} {again[k][-1]:.3f}", flush=True)
    medians = {k: statistics.median(v) for k, v in again.items()}
    for k, v in again.items():
        tag = " (plan's choice)" if k == chosen else ""
        runs = ", ".join(f"{x:.3f}" for x in v)
        print(f"  {k:32} grid pass {results[k]:.3f}; again: {runs}; median {medians[k]:.3f}{tag}")
    best_again = max(top, key=lambda k: medians[k])
    ratio = medians[chosen] / medians[best_again] if medians[best_again] else float("nan")
    print(
        f"measured again ({args.confirm_runs} runs each, interleaved, {(time.perf_counter() - t) / 60:.1f} min): "
        f"the best of the grid's top {len(top)} is {best_again} at {medians[best_again]:.3f} req/s (median); "
        f"plan's choice {medians[chosen]:.3f} = {ratio:.1%} of it"
    )


if __name__ == "__main__":
    main()
