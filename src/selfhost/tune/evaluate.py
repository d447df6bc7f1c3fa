"""Base vs tuned on held-out conversations: loss on assistant tokens and whether the greedy answer contains the
reference answer, each per example, so the difference gets a paired bootstrap interval."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selfhost.data.check import normalize
from selfhost.models.spec import ModelSpec
from selfhost.quant.stats import paired_bootstrap, wilson
from selfhost.tune.train import _quiet, _require, encode_example, load_hf

__all__ = ["evaluate_adapter"]


def _score(
    model: Any, tok: Any, spec: ModelSpec, examples: list[list[dict[str, Any]]], max_new_tokens: int
) -> tuple[list[float], list[bool]]:
    torch = _require()
    from selfhost.template.render import render_chat

    losses, passes = [], []
    model.eval()
    with torch.no_grad():
        for msgs in examples:
            ids, labels = encode_example(tok, spec, msgs, 1024)
            out = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels]))
            losses.append(float(out.loss))
            prompt = render_chat(
                spec.chat_template or "",
                msgs[:-1],
                add_generation_prompt=True,
                bos_token=spec.tokenizer.bos_token,
                eos_token=spec.tokenizer.eos_token,
            )
            enc = tok(prompt, add_special_tokens=bool(spec.tokenizer.add_bos_token), return_tensors="pt")
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
            answer = tok.decode(gen[0][enc["input_ids"].shape[1] :], skip_special_tokens=True)
            passes.append(normalize(str(msgs[-1].get("content") or "")) in normalize(answer))
    return losses, passes


def evaluate_adapter(
    spec: ModelSpec, adapter: Path, examples: list[list[dict[str, Any]]], max_new_tokens: int = 32
) -> dict[str, Any]:
    """DESIGN.md §2: base, tuned (each {loss, pass_rate, pass_rate_ci}), improvement_significant."""
    from peft import PeftModel

    examples = [m for m in examples if m and m[-1].get("role") == "assistant"]
    model, tok = load_hf(spec)
    base_loss, base_pass = _score(model, tok, spec, examples, max_new_tokens)
    with _quiet():
        tuned_model = PeftModel.from_pretrained(model, str(adapter))
    tuned_loss, tuned_pass = _score(tuned_model, tok, spec, examples, max_new_tokens)
    n = len(examples)
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
