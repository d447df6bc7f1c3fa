"""`selfhost context` through the real command; `probe` against a real server and an Ollama-like one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from selfhost.backends.server import LlamaCppServer
from tests.cli.test_info_cli import _one_line_error, run
from tests.helpers import mock_server_process


def test_count_contract() -> None:
    d = json.loads(run("context", "count", "Hello world, ça va?", "--json").stdout)
    assert d["tokens"] > 3 and d["characters"] == 19


def test_crlf_file_counts_like_the_same_text(tmp_path: Path) -> None:
    text = "first line\r\nsecond line\r\n"
    f = tmp_path / "crlf.txt"
    f.write_bytes(text.encode())
    from_file = json.loads(run("context", "count", "--file", str(f), "--json").stdout)
    from_arg = json.loads(run("context", "count", text, "--json").stdout)
    assert from_file == {**from_arg, "characters": len(text)} and from_file["characters"] == from_arg["characters"]


def test_budget_contract(tmp_path: Path) -> None:
    c1, c2 = tmp_path / "c1.txt", tmp_path / "c2.txt"
    c1.write_text("The capital of France is Paris. " * 40)
    c2.write_text("Rome is the capital of Italy. " * 40)
    request = [
        "--ctx",
        "512",
        "--reserve",
        "128",
        "--system",
        "Answer from the context.",
        "--chunk",
        str(c1),
        "--chunk",
        str(c2),
        "--question",
        "Capital of France?",
        "--json",
    ]
    d = json.loads(run("context", "budget", *request).stdout)
    assert set(d) >= {"n_ctx", "reserved_output", "parts", "total_tokens", "fits"}
    assert d["n_ctx"] == 512 and d["reserved_output"] == 128 and not d["fits"]
    p = json.loads(run("context", "pack", *request).stdout)
    assert p["prompt_tokens"] <= 384 and (p["dropped_chunks"] or p["trimmed_chunk"] is not None)


def test_count_needs_input() -> None:
    assert "give TEXT or --file" in _one_line_error(run("context", "count"))


def test_probe_real_server_refuses_past_its_window(smollm2_path: Path) -> None:
    with LlamaCppServer(smollm2_path, n_ctx=1024) as srv:
        d = json.loads(run("context", "probe", srv.url, "--json").stdout)
    assert d["effective_context"] == 1023  # 1024 − the one completion token the probe asks for
    assert d["behaviour"].startswith("refuses") and not d["silent_truncation"]


@pytest.fixture
def ollama_like() -> Iterator[str]:
    """Stands for Ollama, which cannot run here: the mock answers Ollama's /api/generate and, like Ollama with
    num_ctx 2048, evaluates only the last 2048 prompt tokens while answering 200 OK (ollama#3839)."""
    with mock_server_process("--ttft", "0", "--itl", "0", "--ollama-num-ctx", "2048") as url:
        yield url


def test_probe_detects_silent_truncation(ollama_like: str) -> None:
    d = json.loads(
        run("context", "probe", ollama_like, "--api", "ollama", "--served-name", "mock-llm", "--json").stdout
    )
    assert d["silent_truncation"] and d["behaviour"] == "truncates silently"
    assert 2040 <= d["effective_context"] <= 2048
    assert d["example_over_limit"]["server_prompt_tokens"] == 2048 < d["example_over_limit"]["sent_tokens"]
