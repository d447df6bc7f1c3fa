"""Answers built on plans: the largest context per quantization, the fit table, a recommendation,
speed bounds and ready-to-paste launch commands."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from selfhost.errors import UsageError
from selfhost.fit.engines import engine_names, get_engine
from selfhost.fit.engines.ollama import ollama_default_context
from selfhost.fit.kv import kv_bytes_per_token
from selfhost.fit.plan import FitPlan, FitRequest, plan
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


def candidate_quants(spec: ModelSpec, engine: str) -> list[str]:
    return get_engine(engine).candidate_quants(spec)


def _full_offload(spec: ModelSpec, req: FitRequest) -> FitRequest:
    return get_engine(req.engine).full_offload(spec, req)


def max_context(spec: ModelSpec, req: FitRequest, quant: str) -> int:
    """Largest context (multiple of 256, up to the model's limit) that fits entirely on the devices."""
    return get_engine(req.engine).max_context(spec, req, quant)


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
    tensor_parallel = get_engine(p.engine).tensor_parallel
    if req.gpus and (tensor_parallel or (p.n_gpu_layers or 0) > spec.n_layers):
        gpus = req.gpus[: (p.detail.get("tensor_parallel") or len(req.gpus))]
        if tensor_parallel:  # every GPU reads its shard at the same time
            bw = sum(g.bandwidth_bytes_per_s or 0 for g in gpus)
        else:  # layer split: GPUs take turns
            bw = (
                min(g.bandwidth_bytes_per_s or 0 for g in gpus)
                if len(gpus) == 1
                else (1 / sum((1 / len(gpus)) / (g.bandwidth_bytes_per_s or 1) for g in gpus))
            )
        flops = sum(g.fp16_flops or 0 for g in gpus) if tensor_parallel else min(g.fp16_flops or 0 for g in gpus)
        out["bandwidth_source"] = ", ".join(sorted({g.source for g in gpus}))
        out["decode_tokens_per_s_upper_bound"] = bw / per_token if bw else None
        out["prefill_tokens_per_s_upper_bound"] = flops / (2 * active_params) if flops else None
    elif host_bandwidth:
        out["bandwidth_source"] = "measured on this machine (numpy copy, read+write bytes)"
        out["decode_tokens_per_s_upper_bound"] = host_bandwidth / per_token
    return out


def launch_commands(spec: ModelSpec, p: FitPlan, req: FitRequest) -> dict[str, str]:
    """The command that serves this plan, for every engine fit knows."""
    return {name: get_engine(name).launch_command(spec, p, req) for name in engine_names()}


def fit_answer(
    spec: ModelSpec,
    req: FitRequest,
    host_bandwidth: float | None = None,
    contexts: list[int] | None = None,
    parallels: list[int] | None = None,
) -> dict[str, Any]:
    """Everything `selfhost fit --json` prints (DESIGN.md §2 contract plus additive fields)."""
    p = plan(spec, req)
    # The headline plan may ask llama.cpp for its compute buffer (a dry run, about half a second); the searches
    # below plan hundreds of variants, with the formula.
    req = replace(req, dry_run=False)
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
