"""Loading a model in llama.cpp and generating with it, measured: the check report's load and generation
sections (time to first token and tokens/s over a few prompts, each run several times)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import psutil

from selfhost.backends.base import Completion, GenerationParams, collect
from selfhost.backends.llamacpp import LlamaCppBackend
from selfhost.backends.llamacpp_log import MIB
from selfhost.report.plots import bar_chart, line_chart
from selfhost.report.section import Section
from selfhost.units import fmt_bytes, fmt_s

__all__ = ["load_section", "generation_section", "DEFAULT_PROMPTS"]

DEFAULT_PROMPTS: tuple[str, ...] = (
    "What is the capital of France? Answer in one sentence.",
    "List three primary colors as a comma-separated list.",
    "Write a haiku about running a language model at home.",
)


def load_section(backend: LlamaCppBackend) -> Section:
    rep = backend.load_report
    mem = rep.memory
    d = rep.to_dict() | {"n_ctx": backend.n_ctx, "engine": "llama.cpp (llama-cpp-python, in-process, CPU)"}
    rows = [
        ("load time", fmt_s(rep.load_s)),
        ("model buffer (llama.cpp)", f"{mem.model_mib:.2f} MiB"),
        ("KV cache (llama.cpp)", f"{mem.kv_mib:.2f} MiB at n_ctx {backend.n_ctx}"),
        ("compute buffer (llama.cpp)", f"{mem.compute_mib:.2f} MiB"),
        ("process RSS before / after load", f"{fmt_bytes(rep.rss_before_bytes)} / {fmt_bytes(rep.rss_after_bytes)}"),
    ]
    labels = ["model buffer", "KV cache", "compute buffer", "output buffer", "RSS increase (measured)"]
    values = [
        mem.model_mib,
        mem.kv_mib,
        mem.compute_mib,
        mem.output_mib,
        (rep.rss_after_bytes - rep.rss_before_bytes) / MIB,
    ]
    notes = [
        "Buffer sizes are the ones llama.cpp printed while loading; RSS is this process's resident memory "
        "measured with psutil. Mapped model pages count in RSS only once they are touched, and KV pages only "
        "once written, so RSS right after load can be below the sum of the buffers."
    ]
    return Section(
        "load",
        "Load",
        d,
        rows,
        [bar_chart(labels, values, title="Memory at load: llama.cpp's buffers vs measured RSS", unit="MiB")],
        notes,
    )


def _run_one(backend: LlamaCppBackend, prompt: str, params: GenerationParams) -> Completion:
    start = time.perf_counter()
    return collect(backend.stream_chat([{"role": "user", "content": prompt}], params), start)


def generation_section(
    backend: LlamaCppBackend,
    prompts: Sequence[str] = DEFAULT_PROMPTS,
    params: GenerationParams | None = None,
    on_progress: Callable[[], None] | None = None,
) -> Section:
    params = params or GenerationParams(max_tokens=64, temperature=0.0)
    _run_one(backend, "Hello", GenerationParams(max_tokens=4))  # warmup: first-call allocations, page faults
    runs: list[dict[str, Any]] = []
    series = []
    for prompt in prompts:
        c = _run_one(backend, prompt, params)
        ttft = c.ttft_s
        runs.append(
            {
                "prompt": prompt,
                "output": c.text,
                "finish_reason": c.finish_reason,
                "prompt_tokens": c.prompt_tokens,
                "completion_tokens": c.completion_tokens,
                "ttft_s": ttft,
                "e2e_s": c.e2e_s,
                "prefill_tokens_per_s": (c.prompt_tokens / ttft) if ttft and c.prompt_tokens else None,
                "decode_tokens_per_s": c.decode_tokens_per_s,
                "token_times_s": [t - c.start_t for t in c.token_times],
            }
        )
        series.append(
            (
                prompt[:20],
                [0.0] + [t - c.start_t for t in c.token_times],
                [0.0] + list(range(1, len(c.token_times) + 1)),
            )
        )
        if on_progress:
            on_progress()

    def med(key: str) -> float | None:
        vals = [r[key] for r in runs if r[key] is not None]
        return statistics.median(vals) if vals else None

    summary = {
        "runs": len(runs),
        "ttft_s_median": med("ttft_s"),
        "decode_tokens_per_s_median": med("decode_tokens_per_s"),
        "prefill_tokens_per_s_median": med("prefill_tokens_per_s"),
        "completion_tokens_total": sum(r["completion_tokens"] or 0 for r in runs),
        "tokens_source": "engine (llama.cpp token ids counted as generated)",
        "rss_after_bytes": psutil.Process().memory_info().rss,
        "params": {
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "seed": params.seed,
            "cache_prompt": params.cache_prompt,
        },
    }
    rows = [
        ("runs", f"{len(runs)} chat prompts, greedy, up to {params.max_tokens} tokens, after 1 warmup"),
        ("time to first token (median)", fmt_s(summary["ttft_s_median"])),
        ("decode speed (median)", f"{summary['decode_tokens_per_s_median'] or 0:.1f} tokens/s"),
        ("prompt processing (median)", f"{summary['prefill_tokens_per_s_median'] or 0:.1f} tokens/s"),
        ("process RSS after generation", fmt_bytes(summary["rss_after_bytes"])),
    ]
    for r in runs:
        rows.append((f"» {r['prompt'][:48]}", r["output"].strip().replace("\n", " ")[:160]))
    notes = [
        "Times are time.perf_counter() from the call to each token's arrival; TTFT includes processing the "
        "whole prompt (no prompt cache reuse between runs). Decode speed = (tokens − 1) / (end − first token)."
    ]
    plot = line_chart(series, title="Tokens generated over time", x_label="seconds since request", y_label="tokens")
    return Section("generation", "Generation (measured)", summary | {"per_run": runs}, rows, [plot], notes)
