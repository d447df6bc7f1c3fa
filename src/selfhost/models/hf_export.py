"""A Hugging Face directory written from a GGUF file, for engines that load only HF weights (vLLM).

transformers dequantizes the GGUF (tune's own loader) and saves bf16 safetensors with the GGUF's tokenizer and chat
template. The directory is keyed by the file's SHA-256, so a changed file never reuses another file's weights;
it is written under a temporary name and renamed when complete, so an interrupted export is never mistaken for one."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from selfhost.models.spec import ModelSpec

__all__ = ["hf_dir_for", "hf_dir_path", "file_sha256"]

DEFAULT_ROOT = Path("selfhost-runs") / "hf"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def hf_dir_path(spec: ModelSpec, root: Path = DEFAULT_ROOT) -> Path:
    """Where SPEC's GGUF file is (or will be) exported: named by the file and keyed by its content."""
    assert spec.path is not None
    return root / f"{spec.path.stem}-{file_sha256(spec.path)[:16]}"


def hf_dir_for(spec: ModelSpec, root: Path = DEFAULT_ROOT) -> Path:
    """The HF directory for SPEC's GGUF file under ROOT, written now if it is not there yet."""
    out = hf_dir_path(spec, root)
    if (out / "config.json").is_file():
        return out
    import torch

    from selfhost.tune.hf import load_hf, quiet_libraries

    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{out.name}.{os.getpid()}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    with quiet_libraries():
        model, tokenizer = load_hf(spec)
        model.to(torch.bfloat16).save_pretrained(str(tmp))
        if spec.chat_template:
            tokenizer.chat_template = spec.chat_template
        tokenizer.save_pretrained(str(tmp))
    try:
        tmp.rename(out)
    except OSError:  # another process finished the same export first: its copy is the same bytes
        shutil.rmtree(tmp, ignore_errors=True)
    return out
