"""The GGUF header reader, checked against the `gguf` package's own reader and the file's layout."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest

from selfhost.errors import CorruptModelError, ModelNotFoundError, NotAGGUFError
from selfhost.models.gguf_file import read_gguf


def test_tensor_table_matches_gguf_reader(smollm2_path: Path) -> None:
    ours = read_gguf(smollm2_path)
    ref = gguf.GGUFReader(smollm2_path)
    assert len(ours.tensors) == len(ref.tensors) == 272
    for a, b in zip(ours.tensors, ref.tensors):
        assert a.name == b.name
        assert a.type == b.tensor_type.name
        assert a.shape == tuple(int(x) for x in b.shape)
        assert a.n_elements == int(b.n_elements)
        assert a.n_bytes == int(b.n_bytes)
        assert a.offset == int(b.data_offset)


def test_metadata_matches_gguf_reader(smollm2_path: Path) -> None:
    ours = read_gguf(smollm2_path)
    ref = gguf.GGUFReader(smollm2_path)
    compared = 0
    for key, field in ref.fields.items():
        if key.startswith("GGUF."):
            continue
        if key in ours.array_lengths:  # skipped on purpose, length kept
            assert ours.array_lengths[key] == len(field.data)
            continue
        expected = field.contents()
        got = ours.metadata[key]
        if isinstance(expected, float):
            assert got == pytest.approx(expected)
        else:
            assert got == expected, key
        compared += 1
    assert compared >= 25


def test_tensor_bytes_account_for_the_whole_file(smollm2_path: Path) -> None:
    """Sizes derived from block types must tile the data section: each tensor ends before the next starts,
    with less than one alignment unit of padding, and the last one ends at the end of the file."""
    g = read_gguf(smollm2_path)
    ordered = sorted(g.tensors, key=lambda t: t.offset)
    assert ordered[0].offset == g.data_offset
    for a, b in zip(ordered, ordered[1:]):
        gap = b.offset - (a.offset + a.n_bytes)
        assert 0 <= gap < g.alignment, (a.name, gap)
    last = ordered[-1]
    assert 0 <= g.file_bytes - (last.offset + last.n_bytes) < g.alignment


def test_missing_file() -> None:
    with pytest.raises(ModelNotFoundError, match="no such file"):
        read_gguf("/nonexistent/model.gguf")


def test_not_a_gguf(tmp_path: Path) -> None:
    p = tmp_path / "model.gguf"
    p.write_text("this is a README, not weights\n" * 10)
    with pytest.raises(NotAGGUFError, match="magic"):
        read_gguf(p)


def test_truncated_in_tensor_data(tmp_path: Path, smollm2_path: Path) -> None:
    p = tmp_path / "cut.gguf"
    with open(smollm2_path, "rb") as src, open(p, "wb") as dst:
        dst.write(src.read(smollm2_path.stat().st_size // 2))
    with pytest.raises(CorruptModelError, match="truncated: tensor") as err:
        read_gguf(p)
    assert "fetch the file again" in (err.value.next_step or "")


def test_truncated_in_header(tmp_path: Path, smollm2_path: Path) -> None:
    p = tmp_path / "cut.gguf"
    with open(smollm2_path, "rb") as src, open(p, "wb") as dst:
        dst.write(src.read(5000))  # inside the tokenizer arrays
    with pytest.raises(CorruptModelError, match="header ends past the end"):
        read_gguf(p)


def _tiny_gguf(path: Path) -> None:
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(1)
    w.add_tensor("blk.0.attn_q.weight", np.zeros((4, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_unknown_tensor_type(tmp_path: Path) -> None:
    p = tmp_path / "tiny.gguf"
    _tiny_gguf(p)
    g = read_gguf(p)
    raw = bytearray(p.read_bytes())
    name = b"blk.0.attn_q.weight"
    # tensor info: name, n_dims (u32), dims (u64 x n), type (u32), offset (u64)
    pos = raw.index(name) + len(name) + 4 + 8 * len(g.tensors[0].shape)
    assert struct.unpack_from("<I", raw, pos)[0] == 0  # F32
    struct.pack_into("<I", raw, pos, 999)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(bytes(raw))
    with pytest.raises(CorruptModelError, match="unknown ggml type id 999"):
        read_gguf(bad)


def test_unsupported_version(tmp_path: Path, smollm2_path: Path) -> None:
    p = tmp_path / "v9.gguf"
    shutil.copyfile(smollm2_path, p)
    with open(p, "r+b") as f:
        f.seek(4)
        f.write(struct.pack("<I", 9))
    with pytest.raises(CorruptModelError, match="version 9"):
        read_gguf(p)
