"""Hugging Face model directory (config.json, safetensors headers, tokenizer_config.json) -> ModelSpec.

Also used for catalog entries, which hold the same config.json keys.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from selfhost.errors import CorruptModelError, ModelNotFoundError, UnsupportedModelError
from selfhost.files import BadInputError, read_json, read_text
from selfhost.models.gguf_spec import SWA_PERIOD_BY_ARCH, swa_layers_for
from selfhost.models.params import estimate_parameters
from selfhost.models.spec import MLAFacts, ModelSpec, TensorInfo, TokenizerFacts
from selfhost.models.validate import check_layer_count

__all__ = ["spec_from_hf_config", "spec_from_hf_dir", "read_safetensors_header", "ARCH_BY_MODEL_TYPE"]

# transformers `model_type` -> llama.cpp `general.architecture`, so every source speaks one vocabulary
# (convert_hf_to_gguf.py registers Mistral and Mixtral as "llama", DeepSeek V3 as "deepseek2").
ARCH_BY_MODEL_TYPE: dict[str, str] = {
    "llama": "llama",
    "mistral": "llama",
    "mixtral": "llama",
    "qwen2": "qwen2",
    "qwen3": "qwen3",
    "qwen3_moe": "qwen3moe",
    "gemma": "gemma",
    "gemma2": "gemma2",
    "gemma3": "gemma3",
    "gemma3_text": "gemma3",
    "phi3": "phi3",
    "deepseek_v3": "deepseek2",
    "deepseek_v2": "deepseek2",
    "gpt_oss": "gpt-oss",
}

_SAFETENSORS_BYTES = {
    "F64": 8,
    "I64": 8,
    "U64": 8,
    "F32": 4,
    "I32": 4,
    "U32": 4,
    "F16": 2,
    "BF16": 2,
    "I16": 2,
    "U16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}


def _text_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Multimodal configs nest the language model's facts under text_config."""
    inner = cfg.get("text_config")
    if isinstance(inner, dict) and "num_hidden_layers" in inner:
        merged = dict(inner)
        merged.setdefault("model_type", cfg.get("model_type"))
        return merged
    return cfg


def _swa(c: dict[str, Any], arch: str, n_layers: int, derived: dict[str, str]) -> tuple[int | None, tuple[bool, ...]]:
    window = c.get("sliding_window")
    layer_types = c.get("layer_types")
    if isinstance(layer_types, list) and len(layer_types) == n_layers:
        swa = tuple(t == "sliding_attention" for t in layer_types)
        return (int(window) if window and any(swa) else None), swa
    if not window or c.get("use_sliding_window") is False:
        return None, ()
    pattern = c.get("sliding_window_pattern")
    if isinstance(pattern, int):
        return int(window), swa_layers_for(n_layers, pattern)
    if arch in SWA_PERIOD_BY_ARCH:
        derived["swa_layers"] = f"architecture {arch}: period {SWA_PERIOD_BY_ARCH[arch]}"
        return int(window), swa_layers_for(n_layers, SWA_PERIOD_BY_ARCH[arch])
    # Mistral v0.1-style: one window on every layer.
    return int(window), (True,) * n_layers


def spec_from_hf_config(
    cfg: dict[str, Any],
    *,
    name: str,
    source: str,
    source_url: str | None = None,
    path: Path | None = None,
    parameters: int | None = None,
    active_parameters: int | None = None,
    tensors: tuple[TensorInfo, ...] = (),
    tokenizer: TokenizerFacts | None = None,
    chat_template: str | None = None,
    file_bytes: int | None = None,
) -> ModelSpec:
    c = _text_config(cfg)
    required = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
    missing = [k for k in required if k not in c]
    if missing:
        raise UnsupportedModelError(
            f"{name}: config has no {', '.join(missing)}, so its attention facts are unknown",
            "pass a decoder LLM's config.json (or its GGUF file)",
        )
    model_type = str(c.get("model_type") or "unknown")
    arch = ARCH_BY_MODEL_TYPE.get(model_type, model_type)
    derived: dict[str, str] = {}
    n_layers = check_layer_count(c["num_hidden_layers"], name, "num_hidden_layers")
    n_heads = int(c["num_attention_heads"])
    n_kv = int(c.get("num_key_value_heads") or n_heads)
    if "num_key_value_heads" not in c:
        derived["n_kv_heads"] = "no num_key_value_heads: equal to num_attention_heads"
    head_dim = c.get("head_dim")
    if head_dim is None:
        head_dim = int(c["hidden_size"]) // n_heads
        derived["head_dim"] = "hidden_size / num_attention_heads (no head_dim key)"
    head_dim_v = int(c.get("v_head_dim") or head_dim)
    mla = None
    if c.get("kv_lora_rank"):
        mla = MLAFacts(
            kv_lora_rank=int(c["kv_lora_rank"]),
            qk_rope_head_dim=int(c["qk_rope_head_dim"]),
            q_lora_rank=c.get("q_lora_rank"),
            qk_nope_head_dim=c.get("qk_nope_head_dim"),
            v_head_dim=c.get("v_head_dim"),
        )
        head_dim = int(c["qk_nope_head_dim"]) + int(c["qk_rope_head_dim"])
    window, swa = _swa(c, arch, n_layers, derived)
    estimate = estimate_parameters(c)
    if parameters is None:
        if tensors:
            parameters = sum(t.n_elements for t in tensors)
        else:
            parameters = estimate.total
            derived["parameters"] = "estimated from config (selfhost.models.params)"
    n_experts = int(c.get("num_local_experts") or c.get("num_experts") or c.get("n_routed_experts") or 0)
    if n_experts > 1 and active_parameters is None:
        active_parameters = estimate.active
        derived["active_parameters"] = "estimated from config (selfhost.models.params)"
    ctx = c.get("max_position_embeddings")
    if ctx is None:
        derived["context_length"] = "config has no max_position_embeddings"
    return ModelSpec(
        name=name,
        source=source,
        architecture=arch,
        parameters=int(parameters),
        active_parameters=active_parameters,
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=n_kv,
        head_dim=int(head_dim),
        head_dim_v=head_dim_v,
        hidden_size=int(c["hidden_size"]),
        intermediate_size=c.get("intermediate_size"),
        context_length=int(ctx or 0),
        vocab_size=int(c["vocab_size"]),
        rope_theta=c.get("rope_theta"),
        sliding_window=window,
        swa_layers=swa,
        n_experts=n_experts,
        n_experts_used=int(c.get("num_experts_per_tok") or 0),
        n_shared_experts=int(c.get("n_shared_experts") or 0),
        mla=mla,
        tensors=tensors,
        file_bytes=file_bytes,
        file_type=str(c.get("torch_dtype")) if c.get("torch_dtype") else None,
        path=path,
        source_url=source_url,
        tokenizer=tokenizer or TokenizerFacts(),
        chat_template=chat_template,
        derived=derived,
        extra={"hf_model_type": model_type, "tie_word_embeddings": bool(c.get("tie_word_embeddings"))}
        | _ffn_sizes(c, n_experts)
        | {"hf_config": cfg},
    )


def _ffn_sizes(c: dict[str, Any], n_experts: int) -> dict[str, int]:
    """A mixture of experts' feed-forward widths: each routed expert's (moe_intermediate_size where the config has
    one, else intermediate_size, as Mixtral and gpt-oss name it) and the dense layers' where some layers are dense
    (DeepSeek's first_k_dense_replace, Qwen-MoE's mlp_only_layers or a decoder_sparse_step over 1)."""
    if n_experts <= 1:
        return {}
    ff = int(c.get("intermediate_size") or 0)
    moe = c.get("moe_intermediate_size")
    if not moe:
        return {"expert_ffn_size": ff, "dense_ffn_size": 0}
    has_dense = (
        bool(c.get("first_k_dense_replace") or c.get("mlp_only_layers")) or int(c.get("decoder_sparse_step") or 1) > 1
    )
    return {"expert_ffn_size": int(moe), "dense_ffn_size": ff if has_dense else 0}


def read_safetensors_header(path: Path) -> list[TensorInfo]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CorruptModelError(f"{path} is truncated: no safetensors header", "fetch the file again")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, 100 * 1024 * 1024):
            raise CorruptModelError(f"{path} is not a valid safetensors file (header length {n})")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptModelError(f"{path} has a corrupt safetensors header: {exc}") from None
    out: list[TensorInfo] = []
    for tname, info in header.items():
        if tname == "__metadata__":
            continue
        start, end = info["data_offsets"]
        if 8 + n + end > size:
            raise CorruptModelError(
                f"{path} is truncated: tensor {tname!r} ends at byte {8 + n + end:,} of {size:,}",
                "fetch the file again",
            )
        shape = tuple(int(d) for d in info["shape"])
        n_el = 1
        for d in shape:
            n_el *= d
        out.append(TensorInfo(tname, str(info["dtype"]), shape, n_el, int(end - start)))
    return out


def _special(value: Any) -> str | None:
    if isinstance(value, dict):  # AddedToken serialised form
        return value.get("content")
    return value if isinstance(value, str) else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = read_json(path)
    except BadInputError as exc:
        raise CorruptModelError(f"{exc.where}: {exc.reason}") from None
    if not isinstance(data, dict):
        raise CorruptModelError(f"{path} does not hold a JSON object")
    return data


def spec_from_hf_dir(path: Path) -> ModelSpec:
    """A directory holding config.json (and optionally safetensors and tokenizer files), or a config.json."""
    cfg_path = path if path.is_file() else path / "config.json"
    root = cfg_path.parent
    if not cfg_path.exists():
        raise ModelNotFoundError(f"{path} has no config.json", "pass a Hugging Face model directory or a GGUF file")
    cfg = _read_json(cfg_path)
    tensors: list[TensorInfo] = []
    files = sorted(root.glob("*.safetensors"))
    for st in files:
        tensors.extend(read_safetensors_header(st))
    tok_cfg_path = root / "tokenizer_config.json"
    tok_cfg = _read_json(tok_cfg_path) if tok_cfg_path.exists() else {}
    template = tok_cfg.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": "default", "template": ...}, ...]
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default") or next(iter(named.values()), None)
    jinja_file = root / "chat_template.jinja"
    if jinja_file.exists():
        template = read_text(jinja_file)
    tok = TokenizerFacts(
        bos_token=_special(tok_cfg.get("bos_token")),
        eos_token=_special(tok_cfg.get("eos_token")),
        add_bos_token=tok_cfg.get("add_bos_token"),
        add_eos_token=tok_cfg.get("add_eos_token"),
    )
    return spec_from_hf_config(
        cfg,
        name=root.name,
        source="hf",
        path=root,
        tensors=tuple(tensors),
        tokenizer=tok,
        chat_template=template,
        file_bytes=sum(f.stat().st_size for f in files) or None,
    )
