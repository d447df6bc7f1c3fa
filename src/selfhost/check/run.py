"""`selfhost check`: gather everything selfhost can measure about one model into one Report."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from selfhost import __version__
from selfhost.backends.llamacpp import LlamaCppBackend
from selfhost.check.sections import (
    DEFAULT_PROMPTS,
    fit_section,
    generation_section,
    host_section,
    load_section,
    model_section,
)
from selfhost.hardware.detect import detect_host
from selfhost.hardware.membw import measure_memory_bandwidth
from selfhost.models.resolve import resolve_model
from selfhost.report.section import Report

__all__ = ["CheckConfig", "run_check"]


@dataclass(frozen=True)
class CheckConfig:
    model: str | None = None
    n_ctx: int = 4096
    max_tokens: int = 64
    prompts: Sequence[str] = DEFAULT_PROMPTS
    n_threads: int | None = None


def run_check(cfg: CheckConfig, step: Callable[[str], None] = lambda _: None) -> Report:
    t0 = time.perf_counter()
    step("reading model facts")
    spec = resolve_model(cfg.model)
    report = Report(
        title=f"selfhost check: {spec.name}",
        meta={
            "selfhost_version": __version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "model_argument": cfg.model or "embedded",
        },
    )
    report.add(model_section(spec))
    step("looking at this machine")
    report.add(host_section(detect_host()))
    skipped: list[str] = []
    if spec.path is not None and spec.source in ("gguf", "embedded", "ollama"):
        step("loading the model in llama.cpp")
        with LlamaCppBackend(spec.path, n_ctx=cfg.n_ctx, n_threads=cfg.n_threads, spec=spec) as backend:
            report.add(load_section(backend))
            step("generating")
            from selfhost.backends.base import GenerationParams

            gen = generation_section(backend, cfg.prompts, GenerationParams(max_tokens=cfg.max_tokens))
            report.add(gen)
        step("planning memory and checking the plan against llama.cpp")
        report.add(
            fit_section(
                spec,
                cfg.n_ctx,
                measure_memory_bandwidth(),
                measured_decode_tokens_per_s=gen.data.get("decode_tokens_per_s_median"),
            )
        )
    else:
        skipped.append(f"load and generation: {spec.source} source has no local GGUF weights to run")
    report.meta["skipped"] = skipped
    report.meta["check_s"] = round(time.perf_counter() - t0, 3)
    return report
