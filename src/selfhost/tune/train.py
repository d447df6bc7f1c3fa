"""LoRA fine-tuning with PEFT on a Hugging Face-format model (a GGUF of the llama architecture is dequantized by
transformers), loss on assistant tokens only, labels built from the model's own chat template.

torch, transformers and peft are optional (`pip install 'selfhost[tune]'`) and imported only here. QLoRA
(bitsandbytes 4-bit) and multi-GPU runs need CUDA; on this CPU a full run on the embedded model takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from selfhost.errors import MissingDependencyError, UsageError
from selfhost.models.spec import ModelSpec

__all__ = ["TuneConfig", "load_hf", "encode_example", "train_lora", "merge_adapter"]


@dataclass(frozen=True)
class TuneConfig:
    steps: int = 60
    learning_rate: float = 1e-3
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    max_seq_len: int = 256
    seed: int = 0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    checkpoint_every: int = 50  # steps; Ctrl-C also writes one


def _require() -> Any:
    try:
        import peft  # noqa: F401
        import torch
        import transformers  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "fine-tuning needs torch, transformers and peft", "pip install 'selfhost[tune]' (or `make install-test`)"
        ) from None
    return torch


def load_hf(spec: ModelSpec) -> tuple[Any, Any]:
    """(model, tokenizer) in float32 on the CPU, from a GGUF file (dequantized) or an HF directory."""
    torch = _require()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if spec.path is None:
        raise UsageError(f"{spec.name} has no local weights to fine-tune", "pass a GGUF file or an HF directory")
    if spec.source in ("gguf", "embedded", "ollama"):
        kw = {"gguf_file": spec.path.name}
        where = str(spec.path.parent)
    else:
        kw = {}
        where = str(spec.path)
    tok = AutoTokenizer.from_pretrained(where, **kw)
    model = AutoModelForCausalLM.from_pretrained(where, torch_dtype=torch.float32, **kw)
    return model, tok


def encode_example(
    tok: Any, spec: ModelSpec, messages: list[dict[str, Any]], max_seq_len: int
) -> tuple[list[int], list[int]]:
    """(input ids, labels): labels are the token ids inside assistant turns (their end-of-turn included) and
    -100 elsewhere, found from character spans of the template's render (selfhost.data.mask's rule)."""
    from selfhost.template.render import render_chat

    template = spec.chat_template or getattr(tok, "chat_template", None)
    if not template:
        raise UsageError(f"{spec.name} has no chat template to train with")
    t = spec.tokenizer

    def render(msgs: list[dict[str, Any]], gen: bool) -> str:
        return render_chat(template, msgs, add_generation_prompt=gen, bos_token=t.bos_token, eos_token=t.eos_token)

    full = render(messages, False)
    spans = []
    for i, m in enumerate(messages):
        if m.get("role") == "assistant":
            spans.append((len(render(messages[:i], True)) if i else 0, len(render(messages[: i + 1], False))))
    enc = tok(full, add_special_tokens=bool(t.add_bos_token), return_offsets_mapping=True)
    ids, labels = [], []
    for token_id, (s, _) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
        ids.append(int(token_id))
        labels.append(int(token_id) if any(a <= s < b for a, b in spans) else -100)
    return ids[:max_seq_len], labels[:max_seq_len]


@contextmanager
def _quiet() -> Iterator[None]:
    """peft and transformers warn about their own internals (a deprecated API they call; a base model loaded
    from a GGUF has no config.json to compare vocabularies with): nothing a user of selfhost can act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message="Could not find a config file", category=UserWarning)
        yield


def _checkpoint(model: Any, opt: Any, out_dir: Path, step: int, torch: Any) -> None:
    ck = out_dir / "checkpoint"
    with _quiet():
        model.save_pretrained(str(ck))
    torch.save({"step": step, "optimizer": opt.state_dict()}, ck / "trainer_state.pt")


def _resume(model: Any, opt: Any, out_dir: Path, torch: Any) -> int:
    """Load the LoRA weights and optimizer state of an interrupted run in out_dir; the step to continue from."""
    ck = out_dir / "checkpoint"
    if not (ck / "trainer_state.pt").exists():
        return 0
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(str(ck / "adapter_model.safetensors")))
    state = torch.load(ck / "trainer_state.pt", weights_only=False)
    opt.load_state_dict(state["optimizer"])
    return int(state["step"])


def merge_adapter(spec: ModelSpec, adapter: Path, out: Path) -> dict[str, Any]:
    """Base + adapter merged into one Hugging Face model directory (safetensors), with how to serve it."""
    from peft import PeftModel

    model, tok = load_hf(spec)
    with _quiet():
        merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    # The weights were dequantized to float32 on load, but transformers still marks a GGUF-loaded model as
    # "quantized with gguf" and refuses to save it; the tensors are plain floats, so drop the mark.
    merged.hf_quantizer = None
    if hasattr(merged.config, "quantization_config"):
        del merged.config.quantization_config
    merged.save_pretrained(str(out), safe_serialization=True)
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


def train_lora(
    spec: ModelSpec, examples: list[list[dict[str, Any]]], out_dir: Path, cfg: TuneConfig, progress: Any = None
) -> dict[str, Any]:
    torch = _require()
    from peft import LoraConfig, get_peft_model

    if not examples:
        raise UsageError("no training examples")
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    model, tok = load_hf(spec)
    data = [encode_example(tok, spec, msgs, cfg.max_seq_len) for msgs in examples]
    data = [d for d in data if any(label != -100 for label in d[1])]
    if not data:
        raise UsageError("no example has an assistant turn to learn from")
    with _quiet():  # peft calls a transformers API that warns about its own deprecation
        model = get_peft_model(
            model,
            LoraConfig(
                r=cfg.rank,
                lora_alpha=cfg.alpha,
                lora_dropout=cfg.dropout,
                target_modules=list(cfg.target_modules),
                task_type="CAUSAL_LM",
            ),
        )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.train()
    t0 = time.perf_counter()
    start = _resume(model, opt, out_dir, torch)
    with open(out_dir / "losses.jsonl", "a" if start else "w", encoding="utf-8") as log:
        step = start
        try:
            while step < cfg.steps:
                ids, labels = data[step % len(data)]
                out = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels]))
                out.loss.backward()
                opt.step()
                opt.zero_grad()
                loss = out.loss.detach().item()
                log.write(json.dumps({"step": step, "loss": loss}) + "\n")
                log.flush()
                step += 1
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                    _checkpoint(model, opt, out_dir, step, torch)
                if progress:
                    progress(step, cfg.steps, loss)
        except KeyboardInterrupt:
            _checkpoint(model, opt, out_dir, step, torch)  # a rerun continues from here
            raise
    with _quiet():
        model.save_pretrained(str(out_dir))
    # Serving parity: record the exact template and tokens the adapter was trained with.
    (out_dir / "chat_template.jinja").write_text(spec.chat_template or "", encoding="utf-8")
    record = {
        "base_model": str(spec.path),
        "base_name": spec.name,
        "config": asdict(cfg),
        "examples": len(data),
        "trainable_parameters": trainable,
        "train_s": time.perf_counter() - t0,
        "data_sha256": hashlib.sha256(json.dumps(examples, sort_keys=True).encode()).hexdigest(),
        "special_tokens": {"bos": spec.tokenizer.bos_token, "eos": spec.tokenizer.eos_token},
    }
    (out_dir / "selfhost-run.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    return record
