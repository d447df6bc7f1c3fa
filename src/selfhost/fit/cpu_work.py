"""The CPU backend's work buffer: scratch that ggml allocates outside llama.cpp's logged buffers, so no startup line
shows it, yet it is resident once a graph has run.

Read from ggml's source (llama-cpp-python 0.3.36's llama.cpp): ggml_graph_plan (ggml-cpu.c) sizes the buffer as the
largest need of any node of the graph, plus a cache line per thread; ggml-cpu.cpp allocates it with new[] and only
grows it. A matrix multiply whose right-hand side is not already in the weight's dot-product type first converts it
there (ggml_row_size(vec_dot_type, nelements(src1))); a K-quant weight that is not repacked adds the tiled kernel's
512 KiB per thread; an expert multiply (mul_mat_id) adds its row mappings. Without flash attention the largest node is
usually the attention-weighted sum KQ·V: the scores (cells × tokens × heads, f32) converted to the V cache's type,
which is why that setting's resident memory grows with the context and the heads. With flash attention the scores
never exist as one tensor, and the largest node is a feed-forward projection.

The prediction is for the worst micro-batch the server runs: a full micro-batch of prompt tokens while one slot's
context is full (every cell of its stream in the attention).
"""

from __future__ import annotations

import os

from selfhost.fit.kv import LlamaCppKVConfig, llamacpp_cells
from selfhost.fit.weights import GET_ROWS_ONLY, is_cpu_repacked
from selfhost.models.spec import ModelSpec, TensorInfo

__all__ = ["llamacpp_cpu_work_bytes"]

CACHE_LINE = 64
TILED_SLOT = 512 * 1024  # ggml-cpu/tiled/tiled-kernel.h, TILED_WS_SLOT
# (elements per block, bytes per block) of the types ggml converts a multiply's right-hand side to
_BLOCKS = {"F32": (1, 4), "F16": (1, 2), "BF16": (1, 2), "Q8_0": (32, 34), "Q8_1": (32, 36), "Q8_K": (256, 292)}
# type_traits_cpu[...].vec_dot_type (ggml-cpu.c)
_VEC_DOT = {"F32": "F32", "F16": "F16", "BF16": "BF16", "Q4_1": "Q8_1", "Q5_1": "Q8_1", "Q8_1": "Q8_1"}
_VEC_DOT |= dict.fromkeys(["Q4_0", "Q5_0", "Q8_0", "MXFP4", "IQ4_NL", "Q1_0", "Q2_0", "NVFP4"], "Q8_0")
_K_QUANTS = ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ1_S", "IQ1_M"]
_VEC_DOT |= dict.fromkeys([*_K_QUANTS, "IQ4_XS", "TQ1_0", "TQ2_0"], "Q8_K")
# src0 types the tiled kernel takes (ggml-cpu/tiled/tiled.cpp, ggml_tiled_supported), compiled with AVX or AVX2
_TILED = frozenset([*_K_QUANTS, "IQ4_XS"])


def _convert_bytes(src0_type: str, n_elements: int) -> int:
    vec = _VEC_DOT.get(src0_type.upper(), "F32")
    if vec == "F32":
        return 0  # the f32 right-hand side is used as it is
    per, size = _BLOCKS[vec]
    return -(-n_elements // per) * size


def _pad64(n: int) -> int:
    return -(-n // 64) * 64


def _weight_need(t: TensorInfo, tokens: int, n_outputs: int, n_expert_used: int, threads: int) -> int:
    n_in = t.shape[0]
    rows = n_outputs if t.name == "output.weight" else tokens
    if len(t.shape) == 3:  # an expert stack, multiplied by mul_mat_id
        n_as = t.shape[2]
        per_token = n_in * (n_expert_used if "down" in t.name else 1)
        need = _convert_bytes(t.type, per_token * rows) + 8
        need += n_as * 8 + 8 + n_as * n_expert_used * rows * 8 + 8 + CACHE_LINE * (n_as + 1)
    else:
        need = _convert_bytes(t.type, n_in * rows)
    need = _pad64(need)
    if t.type.upper() in _TILED and not is_cpu_repacked(t):
        need += 64 + threads * TILED_SLOT
    return need


def llamacpp_cpu_work_bytes(
    spec: ModelSpec,
    cfg: LlamaCppKVConfig,
    flash_attn: bool,
    n_outputs: int = 1,
    threads: int | None = None,
) -> int:
    """Resident bytes of the CPU backend's work buffer after the worst micro-batch (see the module doc).
    N_OUTPUTS: rows of logits that micro-batch computes (llama-server: one per prompt). THREADS: the engine's
    compute threads (default: this machine's cores, as llama-server's -t default is)."""
    threads = threads or os.cpu_count() or 1
    cells, _, n_ctx = llamacpp_cells(cfg.n_ctx, cfg.n_parallel, cfg.kv_unified)
    tokens = min(cfg.n_ubatch, n_ctx)
    n_used = spec.n_experts_used or 1
    needs = [
        _weight_need(t, tokens, n_outputs, n_used, threads)
        for t in spec.tensors
        if len(t.shape) >= 2 and t.name not in GET_ROWS_ONLY and t.name.endswith(".weight")
    ]
    if not spec.tensors and spec.intermediate_size:  # no tensor list (a config.json): the FFN down projection, F16
        needs.append(_pad64(_convert_bytes("F16", spec.intermediate_size * tokens)))
    if not flash_attn and spec.n_heads:
        k_dim = spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim if spec.mla is not None else spec.head_dim
        kq = _convert_bytes(cfg.type_k, k_dim * tokens * spec.n_heads)
        kqv = _convert_bytes(cfg.type_v if spec.mla is None else cfg.type_k, cells * tokens * spec.n_heads)
        needs += [_pad64(kq), _pad64(kqv)]
    need = max(needs, default=0)
    return need + CACHE_LINE * threads if need else 0
