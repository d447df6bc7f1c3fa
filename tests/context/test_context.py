"""Token counts equal llama.cpp's; budgets add up; packing never exceeds the budget (hypothesis)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfhost.backends.llamacpp import LlamaCppBackend
from selfhost.backends.tokenizer import Tokenizer
from selfhost.context.budget import Request, budget, build_messages
from selfhost.context.pack import chunk_text, pack
from selfhost.errors import UsageError
from selfhost.models.gguf_spec import spec_from_gguf

TEXTS = [
    "def add(a, b):\n    return a + b  # code\n",
    "Ünïcödé — 漢字かな交じり文 🚀✓ naïve café",
    "tabs\t\tand    spaces   \n\n\n   runs",
    "<|im_start|>user\nspecial tokens as text<|im_end|>",
    "",
    "a" * 500,
    "Numbers 3.14159, 1e-9, 0xFF and URLs https://example.org/a?b=c",
]


@pytest.fixture(scope="module")
def tok(smollm2_path: Path) -> Tokenizer:
    return Tokenizer(spec_from_gguf(smollm2_path))


@pytest.mark.parametrize("text", TEXTS)
def test_counts_equal_llama_cpp(tok: Tokenizer, smollm2_backend: LlamaCppBackend, text: str) -> None:
    assert tok.encode(text) == smollm2_backend.tokenize(text, add_special=False)
    assert tok.encode(text, parse_special=True) == smollm2_backend.tokenize(text, add_special=False, parse_special=True)


def test_chat_count_equals_engine_prompt_tokens(tok: Tokenizer, smollm2_backend: LlamaCppBackend) -> None:
    import time

    from selfhost.backends.base import GenerationParams, collect

    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": TEXTS[1]}]
    c = collect(smollm2_backend.stream_chat(msgs, GenerationParams(max_tokens=1)), time.perf_counter())
    assert tok.count_chat(msgs) == c.prompt_tokens


def test_budget_parts_add_up(tok: Tokenizer) -> None:
    req = Request(
        question="What changed?",
        system="Answer from the context.",
        chunks=["The release added X.", "It removed Y."],
        history=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
    )
    b = budget(tok, req, n_ctx=4096, reserved_output=256)
    assert b["prompt_tokens"] == tok.count_chat(build_messages(req))
    assert sum(b["parts"].values()) == b["prompt_tokens"]
    assert b["total_tokens"] == b["prompt_tokens"] + 256 and b["fits"]
    assert b["parts"]["template_overhead"] > 0 and set(b["parts"]) >= {"system", "chunks", "history", "question"}


def test_pack_drops_history_then_chunks_and_trims(tok: Tokenizer) -> None:
    chunk = " ".join(f"Sentence number {i} about the topic." for i in range(40))
    req = Request(
        question="Summarize.",
        system="Be brief.",
        chunks=[chunk, chunk, chunk],
        history=[{"role": "user", "content": "old " * 200}, {"role": "assistant", "content": "ok " * 200}],
    )
    r = pack(tok, req, n_ctx=900, reserved_output=200)
    assert r.prompt_tokens <= 700 and r.dropped_history == 2
    assert r.dropped_chunks and r.trimmed_chunk is not None
    assert r.request.question == "Summarize." and r.request.system == "Be brief."
    kept_last = r.request.chunks[-1]
    assert kept_last.endswith(".")  # trimmed at a sentence boundary


def test_pack_refuses_when_the_question_alone_is_too_long(tok: Tokenizer) -> None:
    with pytest.raises(UsageError, match="alone need"):
        pack(tok, Request(question="word " * 800), n_ctx=512, reserved_output=64)


words = st.text(alphabet=st.sampled_from(list("abcdefgh .,!?\nÜ漢")), min_size=0, max_size=300)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    system=words,
    question=st.text(min_size=1, max_size=80),
    chunks=st.lists(words, max_size=6),
    turns=st.lists(words, max_size=6),
    n_ctx=st.integers(64, 1200),
    reserve=st.integers(0, 200),
)
def test_pack_never_exceeds_the_budget(
    tok: Tokenizer, system: str, question: str, chunks: list[str], turns: list[str], n_ctx: int, reserve: int
) -> None:
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
    req = Request(question=question, system=system or None, chunks=chunks, history=history)
    try:
        r = pack(tok, req, n_ctx, reserve)
    except UsageError:
        # Only allowed when even the bare request (system + question) is over the limit.
        bare = Request(question=question, system=system or None)
        assert n_ctx - reserve <= 0 or tok.count_chat(build_messages(bare)) > n_ctx - reserve
        return
    assert tok.count_chat(build_messages(r.request)) == r.prompt_tokens <= n_ctx - reserve


def test_chunker_respects_size_and_overlaps(tok: Tokenizer) -> None:
    doc = " ".join(f"Fact {i} is that the value equals {i * 7}." for i in range(60))
    chunks = chunk_text(tok, doc, max_tokens=64, overlap=16)
    assert len(chunks) > 3
    assert all(tok.count(c) <= 64 for c in chunks)
    assert all(a.split(". ")[-1] in b for a, b in zip(chunks, chunks[1:]))  # overlap carries the last sentence
