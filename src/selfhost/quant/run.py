"""The quant pipeline: variants → suite outputs (streamed to JSONL, resumable) → distribution metrics →
statistics → the smallest variant that passes every gate."""

from __future__ import annotations

import hashlib
import http.client
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfhost.backends.base import GenerationParams, collect
from selfhost.errors import BackendError, ModelNotFoundError, UsageError
from selfhost.evals.checks import evaluate_case
from selfhost.evals.stats import paired_bootstrap, wilson
from selfhost.evals.suite import Case
from selfhost.quant.kld import compare_distributions, logprobs, summarize
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
    kld_ctx: int | None = None  # llama-perplexity's chunking (-c); None: one pass over the text
    kld_tokens: int | None = 512  # the text's first N tokens; None: all of them


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


def item_key(v: Variant, case: Case, n_ctx: int) -> str:
    """What produced one answer: the variant's file or endpoint, the case as written, and the settings. A record
    is reused only under the same key, so a rerun on another model, file or suite never reports old answers."""
    produced_by = [v.identity, case.messages, case.checks, case.max_tokens, n_ctx]
    return hashlib.sha256(json.dumps(produced_by, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _load_done(path: Path) -> dict[str, dict[str, Any]]:
    """Finished records by item key; records without one (older runs) or cut by an interruption are redone."""
    done: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_bytes().decode("utf-8", "replace").splitlines():
            try:
                r = json.loads(line)
                done[str(r["key"])] = r
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return done


def run_quant(cfg: QuantConfig, progress: Callable[[str, int, int], None] = lambda *_: None) -> dict[str, Any]:
    """Runs everything not already in cfg.records_path; Ctrl-C loses only the item in flight."""
    _check_schemas(cfg.cases)
    for v in cfg.variants:
        if v.path is not None and not v.path.exists():
            raise ModelNotFoundError(f"variant {v.name}: no such file {v.path}", "check the --variant path")
    previous = _load_done(cfg.records_path)
    done: dict[tuple[str, str], dict[str, Any]] = {}
    keys = {(v.name, c.id): item_key(v, c, cfg.n_ctx) for v in cfg.variants for c in cfg.cases}
    for (name, case_id), key in keys.items():
        if key in previous:
            done[(name, case_id)] = previous[key]
    total = len(cfg.variants) * len(cfg.cases)
    cfg.records_path.parent.mkdir(parents=True, exist_ok=True)
    with open(cfg.records_path, "a", encoding="utf-8") as out:
        for v in cfg.variants:
            pending = [c for c in cfg.cases if (v.name, c.id) not in done]
            if not pending:
                continue
            with _backend(v, cfg.n_ctx) as backend:
                for c in pending:
                    start = time.perf_counter()
                    try:
                        events = backend.stream_chat(c.messages, GenerationParams(max_tokens=c.max_tokens))
                        comp = collect(events, start)
                    except (OSError, http.client.HTTPException, BackendError) as exc:
                        if v.url is None:
                            raise
                        raise BackendError(
                            f"variant {v.name} ({v.url}) failed on case {c.id!r}: {exc}",
                            "the finished items are kept; rerun the same command to resume",
                        ) from None
                    rec = {
                        "key": keys[(v.name, c.id)],
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


@contextmanager
def _backend(v: Variant, n_ctx: int) -> Iterator[Any]:
    if v.url is None:
        from selfhost.backends.llamacpp import LlamaCppBackend

        assert v.path is not None
        with LlamaCppBackend(v.path, n_ctx=n_ctx) as backend:
            yield backend
        return
    from selfhost.backends.base import create_backend

    try:
        http_backend: Any = create_backend("openai", url=v.url, model=v.model)
        served = http_backend.served_models()
    except BackendError as exc:
        raise BackendError(f"variant {v.name}: {exc.message}", exc.next_step) from None
    if http_backend.model not in served:
        raise BackendError(
            f"variant {v.name}: {v.url} does not serve {http_backend.model!r}",
            f"it serves: {', '.join(served) or 'nothing'}; write URL#MODEL",
        )
    try:
        yield http_backend
    finally:
        http_backend.close()


def _memory(path: Path | None, n_ctx: int) -> int | None:
    """llama.cpp's memory for this variant at n_ctx on this machine, from `fit`'s plan."""
    from selfhost.fit.plan import FitRequest, plan
    from selfhost.models.gguf_spec import spec_from_gguf

    if path is None:
        return None
    try:
        return plan(spec_from_gguf(path), FitRequest(n_ctx=n_ctx)).total_bytes
    except UsageError:
        return None


def _summarize(cfg: QuantConfig, done: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    ref = cfg.variants[0]
    ref_out = {c.id: done[(ref.name, c.id)]["output"] for c in cfg.cases}
    # KL divergence needs logits, which only local files give.
    kld_settings = {"max_tokens": cfg.kld_tokens, "chunk_ctx": cfg.kld_ctx}
    ref_tokens, ref_lp = logprobs(ref.path, cfg.text, **kld_settings) if ref.path is not None else ([], None)
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
        dist: dict[str, Any] = dict.fromkeys(("kld_mean", "kld_mean_se", "kld_p99", "top1_agreement"))
        if ref_lp is not None and v is ref:
            dist = summarize(compare_distributions(ref_tokens, ref_lp, ref_tokens, ref_lp))
        elif ref_lp is not None and v.path is not None:
            vt, vlp = logprobs(v.path, cfg.text, **kld_settings)
            dist = summarize(compare_distributions(ref_tokens, ref_lp, vt, vlp))
        diff = paired_bootstrap(passed, per_case_ref, level=cfg.gates.confidence)
        gates = {
            "pass_rate": diff["ci_low"] >= -cfg.gates.max_pass_rate_drop or v is ref,
            # None: not measured (an endpoint variant); the gate then neither passes nor fails it
            "kld_p99": None if dist["kld_p99"] is None else dist["kld_p99"] <= cfg.gates.max_kld_p99,
        }
        n_pass = sum(passed)
        rows.append(
            {
                "name": v.name,
                "file_bytes": v.file_bytes,
                "path": str(v.path) if v.path is not None else None,
                "url": v.url,
                "note": v.note,
                "memory_bytes": _memory(v.path, cfg.n_ctx),
                "kld_mean": dist["kld_mean"],
                "kld_mean_se": dist["kld_mean_se"],
                "kld_p99": dist["kld_p99"],
                "top1_agreement": dist["top1_agreement"],
                "distribution": dist,
                "pass_rate": n_pass / len(passed),
                "pass_rate_ci": wilson(n_pass, len(passed)),
                "pass_rate_by_category": {k: sum(x) / len(x) for k, x in by_category.items()},
                "difference_vs_reference": diff,
                "tokens_per_s": sum(tps) / len(tps) if tps else None,
                "gates": gates,
                "passes_gates": all(g is not False for g in gates.values()),
            }
        )
    eligible = [r for r in rows if r["passes_gates"]]
    sized = [r for r in eligible if r["file_bytes"] is not None]
    # Smallest file when sizes are known; endpoints hide theirs, so among them the fastest.
    best = min(sized, key=lambda r: r["file_bytes"]) if sized else max(eligible, key=lambda r: r["tokens_per_s"] or 0)
    rule = "smallest variant" if sized else "fastest variant (endpoints do not tell their size)"
    return {
        "reference": {"name": ref.name, "path": ref.where, "note": ref.note},
        "variants": rows,
        "recommended": best["name"],
        "recommendation": {
            "name": best["name"],
            "file_bytes": best["file_bytes"],
            "tokens_per_s": best["tokens_per_s"],
            "why": f"{rule} passing every gate: pass-rate drop not provably worse than "
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
        "kld_settings": {"ctx": cfg.kld_ctx, "tokens": cfg.kld_tokens},
        "records_path": str(cfg.records_path),
    }
