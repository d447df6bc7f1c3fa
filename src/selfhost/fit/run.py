"""`selfhost fit` as one library call: options in, the `fit --json` answer out (the CLI and the Python API both
call this)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FitOptions", "fit_model"]


@dataclass(frozen=True)
class FitOptions:
    gpu: str | None = None  # catalog GPU name, "auto" (NVML), or None for this machine's RAM
    gpus: int = 1
    quant: str | None = None
    ctx: int | None = None  # None: the engine's default
    parallel: int = 1
    kv_type: str = "f16"
    engine: str = "llama.cpp"
    n_gpu_layers: int | None = None
    n_cpu_moe: int = 0
    flash_attn: bool = True
    kv_unified: bool = False
    gpu_util: float = 0.9
    tp: int | None = None
    verify: bool = False  # load the model in llama.cpp here and compare every component
    from_log: Path | None = None  # a llama.cpp or vLLM startup log to compare with


def fit_model(model: str | None = None, options: FitOptions | None = None) -> dict[str, Any]:
    from selfhost.fit.engines import get_engine
    from selfhost.fit.kv import LlamaCppKVConfig
    from selfhost.fit.plan import FitRequest
    from selfhost.fit.solve import fit_answer
    from selfhost.fit.verify import compare_log, verify_llamacpp
    from selfhost.hardware.membw import measure_memory_bandwidth
    from selfhost.hardware.select import host_device, select_devices
    from selfhost.models.resolve import resolve_model

    o = options or FitOptions()
    spec = resolve_model(model)
    gpus = select_devices(o.gpu, o.gpus)
    bandwidth = None if gpus else measure_memory_bandwidth()
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
        gpu_memory_utilization=o.gpu_util,
        tensor_parallel=o.tp,
    )
    answer = fit_answer(spec, req, host_bandwidth=bandwidth)
    if o.gpu is not None and o.gpu.lower() == "auto" and not gpus:
        from selfhost.hardware.detect import nvml_status

        why = nvml_status() or "NVML lists no GPUs"
        answer.setdefault("notes", []).insert(0, f"--gpu auto: no GPU visible ({why}); planned for this machine's RAM")
    if o.verify:
        cfg = LlamaCppKVConfig(ctx * o.parallel, o.parallel, o.kv_type, o.kv_type, kv_unified=o.kv_unified)
        answer["verify"] = verify_llamacpp(spec, cfg, flash_attn=o.flash_attn)
    if o.from_log is not None:
        answer["from_log"] = compare_log(spec, o.from_log, req)
    return answer
