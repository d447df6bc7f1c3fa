"""llama-server's resident memory against fit's plan for it, on the embedded models and zoo architectures (small
width, F16 and Q4_K_M).

Each model is started by `selfhost serve --engine llama-server` (fit's command line: per-slot context, slots, flash
attention), then its VmRSS (/proc/PID/status) is read twice: after start (llama-server's warmup has run) and after
one ~600-token prompt (a full 512-token micro-batch through the graph), and once more (with the peak, VmHWM) after a
prompt that fills one slot's whole context. "plan" is fit's total for that launch
(mapped weights, CPU_REPACK, KV, compute with llama-server's output rule, output buffer, tokenizer vocabulary); it has
no term for the process itself (binary, libraries, HTTP threads), which is what the difference shows.

Run: .venv/bin/python benchmarks/bench_server_rss.py
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from pathlib import Path

from selfhost.fit import zoo
from selfhost.fit.run import FitOptions
from selfhost.models.embedded import embedded_path
from selfhost.serve import run as serve
from selfhost.serve.run import ServeOptions

MIB = 2**20
ZOO = ["llama-1b", "qwen3moe-30b-a3b", "gemma3-1b", "gpt-oss-20b", "deepseek2-lite", "phi3-mini", "mistral-7b"]
SETTINGS = [(1024, 2, True), (2048, 4, False)]  # (context per slot, slots, flash attention)


def vm_rss(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for {pid}")


def post(url: str, payload: dict) -> dict:  # type: ignore[type-arg]
    body = json.dumps(payload).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=300).read())  # type: ignore[no-any-return]


def models() -> list[tuple[str, Path]]:
    out = [("smollm2-135m", embedded_path("smollm2-135m")), ("gemma3-270m", embedded_path("gemma3-270m"))]
    for name in ZOO:
        m = zoo.build(name, "small")
        q = m.path.with_name(m.path.stem + "-q4_k_m.gguf")
        if not q.exists():
            zoo._quantize(m.path, q, "Q4_K_M", keep_mxfp4_experts=zoo.architecture(name).mxfp4_experts)
        out += [(name, m.path), (name + " Q4_K_M", q)]
    return out


def main() -> None:
    print(
        "| model | ctx/slot | slots | flash attn | RSS after start MiB | RSS after 600 tokens MiB | plan MiB "
        "| RSS - plan MiB | RSS, one slot full MiB | peak RSS (VmHWM) MiB | peak - plan MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    logs = Path(tempfile.mkdtemp(prefix="selfhost-rss-"))
    for name, path in models():
        for ctx, slots, fa in SETTINGS:
            options = ServeOptions(engine="llama-server", port=0, log_path=logs / "llama-server.log")
            launch = serve.prepare(str(path), FitOptions(ctx=ctx, parallel=slots, flash_attn=fa), options)
            proc = serve.start(launch, 120)
            try:
                time.sleep(0.5)
                assert proc.proc is not None
                at_start = vm_rss(proc.proc.pid)
                post(proc.url + "/completion", {"prompt": "hello " * 600, "n_predict": 2})
                after = vm_rss(proc.proc.pid)
                # one slot filled to its whole context: a prompt of ctx - 8 tokens, 4 generated
                token = post(proc.url + "/tokenize", {"content": "hello"})["tokens"][0]
                post(proc.url + "/completion", {"prompt": [token] * (ctx - 8), "n_predict": 4, "cache_prompt": False})
                full = vm_rss(proc.proc.pid)
                peak = vm_rss(proc.proc.pid, "VmHWM")
            finally:
                proc.stop()
            total = launch.plan.total_bytes
            print(
                f"| {name} | {ctx} | {slots} | {'on' if fa else 'off'} | {at_start / MIB:.1f} | {after / MIB:.1f} | "
                f"{total / MIB:.1f} | {(after - total) / MIB:+.1f} | {full / MIB:.1f} | {peak / MIB:.1f} | "
                f"{(peak - total) / MIB:+.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
