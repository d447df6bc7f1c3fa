"""Answers built on plans: the largest context per quantization, the fit table, a recommendation,
speed bounds and ready-to-paste launch commands."""

from __future__ import annotations

import shlex
from dataclasses import replace
from typing import Any

from selfhost.errors import UsageError
from selfhost.fit.kv import kv_bytes_per_token
from selfhost.fit.plan import FitPlan, FitRequest, plan
from selfhost.fit.weights import FILE_BPW, QUANT_ORDER
from selfhost.hardware.catalog import Device
from selfhost.models.spec import ModelSpec

__all__ = [
    "ollama_default_context",
    "candidate_quants",
    "max_context",
    "fit_table",
    "speed_bounds",
    "launch_commands",
    "fit_answer",
]

CTX_STEP = 256


def candidate_quants(spec: ModelSpec, engine: str) -> list[str]:
    if engine == "vllm":
        return ["BF16", "FP8"]
    quants = list(QUANT_ORDER)
    if spec.tensors and spec.file_type and spec.file_type.upper() not in FILE_BPW:
        quants.append(spec.file_type.upper())  # the file's own quantization, exact
    return quants


def _full_offload(spec: ModelSpec, req: FitRequest) -> FitRequest:
    return replace(req, n_gpu_layers=spec.n_layers + 1) if req.gpus and req.engine != "vllm" else req


def _fits(spec: ModelSpec, req: FitRequest) -> bool:
    try:
        return plan(spec, req).fits
    except UsageError:
        return False


def max_context(spec: ModelSpec, req: FitRequest, quant: str) -> int:
    """Largest context (multiple of 256, up to the model's limit) that fits entirely on the devices."""
    limit = spec.context_length or 131072
    base = _full_offload(spec, replace(req, quant=quant))
    if req.engine == "vllm":
        p = plan(spec, replace(base, n_ctx=min(limit, req.n_ctx)))
        tokens = p.kv_capacity_tokens or 0
        return min(limit, tokens // req.parallel // CTX_STEP * CTX_STEP)
    lo, hi = 0, limit // CTX_STEP
    while lo < hi:  # memory grows monotonically with context
        mid = (lo + hi + 1) // 2
        if _fits(spec, replace(base, n_ctx=mid * CTX_STEP)):
            lo = mid
        else:
            hi = mid - 1
    return lo * CTX_STEP


def fit_table(
    spec: ModelSpec, req: FitRequest, quants: list[str], contexts: list[int], parallels: list[int]
) -> list[dict[str, Any]]:
    rows = []
    for q in quants:
        for ctx in contexts:
            if spec.context_length and ctx > spec.context_length:
                continue
            for par in parallels:
                try:
                    p = plan(spec, _full_offload(spec, replace(req, quant=q, n_ctx=ctx, parallel=par)))
                except UsageError:
                    continue
                margin = min(d.margin_bytes for d in p.per_device) if p.per_device else None
                rows.append(
                    {
                        "quant": p.quant,
                        "n_ctx": ctx,
                        "parallel": par,
                        "fits": p.fits,
                        "total_bytes": p.total_bytes,
                        "margin_bytes": margin,
                    }
                )
    return rows


def speed_bounds(spec: ModelSpec, p: FitPlan, req: FitRequest, host_bandwidth: float | None = None) -> dict[str, Any]:
    """Decode: memory bandwidth ÷ bytes read per token (active weights + KV at full context).
    Prefill: peak FLOPs ÷ (2 × active parameters). Both are ceilings, not predictions."""
    active_frac = (spec.active_parameters / spec.parameters) if spec.active_parameters and spec.parameters else 1.0
    weights_read = p.weights_bytes * active_frac
    kv_read = (
        kv_bytes_per_token(spec, p.kv_type if p.kv_type in ("f16", "q8_0", "q4_0") else "f16", context=p.n_ctx)
        * p.n_ctx
    )
    per_token = weights_read + kv_read
    out: dict[str, Any] = {
        "bytes_read_per_token": per_token,
        "decode_tokens_per_s_upper_bound": None,
        "prefill_tokens_per_s_upper_bound": None,
        "bandwidth_source": None,
    }
    active_params = spec.active_parameters or spec.parameters
    if req.gpus and (p.engine == "vllm" or (p.n_gpu_layers or 0) > spec.n_layers):
        gpus = req.gpus[: (p.detail.get("tensor_parallel") or len(req.gpus))]
        if p.engine == "vllm":  # tensor parallel: every GPU reads its shard at the same time
            bw = sum(g.bandwidth_bytes_per_s or 0 for g in gpus)
        else:  # layer split: GPUs take turns
            bw = (
                min(g.bandwidth_bytes_per_s or 0 for g in gpus)
                if len(gpus) == 1
                else (1 / sum((1 / len(gpus)) / (g.bandwidth_bytes_per_s or 1) for g in gpus))
            )
        flops = sum(g.fp16_flops or 0 for g in gpus) if p.engine == "vllm" else min(g.fp16_flops or 0 for g in gpus)
        out["bandwidth_source"] = ", ".join(sorted({g.source for g in gpus}))
        out["decode_tokens_per_s_upper_bound"] = bw / per_token if bw else None
        out["prefill_tokens_per_s_upper_bound"] = flops / (2 * active_params) if flops else None
    elif host_bandwidth:
        out["bandwidth_source"] = "measured on this machine (numpy copy, read+write bytes)"
        out["decode_tokens_per_s_upper_bound"] = host_bandwidth / per_token
    return out


def launch_commands(spec: ModelSpec, p: FitPlan, req: FitRequest) -> dict[str, str]:
    # A GGUF path when there is one; otherwise a placeholder for the file the user downloads.
    where = str(spec.path) if spec.path and spec.source != "hf" else f"./{spec.name}-{p.quant}.gguf"
    q = shlex.quote
    out: dict[str, str] = {}
    if not req.gpus:
        ngl = 0
    elif req.engine == "llama.cpp" and p.n_gpu_layers is not None:
        ngl = p.n_gpu_layers
    else:
        ngl = 999
    kv = p.kv_type if p.kv_type in ("f16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl", "bf16") else "f16"
    ctx_total = req.n_ctx * req.parallel
    llama = [
        f"llama-server -m {q(where)}",
        f"-c {ctx_total}",
        f"-np {req.parallel}",
        f"-ngl {ngl}",
        f"--n-cpu-moe {req.n_cpu_moe}" if req.n_cpu_moe else "",
        "-fa on" if req.flash_attn else "-fa off",
        f"--cache-type-k {kv} --cache-type-v {kv}",
        "--host 127.0.0.1 --port 8080",
    ]
    out["llama.cpp"] = (
        " ".join(x for x in llama if x) + f"   # -c is the total: {req.parallel} slot(s) × {req.n_ctx} tokens"
    )
    env = [f"OLLAMA_NUM_PARALLEL={req.parallel}", "OLLAMA_FLASH_ATTENTION=1" if req.flash_attn else ""]
    if kv != "f16":
        env.append(f"OLLAMA_KV_CACHE_TYPE={kv}")
    out["ollama"] = (
        f"printf 'FROM {where}\\nPARAMETER num_ctx {req.n_ctx}\\n' > Modelfile && "
        f"ollama create {spec.name.lower().replace(' ', '-')} -f Modelfile && "
        f"{' '.join(e for e in env if e)} ollama serve"
        "   # num_ctx is per request; Ollama allocates num_ctx × OLLAMA_NUM_PARALLEL"
    )
    repo = spec.extra.get("hf_repo") or (str(spec.path) if spec.source == "hf" else spec.name)
    tp = len(req.gpus) if req.gpus else 1
    vkv = " --kv-cache-dtype fp8" if req.kv_type in ("fp8", "q8_0") else ""
    out["vllm"] = (
        f"vllm serve {q(str(repo))} --max-model-len {req.n_ctx} --max-num-seqs {req.parallel} "
        f"--gpu-memory-utilization {req.gpu_memory_utilization} --tensor-parallel-size {tp}{vkv}"
    )
    return out


def fit_answer(
    spec: ModelSpec,
    req: FitRequest,
    host_bandwidth: float | None = None,
    contexts: list[int] | None = None,
    parallels: list[int] | None = None,
) -> dict[str, Any]:
    """Everything `selfhost fit --json` prints (DESIGN.md §2 contract plus additive fields)."""
    p = plan(spec, req)
    quants = candidate_quants(spec, req.engine)
    max_ctx = {q: max_context(spec, req, q) for q in quants}
    recommended = None
    for q in quants:
        if max_ctx[q] >= req.n_ctx:
            recommended = {
                "quant": q,
                "n_ctx": req.n_ctx,
                "parallel": req.parallel,
                "why": f"highest-precision quantization whose plan fits {req.n_ctx:,} tokens × "
                f"{req.parallel} slot(s) entirely on {'the GPUs' if req.gpus else 'this machine'}",
            }
            break
    limit = spec.context_length or 131072
    ctxs = contexts or sorted({c for c in (2048, 4096, 8192, 32768, 131072, limit) if c <= limit})
    d = p.to_dict()
    d.update(
        {
            "model": spec.name,
            "max_context": max_ctx,
            "recommended": recommended,
            "table": fit_table(spec, req, quants, ctxs, parallels or sorted({1, 4, req.parallel})),
            "launch": launch_commands(spec, p, req),
            **speed_bounds(spec, p, req, host_bandwidth),
            "devices": [
                {
                    "name": g.name,
                    "memory_bytes": g.memory_bytes,
                    "free_bytes": g.free_bytes,
                    "bandwidth_bytes_per_s": g.bandwidth_bytes_per_s,
                    "fp16_flops": g.fp16_flops,
                    "source": g.source,
                }
                for g in ([*req.gpus, req.host] if req.host else req.gpus)
            ],
        }
    )
    return d


def ollama_default_context(gpus: tuple[Device, ...], model_limit: int) -> int:
    """The num_ctx Ollama picks when none is set: 4k below 23 GiB of VRAM, 32k from 23 GiB, 256k from 47 GiB
    (ollama server/routes.go, 2025-11), never above what the model was trained for."""
    vram = sum(g.memory_bytes for g in gpus) / 1024**3
    ctx = 262144 if vram >= 47 else 32768 if vram >= 23 else 4096
    return min(ctx, model_limit or ctx)
