"""Label-mask preview: which tokens of a training example a trainer using the chat template would learn from
(assistant turns only), and whether each assistant turn's end-of-turn token is among them — the token the
model must learn to stop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from selfhost.backends.tokenizer import Tokenizer
from selfhost.errors import UsageError
from selfhost.template.lint import END_OF_TURN
from selfhost.template.render import render_chat

__all__ = ["MaskedToken", "mask_preview"]


@dataclass(frozen=True)
class MaskedToken:
    text: str
    trained: bool


def _render(tok: Tokenizer, messages: list[dict[str, Any]], gen: bool) -> str:
    spec = tok.spec
    if not spec.chat_template:
        raise UsageError(f"{spec.name} has no chat template", "pass --model with a chat model")
    return render_chat(
        spec.chat_template,
        messages,
        add_generation_prompt=gen,
        bos_token=spec.tokenizer.bos_token,
        eos_token=spec.tokenizer.eos_token,
    )


def mask_preview(tok: Tokenizer, messages: list[dict[str, Any]]) -> dict[str, Any]:
    full = _render(tok, messages, gen=False)
    spans: list[tuple[int, int]] = []
    for i, m in enumerate(messages):
        if m.get("role") != "assistant":
            continue
        start = len(_render(tok, messages[:i], gen=True)) if i else 0
        end = len(_render(tok, messages[: i + 1], gen=False))
        spans.append((start, end))
    ids = tok.encode(full, add_special=bool(tok.spec.tokenizer.add_bos_token), parse_special=True)
    tokens: list[MaskedToken] = []
    pos = 0
    for t in ids:
        piece = tok.decode([t], special=True)
        trained = any(s <= pos < e for s, e in spans)
        tokens.append(MaskedToken(piece, trained))
        pos += len(piece)
    eos = tok.spec.tokenizer.eos_token
    markers = [m for m in (*END_OF_TURN, eos) if m]
    eot_trained = bool(spans) and all(any(m in full[s:e] for m in markers) for s, e in spans)
    return {
        "tokens": len(tokens),
        "trained_tokens": sum(t.trained for t in tokens),
        "assistant_turns": len(spans),
        "end_of_turn_trained": eot_trained,
        "masked": [{"text": t.text, "trained": t.trained} for t in tokens],
    }
