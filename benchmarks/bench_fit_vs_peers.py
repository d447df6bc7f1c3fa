"""Memory predictions of selfhost, hf-mem and llmfit against llama.cpp's own numbers, side by side.

Truth: the buffers llama.cpp reports when it loads each embedded model at the given context (model,
KV cache, compute, output), and the process's measured RSS growth (fresh process, one full micro-batch).
Peers (benchmark-only dependencies: `pip install hf-mem==0.5.6 llmfit==1.1.17`):
  * hf-mem 0.5.6: `hf_mem.gguf.metadata.parse_gguf_metadata` on the local GGUF (its CLI needs the Hub);
    weights + KV, no overhead term.
  * llmfit 1.1.17: `llmfit plan <hf id> --context N --quant Q4_K_M --kv-quant fp16 --json`;
    its `minimum.vram_gb` and the fp16 `kv_cache_gb` (its built-in model database, not the file).
Run: .venv/bin/python benchmarks/bench_fit_vs_peers.py
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Any

from selfhost.backends.llamacpp_log import MIB
from selfhost.fit.compute import llamacpp_compute_bytes, llamacpp_output_bytes
from selfhost.fit.kv import LlamaCppKVConfig, llamacpp_kv
from selfhost.fit.verify import measure_llamacpp, predicted_process_bytes
from selfhost.fit.weights import cpu_repack_bytes
from selfhost.models.embedded import available_embedded
from selfhost.models.gguf_spec import spec_from_gguf

GIB = 1024**3
HF_IDS = {"smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct", "gemma3-270m": "google/gemma-3-270m-it"}
CONTEXTS = (2048, 4096, 8192)


def hf_mem(path: Path, ctx: int) -> tuple[int, int] | None:
    try:
        from hf_mem.gguf.metadata import parse_gguf_metadata
    except ImportError:
        return None
    with open(path, "rb") as f:
        m = parse_gguf_metadata(
            f.read(16_000_000), experimental=True, max_model_len=ctx, kv_cache_dtype="F16", batch_size=1
        )
    return int(m.bytes_count), int(m.kv_cache.cache_size)


def llmfit(hf_id: str, ctx: int) -> tuple[int, int] | None:
    exe = shutil.which("llmfit") or str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "llmfit")
    if not Path(exe).exists():
        return None
    r = subprocess.run(
        [
            exe,
            "plan",
            hf_id,
            "--context",
            str(ctx),
            "--quant",
            "Q4_K_M",
            "--kv-quant",
            "fp16",
            "--json",
            "--no-dashboard",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": "/tmp/selfhost-bench-llmfit", "PATH": "/usr/bin:/bin"},
    )
    if r.returncode != 0:
        return None
    d: Any = json.loads(r.stdout)
    kv = next(a["kv_cache_gb"] for a in d["kv_alternatives"] if a["kv_quant"] == "fp16")
    return int(d["minimum"]["vram_gb"] * GIB), int(kv * GIB)


def err(pred: float, truth: float) -> float:
    return (pred - truth) / truth


def main() -> None:
    rows = []
    print(
        f"{'model':13} {'ctx':>5} {'truth KV MiB':>12} {'selfhost':>9} {'hf-mem':>8} {'llmfit':>8}   "
        f"{'truth total MiB':>15} {'RSS MiB':>8} {'selfhost':>9} {'hf-mem':>8} {'llmfit':>8}"
    )
    for name, path in available_embedded().items():
        spec = spec_from_gguf(path)
        for ctx in CONTEXTS:
            cfg = LlamaCppKVConfig(ctx)
            rep, rss, _ = measure_llamacpp(path, cfg)
            truth_kv = rep.kv_mib * MIB
            truth_total = (rep.model_mib + rep.kv_mib + rep.compute_mib + rep.output_mib) * MIB
            ours_kv = llamacpp_kv(spec, cfg).bytes
            ours_total = (
                (spec.weights_bytes or 0)
                + cpu_repack_bytes(spec)
                + ours_kv
                + llamacpp_compute_bytes(spec, cfg)
                + llamacpp_output_bytes(spec, 1)
            )
            hm, lf = hf_mem(path, ctx), llmfit(HF_IDS[name], ctx)
            row = {
                "model": name,
                "ctx": ctx,
                "kv": {"selfhost": err(ours_kv, truth_kv)},
                "total": {"selfhost": err(ours_total, truth_total)},
                "rss": {"selfhost": err(predicted_process_bytes(spec, cfg), rss)},
            }
            if hm:
                row["kv"]["hf-mem"] = err(hm[1], truth_kv)
                row["total"]["hf-mem"] = err(sum(hm), truth_total)
            if lf:
                row["kv"]["llmfit"] = err(lf[1], truth_kv)
                row["total"]["llmfit"] = err(lf[0], truth_total)
            rows.append(row)

            def pct(d: dict[str, float], k: str) -> str:
                return f"{d[k] * 100:+.1f}%" if k in d else "n/a"

            print(
                f"{name:13} {ctx:5} {truth_kv / MIB:12.2f} {pct(row['kv'], 'selfhost'):>9} "
                f"{pct(row['kv'], 'hf-mem'):>8} {pct(row['kv'], 'llmfit'):>8}   {truth_total / MIB:15.2f} "
                f"{rss / MIB:8.1f} {pct(row['total'], 'selfhost'):>9} {pct(row['total'], 'hf-mem'):>8} "
                f"{pct(row['total'], 'llmfit'):>8}"
            )
    print()
    for part in ("kv", "total"):
        med = {
            tool: statistics.median(abs(r[part][tool]) for r in rows if tool in r[part])
            for tool in ("selfhost", "hf-mem", "llmfit")
            if any(tool in r[part] for r in rows)
        }
        ours = med["selfhost"]
        summary = ", ".join(
            f"{t} {m * 100:.2f}%" + (f" ({m / ours:.0f}x selfhost)" if t != "selfhost" and ours else "")
            for t, m in med.items()
        )
        print(f"median |error| of {part:5} vs llama.cpp: {summary}")
    rss = statistics.median(abs(r["rss"]["selfhost"]) for r in rows)
    print(f"median |error| of selfhost's process-memory prediction vs measured RSS: {rss * 100:.2f}%")


if __name__ == "__main__":
    main()
