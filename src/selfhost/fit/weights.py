"""Weight bytes: exact from the file's tensor table when there is one, else parameters × bits per weight."""

from __future__ import annotations

import re
from dataclasses import dataclass

from selfhost.errors import UsageError
from selfhost.models.spec import ModelSpec

__all__ = [
    "FILE_BPW",
    "QUANT_ORDER",
    "WeightsPlan",
    "weights_plan",
    "layer_bytes",
    "cpu_repack_bytes",
    "CPU_REPACK_TYPES",
]

# Whole-file bits per weight of llama.cpp quantizations, measured on Llama-3.1-8B (embeddings and output
# keep higher precision, which is why these exceed the block sizes). Source: llama.cpp
# tools/quantize/README.md. F16/BF16 are exact.
FILE_BPW: dict[str, float] = {
    "F16": 16.0,
    "BF16": 16.0,
    "Q8_0": 8.5008,
    "Q6_K": 6.5633,
    "Q5_K_M": 5.7036,
    "Q4_K_M": 4.8944,
    "IQ4_XS": 4.4597,
    "Q2_K": 3.1593,
}
# Highest quality first: the order the solver tries them in.
QUANT_ORDER = ["F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS", "Q2_K"]

# Tensor types llama.cpp's CPU backend repacks into an interleaved copy (the CPU_REPACK buffer) on x86 with
# AVX2 and on ARM (ggml/src/ggml-cpu/repack.cpp). Only matrix-multiply weights are repacked, so the
# token embedding (read with get_rows) stays in the mapped file.
CPU_REPACK_TYPES = frozenset({"Q4_0", "Q4_K", "IQ4_NL"})

_LAYER = re.compile(r"^blk\.(\d+)\.")


@dataclass(frozen=True)
class WeightsPlan:
    quant: str
    bytes: int
    exact: bool
    source: str  # how the number was obtained


def _norm(q: str) -> str:
    return q.upper()


def weights_plan(spec: ModelSpec, quant: str | None = None) -> WeightsPlan:
    """Exact bytes for the file's own quantization; an estimate for any other."""
    file_q = _norm(spec.file_type) if spec.file_type else None
    if spec.tensors and (quant is None or _norm(quant) == file_q):
        return WeightsPlan(file_q or "file", spec.weights_bytes or 0, True, "sum of the file's tensor bytes")
    q = _norm(quant or "Q4_K_M")
    if q not in FILE_BPW:
        raise UsageError(f"unknown quantization {quant!r}", f"valid: {', '.join(FILE_BPW)}")
    total = spec.parameters - int(spec.extra.get("vision_parameters") or 0)
    return WeightsPlan(
        q,
        int(total * FILE_BPW[q] / 8),
        False,
        f"{total:,} parameters × {FILE_BPW[q]} bits (llama.cpp tools/quantize/README.md, Llama-3.1-8B)",
    )


def layer_bytes(spec: ModelSpec) -> tuple[list[int], int]:
    """Exact bytes per repeating layer and of everything else (embeddings, output, norms)."""
    per_layer = [0] * spec.n_layers
    other = 0
    for t in spec.tensors:
        m = _LAYER.match(t.name)
        if m and int(m.group(1)) < spec.n_layers:
            per_layer[int(m.group(1))] += t.n_bytes
        else:
            other += t.n_bytes
    return per_layer, other


def cpu_repack_bytes(spec: ModelSpec) -> int:
    return sum(t.n_bytes for t in spec.tensors if t.type in CPU_REPACK_TYPES and t.name != "token_embd.weight")
