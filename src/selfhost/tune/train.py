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

import hashlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from selfhost.errors import UsageError
from selfhost.models.spec import ModelSpec
from selfhost.tune.config import Progress, TuneConfig
from selfhost.tune.dataset import require_template, tokenized_dataset
from selfhost.tune.hf import load_hf, quiet_libraries, refuse_qlora_on_gguf, require_tune_deps
from selfhost.tune.memory import PeakMemory
from selfhost.tune.runkey import claim_out_dir, run_key

__all__ = ["train_lora", "read_losses", "sft_config", "make_trainer", "lora_config"]


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


def sft_config(cfg: TuneConfig, out_dir: Path, n_train: int, has_eval: bool, torch: Any) -> Any:
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


def make_trainer(model: Any, tok: Any, args: Any, train_ds: Any, eval_ds: Any, lora: Any, callbacks: list[Any]) -> Any:
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


def lora_config(cfg: TuneConfig) -> Any:
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
    if not examples:
        raise UsageError("no training examples")
    require_template(spec)
    if cfg.qlora:
        refuse_qlora_on_gguf(spec)
    # Refused before torch is imported: checking that --out holds this run's checkpoints costs no 10 s import.
    claim_out_dir(out_dir, run_key(spec, examples, eval_examples, cfg))
    torch = require_tune_deps()
    from transformers.trainer_utils import get_last_checkpoint

    model, tok = load_hf(spec, cfg.qlora)
    with quiet_libraries():
        train_ds, long = tokenized_dataset(tok, spec, examples, cfg, sources)
        eval_ds = tokenized_dataset(tok, spec, eval_examples, cfg)[0] if eval_examples else None
    if len(train_ds) == 0:
        raise UsageError("no example has an assistant turn to learn from")
    out_dir.mkdir(parents=True, exist_ok=True)
    args = sft_config(cfg, out_dir, len(train_ds), eval_ds is not None, torch)
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
    lora = lora_config(cfg)
    t0 = time.perf_counter()
    with quiet_libraries():
        trainer = make_trainer(model, tok, args, train_ds, eval_ds, lora, [_callback(out_dir, stop, progress)])
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
