"""Memory plans per engine: where every byte goes, on which device, and whether it fits.

Components and their sources:
  weights   exact tensor bytes from the file, else parameters × whole-file bits per weight (fit.weights)
  KV cache  llama.cpp's allocation rules (fit.kv), exact; vLLM: what is left of its budget, in tokens
  compute   llama.cpp compute buffer estimate (fit.compute); vLLM: profiled activation peak (llm-d's
            empirical table, see VLLM_ACTIVATION_BYTES)
  overhead  output logits, the tokenizer's vocabulary in host memory (fit.compute), and a per-GPU runtime
            reserve (CUDA context etc.): ASSUMED, see GPU_RUNTIME_BYTES; the process binary itself is not counted
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from selfhost.errors import UsageError
from selfhost.fit.compute import llamacpp_compute_bytes, llamacpp_output_bytes, llamacpp_vocab_bytes
from selfhost.fit.kv import LlamaCppKVConfig, kv_bytes_per_token, llamacpp_kv, row_bytes
from selfhost.fit.weights import FILE_BPW, WeightsPlan, cpu_repack_bytes, layer_bytes, weights_plan
from selfhost.hardware.catalog import Device
from selfhost.models.spec import ModelSpec

__all__ = ["ENGINES", "FitRequest", "DevicePlan", "FitPlan", "plan", "GPU_RUNTIME_BYTES", "OLLAMA_GPU_RESERVE_BYTES"]

MIB = 1024**2
GIB = 1024**3
ENGINES = ("llama.cpp", "ollama", "vllm")
# CUDA context + cuBLAS workspace per GPU, not reported by llama.cpp. Assumed from a public receipt: ollama#6160
# shows nvidia-smi 309 MiB above llama.cpp's buffers; measure yours with `selfhost fit --verify` on a GPU.
GPU_RUNTIME_BYTES = 320 * MIB
# Ollama reserves this much of every GPU before placing layers (llm/server.go, envconfig GpuOverhead default).
OLLAMA_GPU_RESERVE_BYTES = 457 * MIB
# vLLM profiled activation peak at default max_num_batched_tokens, H100, from llm-d config_explorer
# empirical-vllm-memory-results.md: Llama-3.1-8B 4.76 GiB, Qwen3-0.6B 5.56 GiB, gpt-oss-20b (MoE) 7.38 GiB.
VLLM_ACTIVATION_BYTES = {"dense": int(4.8 * GIB), "qwen3": int(5.6 * GIB), "moe": int(8.0 * GIB)}
VLLM_NON_TORCH_BYTES = {1: int(0.15 * GIB), 2: int(0.6 * GIB)}  # same source: TP1 vs TP>=2
VLLM_CUDA_GRAPH_BYTES = int(0.4 * GIB)  # same source: -0.45 .. +0.39 GiB observed; assumed upper end


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
    gpu_memory_utilization: float = 0.9
    tensor_parallel: int | None = None  # vLLM: default = number of GPUs


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
            else (self.weights_bytes + self.kv_cache_bytes + self.compute_bytes + self.overhead_bytes)
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


def _validate(spec: ModelSpec, req: FitRequest) -> None:
    if req.engine not in ENGINES:
        raise UsageError(f"unknown engine {req.engine!r}", f"valid engines: {', '.join(ENGINES)}")
    if spec.n_layers <= 0 or spec.head_dim <= 0 or not any(spec.n_kv_heads_per_layer):
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
    if req.engine != "vllm" and not req.kv_unified and req.n_ctx // req.parallel < 1:
        raise UsageError(
            f"{req.parallel} parallel slots cannot share a context of {req.n_ctx} tokens",
            "raise --ctx or lower --parallel",
        )
    if req.engine == "vllm" and not req.gpus:
        raise UsageError("vLLM needs at least one GPU", "name one with --gpu, e.g. --gpu H100")
    row_bytes(req.kv_type, spec.head_dim)  # unknown KV type / incompatible row size -> UsageError


def _layer_weights(spec: ModelSpec, w: WeightsPlan) -> tuple[list[int], int]:
    """Bytes per repeating layer, and of the rest (embeddings/output), exact when the file is at hand."""
    if w.exact and spec.tensors:
        return layer_bytes(spec)
    tied = bool(spec.extra.get("tie_word_embeddings"))
    emb_params = spec.vocab_size * spec.hidden_size * (1 if tied else 2)
    bpw = FILE_BPW.get(w.quant, 16.0)
    other = int(emb_params * bpw / 8)
    per = max(0, w.bytes - other) // spec.n_layers
    return [per] * spec.n_layers, other


def _expert_layer_bytes(spec: ModelSpec, w: WeightsPlan, w_layers: list[int]) -> list[int]:
    """Bytes of the routed-expert tensors in each layer (what --n-cpu-moe keeps on the CPU)."""
    if not spec.is_moe:
        return [0] * spec.n_layers
    if w.exact and spec.tensors:
        per = [0] * spec.n_layers
        for t in spec.tensors:
            if "_exps." in t.name and t.name.startswith("blk."):
                per[int(t.name.split(".")[1])] += t.n_bytes
        return per
    # total = shared + E·p and active = shared + u·p, so all experts hold (total − active)·E/(E − u) parameters.
    if not spec.active_parameters or spec.n_experts <= spec.n_experts_used:
        return [0] * spec.n_layers
    experts = (spec.parameters - spec.active_parameters) * spec.n_experts / (spec.n_experts - spec.n_experts_used)
    body = spec.parameters - spec.vocab_size * spec.hidden_size * (1 if spec.extra.get("tie_word_embeddings") else 2)
    frac = min(1.0, experts / body) if body > 0 else 0.0
    return [int(b * frac) for b in w_layers]


def _kv_per_layer(spec: ModelSpec, cfg: LlamaCppKVConfig) -> tuple[list[int], int]:
    kvp = llamacpp_kv(spec, cfg)
    cells = {c.kind: c.cells * c.streams for c in kvp.caches}
    per: list[int] = []
    for il, swa in enumerate(spec.swa_layers):
        dk = (
            (spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim)
            if spec.mla
            else spec.n_kv_heads_per_layer[il] * spec.head_dim
        )
        dv = 0 if spec.mla else spec.n_kv_heads_per_layer[il] * (spec.head_dim_v or spec.head_dim)
        n = cells.get("swa" if swa else "full", 0)
        per.append(n * (row_bytes(cfg.type_k, dk) + (row_bytes(cfg.type_v, dv) if dv else 0)))
    return per, kvp.n_ctx


def _llamacpp_like(spec: ModelSpec, req: FitRequest) -> FitPlan:
    w = weights_plan(spec, req.quant)
    ollama = req.engine == "ollama"
    # --ctx is what each request may use. llama-server's -c is the total that its slots share, and Ollama asks
    # llama.cpp for num_ctx × num_parallel cells, so both allocate ctx × parallel.
    n_ctx_total = req.n_ctx * req.parallel
    cfg = LlamaCppKVConfig(
        n_ctx_total,
        req.parallel,
        req.kv_type,
        req.kv_type,
        kv_unified=req.kv_unified or ollama,
        swa_full=False,
        n_ubatch=req.n_ubatch,
    )
    kv_layers, n_ctx_eff = _kv_per_layer(spec, cfg)
    w_layers, w_other = _layer_weights(spec, w)
    n_cpu_moe = min(max(req.n_cpu_moe, 0), spec.n_layers)
    cpu_experts = _expert_layer_bytes(spec, w, w_layers)[:n_cpu_moe] if n_cpu_moe else []
    # Experts of the first n_cpu_moe layers move from wherever their layer is to host RAM.
    w_layers = [b - (cpu_experts[i] if i < len(cpu_experts) else 0) for i, b in enumerate(w_layers)]
    compute = llamacpp_compute_bytes(spec, cfg, req.flash_attn)
    output = llamacpp_output_bytes(spec, req.parallel)
    reserve = OLLAMA_GPU_RESERVE_BYTES if ollama else GPU_RUNTIME_BYTES
    vocab = llamacpp_vocab_bytes(spec)
    gpus = list(req.gpus)
    n_layers = spec.n_layers

    def layout(ngl: int) -> list[DevicePlan]:
        """The last `ngl` layers on the GPUs, split in proportion to their memory (llama.cpp's default)."""
        devices: list[DevicePlan] = []
        first_gpu_layer = n_layers - min(ngl, n_layers)
        if gpus and ngl > 0:
            total_cap = sum(g.usable_bytes for g in gpus)
            start = first_gpu_layer
            for i, g in enumerate(gpus):
                share = round((n_layers - first_gpu_layer) * g.usable_bytes / total_cap)
                end = n_layers if i == len(gpus) - 1 else min(n_layers, start + share)
                comps = {
                    "weights": sum(w_layers[start:end]),
                    "kv_cache": sum(kv_layers[start:end]),
                    "compute": compute,
                    "runtime_reserve": reserve,
                }
                if i == len(gpus) - 1 and ngl > n_layers:
                    comps["weights"] += w_other - _embedding_bytes(spec, w)  # output layer and final norm
                devices.append(DevicePlan(f"{g.name} #{i}", g.usable_bytes, comps))
                start = end
        host_comps = {
            "weights": sum(w_layers[:first_gpu_layer])
            + (_embedding_bytes(spec, w) if ngl > n_layers else w_other)
            + sum(cpu_experts),
            "kv_cache": sum(kv_layers[:first_gpu_layer]),
            "compute": compute if first_gpu_layer > 0 or not gpus else 0,
            "output": output,
            "tokenizer_vocab": vocab,
        }
        if first_gpu_layer > 0 or not gpus:
            host_comps["cpu_repack"] = cpu_repack_bytes(spec) if w.exact else 0
        if req.host is not None:
            devices.append(DevicePlan(f"host RAM ({req.host.name})", req.host.usable_bytes, host_comps))
        elif not gpus:
            devices.append(DevicePlan("host RAM (unchecked)", 2**62, host_comps))
        return devices

    if not gpus:
        ngl = 0
    elif req.n_gpu_layers is not None:
        ngl = max(0, min(req.n_gpu_layers, n_layers + 1))
    else:
        ngl = n_layers + 1
        while ngl > 0 and not all(d.fits for d in layout(ngl) if not d.name.startswith("host")):
            ngl -= 1
    devices = layout(ngl)
    notes = [
        f"KV cache: llama.cpp allocation rules, {n_ctx_eff:,} cells in all"
        + (f" (Ollama: num_ctx {req.n_ctx:,} × num_parallel {req.parallel})" if ollama else "")
    ]
    if gpus:
        notes.append(
            f"per-GPU runtime reserve {reserve // MIB} MiB is "
            + ("Ollama's own reserve" if ollama else "assumed (CUDA context; not logged by llama.cpp)")
        )
    if not w.exact:
        notes.append(f"weights estimated: {w.source}")
    if cpu_experts:
        notes.append(f"--n-cpu-moe {n_cpu_moe}: {sum(cpu_experts) / GIB:.2f} GiB of expert weights stay in host RAM")
    plan_ = FitPlan(
        engine=req.engine,
        quant=w.quant,
        n_ctx=req.n_ctx,
        parallel=req.parallel,
        kv_type=req.kv_type,
        weights=w,
        kv_cache_bytes=sum(kv_layers),
        compute_bytes=compute,
        overhead_bytes=output + vocab + reserve * len(gpus),
        per_device=devices,
        n_gpu_layers=ngl if gpus else None,
        notes=notes,
        detail={
            "n_ctx_cells": n_ctx_eff,
            "flash_attn": req.flash_attn,
            "n_ubatch": req.n_ubatch,
            "kv_unified": cfg.kv_unified,
        },
    )
    return plan_


def _embedding_bytes(spec: ModelSpec, w: WeightsPlan) -> int:
    if w.exact and spec.tensors:
        return sum(t.n_bytes for t in spec.tensors if t.name == "token_embd.weight")
    return int(spec.vocab_size * spec.hidden_size * FILE_BPW.get(w.quant, 16.0) / 8)


def _vllm(spec: ModelSpec, req: FitRequest) -> FitPlan:
    tp = req.tensor_parallel or len(req.gpus)
    if tp > len(req.gpus):
        raise UsageError(f"tensor parallel {tp} needs {tp} GPUs; {len(req.gpus)} given", "add --gpus or lower --tp")
    if spec.n_heads % tp:
        raise UsageError(f"tensor parallel {tp} does not divide {spec.name}'s {spec.n_heads} attention heads")
    quant = (req.quant or "BF16").upper()
    if spec.source == "hf" and spec.tensors and quant in ("BF16", "F16", (spec.file_type or "").upper()):
        w = WeightsPlan(quant, spec.weights_bytes or 0, True, "sum of the safetensors tensor bytes")
    elif quant in ("BF16", "F16", "FP8"):
        bits = 8.0 if quant == "FP8" else 16.0
        total = spec.parameters - int(spec.extra.get("vision_parameters") or 0)
        w = WeightsPlan(quant, int(total * bits / 8), False, f"{total:,} parameters × {bits} bits")
    else:
        raise UsageError(f"vLLM plans support BF16, F16 and FP8 weights, not {quant}")
    kv_elem = {"f16": "f16", "bf16": "bf16", "fp8": "q8_0", "auto": "f16"}.get(req.kv_type, req.kv_type)
    kv_bytes_elem = 1 if req.kv_type in ("fp8", "fp8_e4m3", "fp8_e5m2") else 2
    # Per rank, KV heads are split over TP (replicated when there are fewer heads than ranks).
    kv_tok = kv_bytes_per_token(spec, "f16", context=req.n_ctx) * kv_bytes_elem / 2
    if not spec.mla:
        kv_tok = kv_tok * max(1, spec.n_kv_heads // tp) / spec.n_kv_heads
    family = "moe" if spec.is_moe else ("qwen3" if spec.architecture.startswith("qwen3") else "dense")
    act = VLLM_ACTIVATION_BYTES[family]
    non_torch = VLLM_NON_TORCH_BYTES[1 if tp == 1 else 2]
    devices: list[DevicePlan] = []
    capacity_tokens = None
    for i, g in enumerate(req.gpus[:tp]):
        budget = int(g.memory_bytes * req.gpu_memory_utilization)
        fixed = {
            "weights": w.bytes // tp,
            "activation_peak": act,
            "non_torch": non_torch,
            "cuda_graphs": VLLM_CUDA_GRAPH_BYTES,
        }
        kv_budget = budget - sum(fixed.values())
        tokens = max(0, int(kv_budget // kv_tok)) if kv_tok else 0
        capacity_tokens = tokens if capacity_tokens is None else min(capacity_tokens, tokens)
        need = int(req.n_ctx * req.parallel * kv_tok)
        devices.append(
            DevicePlan(f"{g.name} #{i} (×{req.gpu_memory_utilization} budget)", budget, fixed | {"kv_cache": need})
        )
    plan_ = FitPlan(
        engine="vllm",
        quant=quant,
        n_ctx=req.n_ctx,
        parallel=req.parallel,
        kv_type=kv_elem,
        weights=w,
        kv_cache_bytes=int(req.n_ctx * req.parallel * kv_tok) * tp,
        compute_bytes=act * tp,
        overhead_bytes=(non_torch + VLLM_CUDA_GRAPH_BYTES) * tp,
        per_device=devices,
        kv_capacity_tokens=capacity_tokens,
        notes=[
            f"vLLM budgets gpu_memory_utilization ({req.gpu_memory_utilization}) × total memory per GPU and gives "
            "what is left after weights, activation peak and CUDA graphs to the KV cache",
            f"activation peak {act / GIB:.1f} GiB: llm-d empirical profile for {family} models (assumed)",
            f"KV capacity {capacity_tokens:,} tokens = max concurrency "
            f"{(capacity_tokens or 0) / req.n_ctx:.2f}× at max_model_len {req.n_ctx:,}",
        ],
        detail={"tensor_parallel": tp, "kv_bytes_per_token_per_rank": kv_tok},
    )
    return plan_


def plan(spec: ModelSpec, req: FitRequest) -> FitPlan:
    _validate(spec, req)
    return _vllm(spec, req) if req.engine == "vllm" else _llamacpp_like(spec, req)
