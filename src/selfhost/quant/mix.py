"""A custom quantization mix under a byte budget: per-tensor-role types (llama-quantize --tensor-type) searched for
the lowest KL divergence whose file fits.

Named quants (Q4_K_M, …) give every model the same recipe. A model is more sensitive in some tensors than others,
and which ones differs by model, so the search measures instead of assuming:

1. the base is the largest named quant that fits;
2. sensitivity: each tensor role (token_embd, attn_q, …, ffn_down) is measured alone one type down (bytes freed,
   KLD lost) and alone at the largest type above that fits (KLD saved per byte added), each file made and its KLD
   measured;
3. greedy: the cheapest step down frees room, and roles are raised in order of KLD saved per byte while the file
   fits, each mix made and measured (sizes and KLD do not simply add up); a raise that does not lower KLD is
   dropped. The same fill also runs without the step down, and the lowest KLD that fits wins.

Sizes are predicted from the tensors' element counts (with llama.cpp's fallback types for rows that are not whole
K-quant blocks) only to skip mixes that cannot fit.

Every size is a real file's and every KLD is measured on the same text as the other variants. The best mix that
fits is returned. Anchors: llama.cpp PR #15550 (a target bits-per-weight for llama-quantize, open); Thireus'
GGUF-Tool-Suite (per-tensor recipes, needs a patched engine); here llama.cpp's own --tensor-type does it."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from selfhost.models.gguf_file import GGUFTensor, read_gguf
from selfhost.quant.imatrix import llama_quantize
from selfhost.quant.variants import file_identity

__all__ = [
    "Mix",
    "Measured",
    "SearchLog",
    "tensor_roles",
    "make_mix",
    "predicted_bytes",
    "search_mix",
    "kld_meter",
    "parse_bytes",
]


@dataclass(frozen=True)
class Mix:
    base: str  # the named quant every other tensor follows
    overrides: tuple[tuple[str, str], ...] = ()  # (role, ggml type), in the order they were added

    def describe(self) -> str:
        return self.base + "".join(f" {role}={t}" for role, t in self.overrides)


@dataclass
class Measured:
    mix: Mix
    path: Path
    file_bytes: int
    kld_mean: float


@dataclass
class SearchLog:
    tried: list[Measured] = field(default_factory=list)


def tensor_roles(path: Path) -> list[str]:
    """The quantizable roles of a GGUF's tensors: `token_embd`, `output`, and each per-layer name (`attn_q`, …)
    once; 1-D tensors (norms, biases) are never quantized and are left out."""
    roles: list[str] = []
    for t in read_gguf(path).tensors:
        if len(t.shape) < 2:
            continue
        role = _role_of(t.name)
        if role not in roles:
            roles.append(role)
    return roles


def _args(mix: Mix) -> list[str]:
    out: list[str] = []
    for role, t in mix.overrides:
        if role == "token_embd":
            out += ["--token-embedding-type", t]
        elif role == "output":
            out += ["--output-tensor-type", t]
        else:  # llama-quantize matches the (lowercased) pattern against each tensor's name
            out += ["--tensor-type", rf"blk\.\d+\.{re.escape(role)}\.weight={t}"]
    return out


def make_mix(reference: Path, mix: Mix, out_dir: Path, threads: int = 2) -> Path:
    """The mix as a GGUF made from the F16 reference, kept under a name keyed by the reference file and the
    recipe, so a rerun reuses it and another model never does."""
    key = hashlib.sha256(json.dumps([file_identity(reference), mix.base, mix.overrides]).encode()).hexdigest()[:12]
    dst = out_dir / f"{reference.stem.removesuffix('.F16')}.mix-{key}.gguf"
    return dst if dst.exists() else llama_quantize(reference, dst, mix.base, _args(mix), threads)


# llama.cpp's fallback when a row is not a whole number of the type's blocks (llama-quant.cpp,
# tensor_type_fallback): the small models' 576-wide rows take 32-element types instead of K-quants. The token
# embedding and output types given on the command line get no fallback: a type that does not divide is not offered.
_FALLBACK = {"q6_k": "q8_0", "q5_k": "q5_1", "q4_k": "q5_0", "q3_k": "q4_0", "q2_k": "q4_0"}
_LADDER = ("q8_0", "q6_k", "q5_1", "q5_0", "q4_1", "q4_0")  # the types a role may take, largest first


def _effective(t: GGUFTensor, role: str, wanted: str) -> str | None:
    block, _ = GGML_QUANT_SIZES[GGMLQuantizationType[wanted.upper()]]
    if t.shape[0] % block == 0:
        return wanted
    return None if role in ("token_embd", "output") else _FALLBACK.get(wanted)


def _bytes(t: GGUFTensor, ggml_type: str) -> int:
    block, size = GGML_QUANT_SIZES[GGMLQuantizationType[ggml_type.upper()]]
    return t.n_elements // block * size


def _role_of(name: str) -> str:
    m = re.fullmatch(r"blk\.\d+\.(.+)\.weight", name)
    return m.group(1) if m else name.removesuffix(".weight")


def predicted_bytes(base: Path, overrides: tuple[tuple[str, str], ...]) -> int:
    """The file size of `base` with these roles re-typed, from the tensors' element counts and the types' block
    sizes (with llama.cpp's fallbacks). Alignment padding (≤ 31 bytes a tensor) is not counted; the made file's
    real size is what decides."""
    return _predicted(base.stat().st_size, read_gguf(base).tensors, overrides)


def _predicted(base_size: int, tensors: Sequence[GGUFTensor], overrides: tuple[tuple[str, str], ...]) -> int:
    types = dict(overrides)
    size = base_size
    for t in tensors:
        role = _role_of(t.name)
        if role in types and len(t.shape) >= 2:
            size += _bytes(t, _effective(t, role, types[role]) or t.type.lower()) - t.n_bytes
    return size


def _role_bytes(tensors: Sequence[GGUFTensor], role: str, ggml_type: str | None = None) -> int | None:
    total = 0
    for t in tensors:
        if _role_of(t.name) == role and len(t.shape) >= 2:
            eff = t.type.lower() if ggml_type is None else _effective(t, role, ggml_type)
            if eff is None:
                return None
            total += _bytes(t, eff)
    return total


def search_mix(
    reference: Path,
    named: dict[str, tuple[Path, float]],
    max_bytes: int,
    kld_of: Callable[[Path], float],
    out_dir: Path,
    log: SearchLog | None = None,
) -> Measured | None:
    """The lowest-KLD file found whose size is at most max_bytes: a mix, or a named quant when no mix beat it;
    None when not even the smallest named quant fits. `named`: quant name → (its file, its mean KLD), already
    measured; `kld_of(path)` measures a file. Only mixes predicted to fit are made and measured.

    The base is the largest named quant that fits. Each role is measured alone one step down (the bytes it frees,
    the KLD it costs) and alone at the largest type above it that fits (the KLD it saves per byte). Then, from the
    base, the cheapest step down frees room and the best raises fill it, each mix made and measured; the same greedy
    fill also runs without the step down. A change that does not lower the measured KLD is dropped."""
    log = log if log is not None else SearchLog()
    fitting = sorted(((p.stat().st_size, n) for n, (p, _) in named.items() if p.stat().st_size <= max_bytes))
    if not fitting:
        return None
    base_name = fitting[-1][1]
    base_path, base_kld = named[base_name]
    base_size = base_path.stat().st_size
    tensors = read_gguf(base_path).tensors
    slack = 32 * len(tensors)  # padding the prediction leaves out
    best = min(
        (Measured(Mix(n), named[n][0], s, named[n][1]) for s, n in fitting), key=lambda m: (m.kld_mean, m.file_bytes)
    )

    tried: list[Measured] = []

    def measure(mix: Mix) -> Measured:
        path = make_mix(reference, mix, out_dir)
        m = Measured(mix, path, path.stat().st_size, kld_of(path))
        log.tried.append(m)
        tried.append(m)
        return m

    def fits(overrides: tuple[tuple[str, str], ...]) -> bool:
        return _predicted(base_size, tensors, overrides) + slack <= max_bytes

    roles = [r for r in tensor_roles(reference) if _role_bytes(tensors, r) is not None]

    def raise_to(role: str, overrides: tuple[tuple[str, str], ...]) -> str | None:
        """The largest type above the role's present one that still fits with these overrides."""
        now = _role_bytes(tensors, role) or 0
        return next(
            (t for t in _LADDER if (_role_bytes(tensors, role, t) or 0) > now and fits((*overrides, (role, t)))),
            None,
        )

    # 1. the cheapest step down: the KLD each role costs per byte it frees, one type lower
    lowers: list[tuple[float, Measured]] = []
    for role in roles:
        down = _smallest_below(tensors, role, _role_bytes(tensors, role) or 0)
        if down is not None:
            m = measure(Mix(base_name, ((role, down),)))
            if m.file_bytes < base_size:
                lowers.append((max(m.kld_mean - base_kld, 0.0) / (base_size - m.file_bytes), m))
    starts = [Measured(Mix(base_name), base_path, base_size, base_kld)]
    if lowers:
        starts.append(min(lowers, key=lambda x: x[0])[1])
    # 2. from each start, the KLD each raise saves per byte, then 3. raises in that order while the file fits
    for start in starts:
        raises: list[tuple[float, str]] = []
        for role in roles:
            if role in dict(start.mix.overrides):
                continue
            up = raise_to(role, start.mix.overrides)
            if up is not None:
                m = measure(Mix(base_name, (*start.mix.overrides, (role, up))))
                if m.file_bytes > start.file_bytes and m.kld_mean < start.kld_mean:
                    raises.append(((start.kld_mean - m.kld_mean) / (m.file_bytes - start.file_bytes), role))
        current = start
        for _, role in sorted(raises, reverse=True):
            up = raise_to(role, current.mix.overrides)
            if up is None:
                continue
            trial = measure(Mix(base_name, (*current.mix.overrides, (role, up))))
            if trial.file_bytes <= max_bytes and trial.kld_mean < current.kld_mean:
                current = trial
    # every file made is a candidate: a single change can already be the best one that fits
    for m in tried:
        if m.file_bytes <= max_bytes and (m.kld_mean, m.file_bytes) < (best.kld_mean, best.file_bytes):
            best = m
    return best


def _smallest_below(tensors: Sequence[GGUFTensor], role: str, now: int) -> str | None:
    """The largest type that is smaller than the role's present one: one step down."""
    below = [t for t in _LADDER if 0 < (_role_bytes(tensors, role, t) or 0) < now]
    return below[0] if below else None


def kld_meter(reference: Path, text: str, max_tokens: int | None, chunk_ctx: int | None) -> Callable[[Path], float]:
    """path → mean KL divergence against the reference on `text`, with the settings the run's other variants get."""
    from selfhost.quant.kld import compare_distributions, logprobs, summarize

    ref_tokens, ref_lp = logprobs(reference, text, max_tokens=max_tokens, chunk_ctx=chunk_ctx)

    def kld_of(path: Path) -> float:
        tokens, lp = logprobs(path, text, max_tokens=max_tokens, chunk_ctx=chunk_ctx)
        return float(summarize(compare_distributions(ref_tokens, ref_lp, tokens, lp))["kld_mean"])

    return kld_of


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_bytes(text: str) -> int | None:
    """'512MiB', '0.5GB', '104857600' → bytes; None when it is not a size."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*", text.lower())
    if m is None:
        return None
    return int(float(m.group(1)) * _UNITS[m.group(2) or ""])
