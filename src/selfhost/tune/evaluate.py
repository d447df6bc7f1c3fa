"""Base vs tuned, measured the same way on both sides.

On held-out conversations: the loss on assistant tokens, and whether the greedy answer contains the reference
answer, each per example, so the differences get paired bootstrap intervals. With a suite (the quant suites'
format and checks), also the pass rate on prompts outside the training task, so a fine-tune that breaks what the
base model could do shows up as a regression; an `agreement` check there compares tuned with base.

Two engines give the same contract: transformers + PEFT (the adapter as trained), and llama.cpp with the adapter
converted to GGUF (the adapter as it will be served), so a conversion or template problem shows up as a gap
between the two."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from selfhost.data.check import normalize
from selfhost.errors import UsageError
from selfhost.evals.checks import evaluate_case
from selfhost.evals.logits import log_softmax
from selfhost.evals.stats import paired_bootstrap, wilson
from selfhost.evals.suite import Case
from selfhost.models.spec import ModelSpec
from selfhost.template.render import render_chat
from selfhost.tune.dataset import encode_example
from selfhost.tune.hf import load_hf, quiet_libraries, require_tune_deps

__all__ = ["evaluate_adapter", "evaluate_adapter_llamacpp", "compare", "compare_suite"]

Conversation = list[dict[str, Any]]


class _Runner(Protocol):
    def loss(self, messages: Conversation) -> float: ...

    def generate_many(self, requests: list[tuple[Conversation, int]]) -> list[str]: ...


def _render(spec: ModelSpec, messages: Conversation, generation_prompt: bool) -> str:
    t = spec.tokenizer
    return render_chat(
        spec.chat_template or "",
        messages,
        add_generation_prompt=generation_prompt,
        bos_token=t.bos_token,
        eos_token=t.eos_token,
    )


class _Transformers:
    """One PEFT model serves both sides: the base is the same model with the adapter disabled."""

    def __init__(self, model: Any, tok: Any, spec: ModelSpec, adapter_on: bool) -> None:
        self.model, self.tok, self.spec, self.adapter_on = model, tok, spec, adapter_on

    def _side(self) -> AbstractContextManager[Any]:
        return nullcontext() if self.adapter_on else self.model.disable_adapter()

    def loss(self, messages: Conversation) -> float:
        torch = require_tune_deps()
        ids, labels = encode_example(self.tok, self.spec, messages, None)
        with torch.no_grad(), self._side():
            return float(self.model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss)

    def generate_many(self, requests: list[tuple[Conversation, int]]) -> list[str]:
        """Greedy answers, decoded in left-padded batches: on a CPU one decode step for 16 prompts costs about
        what one step for a single prompt costs (reading the weights dominates), so this is ~10x faster than one
        prompt at a time. tests/tune/test_evaluate.py checks the answers equal the one-at-a-time ones."""
        torch = require_tune_deps()
        answers: list[str] = [""] * len(requests)
        by_length: dict[int, list[int]] = {}
        for i, (_, max_tokens) in enumerate(requests):
            by_length.setdefault(max_tokens, []).append(i)
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
        side, self.tok.padding_side = self.tok.padding_side, "left"
        if self.tok.pad_token_id is None:  # padding needs one; the pad positions are masked out
            self.tok.pad_token_id = pad
        try:
            for max_tokens, indices in by_length.items():
                for start in range(0, len(indices), _BATCH):
                    batch = indices[start : start + _BATCH]
                    prompts = [_render(self.spec, requests[i][0], True) for i in batch]
                    add_bos = bool(self.spec.tokenizer.add_bos_token)
                    enc = self.tok(prompts, add_special_tokens=add_bos, return_tensors="pt", padding=True)
                    with torch.no_grad(), self._side():
                        gen = self.model.generate(**enc, max_new_tokens=max_tokens, do_sample=False, pad_token_id=pad)
                    width = enc["input_ids"].shape[1]
                    for i, row in zip(batch, gen, strict=True):
                        answers[i] = str(self.tok.decode(row[width:], skip_special_tokens=True))
        finally:
            self.tok.padding_side = side
        return answers


_BATCH = 16


class _LlamaCpp:
    """Assistant tokens are those between the token counts of the rendered prefix before each assistant turn and
    the render through its end: chat templates put special tokens at those boundaries, so the prefix tokenizes
    the same inside the whole."""

    def __init__(self, model_path: Path, lora: Path | None, spec: ModelSpec) -> None:
        import llama_cpp

        from selfhost.backends.llamacpp import LlamaLogCapture, default_threads

        self.spec = spec
        LlamaLogCapture.start()
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(model_path),
                lora_path=str(lora) if lora else None,
                n_ctx=2048,
                n_threads=default_threads(),
                logits_all=True,
                seed=0,
                verbose=False,
            )
        finally:
            LlamaLogCapture.stop()

    def _tokens(self, text: str) -> list[int]:
        add_bos = bool(self.spec.tokenizer.add_bos_token)
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True))

    def loss(self, messages: Conversation) -> float:
        ids = self._tokens(_render(self.spec, messages, False))
        trained: list[int] = []
        for i, m in enumerate(messages):
            if m.get("role") == "assistant":
                start = len(self._tokens(_render(self.spec, messages[:i], True))) if i else 0
                trained.extend(range(max(start, 1), len(self._tokens(_render(self.spec, messages[: i + 1], False)))))
        self.llm.reset()
        self.llm.eval(ids)
        logp = log_softmax(np.array(self.llm.scores[: len(ids)], dtype=np.float64))
        return float(-np.mean([logp[p - 1, ids[p]] for p in trained]))

    def generate_many(self, requests: list[tuple[Conversation, int]]) -> list[str]:
        return [self.generate(messages, max_tokens) for messages, max_tokens in requests]

    def generate(self, messages: Conversation, max_tokens: int) -> str:
        self.llm.reset()
        prompt = self._tokens(_render(self.spec, messages, True))
        out = self.llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, seed=0)
        return str(out["choices"][0]["text"])  # type: ignore[index]

    def close(self) -> None:
        self.llm.close()


def _passes(reference: Any, answer: str) -> bool:
    return normalize(str(reference or "")) in normalize(answer)


def _measure(
    runner: _Runner, examples: list[Conversation], cases: list[Case], max_new_tokens: int
) -> tuple[list[float], list[bool], list[str]]:
    losses = [runner.loss(msgs) for msgs in examples]
    requests = [(msgs[:-1], max_new_tokens) for msgs in examples] + [(c.messages, c.max_tokens) for c in cases]
    answers = runner.generate_many(requests)
    passes = [_passes(msgs[-1].get("content"), a) for msgs, a in zip(examples, answers, strict=False)]
    return losses, passes, answers[len(examples) :]


def compare(base: tuple[list[float], list[bool]], tuned: tuple[list[float], list[bool]]) -> dict[str, Any]:
    """DESIGN.md §2: base, tuned (each {loss, pass_rate, pass_rate_ci}), improvement_significant."""
    (base_loss, base_pass), (tuned_loss, tuned_pass) = base, tuned
    n = len(base_loss)
    loss_gain = paired_bootstrap([b - t for b, t in zip(base_loss, tuned_loss, strict=True)], [0.0] * n)
    pass_gain = paired_bootstrap(tuned_pass, base_pass)

    def side(losses: list[float], passes: list[bool]) -> dict[str, Any]:
        return {"loss": sum(losses) / n, "pass_rate": sum(passes) / n, "pass_rate_ci": wilson(sum(passes), n)}

    return {
        "examples": n,
        "base": side(base_loss, base_pass),
        "tuned": side(tuned_loss, tuned_pass),
        "loss_reduction": loss_gain,
        "pass_rate_gain": pass_gain,
        # Better on held-out data at 95 %: lower loss, and pass rate not worse.
        "improvement_significant": loss_gain["ci_low"] > 0 and pass_gain["ci_low"] >= 0,
    }


def compare_suite(cases: list[Case], base_out: list[str], tuned_out: list[str]) -> dict[str, Any]:
    """Suite pass rates of both sides; the base is the reference an `agreement` check compares with."""
    base = [all(evaluate_case(c, o, o).values()) for c, o in zip(cases, base_out, strict=True)]
    tuned = [all(evaluate_case(c, t, b).values()) for c, t, b in zip(cases, tuned_out, base_out, strict=True)]
    n = len(cases)
    change = paired_bootstrap(tuned, base)
    by_category: dict[str, dict[str, int]] = {}
    for c, b, t in zip(cases, base, tuned, strict=True):
        row = by_category.setdefault(c.category, {"cases": 0, "base_passed": 0, "tuned_passed": 0})
        row["cases"] += 1
        row["base_passed"] += b
        row["tuned_passed"] += t
    return {
        "cases": n,
        "base": {"pass_rate": sum(base) / n, "pass_rate_ci": wilson(sum(base), n)},
        "tuned": {"pass_rate": sum(tuned) / n, "pass_rate_ci": wilson(sum(tuned), n)},
        "pass_rate_change": change,
        "regression_significant": change["ci_high"] < 0,
        "by_category": by_category,
        "items": [
            {"id": c.id, "base_passed": b, "tuned_passed": t, "base_output": bo, "tuned_output": to}
            for c, b, t, bo, to in zip(cases, base, tuned, base_out, tuned_out, strict=True)
        ],
    }


def _held_out(examples: list[Conversation]) -> list[Conversation]:
    return [m for m in examples if m and m[-1].get("role") == "assistant"]


def _result(
    base: tuple[list[float], list[bool], list[str]],
    tuned: tuple[list[float], list[bool], list[str]],
    cases: list[Case],
) -> dict[str, Any]:
    r = compare(base[:2], tuned[:2])
    if cases:
        r["suite"] = compare_suite(cases, base[2], tuned[2])
    return r


def evaluate_adapter(
    spec: ModelSpec,
    adapter: Path,
    examples: list[Conversation],
    cases: list[Case] | None = None,
    max_new_tokens: int = 32,
) -> dict[str, Any]:
    from peft import PeftModel

    examples, cases = _held_out(examples), cases or []
    model, tok = load_hf(spec)
    with quiet_libraries():
        peft_model = PeftModel.from_pretrained(model, str(adapter))
    peft_model.eval()
    base = _measure(_Transformers(peft_model, tok, spec, False), examples, cases, max_new_tokens)
    tuned = _measure(_Transformers(peft_model, tok, spec, True), examples, cases, max_new_tokens)
    return _result(base, tuned, cases) | {"engine": "transformers"}


@contextmanager
def _llamacpp(model_path: Path, lora: Path | None, spec: ModelSpec) -> Iterator[_LlamaCpp]:
    runner = _LlamaCpp(model_path, lora, spec)
    try:
        yield runner
    finally:
        runner.close()


def evaluate_adapter_llamacpp(
    spec: ModelSpec,
    adapter: Path,
    examples: list[Conversation],
    cases: list[Case] | None = None,
    max_new_tokens: int = 32,
) -> dict[str, Any]:
    """The base GGUF alone vs the base GGUF with adapter/adapter.gguf (converted first if missing)."""
    from selfhost.models.resolve import local_gguf_path

    examples, cases = _held_out(examples), cases or []
    if spec.path is None or spec.path.is_dir():
        raise UsageError(
            f"the llama.cpp engine needs the base model as a GGUF file; {spec.name} is not one",
            "use --engine transformers, or `tune export --adapter DIR --merge OUT` and serve OUT's GGUF",
        )
    base_gguf = local_gguf_path(spec)
    lora = adapter / "adapter.gguf"
    if not lora.exists():
        from selfhost.tune.export import export_adapter_gguf

        export_adapter_gguf(spec, adapter, lora)
    with _llamacpp(base_gguf, None, spec) as runner:
        base = _measure(runner, examples, cases, max_new_tokens)
    with _llamacpp(base_gguf, lora, spec) as runner:
        tuned = _measure(runner, examples, cases, max_new_tokens)
    return _result(base, tuned, cases) | {"engine": "llama.cpp", "adapter_gguf": str(lora)}
