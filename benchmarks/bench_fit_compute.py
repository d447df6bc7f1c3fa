"""fit's compute-buffer formula (fit/compute.py) against llama.cpp's own allocator, at published widths, on every
zoo architecture and a grid of settings; training rows marked, the rest held out.

Truth: llama.cpp's dry run (model params no_alloc, the mode its `--fit` uses; selfhost.backends.llamacpp_probe),
which sizes every buffer with the allocator a real load uses. It equals llama-server's logged compute buffer on
63 of 63 rows at the small width and a real load's on 12 of 12 at published widths (benchmarks/RESULTS.md,
tests/fit/test_dry_run.py). The files are shape-only zoo builds (selfhost.fit.zoo, shape_only=True): a published
model's header and tensor table with the weights left as holes, so every architecture at its published width costs
seconds and no disk. tests/fit/test_zoo_shapes.py checks that such a header equals a real build's.

Grid (32 settings per model): n_ctx 4096 and 32768; 1 and 4 sequences; ubatch 512 and 2048; flash attention on and
off; outputs as llama-cpp-python reserves them (every token of the micro-batch) and as llama-server does (one per
slot). F16 KV. Error = (formula − allocator) / allocator.

Training rows (constants or rows of the formula were read off them): the embedded SmolLM2 and Gemma 3 270M (the
logits and attention terms), Mistral-7B and Llama-2-7B (the attention term's Q, K, V rows), Mixtral-8x7B (the
mixture-of-experts rows: each expert a token uses computes its own gate, up and product). Every other row is held out.

Then the offline catalog's models (selfhost.models.catalog), each built from its published config values as
`fit --shape-dry-run` builds it (fit/config_dry_run.py: 8 layers for the compute buffer), and with every layer to
check fit's KV rules against llama.cpp's KV buffer at 4 settings. Held out, but for two entries with a training
model's widths (CATALOG_SEEN).

Deterministic (the allocator's sizes do not vary run to run); the times are one run.

Run: .venv/bin/python benchmarks/bench_fit_compute.py [--arch NAME ...] [--rows]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path

MIB = 2**20
TRAINING = {"smollm2-135m", "gemma3-270m", "mistral-7b", "llama2-7b", "mixtral-8x7b"}
# catalog entries that are (nearly) a training model: Mixtral-8x7B-Instruct has Mixtral-8x7B's widths, Mistral-7B v0.3
# Mistral-7B v0.1's but for a 768 tokens larger vocabulary
CATALOG_SEEN = {"mixtral-8x7b", "mistral-7b-v0.3"}
GRID = list(itertools.product([4096, 32768], [1, 4], [512, 2048], [True, False], ["in-process", "llama-server"]))


def _summary(errors: list[float]) -> str:
    if not errors:
        return "no rows"
    within = sum(abs(e) <= 5 for e in errors)
    mags = sorted(abs(e) for e in errors)
    worst = max(errors, key=abs)
    p90 = mags[min(len(mags) - 1, int(0.9 * len(mags)))]
    return (
        f"within 5 %: {within} of {len(errors)}; median |error| {statistics.median(mags):.1f} %, "
        f"90th percentile {p90:.1f} %, worst {worst:+.1f} %"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", action="append", help="zoo architectures (default: every one llama.cpp supports)")
    ap.add_argument("--rows", action="store_true", help="print every row outside 5 %")
    ap.add_argument("--no-catalog", action="store_true", help="leave out the catalog's models")
    args = ap.parse_args()

    from selfhost.backends.llamacpp_probe import llamacpp_probe
    from selfhost.errors import BackendError
    from selfhost.fit import zoo
    from selfhost.fit.compute import llamacpp_compute_bytes
    from selfhost.fit.kv import LlamaCppKVConfig
    from selfhost.models.embedded import available_embedded
    from selfhost.models.resolve import resolve_model

    names = args.arch or [a.name for a in zoo.architectures() if a.supported_by_llama_cpp]
    t0 = time.perf_counter()
    built = zoo.build_many(names, "published", shape_only=True)
    build_s = time.perf_counter() - t0
    models: dict[str, Path] = {} if args.arch else dict(available_embedded())
    for name, m in built.items():
        if isinstance(m, BackendError):
            print(f"{name}: not built ({m})")
            continue
        models[name] = m.path
    print(f"shape-only builds: {len(built)} in {build_s:.1f} s (reused ones take 0 s)\n")

    print("| model | set | rows within 5 % | median abs error | worst | worst setting |")
    print("|---|---|---|---|---|---|")
    held: list[float] = []
    trained: list[float] = []
    by_kind: dict[str, list[float]] = {}
    outside: list[str] = []
    t0 = time.perf_counter()
    for name, path in models.items():
        spec = resolve_model(str(path))
        errors: list[tuple[float, str]] = []
        with llamacpp_probe(path, dry_run=True) as probe:
            for n_ctx, seqs, ub, fa, outputs in GRID:
                cfg = LlamaCppKVConfig(n_ctx=n_ctx, n_parallel=seqs, n_ubatch=ub)
                n_out = seqs if outputs == "llama-server" else None
                truth = probe.context_report(cfg, fa, n_outputs_max=n_out).compute_mib * MIB
                formula = llamacpp_compute_bytes(spec, cfg, fa, n_out)
                err = (formula - truth) / truth * 100
                where = f"n_ctx {n_ctx} seqs {seqs} ub {ub} fa {'on' if fa else 'off'} {outputs}"
                errors.append((err, where))
                by_kind.setdefault(f"flash attention {'on' if fa else 'off'}, {outputs} outputs", []).append(err)
                if abs(err) > 5:
                    outside.append(f"{name}: {where}: {formula / MIB:.1f} MiB vs {truth / MIB:.1f} ({err:+.1f} %)")
        train = name in TRAINING
        (trained if train else held).extend(e for e, _ in errors)
        worst = max(errors, key=lambda e: abs(e[0]))
        within = sum(abs(e) <= 5 for e, _ in errors)
        mags = [abs(e) for e, _ in errors]
        print(
            f"| {name} | {'training' if train else 'held out'} | {within} of {len(errors)} | "
            f"{statistics.median(mags):.1f} % | {worst[0]:+.1f} % | {worst[1]} |"
        )
    catalog: list[float] = []
    catalog_rows = _catalog(args.arch is not None or args.no_catalog, catalog)
    dry_s = time.perf_counter() - t0
    print()
    print(f"- held out: {_summary(held)}")
    print(f"- training: {_summary(trained)}")
    for kind, errs in sorted(by_kind.items()):
        print(f"- {kind} (the zoo's rows, training ones too): {_summary(errs)}")
    if catalog:
        print(f"- the catalog's models (held out): {_summary(catalog)}")
        print(f"- zoo and catalog, held out: {_summary(held + catalog)}")
    n_runs = len(models) * len(GRID) + catalog_rows
    print(f"- {n_runs} dry runs in {dry_s:.1f} s (the catalog's shape-only builds included)")
    if args.rows:
        print("\nrows outside 5 %:")
        for line in outside:
            print(f"  {line}")


def _catalog(skip: bool, out: list[float]) -> int:
    """The offline catalog's models (selfhost.models.catalog: published config values), each built from its config as
    fit --shape-dry-run builds it (fit/config_dry_run.py, 8 layers) for the compute buffer, and with every layer for
    the KV cache, which fit's rules must size exactly. Held out but for CATALOG_SEEN. Returns the dry runs made."""
    if skip:
        return 0
    from selfhost.fit.compute import llamacpp_compute_bytes
    from selfhost.fit.config_dry_run import config_gguf
    from selfhost.fit.dry_run import DryRun, llamacpp_dry_run
    from selfhost.fit.kv import LlamaCppKVConfig, llamacpp_kv
    from selfhost.models.catalog import catalog_entries
    from selfhost.models.resolve import resolve_model

    print("\nThe catalog's models, from their configs (held out):\n")
    print("| model | set | compute rows within 5 % | median abs error | worst | worst setting | KV (every layer) |")
    print("|---|---|---|---|---|---|---|")
    made = 0
    for entry in catalog_entries():
        spec = resolve_model(entry.name)
        if "hf_config" not in spec.extra:
            continue  # an embedded model: its GGUF is above
        path = config_gguf(spec)
        full = config_gguf(spec, layers=spec.n_layers)
        if isinstance(path, str) or isinstance(full, str):
            print(f"| {entry.name} | not built: {path if isinstance(path, str) else full} |  |  |  |  |  |")
            continue
        errors: list[tuple[float, str]] = []
        kv_errors: list[float] = []
        for n_ctx, seqs, ub, fa, outputs in GRID:
            cfg = LlamaCppKVConfig(n_ctx=n_ctx, n_parallel=seqs, n_ubatch=ub)
            n_out = seqs if outputs == "llama-server" else None
            dry = llamacpp_dry_run(path, cfg, fa, n_out)
            made += 1
            if not isinstance(dry, DryRun):
                print(f"| {entry.name} | dry run failed: {dry} |  |  |  |  |  |")
                break
            formula = llamacpp_compute_bytes(spec, cfg, fa, n_out)
            err = (formula - dry.compute_bytes) / dry.compute_bytes * 100
            errors.append((err, f"n_ctx {n_ctx} seqs {seqs} ub {ub} fa {'on' if fa else 'off'} {outputs}"))
            if fa and outputs == "llama-server" and ub == 512:  # the KV cache does not depend on the rest
                kv = llamacpp_dry_run(full, cfg, fa, n_out)
                made += 1
                if isinstance(kv, DryRun) and kv.kv_cache_bytes:
                    kv_errors.append((llamacpp_kv(spec, cfg).bytes - kv.kv_cache_bytes) / kv.kv_cache_bytes * 100)
        if not errors:
            continue
        if entry.name not in CATALOG_SEEN:
            out.extend(e for e, _ in errors)
        worst = max(errors, key=lambda e: abs(e[0]))
        within = sum(abs(e) <= 5 for e, _ in errors)
        kv_worst = f"worst {max(kv_errors, key=abs):+.2f} % ({len(kv_errors)} settings)" if kv_errors else "n/a"
        seen = "as training" if entry.name in CATALOG_SEEN else "held out"
        median = statistics.median(abs(e) for e, _ in errors)
        print(
            f"| {entry.name} | {seen} | {within} of {len(errors)} | {median:.1f} % | "
            f"{worst[0]:+.1f} % | {worst[1]} | {kv_worst} |"
        )
    return made


if __name__ == "__main__":
    main()
