"""TTFT as selfhost's bench client and GuideLLM's report it, side by side on the same servers in one run.

1. An independent mock server (written here on bare asyncio streams: it shares no code with selfhost's own
   mock or its client): every request, whatever its path, gets its first token exactly TTFT = 200 ms after the
   server has read the request, after a role-only chunk, then 31 more tokens 20 ms apart, a usage chunk and
   [DONE]. It runs in its own process. The reported p50 TTFT minus 200 ms is each client's bias; at 16 and 64
   concurrent streams, REPS runs each, alternating the clients; the median bias is printed.
2. llama-server (`make llama-server`, the embedded model, -np 4) at 4 concurrent streams, 64-token prompts,
   16 output tokens, text completions on both sides, the same prompt file in the same order (so llama-server's
   prompt cache treats both alike): one discarded warm-up run per client, then REPS runs each,
   alternating; p50 TTFT of each run for both clients, and whether the medians differ by less than either
   client's own run-to-run spread (max − min over its runs).

Both clients get two processes: GuideLLM's GUIDELLM__MAX_WORKER_PROCESSES=2 and selfhost's --workers 2 (also
measured with one process, selfhost's default).

GuideLLM pulls torch (~6 GB with CUDA wheels), so it is not a dependency: install it into its own venv
(`python3.11 -m venv /tmp/glvenv && /tmp/glvenv/bin/pip install torch==2.13.0 guidellm==0.8.1`).
Run: .venv/bin/python benchmarks/bench_ttft_vs_guidellm.py [--guidellm /tmp/glvenv/bin/guidellm] [--reps 3]
     [--part all|mock|llama-server]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TTFT_S, ITL_S, TOKENS = 0.2, 0.02, 32


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
            arrived = time.perf_counter()
            if head.startswith(b"GET"):
                body = b'{"object":"list","data":[{"id":"m","object":"model"}]}'  # /v1/models, /health
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                )
                writer.write(body)
                await writer.drain()
                continue
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")

            def event(obj: Any) -> bytes:
                data = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"
                return b"%x\r\n%s\r\n" % (len(data), data)

            for i in range(TOKENS):
                due = arrived + TTFT_S + i * ITL_S
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                if i == 0:
                    writer.write(event({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}))
                tok = {"index": 0, "delta": {"content": " tok"}, "text": " tok", "finish_reason": None}
                writer.write(event({"object": "chat.completion.chunk", "choices": [tok]}))
                await writer.drain()
            usage = {"prompt_tokens": 64, "completion_tokens": TOKENS, "total_tokens": 64 + TOKENS}
            writer.write(event({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}], "usage": usage}))
            writer.write(event(b"[DONE]") + b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _serve(port_file: str) -> None:
    server = await asyncio.start_server(_handle, "127.0.0.1", 0, backlog=1024)
    Path(port_file).write_text(str(server.sockets[0].getsockname()[1]))
    async with server:
        await server.serve_forever()


@contextmanager
def independent_mock(tmp: Path) -> Iterator[str]:
    port_file = tmp / "mock.port"
    p = subprocess.Popen([sys.executable, __file__, "--serve-mock", str(port_file)])
    try:
        while not port_file.exists() or not port_file.read_text():
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port_file.read_text()}"
    finally:
        p.terminate()
        p.wait()


def selfhost_p50(
    url: str, concurrency: int, seconds: float, out_tokens: int, workers: int, tmp: Path, prompts: Path | None = None
) -> float:
    from selfhost.bench.load import LoadSpec
    from selfhost.bench.run import BenchConfig, run_bench

    r = run_bench(
        BenchConfig(
            url=url,
            api="openai-completions",
            load=LoadSpec(concurrency=concurrency, requests=None, duration_s=seconds, warmup=concurrency),
            input_tokens=64,
            output_tokens=out_tokens,
            records_path=tmp / "selfhost.jsonl",
            workers=workers,
            prompts_file=prompts,
        )
    )
    assert r["requests"]["failed"] == 0, r["requests"]
    return float(r["ttft_s"]["p50"])


def guidellm_p50(exe: str, url: str, concurrency: int, seconds: float, prompts: Path, out: Path) -> float:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(out.parent / "hf"),
        "GUIDELLM__MAX_WORKER_PROCESSES": "2",
    }
    cmd = [exe, "run", "--backend", f"kind=openai_http,target={url},validate_backend=false,model=m"]
    cmd += ["--data", f"kind=json_file,path={prompts}", "--metrics", "kind=generative,sample_size=0"]
    cmd += ["--disable-console", "--profile", f"kind=concurrent,streams={concurrency}"]
    cmd += ["--constraint", f"kind=max_duration,seconds={seconds:g}", "--output", f"kind=json,path={out}"]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=900)
    m = json.loads(out.read_text())["benchmarks"][0]["metrics"]
    return float(m["time_to_first_token_ms"]["successful"]["median"]) / 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--guidellm", default=os.environ.get("GUIDELLM", "/tmp/glvenv/bin/guidellm"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--part", choices=("all", "mock", "llama-server"), default="all")
    ap.add_argument("--serve-mock", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_mock:
        asyncio.run(_serve(args.serve_mock))
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        prompts = tmp / "prompts.jsonl"
        words = " ".join(["word"] * 63)
        rows = (json.dumps({"prompt": f"{i} {words}", "output_tokens_count": 16}) + "\n" for i in range(20000))
        prompts.write_text("".join(rows))
        if args.part == "llama-server":
            llama_server(args, tmp, prompts)
            return
        print(
            f"independent mock: TTFT {TTFT_S * 1000:.0f} ms after the request is read, ITL {ITL_S * 1000:.0f} ms, "
            f"{TOKENS} tokens; {args.reps} runs of {args.seconds:g} s per client and concurrency, alternating"
        )
        with independent_mock(tmp) as url:
            for c in (16, 64):
                bias: dict[str, list[float]] = {
                    "selfhost (1 process)": [],
                    "selfhost (2 processes)": [],
                    "GuideLLM (2 processes)": [],
                }
                for _ in range(args.reps):
                    bias["selfhost (1 process)"].append(selfhost_p50(url, c, args.seconds, TOKENS, 1, tmp) - TTFT_S)
                    bias["selfhost (2 processes)"].append(selfhost_p50(url, c, args.seconds, TOKENS, 2, tmp) - TTFT_S)
                    gl = guidellm_p50(args.guidellm, url, c, args.seconds, prompts, tmp / "gl.json")
                    bias["GuideLLM (2 processes)"].append(gl - TTFT_S)
                print(f"  {c} streams, p50 TTFT bias, median of {args.reps} (each run):")
                for k, v in bias.items():
                    print(
                        f"    {k}: {statistics.median(v) * 1000:+.2f} ms ({', '.join(f'{x * 1000:+.2f}' for x in v)})"
                    )
        llama_server(args, tmp, prompts)


def llama_server(args: argparse.Namespace, tmp: Path, prompts: Path) -> None:
    from selfhost.fit.run import FitOptions
    from selfhost.serve import run as serve

    launch = serve.prepare(
        None,
        FitOptions(ctx=512, parallel=4),
        serve.ServeOptions(engine="llama-server", port=0, log_path=tmp / "ls.log"),
    )
    proc = serve.start(launch, 120)
    try:
        p50: dict[str, list[float]] = {"selfhost": [], "GuideLLM": []}
        selfhost_p50(proc.url, 4, args.seconds, 16, 2, tmp, prompts)  # warm-up runs, discarded
        guidellm_p50(args.guidellm, proc.url, 4, args.seconds, prompts, tmp / "gl.json")
        for _ in range(args.reps):
            p50["selfhost"].append(selfhost_p50(proc.url, 4, args.seconds, 16, 2, tmp, prompts))
            p50["GuideLLM"].append(guidellm_p50(args.guidellm, proc.url, 4, args.seconds, prompts, tmp / "gl.json"))
    finally:
        proc.stop()
    med = {k: statistics.median(v) for k, v in p50.items()}
    spread = {k: max(v) - min(v) for k, v in p50.items()}
    print(
        f"llama-server (embedded model, -c 2048 -np 4), 4 streams, 64-token prompts, 16 tokens, {args.reps} runs each:"
    )
    for k, v in p50.items():
        print(
            f"  {k}: p50 TTFT median {med[k] * 1000:.1f} ms, spread {spread[k] * 1000:.1f} ms "
            f"({', '.join(f'{x * 1000:.1f}' for x in v)})"
        )
    gap = abs(med["selfhost"] - med["GuideLLM"])
    within = gap <= max(spread.values())
    print(
        f"  difference of medians {gap * 1000:.1f} ms: {'within' if within else 'outside'} the larger run-to-run spread"
    )


if __name__ == "__main__":
    main()
