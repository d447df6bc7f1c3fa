"""LoRA and QLoRA fine-tuning with TRL's SFTTrainer and PEFT on a Hugging Face-format model (a GGUF of the llama
architecture is dequantized by transformers), loss on assistant tokens only.

Labels come from the model's own chat template: selfhost renders each conversation and marks the characters inside
assistant turns (their end-of-turn token included), then hands TRL a pre-tokenized dataset with those labels. TRL's
own `assistant_only_loss` needs `{% generation %}` markers that almost no shipped template has (it swaps in a
training template of its own when they are missing), so the template trained on could differ from the one served.

torch, transformers, peft, trl and datasets are optional (`pip install 'selfhost[tune]'`) and imported only here.
QLoRA (bitsandbytes 4-bit) needs CUDA; a multi-GPU run goes through `accelerate launch` (selfhost.tune.launch).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import signal
import statistics
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from selfhost.data.codes import PREFLIGHT_CODES, UNREADABLE_CODES
from selfhost.errors import MissingDependencyError, UsageError
from selfhost.models.spec import ModelSpec
from selfhost.tune.memory import PeakMemory

__all__ = [
    "TuneConfig",
    "load_hf",
    "encode_example",
    "train_lora",
    "merge_adapter",
    "read_losses",
    "load_conversations",
    "load_labeled",
    "preflight",
    "probe_training",
    "with_run_template",
    "quiet_libraries",
    "require_tune_deps",
]

Progress = Callable[[int, int, float], None]


@dataclass(frozen=True)
class TuneConfig:
    epochs: float = 3.0
    steps: int = 0  # optimizer steps; > 0 overrides epochs
    batch_size: int = 4  # per device
    grad_accum: int = 1
    learning_rate: float = 1e-3
    lr_scheduler: str = "linear"
    warmup_ratio: float = 0.0
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    max_seq_len: int = 256
    on_long: str = "error"  # conversations longer than max_seq_len: error, drop or truncate
    seed: int = 0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    checkpoint_every: int = 50  # steps; Ctrl-C also writes one
    eval_every: int = 0  # steps between held-out losses; 0: ten times per run
    qlora: bool = False  # 4-bit NF4 base weights (bitsandbytes, CUDA only)
    gradient_checkpointing: bool = False


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


def load_hf(spec: ModelSpec, qlora: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) from a GGUF file (dequantized) or an HF directory: float32 on a CPU, bf16 on a GPU that
    supports it, NF4 with qlora."""
    torch = require_tune_deps()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if spec.path is None:
        raise UsageError(f"{spec.name} has no local weights to fine-tune", "pass a GGUF file or an HF directory")
    from_gguf = spec.source in ("gguf", "embedded", "ollama")
    if from_gguf:
        if qlora:
            raise UsageError(
                "QLoRA quantizes full-precision HF weights; this model is a GGUF file",
                "pass the model's Hugging Face directory, or drop --qlora",
            )
        kw: dict[str, Any] = {"gguf_file": spec.path.name}
        where = str(spec.path.parent)
    else:
        kw = {}
        where = str(spec.path)
    gpu = torch.cuda.is_available()
    dtype = torch.bfloat16 if gpu and torch.cuda.is_bf16_supported() else torch.float32
    if qlora:
        kw["quantization_config"] = _quantization_config(torch)
    tok = AutoTokenizer.from_pretrained(where, **{k: v for k, v in kw.items() if k == "gguf_file"})
    with contextlib.redirect_stderr(io.StringIO()):  # transformers' GGUF loader draws a tqdm bar unconditionally
        model: Any = AutoModelForCausalLM.from_pretrained(where, dtype=dtype, **kw)
    if from_gguf:
        # transformers dequantizes GGUF weights to plain floats on load but still marks the model as "quantized
        # with gguf", and then refuses to train or save it; the mark describes the file, not the tensors.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    return model, tok


def _require_template(spec: ModelSpec) -> None:
    if not spec.chat_template:
        raise UsageError(
            f"{spec.name} has no chat template to train with (a base model?)",
            "pass --chat-template FILE, e.g. the instruct model's template; it is saved with the adapter",
        )


def with_run_template(spec: ModelSpec, run_dir: Path) -> ModelSpec:
    """The spec with the chat template the run in run_dir was trained with (serving parity for eval and export)."""
    saved = run_dir / "chat_template.jinja"
    text = saved.read_text(encoding="utf-8") if saved.exists() else ""
    return replace(spec, chat_template=text) if text.strip() else spec


def encode_example(
    tok: Any, spec: ModelSpec, messages: list[dict[str, Any]], max_seq_len: int | None
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
    return (ids[:max_seq_len], labels[:max_seq_len]) if max_seq_len else (ids, labels)


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


def _dataset(
    tok: Any,
    spec: ModelSpec,
    examples: list[list[dict[str, Any]]],
    cfg: TuneConfig,
    sources: list[str] | None = None,
) -> tuple[Any, list[str]]:
    """The tokenized dataset, and where each conversation longer than max_seq_len came from.

    Fine-tuning frameworks cut long samples silently; a cut answer loses its end-of-turn token, so the model
    learns not to stop. Here that is an error unless cfg.on_long says to drop or truncate them."""
    from datasets import Dataset

    rows, long = [], []
    for i, msgs in enumerate(examples):
        ids, labels = encode_example(tok, spec, msgs, None)
        if len(ids) > cfg.max_seq_len:
            long.append((sources[i] if sources else f"conversation {i + 1}", len(ids)))
            if cfg.on_long == "drop":
                continue
            ids, labels = ids[: cfg.max_seq_len], labels[: cfg.max_seq_len]
        if any(label != -100 for label in labels):
            rows.append({"input_ids": ids, "labels": labels})
    if long and cfg.on_long == "error":
        where, n = max(long, key=lambda x: x[1])
        raise UsageError(
            f"{len(long)} of {len(examples)} conversations are longer than --max-seq-len {cfg.max_seq_len} tokens "
            f"after the chat template (first: {long[0][0]}; longest: {where}, {n} tokens)",
            f"raise --max-seq-len (to {n} fits all), or pass --on-long drop (skip them) or --on-long truncate "
            "(cut them; a cut answer loses its end-of-turn token)",
        )
    return Dataset.from_list(rows), [w for w, _ in long]


def load_labeled(path: Path) -> tuple[list[list[dict[str, Any]]], list[str]]:
    """The conversations of a dataset file in any format `selfhost data` reads, each with its "file:line"; a
    malformed line stops here (training on a silently shortened dataset is worse)."""
    from selfhost.data.check import Finding, load_examples

    findings: list[Finding] = []
    examples, _, _ = load_examples(path, findings)
    bad = [f for f in findings if f.code in UNREADABLE_CODES]
    if bad:
        raise UsageError(f"{path}:{bad[0].line}: {bad[0].message}", "run `selfhost data check` and fix the data")
    return [e.messages for e in examples], [f"{path}:{e.line}" for e in examples]


def load_conversations(path: Path) -> list[list[dict[str, Any]]]:
    return load_labeled(path)[0]


def preflight(data: Path, eval_file: Path | None = None) -> dict[str, int]:
    """`selfhost data check` on the training file (and leakage against the held-out one), reduced to the counts
    of PREFLIGHT_CODES. Lengths are left to the trainer, which counts them with the same template and tokenizer."""
    from selfhost.data.check import check_dataset

    counts = check_dataset(data, None, eval_file).counts
    return {code: counts[code] for code in PREFLIGHT_CODES if counts.get(code)}


def read_losses(out_dir: Path) -> list[dict[str, Any]]:
    path = out_dir / "losses.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _keep_losses_until(out_dir: Path, step: int) -> None:
    """A resumed run replays the steps after its checkpoint; drop their first records so each step appears once."""
    rows = [r for r in read_losses(out_dir) if r["step"] <= step]
    (out_dir / "losses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@contextmanager
def _ctrl_c_stops_gracefully(stop: threading.Event) -> Iterator[None]:
    """The first Ctrl-C asks the trainer to finish its step, write a checkpoint and stop; a second one kills."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _callback(out_dir: Path, stop: threading.Event, progress: Progress | None) -> Any:
    from transformers import TrainerCallback

    class LossLog(TrainerCallback):  # type: ignore[misc]
        """Streams every logged loss to losses.jsonl (one process writes) and turns a Ctrl-C into a checkpoint."""

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **_: Any) -> Any:
            logs = logs or {}
            row: dict[str, Any] = {"step": state.global_step, "epoch": state.epoch}
            if "loss" in logs:
                row |= {k: logs[k] for k in ("loss", "learning_rate", "grad_norm") if k in logs}
            elif "eval_loss" in logs:
                row["eval_loss"] = logs["eval_loss"]
            else:
                row = {}
            if row and state.is_world_process_zero:
                with open(out_dir / "losses.jsonl", "a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
                if progress and "loss" in row:
                    progress(state.global_step, state.max_steps, row["loss"])
            if stop.is_set():
                control.should_save = True
                control.should_training_stop = True
            return control

    return LossLog()


def _sft_config(cfg: TuneConfig, out_dir: Path, n_train: int, has_eval: bool, torch: Any) -> Any:
    from trl import SFTConfig

    gpu = torch.cuda.is_available()
    steps_per_epoch = max(1, -(-n_train // (cfg.batch_size * cfg.grad_accum)))
    total = cfg.steps or max(1, round(cfg.epochs * steps_per_epoch))
    return SFTConfig(
        output_dir=str(out_dir),
        max_steps=total,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # transformers 5: a float below 1 is a fraction of max_steps
        logging_steps=1,
        save_steps=cfg.checkpoint_every or total + 1,
        save_total_limit=2,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=cfg.eval_every or max(1, total // 10),
        max_length=cfg.max_seq_len,
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=not gpu,
        bf16=gpu and torch.cuda.is_bf16_supported(),
        # TRL turns checkpointing on by default; off trains ~30 % faster where memory allows.
        activation_checkpointing=cfg.gradient_checkpointing,
        report_to=[],
        disable_tqdm=True,
        save_only_model=False,
        ddp_find_unused_parameters=False,
    )


def _trainer(model: Any, tok: Any, args: Any, train_ds: Any, eval_ds: Any, lora: Any, callbacks: list[Any]) -> Any:
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTTrainer

    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tok,
        peft_config=lora,
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # it prints every log dict; losses.jsonl has them
    return trainer


def _lora_config(cfg: TuneConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        # PEFT takes "all-linear" as a string, not as a module name in a list
        target_modules="all-linear" if cfg.target_modules == ("all-linear",) else list(cfg.target_modules),
        task_type="CAUSAL_LM",
    )


def train_lora(
    spec: ModelSpec,
    examples: list[list[dict[str, Any]]],
    out_dir: Path,
    cfg: TuneConfig,
    progress: Progress | None = None,
    eval_examples: list[list[dict[str, Any]]] | None = None,
    sources: list[str] | None = None,
    record_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train a LoRA adapter into out_dir (a rerun with the same out_dir resumes from its last checkpoint).

    Writes adapter_config.json + adapter_model.safetensors, losses.jsonl (train loss every step, held-out loss when
    eval_examples are given), chat_template.jinja and selfhost-run.json. Ctrl-C writes a checkpoint, then raises
    KeyboardInterrupt."""
    torch = require_tune_deps()
    from transformers.trainer_utils import get_last_checkpoint

    if not examples:
        raise UsageError("no training examples")
    _require_template(spec)
    _claim_out_dir(out_dir, _run_key(spec, examples, eval_examples, cfg))
    model, tok = load_hf(spec, cfg.qlora)
    with quiet_libraries():
        train_ds, long = _dataset(tok, spec, examples, cfg, sources)
        eval_ds = _dataset(tok, spec, eval_examples, cfg)[0] if eval_examples else None
    if len(train_ds) == 0:
        raise UsageError("no example has an assistant turn to learn from")
    out_dir.mkdir(parents=True, exist_ok=True)
    args = _sft_config(cfg, out_dir, len(train_ds), eval_ds is not None, torch)
    last = get_last_checkpoint(str(out_dir)) if any(out_dir.glob("checkpoint-*")) else None
    if last:
        done = int(Path(last).name.split("-")[1])
        if done >= args.max_steps:
            raise UsageError(
                f"{out_dir} already holds a run trained for {done} steps (this one would stop at {args.max_steps})",
                "pass a new --out, or more --epochs/--steps to continue it",
            )
        _keep_losses_until(out_dir, done)
    else:
        (out_dir / "losses.jsonl").write_text("", encoding="utf-8")
    stop = threading.Event()
    lora = _lora_config(cfg)
    t0 = time.perf_counter()
    with quiet_libraries():
        trainer = _trainer(model, tok, args, train_ds, eval_ds, lora, [_callback(out_dir, stop, progress)])
        with _ctrl_c_stops_gracefully(stop), PeakMemory(torch) as memory:
            result = trainer.train(resume_from_checkpoint=last)
        if stop.is_set():
            raise KeyboardInterrupt  # the checkpoint is written; a rerun with the same out_dir continues
        trainer.save_model(str(out_dir))
    tuned: Any = trainer.model
    trainable = sum(p.numel() for p in tuned.parameters() if p.requires_grad)
    record = {
        "base_model": str(spec.path),
        "base_name": spec.name,
        "trainer": "trl.SFTTrainer",
        "config": asdict(cfg),
        "examples": len(train_ds),
        "longer_than_max_seq_len": {"policy": cfg.on_long, "count": len(long), "where": long[:20]},
        "eval_examples": len(eval_ds) if eval_ds is not None else 0,
        "steps": int(result.global_step),
        "resumed_from": last,
        "trainable_parameters": trainable,
        "train_loss": float(result.training_loss),
        "train_s": time.perf_counter() - t0,
        "memory": memory.to_dict(),
        "processes": int(trainer.args.world_size),
        "rank": int(trainer.args.process_index),
        "data_sha256": hashlib.sha256(json.dumps(examples, sort_keys=True).encode()).hexdigest(),
        "special_tokens": {"bos": spec.tokenizer.bos_token, "eos": spec.tokenizer.eos_token},
    } | (record_extra or {})
    if trainer.is_world_process_zero():
        # Serving parity: record the exact template and tokens the adapter was trained with.
        (out_dir / "chat_template.jinja").write_text(spec.chat_template or "", encoding="utf-8")
        (out_dir / "selfhost-run.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    return record


# Settings that may change when a run is continued (more steps or epochs); everything else must match.
_CONTINUABLE = ("epochs", "steps", "checkpoint_every", "eval_every")
RUN_KEY_FILE = "selfhost-run-key.json"


def _run_key(
    spec: ModelSpec,
    examples: list[list[dict[str, Any]]],
    eval_examples: list[list[dict[str, Any]]] | None,
    cfg: TuneConfig,
) -> dict[str, Any]:
    """What a run's checkpoints were produced by: the base model file, the data, the chat template, the settings."""
    from selfhost.quant.variants import file_identity

    def digest(value: Any) -> str:
        return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:24]

    settings = {k: v for k, v in asdict(cfg).items() if k not in _CONTINUABLE}
    base = file_identity(spec.path) if spec.path is not None and spec.path.is_file() else str(spec.path or spec.name)
    return {
        "base_model": base,
        "data": digest(examples),
        "eval_data": digest(eval_examples or []),
        "chat_template": digest(spec.chat_template or ""),
        "settings": digest(settings),
    }


def _claim_out_dir(out_dir: Path, key: dict[str, Any]) -> None:
    """Resume only a run made by the same model, data and settings: another run's checkpoints are refused."""
    key_file = out_dir / RUN_KEY_FILE
    if any(out_dir.glob("checkpoint-*")) or (out_dir / "adapter_model.safetensors").exists():
        try:
            held = json.loads(key_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            held = None
        if held != key:
            what = [k for k in key if not isinstance(held, dict) or held.get(k) != key[k]]
            raise UsageError(
                f"{out_dir} holds a run of another {' / '.join(what) or 'origin'}: resuming it would mix the two",
                "pass a new --out (a run resumes only with the same model, data, template and settings)",
            )
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    from selfhost.files import write_text_atomic

    write_text_atomic(key_file, json.dumps(key, indent=2) + "\n")


def probe_training(
    spec: ModelSpec,
    examples: list[list[dict[str, Any]]],
    cfg: TuneConfig,
    sources: list[str] | None = None,
    steps: int = 3,
) -> dict[str, Any]:
    """A few worst-case optimizer steps before a long run: every batch holds the longest conversation (cut at
    max_seq_len), so the measured peak memory bounds the real run's and the step time bounds its pace. Nothing is
    kept."""
    torch = require_tune_deps()
    from datasets import Dataset
    from transformers import TrainerCallback

    _require_template(spec)
    model, tok = load_hf(spec, cfg.qlora)
    with quiet_libraries():
        ds, _ = _dataset(tok, spec, examples, cfg, sources)
    if len(ds) == 0:
        raise UsageError("no example has an assistant turn to learn from")
    lengths = [len(ids) for ids in ds["input_ids"]]
    longest = ds[lengths.index(max(lengths))]
    per_step = cfg.batch_size * cfg.grad_accum
    worst = Dataset.from_list([{"input_ids": longest["input_ids"], "labels": longest["labels"]}] * per_step * steps)
    ends: list[float] = []

    class StepTimes(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            ends.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp, quiet_libraries():
        real_steps = int(_sft_config(cfg, Path(tmp), len(ds), False, torch).max_steps)
        args = _sft_config(replace(cfg, steps=steps, checkpoint_every=0), Path(tmp), len(worst), False, torch)
        trainer = _trainer(model, tok, args, worst, None, _lora_config(cfg), [StepTimes()])
        with PeakMemory(torch) as memory:
            t0 = time.perf_counter()
            trainer.train()
    gaps = [b - a for a, b in zip([t0, *ends], ends)]
    step_s = statistics.median(gaps[1:]) if len(gaps) > 1 else gaps[0]  # the first step also sets up the optimizer
    return {
        "steps_measured": steps,
        "worst_case_tokens_per_step": max(lengths) * per_step,
        "longest_conversation_tokens": max(lengths),
        "first_step_s": gaps[0],
        "step_s": step_s,
        "run_steps": real_steps,
        "run_s_upper_bound": step_s * real_steps,
        "memory": memory.to_dict(),
        "processes": int(trainer.args.world_size),
    }


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
