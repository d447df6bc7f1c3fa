"""A fine-tuning run's settings, each with its command-line option and help (see selfhost.settings)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from selfhost.settings import setting

__all__ = ["TuneConfig", "Progress"]

Progress = Callable[[int, int, float], None]


@dataclass(frozen=True)
class TuneConfig:
    epochs: float = setting(3.0, "Passes over the data.")
    steps: int = setting(0, "Optimizer steps; overrides --epochs when > 0.")
    batch_size: int = setting(4, "Per device.")
    grad_accum: int = setting(1, "Gradient accumulation steps.")
    learning_rate: float = setting(1e-3, "Peak learning rate.", flag="--lr")
    lr_scheduler: str = setting("linear", "linear, cosine, constant, …")
    warmup_ratio: float = setting(0.0, "Fraction of the steps spent warming up.")
    rank: int = setting(8, "LoRA rank.")
    alpha: int = setting(16, "LoRA alpha.")
    dropout: float = setting(0.0, "LoRA dropout.")
    target_modules: tuple[str, ...] = setting(
        ("q_proj", "k_proj", "v_proj", "o_proj"), "Comma-separated module names, or all-linear."
    )
    max_seq_len: int = setting(256, "Tokens after the chat template.")
    on_long: str = setting(
        "error",
        "Conversations longer than --max-seq-len: stop and say where, skip them, or cut them.",
        choices=("error", "drop", "truncate"),
    )
    seed: int = setting(0, "Seed for data order and initialization.")
    checkpoint_every: int = setting(
        50, "Steps between checkpoints; a rerun with the same --out resumes, and Ctrl-C saves one."
    )
    eval_every: int = setting(0, "Steps between held-out losses (0: 10x per run).")
    qlora: bool = setting(False, "4-bit NF4 base weights (bitsandbytes; needs CUDA and an HF model dir).")
    gradient_checkpointing: bool = setting(False, "Recompute activations: less memory, ~30 % slower.")
