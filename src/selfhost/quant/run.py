"""The quant pipeline: variants → suite outputs (streamed to JSONL, resumable) → distribution metrics →
statistics → the smallest variant that passes every gate."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfhost.backends.base import GenerationParams, collect
from selfhost.errors import ModelNotFoundError, UsageError
from selfhost.quant.checks import run_check
from selfhost.quant.kld import compare_distributions, logprobs, summarize
from selfhost.quant.stats import paired_bootstrap, wilson
from selfhost.quant.suite import Case
from selfhost.quant.variants import Variant

__all__ = ["Gates", "QuantConfig", "run_quant", "evaluate_case"]


@dataclass(frozen=True)
class Gates:
    max_pass_rate_drop: float = 0.05  # the CI's lower bound of (variant − reference) must stay above −this
    max_kld_p99: float = 1.0
    confidence: float = 0.95


@dataclass
class QuantConfig:
    variants: list[Variant]  # the first is the reference
    cases: list[Case]
    text: str
    records_path: Path
    gates: Gates = field(default_factory=Gates)
    n_ctx: int = 2048


def _check_schemas(cases: list[Case]) -> None:
    import jsonschema

    for c in cases:
        for chk in c.checks:
            if chk["type"] == "json_schema":
                try:
                    jsonschema.Draft202012Validator.check_schema(chk["schema"])
                except jsonschema.SchemaError as exc:
                    raise UsageError(
                        f"case {c.id!r}: its schema is not valid JSON Schema: {exc.message}",
                        "fix the schema (https://json-schema.org)",
                    ) from None


def evaluate_case(case: Case, output: str, reference_output: str | None) -> dict[str, bool]:
    out = {}
    for i, chk in enumerate(case.checks):
        key = f"{i}:{chk['type']}"
        if chk["type"] == "agreement":
            out[key] = reference_output is not None and output.strip() == reference_output.strip()
        else:
            out[key] = run_check(output, chk)
    return out


def _load_done(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    done: dict[tuple[str, str], dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                r = json.loads(line)
                done[(r["variant"], r["case"])] = r
            except (json.JSONDecodeError, KeyError):
                continue  # a line cut by an interruption: that item is simply redone
    return done


def run_quant(cfg: QuantConfig, progress: Callable[[str, int, int], None] = lambda *_: None) -> dict[str, Any]:
    """Runs everything not already in cfg.records_path; Ctrl-C loses only the item in flight."""
    from selfhost.backends.llamacpp import LlamaCppBackend

    _check_schemas(cfg.cases)
    for v in cfg.variants:
        if not v.path.exists():
            raise ModelNotFoundError(f"variant {v.name}: no such file {v.path}", "check the --variant path")
    done = _load_done(cfg.records_path)
    total = len(cfg.variants) * len(cfg.cases)
    cfg.records_path.parent.mkdir(parents=True, exist_ok=True)
    with open(cfg.records_path, "a", encoding="utf-8") as out:
        for v in cfg.variants:
            pending = [c for c in cfg.cases if (v.name, c.id) not in done]
            if not pending:
                continue
            with LlamaCppBackend(v.path, n_ctx=cfg.n_ctx) as backend:
                for c in pending:
                    start = time.perf_counter()
                    comp = collect(backend.stream_chat(c.messages, GenerationParams(max_tokens=c.max_tokens)), start)
                    rec = {
                        "variant": v.name,
                        "case": c.id,
                        "output": comp.text,
                        "completion_tokens": comp.completion_tokens,
                        "ttft_s": comp.ttft_s,
                        "e2e_s": comp.e2e_s,
                        "decode_tokens_per_s": comp.decode_tokens_per_s,
                    }
                    out.write(json.dumps(rec) + "\n")
                    out.flush()
                    done[(v.name, c.id)] = rec
                    progress(f"{v.name}: {c.id}", len(done), total)
    return _summarize(cfg, done)


def _memory(path: Path, n_ctx: int) -> int | None:
    """llama.cpp's memory for this variant at n_ctx on this machine, from `fit`'s plan."""
    from selfhost.fit.plan import FitRequest, plan
    from selfhost.models.gguf_spec import spec_from_gguf

    try:
        return plan(spec_from_gguf(path), FitRequest(n_ctx=n_ctx)).total_bytes
    except UsageError:
        return None


def _summarize(cfg: QuantConfig, done: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    ref = cfg.variants[0]
    ref_out = {c.id: done[(ref.name, c.id)]["output"] for c in cfg.cases}
    ref_tokens, ref_lp = logprobs(ref.path, cfg.text)
    per_case_ref = [all(evaluate_case(c, ref_out[c.id], ref_out[c.id]).values()) for c in cfg.cases]
    rows = []
    for v in cfg.variants:
        evals = [evaluate_case(c, done[(v.name, c.id)]["output"], ref_out[c.id]) for c in cfg.cases]
        passed = [all(e.values()) for e in evals]
        by_category: dict[str, list[bool]] = {}
        for c, p in zip(cfg.cases, passed, strict=True):
            by_category.setdefault(c.category, []).append(p)
        recs = [done[(v.name, c.id)] for c in cfg.cases]
        tps = [r["decode_tokens_per_s"] for r in recs if r["decode_tokens_per_s"]]
        if v is ref:
            dist: dict[str, Any] = summarize(compare_distributions(ref_tokens, ref_lp, ref_tokens, ref_lp))
        else:
            vt, vlp = logprobs(v.path, cfg.text)
            dist = summarize(compare_distributions(ref_tokens, ref_lp, vt, vlp))
        diff = paired_bootstrap(passed, per_case_ref, level=cfg.gates.confidence)
        gates = {
            "pass_rate": diff["ci_low"] >= -cfg.gates.max_pass_rate_drop or v is ref,
            "kld_p99": dist["kld_p99"] <= cfg.gates.max_kld_p99,
        }
        n_pass = sum(passed)
        rows.append(
            {
                "name": v.name,
                "file_bytes": v.file_bytes,
                "path": str(v.path),
                "note": v.note,
                "memory_bytes": _memory(v.path, cfg.n_ctx),
                "kld_mean": dist["kld_mean"],
                "kld_p99": dist["kld_p99"],
                "top1_agreement": dist["top1_agreement"],
                "distribution": dist,
                "pass_rate": n_pass / len(passed),
                "pass_rate_ci": wilson(n_pass, len(passed)),
                "pass_rate_by_category": {k: sum(x) / len(x) for k, x in by_category.items()},
                "difference_vs_reference": diff,
                "tokens_per_s": sum(tps) / len(tps) if tps else None,
                "gates": gates,
                "passes_gates": all(gates.values()),
            }
        )
    eligible = [r for r in rows if r["passes_gates"]]
    best = min(eligible, key=lambda r: r["file_bytes"])
    return {
        "reference": {"name": ref.name, "path": str(ref.path), "note": ref.note},
        "variants": rows,
        "recommended": best["name"],
        "recommendation": {
            "name": best["name"],
            "file_bytes": best["file_bytes"],
            "tokens_per_s": best["tokens_per_s"],
            "why": f"smallest variant passing every gate: pass-rate drop not provably worse than "
            f"{cfg.gates.max_pass_rate_drop:.0%} at {cfg.gates.confidence:.0%} confidence "
            f"(paired bootstrap over {len(cfg.cases)} cases) and KLD p99 ≤ "
            f"{cfg.gates.max_kld_p99}",
        },
        "gates": {
            "max_pass_rate_drop": cfg.gates.max_pass_rate_drop,
            "max_kld_p99": cfg.gates.max_kld_p99,
            "confidence": cfg.gates.confidence,
        },
        "cases": len(cfg.cases),
        "kld_positions": len(ref_tokens),
        "records_path": str(cfg.records_path),
    }
