"""llama-server's own resident memory: what its process holds beyond llama.cpp's buffers, the CPU work buffer
(fit.cpu_work) and the tokenizer's vocabulary (fit.compute) — the binary and its libraries, HTTP and worker threads,
per-slot state, and tables that grow with the vocabulary.

Fitted, not read from a source: a constant plus bytes per vocabulary token, from the peak resident memory (VmHWM) of
llama-server with one slot's context full, on the two embedded models only (SmolLM2-135M, 49,152 tokens; Gemma 3
270M, 262,144 tokens; four settings each: context, slots, flash attention, KV type). Every zoo architecture is held
out; benchmarks/bench_server_rss.py refits both numbers and prints the held-out error, and
tests/serve/test_server_rss.py checks the held-out models."""

from __future__ import annotations

from selfhost.models.spec import ModelSpec

__all__ = ["LLAMA_SERVER_BASE_BYTES", "LLAMA_SERVER_BYTES_PER_TOKEN", "llama_server_process_bytes"]

LLAMA_SERVER_BASE_BYTES = round(17.3 * 2**20)
LLAMA_SERVER_BYTES_PER_TOKEN = 92


def llama_server_process_bytes(spec: ModelSpec) -> int:
    n_tokens = int(spec.extra.get("n_vocab_tokens") or spec.vocab_size)
    return LLAMA_SERVER_BASE_BYTES + LLAMA_SERVER_BYTES_PER_TOKEN * n_tokens
