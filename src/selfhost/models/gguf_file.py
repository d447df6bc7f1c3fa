"""A fast, validating reader of a GGUF file's header: metadata and tensor table, no weights.

Why not ``gguf.GGUFReader``: it builds a numpy view for every element of every array, so the
135M embedded model's 49k-token vocabulary and 49k merges take ~3.5 s to open (see
benchmarks/bench_gguf_read.py). This reader walks the same layout with ``struct`` and skips
what no caller needs (merges, token scores), yet uses the ``gguf`` package for every fact about
the format (value types, ggml type ids, block sizes). Tests check it against ``GGUFReader``.

Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
"""

from __future__ import annotations

import math
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

from selfhost.errors import CorruptModelError, ModelNotFoundError, NotAGGUFError

__all__ = ["GGUFTensor", "GGUFFile", "read_gguf", "is_gguf"]

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

_SCALAR = {
    GGUFValueType.UINT8: "<B",
    GGUFValueType.INT8: "<b",
    GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I",
    GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f",
    GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q",
    GGUFValueType.FLOAT64: "<d",
}
_NUMPY = {
    GGUFValueType.UINT8: "<u1",
    GGUFValueType.INT8: "<i1",
    GGUFValueType.UINT16: "<u2",
    GGUFValueType.INT16: "<i2",
    GGUFValueType.UINT32: "<u4",
    GGUFValueType.INT32: "<i4",
    GGUFValueType.FLOAT32: "<f4",
    GGUFValueType.BOOL: "?",
    GGUFValueType.UINT64: "<u8",
    GGUFValueType.INT64: "<i8",
    GGUFValueType.FLOAT64: "<f8",
}
# String arrays that are large and that nothing here reads: walked over, not decoded.
_SKIP_STRING_ARRAYS = frozenset({"tokenizer.ggml.merges"})
# Numeric arrays that are per-token and large: kept as their length only.
_SKIP_NUMERIC_ARRAYS = frozenset({"tokenizer.ggml.scores", "tokenizer.ggml.token_type"})


@dataclass(frozen=True)
class GGUFTensor:
    name: str
    type: str
    type_id: int
    shape: tuple[int, ...]  # GGUF order: fastest-varying dimension first
    n_elements: int
    n_bytes: int
    offset: int  # absolute offset of the tensor's data in the file


@dataclass(frozen=True)
class GGUFFile:
    path: Path
    version: int
    metadata: dict[str, Any]
    # Length of arrays that were skipped rather than decoded (key -> element count).
    array_lengths: dict[str, int]
    tensors: tuple[GGUFTensor, ...]
    alignment: int
    data_offset: int
    file_bytes: int

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)


class _Truncated(Exception):
    pass


class _Cursor:
    def __init__(self, buf: mmap.mmap | bytes) -> None:
        self.buf = buf
        self.pos = 0
        self.size = len(buf)

    def need(self, n: int) -> None:
        if self.pos + n > self.size:
            raise _Truncated()

    def scalar(self, fmt: str) -> Any:
        n = struct.calcsize(fmt)
        self.need(n)
        (v,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return v

    def string(self) -> str:
        n = self.scalar("<Q")
        self.need(n)
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        return bytes(raw).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        buf, pos, size = self.buf, self.pos, self.size
        unpack = struct.unpack_from
        for _ in range(count):
            if pos + 8 > size:
                raise _Truncated()
            (n,) = unpack("<Q", buf, pos)
            pos += 8 + n
        if pos > size:
            raise _Truncated()
        self.pos = pos


def _value_type(cur: _Cursor, key: str) -> GGUFValueType:
    raw = cur.scalar("<I")
    try:
        return GGUFValueType(raw)
    except ValueError:
        raise CorruptModelError(
            f"metadata key {key!r} has unknown value type {raw} at byte {cur.pos - 4}",
            "the file is corrupt or written by a newer GGUF writer; re-download or re-convert it",
        ) from None


def _read_value(
    cur: _Cursor, key: str, vtype: GGUFValueType, lengths: dict[str, int], keep: frozenset[str] = frozenset()
) -> Any:
    if vtype == GGUFValueType.STRING:
        return cur.string()
    if vtype != GGUFValueType.ARRAY:
        return cur.scalar(_SCALAR[vtype])
    etype = _value_type(cur, key)
    count = cur.scalar("<Q")
    if etype == GGUFValueType.STRING:
        if key in _SKIP_STRING_ARRAYS and key not in keep:
            cur.skip_strings(count)
            lengths[key] = count
            return None
        return [cur.string() for _ in range(count)]
    if etype == GGUFValueType.ARRAY:
        raise CorruptModelError(f"metadata key {key!r} holds nested arrays, which GGUF readers do not support")
    dtype = np.dtype(_NUMPY[etype])
    nbytes = dtype.itemsize * count
    cur.need(nbytes)
    if key in _SKIP_NUMERIC_ARRAYS and key not in keep:
        cur.pos += nbytes
        lengths[key] = count
        return None
    arr = np.frombuffer(cur.buf, dtype=dtype, count=count, offset=cur.pos).tolist()
    cur.pos += nbytes
    return arr


def is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def read_gguf(path: str | os.PathLike[str], keep: frozenset[str] = frozenset()) -> GGUFFile:
    """Read and validate a GGUF header. Raises a SelfhostError naming what is wrong. Large per-token arrays (scores,
    token types, merges) are kept as their length only, unless named in KEEP."""
    p = Path(path)
    if not p.exists():
        raise ModelNotFoundError(f"no such file: {p}", "check the path, or run `selfhost models` to list local models")
    if p.is_dir():
        raise NotAGGUFError(f"{p} is a directory, not a GGUF file")
    size = p.stat().st_size
    if size < 24:
        raise NotAGGUFError(f"{p} is not a GGUF file ({size} bytes; a GGUF header alone is at least 24)")
    with open(p, "rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise NotAGGUFError(
                f"{p} is not a GGUF file (it does not start with the GGUF magic bytes)",
                "pass a .gguf file, a Hugging Face model directory, an ollama:NAME tag or a catalog name",
            )
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            try:
                return _parse(p, mm, size, keep)
            except _Truncated:
                raise CorruptModelError(
                    f"{p} is truncated: its GGUF header ends past the end of the file ({size} bytes)",
                    "the download or copy was cut short; fetch the file again",
                ) from None


def _parse(p: Path, mm: mmap.mmap, size: int, keep: frozenset[str] = frozenset()) -> GGUFFile:
    cur = _Cursor(mm)
    cur.pos = 4
    version = cur.scalar("<I")
    if version not in (2, 3):
        raise CorruptModelError(
            f"{p} has GGUF version {version}; versions 2 and 3 are supported",
            "convert the model again with a current llama.cpp",
        )
    n_tensors = cur.scalar("<Q")
    n_kv = cur.scalar("<Q")
    # Far beyond any real model (DeepSeek-V3 has ~1,900 tensors): corruption, not a big model.
    if n_tensors > 10_000_000 or n_kv > 1_000_000:
        raise CorruptModelError(f"{p} is corrupt: its header claims {n_tensors} tensors and {n_kv} metadata keys")
    metadata: dict[str, Any] = {}
    lengths: dict[str, int] = {}
    for _ in range(n_kv):
        key = cur.string()
        vtype = _value_type(cur, key)
        metadata[key] = _read_value(cur, key, vtype, lengths, keep)
    alignment = int(metadata.get("general.alignment", DEFAULT_ALIGNMENT))
    if alignment <= 0 or alignment & (alignment - 1):
        raise CorruptModelError(f"{p} has general.alignment {alignment}, which is not a power of two")

    raw: list[tuple[str, tuple[int, ...], int, int]] = []
    for _ in range(n_tensors):
        name = cur.string()
        n_dims = cur.scalar("<I")
        if n_dims > 8:
            raise CorruptModelError(f"{p} is corrupt: tensor {name!r} claims {n_dims} dimensions")
        shape = tuple(cur.scalar("<Q") for _ in range(n_dims))
        type_id = cur.scalar("<I")
        rel_offset = cur.scalar("<Q")
        raw.append((name, shape, type_id, rel_offset))
    data_offset = (cur.pos + alignment - 1) // alignment * alignment

    tensors: list[GGUFTensor] = []
    for name, shape, type_id, rel_offset in raw:
        try:
            qtype = GGMLQuantizationType(type_id)
            block, type_size = GGML_QUANT_SIZES[qtype]
        except (ValueError, KeyError):
            raise CorruptModelError(
                f"{p}: tensor {name!r} has unknown ggml type id {type_id}",
                "the file is corrupt, or needs a newer `gguf` package (pip install -U gguf)",
            ) from None
        n_elements = math.prod(int(d) for d in shape)  # Python ints: a damaged dimension cannot overflow
        if n_elements % block:
            raise CorruptModelError(
                f"{p}: tensor {name!r} has {n_elements} elements, not a multiple of the {qtype.name} block ({block})"
            )
        n_bytes = n_elements // block * type_size
        offset = data_offset + rel_offset
        if offset + n_bytes > size:
            raise CorruptModelError(
                f"{p} is truncated: tensor {name!r} needs bytes up to {offset + n_bytes:,} but the file has {size:,}",
                "the download or copy was cut short; fetch the file again",
            )
        tensors.append(GGUFTensor(name, qtype.name, type_id, shape, n_elements, n_bytes, offset))
    return GGUFFile(
        path=p,
        version=version,
        metadata=metadata,
        array_lengths=lengths,
        tensors=tuple(tensors),
        alignment=alignment,
        data_offset=data_offset,
        file_bytes=size,
    )
