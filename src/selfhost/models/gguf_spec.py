"""GGUF file -> ModelSpec."""

from __future__ import annotations

import os
from typing import Any

from gguf import LlamaFileType

from selfhost.errors import UnsupportedModelError
from selfhost.models.gguf_file import GGUFFile, read_gguf
from selfhost.models.spec import MLAFacts, ModelSpec, RecurrentFacts, TensorInfo, TokenizerFacts
from selfhost.models.validate import check_layer_count

__all__ = ["spec_from_gguf", "swa_layers_for", "SWA_PERIOD_BY_ARCH"]

# Sliding-window layer pattern llama.cpp applies per architecture when the GGUF carries no
# `<arch>.attention.sliding_window_pattern` key: llama_hparams::set_swa_pattern(n) marks layer
# `il` as sliding-window when `il % n < n - 1` (src/llama-hparams.cpp, src/llama-model.cpp).
SWA_PERIOD_BY_ARCH: dict[str, int] = {
    "gemma2": 2,  # alternating local/global
    "gemma3": 6,  # 5 local : 1 global
    "gemma3n": 5,
    "cohere2": 4,
    "gpt-oss": 2,
    "llama4": 4,  # chunked attention, 3 chunked : 1 full
}


def swa_layers_for(n_layers: int, period: int) -> tuple[bool, ...]:
    if period <= 0:
        return (True,) * n_layers
    return tuple(il % period < period - 1 for il in range(n_layers))


def _int_or_layers(value: Any, n_layers: int) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, list):
        if len(value) != n_layers:
            return None
        return tuple(int(v) for v in value)
    return (int(value),) * n_layers


def _file_type_name(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return LlamaFileType(int(value)).name.removeprefix("MOSTLY_").removeprefix("ALL_")
    except ValueError:
        return f"type {value}"


def spec_from_gguf(path: str | os.PathLike[str], source: str = "gguf") -> ModelSpec:
    g = read_gguf(path)
    return spec_from_gguf_file(g, source=source)


def spec_from_gguf_file(g: GGUFFile, source: str = "gguf") -> ModelSpec:
    arch = g.get("general.architecture")
    if not isinstance(arch, str):
        raise UnsupportedModelError(
            f"{g.path} has no general.architecture key, so its layer facts cannot be read",
            "re-convert the model with a current llama.cpp convert_hf_to_gguf.py",
        )

    def key(name: str, default: Any = None) -> Any:
        return g.get(f"{arch}.{name}", default)

    derived: dict[str, str] = {}
    n_layers = key("block_count")
    n_heads_raw = key("attention.head_count")
    hidden = key("embedding_length")
    if n_layers is None or n_heads_raw is None or hidden is None:
        missing = [
            k
            for k, v in (("block_count", n_layers), ("attention.head_count", n_heads_raw), ("embedding_length", hidden))
            if v is None
        ]
        raise UnsupportedModelError(
            f"{g.path} (architecture {arch!r}) lacks attention facts: no {', '.join(arch + '.' + m for m in missing)}",
            "this is not a decoder LLM selfhost can plan for, or its GGUF is incomplete",
        )
    n_layers = check_layer_count(n_layers, str(g.path), f"{arch}.block_count")
    heads_per_layer = _int_or_layers(n_heads_raw, n_layers) or (0,) * n_layers
    n_heads = max(heads_per_layer)
    kv_raw = key("attention.head_count_kv")
    if kv_raw is None:
        kv_per_layer = heads_per_layer
        derived["n_kv_heads"] = "no head_count_kv key: equal to head_count (multi-head attention)"
    else:
        kv_per_layer = _int_or_layers(kv_raw, n_layers) or heads_per_layer
    head_dim = key("attention.key_length")
    if head_dim is None:
        head_dim = int(hidden) // n_heads if n_heads else 0
        derived["head_dim"] = "embedding_length / head_count (no attention.key_length key)"
    head_dim_v = key("attention.value_length", head_dim)

    tokens = g.get("tokenizer.ggml.tokens")
    vocab = key("vocab_size")
    if vocab is None:
        if isinstance(tokens, list):
            vocab = len(tokens)
            derived["vocab_size"] = "length of tokenizer.ggml.tokens"
        else:
            vocab = 0

    sliding_window = key("attention.sliding_window")
    swa: tuple[bool, ...] = ()
    pattern = key("attention.sliding_window_pattern")
    if isinstance(pattern, list) and len(pattern) == n_layers:
        swa = tuple(bool(v) for v in pattern)
    elif sliding_window:
        period = int(pattern) if isinstance(pattern, int) else SWA_PERIOD_BY_ARCH.get(arch)
        if period is not None:
            swa = swa_layers_for(n_layers, period)
            if pattern is None:
                derived["swa_layers"] = f"llama.cpp's built-in pattern for {arch}: period {period}"
        else:
            derived["swa_layers"] = (
                f"sliding_window={sliding_window} but no layer pattern is known for {arch}; "
                "all layers treated as full attention"
            )

    mla = None
    kv_lora_rank = key("attention.kv_lora_rank")
    if kv_lora_rank:
        mla = MLAFacts(
            kv_lora_rank=int(kv_lora_rank),
            qk_rope_head_dim=int(key("rope.dimension_count", 0)),
            q_lora_rank=key("attention.q_lora_rank"),
            v_head_dim=key("attention.value_length_mla", head_dim_v),
        )

    recurrent = _recurrent_facts(arch, key, int(n_layers or 0), kv_per_layer, int(hidden or 0))

    def token_text(idx: Any) -> str | None:
        if isinstance(tokens, list) and isinstance(idx, int) and 0 <= idx < len(tokens):
            return tokens[idx]
        return None

    bos_id = g.get("tokenizer.ggml.bos_token_id")
    eos_id = g.get("tokenizer.ggml.eos_token_id")
    tok = TokenizerFacts(
        model=g.get("tokenizer.ggml.model"),
        bos_token=token_text(bos_id),
        eos_token=token_text(eos_id),
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        add_bos_token=g.get("tokenizer.ggml.add_bos_token"),
        add_eos_token=g.get("tokenizer.ggml.add_eos_token"),
    )
    tensors = tuple(TensorInfo(t.name, t.type, t.shape, t.n_elements, t.n_bytes, t.offset) for t in g.tensors)
    parameters = sum(t.n_elements for t in tensors)
    name = g.get("general.name") or g.path.stem
    n_experts = int(key("expert_count", 0) or 0)
    n_used = int(key("expert_used_count", 0) or 0)
    active = None
    if n_experts > 1 and n_used:
        expert_elems = sum(t.n_elements for t in tensors if "_exps." in t.name)
        active = parameters - expert_elems + expert_elems * n_used // n_experts
        derived["active_parameters"] = "all tensors minus the unused share of the *_exps expert tensors"
    return ModelSpec(
        name=str(name),
        source=source,
        architecture=arch,
        parameters=parameters,
        active_parameters=active,
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=max(kv_per_layer) if kv_per_layer else 0,
        n_kv_heads_per_layer=kv_per_layer,
        head_dim=int(head_dim),
        head_dim_v=int(head_dim_v),
        hidden_size=int(hidden),
        intermediate_size=_first_int(key("feed_forward_length")),
        context_length=int(key("context_length", 0) or 0),
        vocab_size=int(vocab),
        rope_theta=key("rope.freq_base"),
        sliding_window=int(sliding_window) if sliding_window else None,
        swa_layers=swa,
        n_experts=n_experts,
        n_experts_used=n_used,
        n_shared_experts=int(key("expert_shared_count", 0) or 0),
        mla=mla,
        recurrent=recurrent,
        tensors=tensors,
        file_bytes=g.file_bytes,
        file_type=_file_type_name(g.get("general.file_type")),
        path=g.path,
        tokenizer=tok,
        chat_template=g.get("tokenizer.chat_template"),
        derived=derived,
        extra={
            "gguf_version": g.version,
            "alignment": g.alignment,
            "data_offset": g.data_offset,
            "n_merges": g.array_lengths.get("tokenizer.ggml.merges", 0),
            "n_vocab_tokens": len(tokens) if isinstance(tokens, list) else vocab,
        },
    )


def _first_int(value: Any) -> int | None:
    if isinstance(value, list):
        return int(max(value)) if value else None
    return int(value) if value is not None else None


# Architectures whose recurrent state fit models (llama.cpp's llm_arch_is_recurrent: every layer; the hybrids mark a
# layer recurrent when it has no KV heads: models/granite-hybrid.cpp, models/lfm2.cpp). Measured on the zoo's builds.
RECURRENT_ALL_LAYERS = frozenset({"mamba", "mamba2"})
RECURRENT_WHERE_NO_KV = frozenset({"granitehybrid", "lfm2"})


def _recurrent_facts(
    arch: str, key: Any, n_layers: int, kv_per_layer: tuple[int, ...], hidden: int
) -> RecurrentFacts | None:
    if arch in RECURRENT_ALL_LAYERS:
        layers = (True,) * n_layers
    elif arch in RECURRENT_WHERE_NO_KV and len(kv_per_layer) == n_layers:
        layers = tuple(kv == 0 for kv in kv_per_layer)
    else:
        return None
    return RecurrentFacts(
        layers=layers,
        hidden_size=hidden,
        d_conv=int(key("ssm.conv_kernel", 0) or 0),
        d_inner=int(key("ssm.inner_size", 0) or 0),
        d_state=int(key("ssm.state_size", 0) or 0),
        n_group=int(key("ssm.group_count", 0) or 0),
        dt_rank=int(key("ssm.time_step_rank", 0) or 0),
        shortconv_l_cache=int(key("shortconv.l_cache", 0) or 0),
    )
