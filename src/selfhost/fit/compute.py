"""llama.cpp compute-buffer estimate (scratch for one micro-batch); not exact, error measured in tests.

The graph allocator reserves for the worst micro-batch (n_ubatch tokens, all of them outputs). Its
peak is either the logits (n_vocab × n_ubatch f32) plus a few activation rows, or, without flash
attention, the attention scores and mask (n_heads + 1 rows of n_kv × n_ubatch f32 per stream) plus the
feed-forward rows. Fitted on llama.cpp's own logs for SmolLM2 and Gemma 3 across n_ctx 512–16384,
n_ubatch 128/512, 1–4 sequences, flash attention on and off: all within 5 % (tests/fit/test_compute.py).
"""

from __future__ import annotations

from selfhost.fit.kv import LlamaCppKVConfig, llamacpp_cells
from selfhost.models.spec import ModelSpec

__all__ = ["llamacpp_compute_bytes", "llamacpp_output_bytes", "llamacpp_vocab_bytes"]

F32 = 4


def llamacpp_compute_bytes(spec: ModelSpec, cfg: LlamaCppKVConfig, flash_attn: bool = True) -> int:
    ub = cfg.n_ubatch
    logits = spec.vocab_size * ub * F32 + 3 * spec.hidden_size * ub * F32
    if flash_attn:
        return logits
    cells, _, _ = llamacpp_cells(cfg.n_ctx, cfg.n_parallel, cfg.kv_unified)
    attention = (spec.n_heads + 1) * cells * ub * F32 + 2 * (spec.intermediate_size or 0) * ub * F32
    return max(logits, attention)


def llamacpp_output_bytes(spec: ModelSpec, n_outputs: int) -> int:
    """llama_context's output buffer: logits for n_outputs tokens (one per sequence when serving; it grows
    when a batch asks for more, e.g. prompt logprobs)."""
    return spec.vocab_size * F32 * n_outputs


# Host memory llama.cpp's tokenizer takes for its vocabulary (token strings, lookup maps, BPE merge ranks).
# Fitted on RSS growth at load minus the model buffers: SmolLM2 (49,152 tokens, 48,900 merges) and Gemma 3
# (262,144 tokens, no merges), both within 2 MiB. An estimate; tests/fit/test_verify.py measures it.
VOCAB_BYTES_PER_TOKEN = 176
VOCAB_BYTES_PER_MERGE = 190


def llamacpp_vocab_bytes(spec: ModelSpec) -> int:
    n_tokens = int(spec.extra.get("n_vocab_tokens") or spec.vocab_size)
    return n_tokens * VOCAB_BYTES_PER_TOKEN + int(spec.extra.get("n_merges") or 0) * VOCAB_BYTES_PER_MERGE
