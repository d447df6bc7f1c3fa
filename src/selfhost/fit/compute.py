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

__all__ = ["llamacpp_compute_bytes", "llamacpp_output_bytes"]

F32 = 4


def llamacpp_compute_bytes(spec: ModelSpec, cfg: LlamaCppKVConfig, flash_attn: bool = True) -> int:
    ub = cfg.n_ubatch
    logits = spec.vocab_size * ub * F32 + 3 * spec.hidden_size * ub * F32
    if flash_attn:
        return logits
    cells, _, _ = llamacpp_cells(cfg.n_ctx, cfg.n_parallel, cfg.kv_unified)
    attention = (spec.n_heads + 1) * cells * ub * F32 + 2 * (spec.intermediate_size or 0) * ub * F32
    return max(logits, attention)


def llamacpp_output_bytes(spec: ModelSpec, n_parallel: int) -> int:
    """Logits of the last token of each sequence (llama_context output buffer)."""
    return spec.vocab_size * F32 * n_parallel
