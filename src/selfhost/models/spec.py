"""ModelSpec: what a model *is*, as read from its files (or a catalog entry's published config).

Every capability (fit, context, template, quant, ...) takes a ModelSpec. Values are never guessed
when a file states them; where a value had to be derived, ``derived`` names it and says how.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TensorInfo", "TokenizerFacts", "MLAFacts", "RecurrentFacts", "ModelSpec"]


@dataclass(frozen=True)
class TensorInfo:
    name: str
    type: str  # ggml type name (Q4_1, F32, ...) or safetensors dtype (BF16, F16, ...)
    shape: tuple[int, ...]
    n_elements: int
    n_bytes: int
    offset: int | None = None  # absolute offset of the data in a GGUF file (llama.cpp maps file ranges)


@dataclass(frozen=True)
class TokenizerFacts:
    model: str | None = None  # e.g. "gpt2" (BPE), "llama" (SentencePiece)
    bos_token: str | None = None
    eos_token: str | None = None
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    add_bos_token: bool | None = None
    add_eos_token: bool | None = None


@dataclass(frozen=True)
class MLAFacts:
    """Multi-head latent attention (DeepSeek V2/V3): the KV cache stores a compressed latent."""

    kv_lora_rank: int
    qk_rope_head_dim: int
    q_lora_rank: int | None = None
    qk_nope_head_dim: int | None = None
    v_head_dim: int | None = None


@dataclass(frozen=True)
class RecurrentFacts:
    """Layers that keep a recurrent state per sequence instead of a KV cache (Mamba's SSM, LFM2's short convolution),
    with the widths llama.cpp sizes that state from (llama_hparams::n_embd_r, n_embd_s)."""

    layers: tuple[bool, ...]  # which layers are recurrent
    hidden_size: int
    d_conv: int = 0  # ssm.conv_kernel
    d_inner: int = 0  # ssm.inner_size
    d_state: int = 0  # ssm.state_size
    n_group: int = 0  # ssm.group_count (Mamba-2)
    dt_rank: int = 0  # ssm.time_step_rank (Mamba-2: its heads)
    shortconv_l_cache: int = 0  # LFM2's convolution length

    @property
    def r_elements(self) -> int:
        """The convolution state of one layer and sequence (n_embd_r)."""
        if self.shortconv_l_cache:
            return self.hidden_size * (self.shortconv_l_cache - 1)
        return max(self.d_conv - 1, 0) * (self.d_inner + 2 * self.n_group * self.d_state)

    @property
    def s_elements(self) -> int:
        """The SSM state of one layer and sequence (n_embd_s)."""
        return self.d_state * self.d_inner


@dataclass
class ModelSpec:
    name: str
    source: str  # "gguf", "hf", "ollama", "catalog"
    architecture: str
    parameters: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    context_length: int
    vocab_size: int
    hidden_size: int
    intermediate_size: int | None = None
    head_dim_v: int | None = None
    # Per-layer facts; equal-length tuples of n_layers entries.
    n_kv_heads_per_layer: tuple[int, ...] = ()
    sliding_window: int | None = None
    swa_layers: tuple[bool, ...] = ()
    n_experts: int = 0
    n_experts_used: int = 0
    n_shared_experts: int = 0
    active_parameters: int | None = None
    mla: MLAFacts | None = None
    recurrent: RecurrentFacts | None = None
    rope_theta: float | None = None
    tensors: tuple[TensorInfo, ...] = ()
    file_bytes: int | None = None
    file_type: str | None = None  # quantization of the file as a whole, e.g. "Q4_1"
    path: Path | None = None
    source_url: str | None = None
    tokenizer: TokenizerFacts = field(default_factory=TokenizerFacts)
    chat_template: str | None = None
    # field name -> how it was obtained when not read verbatim from a file or config
    derived: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.n_kv_heads_per_layer:
            self.n_kv_heads_per_layer = (self.n_kv_heads,) * self.n_layers
        if not self.swa_layers:
            self.swa_layers = (False,) * self.n_layers
        if self.head_dim_v is None:
            self.head_dim_v = self.head_dim

    @property
    def is_moe(self) -> bool:
        return self.n_experts > 1

    @property
    def n_swa_layers(self) -> int:
        return sum(self.swa_layers)

    @property
    def tensor_types(self) -> dict[str, int]:
        """Tensor type -> number of tensors of that type."""
        return dict(sorted(Counter(t.type for t in self.tensors).items()))

    @property
    def tensor_bytes_by_type(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for t in self.tensors:
            totals[t.type] += t.n_bytes
        return dict(sorted(totals.items()))

    @property
    def weights_bytes(self) -> int | None:
        """Exact bytes of all tensors when the file is at hand, else None."""
        return sum(t.n_bytes for t in self.tensors) if self.tensors else None

    @property
    def bits_per_weight(self) -> float | None:
        wb = self.weights_bytes
        n = sum(t.n_elements for t in self.tensors)
        return 8 * wb / n if wb and n else None

    def to_dict(self) -> dict[str, Any]:
        """The `selfhost info --json` contract (DESIGN.md §2), plus additive fields."""
        tok = self.tokenizer
        return {
            "name": self.name,
            "source": self.source,
            "path": str(self.path) if self.path else None,
            "source_url": self.source_url,
            "architecture": self.architecture,
            "parameters": self.parameters,
            "active_parameters": self.active_parameters,
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "n_kv_heads": self.n_kv_heads,
            "n_kv_heads_per_layer": list(self.n_kv_heads_per_layer),
            "head_dim": self.head_dim,
            "head_dim_v": self.head_dim_v,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "context_length": self.context_length,
            "vocab_size": self.vocab_size,
            "rope_theta": self.rope_theta,
            "sliding_window": self.sliding_window,
            "swa_layers": [i for i, s in enumerate(self.swa_layers) if s],
            "n_experts": self.n_experts,
            "n_experts_used": self.n_experts_used,
            "n_shared_experts": self.n_shared_experts,
            "mla": None if self.mla is None else vars(self.mla),
            "chat_template": self.chat_template,
            "bos_token": tok.bos_token,
            "eos_token": tok.eos_token,
            "add_bos_token": tok.add_bos_token,
            "add_eos_token": tok.add_eos_token,
            "tokenizer_model": tok.model,
            "file_bytes": self.file_bytes,
            "file_type": self.file_type,
            "weights_bytes": self.weights_bytes,
            "bits_per_weight": self.bits_per_weight,
            "tensor_types": self.tensor_types,
            "tensor_bytes_by_type": self.tensor_bytes_by_type,
            "n_tensors": len(self.tensors),
            "derived": dict(self.derived),
        }
