"""A real run: llama-cpp-python's OpenAI-compatible server with the embedded model, on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from selfhost.backends.server import LlamaCppServer, free_port
from selfhost.backends.tokenizer import token_counter
from selfhost.bench.load import LoadSpec
from selfhost.bench.run import BenchConfig, run_bench
from tests.helpers import sigint_default


@pytest.fixture(scope="module")
def server(smollm2_path: Path) -> Iterator[LlamaCppServer]:
    with LlamaCppServer(smollm2_path, n_ctx=2048) as s:
        yield s


@pytest.mark.parametrize("concurrency", [1, 2, 4])
def test_real_server_at_several_concurrencies(
    server: LlamaCppServer, smollm2_path: Path, tmp_path: Path, concurrency: int
) -> None:
    count = token_counter(str(smollm2_path))
    s = run_bench(
        BenchConfig(
            url=server.url,
            load=LoadSpec(concurrency=concurrency, requests=6),
            input_tokens=48,
            output_tokens=12,
            records_path=tmp_path / "r.jsonl",
        ),
        count,
    )
    assert s["requests"]["completed"] == 6, s["requests"]
    assert s["tokens_source"] == {"tokenizer": 6}  # this server sends no usage when streaming
    assert 0 < s["ttft_s"]["p50"] < s["e2e_s"]["p50"]
    assert s["output_tokens_per_s"] > 0 and s["workload"]["input_tokens_counted_with"] == "model tokenizer"
    records = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert all(1 <= r["output_tokens"] <= 13 for r in records)
    # One model, one request at a time: waiting for the server shows up in TTFT as concurrency grows.
    if concurrency == 4:
        assert s["ttft_s"]["p50"] > s["e2e_s"]["p50"] / 4


def test_serve_command(tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "selfhost", "serve", "--engine", "llama-cpp-python", "--port", str(port)]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    with subprocess.Popen([*cmd, "--ctx", "1024"], **pipes, preexec_fn=sigint_default) as p:  # type: ignore[call-overload]  # noqa: PLW1509
        try:
            assert p.stdout is not None
            line = p.stdout.readline()
            assert f"http://127.0.0.1:{port}/v1" in line
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models") as r:
                assert json.load(r)["data"]
            p.send_signal(signal.SIGINT)  # Ctrl-C is how a server is meant to stop: exit 0, nothing left behind
            _, err = p.communicate(timeout=30)
            assert p.returncode == 0 and "Traceback" not in err
        finally:
            if p.poll() is None:  # a failed assertion must not leave the server running into the next tests
                p.kill()
                p.communicate()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
