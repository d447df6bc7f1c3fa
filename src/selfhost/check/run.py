"""`selfhost check`: gather everything selfhost can measure about one model into one Report."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from selfhost import __version__
from selfhost.backends.base import GenerationParams
from selfhost.backends.llamacpp import LlamaCppBackend
from selfhost.backends.section import DEFAULT_PROMPTS, generation_section, load_section
from selfhost.backends.server import LlamaCppServer
from selfhost.bench.section import bench_section
from selfhost.context.section import context_section
from selfhost.cost.section import cost_section
from selfhost.fit.section import fit_section
from selfhost.hardware.detect import detect_host
from selfhost.hardware.membw import measure_memory_bandwidth
from selfhost.hardware.section import host_section
from selfhost.models.resolve import resolve_model
from selfhost.models.section import model_section
from selfhost.quant.section import quant_section
from selfhost.report.section import Report, Section
from selfhost.template.section import template_section

__all__ = ["CheckConfig", "run_check"]

SERVER_N_CTX = 2048


@dataclass(frozen=True)
class CheckConfig:
    model: str | None = None
    n_ctx: int = 4096
    max_tokens: int = 64
    prompts: Sequence[str] = DEFAULT_PROMPTS
    n_threads: int | None = None
    records_dir: Path = Path("selfhost-runs")
    quant_variants: tuple[str, ...] = ()  # opt-in: variants to make and compare (adds about a minute each)


def run_check(
    cfg: CheckConfig,
    step: Callable[[str], None] = lambda _: None,
    on_update: Callable[[Report], None] = lambda _: None,
) -> Report:
    """Run every section; `on_update` sees the report after each one, so callers can keep it on disk.
    On Ctrl-C the report is marked interrupted, handed to `on_update` once more, and the interrupt re-raised."""
    t0 = time.perf_counter()
    current = "reading model facts"

    def begin(what: str) -> None:
        nonlocal current
        current = what
        step(what)

    def add(section: Section) -> None:
        from selfhost.check.verdict import verdict_section

        # The verdict opens the report and is redone from the sections so far each time one is added.
        report.sections = [s for s in report.sections if s.name != "verdict"]
        report.add(section)
        report.sections.insert(0, verdict_section(report))
        report.meta["check_s"] = round(time.perf_counter() - t0, 3)
        on_update(report)

    begin(current)
    spec = resolve_model(cfg.model)
    report = Report(
        title=f"selfhost check: {spec.name}",
        meta={
            "selfhost_version": __version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "model_argument": cfg.model or "embedded",
            "skipped": [],
        },
    )
    try:
        add(model_section(spec))
        begin("looking at this machine")
        add(host_section(detect_host()))
        if spec.path is not None and spec.source in ("gguf", "embedded", "ollama"):
            begin("loading the model in llama.cpp")
            with LlamaCppBackend(spec.path, n_ctx=cfg.n_ctx, n_threads=cfg.n_threads, spec=spec) as backend:
                add(load_section(backend))
                begin("generating")
                gen = generation_section(backend, cfg.prompts, GenerationParams(max_tokens=cfg.max_tokens))
                add(gen)
            begin("starting llama-cpp-python's server with the model")
            with LlamaCppServer(spec.path, n_ctx=SERVER_N_CTX) as server:
                begin("benchmarking the model through a real HTTP server")
                bench = bench_section(spec.path, server.url, cfg.records_dir)
                add(bench)
                add(cost_section(bench.data["runs"], "the bench section of this report"))
                if spec.chat_template:
                    begin("linting the chat template and verifying it on the server")
                    add(template_section(spec, server.url))
                    begin("budgeting a sample request and probing the server's context window")
                    add(context_section(spec, server.url, SERVER_N_CTX))
            begin("planning memory and checking the plan against llama.cpp")
            add(
                fit_section(
                    spec,
                    cfg.n_ctx,
                    measure_memory_bandwidth(),
                    measured_decode_tokens_per_s=gen.data.get("decode_tokens_per_s_median"),
                )
            )
            if cfg.quant_variants:
                begin(f"making and comparing quantizations: {', '.join(cfg.quant_variants)}")
                add(quant_section(spec, cfg.records_dir / "quant", cfg.quant_variants))
        else:
            report.meta["skipped"].append(
                f"load, generation and fit: {spec.source} source has no local GGUF weights to run"
            )
    except KeyboardInterrupt:
        report.meta["interrupted"] = f"during: {current}"
        on_update(report)
        raise
    report.meta["check_s"] = round(time.perf_counter() - t0, 3)
    on_update(report)
    return report
