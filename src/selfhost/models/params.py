"""Parameter counts derived from a Hugging Face style config, for when no weight file is at hand.

One formula for every architecture family the catalog holds: embeddings (+ untied output),
attention (GQA, q/k/v biases, q/k norms, MLA), dense or mixture-of-experts feed-forward, norms.
Tests compare it with the counts published on the model cards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ParameterCount", "estimate_parameters"]


@dataclass(frozen=True)
class ParameterCount:
    total: int
    active: int
    embedding: int  # input embedding + untied output projection
    per_expert: int  # parameters of one routed expert in one layer (0 for dense models)


def estimate_parameters(c: dict[str, Any]) -> ParameterCount:
    h = int(c["hidden_size"])
    n_layers = int(c["num_hidden_layers"])
    vocab = int(c["vocab_size"])
    n_heads = int(c["num_attention_heads"])
    n_kv = int(c.get("num_key_value_heads") or n_heads)
    hd = int(c.get("head_dim") or h // n_heads)
    model_type = str(c.get("model_type", ""))
    bias = bool(c.get("attention_bias") or model_type == "qwen2")

    embedding = vocab * h * (1 if c.get("tie_word_embeddings") else 2)

    if c.get("kv_lora_rank"):  # MLA (DeepSeek V2/V3)
        nope, rope = int(c["qk_nope_head_dim"]), int(c["qk_rope_head_dim"])
        v_hd, kv_rank = int(c["v_head_dim"]), int(c["kv_lora_rank"])
        q_rank = c.get("q_lora_rank")
        q = h * q_rank + q_rank + q_rank * n_heads * (nope + rope) if q_rank else h * n_heads * (nope + rope)
        attn = q + h * (kv_rank + rope) + kv_rank + kv_rank * n_heads * (nope + v_hd) + n_heads * v_hd * h
    else:
        attn = h * n_heads * hd + 2 * h * n_kv * hd + n_heads * hd * h
        if bias:
            attn += n_heads * hd + 2 * n_kv * hd
        if model_type == "gpt_oss":
            attn += h + n_heads  # output-projection bias and per-head attention sinks
        if model_type.startswith("qwen3"):
            attn += 2 * hd  # q_norm and k_norm
    norms = (4 if model_type.startswith("gemma") else 2) * h

    n_experts = int(c.get("num_local_experts") or c.get("num_experts") or c.get("n_routed_experts") or 0)
    n_used = int(c.get("num_experts_per_tok") or 0)
    dense_ffn = 3 * h * int(c.get("intermediate_size") or 0)
    if n_experts > 1:
        moe_i = int(c.get("moe_intermediate_size") or c["intermediate_size"])
        per_expert = 3 * h * moe_i
        router = h * n_experts
        if model_type == "gpt_oss":
            per_expert += 2 * moe_i + h  # gate_up and down biases
            router += n_experts
        shared = int(c.get("n_shared_experts") or 0) * 3 * h * moe_i
        n_dense = int(c.get("first_k_dense_replace") or 0)
        n_moe = n_layers - n_dense
        total_ffn = n_dense * dense_ffn + n_moe * (n_experts * per_expert + router + shared)
        active_ffn = n_dense * dense_ffn + n_moe * (n_used * per_expert + router + shared)
    else:
        per_expert = 0
        total_ffn = active_ffn = n_layers * dense_ffn
    body = n_layers * (attn + norms) + h
    return ParameterCount(
        total=embedding + body + total_ffn,
        active=embedding + body + active_ffn,
        embedding=embedding,
        per_expert=per_expert,
    )
