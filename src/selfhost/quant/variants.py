"""Quantization variants made locally with llama.cpp's quantizer (llama_model_quantize via llama-cpp-python)."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path

from selfhost.errors import BackendError, UsageError
from selfhost.models.gguf_file import read_gguf

__all__ = ["Variant", "FTYPES", "file_identity", "quantize", "make_variants", "parse_endpoint"]

# llama_ftype values (llama.h) for the variants selfhost makes.
FTYPES: dict[str, int] = {"F16": 1, "Q8_0": 7, "Q6_K": 18, "Q5_K_M": 17, "Q4_K_M": 15, "Q3_K_M": 12, "Q2_K": 10}


@dataclass(frozen=True)
class Variant:
    """A local GGUF file (run in-process by llama.cpp), or a model behind an OpenAI-compatible endpoint (`url`:
    the server's root, `model`: its model name, None for the first one it lists). An endpoint gives answers and
    speed but no logits, so its KL divergence and memory are not measured."""

    name: str
    path: Path | None
    note: str = ""
    url: str | None = None
    model: str | None = None

    @property
    def file_bytes(self) -> int | None:
        return self.path.stat().st_size if self.path is not None else None

    @property
    def identity(self) -> str:
        """What produced this variant's answers: the file (path, size, modification time), or the model an endpoint
        serves (by name, so a server restarted on another port resumes; the URL when no name was given). Resumed
        records are reused only under the same identity (quant/run.py)."""
        if self.path is None:
            return f"endpoint:{self.model}" if self.model else f"url:{self.url}"
        return file_identity(self.path)

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else f"{self.url}#{self.model or ''}"


def file_identity(path: Path) -> str:
    st = path.stat()
    return f"file:{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def parse_endpoint(where: str) -> tuple[str, str | None]:
    """'http://host:8000/v1#model' → ('http://host:8000', 'model'); the /v1 suffix is optional."""
    url, _, model = where.partition("#")
    url = url.rstrip("/")
    if url.endswith("/v1"):
        url = url[:-3]
    return url, model or None


def quantize(src: Path, dst: Path, name: str, threads: int = 2) -> Path:
    """Write `dst` as quantization `name` of `src` (re-quantizing a quantized source is allowed)."""
    import llama_cpp

    from selfhost.backends.llamacpp import LlamaLogCapture

    if name not in FTYPES:
        raise UsageError(f"unknown quantization {name!r}", f"valid: {', '.join(FTYPES)}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[name]
    params.allow_requantize = True
    params.nthread = threads
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".partial")
    sink = LlamaLogCapture.start()
    try:
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params))
    finally:
        LlamaLogCapture.stop()
    if rc != 0:
        tmp.unlink(missing_ok=True)
        raise BackendError(f"llama.cpp could not quantize {src.name} to {name}: {''.join(sink[-3:]).strip()}")
    tmp.replace(dst)  # only a complete file gets the final name, so an interrupted run redoes it
    return dst


def make_variants(src: Path, out_dir: Path, names: list[str], source_type: str | None = None) -> list[Variant]:
    """An F16 reference dequantized from `src`, then each variant quantized from that reference; files already
    made (and readable) are reused."""
    out: list[Variant] = []
    ref = out_dir / f"{src.stem}.F16.gguf"
    made_from = file_identity(src)  # a file left by another model of the same name is never reused
    if not _valid(ref, made_from):
        quantize(src, ref, "F16")
        _mark(ref, made_from)
    note = (
        (
            f"dequantized from the shipped {source_type}: an upper bound on what this reference knows, not the "
            "original F16 weights"
        )
        if source_type and source_type not in ("F16", "BF16", "F32")
        else ""
    )
    out.append(Variant("F16", ref, note))
    for name in names:
        if name == "F16":
            continue
        p = out_dir / f"{src.stem}.{name}.gguf"
        if not _valid(p, made_from):
            quantize(ref, p, name)
            _mark(p, made_from)
        out.append(Variant(name, p, "quantized here from the F16 reference"))
    return out


def _source_file(p: Path) -> Path:
    return p.with_name(p.name + ".source")


def _mark(p: Path, made_from: str) -> None:
    _source_file(p).write_text(made_from + "\n", encoding="utf-8")


def _valid(p: Path, made_from: str) -> bool:
    if not p.exists():
        return False
    try:
        if _source_file(p).read_text(encoding="utf-8").strip() != made_from:
            return False
    except (OSError, UnicodeDecodeError):
        return False
    try:
        read_gguf(p)
        return True
    except Exception:  # a broken leftover is simply made again
        return False
