"""Loading a model for training with transformers (a GGUF is dequantized), and merging an adapter back into it.

torch, transformers, peft, trl and datasets are optional (`pip install 'selfhost[tune]'`) and imported only here
and in the modules that train and evaluate.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selfhost.errors import MissingDependencyError, UsageError
from selfhost.models.spec import ModelSpec

__all__ = ["require_tune_deps", "load_hf", "dequantized_cache_dir", "quiet_libraries", "merge_adapter"]


def require_tune_deps() -> Any:
    try:
        import datasets  # noqa: F401
        import peft  # noqa: F401
        import torch
        import transformers  # noqa: F401
        import trl  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "fine-tuning needs torch, transformers, peft, trl and datasets",
            "pip install 'selfhost[tune]' (or `make install-test`)",
        ) from None
    return torch


def _quantization_config(torch: Any) -> Any:
    if not torch.cuda.is_available():
        raise UsageError(
            "QLoRA needs a CUDA GPU (bitsandbytes 4-bit); this machine has none",
            "drop --qlora to train LoRA on full-precision weights, or run on a GPU host",
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise MissingDependencyError("QLoRA needs bitsandbytes", "pip install bitsandbytes") from None
    from transformers import BitsAndBytesConfig

    # The QLoRA paper's recipe (Dettmers et al. 2023): NF4 weights, double quantization, bf16 compute.
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def refuse_qlora_on_gguf(spec: ModelSpec) -> None:
    """QLoRA quantizes full-precision weights: refused for a GGUF base before torch is imported (a 10 s import)."""
    if spec.source in ("gguf", "embedded", "ollama"):
        raise UsageError(
            "QLoRA quantizes full-precision HF weights; this model is a GGUF file",
            "pass the model's Hugging Face directory, or drop --qlora",
        )


def load_hf(spec: ModelSpec, qlora: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) from a GGUF file (dequantized) or an HF directory: float32 on a CPU, bf16 on a GPU that
    supports it, NF4 with qlora."""
    if qlora:
        refuse_qlora_on_gguf(spec)
    torch = require_tune_deps()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if spec.path is None:
        raise UsageError(f"{spec.name} has no local weights to fine-tune", "pass a GGUF file or an HF directory")
    from_gguf = spec.source in ("gguf", "embedded", "ollama")
    if from_gguf:
        kw: dict[str, Any] = {"gguf_file": spec.path.name}
        where = str(spec.path.parent)
    else:
        kw = {}
        where = str(spec.path)
    gpu = torch.cuda.is_available()
    dtype = torch.bfloat16 if gpu and torch.cuda.is_bf16_supported() else torch.float32
    cached = dequantized_cache_dir(spec, str(dtype).removeprefix("torch.")) if from_gguf else None
    if cached is not None:
        if (cached / "config.json").is_file():
            model, tok = _load_dir(cached, dtype, {})
            model.name_or_path = where  # what the adapter's config names as its base: the GGUF, not the cache
            return model, tok
    if qlora:
        kw["quantization_config"] = _quantization_config(torch)
    model, tok = _load_dir(Path(where), dtype, kw)
    if cached is not None:
        # transformers dequantizes GGUF weights to plain floats on load but still marks the model as "quantized
        # with gguf", and then refuses to train or save it; the mark describes the file, not the tensors.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        _keep_dequantized(model, tok, cached)
    return model, tok


def _load_dir(where: Path, dtype: Any, kw: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(where), **{k: v for k, v in kw.items() if k == "gguf_file"})
    with contextlib.redirect_stderr(io.StringIO()):  # transformers' GGUF loader draws a tqdm bar unconditionally
        model: Any = AutoModelForCausalLM.from_pretrained(str(where), dtype=dtype, **kw)
    return model, tok


def dequantized_cache_dir(spec: ModelSpec, dtype: str) -> Path:
    """Where the GGUF's dequantized weights are kept (float32 on a CPU): keyed by the file's SHA-256 and the dtype,
    so a changed file is never trained from another file's weights. Dequantizing with transformers' GGUF reader
    is most of a short run's time (about 25 s of 54 s for a one-step run of the embedded model on 2 cores)."""
    from selfhost.models.hf_export import file_sha256
    from selfhost.paths import cache_dir

    assert spec.path is not None
    return cache_dir() / "dequantized" / f"{spec.path.stem}-{file_sha256(spec.path)[:16]}-{dtype}"


def _keep_dequantized(model: Any, tok: Any, out: Path) -> None:
    """Saves the dequantized model under OUT (written under a temporary name, then renamed). A cache that cannot
    be written (a full or read-only disk) only costs the next run the same dequantization."""
    tmp = out.parent / f".{out.name}.{os.getpid()}.partial"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        tmp.rename(out)
    except OSError:  # includes another process having finished the same copy first: it holds the same bytes
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """peft, transformers, trl and datasets warn about their own internals (deprecated names they use
    themselves; a base model loaded from a GGUF has no config.json to compare vocabularies with): nothing a user
    of selfhost can act on. Their progress bars are replaced by selfhost's own."""
    import datasets

    datasets.disable_progress_bars()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message="Could not find a config file", category=UserWarning)
        yield


def merge_adapter(spec: ModelSpec, adapter: Path, out: Path) -> dict[str, Any]:
    """Base + adapter merged into one Hugging Face model directory (safetensors), with how to serve it."""
    from peft import PeftModel

    model, tok = load_hf(spec)
    with quiet_libraries():
        merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(out), safe_serialization=True)
    if spec.chat_template:  # the template trained with travels into the merged model (and its GGUF)
        tok.chat_template = spec.chat_template
    tok.save_pretrained(str(out))
    return {
        "merged": str(out),
        "serve": {
            "vllm": f"vllm serve {out}   "
            f"# or keep the adapter: vllm serve BASE --enable-lora --lora-modules tuned={adapter}",
            "llama.cpp": f"python convert_hf_to_gguf.py {out} --outfile tuned.gguf && llama-server -m tuned.gguf"
            "   # or: convert_lora_to_gguf.py for the adapter alone, then llama-server --lora",
            "ollama": "ollama create tuned -f Modelfile   # Modelfile: FROM ./tuned.gguf",
        },
    }
