"""Weight bytes: exact from the file's tensor table when there is one, else parameters × bits per weight."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from selfhost.errors import UsageError
from selfhost.models.spec import ModelSpec, TensorInfo

__all__ = [
    "FILE_BPW",
    "QUANT_ORDER",
    "WeightsPlan",
    "weights_plan",
    "layer_bytes",
    "cpu_repack_bytes",
    "cpu_mapped_bytes",
    "is_cpu_repacked",
    "GET_ROWS_ONLY",
    "host_cpu_features",
    "CPU_REPACK_RULES",
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

# Tensor types llama.cpp's CPU backend repacks into an interleaved copy (the CPU_REPACK buffer), by CPU feature
# (ggml/src/ggml-cpu/repack.cpp, ggml_repack_get_optimal_repack_type): with AVX2 on x86 a tensor is repacked when its
# rows (ne[1]) are a multiple of 8; with NEON dot-product on ARM, of 4 (8 for the K-quants). x86 with AVX2 is
# measured on this project's machines; the ARM rows are read from the source (assumed).
CPU_REPACK_RULES: dict[str, tuple[frozenset[str], int]] = {
    "avx2": (frozenset({"Q4_0", "Q4_K", "IQ4_NL", "MXFP4"}), 8),
    "avx512": (frozenset({"Q4_0", "Q4_K", "IQ4_NL", "MXFP4", "Q2_K"}), 8),
    "neon-dotprod": (frozenset({"Q4_0", "IQ4_NL", "MXFP4", "Q8_0"}), 4),
    "neon-dotprod-k": (frozenset({"Q4_K", "Q5_K", "Q6_K"}), 8),
}
# Tensors read by row lookup (get_rows), never by a matrix multiply: llama.cpp keeps them in the mapped file.
GET_ROWS_ONLY = frozenset(
    {"token_embd.weight", "per_layer_token_embd.weight", "position_embd.weight", "token_types.weight"}
)


@cache
def host_cpu_features() -> tuple[str, ...]:
    """The repack rule names that apply to this machine's CPU (x86 flags or ARM features from /proc/cpuinfo)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ("avx2",)  # assumed: the common x86 server
    flags = set(re.findall(r"\b[\w.]+\b", " ".join(re.findall(r"^(?:flags|Features)\s*:(.*)$", text, re.M))))
    if "avx512f" in flags:
        return ("avx512",)
    if "avx2" in flags:
        return ("avx2",)
    if "asimddp" in flags:
        return ("neon-dotprod", "neon-dotprod-k")
    return ()


def is_cpu_repacked(t: TensorInfo, features: tuple[str, ...] | None = None) -> bool:
    """Whether llama.cpp's CPU backend copies tensor T into CPU_REPACK: a 2-D weight of a matrix multiply or a 3-D
    expert stack (mul_mat_id), of a repackable type, with whole row groups."""
    if t.name in GET_ROWS_ONLY or len(t.shape) < 2:
        return False
    if len(t.shape) > 3 or (len(t.shape) == 3 and "_exps." not in t.name):
        return False  # llama.cpp repacks 3-D weights only for mul_mat_id (experts), e.g. not DeepSeek's attn_k_b
    for f in host_cpu_features() if features is None else features:
        types, rows = CPU_REPACK_RULES[f]
        if t.type in types and t.shape[1] % rows == 0:
            return True
    return False


def cpu_repack_bytes(spec: ModelSpec, features: tuple[str, ...] | None = None) -> int:
    """Bytes of the CPU_REPACK buffer: the repacked tensors keep their size in the interleaved layout."""
    return sum(t.n_bytes for t in spec.tensors if is_cpu_repacked(t, features))


def cpu_mapped_bytes(spec: ModelSpec, features: tuple[str, ...] | None = None) -> int:
    """Bytes of llama.cpp's CPU_Mapped model buffer: the file range from the first to the end of the last tensor it
    keeps mapped. Repacked tensors at either end of the file fall outside it; those in the middle stay inside."""
    kept = [t for t in spec.tensors if not is_cpu_repacked(t, features)]
    if not kept:
        return 0
    if any(t.offset is None for t in kept):
        return sum(t.n_bytes for t in kept)
    start = min(t.offset for t in kept if t.offset is not None)
    end = max(t.offset + t.n_bytes for t in kept if t.offset is not None)
    return end - start


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
