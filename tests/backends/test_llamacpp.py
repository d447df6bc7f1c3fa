"""The in-process llama.cpp backend on the real embedded model."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from selfhost.backends.base import GenerationParams, collect, create_backend
from selfhost.backends.llamacpp import LlamaCppBackend
from selfhost.backends.llamacpp_log import MIB
from selfhost.errors import BackendError, ModelTooLargeError, UsageError
from selfhost.models.gguf_spec import spec_from_gguf
from tests.helpers import write_sparse_huge_gguf

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]


def _chat(b: LlamaCppBackend, params: GenerationParams, messages: list[dict[str, str]] = QUESTION):  # type: ignore[no-untyped-def]
    return collect(b.stream_chat(messages, params), time.perf_counter())


def test_greedy_generation_is_real_and_deterministic(smollm2_backend: LlamaCppBackend) -> None:
    a = _chat(smollm2_backend, GenerationParams(max_tokens=24))
    b = _chat(smollm2_backend, GenerationParams(max_tokens=24))
    assert a.text == b.text and "Paris" in a.text
    assert a.completion_tokens == len(a.token_times) >= 2
    # The engine's own count: re-tokenizing the output gives the same number of tokens.
    assert len(smollm2_backend.tokenize(a.text, add_special=False)) == pytest.approx(a.completion_tokens, abs=1)
    assert a.ttft_s is not None and 0 < a.ttft_s < a.e2e_s
    assert a.token_times == sorted(a.token_times)
    assert a.decode_tokens_per_s and a.decode_tokens_per_s > 1


def test_same_prompt_and_output_as_llama_cpp_python_chat(smollm2_backend: LlamaCppBackend) -> None:
    """An independent path (llama-cpp-python's own template formatter and sampler) must agree token for token."""
    ours = _chat(smollm2_backend, GenerationParams(max_tokens=24))
    theirs = smollm2_backend._llm.create_chat_completion(
        QUESTION, max_tokens=24, temperature=0, top_k=0, top_p=1, min_p=0, repeat_penalty=1.0
    )
    assert ours.text == theirs["choices"][0]["message"]["content"]
    assert ours.prompt_tokens == theirs["usage"]["prompt_tokens"]
    assert ours.completion_tokens == theirs["usage"]["completion_tokens"]


def test_max_tokens_and_finish_reason(smollm2_backend: LlamaCppBackend) -> None:
    c = _chat(
        smollm2_backend,
        GenerationParams(max_tokens=3),
        [{"role": "user", "content": "Write a long story about a dragon."}],
    )
    assert c.completion_tokens == 3 and c.finish_reason == "length"


def test_stop_sequence_cuts_output(smollm2_backend: LlamaCppBackend) -> None:
    full = _chat(smollm2_backend, GenerationParams(max_tokens=24)).text
    word = full.split()[2]
    cut = _chat(smollm2_backend, GenerationParams(max_tokens=24, stop=(word,)))
    assert cut.finish_reason == "stop" and word not in cut.text and full.startswith(cut.text)


def test_tokenize_round_trip(smollm2_backend: LlamaCppBackend) -> None:
    text = "Self-hosting: ça marche ✓"
    ids = smollm2_backend.tokenize(text, add_special=False)
    assert ids and smollm2_backend.detokenize(ids) == text


def test_prompt_over_context_is_refused(smollm2_backend: LlamaCppBackend) -> None:
    with pytest.raises(BackendError, match="exceeds n_ctx"):
        _chat(smollm2_backend, GenerationParams(max_tokens=64), [{"role": "user", "content": "word " * 3000}])


def test_load_report_matches_the_file(smollm2_path: Path) -> None:
    """llama.cpp's model buffer is the file's tensor bytes; its KV cache is 2·layers·kv_heads·head_dim·2 B per cell."""
    spec = spec_from_gguf(smollm2_path)
    with LlamaCppBackend(smollm2_path, n_ctx=4096, spec=spec) as b:
        mem = b.load_report.memory
        assert mem.model_mib == round(spec.weights_bytes / MIB, 2)  # type: ignore[operator]
        assert len(mem.kv_caches) == 1 and mem.kv_caches[0].cells == 4096
        assert mem.kv_mib == 4096 * 2 * 30 * 3 * 64 * 2 / MIB == 90.0
        assert mem.compute_mib > 0
        assert b.load_report.load_s > 0
        assert b.load_report.rss_after_bytes > b.load_report.rss_before_bytes


def test_gemma3_loads_with_two_kv_caches(gemma3_path: Path) -> None:
    """Interleaved sliding-window models get a full cache and a windowed one; both are parsed."""
    with LlamaCppBackend(gemma3_path, n_ctx=2048) as b:
        caches = b.load_report.memory.kv_caches
        assert sorted(k.layers for k in caches) == [3, 15]
        c = collect(b.stream_complete("The capital of France is", GenerationParams(max_tokens=8)), time.perf_counter())
        assert c.completion_tokens and c.completion_tokens > 0


def test_model_too_large_for_ram(tmp_path: Path) -> None:
    huge = tmp_path / "huge.gguf"
    write_sparse_huge_gguf(huge, psutil.virtual_memory().total + 2 * 1024**3)
    with pytest.raises(ModelTooLargeError, match="GiB of RAM available"):
        LlamaCppBackend(huge)


def test_registry_lists_valid_kinds() -> None:
    with pytest.raises(UsageError) as err:
        create_backend("vllm-in-process")
    assert "llama.cpp" in (err.value.next_step or "")
