"""Model facts checked when they are read: a file that llama.cpp or transformers would refuse is refused here,
with the field named, instead of being planned (a context of 0 planned as 131,072 tokens, 4 billion layers
reported as "out of memory")."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import NoReturn

from selfhost.errors import CorruptModelError
from selfhost.models.spec import ModelSpec

__all__ = ["validate_spec", "check_layer_count", "RECURRENT_ARCHITECTURES"]

# Architectures whose layers need not have attention heads (state-space / recurrent only).
RECURRENT_ARCHITECTURES = frozenset({"mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7"})

_MAX_LAYERS = 4096
_MAX_HEADS = 65536
_MAX_HEAD_DIM = 65536
_MAX_CONTEXT = 1 << 31
_MAX_VOCAB = 1 << 31

# spec field -> the key it was read from, per source
_GGUF_KEYS = {
    "n_layers": "{arch}.block_count",
    "n_heads": "{arch}.attention.head_count",
    "n_kv_heads": "{arch}.attention.head_count_kv",
    "head_dim": "{arch}.attention.key_length",
    "hidden_size": "{arch}.embedding_length",
    "context_length": "{arch}.context_length",
    "vocab_size": "tokenizer.ggml.tokens",
    "rope_theta": "{arch}.rope.freq_base",
    "sliding_window": "{arch}.attention.sliding_window",
    "n_experts_used": "{arch}.expert_used_count",
}
_HF_KEYS = {
    "n_layers": "num_hidden_layers",
    "n_heads": "num_attention_heads",
    "n_kv_heads": "num_key_value_heads",
    "head_dim": "head_dim",
    "hidden_size": "hidden_size",
    "context_length": "max_position_embeddings",
    "vocab_size": "vocab_size",
    "rope_theta": "rope_theta",
    "sliding_window": "sliding_window",
    "n_experts_used": "num_experts_per_tok",
}


def check_layer_count(value: object, where: str, field: str) -> int:
    """The layer count, checked before anything is sized by it (a damaged 0xFFFFFFFF would allocate per layer)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= _MAX_LAYERS:
        raise CorruptModelError(
            f"{where}: {field} = {value!r} is not in 1..{_MAX_LAYERS:,}",
            "the model's config is damaged; re-download or re-convert it",
        )
    return value


def _field(spec: ModelSpec, name: str) -> str:
    keys = _HF_KEYS if spec.source in ("hf", "catalog") else _GGUF_KEYS
    return keys.get(name, name).format(arch=spec.architecture)


def _where(spec: ModelSpec) -> str:
    return str(spec.path) if spec.path else spec.name


def validate_spec(spec: ModelSpec) -> ModelSpec:
    """The spec itself, or CorruptModelError (exit 2) naming the first inconsistent field."""

    def refuse(name: str, why: str) -> NoReturn:
        raise CorruptModelError(
            f"{_where(spec)}: {_field(spec, name)} {why}",
            "the model's config is damaged or not one llama.cpp/transformers would load; re-download or fix it",
        )

    def in_range(name: str, lo: int, hi: int) -> None:
        value = getattr(spec, name)
        if not isinstance(value, int) or not lo <= value <= hi:
            refuse(name, f"= {value!r} is not in {lo}..{hi:,}")

    recurrent = spec.architecture in RECURRENT_ARCHITECTURES
    in_range("n_layers", 1, _MAX_LAYERS)
    in_range("n_heads", 0 if recurrent else 1, _MAX_HEADS)
    in_range("n_kv_heads", 0 if recurrent else 1, _MAX_HEADS)
    in_range("head_dim", 0 if recurrent else 1, _MAX_HEAD_DIM)
    in_range("context_length", 1, _MAX_CONTEXT)
    in_range("vocab_size", 1, _MAX_VOCAB)
    if spec.source != "catalog":
        in_range("hidden_size", 1, 1 << 20)
    if spec.n_kv_heads > spec.n_heads:
        refuse("n_kv_heads", f"= {spec.n_kv_heads} is more than the {spec.n_heads} attention heads")
    if spec.n_kv_heads and spec.n_heads % spec.n_kv_heads:
        refuse("n_kv_heads", f"= {spec.n_kv_heads} does not divide the {spec.n_heads} attention heads")
    if "head_dim" in spec.derived and spec.n_heads and spec.hidden_size % spec.n_heads:
        refuse("hidden_size", f"= {spec.hidden_size} is not divisible by the {spec.n_heads} attention heads")
    if len(spec.n_kv_heads_per_layer) != spec.n_layers or len(spec.swa_layers) != spec.n_layers:
        refuse("n_layers", f"= {spec.n_layers} but per-layer values are given for {len(spec.n_kv_heads_per_layer)}")
    for i, kv in enumerate(spec.n_kv_heads_per_layer):
        if not 0 <= kv <= max(spec.n_heads, 1) * 64:
            refuse("n_kv_heads", f"of layer {i} = {kv} is out of range")
    if spec.rope_theta is not None and not (math.isfinite(spec.rope_theta) and spec.rope_theta > 0):
        refuse("rope_theta", f"= {spec.rope_theta!r} is not a positive finite number")
    if spec.sliding_window is not None and not 1 <= spec.sliding_window <= _MAX_CONTEXT:
        refuse("sliding_window", f"= {spec.sliding_window} is not a window size")
    if spec.n_experts < 0 or not 0 <= spec.n_experts_used <= max(spec.n_experts, 0):
        refuse("n_experts_used", f"= {spec.n_experts_used} but the model has {spec.n_experts} experts")
    if spec.parameters < 0:
        refuse("parameters", f"= {spec.parameters} is negative")
    _check_tensor_blocks(spec, refuse)
    return spec


_BLOCK = re.compile(r"^blk\.(\d+)\.")


def _check_tensor_blocks(spec: ModelSpec, refuse: Callable[[str, str], NoReturn]) -> None:
    """GGUF: the tensor table must hold exactly the blocks that block_count promises (llama.cpp loads by it)."""
    if spec.source == "hf" or not spec.tensors:
        return
    blocks = {int(m.group(1)) for t in spec.tensors if (m := _BLOCK.match(t.name))}
    if blocks and blocks != set(range(spec.n_layers)):
        missing = sorted(set(range(spec.n_layers)) - blocks)[:3]
        extra = sorted(blocks - set(range(spec.n_layers)))[:3]
        why = f"= {spec.n_layers} but the tensor table has blocks {min(blocks)}..{max(blocks)}"
        why += f" (missing {missing})" if missing else f" (extra {extra})"
        refuse("n_layers", why)
