"""An architecture zoo for fit's memory predictor: random-weight models at published widths with few layers.

Each architecture in zoo_architectures.json copies a published model's config.json. A build makes the model with
transformers from that config (no download; random weights, seeded), writes it as a Hugging Face directory, converts
it with llama.cpp's own convert_hf_to_gguf.py (the converters selfhost.tune.export extracts from the llama-cpp-python
source archive) and optionally quantizes it with llama-quantize. A GGUF made so has a published model's tensor shapes,
metadata and llama.cpp graph, so the memory llama.cpp allocates for it is what it allocates for the real model's
layers (only the layer count differs).

Tokenizers come from the embedded models, never a download: "bpe" is SmolLM2's (49,152 tokens, whose pre-tokenizer
the converter knows; it pads the vocabulary to `vocab_size` with [PAD] tokens), "spm" is a SentencePiece model
written from Gemma 3's vocabulary (for converters that read only tokenizer.model: Gemma 2, Phi-3, and vocabularies
smaller than 49,152, which BPE cannot stand in for).

A shape-only build (`shape_only=True`, `--shape-only`) has the same header, metadata and tensor table but no weights:
the model is made on PyTorch's meta device, its safetensors and the GGUF are written with their data regions left as
holes (sparse files: a published width takes no disk and seconds to write). llama.cpp's dry run (fit/dry_run.py)
reads only the header, so such a file answers what llama.cpp would allocate for a model at its published width; it
cannot be loaded for real (its weights read as zeros) nor quantized.

Builds are keyed: the file name holds a hash of everything that shapes the file (config, layers, width, outtype,
quant, the converter's version, the tokenizer), so a rerun reuses only an identical build. Files are written in a
temporary directory and renamed into place when complete.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Literal

from selfhost.errors import BackendError, MissingDependencyError, UsageError

__all__ = [
    "ZooArchitecture",
    "ZooModel",
    "Width",
    "architectures",
    "architecture",
    "model_config",
    "build_key",
    "build",
    "build_many",
    "build_architectures",
    "default_out_dir",
]

Width = Literal["small", "published"]
WIDTHS: tuple[Width, ...] = ("small", "published")
# Bumped when the way a build is made changes, so no older file is reused.
ZOO_FORMAT = 1
_SEED = 0


@dataclass(frozen=True)
class ZooArchitecture:
    """One entry of zoo_architectures.json."""

    name: str
    copies: str  # the published Hugging Face model id
    url: str
    config: dict[str, Any]  # the published config.json (transformers keys), full layer count
    layers: int  # layers a build keeps
    small: dict[str, Any]  # overrides for the small width (nested for text_config / vision_config)
    llama_cpp_arch: str  # general.architecture of the converted GGUF
    tokenizer: Literal["bpe", "spm"]
    layer_types: tuple[str, ...] | None = None  # per-layer kinds of the kept layers, when not the first published
    vision_layers: int | None = None  # vision tower layers a build keeps (vision models)
    mmproj_arch: str | None = None  # general.architecture of the projector GGUF (vision models)
    preprocessor: dict[str, Any] | None = None  # preprocessor_config.json (vision models)
    mxfp4_experts: bool = False  # write experts as MXFP4 blocks, as the published weights are
    converter_config: dict[str, Any] | None = None  # written over the saved config.json, for the converter
    tensor_renames: dict[str, str] | None = None  # saved tensor-name prefix -> the published checkpoint's
    supported_by_llama_cpp: bool = True
    reason: str | None = None  # why not supported
    notes: str | None = None

    @property
    def is_vision(self) -> bool:
        return "vision_config" in self.config

    def text_config(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """The text model's part of CONFIG (default: the published config)."""
        cfg = self.config if config is None else config
        return cfg.get("text_config", cfg)


@dataclass(frozen=True)
class ZooModel:
    """A built zoo model: its GGUF (and projector GGUF for a vision model)."""

    arch: str
    width: Width
    outtype: str
    quant: str | None
    path: Path
    mmproj: Path | None
    key: str
    seconds: float  # time this call spent building it (0 when reused)
    reused: bool


@cache
def _entries() -> tuple[ZooArchitecture, ...]:
    raw = json.loads(resources.files("selfhost.fit").joinpath("zoo_architectures.json").read_text(encoding="utf-8"))
    out = []
    for e in raw["architectures"]:
        e = dict(e)
        if e.get("layer_types") is not None:
            e["layer_types"] = tuple(e["layer_types"])
        out.append(ZooArchitecture(**e))
    return tuple(out)


def architectures() -> list[ZooArchitecture]:
    """Every architecture in zoo_architectures.json, in file order."""
    return list(_entries())


def architecture(name: str) -> ZooArchitecture:
    for a in _entries():
        if a.name == name:
            return a
    raise UsageError(f"no zoo architecture {name!r}", "one of: " + ", ".join(a.name for a in _entries()))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _cut_layers(cfg: dict[str, Any], layers: int, kinds: Sequence[str] | None) -> None:
    """Keep LAYERS layers: per-layer lists are cut to the kept layers (or replaced by KINDS)."""
    published = cfg["num_hidden_layers"]
    cfg["num_hidden_layers"] = layers
    for k, v in list(cfg.items()):
        if isinstance(v, list) and len(v) == published and k not in ("eos_token_id",):
            cfg[k] = v[:layers]
    if "full_attn_idxs" in cfg:
        cfg["full_attn_idxs"] = [i for i in cfg["full_attn_idxs"] if i < layers]
    if kinds is not None:
        cfg["layer_types"] = list(kinds)
        if "full_attn_idxs" in cfg:
            cfg["full_attn_idxs"] = [i for i, t in enumerate(kinds) if t != "conv"]


def _drop_out_of_vocab_ids(cfg: dict[str, Any]) -> None:
    """Special token ids beyond a shrunk vocabulary are dropped (the tokenizer files name the real ones)."""
    vocab = cfg.get("vocab_size")
    if not isinstance(vocab, int):
        return
    for k in ("bos_token_id", "eos_token_id", "pad_token_id"):
        v = cfg.get(k)
        if isinstance(v, int) and v >= vocab:
            cfg[k] = None
        elif isinstance(v, list):
            kept = [i for i in v if i < vocab]
            cfg[k] = kept or None


def model_config(arch: ZooArchitecture, width: Width) -> dict[str, Any]:
    """The config.json a build of ARCH at WIDTH uses: published widths (or the small overrides), layers kept."""
    if width not in WIDTHS:
        raise UsageError(f"width {width!r} is not one of {', '.join(WIDTHS)}")
    cfg = _merge(arch.config, arch.small) if width == "small" else copy.deepcopy(arch.config)
    _cut_layers(arch.text_config(cfg), arch.layers, arch.layer_types)
    if arch.vision_layers is not None:
        cfg["vision_config"]["num_hidden_layers"] = arch.vision_layers
    for part in (cfg, cfg.get("text_config")):
        if part is not None:
            _drop_out_of_vocab_ids(part)
    return cfg


def _converter_version() -> str:
    return metadata.version("llama-cpp-python")


def build_key(
    arch: ZooArchitecture, width: Width, outtype: str = "f16", quant: str | None = None, shape_only: bool = False
) -> str:
    """16 hex digits naming a build: changes whenever anything that shapes the file changes."""
    doc = {
        "shape_only": shape_only,
        "zoo": ZOO_FORMAT,
        "config": model_config(arch, width),
        "layers": arch.layers,
        "vision_layers": arch.vision_layers,
        "width": width,
        "outtype": outtype,
        "quant": quant,
        "converter": _converter_version(),
        "tokenizer": arch.tokenizer,
        "tokenizer_source": _tokenizer_source_id(arch.tokenizer),
        "mxfp4_experts": arch.mxfp4_experts,
        "converter_config": arch.converter_config,
        "tensor_renames": arch.tensor_renames,
        "preprocessor": arch.preprocessor,
        "seed": _SEED,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def default_out_dir() -> Path:
    from selfhost.paths import cache_dir

    return cache_dir() / "zoo"


# --- tokenizers -------------------------------------------------------------------------------------------------

_TOKENIZER_MODELS = {"bpe": "smollm2-135m", "spm": "gemma3-270m"}


def _tokenizer_gguf(kind: str) -> Path:
    from selfhost.models.embedded import embedded_path

    return embedded_path(_TOKENIZER_MODELS[kind])


@cache
def _tokenizer_source_id(kind: str) -> str:
    """Which embedded file a tokenizer comes from (its name and size: the packages pin the file)."""
    p = _tokenizer_gguf(kind)
    return f"{p.name}:{p.stat().st_size}"


def _tokenizer_cache(kind: str) -> Path:
    from selfhost.paths import cache_dir

    size = _tokenizer_source_id(kind).rpartition(":")[2]
    return cache_dir() / "zoo" / "tokenizers" / f"{_TOKENIZER_MODELS[kind]}-{size}"


def _publish_dir(tmp: Path, target: Path) -> Path:
    try:
        tmp.rename(target)
    except OSError:  # another process finished first: its copy is the same
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _bpe_tokenizer_dir() -> Path:
    """SmolLM2's tokenizer as Hugging Face files (tokenizer.json, tokenizer_config.json), written once."""
    target = _tokenizer_cache("bpe")
    if (target / "tokenizer.json").is_file():
        return target
    from transformers import AutoTokenizer

    src = _tokenizer_gguf("bpe")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".bpe-"))
    tmp.chmod(0o755)
    with _quiet():
        tok = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
        tok.chat_template = None
        tok.save_pretrained(str(tmp))
    for extra in ("chat_template.jinja", "special_tokens_map.json"):
        (tmp / extra).unlink(missing_ok=True)
    return _publish_dir(tmp, target)


def _gguf_vocab(path: Path) -> tuple[list[str], list[float], list[int], dict[str, int]]:
    """(tokens, scores, token types, special ids) from a GGUF's metadata (selfhost's header reader, which
    GGUFReader would take ~20 s to match on a 262k-token vocabulary)."""
    from selfhost.models.gguf_file import read_gguf

    g = read_gguf(path, keep=frozenset({"tokenizer.ggml.scores", "tokenizer.ggml.token_type"}))
    ids = {k: g.get(f"tokenizer.ggml.{k}_token_id") for k in ("bos", "eos", "unknown", "padding")}
    return g.get("tokenizer.ggml.tokens"), g.get("tokenizer.ggml.scores"), g.get("tokenizer.ggml.token_type"), ids


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field_bytes(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _field_int(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def _spm_model_bytes(n_pieces: int) -> bytes:
    """A SentencePiece ModelProto (BPE, byte fallback) holding the first N_PIECES of Gemma 3's vocabulary, encoded
    by hand (no protobuf dependency). GGUF token types use SentencePiece's numbering (1 normal ... 6 byte)."""
    vocab = json.loads((_spm_vocab_cache()).read_text(encoding="utf-8"))
    unk = vocab["ids"]["unknown"]
    pieces = []
    for i, (tok, score, kind) in enumerate(zip(vocab["tokens"], vocab["scores"], vocab["types"], strict=True)):
        if i >= n_pieces:
            break
        kind = 2 if i == unk else kind  # sentencepiece needs exactly one UNKNOWN piece
        body = _field_bytes(1, tok.encode()) + b"\x15" + struct.pack("<f", score) + _field_int(3, kind)
        pieces.append(_field_bytes(1, body))
    ids = vocab["ids"]
    trainer = (
        _field_int(3, 2)  # model_type BPE
        + _field_int(35, 1)  # byte_fallback
        + _field_int(40, unk)
        + _field_int(41, ids["bos"])
        + _field_int(42, ids["eos"])
        + _field_int(43, ids["padding"])
    )
    normalizer = _field_bytes(1, b"identity") + _field_int(3, 0) + _field_int(4, 0) + _field_int(5, 1)
    return b"".join(pieces) + _field_bytes(2, trainer) + _field_bytes(3, normalizer)


def _spm_vocab_cache() -> Path:
    target = _tokenizer_cache("spm") / "vocab.json"
    if target.is_file():
        return target
    tokens, scores, types, ids = _gguf_vocab(_tokenizer_gguf("spm"))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".vocab-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"tokens": tokens, "scores": scores, "types": types, "ids": ids}, f)
    os.replace(tmp, target)
    return target


def _write_tokenizer(arch: ZooArchitecture, cfg: dict[str, Any], hf_dir: Path) -> None:
    if arch.tokenizer == "bpe":
        src = _bpe_tokenizer_dir()
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copyfile(src / name, hf_dir / name)
    else:
        (hf_dir / "tokenizer.model").write_bytes(_spm_model_bytes(arch.text_config(cfg)["vocab_size"]))


# --- building ---------------------------------------------------------------------------------------------------


@contextmanager
def _quiet() -> Iterator[None]:
    """transformers warns about its own internals (and pytest here turns warnings into errors)."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _write_hf_dir(arch: ZooArchitecture, width: Width, hf_dir: Path, shape_only: bool = False) -> None:
    """A Hugging Face model directory with random weights (seeded), the tokenizer and, for vision, preprocessing.
    SHAPE_ONLY: the weights are holes (see the module's docstring)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

    cfg = model_config(arch, width)
    hf_dir.mkdir(parents=True, exist_ok=True)
    with _quiet():
        kw = {k: v for k, v in cfg.items() if k != "model_type"}
        config = AutoConfig.for_model(cfg["model_type"], **kw)
        factory = AutoModelForImageTextToText if arch.is_vision else AutoModelForCausalLM
        torch.manual_seed(_SEED)
        if shape_only:
            with torch.device("meta"):
                model = factory.from_config(config, dtype=torch.bfloat16)
            model.config.save_pretrained(str(hf_dir))
            _write_sparse_safetensors(hf_dir / "model.safetensors", _saved_tensors(model))
        else:
            model = factory.from_config(config, dtype=torch.bfloat16)
            model.save_pretrained(str(hf_dir))
        del model
    saved = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    if "architectures" in cfg.get("text_config", {}):
        # transformers may not write the text model's architecture, which the converter picks its class by.
        saved["text_config"]["architectures"] = cfg["text_config"]["architectures"]
    saved |= arch.converter_config or {}
    (hf_dir / "config.json").write_text(json.dumps(saved, indent=2), encoding="utf-8")
    if arch.preprocessor is not None:
        (hf_dir / "preprocessor_config.json").write_text(json.dumps(arch.preprocessor), encoding="utf-8")
    if arch.tensor_renames:
        _rename_tensors(hf_dir, arch.tensor_renames, shape_only)
    if arch.mxfp4_experts:
        _experts_to_mxfp4(hf_dir, shape_only)
    _write_tokenizer(arch, cfg, hf_dir)


def _saved_tensors(model: Any) -> dict[str, Any]:
    """The tensors save_pretrained would write, under the names it would write them (meta tensors): the state dict
    less the tied copies, with transformers' weight conversions reverted (fused experts back to the checkpoint's
    per-expert layout, module paths back to the published names)."""
    from transformers.core_model_loading import revert_weight_conversion
    from transformers.modeling_utils import remove_tied_weights_from_state_dict

    state = remove_tied_weights_from_state_dict(model.state_dict(), model)
    return dict(revert_weight_conversion(model, state))


# safetensors' dtype names (the format's spec)
_ST_DTYPES = {"torch.bfloat16": "BF16", "torch.float16": "F16", "torch.float32": "F32", "torch.uint8": "U8"}


def _write_sparse_safetensors(path: Path, tensors: dict[str, Any]) -> None:
    """A safetensors file whose header names TENSORS (meta tensors: shapes and dtypes only) and whose data region is a
    hole of the right size: every weight reads as zero, nothing is written."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, t in tensors.items():
        nbytes = t.numel() * t.element_size()
        header[name] = {
            "dtype": _ST_DTYPES[str(t.dtype)],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)


def _read_safetensors_shapes(path: Path) -> dict[str, Any]:
    """The tensors a safetensors file holds, as meta tensors (its header only)."""
    import torch

    by_name = {v: getattr(torch, k.removeprefix("torch.")) for k, v in _ST_DTYPES.items()}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    ordered = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    return {k: torch.empty(v["shape"], dtype=by_name[v["dtype"]], device="meta") for k, v in ordered}


def _rewrite_tensors(hf_dir: Path, transform: Callable[[str, Any], dict[str, Any]], shape_only: bool = False) -> None:
    """Rewrite every safetensors file of HF_DIR through TRANSFORM(name, tensor) -> {new name: tensor} (meta tensors
    and a sparse file when SHAPE_ONLY)."""
    from safetensors.torch import load_file, save_file

    renamed: dict[str, list[str]] = {}
    for st in sorted(hf_dir.glob("*.safetensors")):
        out: dict[str, Any] = {}
        for name, t in (_read_safetensors_shapes(st) if shape_only else load_file(str(st))).items():
            got = transform(name, t)
            out |= got
            if list(got) != [name]:
                renamed[name] = list(got)
        if shape_only:
            _write_sparse_safetensors(st, out)
        else:
            save_file(out, str(st), metadata={"format": "pt"})
    index = hf_dir / "model.safetensors.index.json"
    if index.is_file() and renamed:
        doc = json.loads(index.read_text(encoding="utf-8"))
        wm = doc["weight_map"]
        for old, news in renamed.items():
            shard = wm.pop(old)
            wm |= dict.fromkeys(news, shard)
        index.write_text(json.dumps(doc, indent=2), encoding="utf-8")


def _rename_tensors(hf_dir: Path, prefixes: dict[str, str], shape_only: bool = False) -> None:
    """Tensor names back to the published checkpoint's (transformers 5 saves some under its own module paths)."""

    def rename(name: str, t: Any) -> dict[str, Any]:
        for old, new in prefixes.items():
            if name.startswith(old) and not name.startswith(new):
                return {new + name[len(old) :]: t}
        return {name: t}

    _rewrite_tensors(hf_dir, rename, shape_only)


def _experts_to_mxfp4(hf_dir: Path, shape_only: bool = False) -> None:
    """Replace bf16 expert weights with random MXFP4 blocks in gpt-oss's published layout: for each projection,
    `*_blocks` uint8 [experts, out, in/32, 16] (two 4-bit codes a byte) and `*_scales` uint8 [experts, out, in/32]
    (E8M0 exponents), plus quantization_config quant_method mxfp4, which the converter repacks into GGUF MXFP4."""
    import torch

    gen = torch.Generator().manual_seed(_SEED)

    def to_mxfp4(name: str, t: Any) -> dict[str, Any]:
        if not name.endswith(("mlp.experts.gate_up_proj", "mlp.experts.down_proj")):
            return {name: t}
        # transformers stores [experts, in, out]; the published blocks are per output row
        n_exp, n_in, n_out = t.shape
        if n_in % 32:
            raise BackendError(f"{name}: {n_in} inputs is not a multiple of the MXFP4 block (32)")
        if shape_only:
            blocks = torch.empty((n_exp, n_out, n_in // 32, 16), dtype=torch.uint8, device="meta")
            scales = torch.empty((n_exp, n_out, n_in // 32), dtype=torch.uint8, device="meta")
            return {name + "_blocks": blocks, name + "_scales": scales}
        blocks = torch.randint(0, 256, (n_exp, n_out, n_in // 32, 16), dtype=torch.uint8, generator=gen)
        # E8M0 exponents 118..122: element scales 2^-9..2^-5, small finite weights (255 would be NaN)
        scales = torch.randint(118, 123, (n_exp, n_out, n_in // 32), dtype=torch.uint8, generator=gen)
        return {name + "_blocks": blocks, name + "_scales": scales}

    _rewrite_tensors(hf_dir, to_mxfp4, shape_only)
    cfg_path = hf_dir / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["quantization_config"] = {
        "quant_method": "mxfp4",
        "modules_to_not_convert": [
            "model.layers.*.self_attn",
            "model.layers.*.mlp.router",
            "model.embed_tokens",
            "lm_head",
        ],
    }
    cfg_path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")


_DRIVER = r"""
import json, sys, time, traceback
jobs = json.load(open(sys.argv[1]))
sys.argv = [sys.argv[0]]
import convert_hf_to_gguf as c
import gguf

write_data = gguf.GGUFWriter.write_tensors_to_file


def write_holes(self, *, progress=False):
    # a shape-only build: the data region is left as a hole (the lazy tensors are never computed)
    self.write_ti_data_to_file()
    for fout, tensors in zip(self.fout, self.tensors):
        self.write_padding(fout, fout.tell())
        for ti in tensors.values():
            fout.seek(gguf.GGUFWriter.ggml_pad(ti.nbytes, self.data_alignment), 1)
            ti.tensor = None
        fout.truncate(fout.tell())
    self.state = gguf.gguf_writer.WriterState.WEIGHTS


with open(jobs["results"], "a") as res:
    for job in jobs["jobs"]:
        gguf.GGUFWriter.write_tensors_to_file = write_holes if job.get("shape_only") else write_data
        sys.argv = ["convert_hf_to_gguf.py", *job["args"]]
        err = None
        t0 = time.perf_counter()
        try:
            c.main()
        except SystemExit as e:
            if e.code not in (None, 0):
                err = f"exited with {e.code}"
        except BaseException as e:
            err = "".join(traceback.format_exception_only(e)).strip()
        res.write(json.dumps({"id": job["id"], "error": err, "seconds": time.perf_counter() - t0}) + "\n")
        res.flush()
"""


def _convert_jobs(jobs: list[tuple[str, list[str]]], log: Path, shape_only: bool = False) -> dict[str, str | None]:
    """Run convert_hf_to_gguf.py's main() for each (id, args) in one process (torch is imported once, not per job):
    {id: None when it converted, else the error}. SHAPE_ONLY: the GGUFs' data regions are left as holes."""
    from selfhost.tune.export import converters_dir

    where = converters_dir()
    results = log.with_suffix(".results")
    spec = log.with_suffix(".jobs.json")
    spec.write_text(
        json.dumps({"results": str(results), "jobs": [{"id": i, "args": a, "shape_only": shape_only} for i, a in jobs]})
    )
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(where / "gguf-py"), str(where)])}
    with open(log, "w") as logf:
        done = subprocess.run(
            [sys.executable, "-c", _DRIVER, str(spec)], stdout=logf, stderr=subprocess.STDOUT, env=env, check=False
        )
    got: dict[str, str | None] = {}
    if results.is_file():
        for line in results.read_text().splitlines():
            r = json.loads(line)
            got[r["id"]] = r["error"]
    tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
    if "No module named" in tail and not got:
        raise MissingDependencyError(
            f"llama.cpp's convert_hf_to_gguf.py needs a module: {tail}", "pip install 'selfhost[tune]'"
        )
    for i, _ in jobs:
        if i not in got:
            got[i] = f"converter process ended (exit {done.returncode}) before this job: {tail}"
        elif got[i] is not None:
            got[i] = f"{got[i]} | log: {tail}"
    return got


def _quantize(src: Path, dst: Path, quant: str, keep_mxfp4_experts: bool = False) -> None:
    """llama-quantize SRC to DST. MXFP4 experts stay MXFP4 (llama-quantize refuses to requantize them; the published
    gpt-oss GGUFs keep them so) while the other tensors take QUANT."""
    exe = Path(sys.executable).parent / "llama-quantize"
    if not exe.is_file():
        found = shutil.which("llama-quantize")
        if found is None:
            raise MissingDependencyError("llama-quantize is not installed", "make install-test (or build llama.cpp)")
        exe = Path(found)
    extra = ["--tensor-type", "_exps=mxfp4"] if keep_mxfp4_experts else []
    done = subprocess.run([str(exe), *extra, str(src), str(dst), quant], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise BackendError(f"llama-quantize {quant} failed: {tail}")


@dataclass
class _Plan:
    arch: ZooArchitecture
    width: Width
    outtype: str
    quant: str | None
    out_dir: Path
    shape_only: bool = False
    key: str = ""
    tmp: Path = field(default_factory=Path)

    @property
    def stem(self) -> str:
        q = f"-{self.quant.lower()}" if self.quant else ""
        shapes = "-shapes" if self.shape_only else ""
        return f"{self.arch.name}-{self.width}-{self.outtype}{q}{shapes}-{self.key}"

    @property
    def path(self) -> Path:
        return self.out_dir / f"{self.stem}.gguf"

    @property
    def mmproj(self) -> Path | None:
        return self.out_dir / f"mmproj-{self.stem}.gguf" if self.arch.is_vision else None

    def model(self, seconds: float, reused: bool) -> ZooModel:
        return ZooModel(
            self.arch.name, self.width, self.outtype, self.quant, self.path, self.mmproj, self.key, seconds, reused
        )


def build_many(
    names: Sequence[str],
    width: Width,
    out_dir: Path | None = None,
    outtype: str = "f16",
    quant: str | None = None,
    shape_only: bool = False,
) -> dict[str, ZooModel | BackendError]:
    """Build (or reuse) each named architecture: {name: ZooModel, or the error that stopped it}. Small builds and
    shape-only ones share one converter process; other published ones are built one at a time to bound memory and
    disk. SHAPE_ONLY: headers without weights (see the module's docstring); no quantization."""
    return build_architectures([architecture(n) for n in names], width, out_dir, outtype, quant, shape_only)


def build_architectures(
    archs: Sequence[ZooArchitecture],
    width: Width,
    out_dir: Path | None = None,
    outtype: str = "f16",
    quant: str | None = None,
    shape_only: bool = False,
) -> dict[str, ZooModel | BackendError]:
    """build_many for architectures given as entries (e.g. one made from a model's config) rather than by name."""
    if shape_only and quant:
        raise UsageError("a shape-only build has no weights to quantize", "leave out --quant")
    out_dir = default_out_dir() if out_dir is None else Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [a.name for a in archs]
    plans = []
    for a in archs:
        p = _Plan(a, width, outtype, quant, out_dir, shape_only)
        p.key = build_key(p.arch, width, outtype, quant, shape_only)
        plans.append(p)
    result: dict[str, ZooModel | BackendError] = {}
    todo = []
    for p in plans:
        if p.path.is_file():
            result[p.arch.name] = p.model(0.0, reused=True)
        else:
            todo.append(p)
    groups = [todo] if width == "small" or shape_only else [[p] for p in todo]
    for group in groups:
        if group:
            result |= _build_group(group)
    return {n: result[n] for n in names}


def _build_group(group: list[_Plan]) -> dict[str, ZooModel | BackendError]:
    out: dict[str, ZooModel | BackendError] = {}
    started: dict[str, float] = {}
    jobs: list[tuple[str, list[str]]] = []
    staging = Path(tempfile.mkdtemp(dir=group[0].out_dir, prefix=f".zoo-{os.getpid()}-"))
    try:
        for p in group:
            t0 = time.perf_counter()
            p.tmp = staging / p.arch.name
            try:
                _write_hf_dir(p.arch, p.width, p.tmp / "hf", p.shape_only)
            except Exception as e:  # a config transformers rejects: reported for this architecture only
                out[p.arch.name] = BackendError(f"{p.arch.name}: transformers could not build it: {e}")
                continue
            started[p.arch.name] = time.perf_counter() - t0
            hf = str(p.tmp / "hf")
            jobs.append((p.arch.name, [hf, "--outfile", str(p.tmp / "model.gguf"), "--outtype", p.outtype]))
            if p.arch.is_vision:
                args = [hf, "--mmproj", "--outfile", str(p.tmp / "mmproj.gguf"), "--outtype", p.outtype]
                jobs.append((p.arch.name + ":mmproj", args))
        t_conv = time.perf_counter()
        errors = _convert_jobs(jobs, staging / "convert.log", group[0].shape_only) if jobs else {}
        conv_each = (time.perf_counter() - t_conv) / max(1, len(started))
        for p in group:
            name = p.arch.name
            if name in out:
                continue
            err = errors.get(name) or errors.get(name + ":mmproj")
            if err is not None:
                out[name] = BackendError(f"{name}: convert_hf_to_gguf.py failed: {err}")
                continue
            t0 = time.perf_counter()
            try:
                _finish(p)
            except BackendError as e:
                out[name] = e
                continue
            out[name] = p.model(started[name] + conv_each + time.perf_counter() - t0, reused=False)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _finish(p: _Plan) -> None:
    """Quantize if asked, then move the files into place: the projector first, the model last (a present model file
    means a complete build)."""
    model = p.tmp / "model.gguf"
    if p.quant:
        q = p.tmp / "model-q.gguf"
        _quantize(model, q, p.quant, keep_mxfp4_experts=p.arch.mxfp4_experts)
        model = q
    if p.mmproj is not None:
        found = sorted(p.tmp.glob("*mmproj*.gguf"))
        if not found:
            raise BackendError(f"{p.arch.name}: the converter wrote no projector (mmproj) file")
        os.replace(found[0], p.mmproj)
    os.replace(model, p.path)


def build(
    arch: str,
    width: Width,
    out_dir: Path | None = None,
    outtype: str = "f16",
    quant: str | None = None,
    shape_only: bool = False,
) -> ZooModel:
    """Build (or reuse) one architecture's GGUF at WIDTH; raises BackendError when it cannot be built."""
    got = build_many([arch], width, out_dir, outtype, quant, shape_only)[arch]
    if isinstance(got, BackendError):
        raise got
    return got


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m selfhost.fit.zoo", description=__doc__.splitlines()[0])
    ap.add_argument("--width", choices=WIDTHS, default="small")
    ap.add_argument("--arch", action="append", help="an architecture name (repeatable; default: all supported)")
    ap.add_argument("--out", type=Path, default=None, help=f"output directory (default: {default_out_dir()})")
    ap.add_argument("--outtype", default="f16", choices=["f32", "f16", "bf16", "q8_0"])
    ap.add_argument("--quant", default=None, help="llama-quantize type, e.g. Q4_K_M")
    ap.add_argument("--shape-only", action="store_true", help="headers and tensor tables only, weights left as holes")
    ap.add_argument("--list", action="store_true", help="list the architectures and exit")
    args = ap.parse_args(argv)
    if args.list:
        for a in architectures():
            print(f"{a.name:20} {a.llama_cpp_arch:14} {a.copies}")
        return 0
    names = args.arch or [a.name for a in architectures() if a.supported_by_llama_cpp]
    try:
        for n in names:
            architecture(n)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # small builds share one converter process; published ones print as each ends
    groups = [names] if args.width == "small" or args.shape_only else [[n] for n in names]
    failed = 0
    for group in groups:
        built = build_many(group, args.width, args.out, args.outtype, args.quant, args.shape_only)
        for name, got in built.items():
            if isinstance(got, BackendError):
                failed += 1
                print(f"{name}\tFAILED\t{got}", flush=True)
                continue
            size = got.path.stat().st_size + (got.mmproj.stat().st_size if got.mmproj else 0)
            extra = f"\t{got.mmproj}" if got.mmproj else ""
            print(
                f"{name}\t{got.path}\t{size}\t{got.seconds:.1f}s{' (reused)' if got.reused else ''}{extra}", flush=True
            )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(_main())
