"""The dequantized copy of a GGUF base that tune keeps: the same tensors and tokenizer as dequantizing the file
again, keyed by the file's content."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from selfhost.models.gguf_spec import spec_from_gguf


def test_cached_copy_is_the_dequantized_gguf(
    smollm2_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from selfhost.tune.hf import dequantized_cache_dir, load_hf

    monkeypatch.setenv("SELFHOST_CACHE", str(tmp_path / "cache"))
    spec = spec_from_gguf(smollm2_path)
    kept = dequantized_cache_dir(spec, "float32")
    assert not kept.exists()
    fresh, fresh_tok = load_hf(spec)  # dequantized from the GGUF now, and kept
    assert (kept / "config.json").is_file() and not list(kept.parent.glob(".*partial"))
    cached, cached_tok = load_hf(spec)
    a, b = fresh.state_dict(), cached.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    text = "<|im_start|>user\nWhat's 12·7? Ünïcode, tabs\tand  spaces.<|im_end|>\n<|im_start|>assistant\n"
    assert fresh_tok(text)["input_ids"] == cached_tok(text)["input_ids"]
    assert (fresh_tok.eos_token, fresh_tok.pad_token) == (cached_tok.eos_token, cached_tok.pad_token)
    # An adapter trained on the cached copy still names the GGUF's directory as its base, not the cache.
    assert cached.name_or_path == fresh.name_or_path == str(smollm2_path.parent)

    # A file with other bytes under the same name is another key: it never loads this file's weights.
    other = tmp_path / "m" / smollm2_path.name
    other.parent.mkdir()
    shutil.copyfile(smollm2_path, other)
    with open(other, "r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    assert dequantized_cache_dir(spec_from_gguf(other), "float32") != kept
