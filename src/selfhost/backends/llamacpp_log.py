"""Read what llama.cpp says about its own memory: model, KV cache and compute buffers.

Line formats (llama.cpp src/llama-model.cpp, src/llama-kv-cache.cpp, src/llama-context.cpp):
  load_tensors:   CPU_Mapped model buffer size =    92.10 MiB
  llama_kv_cache: size =   90.00 MiB (  4096 cells,  30 layers,  1/1 seqs), K (f16):   45.00 MiB, V (f16):   45.00 MiB
  sched_reserve:        CPU compute buffer size =    99.38 MiB
  llama_memory_recurrent:        CPU RS buffer size =     0.59 MiB
Interleaved-SWA models print one llama_kv_cache line per cache (full and sliding-window).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["KVCacheLine", "LlamaCppMemoryReport", "parse_llama_log", "MIB"]

MIB = 1024 * 1024
_MODEL = re.compile(r"load_tensors:\s+(\S+) model buffer size =\s+([\d.]+) MiB")
_KV = re.compile(
    r"llama_kv_cache(?:_unified)?(?:_iswa)?:\s+size =\s+([\d.]+) MiB "
    r"\(\s*(\d+) cells,\s*(\d+) layers,\s*(\d+)/(\d+) seqs\)"
    r"(?:, K \((\w+)\):\s+([\d.]+) MiB, V \((\w+)\):\s+([\d.]+) MiB)?"
)
_COMPUTE = re.compile(r"(\S+) compute buffer size =\s+([\d.]+) MiB")  # after the projector's, which is kept apart
_PROJECTOR_COMPUTE = re.compile(r"reserve_compute_meta:\s+(\S+) compute buffer size =\s+([\d.]+) MiB")
_PROJECTOR_MODEL = re.compile(r"load_hparams: model size:\s+([\d.]+) MiB")
_OUTPUT = re.compile(r"(\S+)\s+output buffer size =\s+([\d.]+) MiB")
_RECURRENT = re.compile(r"llama_memory_recurrent:\s+(\S+) RS buffer size =\s+([\d.]+) MiB")


@dataclass(frozen=True)
class KVCacheLine:
    mib: float
    cells: int
    layers: int
    seqs: int
    k_type: str | None
    v_type: str | None


@dataclass
class LlamaCppMemoryReport:
    """Sizes as llama.cpp printed them (MiB with two decimals, so ±0.005 MiB)."""

    model_buffers_mib: dict[str, float] = field(default_factory=dict)
    kv_caches: list[KVCacheLine] = field(default_factory=list)
    compute_buffers_mib: dict[str, float] = field(default_factory=dict)
    output_buffers_mib: dict[str, float] = field(default_factory=dict)
    recurrent_buffers_mib: dict[str, float] = field(default_factory=dict)  # the "RS buffer" of recurrent layers
    projector_model_mib: float = 0.0  # a vision projector (mtmd's clip): its weights and compute buffer
    projector_compute_mib: float = 0.0

    @property
    def model_mib(self) -> float:
        return sum(self.model_buffers_mib.values())

    @property
    def kv_mib(self) -> float:
        return sum(k.mib for k in self.kv_caches)

    @property
    def compute_mib(self) -> float:
        return sum(self.compute_buffers_mib.values())

    @property
    def output_mib(self) -> float:
        return sum(self.output_buffers_mib.values())

    @property
    def recurrent_mib(self) -> float:
        return sum(self.recurrent_buffers_mib.values())

    def to_dict(self) -> dict[str, object]:
        return {
            "model_buffer_bytes": round(self.model_mib * MIB),
            "kv_cache_bytes": round(self.kv_mib * MIB),
            "compute_buffer_bytes": round(self.compute_mib * MIB),
            "output_buffer_bytes": round(self.output_mib * MIB),
            "recurrent_state_bytes": round(self.recurrent_mib * MIB),
            "model_buffers_mib": self.model_buffers_mib,
            "kv_caches": [vars(k) for k in self.kv_caches],
            "compute_buffers_mib": self.compute_buffers_mib,
            "precision_mib": 0.005,
        }


def parse_llama_log(text: str) -> LlamaCppMemoryReport:
    rep = LlamaCppMemoryReport()
    for line in text.splitlines():
        if m := _PROJECTOR_COMPUTE.search(line):
            rep.projector_compute_mib += float(m.group(2))
        elif m := _PROJECTOR_MODEL.search(line):
            rep.projector_model_mib += float(m.group(1))
        elif m := _MODEL.search(line):
            rep.model_buffers_mib[m.group(1)] = rep.model_buffers_mib.get(m.group(1), 0.0) + float(m.group(2))
        elif m := _KV.search(line):
            rep.kv_caches.append(
                KVCacheLine(
                    float(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(5)), m.group(6), m.group(8)
                )
            )
        elif m := _COMPUTE.search(line):
            rep.compute_buffers_mib[m.group(1)] = rep.compute_buffers_mib.get(m.group(1), 0.0) + float(m.group(2))
        elif m := _OUTPUT.search(line):
            rep.output_buffers_mib[m.group(1)] = rep.output_buffers_mib.get(m.group(1), 0.0) + float(m.group(2))
        elif m := _RECURRENT.search(line):
            rep.recurrent_buffers_mib[m.group(1)] = rep.recurrent_buffers_mib.get(m.group(1), 0.0) + float(m.group(2))
    return rep
