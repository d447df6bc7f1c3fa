"""selfhost's benchmark client against GuideLLM's, side by side, on the same mock servers in one run.

1. Maximum sustained requests/s against a no-op server (`selfhost mock-server --ttft 0 --itl 0
   --output-tokens 1`), 256 requests allowed in flight, 10 s each.
2. TTFT bias at 64 concurrent streams against a server whose TTFT is exactly 100 ms and ITL 10 ms
   (16 tokens), 15 s each: reported p50 TTFT minus 100 ms.

GuideLLM pulls torch and CUDA wheels (~6 GB), so it is not a dependency: install it into its own venv
(`python3 -m venv /tmp/glvenv && /tmp/glvenv/bin/pip install guidellm`) and pass `--guidellm
/tmp/glvenv/bin/guidellm`. It runs offline with a local JSONL prompt file (written here), HF_HUB_OFFLINE=1
and its backend validation off (it probes /health first).
Run: .venv/bin/python benchmarks/bench_client_vs_guidellm.py --guidellm /tmp/glvenv/bin/guidellm
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selfhost.bench.load import LoadSpec
from selfhost.bench.run import BenchConfig, run_bench


@contextmanager
def mock(*args: str) -> Iterator[str]:
    p = subprocess.Popen(
        [sys.executable, "-m", "selfhost", "mock-server", "--port", "0", *args], stdout=subprocess.PIPE, text=True
    )
    assert p.stdout is not None
    url = p.stdout.readline().split()[-1]
    try:
        yield url
    finally:
        p.terminate()
        p.wait()
        p.stdout.close()


def selfhost_run(url: str, concurrency: int, seconds: float, out_tokens: int, tmp: Path) -> dict:  # type: ignore[type-arg]
    return run_bench(
        BenchConfig(
            url=url,
            load=LoadSpec(concurrency=concurrency, requests=None, duration_s=seconds, warmup=concurrency),
            input_tokens=64,
            output_tokens=out_tokens,
            records_path=tmp / "selfhost.jsonl",
        )
    )


def guidellm_run(exe: str, url: str, profile: str, seconds: float, prompts: Path, out: Path) -> dict:  # type: ignore[type-arg]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(out.parent / "hf"),
        "GUIDELLM__MAX_WORKER_PROCESSES": "2",
    }
    cmd = [
        exe,
        "run",
        "--backend",
        f"kind=openai_http,target={url},validate_backend=false,model=mock-llm",
        "--data",
        f"kind=json_file,path={prompts}",
        "--metrics",
        "kind=generative,sample_size=0",
        "--disable-console",
        "--profile",
        profile,
        "--constraint",
        f"kind=max_duration,seconds={seconds:g}",
        "--output",
        f"kind=json,path={out}",
    ]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)
    b = json.loads(out.read_text())["benchmarks"][0]
    m = b["metrics"]
    return {
        "requests_per_s": m["requests_per_second"]["successful"]["mean"],
        "completed": m["request_totals"]["successful"],
        "ttft_p50_s": m["time_to_first_token_ms"]["successful"]["median"] / 1000,
        "itl_p50_s": m["inter_token_latency_ms"]["successful"]["median"] / 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--guidellm", default=os.environ.get("GUIDELLM", "/tmp/glvenv/bin/guidellm"))
    args = ap.parse_args()
    have_gl = Path(args.guidellm).exists()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        prompts = tmp / "prompts.jsonl"
        words = " ".join(["word"] * 64)
        prompts.write_text(
            "".join(json.dumps({"prompt": f"{i} {words}", "output_tokens_count": 16}) + "\n" for i in range(60000))
        )
        with mock("--ttft", "0", "--itl", "0", "--output-tokens", "1") as url:
            ours = selfhost_run(url, 256, 10, 1, tmp)
            theirs = (
                guidellm_run(
                    args.guidellm, url, "kind=throughput,max_concurrency=256", 10, prompts, tmp / "gl-thr.json"
                )
                if have_gl
                else None
            )
        print(
            f"max sustained req/s vs no-op server: selfhost {ours['requests_per_s']:.0f}"
            + (
                f", GuideLLM {theirs['requests_per_s']:.0f}, "
                f"ratio {ours['requests_per_s'] / theirs['requests_per_s']:.2f}x"
                if theirs
                else ", GuideLLM not installed"
            )
        )
        with mock("--ttft", "0.1", "--itl", "0.01", "--output-tokens", "16") as url:
            ours = selfhost_run(url, 64, 15, 16, tmp)
            theirs = (
                guidellm_run(args.guidellm, url, "kind=concurrent,streams=64", 15, prompts, tmp / "gl-c64.json")
                if have_gl
                else None
            )
        bias_ours = ours["ttft_s"]["p50"] - 0.1
        line = (
            f"TTFT p50 bias at 64 streams (truth 100 ms): selfhost {bias_ours * 1000:+.2f} ms "
            f"(ITL p50 {ours['itl_s']['p50'] * 1000:.2f} ms, {ours['requests_per_s']:.0f} req/s)"
        )
        if theirs:
            bias_gl = theirs["ttft_p50_s"] - 0.1
            line += (
                f", GuideLLM {bias_gl * 1000:+.2f} ms (ITL p50 {theirs['itl_p50_s'] * 1000:.2f} ms, "
                f"{theirs['requests_per_s']:.0f} req/s); bias ratio GuideLLM/selfhost "
                f"{abs(bias_gl) / max(abs(bias_ours), 1e-6):.1f}x"
            )
        print(line)


if __name__ == "__main__":
    main()
