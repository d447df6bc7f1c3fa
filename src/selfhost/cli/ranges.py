"""The allowed range of every numeric option, by flag ("command --flag" overrides the flag for one command).

cli.guards applies them to the whole command tree; tests/hostile fails for a numeric option missing here."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Range", "RANGES", "HI_OPEN"]

_DAY = 86400.0
_BIG = 1 << 31


@dataclass(frozen=True)
class Range:
    lo: float
    hi: float
    lo_open: bool = False  # lo itself not allowed

    def describe(self) -> str:
        lo = f"> {self.lo:g}" if self.lo_open else f"≥ {self.lo:g}"
        return f"{lo} and ≤ {self.hi:g}"

    def contains(self, v: float) -> bool:
        return math.isfinite(v) and (v > self.lo if self.lo_open else v >= self.lo) and v <= self.hi


def _positive(hi: float) -> Range:
    return Range(0, hi, lo_open=True)


# Option flag -> allowed range; "command --flag" overrides the flag's range for one command.
RANGES: dict[str, Range] = {
    "--burstiness": _positive(1e3),
    "--max-concurrency": Range(1, 1e6),
    "--requests": Range(1, 1e8),
    "--duration": _positive(31 * _DAY),
    "--warmup": Range(0, 1e6),
    "--output-tokens": Range(1, 1e7),
    "--trace-speedup": _positive(1e6),
    "--shared-prefix": Range(0, 1e7),
    "--multi-turn": Range(0, 1e4),
    "--timeout": _positive(7 * _DAY),
    "--search-max": _positive(1e7),
    "--seed": Range(0, 2**32 - 1),
    "--port": Range(0, 65535),  # 0: any free port
    "--ctx": Range(1, _BIG),
    "--threads": Range(1, 4096),
    "--ttft": Range(0, 3600),
    "--itl": Range(0, 3600),
    "--tokens-per-chunk": Range(1, 1e6),
    "--reasoning-tokens": Range(0, 1e7),
    "--ollama-num-ctx": Range(1, _BIG),
    "--reserve": Range(0, _BIG),
    "--size": Range(1, 1e7),
    "--overlap": Range(0, 1e7),
    "--upper": Range(1, _BIG),
    "--max-seq-len": Range(1, _BIG),
    "--near-dup-threshold": _positive(1),
    "--eval-fraction": Range(0, 1),
    "--line": Range(1, _BIG),
    "--gpus": Range(1, 1024),
    "--price-per-hour": Range(0, 1e6),
    "--purchase-price": Range(0, 1e10),
    "--lifetime-years": _positive(100),
    "--watts": Range(0, 1e7),
    "--idle-watts": Range(0, 1e7),
    "--kwh-price": Range(0, 1e3),
    "--utilization": _positive(1),
    "--parallel": Range(1, 65536),
    "--n-gpu-layers": Range(0, 1e5),
    "--n-cpu-moe": Range(0, 1e5),
    "--gpu-util": Range(0.05, 1),
    "--tp": Range(1, 1024),
    "--kv-cache-gib": _positive(1 << 20),
    "--max-cases": Range(1, 1e8),
    "--budget-minutes": _positive(31 * 24 * 60),
    "--max-drop": Range(0, 1),
    "--max-category-drop": Range(0, 1),
    "--max-kld-p99": _positive(1e6),
    "--kld-ctx": Range(4, 1 << 20),
    "--kld-tokens": Range(2, 1e8),
    "--epochs": _positive(1e4),
    "--steps": Range(0, 1e9),
    "--batch-size": Range(1, 65536),
    "--grad-accum": Range(1, 65536),
    "--lr": _positive(10),
    "--warmup-ratio": Range(0, 1),
    "--rank": Range(1, 65536),
    "--alpha": Range(1, 1e6),
    "--dropout": Range(0, 1),
    "--checkpoint-every": Range(0, 1e9),
    "--eval-every": Range(0, 1e9),
    "--max-tokens": Range(1, 1e7),
    "--workers": Range(1, 64),
    "--max-measurements": Range(1, 1e4),
    "--repeats": Range(1, 100),
    "--requests-per-level": Range(1, 1e6),
    "--max-speedup": Range(1, 1e6),
    "--ubatch": Range(1, 65536),
    "--gpus-per-node": Range(1, 1024),
    "--runs": Range(1, 100),
    "--tolerance": Range(0, 10),
    "--input-tokens": Range(1, 1e7),
    "data split --eval-fraction": _positive(1),
}
# Exclusive upper bounds where a value of exactly hi is meaningless.
HI_OPEN = {"--dropout", "--warmup-ratio", "data split --eval-fraction"}
