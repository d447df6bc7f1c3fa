"""Base vs tuned on held-out conversations: loss on assistant tokens and whether the greedy answer contains the
reference answer, each per example, so the difference gets a paired bootstrap interval.

Two engines give the same contract: transformers + PEFT (the adapter as trained), and llama.cpp with the adapter
converted to GGUF (the adapter as it will be served), so a conversion or template problem shows up as a gap
between the two."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from selfhost.data.check import normalize
from selfhost.models.spec import ModelSpec
from selfhost.quant.stats import paired_bootstrap, wilson
from selfhost.template.render import render_chat
from selfhost.tune.train import _quiet, _require, encode_example, load_hf

__all__ = ["evaluate_adapter", "evaluate_adapter_llamacpp", "compare"]

Scores = tuple[list[float], list[bool]]


def _render(spec: ModelSpec, messages: list[dict[str, Any]], generation_prompt: bool) -> str:
    t = spec.tokenizer
    return render_chat(
        spec.chat_template or "",
        messages,
        add_generation_prompt=generation_prompt,
        bos_token=t.bos_token,
        eos_token=t.eos_token,
    )


def _passes(reference: Any, answer: str) -> bool:
    return normalize(str(reference or "")) in normalize(answer)


def _score(model: Any, tok: Any, spec: ModelSpec, examples: list[list[dict[str, Any]]], max_new_tokens: int) -> Scores:
    torch = _require()
    losses, passes = [], []
    model.eval()
    with torch.no_grad():
        for msgs in examples:
            ids, labels = encode_example(tok, spec, msgs, 1024)
            out = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels]))
            losses.append(float(out.loss))
            prompt = _render(spec, msgs[:-1], True)
            enc = tok(prompt, add_special_tokens=bool(spec.tokenizer.add_bos_token), return_tensors="pt")
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
            answer = tok.decode(gen[0][enc["input_ids"].shape[1] :], skip_special_tokens=True)
            passes.append(_passes(msgs[-1].get("content"), answer))
    return losses, passes


def _score_llamacpp(
    model_path: Path, lora: Path | None, spec: ModelSpec, examples: list[list[dict[str, Any]]], max_new_tokens: int
) -> Scores:
    """The same two measures through llama.cpp. Assistant tokens are those between the token counts of the
    rendered prefix before each assistant turn and the render through its end: chat templates put special tokens
    at those boundaries, so the prefix tokenizes the same inside the whole."""
    import llama_cpp

    from selfhost.backends.llamacpp import _LogCapture

    _LogCapture.start()
    try:
        llm = llama_cpp.Llama(
            model_path=str(model_path),
            lora_path=str(lora) if lora else None,
            n_ctx=2048,
            logits_all=True,
            seed=0,
            verbose=False,
        )
    finally:
        _LogCapture.stop()
    add_bos = bool(spec.tokenizer.add_bos_token)

    def tokens(text: str) -> list[int]:
        return list(llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True))

    losses, passes = [], []
    try:
        for msgs in examples:
            ids = tokens(_render(spec, msgs, False))
            trained: list[int] = []
            for i, m in enumerate(msgs):
                if m.get("role") == "assistant":
                    start = len(tokens(_render(spec, msgs[:i], True))) if i else 0
                    trained.extend(range(max(start, 1), len(tokens(_render(spec, msgs[: i + 1], False)))))
            llm.reset()
            llm.eval(ids)
            logits = np.array(llm.scores[: len(ids)], dtype=np.float64)
            logits -= logits.max(axis=1, keepdims=True)
            logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            losses.append(float(-np.mean([logp[p - 1, ids[p]] for p in trained])))
            llm.reset()
            out = llm.create_completion(
                tokens(_render(spec, msgs[:-1], True)), max_tokens=max_new_tokens, temperature=0.0, seed=0
            )
            passes.append(_passes(msgs[-1].get("content"), str(out["choices"][0]["text"])))  # type: ignore[index]
    finally:
        llm.close()
    return losses, passes


def compare(base: Scores, tuned: Scores) -> dict[str, Any]:
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


def _held_out(examples: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    return [m for m in examples if m and m[-1].get("role") == "assistant"]


def evaluate_adapter(
    spec: ModelSpec, adapter: Path, examples: list[list[dict[str, Any]]], max_new_tokens: int = 32
) -> dict[str, Any]:
    from peft import PeftModel

    examples = _held_out(examples)
    model, tok = load_hf(spec)
    base = _score(model, tok, spec, examples, max_new_tokens)
    with _quiet():
        tuned_model = PeftModel.from_pretrained(model, str(adapter))
    return compare(base, _score(tuned_model, tok, spec, examples, max_new_tokens)) | {"engine": "transformers"}


def evaluate_adapter_llamacpp(
    spec: ModelSpec, adapter: Path, examples: list[list[dict[str, Any]]], max_new_tokens: int = 32
) -> dict[str, Any]:
    """The base GGUF alone vs the base GGUF with adapter/adapter.gguf (converted first if missing)."""
    from selfhost.models.resolve import local_gguf_path

    examples = _held_out(examples)
    base_gguf = local_gguf_path(spec)
    lora = adapter / "adapter.gguf"
    if not lora.exists():
        from selfhost.tune.export import export_adapter_gguf

        export_adapter_gguf(spec, adapter, lora)
    base = _score_llamacpp(base_gguf, None, spec, examples, max_new_tokens)
    tuned = _score_llamacpp(base_gguf, lora, spec, examples, max_new_tokens)
    return compare(base, tuned) | {"engine": "llama.cpp", "adapter_gguf": str(lora)}
