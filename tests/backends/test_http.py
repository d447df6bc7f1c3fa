"""HTTP backends against a real llama-cpp-python server (OpenAI wire) and the mock (Ollama wire)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from selfhost.backends.base import GenerationParams, collect, create_backend
from selfhost.backends.http import OllamaHttpBackend, OpenAIHttpBackend
from selfhost.backends.llamacpp import LlamaCppBackend
from selfhost.backends.server import LlamaCppServer
from selfhost.errors import BackendError
from tests.helpers import mock_server_process

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]


@pytest.fixture(scope="module")
def server(smollm2_path: Path) -> Iterator[LlamaCppServer]:
    with LlamaCppServer(smollm2_path, n_ctx=2048) as s:
        yield s


def test_openai_backend_matches_in_process_engine(server: LlamaCppServer, smollm2_path: Path) -> None:
    http = create_backend("openai", url=server.url)
    assert isinstance(http, OpenAIHttpBackend) and http.model
    params = GenerationParams(max_tokens=24, temperature=0.0)
    remote = collect(http.stream_chat(QUESTION, params), time.perf_counter())
    with LlamaCppBackend(smollm2_path, n_ctx=2048) as local:
        here = collect(local.stream_chat(QUESTION, params), time.perf_counter())
    assert "Paris" in remote.text
    assert remote.text == here.text  # same template, same greedy decoding, over the wire
    assert remote.first_token_t is not None and remote.ttft_s and remote.ttft_s > 0


def test_openai_backend_tokenize_and_complete(server: LlamaCppServer) -> None:
    http = OpenAIHttpBackend(server.url)
    ids = http.tokenize("Hello world", add_special=False)
    assert ids and http.detokenize(ids).strip() == "Hello world"
    c = collect(http.stream_complete("The capital of France is", GenerationParams(max_tokens=4)), time.perf_counter())
    assert c.text and c.completion_tokens and c.completion_tokens <= 4


@pytest.fixture
def ollama_mock() -> Iterator[str]:
    with mock_server_process("--ttft", "0.02", "--itl", "0.005", "--reasoning-tokens", "2") as url:
        yield url


def test_ollama_backend(ollama_mock: str) -> None:
    b = OllamaHttpBackend(ollama_mock)
    assert b.model == "mock-llm"
    events = list(b.stream_chat([{"role": "user", "content": "hi"}], GenerationParams(max_tokens=6)))
    kinds = [e.kind for e in events]
    assert kinds[:2] == ["reasoning", "reasoning"] and kinds[-1] == "done"
    c = collect(iter(events), events[0].t)
    assert c.completion_tokens == 6 and c.tokens_source == "usage"
    with pytest.raises(BackendError, match="no tokenize"):
        b.tokenize("x")


def test_unreachable_server() -> None:
    with pytest.raises(BackendError, match="cannot connect"):
        OpenAIHttpBackend("http://127.0.0.1:9")
