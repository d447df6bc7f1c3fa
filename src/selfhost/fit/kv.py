"""KV cache sizes, per engine.

llama.cpp (src/llama-context.cpp, src/llama-kv-cache.cpp, src/llama-kv-cache-iswa.cpp):
  * n_ctx is padded to a multiple of 256 (PR #17046);
  * without --kv-unified every sequence gets its own stream of PAD(n_ctx / n_seq, 256) cells;
  * a layer's row is ggml_row_size(type, n_kv_heads * head_dim), for K and for V;
  * sliding-window layers live in a second cache of min(base, PAD(n_swa * (unified ? n_seq : 1) + n_ubatch, 256))
    cells per stream, unless swa_full is set (llama.cpp's library default; llama-server turns it off);
  * MLA models (DeepSeek V2/V3) cache only the latent: kv_lora_rank + qk_rope_head_dim per layer, no V.
"""

from __future__ import annotations

from dataclasses import dataclass

from selfhost.errors import UsageError
from selfhost.models.spec import ModelSpec

__all__ = [
    "KV_TYPES",
    "row_bytes",
    "LlamaCppKVConfig",
    "KVCache",
    "KVPlan",
    "llamacpp_kv",
    "kv_bytes_per_token",
    "llamacpp_cells",
]

# name -> (elements per block, bytes per block), ggml/src/ggml-common.h; llama.cpp's --cache-type-k/-v names.
KV_TYPES: dict[str, tuple[int, int]] = {
    "f32": (1, 4),
    "f16": (1, 2),
    "bf16": (1, 2),
    "q8_0": (32, 34),
    "q4_0": (32, 18),
    "q4_1": (32, 20),
    "q5_0": (32, 22),
    "q5_1": (32, 24),
    "iq4_nl": (32, 18),
}
KV_PAD = 256


def _pad(n: int, to: int = KV_PAD) -> int:
    return (n + to - 1) // to * to


def row_bytes(kv_type: str, n: int) -> int:
    try:
        block, size = KV_TYPES[kv_type]
    except KeyError:
        raise UsageError(f"unknown KV cache type {kv_type!r}", f"valid types: {', '.join(KV_TYPES)}") from None
    if n % block:
        raise UsageError(f"KV type {kv_type} needs rows that are a multiple of {block} elements; this model has {n}")
    return n // block * size


@dataclass(frozen=True)
class LlamaCppKVConfig:
    n_ctx: int
    n_parallel: int = 1
    type_k: str = "f16"
    type_v: str = "f16"
    kv_unified: bool = False
    swa_full: bool = False
    n_ubatch: int = 512


@dataclass(frozen=True)
class KVCache:
    kind: str  # "full" or "swa"
    layers: int
    cells: int  # per stream
    streams: int
    k_bytes: int
    v_bytes: int

    @property
    def bytes(self) -> int:
        return self.k_bytes + self.v_bytes


@dataclass(frozen=True)
class KVPlan:
    n_ctx: int  # effective total context after llama.cpp's padding/rounding
    n_ctx_seq: int  # context each sequence can use
    caches: tuple[KVCache, ...]

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.caches)


def llamacpp_cells(n_ctx: int, n_parallel: int, kv_unified: bool) -> tuple[int, int, int]:
    """(cells per stream, streams, effective n_ctx) as llama_context computes them."""
    if n_ctx <= 0 or n_parallel <= 0:
        raise UsageError(f"context ({n_ctx}) and parallel slots ({n_parallel}) must be positive")
    n_ctx = _pad(n_ctx)
    if kv_unified:
        return n_ctx, 1, n_ctx
    per_seq = _pad(n_ctx // n_parallel)
    if n_ctx // n_parallel == 0:
        raise UsageError(f"{n_parallel} parallel slots cannot share a context of {n_ctx} tokens")
    return per_seq, n_parallel, per_seq * n_parallel


def _layer_dims(spec: ModelSpec) -> list[tuple[int, int]]:
    """(K elements, V elements) per token for each layer."""
    if spec.mla is not None:
        return [(spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim, 0)] * spec.n_layers
    hv = spec.head_dim_v or spec.head_dim
    return [(kv * spec.head_dim, kv * hv) for kv in spec.n_kv_heads_per_layer]


def llamacpp_kv(spec: ModelSpec, cfg: LlamaCppKVConfig) -> KVPlan:
    no_attention = spec.head_dim <= 0 or not any(spec.n_kv_heads_per_layer)
    if spec.n_layers <= 0 or (no_attention and spec.recurrent is None):
        raise UsageError(f"{spec.name} has no attention facts (layers, KV heads, head dim) to size a KV cache")
    cells, streams, n_ctx = llamacpp_cells(cfg.n_ctx, cfg.n_parallel, cfg.kv_unified)
    dims = _layer_dims(spec)
    caches: list[KVCache] = []
    groups = {
        "full": [d for d, swa in zip(dims, spec.swa_layers) if not swa and d[0]],
        "swa": [d for d, swa in zip(dims, spec.swa_layers) if swa and d[0]],
    }
    for kind, layer_dims in groups.items():
        if not layer_dims:
            continue
        n = cells
        if kind == "swa" and not cfg.swa_full:
            window = spec.sliding_window or 0
            n = min(cells, _pad(window * (cfg.n_parallel if cfg.kv_unified else 1) + cfg.n_ubatch))
        k = sum(row_bytes(cfg.type_k, dk) for dk, _ in layer_dims) * n * streams
        v = sum(row_bytes(cfg.type_v, dv) for _, dv in layer_dims if dv) * n * streams
        caches.append(KVCache(kind, len(layer_dims), n, streams, k, v))
    return KVPlan(n_ctx=n_ctx, n_ctx_seq=n_ctx if cfg.kv_unified else cells, caches=tuple(caches))


def kv_bytes_per_token(spec: ModelSpec, kv_type: str = "f16", context: int | None = None) -> float:
    """Engine-neutral KV bytes for one more token of one sequence at `context` tokens.

    Sliding-window layers stop growing once the context passes the window, so with a context given
    they are averaged over it: Σ_full row + Σ_swa row · min(window, context) / context.
    """
    total = 0.0
    for (dk, dv), swa in zip(_layer_dims(spec), spec.swa_layers):
        b = float(row_bytes(kv_type, dk) + (row_bytes(kv_type, dv) if dv else 0))
        if swa and context and spec.sliding_window:
            b *= min(spec.sliding_window, context) / context
        total += b
    return total
