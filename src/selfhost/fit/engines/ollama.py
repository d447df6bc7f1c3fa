"""Ollama: llama.cpp underneath, with its own choices on top. It asks llama.cpp for num_ctx × num_parallel cells
in one unified cache, reserves 457 MiB of every GPU before placing layers, and picks num_ctx from the VRAM when
none is set."""

from __future__ import annotations

from selfhost.fit.engines.base import MIB, register
from selfhost.fit.engines.llamacpp import LlamaCppEngine, gguf_kv_type, gguf_path
from selfhost.fit.plan import FitPlan, FitRequest
from selfhost.hardware.catalog import Device
from selfhost.models.spec import ModelSpec

__all__ = ["OllamaEngine", "OLLAMA_GPU_RESERVE_BYTES", "ollama_default_context"]

# Ollama reserves this much of every GPU before placing layers (llm/server.go, envconfig GpuOverhead default).
OLLAMA_GPU_RESERVE_BYTES = 457 * MIB


def ollama_default_context(gpus: tuple[Device, ...], model_limit: int) -> int:
    """The num_ctx Ollama picks when none is set: 4k below 23 GiB of VRAM, 32k from 23 GiB, 256k from 47 GiB
    (ollama server/routes.go, 2025-11), never above what the model was trained for."""
    vram = sum(g.memory_bytes for g in gpus) / 1024**3
    ctx = 262144 if vram >= 47 else 32768 if vram >= 23 else 4096
    return min(ctx, model_limit or ctx)


class OllamaEngine(LlamaCppEngine):
    name = "ollama"
    gpu_reserve_bytes = OLLAMA_GPU_RESERVE_BYTES
    reserve_source = "Ollama's own reserve"
    kv_always_unified = True
    outputs_per_slot = False  # assumed: Ollama's runner sets no n_outputs_max (no Ollama binary here to measure)
    dry_run_applies = False  # Ollama runs its own fork of llama.cpp, not the one a dry run here would ask

    def kv_note(self, req: FitRequest) -> str:
        return f" (Ollama: num_ctx {req.n_ctx:,} × num_parallel {req.parallel})"

    def default_context(self, spec: ModelSpec, gpus: tuple[Device, ...]) -> int:
        return ollama_default_context(gpus, spec.context_length)

    def launch_command(self, spec: ModelSpec, p: FitPlan, req: FitRequest) -> str:
        kv = gguf_kv_type(p)
        env = [f"OLLAMA_NUM_PARALLEL={req.parallel}", "OLLAMA_FLASH_ATTENTION=1" if req.flash_attn else ""]
        if kv != "f16":
            env.append(f"OLLAMA_KV_CACHE_TYPE={kv}")
        return (
            f"printf 'FROM {gguf_path(spec, p)}\\nPARAMETER num_ctx {req.n_ctx}\\n' > Modelfile && "
            f"ollama create {spec.name.lower().replace(' ', '-')} -f Modelfile && "
            f"{' '.join(e for e in env if e)} ollama serve"
            "   # num_ctx is per request; Ollama allocates num_ctx × OLLAMA_NUM_PARALLEL"
        )


register(OllamaEngine())
