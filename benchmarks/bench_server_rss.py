"""llama-server's peak resident memory against fit's plan for it: the process term fitted on the embedded models,
held out on the zoo's architectures (small width, F16, and Q4_K_M for a few; default: all of them).

Each model is started by `selfhost serve --engine llama-server` with fit's command line (per-slot context, slots,
flash attention, KV type), gets one prompt that fills one slot's context (ctx/slot - 8 tokens, 4 generated, no prompt
cache), and its peak resident memory (VmHWM, /proc/PID/status) is read. fit's plan for that launch is split into
llama.cpp's buffers (mapped weights, CPU_REPACK, KV, compute, output, tokenizer vocabulary), the CPU work buffer
(fit.cpu_work, read from ggml's source), llama-server's context checkpoints of the sliding-window state (read from its
source) and the process term (fit.server_process). The process term's two numbers (a constant and bytes per vocabulary
token) are refitted here, by least squares on the residual peak - buffers - work - checkpoints, from the training
models only (SmolLM2-135M and Gemma 3 270M, the models every other fit constant came from), and
the error of the full plan is reported on the held-out zoo rows.

Run: .venv/bin/python benchmarks/bench_server_rss.py [--arch NAME ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import urllib.request
from pathlib import Path

from selfhost.errors import UsageError
from selfhost.fit import zoo
from selfhost.fit.run import FitOptions
from selfhost.fit.server_process import LLAMA_SERVER_BASE_BYTES, LLAMA_SERVER_BYTES_PER_TOKEN
from selfhost.models.embedded import embedded_path
from selfhost.models.gguf_spec import spec_from_gguf
from selfhost.serve import run as serve
from selfhost.serve.run import ServeOptions

MIB = 2**20
TRAINING = ("smollm2-135m", "gemma3-270m")
QUANTIZED = ("llama-1b", "mistral-7b", "qwen3moe-30b-a3b", "gpt-oss-20b")
# (context per slot, slots, flash attention, KV type)
SETTINGS = [(2048, 1, True, "f16"), (2048, 1, False, "f16"), (1024, 2, False, "f16"), (1024, 2, True, "q8_0")]


def _peak(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def _post(url: str, payload: dict) -> dict:  # type: ignore[type-arg]
    req = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=600).read())  # type: ignore[no-any-return]


def _models(archs: list[str]) -> list[tuple[str, Path]]:
    out = [(name, embedded_path(name)) for name in TRAINING]
    for name in archs:
        path = zoo.build(name, "small").path
        out.append((name, path))
        if name in QUANTIZED:
            q = path.with_name(path.stem + "-q4_k_m.gguf")
            if not q.exists():
                zoo._quantize(path, q, "Q4_K_M", keep_mxfp4_experts=zoo.architecture(name).mxfp4_experts)
            out.append((name + " Q4_K_M", q))
    return out


def _measure(name: str, path: Path, logs: Path) -> list[dict]:  # type: ignore[type-arg]
    rows = []
    n_tokens = spec_from_gguf(path).vocab_size
    for ctx, slots, fa, kv in SETTINGS:
        options = ServeOptions(engine="llama-server", port=0, log_path=logs / "llama-server.log")
        try:
            launch = serve.prepare(str(path), FitOptions(ctx=ctx, parallel=slots, flash_attn=fa, kv_type=kv), options)
        except UsageError as e:  # e.g. q8_0 rows on a head size that is not a multiple of 32
            print(f"  skipped {name} {ctx}x{slots} {kv}: {e}")
            continue
        proc = serve.start(launch, 120)
        try:
            assert proc.proc is not None
            token = _post(proc.url + "/tokenize", {"content": "hello"})["tokens"][-1]
            _post(proc.url + "/completion", {"prompt": [token] * (ctx - 8), "n_predict": 4, "cache_prompt": False})
            peak = _peak(proc.proc.pid)
        finally:
            proc.stop()
        host = launch.plan.per_device[0].components
        work, process = host["cpu_work"], host["llama_server_process"]
        checkpoints = host.get("context_checkpoints", 0)
        buffers = launch.plan.total_bytes - work - process - checkpoints
        rows.append(
            {"model": name, "ctx": ctx, "slots": slots, "fa": fa, "kv": kv, "vocab": n_tokens, "peak": peak}
            | {"buffers": buffers, "work": work, "checkpoints": checkpoints, "process": process}
        )
    return rows


def _fit(training: list[dict]) -> tuple[float, float]:  # type: ignore[type-arg]
    """Least squares of residual = base + per_token × vocab over the training rows."""
    xs = [r["vocab"] for r in training]
    ys = [r["peak"] - r["buffers"] - r["work"] - r["checkpoints"] for r in training]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - slope * mx, slope


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    attention = [a.name for a in zoo.architectures()]
    parser.add_argument("--arch", action="append", choices=attention, help="zoo architectures (default: all)")
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="selfhost-rss-"))
    rows = [r for name, path in _models(args.arch or attention) for r in _measure(name, path, logs)]
    base, per_token = _fit([r for r in rows if r["model"] in TRAINING])
    print(
        f"process term refitted on {', '.join(TRAINING)}: {base / MIB:.2f} MiB + {per_token:.1f} B per vocabulary "
        f"token (in fit.server_process: {LLAMA_SERVER_BASE_BYTES / MIB:.2f} MiB + {LLAMA_SERVER_BYTES_PER_TOKEN} B)"
    )
    print(
        "\n| model | ctx/slot | slots | flash attn | KV | llama.cpp buffers MiB | CPU work MiB | checkpoints MiB "
        "| process MiB "
        "| plan MiB | peak RSS MiB | error |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    held_out = []
    for r in rows:
        plan = r["buffers"] + r["work"] + r["checkpoints"] + r["process"]
        err = (plan - r["peak"]) / r["peak"]
        train = r["model"] in TRAINING
        if not train:
            held_out.append(err)
        label = r["model"] + (" (training)" if train else "")
        print(
            f"| {label} | {r['ctx']} | {r['slots']} | {'on' if r['fa'] else 'off'} | {r['kv']} "
            f"| {r['buffers'] / MIB:.1f} | {r['work'] / MIB:.1f} | {r['checkpoints'] / MIB:.1f} "
            f"| {r['process'] / MIB:.1f} | "
            f"{plan / MIB:.1f} | {r['peak'] / MIB:.1f} | {err:+.1%} |",
            flush=True,
        )
    if held_out:
        worst = max(held_out, key=abs)
        within = sum(abs(e) <= 0.10 for e in held_out)
        print(
            f"\nheld out: {len(held_out)} rows, median |error| {statistics.median(abs(e) for e in held_out):.1%}, "
            f"worst {worst:+.1%}, {within} of {len(held_out)} within 10 %"
        )


if __name__ == "__main__":
    main()
