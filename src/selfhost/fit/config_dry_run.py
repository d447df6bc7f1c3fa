"""llama.cpp's dry run for a model known only by its config (the catalog, a Hugging Face config.json): fit builds the
model's GGUF header without its weights and asks llama.cpp's allocator about it, as it does for a local GGUF.

The header comes from the architecture zoo's shape-only build (fit/zoo.py): transformers makes the model from the
config on PyTorch's meta device, llama.cpp's own converter writes the GGUF with its data region left as a hole, and
fit/dry_run.py reads it. The build keeps the config's widths and its first few layers (enough for every kind of layer
a published model mixes: Gemma 3's global layer after five local ones, DeepSeek's dense layers before its experts);
the compute buffer is one layer's work at a time, so it does not depend on the layer count, nor on the weights'
quantization (checked on the zoo: F16 and Q4_K_M builds give the same compute buffers).

It needs the tune extra (torch, transformers) and a converter that knows the architecture; anything that fails leaves
fit's formula in place, with the reason. Builds are cached by what shapes them (selfhost.fit.zoo.build_key).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from selfhost.models.spec import ModelSpec

__all__ = ["config_gguf", "LAYERS_KEPT"]

LAYERS_KEPT = 8
# A config is untrusted input: widths far beyond any published model's would make the converter pad a vocabulary or
# write a header without end. The largest in the catalog: a vocabulary of 262,208 (Gemma 3), a hidden size of 16,384
# and a feed-forward of 53,248 (Llama 3.1 405B), 126 layers.
_LIMITS = {"vocab_size": 1 << 20, "hidden_size": 1 << 17, "intermediate_size": 1 << 20, "num_hidden_layers": 4096}
# families whose converters read a SentencePiece model (the zoo's entries for them use one)
_SPM_FIRST = ("gemma", "phi3")


def _text(cfg: dict[str, Any]) -> dict[str, Any]:
    t = cfg.get("text_config")
    return t if isinstance(t, dict) else cfg


def _with_architecture(cfg: dict[str, Any]) -> dict[str, Any] | str:
    """CFG with a model_type transformers can build and the `architectures` entry the converter picks its class by."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
    )

    out = copy.deepcopy(cfg)
    # the build's own dtype applies; a catalog may describe the published one in words (gpt-oss: "mxfp4 experts, …")
    out.pop("torch_dtype", None)
    out.pop("dtype", None)
    model_type = str(out.get("model_type") or "")
    # a flat (text-only) config of a multimodal family, as the catalog keeps Gemma 3's: its text model
    if "text_config" not in out and f"{model_type}_text" in CONFIG_MAPPING_NAMES:
        model_type = out["model_type"] = f"{model_type}_text"
    if model_type not in CONFIG_MAPPING_NAMES:
        return f"transformers does not know model_type {model_type!r}"
    if not out.get("architectures"):
        name = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(model_type)
        if "text_config" in out:
            name = MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES.get(model_type) or name
        if not name:
            return f"transformers has no causal language model for model_type {model_type!r}"
        out["architectures"] = [name]
    return out


def _vocab_rows(path: Path) -> int | None:
    from selfhost.models.gguf_file import read_gguf

    for t in read_gguf(path).tensors:
        if t.name == "token_embd.weight":
            return t.shape[1]
    return None


def _index_entry(out_dir: Path, raw: dict[str, Any], layers: int) -> Path:
    """Where a finished build of RAW is recorded, so that a rerun finds it without importing torch (seconds). Keyed
    by what else shapes the build too (the zoo's format, the converter's version, the stand-in tokenizers), so a
    changed build is made again rather than found."""
    from selfhost.errors import ModelNotFoundError
    from selfhost.fit import zoo

    try:
        tokenizers = [zoo._tokenizer_source_id(kind) for kind in ("bpe", "spm")]
    except ModelNotFoundError:
        tokenizers = []
    doc = {
        "config": raw,
        "layers": layers,
        "zoo": zoo.ZOO_FORMAT,
        "converter": zoo._converter_version(),
        "tokenizers": tokenizers,
    }
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]
    return out_dir / "index" / digest


def config_gguf(spec: ModelSpec, out_dir: Path | None = None, layers: int = LAYERS_KEPT) -> Path | str:
    """A shape-only GGUF of SPEC's config (built once, then reused), or why none could be made (one line)."""
    from selfhost.paths import cache_dir

    raw = spec.extra.get("hf_config")
    if not isinstance(raw, dict):
        return "no config to build the model's shapes from"
    out_dir = out_dir or cache_dir() / "shapes"
    index = _index_entry(out_dir, raw, layers)
    if index.is_file():
        known = Path(index.read_text(encoding="utf-8").strip())
        if known.is_file():
            return known
    got = _build(spec, raw, out_dir, layers)
    if isinstance(got, Path):
        index.parent.mkdir(parents=True, exist_ok=True)
        tmp = index.with_suffix(".tmp")
        tmp.write_text(str(got), encoding="utf-8")
        os.replace(tmp, index)
    return got


def _build(spec: ModelSpec, raw: dict[str, Any], out_dir: Path, layers: int) -> Path | str:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return "building the model's shapes needs torch and transformers: pip install 'selfhost[tune]'"
    from selfhost.errors import BackendError, SelfhostError
    from selfhost.fit import zoo

    cfg = _with_architecture(raw)
    if isinstance(cfg, str):
        return cfg
    for key, limit in _LIMITS.items():
        value = _text(cfg).get(key)
        if isinstance(value, int) and not 0 < value <= limit:
            return f"{key} {value} is outside what a shape-only build takes (1 to {limit:,})"
    n_layers = int(_text(cfg).get("num_hidden_layers") or 0)
    vocab = int(_text(cfg).get("vocab_size") or 0)
    # SmolLM2's BPE vocabulary (49,152 tokens) cannot stand in for a smaller one; some converters read only a
    # SentencePiece model. The other kind is tried when the converter refuses the first.
    kinds = ["bpe", "spm"] if vocab >= 49152 else ["spm"]
    if str(_text(cfg).get("model_type", "")).startswith(_SPM_FIRST):
        kinds.reverse()
    why = ""
    for kind in kinds:
        arch = zoo.ZooArchitecture(
            name=f"{_text(cfg).get('model_type', 'model')}-config",
            copies=spec.name,
            url=spec.source_url or "",
            config=cfg,
            layers=max(1, min(n_layers, layers)),
            small={},
            llama_cpp_arch="",
            tokenizer=kind,  # type: ignore[arg-type]
            mxfp4_experts=_text(cfg).get("model_type") == "gpt_oss",  # as gpt-oss is published
        )
        try:
            got = zoo.build_architectures([arch], "published", out_dir, shape_only=True)[arch.name]
        except SelfhostError as exc:
            return str(exc).splitlines()[0]
        if isinstance(got, BackendError):
            why = str(got).splitlines()[0][:300]
            continue
        rows = _vocab_rows(got.path)
        if rows == vocab or not vocab:
            return got.path
        # the converter sized the vocabulary by the stand-in tokenizer, not the config (Gemma's with BPE)
        why = f"the converter wrote {rows} vocabulary rows with the {kind} tokenizer where the config has {vocab}"
    return why
