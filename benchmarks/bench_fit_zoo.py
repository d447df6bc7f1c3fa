"""fit on the architecture zoo at published widths: every component of fit's plan against llama.cpp's own buffers
and the process's resident memory, with hf-mem's prediction on the same files side by side.

Each zoo architecture (src/selfhost/fit/zoo_architectures.json) is built at its published model's widths with few
layers (random weights, transformers -> llama.cpp's convert_hf_to_gguf.py [-> llama-quantize]) and loaded by llama.cpp
in a fresh process at each setting (selfhost.fit.verify.verify_llamacpp: llama.cpp's logged buffers, RSS growth over
load + context + one full micro-batch of logits). fit's compute-buffer and tokenizer constants were fitted on SmolLM2
and Gemma 3 270M only: every row here is held out. The "dry run" column is what `fit` plans for a local GGUF on the
CPU: llama.cpp's own allocator asked without allocating (fit/dry_run.py); the "compute (formula)" column is what it
plans where no file is at hand (and what the total and RSS columns use).

Peer (benchmark-only dependency: `pip install hf-mem==0.5.6`): hf-mem's `parse_gguf_metadata` on the same local GGUF
(weights + KV cache; it has no compute or overhead term). llmfit is not run: it reads its own model database by
Hugging Face id, which would describe the full published model, not these few-layer files.

Run: .venv/bin/python benchmarks/bench_fit_zoo.py [--arch NAME ...] [--quant Q4_K_M]
Published builds take 20-150 s each and up to 3.8 GB of disk (cached under ~/.cache/selfhost/zoo).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from selfhost.fit import zoo
from selfhost.fit.kv import LlamaCppKVConfig
from selfhost.fit.verify import verify_llamacpp
from selfhost.models.gguf_spec import spec_from_gguf

MIB = 2**20
# (context, slots, KV type, flash attention): llama.cpp refuses a quantized V cache without flash attention
SETTINGS = [(4096, 1, "f16", True), (8192, 4, "q8_0", True), (4096, 2, "f16", False)]


def hf_mem_bytes(path: Path, ctx: int, kv_type: str) -> int | None:
    try:
        from hf_mem.gguf.metadata import parse_gguf_metadata
    except ImportError:
        return None
    with open(path, "rb") as f:
        head = f.read(16_000_000)
    try:
        m = parse_gguf_metadata(
            head, experimental=True, max_model_len=ctx, kv_cache_dtype=kv_type.upper(), batch_size=1
        )
    except RuntimeError:  # e.g. per-layer KV head counts (LFM2, Granite 4.0-H), which hf-mem does not read
        return None
    return int(m.bytes_count) + int(m.kv_cache.cache_size)


def _dry_run_error(path: Path, cfg: LlamaCppKVConfig, flash_attn: bool, actual: int) -> float:
    from selfhost.fit.dry_run import DryRun, llamacpp_dry_run

    dry = llamacpp_dry_run(path, cfg, flash_attn, None)  # in-process output rule, as verify_llamacpp loads it
    return (dry.compute_bytes - actual) / actual if isinstance(dry, DryRun) and actual else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", action="append", help="zoo architecture (repeatable; default: every attention one)")
    ap.add_argument("--quant", default=None, help="llama-quantize type for every file, e.g. Q4_K_M (default: F16)")
    args = ap.parse_args()
    names = args.arch or [a.name for a in zoo.architectures()]
    print(f"# fit vs llama.cpp at published widths, {args.quant or 'F16'}; error = (predicted - actual) / actual")
    print(
        "| architecture | copies | setting | weights | KV | compute (formula) | compute (dry run) | total buffers "
        "| RSS | hf-mem (weights+KV) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    errors: dict[str, list[float]] = {k: [] for k in ("weights", "KV", "compute", "dry run", "total", "RSS", "hf-mem")}
    for name in names:
        try:
            m = zoo.build(name, "published", quant=args.quant)
        except Exception as e:  # one architecture's failure is a row, not the end of the run
            print(f"| {name} | build failed: {e} |")
            continue
        spec = spec_from_gguf(m.path)
        a = zoo.architecture(name)
        for ctx, slots, kv, fa in SETTINGS:
            cfg = LlamaCppKVConfig(ctx, slots, kv, kv)
            try:
                r = verify_llamacpp(spec, cfg, fa)
            except Exception as e:
                print(f"| {name} | {a.copies} | ctx {ctx} np {slots} {kv} fa {'on' if fa else 'off'} | refused: {e} |")
                continue
            c = {x["component"]: x for x in r["checks"]}
            buffers = [x for k, x in c.items() if k != "process memory"]

            def err(pred: int, act: int) -> float:
                return (pred - act) / act if act else 0.0

            w_pred = sum(c[k]["predicted_bytes"] for k in ("model buffer", "cpu repack buffer") if k in c)
            w_act = sum(c[k]["actual_bytes"] for k in ("model buffer", "cpu repack buffer") if k in c)
            row = {
                "weights": err(w_pred, w_act),
                "KV": c["KV cache"]["error"] if "KV cache" in c else 0.0,  # Mamba has no attention layer
                "compute": c["compute buffer"]["error"],
                # what `fit` plans for a local GGUF: llama.cpp's allocator in a dry run (fit/dry_run.py)
                "dry run": _dry_run_error(m.path, cfg, fa, c["compute buffer"]["actual_bytes"]),
                "total": err(sum(x["predicted_bytes"] for x in buffers), sum(x["actual_bytes"] for x in buffers)),
                "RSS": c["process memory"]["error"],
            }
            peer = hf_mem_bytes(m.path, ctx * slots, kv)
            truth = w_act + (c["KV cache"]["actual_bytes"] if "KV cache" in c else 0)
            if peer is not None:
                row["hf-mem"] = err(peer, truth)
            for k, v in row.items():
                errors[k].append(abs(v))
            shown = ("weights", "KV", "compute", "dry run", "total", "RSS")
            cells = " | ".join(f"{row[k] * 100:+.1f} %" for k in shown)
            peer_cell = f"{row['hf-mem'] * 100:+.1f} %" if "hf-mem" in row else "n/a"
            setting = f"ctx {ctx} np {slots} {kv} fa {'on' if fa else 'off'}"
            print(f"| {name} | {a.copies} | {setting} | {cells} | {peer_cell} |", flush=True)
    print()
    for k, v in errors.items():
        if v:
            print(f"{k}: median |error| {statistics.median(v) * 100:.1f} %, worst {max(v) * 100:.1f} %, {len(v)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
