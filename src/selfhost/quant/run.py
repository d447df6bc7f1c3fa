"""The quant pipeline: variants → KL divergence (prunes what already fails) → suite outputs in rounds (streamed
to JSONL, resumable), each variant stopped once decided, overall and in each category → the smallest variant shown
non-inferior overall and shown worse in no category."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfhost.backends.base import GenerationParams, collect
from selfhost.backends.llamacpp import default_threads
from selfhost.errors import BackendError, ModelNotFoundError, UsageError
from selfhost.evals.checks import evaluate_case
from selfhost.evals.sequential import decide, difference_sequence
from selfhost.evals.settle import settled
from selfhost.evals.stats import wilson
from selfhost.evals.suite import Case
from selfhost.quant.kld import compare_distributions, logprobs, summarize
from selfhost.quant.variants import Variant

__all__ = ["Gates", "QuantConfig", "run_quant", "run_order", "look_points", "evaluate_case"]


@dataclass(frozen=True)
class Gates:
    max_pass_rate_drop: float = 0.05  # the interval's lower bound of (variant − reference) must stay above −this
    max_kld_p99: float = 1.0
    confidence: float = 0.95
    # Each category's margin. A category holds a sixth of the built-in suite (85 cases), and with no discordant
    # pair at all the confidence sequence needs 92 paired cases to rule out a 5-point drop but 46 for 10 points.
    max_category_drop: float = 0.10


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
    max_cases: int | None = None  # the first N cases of the run order; None: the whole suite
    budget_s: float | None = None  # generation stops here; variants still open are reported "undecided"
    look_every: int = 10  # cases between looks at the decisions


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


def run_order(cases: list[Case]) -> list[Case]:
    """The order cases run in: by a hash of their id, so any prefix is a uniformly shuffled sample of the suite
    (a suite written category by category would otherwise decide on its first category alone), the order does not
    depend on the outcomes, and adding a case to a suite leaves the others' order alone."""
    return sorted(cases, key=lambda c: hashlib.sha256(c.id.encode()).hexdigest())


def look_points(n_cases: int, every: int) -> list[int]:
    """After how many cases the decisions are taken: every `every` cases and at the last one. The confidence
    sequence is valid at every look, so looking often costs no error rate, only the arithmetic."""
    return [*range(max(1, every), n_cases, max(1, every)), n_cases]


class _OpenBackends:
    """Each variant's engine, kept loaded from one look to the next when all of them fit in a quarter of this
    machine's memory (else loaded per look: slower, but one at a time)."""

    def __init__(self, variants: list[Variant], n_ctx: int) -> None:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        self.keep = sum(v.file_bytes or 0 for v in variants) <= ram / 4
        self.n_ctx = n_ctx
        self.stacks: dict[str, ExitStack] = {}
        self.loaded: dict[str, Any] = {}

    @contextmanager
    def use(self, v: Variant) -> Iterator[Any]:
        if v.name not in self.loaded and self.keep:
            stack = self.stacks[v.name] = ExitStack()
            self.loaded[v.name] = stack.enter_context(_backend(v, self.n_ctx))
        if v.name in self.loaded:
            yield self.loaded[v.name]
            return
        with _backend(v, self.n_ctx) as backend:
            yield backend

    def release(self, v: Variant) -> None:
        self.loaded.pop(v.name, None)
        stack = self.stacks.pop(v.name, None)
        if stack is not None:
            stack.close()

    def close(self) -> None:
        for stack in self.stacks.values():
            stack.close()
        self.stacks.clear()
        self.loaded.clear()


@dataclass
class _Decisions:
    status: dict[str, str]  # variant name → decision so far
    decided_at: dict[str, int]  # variant name → paired cases when it was decided
    reason: dict[str, str]
    ran_to: dict[str, int] = field(default_factory=dict)  # variant name → the last look it took part in
    overall: dict[str, tuple[str, int]] = field(default_factory=dict)  # variant → (overall verdict, decided at)


def run_quant(cfg: QuantConfig, progress: Callable[[str, int, int], None] = lambda *_: None) -> dict[str, Any]:
    """KL divergence first (a variant whose tail already fails needs no generations), then the suite in rounds,
    stopping each variant once its confidence sequence decides it (evals/sequential.py); Ctrl-C loses only the
    item in flight, and a rerun reuses every finished item."""
    _check_schemas(cfg.cases)
    for v in cfg.variants:
        if v.path is not None and not v.path.exists():
            raise ModelNotFoundError(f"variant {v.name}: no such file {v.path}", "check the --variant path")
    ref = cfg.variants[0]
    cases = run_order(cfg.cases)[: cfg.max_cases] if cfg.max_cases else run_order(cfg.cases)
    dists = _distributions(cfg)
    state = _Decisions({ref.name: "reference"}, {}, {})
    live: list[Variant] = []
    for v in cfg.variants[1:]:
        p99 = dists[v.name]["kld_p99"]
        if p99 is not None and p99 > cfg.gates.max_kld_p99:
            state.status[v.name], state.decided_at[v.name] = "worse", 0
            state.reason[v.name] = f"KLD p99 {p99:.3g} > {cfg.gates.max_kld_p99}: no generations needed"
        else:
            state.status[v.name] = "open"
            live.append(v)
    previous = _load_done(cfg.records_path)
    done: dict[tuple[str, str], dict[str, Any]] = {}
    keys = {(v.name, c.id): item_key(v, c, cfg.n_ctx) for v in cfg.variants for c in cases}
    for (name, case_id), key in keys.items():
        if key in previous:
            done[(name, case_id)] = previous[key]
    deadline = None if cfg.budget_s is None else time.perf_counter() + cfg.budget_s
    looked = 0
    in_budget = True
    cfg.records_path.parent.mkdir(parents=True, exist_ok=True)
    engines = _OpenBackends(cfg.variants, cfg.n_ctx)
    with open(cfg.records_path, "a", encoding="utf-8") as out, closing(engines):
        stop = threading.Event()
        written = threading.Lock()

        def pending(v: Variant, upto: int) -> list[Case]:
            return [c for c in cases[:upto] if (v.name, c.id) not in done]

        def generate(v: Variant, upto: int, threads: int | None) -> bool:
            """Runs v on cases[:upto] not yet done; False when the budget ran out (or Ctrl-C came) first."""
            todo = pending(v, upto)
            if not todo:
                return True
            if deadline is not None and time.perf_counter() >= deadline:
                return False
            with engines.use(v) as backend:
                if threads is not None:  # a local engine (LlamaCppBackend); endpoints get None
                    backend.set_threads(threads)
                for c in todo:
                    if stop.is_set() or (deadline is not None and time.perf_counter() >= deadline):
                        return False
                    rec = _generate_one(backend, v, c, keys[(v.name, c.id)])
                    with written:
                        out.write(json.dumps(rec) + "\n")
                        out.flush()
                        done[(v.name, c.id)] = rec
                        progress(f"{v.name}: {c.id}", len(done), len(cases) * (1 + len(live)))
            return True

        def generate_side_by_side(group: list[Variant], upto: int) -> bool:
            """The reference and the variants that run now, each in its own thread with an equal share of the cores:
            on 2 cores two 1-thread engines side by side finish a look about 1.2x sooner than one 2-thread engine
            after the other (small models scale badly with threads), and llama.cpp's greedy answers do not depend
            on the thread count. Sequential where engines are loaded per look (they may not fit together)."""
            busy = [v for v in group if pending(v, upto)]
            local = [v for v in busy if v.url is None]
            if len(busy) <= 1 or not engines.keep:
                share = default_threads()
                return all([generate(v, upto, share if v.url is None else None) for v in busy])
            share = max(1, default_threads() // max(1, len(local)))
            with ThreadPoolExecutor(max_workers=len(busy), thread_name_prefix="quant") as pool:
                futures = [pool.submit(generate, v, upto, share if v.url is None else None) for v in busy]
                try:
                    for f in as_completed(futures):
                        f.result()  # the first failure, as soon as it happens
                except BaseException:  # Ctrl-C or a failed endpoint: the others finish their item in flight
                    stop.set()
                    raise
                return all(f.result() for f in futures)

        only_reference = len(cfg.variants) == 1  # then the run is the reference's pass rate on the whole suite
        for upto in look_points(len(cases), len(cases) if only_reference else cfg.look_every):
            if not live and not only_reference:
                break
            running = _running(live)
            in_budget = generate_side_by_side([ref, *running], upto)
            looked = upto
            for v in [ref, *running]:
                state.ran_to[v.name] = upto
            _decide(cfg, cases[:upto], done, running, state)
            live = [v for v in live if state.status[v.name] == "open"]
            for v in cfg.variants[1:]:
                if v not in live:
                    engines.release(v)
            if not in_budget:
                break
    for v in live:
        overall, at = state.overall.get(v.name, ("open", 0))
        if overall == "non-inferior":  # no category shown worse; the ones still open are named in the report
            state.status[v.name], state.decided_at[v.name] = "non-inferior", at
            state.reason[v.name] = "non-inferior overall and shown worse in no category; some categories were still "
            state.reason[v.name] += "open when the " + ("budget" if not in_budget else "suite") + " ran out"
            continue
        state.status[v.name] = "undecided"
        if v.name not in state.ran_to:
            state.reason[v.name] = "not run: smaller variants are tried first, and the run ended before its turn"
    _mark_not_needed(cfg, state, ("open", "undecided"))
    return _summarize(cfg, cases, done, dists, state, looked)


def _running(live: list[Variant]) -> list[Variant]:
    """Which open variants get cases now. The answer is the smallest variant shown non-inferior, so sized variants
    are tried from the smallest up: a larger one runs only once every smaller one has been shown worse (it then
    catches up on the cases so far, paired with the reference's kept answers). Endpoints hide their size: they all
    run."""
    sized = sorted((v for v in live if v.file_bytes is not None), key=lambda v: v.file_bytes or 0)
    return [*sized[:1], *(v for v in live if v.file_bytes is None)]


def _generate_one(backend: Any, v: Variant, c: Case, key: str) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        events = backend.stream_chat(c.messages, GenerationParams(max_tokens=c.max_tokens))
        comp = collect(events, start, until=lambda text: settled(c, text) is not None)
    except (OSError, http.client.HTTPException, BackendError) as exc:
        if v.url is None:
            raise
        raise BackendError(
            f"variant {v.name} ({v.url}) failed on case {c.id!r}: {exc}",
            "the finished items are kept; rerun the same command to resume",
        ) from None
    return {
        "key": key,
        "variant": v.name,
        "case": c.id,
        "output": comp.text,
        "completion_tokens": comp.completion_tokens,
        "ttft_s": comp.ttft_s,
        "e2e_s": comp.e2e_s,
        "decode_tokens_per_s": comp.decode_tokens_per_s,
        "finish_reason": comp.finish_reason,  # "settled": stopped once the outcome could not change (settle.py)
    }


def _paired(
    cases: list[Case], done: dict[tuple[str, str], dict[str, Any]], ref: Variant, v: Variant
) -> tuple[list[Case], list[bool], list[bool]]:
    """The longest prefix of the run order that both have answered, with each side's pass per case."""
    both = []
    for c in cases:
        if (ref.name, c.id) not in done or (v.name, c.id) not in done:
            break
        both.append(c)
    ref_out = {c.id: done[(ref.name, c.id)]["output"] for c in both}
    ref_pass = [all(evaluate_case(c, ref_out[c.id], ref_out[c.id]).values()) for c in both]
    var_pass = [all(evaluate_case(c, done[(v.name, c.id)]["output"], ref_out[c.id]).values()) for c in both]
    return both, var_pass, ref_pass


def _decide(
    cfg: QuantConfig,
    cases: list[Case],
    done: dict[tuple[str, str], dict[str, Any]],
    running: list[Variant],
    state: _Decisions,
) -> None:
    """A variant is worse once shown worse overall or in any one category (a variant can keep JSON and lose
    arithmetic); it is non-inferior once shown so overall and in every category. Shown non-inferior overall with
    categories still open, it keeps running so that each category gets its verdict."""
    ref = cfg.variants[0]
    alpha = 1 - cfg.gates.confidence
    for v in running:
        both, var_pass, ref_pass = _paired(cases, done, ref, v)
        overall = decide(difference_sequence(var_pass, ref_pass, alpha), cfg.gates.max_pass_rate_drop)
        if overall != "open" and v.name not in state.overall:
            state.overall[v.name] = (overall, len(both))
        rows = _category_rows(both, var_pass, ref_pass, alpha, cfg.gates.max_category_drop)
        worse_in = [k for k, row in rows.items() if row["decision"] == "worse"]
        if overall == "worse" or worse_in:
            state.status[v.name], state.decided_at[v.name] = "worse", len(both)
            if overall != "worse":  # decided by a category: say which
                state.reason[v.name] = (
                    f"shown more than {cfg.gates.max_category_drop:.0%} below the reference in "
                    f"{', '.join(worse_in)} (each category's {cfg.gates.confidence:.0%} confidence sequence)"
                )
        elif overall == "non-inferior" and all(row["decision"] == "non-inferior" for row in rows.values()):
            state.status[v.name], state.decided_at[v.name] = "non-inferior", len(both)
    _mark_not_needed(cfg, state, ("open",))


def _mark_not_needed(cfg: QuantConfig, state: _Decisions, among: tuple[str, ...]) -> None:
    """The answer is the smallest variant shown non-inferior: once one is, larger files need no more cases."""
    passed = [v.file_bytes for v in cfg.variants[1:] if state.status[v.name] == "non-inferior" and v.file_bytes]
    if passed:
        for v in cfg.variants[1:]:
            if state.status[v.name] in among and v.file_bytes is not None and v.file_bytes > min(passed):
                state.status[v.name] = "not needed"
                state.reason[v.name] = "a smaller variant was already shown non-inferior"


def _distributions(cfg: QuantConfig) -> dict[str, dict[str, Any]]:
    """KL divergence and friends of every local variant against the reference (endpoints give no logits)."""
    ref = cfg.variants[0]
    empty: dict[str, Any] = dict.fromkeys(("kld_mean", "kld_mean_se", "kld_p99", "top1_agreement"))
    out = {v.name: empty for v in cfg.variants}
    if ref.path is None:
        return out
    settings = {"max_tokens": cfg.kld_tokens, "chunk_ctx": cfg.kld_ctx}
    ref_tokens, ref_lp = logprobs(ref.path, cfg.text, **settings)
    out[ref.name] = summarize(compare_distributions(ref_tokens, ref_lp, ref_tokens, ref_lp))
    out[ref.name]["positions"] = len(ref_tokens)
    for v in cfg.variants[1:]:
        if v.path is not None:
            vt, vlp = logprobs(v.path, cfg.text, **settings)
            out[v.name] = summarize(compare_distributions(ref_tokens, ref_lp, vt, vlp))
    return out


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


def _category_rows(
    cases: list[Case], var_pass: list[bool], ref_pass: list[bool], alpha: float, max_drop: float
) -> dict[str, dict[str, Any]]:
    by: dict[str, tuple[list[bool], list[bool]]] = {}
    for c, passed, ref_passed in zip(cases, var_pass, ref_pass, strict=True):
        by.setdefault(c.category, ([], []))
        by[c.category][0].append(passed)
        by[c.category][1].append(ref_passed)
    out = {}
    for cat, (v, r) in sorted(by.items()):
        cs = difference_sequence(v, r, alpha)
        out[cat] = {
            "cases": len(v),
            "pass_rate": sum(v) / len(v),
            "reference_pass_rate": sum(r) / len(r),
            "difference": cs.difference,
            "interval": [cs.low, cs.high],
            "decision": decide(cs, max_drop),
        }
    return out


def _summarize(
    cfg: QuantConfig,
    cases: list[Case],
    done: dict[tuple[str, str], dict[str, Any]],
    dists: dict[str, dict[str, Any]],
    state: _Decisions,
    looked: int,
) -> dict[str, Any]:
    ref = cfg.variants[0]
    alpha = 1 - cfg.gates.confidence
    rows = []
    for v in cfg.variants:
        both, passed, ref_pass = _paired(cases[: state.ran_to.get(v.name, 0)], done, ref, v)
        n = len(both)
        recs = [done[(v.name, c.id)] for c in both]
        tps = [r["decode_tokens_per_s"] for r in recs if r["decode_tokens_per_s"]]
        dist = dists[v.name]
        cs = difference_sequence(passed, ref_pass, alpha)
        status = state.status[v.name]
        gates = {
            "pass_rate": True if v is ref else {"non-inferior": True, "worse": False}.get(status, False),
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
                "decision": status,
                "decision_reason": state.reason.get(v.name),
                "decided_after_cases": state.decided_at.get(v.name),
                "overall_decided_after_cases": state.overall.get(v.name, (None, None))[1],
                "cases_run": n,
                "pass_rate": n_pass / n if n else None,
                "pass_rate_ci": wilson(n_pass, n) if n else None,
                "pass_rate_by_category": _category_rows(both, passed, ref_pass, alpha, cfg.gates.max_category_drop),
                "difference_vs_reference": {
                    "difference": cs.difference,
                    "ci_low": cs.low,
                    "ci_high": cs.high,
                    "level": cfg.gates.confidence,
                    "method": "confidence sequence (Waudby-Smith & Ramdas 2024), valid at every look",
                },
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
    if best["name"] == ref.name and len(rows) > 1:
        open_ = [f"{r['name']} ({r['decision']})" for r in rows[1:]]
        why = (
            f"the reference: no variant was shown to lose at most {cfg.gates.max_pass_rate_drop:.0%} of its pass "
            f"rate at {cfg.gates.confidence:.0%} confidence — {', '.join(open_)}; undecided variants need more "
            "cases (a larger suite or --budget-minutes) or a looser --max-drop"
        )
    else:
        still_open = [k for k, c in best["pass_rate_by_category"].items() if c["decision"] == "open"]
        why = (
            f"{rule} shown non-inferior: pass rate at most {cfg.gates.max_pass_rate_drop:.0%} below the reference "
            f"at {cfg.gates.confidence:.0%} confidence (a confidence sequence over "
            f"{best['cases_run']} paired cases, valid however often the run looked), in no category shown more "
            f"than {cfg.gates.max_category_drop:.0%} below it"
            + (f" (still open: {', '.join(still_open)})" if still_open else ", each category shown within it")
            + f", and KLD p99 ≤ {cfg.gates.max_kld_p99}"
        )
    return {
        "reference": {"name": ref.name, "path": ref.where, "note": ref.note},
        "variants": rows,
        "recommended": best["name"],
        "recommendation": {
            "name": best["name"],
            "file_bytes": best["file_bytes"],
            "tokens_per_s": best["tokens_per_s"],
            "why": why,
        },
        "decided": all(r["decision"] not in ("open", "undecided") for r in rows),
        "by_category": _by_category(rows[1:]),
        "gates": {
            "max_pass_rate_drop": cfg.gates.max_pass_rate_drop,
            "max_category_drop": cfg.gates.max_category_drop,
            "max_kld_p99": cfg.gates.max_kld_p99,
            "confidence": cfg.gates.confidence,
        },
        "cases": looked,
        "suite_cases": len(cfg.cases),
        "kld_positions": dists[ref.name].get("positions", 0),
        "kld_settings": {"ctx": cfg.kld_ctx, "tokens": cfg.kld_tokens},
        "records_path": str(cfg.records_path),
    }


def _by_category(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """Per category, which variants passed (shown non-inferior there), which were shown worse, and which ran
    without a verdict: the answer for a user whose task is one category."""
    out: dict[str, dict[str, list[str]]] = {}
    for r in rows:
        for cat, c in r["pass_rate_by_category"].items():
            kind = {"non-inferior": "passed", "worse": "worse"}.get(c["decision"], "open")
            out.setdefault(cat, {"passed": [], "worse": [], "open": []})[kind].append(r["name"])
    return dict(sorted(out.items()))
