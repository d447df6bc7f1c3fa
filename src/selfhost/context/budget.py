"""Where a request's tokens go: system, tools, retrieved chunks, history, question, template overhead and the
answer reserved, against n_ctx."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from selfhost.backends.tokenizer import Tokenizer

__all__ = ["Request", "build_messages", "budget"]


@dataclass
class Request:
    question: str
    system: str | None = None
    chunks: list[str] = field(default_factory=list)  # retrieved passages, best first
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier user/assistant turns, oldest first
    tools: list[dict[str, Any]] | None = None


def user_content(question: str, chunks: Sequence[str]) -> str:
    if not chunks:
        return question
    context = "\n\n".join(chunks)
    return f"Context:\n{context}\n\nQuestion: {question}"


def build_messages(req: Request) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = []
    if req.system:
        msgs.append({"role": "system", "content": req.system})
    msgs.extend(req.history)
    msgs.append({"role": "user", "content": user_content(req.question, req.chunks)})
    return msgs


def budget(tok: Tokenizer, req: Request, n_ctx: int, reserved_output: int) -> dict[str, Any]:
    """DESIGN.md §2: n_ctx, reserved_output, parts (name → tokens), total_tokens, fits."""
    msgs = build_messages(req)
    total_prompt = tok.count_chat(msgs, req.tools)
    parts: dict[str, int] = {}
    if req.system:
        parts["system"] = tok.count(req.system)
    if req.tools:
        parts["tools"] = total_prompt - tok.count_chat(msgs, None)
    if req.chunks:
        parts["chunks"] = tok.count(user_content(req.question, req.chunks)) - tok.count(req.question)
    if req.history:
        parts["history"] = sum(tok.count(str(m.get("content") or "")) for m in req.history)
    parts["question"] = tok.count(req.question)
    parts["template_overhead"] = total_prompt - sum(parts.values())
    total = total_prompt + reserved_output
    return {
        "n_ctx": n_ctx,
        "reserved_output": reserved_output,
        "prompt_tokens": total_prompt,
        "parts": parts,
        "chunk_tokens": [tok.count(c) for c in req.chunks],
        "total_tokens": total,
        "fits": total <= n_ctx,
        "remaining": n_ctx - total,
    }
