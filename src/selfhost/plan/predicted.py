"""A plan on paper for GPUs that are not here: every tensor- × pipeline-parallel layout of K GPUs that vLLM can
run, its memory per GPU (fit's vLLM rules), whether the context fits, a speed bound, the launch commands (Ray
across nodes), and a price. Nothing on this card was measured: every number says it is predicted and from what."""

from __future__ import annotations

import shlex
from dataclasses import replace
from typing import Any

from selfhost.errors import UsageError

__all__ = ["predicted_card", "layouts"]

GIB = 1024**3


def layouts(gpus: int, n_heads: int, n_layers: int, per_node: int = 8) -> list[tuple[int, int]]:
    """(tp, pp) with tp × pp = GPUS: vLLM needs tp to divide the attention heads and at least one layer per stage;
    tensor parallelism stays inside one node (it all-reduces every layer), stages may span nodes."""
    return [
        (tp, gpus // tp)
        for tp in range(1, min(gpus, per_node) + 1)
        if gpus % tp == 0 and n_heads % tp == 0 and gpus // tp <= n_layers
    ]


def _layout(
    spec: Any, device: Any, tp: int, pp: int, quant: str, ctx: int, kv_type: str, util: float
) -> dict[str, Any]:
    from selfhost.fit.engines import get_engine
    from selfhost.fit.engines.vllm import VLLM_BLOCK_TOKENS
    from selfhost.fit.plan import FitRequest

    req = FitRequest(
        quant=quant,
        n_ctx=ctx,
        parallel=1,
        kv_type=kv_type,
        engine="vllm",
        gpus=(device,) * tp,
        tensor_parallel=tp,
        gpu_memory_utilization=util,
    )
    p = get_engine("vllm").plan(spec, req)
    rank = dict(p.per_device[0].components)
    budget = p.per_device[0].capacity_bytes
    # Pipeline stages split the layers: each GPU holds 1/pp of a TP rank's weights and of its KV per token.
    weights = p.weights.bytes // (tp * pp)
    kv_tok = p.detail["kv_bytes_per_token_per_rank"] / pp
    fixed = {k: v for k, v in rank.items() if k not in ("weights", "kv_cache")}
    kv_budget = budget - weights - sum(fixed.values())
    blocks = int(kv_budget // (kv_tok * VLLM_BLOCK_TOKENS)) if kv_budget > 0 and kv_tok else 0
    capacity = blocks * VLLM_BLOCK_TOKENS
    fits = capacity >= ctx
    bw = device.bandwidth_bytes_per_s
    # One sequence's decode step reads every weight once, stage after stage: tp GPUs read in parallel, pp do not.
    bound = tp * bw / p.weights.bytes if bw else None
    return {
        "tensor_parallel": tp,
        "pipeline_parallel": pp,
        "quant": p.quant,
        "fits": fits,
        "per_gpu_bytes": {"weights": weights, **fixed, "kv_cache_budget": max(0, kv_budget)},
        "per_gpu_budget_bytes": budget,
        "kv_capacity_tokens": capacity,
        "max_concurrency_at_ctx": capacity / ctx if ctx else None,
        "decode_tokens_per_s_one_stream_bound": bound,
        "predicted": True,
        "basis": (
            f"fit's vLLM plan for TP {tp} ({p.weights.source}), weights and KV per token split over {pp} pipeline "
            f"stage(s); activation peak, non-torch memory and CUDA graphs per GPU from llm-d's profiles (assumed); "
            f"speed bound = TP × {device.name} bandwidth ÷ weight bytes (memory-bound decode, one stream)"
        ),
    }


def _commands(repo: str, lay: dict[str, Any], ctx: int, kv_type: str, util: float, per_node: int) -> dict[str, Any]:
    from selfhost.fit.engines.vllm import VLLM_KV_DTYPES

    tp, pp = lay["tensor_parallel"], lay["pipeline_parallel"]
    argv = ["vllm", "serve", repo, "--tensor-parallel-size", str(tp), "--pipeline-parallel-size", str(pp)]
    argv += ["--max-model-len", str(ctx), "--gpu-memory-utilization", str(util)]
    kv = VLLM_KV_DTYPES.get(kv_type, ("auto", 2))[0]
    if kv not in ("auto", "bfloat16"):  # auto: the model's own dtype
        argv += ["--kv-cache-dtype", kv]
    nodes = -(-(tp * pp) // per_node)
    if nodes == 1:
        return {"nodes": 1, "commands": [shlex.join(argv)]}
    argv += ["--distributed-executor-backend", "ray"]
    return {
        "nodes": nodes,
        "commands": [
            "# on the head node:",
            "ray start --head --port 6379",
            f"# on each of the other {nodes - 1} node(s):",
            "ray start --address HEAD_IP:6379",
            "# then, on the head node:",
            shlex.join(argv),
        ],
        "note": f"{tp * pp} GPUs over {nodes} nodes of {per_node}: vLLM runs across them on a Ray cluster; keep "
        "tensor parallelism inside a node (NVLink) and pipeline stages across nodes",
    }


def predicted_card(
    model: str | None,
    gpu: str,
    gpus: int,
    *,
    ctx: int,
    kv_type: str = "bf16",
    util: float = 0.9,
    per_node: int = 8,
    price_per_hour: float | None = None,
) -> dict[str, Any]:
    from selfhost.cost.run import prices
    from selfhost.fit.engines import get_engine
    from selfhost.hardware.catalog import find_device
    from selfhost.models.resolve import resolve_model

    spec = resolve_model(model)
    device = find_device(gpu)
    if device.kind != "gpu":
        raise UsageError(
            f"{device.name} is not a GPU: a predicted vLLM plan is for GPUs", "name a GPU, e.g. --gpu H100"
        )
    engine = get_engine("vllm")
    ctx = min(ctx, spec.context_length or ctx)
    engine.validate(spec, _req(device, kv_type))
    repo = str(spec.extra.get("hf_repo") or spec.name)
    rows = []
    for quant in engine.candidate_quants(spec):
        for tp, pp in layouts(gpus, spec.n_heads, spec.n_layers, per_node):
            lay = _layout(spec, device, tp, pp, quant, ctx, kv_type, util)
            lay["launch"] = _commands(repo, lay, ctx, kv_type, util, per_node)
            rows.append(lay)
    if not rows:
        raise UsageError(f"no tensor × pipeline layout of {gpus} GPUs divides {spec.name}'s {spec.n_heads} heads")
    fitting = [r for r in rows if r["fits"]]
    # Prefer the widest precision that fits, then the most tensor parallelism (fastest decode), then KV room.
    order = {"BF16": 0, "MXFP4": 0, "F16": 0, "FP8": 1}
    best = (
        min(fitting, key=lambda r: (order.get(r["quant"], 2), -r["tensor_parallel"], -r["kv_capacity_tokens"]))
        if fitting
        else None
    )
    hit = next((e for e in prices()["rent_per_gpu_hour"] if e["gpu"] == device.name), None)
    rate = price_per_hour if price_per_hour is not None else (hit["usd_per_hour"] if hit else None)
    cost = None
    if best and rate is not None and best["decode_tokens_per_s_one_stream_bound"]:
        hourly = rate * gpus
        cost = {
            "usd_per_hour": hourly,
            "price_source": "given"
            if price_per_hour is not None
            else f"{hit['provider']}, {hit['source_url']} ({hit['as_of']})",
            "usd_per_million_output_tokens_one_stream_bound": hourly
            / (best["decode_tokens_per_s_one_stream_bound"] * 3600)
            * 1e6,
            "predicted": True,
            "basis": "hourly price ÷ the one-stream decode bound: batching serves many streams per step, so this is "
            "an upper bound on $/Mtok — measure goodput on the real GPUs (`selfhost plan` there) for the real figure",
        }
    if best:
        answer = (
            f"predicted: {best['quant']} with tensor parallel {best['tensor_parallel']} × pipeline parallel "
            f"{best['pipeline_parallel']} on {gpus} × {device.name}; KV room for {best['kv_capacity_tokens']:,} tokens "
            f"({best['max_concurrency_at_ctx']:.1f} requests at {ctx:,} tokens)"
        )
    else:
        answer = f"predicted: {spec.name} does not fit {gpus} × {device.name} at {ctx:,} tokens in any layout"
    return {
        "card_version": 1,
        "kind": "predicted",
        "answer": answer,
        "model": spec.name,
        "hardware": {
            "gpu": device.name,
            "gpus": gpus,
            "gpus_per_node": per_node,
            "memory_bytes_per_gpu": device.memory_bytes,
            "source": device.source,
        },
        "decision": best,
        "layouts": rows,
        "context": ctx,
        "kv_type": kv_type,
        "gpu_memory_utilization": util,
        "cost": cost,
        "every_number_predicted": True,
        "note": "nothing here was measured: run `selfhost plan` on the machine itself to measure goodput, memory "
        "and quality",
    }


def _req(device: Any, kv_type: str) -> Any:
    from selfhost.fit.plan import FitRequest

    return replace(FitRequest(engine="vllm", kv_type=kv_type), gpus=(device,))
