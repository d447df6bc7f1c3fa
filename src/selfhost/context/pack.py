"""Fit a request into n_ctx − reserve: drop the oldest history turns (keeping the system prompt and the last
user turn), then the lowest-ranked chunks, trimming the last kept chunk at a sentence boundary to use the room
left. Every decision is checked with the real tokenizer on the rendered request, so it never overflows."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from selfhost.backends.tokenizer import Tokenizer
from selfhost.context.budget import Request, build_messages
from selfhost.errors import UsageError

__all__ = ["PackResult", "pack", "chunk_text", "split_sentences"]

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n{2,}")


def split_sentences(text: str) -> list[str]:
    parts = [p for p in _SENTENCE_END.split(text) if p.strip()]
    return parts or ([text] if text else [])


@dataclass
class PackResult:
    request: Request
    prompt_tokens: int
    limit: int
    dropped_history: int = 0
    dropped_chunks: list[int] = field(default_factory=list)  # original indices, lowest rank first
    trimmed_chunk: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "limit": self.limit,
            "fits": self.prompt_tokens <= self.limit,
            "dropped_history_messages": self.dropped_history,
            "dropped_chunks": self.dropped_chunks,
            "trimmed_chunk": self.trimmed_chunk,
            "kept_chunks": len(self.request.chunks),
            "messages": build_messages(self.request),
        }


def pack(tok: Tokenizer, req: Request, n_ctx: int, reserved_output: int) -> PackResult:
    limit = n_ctx - reserved_output
    if limit <= 0:
        raise UsageError(f"reserving {reserved_output} answer tokens leaves nothing of n_ctx {n_ctx}")

    def size(r: Request) -> int:
        return tok.count_chat(build_messages(r), r.tools)

    cur = replace(req, history=list(req.history), chunks=list(req.chunks))
    result = PackResult(cur, size(cur), limit)
    # 1. Oldest history first, a whole exchange at a time (never leave an assistant turn without its user turn).
    while result.prompt_tokens > limit and cur.history:
        cut = 2 if len(cur.history) >= 2 and cur.history[0].get("role") == "user" else 1
        cur.history = cur.history[cut:]
        result.dropped_history += cut
        result.prompt_tokens = size(cur)
    # 2. Lowest-ranked chunks, then trim the last one kept at a sentence boundary to fill what is left.
    index = list(range(len(cur.chunks)))
    while result.prompt_tokens > limit and cur.chunks:
        last = cur.chunks.pop()
        result.dropped_chunks.append(index.pop())
        result.prompt_tokens = size(cur)
        if result.prompt_tokens <= limit:
            sentences = split_sentences(last)
            lo, hi = 0, len(sentences)  # largest prefix of sentences that still fits
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if size(replace(cur, chunks=[*cur.chunks, " ".join(sentences[:mid])])) <= limit:
                    lo = mid
                else:
                    hi = mid - 1
            if lo > 0:
                cur.chunks.append(" ".join(sentences[:lo]))
                result.trimmed_chunk = result.dropped_chunks.pop()
                index.append(result.trimmed_chunk)
                result.prompt_tokens = size(cur)
    if result.prompt_tokens > limit:
        raise UsageError(
            f"the system prompt and the question alone need {result.prompt_tokens} tokens; the limit is {limit} "
            f"(n_ctx {n_ctx} − {reserved_output} reserved for the answer)",
            "shorten the system prompt or question, reserve fewer answer tokens, or raise n_ctx",
        )
    result.request = cur
    return result


def chunk_text(tok: Tokenizer, text: str, max_tokens: int, overlap: int = 0) -> list[str]:
    """Chunks of at most `max_tokens` tokens on sentence boundaries (a longer sentence is cut by tokens),
    each starting with up to `overlap` tokens of the previous chunk's last sentences."""
    if max_tokens <= 0 or overlap < 0 or overlap >= max_tokens:
        raise UsageError(f"chunk size {max_tokens} and overlap {overlap}: need 0 ≤ overlap < size")
    pieces: list[str] = []
    for s in split_sentences(text):
        ids = tok.encode(s)
        if len(ids) <= max_tokens:
            pieces.append(s)
        else:
            pieces.extend(tok.decode(ids[i : i + max_tokens]) for i in range(0, len(ids), max_tokens))
    chunks: list[str] = []
    current: list[str] = []
    for p in pieces:
        candidate = " ".join([*current, p])
        if current and tok.count(candidate) > max_tokens:
            chunks.append(" ".join(current))
            carry: list[str] = []
            for prev in reversed(current):  # overlap: the previous chunk's tail, whole sentences only
                if tok.count(" ".join([prev, *carry, p])) > max_tokens or tok.count(" ".join([prev, *carry])) > overlap:
                    break
                carry.insert(0, prev)
            current = [*carry, p]
        else:
            current.append(p)
    if current:
        chunks.append(" ".join(current))
    return chunks
