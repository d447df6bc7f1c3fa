"""`selfhost tune --probe`: a few worst-case steps before a long run (peak memory, time per step)."""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from selfhost.errors import UsageError
from selfhost.models.spec import ModelSpec
from selfhost.tune.config import TuneConfig
from selfhost.tune.dataset import require_template, tokenized_dataset
from selfhost.tune.hf import load_hf, quiet_libraries, require_tune_deps
from selfhost.tune.memory import PeakMemory
from selfhost.tune.train import lora_config, make_trainer, sft_config

__all__ = ["probe_training"]


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

    require_template(spec)
    model, tok = load_hf(spec, cfg.qlora)
    with quiet_libraries():
        ds, _ = tokenized_dataset(tok, spec, examples, cfg, sources)
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
        real_steps = int(sft_config(cfg, Path(tmp), len(ds), False, torch).max_steps)
        args = sft_config(replace(cfg, steps=steps, checkpoint_every=0), Path(tmp), len(worst), False, torch)
        trainer = make_trainer(model, tok, args, worst, None, lora_config(cfg), [StepTimes()])
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
