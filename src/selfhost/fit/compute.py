"""llama.cpp compute-buffer estimate (scratch for one micro-batch); not exact, error measured in tests.

The graph allocator reserves for the worst micro-batch: min(n_ctx, n_ubatch) tokens, of which
min(tokens, n_outputs_max) are outputs (llama_context::sched_reserve). llama-cpp-python leaves
n_outputs_max at its default, n_batch, so every token is an output; llama-server sets it to its slots
(server_output_limits: n_parallel × (1 + draft tokens)), so its reserve graph computes logits for one token
per slot. The peak is the largest of: the logits (n_vocab × outputs f32) plus a few rows of hidden width; the
feed-forward activations of one layer for every token (gate, up and their product at the FFN width, four rows at
the hidden width) with the KQ masks (cells × tokens, one per cache kind; F16 with flash attention, F32 without);
and, without flash attention, the attention scores (n_heads rows of n_kv × n_ubatch f32 per stream) with every
cache kind's mask, the layer's Q, K and V projections and four rows at the hidden width.
Logits and attention terms: fitted on llama-cpp-python's logs for SmolLM2 and Gemma 3 across n_ctx 512–16384,
n_ubatch 128/512, 1–4 sequences, flash attention on and off, all within 5 % (tests/fit/test_compute.py). The
feed-forward and mask terms: read from llama.cpp's graph (llm_graph_context::build_ffn, ggml_swiglu_split, the KQ
mask inputs), fitted on llama-server's logs for SmolLM2 with flash attention and checked on Gemma 3's (held out) and
without it (tests/serve/test_llama_server.py; benchmarks/RESULTS.md). The attention term's rows beside the scores
(Q, K, V and four hidden rows, in place of two FFN rows): found on the zoo's Mistral-7B and Llama-2-7B builds at
published widths without flash attention (−6.9 % and +6.8 % before), where the two differ only in their K and V
widths; it gives SmolLM2 and Gemma 3 the same rows within 6 %, and the other zoo architectures are held out
(benchmarks/bench_fit_zoo.py).
"""

from __future__ import annotations

from selfhost.fit.kv import LlamaCppKVConfig, llamacpp_cells, llamacpp_kv
from selfhost.models.spec import ModelSpec

__all__ = ["FORMULA_HELD_OUT", "llamacpp_compute_bytes", "llamacpp_output_bytes", "llamacpp_vocab_bytes"]

# The formula's error where nothing of it was fitted: benchmarks/bench_fit_compute.py (RESULTS.md), llama.cpp's
# allocator on every zoo architecture and catalog model at its published width, 32 settings each, training ones left
# out.
FORMULA_HELD_OUT = (
    "held out on 16 zoo architectures and 22 catalog models at published widths: within 5 % of llama.cpp's "
    "allocator on 1,034 of 1,216 settings, worst -60 % (benchmarks/bench_fit_compute.py)"
)

F32 = 4
F16 = 2


def llamacpp_compute_bytes(
    spec: ModelSpec, cfg: LlamaCppKVConfig, flash_attn: bool = True, n_outputs_max: int | None = None
) -> int:
    """N_OUTPUTS_MAX: llama_context's cap on output rows; None for llama-cpp-python (every token of the micro-batch),
    the slot count for llama-server."""
    cells, _, n_ctx = llamacpp_cells(cfg.n_ctx, cfg.n_parallel, cfg.kv_unified)
    ub = min(cfg.n_ubatch, n_ctx)
    n_out = ub if n_outputs_max is None else max(1, min(ub, n_outputs_max))
    logits = spec.vocab_size * n_out * F32 + 3 * spec.hidden_size * n_out * F32
    # The KQ masks (cells × tokens, one per cache kind: full and sliding-window; F16 for flash attention, F32
    # without) stay allocated beside one layer's feed-forward rows.
    mask_bytes = F16 if flash_attn else F32
    masks = sum(c.cells * ub * mask_bytes for c in llamacpp_kv(spec, cfg).caches) if spec.n_layers else 0
    ffn = (_ffn_rows(spec) + 4 * spec.hidden_size) * ub * F32 + masks
    per_token, per_seq = _recurrent_rows(spec)
    recurrent = (per_token * ub + per_seq * cfg.n_parallel) * F32
    if flash_attn:
        return max(logits, ffn, recurrent)
    # the scores of one layer (heads × cells × tokens, f32) beside every cache kind's f32 mask, the layer's Q, K and V
    # projections and four rows at the hidden width
    qkv = (spec.n_heads + 2 * max(spec.n_kv_heads_per_layer, default=0)) * spec.head_dim
    attention = spec.n_heads * cells * ub * F32 + masks + (qkv + 4 * spec.hidden_size) * ub * F32
    return max(logits, attention, ffn, recurrent)


def _ffn_widths(spec: ModelSpec) -> tuple[int, int]:
    """(the widest dense feed-forward, the widest routed expert's), from the tensors when the spec has them (a dense
    layer's ffn_up, an expert stack's ffn_up_exps [hidden, width, experts]), else from the config."""
    dense = expert = 0
    fused = _fused_gate_up(spec)
    for t in spec.tensors:
        if len(t.shape) < 2:
            continue
        if t.name.endswith((".ffn_up.weight", ".ffn_gate.weight")):
            width = t.shape[1] // 2 if fused and t.name.endswith("ffn_up.weight") else t.shape[1]
            dense = max(dense, width)
        elif t.name.endswith((".ffn_up_exps.weight", ".ffn_gate_exps.weight")) and len(t.shape) == 3:
            expert = max(expert, t.shape[1])
    if not spec.tensors:  # a config: selfhost.models.hf names the widths of a mixture of experts
        expert = int(spec.extra.get("expert_ffn_size") or 0) if spec.n_experts_used else 0
        dense = int(spec.extra.get("dense_ffn_size", 0 if expert else spec.intermediate_size) or 0)
    return dense, expert


def _fused_gate_up(spec: ModelSpec) -> bool:
    """Phi-3 keeps gate and up in one ffn_up tensor (2 × the width; no ffn_gate)."""
    if spec.architecture != "phi3":
        return False
    names = {t.name.rsplit(".", 2)[-2] for t in spec.tensors if t.name.startswith("blk.")}
    return "ffn_gate" not in names and "ffn_up" in names


def _ffn_rows(spec: ModelSpec) -> int:
    """f32 values per token of the widest layer's feed-forward at its peak: gate, up and their product at the
    feed-forward width (llm_graph_context::build_ffn); in a mixture of experts, each of the experts a token uses
    computes its own three rows (build_moe_ffn: mul_mat_id outputs [width, experts used, tokens])."""
    dense, expert = _ffn_widths(spec)
    return max(3 * dense, 3 * expert * max(spec.n_experts_used, 1))


def _recurrent_rows(spec: ModelSpec) -> tuple[int, int]:
    """(f32 values per token, per sequence) alive at once in one Mamba layer's graph (models/mamba-base.cpp): the input
    projection, the convolution's input and output, the scan's output and the elementwise results around it, the
    layer input; per sequence, the states the scan reads. Mamba: 6 × d_inner + hidden per token; Mamba-2: its wider
    projection (z, x, B, C, dt) + 2 × the convolved width + 3 × d_inner + hidden."""
    r = spec.recurrent
    if r is None or not r.d_inner:
        return 0, 0  # LFM2's short convolution stays below its FFN rows
    conv = r.d_inner + 2 * r.n_group * r.d_state
    per_seq = r.d_state * r.d_inner + max(r.d_conv - 1, 0) * conv
    if r.n_group:
        return r.d_inner + conv + r.dt_rank + 2 * conv + 3 * r.d_inner + spec.hidden_size, per_seq
    return 6 * r.d_inner + spec.hidden_size, per_seq


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
