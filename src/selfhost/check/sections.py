"""The sections `selfhost check` can write today, each from a measurement or a file's facts."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil

from selfhost.backends.base import Completion, GenerationParams, collect
from selfhost.backends.llamacpp import LlamaCppBackend
from selfhost.backends.llamacpp_log import MIB
from selfhost.hardware.detect import HostInfo
from selfhost.models.spec import ModelSpec
from selfhost.report.plots import bar_chart, line_chart
from selfhost.report.section import Section
from selfhost.units import fmt_bytes, fmt_count, fmt_s

__all__ = [
    "model_section",
    "host_section",
    "load_section",
    "generation_section",
    "fit_section",
    "bench_section",
    "bench_runs_section",
    "template_section",
    "context_section",
    "DEFAULT_PROMPTS",
]

DEFAULT_PROMPTS: tuple[str, ...] = (
    "What is the capital of France? Answer in one sentence.",
    "List three primary colors as a comma-separated list.",
    "Write a haiku about running a language model at home.",
)


def model_section(spec: ModelSpec) -> Section:
    d = spec.to_dict()
    d["chat_template_chars"] = len(spec.chat_template) if spec.chat_template else 0
    rows = [
        ("name", spec.name),
        ("source", f"{spec.source}: {spec.path or spec.source_url}"),
        ("architecture", spec.architecture),
        (
            "parameters",
            fmt_count(spec.parameters)
            + (f" ({fmt_count(spec.active_parameters)} active)" if spec.active_parameters else ""),
        ),
        (
            "layers / heads / KV heads / head dim",
            f"{spec.n_layers} / {spec.n_heads} / {spec.n_kv_heads} / {spec.head_dim}",
        ),
        ("context length", f"{spec.context_length:,}"),
        ("vocabulary", f"{spec.vocab_size:,}"),
    ]
    if spec.sliding_window:
        rows.append(
            ("sliding window", f"{spec.sliding_window} tokens on {spec.n_swa_layers} of {spec.n_layers} layers")
        )
    if spec.is_moe:
        rows.append(("experts", f"{spec.n_experts} ({spec.n_experts_used} active per token)"))
    if spec.file_bytes:
        rows.append(
            (
                "file",
                f"{fmt_bytes(spec.file_bytes)} ({spec.file_type or '?'}), "
                f"{spec.bits_per_weight or 0:.3f} bits per weight over all tensors",
            )
        )
    rows.append(("chat template", f"{len(spec.chat_template):,} characters" if spec.chat_template else "none"))
    plots = []
    by_type = spec.tensor_bytes_by_type
    if by_type:
        plots.append(
            bar_chart(
                list(by_type),
                [b / MIB for b in by_type.values()],
                title="Tensor bytes by type (read from the file's tensor table)",
                unit="MiB",
            )
        )
    notes = [f"{k}: {v}" for k, v in spec.derived.items()]
    return Section("model", "Model", d, rows, plots, notes)


def host_section(host: HostInfo) -> Section:
    rows = [
        ("CPU", f"{host.cpu_model} ({host.physical_cores} cores, {host.logical_cores} threads)"),
        ("RAM", f"{fmt_bytes(host.ram_total_bytes)} total, {fmt_bytes(host.ram_available_bytes)} available"),
        ("OS / Python", f"{host.os} / {host.python}"),
        ("GPUs", ", ".join(f"{g.name} ({fmt_bytes(g.memory_total_bytes)})" for g in host.gpus) or "none detected"),
    ]
    return Section("host", "This machine", host.to_dict(), rows)


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


def fit_section(
    spec: ModelSpec,
    n_ctx: int,
    host_bandwidth: float,
    contexts: Sequence[int] = (512, 1024, 2048, 4096, 8192),
    measured_decode_tokens_per_s: float | None = None,
) -> Section:
    """The memory plan for this machine, checked against llama.cpp, and memory against context length."""
    from selfhost.fit.compute import llamacpp_compute_bytes
    from selfhost.fit.kv import LlamaCppKVConfig, kv_bytes_per_token, llamacpp_kv
    from selfhost.fit.plan import FitRequest
    from selfhost.fit.solve import fit_answer
    from selfhost.fit.verify import measure_llamacpp, predicted_process_bytes, verify_llamacpp
    from selfhost.hardware.select import host_device

    answer = fit_answer(spec, FitRequest(n_ctx=n_ctx, host=host_device(host_bandwidth)), host_bandwidth)
    answer.pop("table", None)
    verify = verify_llamacpp(spec, LlamaCppKVConfig(n_ctx))
    curve = []
    assert spec.path is not None
    for ctx in [c for c in contexts if c <= (spec.context_length or c)]:
        cfg = LlamaCppKVConfig(ctx)
        rep, measured, _ = measure_llamacpp(spec.path, cfg)
        curve.append(
            {
                "n_ctx": ctx,
                "predicted_kv_bytes": llamacpp_kv(spec, cfg).bytes,
                "reported_kv_bytes": round(rep.kv_mib * MIB),
                "predicted_compute_bytes": llamacpp_compute_bytes(spec, cfg),
                "reported_compute_bytes": round(rep.compute_mib * MIB),
                "predicted_process_bytes": predicted_process_bytes(spec, cfg),
                "measured_process_bytes": measured,
            }
        )
    kv_slope = (
        ((curve[-1]["reported_kv_bytes"] - curve[0]["reported_kv_bytes"]) / (curve[-1]["n_ctx"] - curve[0]["n_ctx"]))
        if len(curve) > 1
        else 0.0
    )
    compute = [c["reported_compute_bytes"] for c in curve]
    d = {
        "plan": answer,
        "verify": verify,
        "context_curve": curve,
        "kv_bytes_per_token_measured": kv_slope,
        "kv_bytes_per_token_predicted": kv_bytes_per_token(spec),
        "host_bandwidth_bytes_per_s": host_bandwidth,
    }
    rows = [
        (
            "plan on this machine",
            f"{fmt_bytes(answer['total_bytes'])} at {n_ctx:,} tokens "
            f"({'fits' if answer['fits'] else 'does not fit'} in RAM)",
        )
    ]
    for c in verify["checks"]:
        rows.append(
            (
                f"{c['component']}: predicted vs actual",
                f"{fmt_bytes(c['predicted_bytes'])} vs {fmt_bytes(c['actual_bytes'])} ({c['error'] * 100:+.1f} %)",
            )
        )
    rows.append(
        ("KV per token", f"{kv_slope:,.0f} bytes measured over the curve; {kv_bytes_per_token(spec):,.0f} predicted")
    )
    rows.append(
        ("compute buffer across contexts", f"{fmt_bytes(min(compute))} – {fmt_bytes(max(compute))} (flash attention)")
    )
    rows.append(("memory bandwidth (measured)", f"{host_bandwidth / 1e9:.1f} GB/s"))
    bound = answer.get("decode_tokens_per_s_upper_bound")
    if bound:
        rows.append(("decode ceiling at full context", f"{bound:.0f} tokens/s"))
    if measured_decode_tokens_per_s:
        short_bound = host_bandwidth / ((spec.weights_bytes or 1) + kv_bytes_per_token(spec) * 128)
        d["decode_bound_short_context_tokens_per_s"] = short_bound
        d["measured_decode_fraction_of_bound"] = measured_decode_tokens_per_s / short_bound
        rows.append(
            (
                "measured decode vs ceiling",
                f"{measured_decode_tokens_per_s:.0f} of {short_bound:.0f} tokens/s "
                f"({100 * measured_decode_tokens_per_s / short_bound:.0f} %) at ~128 tokens",
            )
        )
    xs = [c["n_ctx"] for c in curve]
    plot = line_chart(
        [
            ("process, predicted", xs, [c["predicted_process_bytes"] / MIB for c in curve]),
            ("process, measured RSS", xs, [c["measured_process_bytes"] / MIB for c in curve]),
            ("KV, predicted", xs, [c["predicted_kv_bytes"] / MIB for c in curve]),
            ("KV, llama.cpp", xs, [c["reported_kv_bytes"] / MIB for c in curve]),
            ("compute, llama.cpp", xs, [c["reported_compute_bytes"] / MIB for c in curve]),
        ],
        title="Memory against context length",
        x_label="context (tokens)",
        y_label="MiB",
    )
    notes = [
        f"KV memory grows linearly with context: llama.cpp's own KV size rises by {kv_slope:,.0f} bytes per token "
        f"across {xs[0]:,}–{xs[-1]:,} tokens (predicted {kv_bytes_per_token(spec):,.0f}). With flash attention the "
        f"compute buffer does not grow with context at all here "
        f"({fmt_bytes(min(compute))} – {fmt_bytes(max(compute))}), "
        "so there is no quadratic term.",
        "Measured process memory is the RSS growth of loading the model, creating the context and decoding one full "
        "micro-batch; predicted is the sum of llama.cpp's buffers plus the tokenizer's vocabulary.",
        "Decode ceiling = measured memory bandwidth ÷ bytes read per token (weights + KV); a bound, not a forecast.",
    ]
    return Section("fit", "Fit (memory plan, checked against llama.cpp)", d, rows, [plot], notes)


def bench_section(
    model_path: Path,
    server_url: str,
    records_dir: Path,
    levels: Sequence[int] = (1, 2, 4),
    requests: int = 6,
    input_tokens: int = 64,
    output_tokens: int = 16,
) -> Section:
    """Latency and throughput through a real HTTP server (llama-cpp-python's) at several concurrencies."""
    from selfhost.backends.tokenizer import gguf_token_counter
    from selfhost.bench.load import LoadSpec
    from selfhost.bench.run import BenchConfig, run_bench, run_sweep

    count = gguf_token_counter(model_path)
    runs = []
    for c in levels:
        cfg = BenchConfig(
            url=server_url,
            load=LoadSpec(concurrency=c, requests=requests, warmup=1 if c == 1 else 0),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            records_path=records_dir / f"bench-concurrency{c}.jsonl",
        )
        runs.append(run_bench(cfg, count))
    input_runs = run_sweep(
        BenchConfig(
            url=server_url,
            load=LoadSpec(concurrency=1, requests=3),
            output_tokens=4,
            records_path=records_dir / "bench-input.jsonl",
        ),
        [64, 256, 512],
        "input_tokens",
        count,
    )
    notes = [
        "Server: llama-cpp-python's OpenAI-compatible server on 127.0.0.1 with the embedded model (one request "
        "at a time: extra concurrency waits, which TTFT shows). Output tokens counted with the model's tokenizer "
        "(this server sends no usage when streaming)."
    ]
    section = bench_runs_section(runs, notes)
    by_input = bench_runs_section(input_runs)
    section.plots.extend(by_input.plots[1:])
    section.rows.extend(by_input.rows)
    section.data["input_sweep"] = input_runs
    return section


def bench_runs_section(runs: Sequence[dict[str, Any]], notes: Sequence[str] = ()) -> Section:
    """Tables and plots for one or more `bench` runs (a sweep over concurrency or rate)."""
    inputs = [r["workload"]["input_tokens"] for r in runs]
    if len(set(inputs)) > 1:
        by = "input_tokens"
        levels = [float(x) for x in inputs]
    else:
        by = "rate" if runs and runs[0]["load"].get("rate") else "concurrency"
        levels = [float(r["load"][by] or 0) for r in runs]
    rows = []
    cdf = []
    for r, level in zip(runs, levels, strict=True):
        name = f"{by} {level:g}"
        rows.append(
            (
                name,
                f"TTFT p50 {fmt_s(r['ttft_s']['p50'])}, ITL p50 {fmt_s(r['itl_s']['p50'])}, "
                f"{r['output_tokens_per_s']:.1f} output tok/s, {r['requests_per_s']:.2f} req/s, "
                f"{r['requests']['failed']} failed",
            )
        )
        recs = [json.loads(line) for line in Path(r["records_path"]).read_text().splitlines()]
        ttfts = sorted(x["ttft_s"] for x in recs if x["status"] == "ok" and not x["warmup"])
        if ttfts:
            cdf.append((name, ttfts, [100 * (i + 1) / len(ttfts) for i in range(len(ttfts))]))
    plots = [
        line_chart(
            cdf, title="Time to first token: cumulative distribution", x_label="TTFT (s)", y_label="% of requests"
        )
    ]
    if by == "input_tokens":
        plots.append(
            line_chart(
                [("TTFT p50", levels, [r["ttft_s"]["p50"] or 0.0 for r in runs])],
                title="Time to first token against input length",
                x_label="input tokens",
                y_label="seconds",
            )
        )
    elif len(runs) > 1:
        plots.append(
            line_chart(
                [("output tokens/s", levels, [r["output_tokens_per_s"] for r in runs])],
                title=f"Throughput against {by}",
                x_label=by,
                y_label="output tokens/s",
            )
        )
    notes = [
        *notes,
        "Latencies count from each request's scheduled send time; percentiles exclude failed requests; "
        "per-request records are in the JSONL files named in the data.",
    ]
    return Section(
        "bench", "Serving latency and throughput (measured over HTTP)", {"runs": list(runs)}, rows, plots, notes
    )


def template_section(spec: ModelSpec, server_url: str) -> Section:
    """The chat template: lint findings, and proof that a real server renders it as the model expects."""
    from selfhost.template.lint import lint_template
    from selfhost.template.verify import verify_server

    tok = spec.tokenizer
    report = lint_template(
        spec.chat_template or "", bos_token=tok.bos_token, eos_token=tok.eos_token, add_bos_token=tok.add_bos_token
    )
    verified = verify_server(server_url, spec)
    rows = [
        ("family", report.family),
        ("system role", str(report.supports_system_role)),
        ("tools", str(report.supports_tools)),
        ("generation prompt", str(report.supports_generation_prompt)),
        (
            "live server (llama-cpp-python)",
            f"{'agrees' if verified['agree'] else 'DIFFERS'}: chat endpoint {verified['chat']['prompt_tokens']} "
            f"prompt tokens, selfhost's render {verified['raw_completion']['prompt_tokens']}; same greedy output: "
            f"{verified['outputs_agree']}",
        ),
    ]
    rows += [(f"{f.severity}: {f.code}", f.message) for f in report.findings]
    notes = [
        "Rendered in jinja2's sandbox exactly as transformers' apply_chat_template would (byte parity on "
        "llama.cpp's 70 official templates). Verification sends one conversation through the server's chat "
        "endpoint and selfhost's rendering of it through the raw completion endpoint, at temperature 0."
    ]
    return Section(
        "template",
        "Chat template (linted, verified on a live server)",
        {"lint": report.to_dict(), "verify": verified},
        rows,
        [],
        notes,
    )


def context_section(spec: ModelSpec, server_url: str, server_n_ctx: int) -> Section:
    """Token budget of a sample RAG request, packing it into a small window, and the server's real window."""
    from selfhost.context.budget import Request, budget
    from selfhost.context.pack import pack
    from selfhost.context.probe import probe_context
    from selfhost.context.tokens import Tokenizer

    tok = Tokenizer(spec)
    chunk = " ".join(f"Passage sentence {i}: the service keeps its data in region {i % 3}." for i in range(30))
    req = Request(
        question="Which region holds the data?",
        system="Answer only from the context.",
        chunks=[chunk, chunk.replace("region", "zone"), chunk.replace("data", "backups")],
        history=[{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi! Ask away."}],
    )
    b = budget(tok, req, n_ctx=4096, reserved_output=512)
    packed = pack(tok, req, n_ctx=1024, reserved_output=256)
    probe = probe_context(server_url, tok, upper=server_n_ctx * 2)
    probe.pop("attempts", None)
    rows = [(f"sample RAG request: {k}", f"{v:,} tokens") for k, v in b["parts"].items()]
    rows += [
        ("sample request total", f"{b['total_tokens']:,} of {b['n_ctx']:,} ({'fits' if b['fits'] else 'no'})"),
        (
            "packed into 1,024 − 256",
            f"{packed.prompt_tokens} prompt tokens; dropped "
            f"{packed.dropped_history} history messages, chunks {packed.dropped_chunks}, "
            f"trimmed chunk {packed.trimmed_chunk}",
        ),
        (
            "server's effective window",
            f"{probe['effective_context']:,} tokens (started with n_ctx {server_n_ctx}); past it: {probe['behaviour']}",
        ),
    ]
    plot = bar_chart(
        list(b["parts"]) + ["reserved answer"],
        [*b["parts"].values(), b["reserved_output"]],
        title="Where the sample request's tokens go (model's own tokenizer)",
        unit="tokens",
    )
    notes = [
        "Counts use the model's tokenizer on the rendered chat template (they equal llama.cpp's prompt token "
        "count); the probe bisects with prompts of known size against the running server."
    ]
    return Section(
        "context",
        "Context budget (real tokenizer)",
        {"budget": b, "packed": packed.to_dict(), "probe": probe},
        rows,
        [plot],
        notes,
    )


# This machine's power draw is not measured (no NVML for a CPU): an explicit assumption, shown in the report.
ASSUMED_CPU_WATTS = 35.0


def cost_section(bench_runs: Sequence[dict[str, Any]], bench_source: str) -> Section:
    """$/1M tokens for the embedded model on this CPU, from the bench section's measured throughput."""
    from selfhost.cost.model import HOURS_PER_MONTH, Hardware
    from selfhost.cost.run import cost_report, find_api_price, prices

    vm = prices()["cpu_vm"]
    apis = [find_api_price("gpt-4o-mini")]
    rented = Hardware(
        vm["name"],
        rent_per_gpu_hour=vm["usd_per_hour"],
        sources=(f"rent: {vm['source_url']} ({vm['as_of']})",),
        assumptions=(f"this machine priced as a {vm['name']}; it may not be one",),
    )
    owned = Hardware(
        "this machine, already owned",
        purchase_usd=0.0,
        watts=ASSUMED_CPU_WATTS,
        kwh_price=0.15,
        assumptions=(
            f"power {ASSUMED_CPU_WATTS:g} W at load for 2 cores (assumed, not measured)",
            "electricity $0.15/kWh (assumed)",
            "hardware already paid for",
        ),
    )
    bench = {"runs": list(bench_runs)}
    rent = cost_report(bench, rented, apis, 1.0, bench_source)
    power = cost_report(bench, owned, apis, 1.0, bench_source)
    best = rent["best_level"]
    rows = [
        (
            "measured throughput",
            f"{best['output_tokens_per_s']:.1f} output tokens/s at concurrency {best['concurrency']} ({bench_source})",
        ),
        (
            "rented equivalent",
            f"${rented.rent_per_gpu_hour}/h → ${best['usd_per_million_output_tokens']:.2f} per 1M output tokens",
        ),
        ("electricity only", f"${power['best_level']['usd_per_million_output_tokens']:.3f} per 1M output tokens"),
    ]
    be = best["break_even"]["gpt-4o-mini"]
    rows.append(
        (
            "vs gpt-4o-mini",
            f"break-even at {be['break_even_output_tokens_per_month'] / 1e6:,.0f}M output "
            f"tokens/month; this server makes at most "
            f"{be['capacity_output_tokens_per_month'] / 1e6:,.1f}M "
            f"({'reachable' if be['reachable_with_one_server'] else 'not reachable'})",
        )
    )
    api_cost = be["api_usd_per_million_output_tokens_incl_input"]
    cap = be["capacity_output_tokens_per_month"] / 1e6
    xs = [cap * i / 10 for i in range(11)]
    plot = line_chart(
        [
            ("gpt-4o-mini API", xs, [x * api_cost for x in xs]),
            ("rented VM, always on", xs, [rent["hourly_usd"]["total"] * HOURS_PER_MONTH] * len(xs)),
        ],
        title="Monthly cost against volume (up to one server's capacity)",
        x_label="million output tokens per month",
        y_label="USD per month",
    )
    notes = [
        *rent["sources"],
        *rent["assumptions"],
        *power["assumptions"],
        rent["definitions"],
        f"API price: {apis[0].source}",
    ]
    return Section(
        "cost", "Cost (from measured throughput)", {"rented": rent, "electricity_only": power}, rows, [plot], notes
    )


def quant_section(spec: ModelSpec, out_dir: Path, names: Sequence[str], every: int = 4) -> Section:
    """`selfhost quant` on a slice of its default suite (every `every`-th case, across all categories)."""
    from selfhost.evals.suite import default_suite
    from selfhost.models.resolve import local_gguf_path
    from selfhost.quant.kld import default_text
    from selfhost.quant.run import QuantConfig, run_quant
    from selfhost.quant.variants import make_variants

    cases = default_suite()[::every]
    variants = make_variants(local_gguf_path(spec), out_dir / "variants", list(names), spec.file_type)
    r = run_quant(QuantConfig(variants, cases, default_text(), out_dir / "items.jsonl"))
    rows = []
    for v in r["variants"]:
        d = v["difference_vs_reference"]
        rows.append(
            (
                v["name"],
                f"{fmt_bytes(v['file_bytes'])}; pass {v['pass_rate']:.0%} (Δ {d['difference']:+.0%}, "
                f"CI {d['ci_low']:+.0%}…{d['ci_high']:+.0%}); KLD {v['kld_mean']:.3f}, top-1 "
                f"{v['top1_agreement']:.0%}; {v['tokens_per_s'] or 0:.0f} tok/s",
            )
        )
    rows.append(("recommended", f"{r['recommended']}: {r['recommendation']['why']}"))
    labels = [v["name"] for v in r["variants"]]
    plots = [
        bar_chart(labels, [100 * v["pass_rate"] for v in r["variants"]], title="Suite pass rate", unit="%"),
        bar_chart(labels, [v["kld_mean"] for v in r["variants"]], title="Mean KL divergence vs reference", unit=""),
    ]
    notes = [
        f"{len(cases)} of the default suite's {len(default_suite())} cases; `selfhost quant` runs them all, "
        "or your own suite.",
        f"The reference is {r['reference']['note']}." if r["reference"]["note"] else "",
    ]
    return Section("quant", "Which quantization", r, rows, plots, [n for n in notes if n])
