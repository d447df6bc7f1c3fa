"""`selfhost plan` as one library call: enumerate, prune without measuring, measure the rest adaptively on the
real engine, repeat the finalists, decide, and write the card."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfhost.errors import UsageError
from selfhost.fit.plan import CTX_STEP
from selfhost.plan.measure import MeasureSettings, measure_config
from selfhost.plan.search import coordinate_search
from selfhost.plan.space import Workload, grid, label, llama_server_knobs, llama_server_rule
from selfhost.settings import setting

__all__ = ["PlanOptions", "plan_deployment", "TEMPLATE_ALLOWANCE_TOKENS"]

# Chat-template tokens around a prompt, added to the longest request when sizing each slot's context (SmolLM2's
# template with its default system prompt adds 31; generous for others).
TEMPLATE_ALLOWANCE_TOKENS = 64

Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class PlanOptions:
    slo: str | None = setting(None, "Targets every request must meet, e.g. ttft_p99=1.0,tpot_p99=0.1 (seconds).")
    input_tokens: int = setting(128, "Workload: prompt tokens per request (synthetic prompts).")
    output_tokens: int = setting(32, "Workload: output tokens per request.")
    prompts_file: Path | None = setting(None, "Workload: a JSONL prompts file, as `bench --prompts`.", path="in")
    trace_file: Path | None = setting(
        None,
        "Workload: a recorded trace (Mooncake JSONL, as `bench --trace`), replayed at 1×, 2×, 4× … its rate; "
        "goodput is taken at the fastest replay that meets the SLO.",
        flag="--trace",
        path="in",
    )
    max_speedup: float = setting(16.0, "With --trace: the fastest replay tried (× the recorded rate).")
    parallel: str = setting("1,2,4,8", "Parallel slots to consider (comma-separated).", flag="--try-parallel")
    threads: str | None = setting(
        None, "CPU threads to consider (default: half the cores, all cores).", flag="--try-threads"
    )
    budget_minutes: float = setting(15.0, "Stop measuring new settings after this long (finalists included).")
    max_measurements: int | None = setting(
        None, "At most this many settings measured (default: a third of the settings left after pruning)."
    )
    repeats: int = setting(3, "Runs of each of the two finalists (the winner's interval is their range).")
    quant_result: Path | None = setting(
        None, "A `selfhost quant --json` result: its variants join the choice, those shown worse are pruned.", path="in"
    )
    price_per_hour: float | None = setting(None, "What this machine costs per hour (USD), for $/Mtok and break-even.")
    api: str = setting("gpt-4o-mini", "The hosted API to compare against (see `selfhost cost --help`).")
    max_concurrency: int = setting(16, "Highest concurrency the goodput search tries.")
    requests_per_level: int = setting(
        8, "Requests per screening run (2 × the concurrency when more); the confirming run has 3 × as many."
    )
    out: Path = setting(Path("selfhost-plan"), "Folder for card.json, card.html and every run's records.", path="dir")


@dataclass
class _Clock:
    budget_s: float
    start: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise UsageError(f"{flag} {text!r}: give whole numbers separated by commas", f"e.g. {flag} 1,2,4") from None
    if not values or values[0] < 1 or values[-1] > 256:
        raise UsageError(f"{flag} {text!r}: each value must be between 1 and 256", f"e.g. {flag} 1,2,4")
    return values


def workload_of(o: PlanOptions, count_tokens: Callable[[str], int]) -> Workload:
    if o.trace_file is not None and o.prompts_file is not None:
        raise UsageError("a trace brings its own prompts", "pass --trace or --prompts-file, not both")
    if o.prompts_file is None and o.trace_file is None:
        longest = o.input_tokens + o.output_tokens
        return Workload(o.input_tokens, o.output_tokens, None, _ctx(longest))
    from selfhost.bench.workload import jsonl_prompts, trace_prompts

    source = o.trace_file or o.prompts_file
    offsets: list[float] = []
    if o.trace_file is not None:
        prompts, offsets = trace_prompts(o.trace_file)
    else:
        prompts = jsonl_prompts(o.prompts_file, o.output_tokens)  # type: ignore[arg-type]
    if not prompts:
        raise UsageError(f"{source} holds no prompts", "one JSON object per line with a prompt")

    def tokens(content: Any) -> int:
        text = content if isinstance(content, str) else "\n".join(str(m.get("content", "")) for m in content)
        return count_tokens(text)

    longest = max(tokens(p.content) + p.max_tokens for p in prompts)
    if o.trace_file is not None:
        return Workload(
            o.input_tokens,
            o.output_tokens,
            None,
            _ctx(longest),
            trace_file=str(o.trace_file),
            trace_requests=len(prompts),
            trace_seconds=max(offsets, default=0.0),
        )
    return Workload(o.input_tokens, o.output_tokens, str(o.prompts_file), _ctx(longest))


def _ctx(tokens: int) -> int:
    return math.ceil((tokens + TEMPLATE_ALLOWANCE_TOKENS) / CTX_STEP) * CTX_STEP


def _variants(model_path: Path, spec: Any, quant_result: Path | None) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """name -> GGUF path of every variant plan may choose, and the variants pruned by quant's verdicts."""
    own = (spec.file_type or "model").upper()
    variants = {own: str(model_path)}
    pruned: list[dict[str, Any]] = []
    if quant_result is None:
        return variants, pruned
    from selfhost.files import read_json

    q = read_json(quant_result)
    if not isinstance(q, dict) or not isinstance(q.get("variants"), list):
        raise UsageError(f"{quant_result} is not a `selfhost quant --json` result (no variants)")
    for row in q["variants"]:
        name, path, decision = row.get("name"), row.get("path"), row.get("decision")
        if not path or not Path(path).is_file():
            pruned.append({"variant": name, "reason": "its file is not here (an endpoint, or moved)"})
        elif decision in ("non-inferior", "reference"):
            variants.setdefault(str(name), str(path))
        else:
            why = row.get("decision_reason") or decision
            pruned.append({"variant": name, "reason": f"quant decided it {decision}: {why}"})
    return variants, pruned


def _start(knobs: dict[str, list[Any]]) -> dict[str, Any]:
    """The setting nearest llama-server's own defaults (4 slots, all cores, flash attention, f16 KV, ubatch 512)."""

    def near(values: list[Any], want: Any) -> Any:
        return min(values, key=lambda v: abs(v - want)) if isinstance(want, int | float) else want

    return {
        "parallel": near(knobs["parallel"], 4),
        "variant": knobs["variant"][0],
        "threads": max(knobs["threads"]),
        "flash_attn": True,
        "kv_type": "f16",
        "ubatch": near(knobs["ubatch"], 512),
    }


def _memory_prune(config: dict[str, Any], specs: dict[str, Any], ctx: int, available: int) -> str | None:
    from selfhost.fit.plan import FitRequest, plan

    spec = specs[config["variant"]]
    req = FitRequest(
        n_ctx=ctx,
        parallel=config["parallel"],
        kv_type=config["kv_type"],
        flash_attn=config["flash_attn"],
        n_ubatch=config["ubatch"],
    )
    total = plan(spec, req).total_bytes
    if total > available:
        return f"needs {total / 2**30:.2f} GiB (fit), {available / 2**30:.2f} GiB of RAM is available"
    return None


def plan_deployment(o: PlanOptions, model: str | None, progress: Progress | None = None) -> dict[str, Any]:
    import psutil

    from selfhost.backends.tokenizer import token_counter
    from selfhost.bench.levels import parse_slo
    from selfhost.models.resolve import local_gguf_path, resolve_model
    from selfhost.plan.card import build_card, write_card
    from selfhost.plan.environment import environment
    from selfhost.serve.engines import find_llama_server

    slo = parse_slo(o.slo)
    if not slo:
        raise UsageError("plan needs an SLO to measure goodput against", "pass --slo ttft_p99=1.0,tpot_p99=0.1")
    clock = _Clock(60 * o.budget_minutes)
    say = progress or (lambda what, n, total: None)
    spec = resolve_model(model)
    if spec.path is None or spec.source == "hf":
        raise UsageError(
            f"a measured plan serves a GGUF file with llama-server; {spec.name} is not one here",
            "pass a GGUF file, or plan on paper for GPUs with --gpu NAME --gpus K",
        )
    model_path = local_gguf_path(spec)
    engine_program = find_llama_server()
    count_tokens = token_counter(str(model_path))
    workload = workload_of(o, count_tokens)
    variants, pruned_variants = _variants(model_path, spec, o.quant_result)
    knobs = llama_server_knobs(
        list(variants), _ints(o.parallel, "--try-parallel"), _ints(o.threads, "--try-threads") if o.threads else None
    )
    every = grid(knobs)
    specs = {name: resolve_model(path) for name, path in variants.items()}  # each file's header read once
    available = int(psutil.virtual_memory().available)
    pruned: dict[str, str] = {}
    for c in every:
        why = llama_server_rule(c) or _memory_prune(c, specs, workload.longest_request_tokens, available)
        if why:
            pruned[label(c)] = why
    candidates = [c for c in every if label(c) not in pruned]
    if not candidates:
        raise UsageError("every setting was pruned before measuring", "see why with --json; lower --parallel")
    limit = o.max_measurements or max(2, math.ceil(len(every) / 3))
    o.out.mkdir(parents=True, exist_ok=True)
    settings = MeasureSettings(slo, workload, o.out, o.max_concurrency, o.requests_per_level, o.max_speedup)
    measurements: list[dict[str, Any]] = []

    def measure(config: dict[str, Any]) -> float:
        full = config | {"variant_path": variants[config["variant"]]}
        say(f"measuring {label(config)}", len(measurements), limit)
        m = measure_config(config, full["variant_path"], settings, count_tokens, run_index=0)
        measurements.append(m)
        return float(m["goodput_requests_per_s"])

    def out_of_time() -> bool:
        mean = clock.elapsed() / max(1, len(measurements))
        finals = 2 * (o.repeats - 1) * mean
        return clock.elapsed() + mean + finals > clock.budget_s

    search = coordinate_search(
        knobs,
        _start(knobs),
        measure,
        allowed=lambda c: label(c) not in pruned,
        max_measurements=limit,
        out_of_time=out_of_time,
    )
    finalists = sorted(search.measured, key=lambda mv: -mv[1])[:2]
    repeats = {label(c): [m for m in measurements if m["label"] == label(c)] for c, _ in finalists}
    for i in range(1, o.repeats):
        for c, _ in finalists:
            if clock.elapsed() > clock.budget_s:
                break
            say(f"repeating {label(c)} (run {i + 1} of {o.repeats})", len(measurements), None)
            m = measure_config(c, variants[c["variant"]], settings, count_tokens, run_index=i)
            repeats[label(c)].append(m)
            measurements.append(m)
    ranked = sorted(repeats.items(), key=lambda kv: -statistics.median(m["goodput_requests_per_s"] for m in kv[1]))
    env = environment(str(model_path), engine_program)
    card = build_card(
        spec=spec,
        options=o,
        workload=workload,
        slo=slo,
        ranked=ranked,
        measurements=measurements,
        search=search,
        grid_size=len(every),
        pruned=pruned,
        pruned_variants=pruned_variants,
        variants=variants,
        environment=env,
        wall_s=clock.elapsed(),
    )
    write_card(card, o.out)
    return card
