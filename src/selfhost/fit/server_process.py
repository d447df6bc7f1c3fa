"""llama-server's own resident memory beyond llama.cpp's buffers: the CPU work buffer is fit.cpu_work; here are the
context checkpoints (read from its source, below) and the process itself: the binary and its libraries, HTTP and
worker threads, per-slot state, and tables that grow with the vocabulary.

The process term is fitted, not read from a source: a constant plus bytes per vocabulary token, by least squares on
the peak resident memory (VmHWM) of llama-server with one slot's context full, minus everything else the plan holds,
on the two embedded models only (SmolLM2-135M, 49,152 tokens; Gemma 3 270M, 262,144 tokens; four settings each:
context, slots, flash attention, KV type). Every zoo architecture is held out; benchmarks/bench_server_rss.py refits
both numbers and prints the held-out error, and tests/fit/test_zoo_server_rss.py checks the held-out models."""

from __future__ import annotations

from selfhost.fit.kv import LlamaCppKVConfig, llamacpp_kv
from selfhost.fit.recurrent import recurrent_state_bytes
from selfhost.models.spec import ModelSpec

__all__ = [
    "LLAMA_SERVER_BASE_BYTES",
    "LLAMA_SERVER_BYTES_PER_TOKEN",
    "LLAMA_SERVER_MAX_CHECKPOINTS",
    "llama_server_checkpoint_bytes",
    "llama_server_process_bytes",
]

LLAMA_SERVER_BASE_BYTES = round(20.47 * 2**20)
LLAMA_SERVER_BYTES_PER_TOKEN = 24


def llama_server_process_bytes(spec: ModelSpec) -> int:
    n_tokens = int(spec.extra.get("n_vocab_tokens") or spec.vocab_size)
    return LLAMA_SERVER_BASE_BYTES + LLAMA_SERVER_BYTES_PER_TOKEN * n_tokens


LLAMA_SERVER_MAX_CHECKPOINTS = 32  # common.h, n_ctx_checkpoints (--ctx-checkpoints)


def llama_server_checkpoint_bytes(spec: ModelSpec, cfg: LlamaCppKVConfig) -> tuple[int, int]:
    """(bytes after one prompt fills a slot, ceiling) of llama-server's context checkpoints.

    A model with a sliding-window cache cannot roll its window back, so llama-server copies that part of a slot's state
    to host RAM (server-context.cpp, create_checkpoint; LLAMA_STATE_SEQ_FLAGS_PARTIAL_ONLY) before the prompt's last
    micro-batch and before its last 4 tokens: two copies for one long prompt, each holding the cells inside the window.
    Later prompts add more, up to --ctx-checkpoints (32) per slot: the ceiling."""
    kv = llamacpp_kv(spec, cfg)
    swa = [c for c in kv.caches if c.kind == "swa"]
    # a recurrent state cannot roll back at all: the same two copies, of the slot's whole state
    state = recurrent_state_bytes(spec, 1)
    copies = 2 * state, state * LLAMA_SERVER_MAX_CHECKPOINTS * cfg.n_parallel
    if not swa:
        return copies if state else (0, 0)
    per_cell = sum(c.bytes // (c.cells * c.streams) for c in swa)
    # the state skips cells the window already masks (llama_kv_cache::state_write_data): at most `window` cells
    window = min(spec.sliding_window or kv.n_ctx_seq, kv.n_ctx_seq)
    slot = kv.n_ctx_seq
    used = [min(max(slot - 4 - cfg.n_ubatch, 0), window), min(max(slot - 4, 0), window)]
    ceiling = per_cell * window * LLAMA_SERVER_MAX_CHECKPOINTS * cfg.n_parallel
    return per_cell * sum(used) + copies[0], ceiling + copies[1]
