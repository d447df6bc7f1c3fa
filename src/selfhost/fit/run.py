"""`selfhost fit` as one library call: options in, the `fit --json` answer out (the CLI and the Python API both
call this)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfhost.settings import setting

if TYPE_CHECKING:
    from selfhost.fit.plan import FitRequest
    from selfhost.models.spec import ModelSpec

__all__ = ["FitOptions", "fit_model", "fit_request"]


def _engines() -> list[str]:
    from selfhost.fit.engines import engine_names

    return engine_names()


@dataclass(frozen=True)
class FitOptions:
    gpu: str | None = setting(None, "Catalog GPU name (e.g. 'RTX 4090', H100), 'auto' (NVML), or omit for CPU.")
    gpus: int = setting(1, "How many of --gpu.")
    quant: str | None = setting(None, "Weights quantization (default: the file's own; Q4_K_M for catalog).")
    ctx: int | None = setting(
        None, "Context per request (default: min(8192, model limit); Ollama: its own VRAM-tiered default)."
    )
    parallel: int = setting(1, "Parallel slots / concurrent sequences.")
    kv_type: str = setting("f16", "KV cache type: f16, bf16, q8_0, q4_0 (vLLM: fp8).")
    engine: str = setting("llama.cpp", "The engine that will serve.", choices=_engines)
    n_gpu_layers: int | None = setting(None, "llama.cpp layers on GPU (default: all that fit).", short="-ngl")
    n_cpu_moe: int = setting(0, "llama.cpp: keep the experts of the first N layers in RAM.")
    flash_attn: bool = setting(
        True, "Plan without flash attention (bigger compute buffer).", flag="--no-flash-attn", invert=True
    )
    kv_unified: bool = setting(False, "llama.cpp --kv-unified: one KV stream shared by all slots.")
    ubatch: int = setting(512, "llama.cpp micro-batch (-ub): tokens per compute step; sizes the compute buffer.")
    gpu_util: float = setting(0.9, "vLLM --gpu-memory-utilization.")
    tp: int | None = setting(None, "vLLM tensor parallel size (default: number of GPUs).")
    kv_cache_memory: float | None = setting(
        None, "vLLM --kv-cache-memory-bytes, in GiB: a fixed KV cache size (on CPU default 4).", flag="--kv-cache-gib"
    )
    mmproj: Path | None = setting(
        None, "llama.cpp: a vision projector GGUF (mmproj) the server loads too (--mmproj).", path="in"
    )
    dry_run: bool = setting(
        True,
        "Plan the compute buffer with the formula only, not from llama.cpp's own allocator run dry on a local GGUF.",
        flag="--no-dry-run",
        invert=True,
    )
    config_dry_run: bool = setting(
        False,
        "For a model without a local GGUF (catalog, config.json): build its GGUF header from the config, weights left "
        "out (needs selfhost[tune]; seconds, cached), and take the compute buffer from llama.cpp's dry run on it.",
        flag="--shape-dry-run",
    )
    verify: bool = setting(False, "Load the model in llama.cpp here and compare every component.")
    from_log: Path | None = setting(None, "A llama.cpp or vLLM startup log: show predicted vs logged.", path="in")


def fit_request(spec: ModelSpec, o: FitOptions, measure_bandwidth: bool = True) -> tuple[FitRequest, float | None]:
    """The FitRequest these options mean for SPEC, and this machine's measured memory bandwidth (CPU plans)."""
    from selfhost.fit.engines import get_engine
    from selfhost.fit.plan import FitRequest
    from selfhost.hardware.membw import measure_memory_bandwidth
    from selfhost.hardware.select import host_device, select_devices

    gpus = select_devices(o.gpu, o.gpus)
    bandwidth = None if gpus or not measure_bandwidth else measure_memory_bandwidth()
    ctx = o.ctx if o.ctx is not None else get_engine(o.engine).default_context(spec, gpus)
    req = FitRequest(
        quant=o.quant,
        n_ctx=ctx,
        parallel=o.parallel,
        kv_type=o.kv_type,
        engine=o.engine,
        gpus=gpus,
        host=host_device(bandwidth),
        n_gpu_layers=o.n_gpu_layers,
        n_cpu_moe=o.n_cpu_moe,
        flash_attn=o.flash_attn,
        kv_unified=o.kv_unified,
        n_ubatch=o.ubatch,
        gpu_memory_utilization=o.gpu_util,
        tensor_parallel=o.tp,
        kv_cache_memory_bytes=None if o.kv_cache_memory is None else int(o.kv_cache_memory * 1024**3),
        mmproj=o.mmproj,
        dry_run=o.dry_run,
        config_dry_run=o.config_dry_run and o.dry_run,
    )
    return req, bandwidth


def fit_model(model: str | None = None, options: FitOptions | None = None) -> dict[str, Any]:
    from selfhost.fit.kv import LlamaCppKVConfig
    from selfhost.fit.solve import fit_answer
    from selfhost.fit.verify import compare_log, verify_llamacpp
    from selfhost.models.resolve import resolve_model

    o = options or FitOptions()
    spec = resolve_model(model)
    req, bandwidth = fit_request(spec, o)
    answer = fit_answer(spec, req, host_bandwidth=bandwidth)
    if o.gpu is not None and o.gpu.lower() == "auto" and not req.gpus:
        from selfhost.hardware.detect import nvml_status

        why = nvml_status() or "NVML lists no GPUs"
        answer.setdefault("notes", []).insert(0, f"--gpu auto: no GPU visible ({why}); planned for this machine's RAM")
    if o.verify:
        cfg = LlamaCppKVConfig(req.n_ctx * o.parallel, o.parallel, o.kv_type, o.kv_type, kv_unified=o.kv_unified)
        answer["verify"] = verify_llamacpp(spec, cfg, flash_attn=o.flash_attn)
    if o.from_log is not None:
        answer["from_log"] = compare_log(spec, o.from_log, req)
    return answer
