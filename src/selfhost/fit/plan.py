"""Memory plans: where every byte goes, on which device, and whether it fits. Each engine's rules live in
fit/engines/ (one module per engine); this module holds the request and plan types and the checks all share.

Components and their sources:
  weights   exact tensor bytes from the file, else parameters × whole-file bits per weight (fit.weights)
  KV cache  llama.cpp's allocation rules (fit.kv), exact; vLLM: what is left of its budget, in tokens
  compute   llama.cpp compute buffer estimate (fit.compute); vLLM: profiled activation peak (llm-d's
            empirical table, see VLLM_ACTIVATION_BYTES)
  overhead  output logits, the tokenizer's vocabulary in host memory (fit.compute), a per-GPU runtime
            reserve (CUDA context etc.): ASSUMED, see GPU_RUNTIME_BYTES; on the CPU, ggml's work buffer
            (fit.cpu_work); for llama-server, its process (fit.server_process, fitted)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfhost.errors import UsageError
from selfhost.fit.weights import WeightsPlan
from selfhost.hardware.catalog import Device
from selfhost.models.spec import ModelSpec

__all__ = ["CTX_STEP", "FitRequest", "DevicePlan", "FitPlan", "plan"]

CTX_STEP = 256  # contexts are planned in llama.cpp's KV padding unit


@dataclass(frozen=True)
class FitRequest:
    quant: str | None = None
    n_ctx: int = 8192
    parallel: int = 1
    kv_type: str = "f16"
    engine: str = "llama.cpp"
    gpus: tuple[Device, ...] = ()
    host: Device | None = None  # RAM; None: not checked
    n_gpu_layers: int | None = None  # llama.cpp/Ollama: None = as many as fit
    n_cpu_moe: int = 0  # llama.cpp --n-cpu-moe: expert tensors of the first N layers stay in host RAM
    flash_attn: bool = True
    kv_unified: bool = False
    n_ubatch: int = 512
    # llama.cpp: does the server cap the reserve graph's outputs at its slots? None: the engine's own rule
    # (llama-server yes; llama-cpp-python's server and Ollama keep every micro-batch token an output)
    outputs_per_slot: bool | None = None
    gpu_memory_utilization: float = 0.9
    tensor_parallel: int | None = None  # vLLM: default = number of GPUs
    kv_cache_memory_bytes: int | None = None  # vLLM --kv-cache-memory-bytes (its CPU build's KV size)
    mmproj: Path | None = None  # llama.cpp: a vision projector loaded beside the model (fit.projector)
    # llama.cpp on the CPU with a local GGUF: take the compute buffer from llama.cpp's own allocator in a dry run
    # (fit/dry_run.py) instead of the formula. Off by default: the solver plans hundreds of variants.
    dry_run: bool = False
    # ... and for a model known only by its config, on a GGUF header built from it (fit/config_dry_run.py)
    config_dry_run: bool = False


@dataclass
class DevicePlan:
    name: str
    capacity_bytes: int
    components: dict[str, int]

    @property
    def used_bytes(self) -> int:
        return sum(self.components.values())

    @property
    def margin_bytes(self) -> int:
        return self.capacity_bytes - self.used_bytes

    @property
    def fits(self) -> bool:
        return self.margin_bytes >= 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "capacity_bytes": self.capacity_bytes,
            "used_bytes": self.used_bytes,
            "margin_bytes": self.margin_bytes,
            "fits": self.fits,
            "components": dict(self.components),
        }


@dataclass
class FitPlan:
    engine: str
    quant: str
    n_ctx: int
    parallel: int
    kv_type: str
    weights: WeightsPlan
    kv_cache_bytes: int
    compute_bytes: int
    overhead_bytes: int
    per_device: list[DevicePlan]
    n_gpu_layers: int | None = None
    kv_capacity_tokens: int | None = None  # vLLM
    recurrent_state_bytes: int = 0  # llama.cpp: Mamba/LFM2-style layers' per-sequence state (fit.recurrent)
    notes: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def weights_bytes(self) -> int:
        return self.weights.bytes

    @property
    def total_bytes(self) -> int:
        return (
            sum(d.used_bytes for d in self.per_device)
            if self.per_device
            else (
                self.weights_bytes
                + self.kv_cache_bytes
                + self.recurrent_state_bytes
                + self.compute_bytes
                + self.overhead_bytes
            )
        )

    @property
    def fits(self) -> bool:
        return all(d.fits for d in self.per_device)

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "quant": self.quant,
            "n_ctx": self.n_ctx,
            "parallel": self.parallel,
            "kv_type": self.kv_type,
            "weights_bytes": self.weights_bytes,
            "weights_exact": self.weights.exact,
            "weights_source": self.weights.source,
            "kv_cache_bytes": self.kv_cache_bytes,
            "recurrent_state_bytes": self.recurrent_state_bytes,
            "compute_bytes": self.compute_bytes,
            "overhead_bytes": self.overhead_bytes,
            "total_bytes": self.total_bytes,
            "fits": self.fits,
            "n_gpu_layers": self.n_gpu_layers,
            "kv_capacity_tokens": self.kv_capacity_tokens,
            "per_device": [d.to_dict() for d in self.per_device],
            "notes": list(self.notes),
            "detail": self.detail,
        }


# Architectures with a recurrent (state-space / linear-attention) state per sequence, alone or beside attention
# layers, as llama.cpp (GGUF) and transformers (model_type) name them. fit models the state of Mamba, Mamba-2, Granite
# 4.0-H and LFM2 GGUFs (spec.recurrent, fit.recurrent); the others, and these from a config.json, are refused: without
# the state their plan was 37-90 % under llama.cpp's buffers.
RECURRENT_STATE_ARCHITECTURES = frozenset(
    {
        "mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7",  # recurrent only
        "jamba", "falcon-h1", "falcon_h1", "granitehybrid", "granitemoehybrid", "lfm2", "lfm2moe", "qwen3next",
        "qwen3_next", "nemotron_h", "plamo2", "bamba", "zamba2", "kimi-linear", "kimi_linear", "minimax-m2-linear",
    }
)  # fmt: skip


def _validate(spec: ModelSpec, req: FitRequest) -> None:
    """What every engine refuses; engine-specific checks are the engine's own (fit/engines/)."""
    if spec.architecture.lower() in RECURRENT_STATE_ARCHITECTURES and spec.recurrent is None:
        raise UsageError(
            f"{spec.name} ({spec.architecture}) keeps a recurrent state per sequence, which fit does not model yet: "
            "its memory plan would be wrong",
            "measure it instead: start the engine and read the KV cache and recurrent-state sizes in its startup log",
        )
    no_attention = spec.head_dim <= 0 or not any(spec.n_kv_heads_per_layer)
    if spec.n_layers <= 0 or (no_attention and spec.recurrent is None):
        raise UsageError(
            f"{spec.name} has no attention facts (layers, KV heads, head dim); cannot plan its memory",
            "pass the model's GGUF file or config.json",
        )
    if req.n_ctx <= 0:
        raise UsageError(f"context must be positive, got {req.n_ctx}")
    if spec.context_length and req.n_ctx > spec.context_length:
        raise UsageError(
            f"context {req.n_ctx:,} is above {spec.name}'s limit of {spec.context_length:,} tokens",
            f"use --ctx {spec.context_length} or less (rope scaling beyond the trained length is not modelled)",
        )
    if req.parallel <= 0:
        raise UsageError(f"parallel slots must be at least 1, got {req.parallel}")


def plan(spec: ModelSpec, req: FitRequest) -> FitPlan:
    from selfhost.fit.engines import get_engine

    engine = get_engine(req.engine)
    _validate(spec, req)
    engine.validate(spec, req)
    return engine.plan(spec, req)
