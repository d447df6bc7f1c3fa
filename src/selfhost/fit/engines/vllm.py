"""vLLM: on GPUs it budgets gpu_memory_utilization × each GPU's memory and gives what is left after weights, the
profiled activation peak, non-torch memory and CUDA graphs to the KV cache, in tokens; tensor parallel splits
weights and KV heads over GPUs that all read at once. `--kv-cache-memory-bytes` replaces that budget with a fixed
KV size, which is also how vLLM's CPU build sizes its cache (VLLM_CPU_KVCACHE_SPACE is the legacy spelling).

The KV cache is allocated in blocks of 16 tokens (vLLM's default block size on GPU and its CPU attention backend), so
the capacity vLLM logs is a whole number of blocks: checked against a real vLLM CPU log in tests/serve/test_vllm.py."""

from __future__ import annotations

import shlex

from selfhost.errors import UsageError
from selfhost.fit.engines.base import GIB, Engine, register
from selfhost.fit.kv import kv_bytes_per_token
from selfhost.fit.plan import CTX_STEP, DevicePlan, FitPlan, FitRequest
from selfhost.fit.weights import WeightsPlan
from selfhost.models.spec import ModelSpec

__all__ = [
    "VllmEngine",
    "VLLM_ACTIVATION_BYTES",
    "VLLM_NON_TORCH_BYTES",
    "VLLM_CUDA_GRAPH_BYTES",
    "VLLM_KV_DTYPES",
    "VLLM_BLOCK_TOKENS",
    "VLLM_CPU_DEFAULT_KV_BYTES",
]

# vLLM profiled activation peak at default max_num_batched_tokens, H100, from llm-d config_explorer
# empirical-vllm-memory-results.md: Llama-3.1-8B 4.76 GiB, Qwen3-0.6B 5.56 GiB, gpt-oss-20b (MoE) 7.38 GiB.
VLLM_ACTIVATION_BYTES = {"dense": int(4.8 * GIB), "qwen3": int(5.6 * GIB), "moe": int(8.0 * GIB)}
VLLM_NON_TORCH_BYTES = {1: int(0.15 * GIB), 2: int(0.6 * GIB)}  # same source: TP1 vs TP>=2
VLLM_CUDA_GRAPH_BYTES = int(0.4 * GIB)  # same source: -0.45 .. +0.39 GiB observed; assumed upper end
VLLM_BLOCK_TOKENS = 16
# fit's --kv-type -> (vLLM --kv-cache-dtype, bytes per element); f16 is fit's default and means the model's dtype.
VLLM_KV_DTYPES = {
    "f16": ("auto", 2),
    "auto": ("auto", 2),
    "bf16": ("bfloat16", 2),
    "fp8": ("fp8", 1),
    "fp8_e4m3": ("fp8_e4m3", 1),
    "fp8_e5m2": ("fp8_e5m2", 1),
}
# What selfhost gives vLLM's CPU build when --kv-cache-memory is not set (vLLM's own default on CPU depends on the
# memory free at start, so selfhost always passes the size explicitly).
VLLM_CPU_DEFAULT_KV_BYTES = 4 * GIB


class VllmEngine(Engine):
    name = "vllm"
    tensor_parallel = True

    def validate(self, spec: ModelSpec, req: FitRequest) -> None:
        if req.kv_type not in VLLM_KV_DTYPES:
            raise UsageError(
                f"vLLM has no KV cache type {req.kv_type!r}",
                f"--kv-type for vLLM: {', '.join(VLLM_KV_DTYPES)} (q8_0/q4_0 are llama.cpp's)",
            )
        if not req.gpus and req.host is None:
            raise UsageError(
                "vLLM needs at least one GPU, or a CPU host to plan its CPU build",
                "name one with --gpu, e.g. --gpu H100",
            )

    def candidate_quants(self, spec: ModelSpec) -> list[str]:
        return (["MXFP4"] if _ships_mxfp4(spec) else []) + ["BF16", "FP8"]

    def max_context(self, spec: ModelSpec, req: FitRequest, quant: str) -> int:
        """vLLM reports its KV capacity in tokens: the largest context is that over the parallel sequences."""
        from dataclasses import replace

        limit = spec.context_length or 131072
        p = self.plan(spec, replace(self.full_offload(spec, replace(req, quant=quant)), n_ctx=min(limit, req.n_ctx)))
        tokens = p.kv_capacity_tokens or 0
        return min(limit, tokens // req.parallel // CTX_STEP * CTX_STEP)

    def plan(self, spec: ModelSpec, req: FitRequest) -> FitPlan:
        tp = req.tensor_parallel or max(1, len(req.gpus))
        if req.gpus and tp > len(req.gpus):
            raise UsageError(f"tensor parallel {tp} needs {tp} GPUs; {len(req.gpus)} given", "add --gpus or lower --tp")
        if spec.n_heads % tp:
            raise UsageError(f"tensor parallel {tp} does not divide {spec.name}'s {spec.n_heads} attention heads")
        quant = (req.quant or ("MXFP4" if _ships_mxfp4(spec) else "BF16")).upper()
        if spec.source == "hf" and spec.tensors and quant in ("BF16", "F16", (spec.file_type or "").upper()):
            w = WeightsPlan(quant, spec.weights_bytes or 0, True, "sum of the safetensors tensor bytes")
        elif quant == "MXFP4":
            w = _mxfp4_weights(spec)
        elif quant in ("BF16", "F16", "FP8"):
            bits = 8.0 if quant == "FP8" else 16.0
            total = spec.parameters - int(spec.extra.get("vision_parameters") or 0)
            w = WeightsPlan(quant, int(total * bits / 8), False, f"{total:,} parameters × {bits} bits")
        else:
            raise UsageError(f"vLLM plans support BF16, F16 and FP8 weights, not {quant}")
        kv_dtype, kv_bytes_elem = VLLM_KV_DTYPES[req.kv_type]
        # Per rank, KV heads are split over TP (replicated when there are fewer heads than ranks).
        kv_tok = kv_bytes_per_token(spec, "f16", context=req.n_ctx) * kv_bytes_elem / 2
        if not spec.mla:
            kv_tok = kv_tok * max(1, spec.n_kv_heads // tp) / spec.n_kv_heads
        if not req.gpus:
            return self._cpu_plan(spec, req, quant, w, kv_tok, kv_dtype)
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
            kv_budget = req.kv_cache_memory_bytes or budget - sum(fixed.values())
            tokens = _capacity_tokens(kv_budget, kv_tok)
            capacity_tokens = tokens if capacity_tokens is None else min(capacity_tokens, tokens)
            need = int(req.n_ctx * req.parallel * kv_tok)
            devices.append(
                DevicePlan(f"{g.name} #{i} (×{req.gpu_memory_utilization} budget)", budget, fixed | {"kv_cache": need})
            )
        plan_ = FitPlan(
            engine=self.name,
            quant=quant,
            n_ctx=req.n_ctx,
            parallel=req.parallel,
            kv_type=kv_dtype,
            weights=w,
            kv_cache_bytes=int(req.n_ctx * req.parallel * kv_tok) * tp,
            compute_bytes=act * tp,
            overhead_bytes=(non_torch + VLLM_CUDA_GRAPH_BYTES) * tp,
            per_device=devices,
            kv_capacity_tokens=capacity_tokens,
            notes=[
                f"KV cache fixed by --kv-cache-memory-bytes at {req.kv_cache_memory_bytes / GIB:g} GiB per GPU"
                if req.kv_cache_memory_bytes
                else f"vLLM budgets gpu_memory_utilization ({req.gpu_memory_utilization}) × total memory per GPU and "
                "gives what is left after weights, activation peak and CUDA graphs to the KV cache",
                f"activation peak {act / GIB:.1f} GiB: llm-d empirical profile for {family} models (assumed)",
                f"KV capacity {capacity_tokens:,} tokens = max concurrency "
                f"{(capacity_tokens or 0) / req.n_ctx:.2f}× at max_model_len {req.n_ctx:,}",
            ],
            detail={"tensor_parallel": tp, "kv_bytes_per_token_per_rank": kv_tok},
        )
        return plan_

    def _cpu_plan(
        self, spec: ModelSpec, req: FitRequest, quant: str, w: WeightsPlan, kv_tok: float, kv_dtype: str
    ) -> FitPlan:
        """vLLM's CPU build: weights and a KV cache of exactly --kv-cache-memory-bytes in host RAM."""
        assert req.host is not None
        kv_memory = req.kv_cache_memory_bytes or VLLM_CPU_DEFAULT_KV_BYTES
        tokens = _capacity_tokens(kv_memory, kv_tok)
        device = DevicePlan(req.host.name, req.host.memory_bytes, {"weights": w.bytes, "kv_cache": kv_memory})
        return FitPlan(
            engine=self.name,
            quant=quant,
            n_ctx=req.n_ctx,
            parallel=req.parallel,
            kv_type=kv_dtype,
            weights=w,
            kv_cache_bytes=kv_memory,
            compute_bytes=0,
            overhead_bytes=0,
            per_device=[device],
            kv_capacity_tokens=tokens,
            notes=[
                f"vLLM on CPU: the KV cache is exactly --kv-cache-memory-bytes ({kv_memory / GIB:g} GiB), in blocks "
                f"of {VLLM_BLOCK_TOKENS} tokens of {kv_tok:,.0f} bytes each",
                f"KV capacity {tokens:,} tokens = max concurrency {tokens / req.n_ctx:.2f}× at max_model_len "
                f"{req.n_ctx:,}",
                "activations and the Python process itself are not modelled on CPU (assumed to fit in the rest of RAM)",
            ],
            detail={"tensor_parallel": 1, "kv_bytes_per_token_per_rank": kv_tok, "cpu": True},
        )

    def launch_argv(
        self, spec: ModelSpec, p: FitPlan, req: FitRequest, host: str = "127.0.0.1", port: int = 8000
    ) -> list[str]:
        repo = spec.extra.get("hf_repo") or (str(spec.path) if spec.source == "hf" else spec.name)
        tp = len(req.gpus) if req.gpus else 1
        argv = ["vllm", "serve", str(repo), "--max-model-len", str(req.n_ctx), "--max-num-seqs", str(req.parallel)]
        if req.gpus:
            argv += ["--gpu-memory-utilization", str(req.gpu_memory_utilization), "--tensor-parallel-size", str(tp)]
        kv_dtype = VLLM_KV_DTYPES.get(req.kv_type, ("auto", 2))[0]
        if kv_dtype != "auto":
            argv += ["--kv-cache-dtype", kv_dtype]
        kv_memory = req.kv_cache_memory_bytes or (None if req.gpus else VLLM_CPU_DEFAULT_KV_BYTES)
        if kv_memory:
            argv += ["--kv-cache-memory-bytes", str(kv_memory)]
        return argv + (["--host", host, "--port", str(port)] if (host, port) != ("127.0.0.1", 8000) else [])

    def launch_command(self, spec: ModelSpec, p: FitPlan, req: FitRequest) -> str:
        return shlex.join(self.launch_argv(spec, p, req))


def _ships_mxfp4(spec: ModelSpec) -> bool:
    """gpt-oss is published with MXFP4 experts (config: quantization_config.quant_method "mxfp4"), which vLLM
    loads as they are."""
    return "mxfp4" in (spec.file_type or "").lower() or spec.architecture == "gpt-oss"


# OCP Microscaling MXFP4: blocks of 32 E2M1 values (4 bits each) sharing one E8M0 scale (8 bits) = 4.25 bits/weight.
MXFP4_BITS = 4 + 8 / 32


def _mxfp4_weights(spec: ModelSpec) -> WeightsPlan:
    """Expert FFNs (gate, up, down: 3 × hidden × expert width per expert and layer) in MXFP4; the rest in bf16."""
    if not spec.is_moe or not spec.intermediate_size:
        raise UsageError(f"MXFP4 weights are planned for MoE experts; {spec.name} has none", "use --quant BF16 or FP8")
    experts = spec.n_layers * spec.n_experts * 3 * spec.hidden_size * spec.intermediate_size
    rest = spec.parameters - experts
    total = int(experts * MXFP4_BITS / 8 + rest * 2)
    how = f"{experts:,} expert weights × {MXFP4_BITS} bits (MXFP4) + {rest:,} others × 16 bits"
    return WeightsPlan("MXFP4", total, False, how)


def _capacity_tokens(kv_bytes: float, kv_bytes_per_token: float) -> int:
    """Whole blocks of VLLM_BLOCK_TOKENS tokens that fit KV_BYTES (what vLLM logs as 'KV cache size: N tokens')."""
    if kv_bytes <= 0 or not kv_bytes_per_token:
        return 0
    return int(kv_bytes // (kv_bytes_per_token * VLLM_BLOCK_TOKENS)) * VLLM_BLOCK_TOKENS


register(VllmEngine())
