"""What `plan` chooses between: one engine's knobs, their values, and the rules that make a combination
impossible before anything is measured."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

__all__ = ["Knobs", "llama_server_knobs", "llama_server_rule", "label", "grid"]

# Knobs in the order the search varies them: the ones that move goodput most first.
Knobs = dict[str, list[Any]]


def llama_server_knobs(
    variants: list[str], parallel: list[int], threads: list[int] | None = None, ubatch: list[int] | None = None
) -> Knobs:
    cores = os.cpu_count() or 1
    return {
        "parallel": parallel,
        "variant": variants,
        "threads": threads or sorted({max(1, cores // 2), cores}),
        "flash_attn": [True, False],
        "kv_type": ["f16", "q8_0"],
        "ubatch": ubatch or [128, 512],
    }


def llama_server_rule(config: dict[str, Any]) -> str | None:
    """Why llama.cpp would refuse CONFIG, or None. (llama_init_from_model: 'V cache quantization requires
    flash_attn'.)"""
    if config["kv_type"] not in ("f16", "bf16") and not config["flash_attn"]:
        return "a quantized V cache needs flash attention in llama.cpp"
    return None


def label(config: dict[str, Any]) -> str:
    fa = "fa" if config["flash_attn"] else "no-fa"
    return (
        f"{config['variant']} np{config['parallel']} t{config['threads']} {fa} kv-{config['kv_type']} "
        f"ub{config['ubatch']}"
    )


def grid(knobs: Knobs) -> list[dict[str, Any]]:
    """Every combination, in a fixed order."""
    out: list[dict[str, Any]] = [{}]
    for name, values in knobs.items():
        out = [c | {name: v} for c in out for v in values]
    return out


@dataclass(frozen=True)
class Workload:
    """What the traffic looks like: stated lengths, a prompts file (JSONL, as `bench --prompts`), or a recorded
    trace (Mooncake JSONL, as `bench --trace`) whose arrivals are replayed."""

    input_tokens: int = 128
    output_tokens: int = 32
    prompts_file: str | None = None
    longest_request_tokens: int = 160  # prompt + output of the longest request (the context each slot needs)
    trace_file: str | None = None
    trace_requests: int = 0
    trace_seconds: float = 0.0

    @property
    def searched_by(self) -> str:
        """What the goodput search raises: the trace's replay speed, or the number of concurrent requests."""
        return "speedup" if self.trace_file else "concurrency"

    def describe(self) -> str:
        if self.trace_file:
            return (
                f"trace {self.trace_file}: {self.trace_requests} requests over {self.trace_seconds:.1f} s, replayed "
                f"at 1×, 2×, 4× … its recorded rate (longest request {self.longest_request_tokens} tokens)"
            )
        if self.prompts_file:
            return f"prompts from {self.prompts_file} (longest request {self.longest_request_tokens} tokens)"
        return f"{self.input_tokens} prompt tokens, {self.output_tokens} output tokens per request"
