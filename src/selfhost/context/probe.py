"""Find a server's effective context window by bisection with prompts of known token counts, and how it
behaves past it: llama.cpp-style servers refuse (HTTP 400, e.g. llama-server's exceed_context_size_error);
Ollama truncates silently (its `prompt_eval_count` comes back smaller than what was sent, still 200 OK)."""

from __future__ import annotations

from typing import Any

from selfhost.backends.tokenizer import Tokenizer
from selfhost.errors import BackendError

__all__ = ["probe_context", "prompt_of"]


def prompt_of(tok: Tokenizer, n: int) -> str:
    """A prompt of exactly n tokens (by the model's tokenizer)."""
    ids = tok.encode(" word" * n)
    text = tok.decode(ids[:n])
    while len(tok.encode(text)) > n:
        text = text[:-1]
    return text


def probe_context(
    url: str,
    tok: Tokenizer,
    api: str = "openai",
    model: str | None = None,
    upper: int | None = None,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    url = url.rstrip("/")
    hi = upper or tok.spec.context_length or 131072
    attempts: list[dict[str, Any]] = []

    from selfhost.backends.base import GenerationParams, create_backend

    backend: Any = create_backend(api, url=url, model=model, timeout_s=timeout_s)

    def send(n: int) -> dict[str, Any]:
        prompt = prompt_of(tok, n)
        sent = len(tok.encode(prompt))
        once = backend.request_once("raw", prompt, GenerationParams(max_tokens=1))
        status, counted = once["status"], once["prompt_tokens"]
        out = once["error"]
        a = {
            "sent_tokens": sent,
            "status": status,
            "server_prompt_tokens": counted,
            "error": out,
        }
        # Truncated: accepted, but the server says it evaluated fewer tokens than it was sent (a BOS may add one).
        a["truncated"] = status == 200 and counted is not None and counted < sent
        a["accepted_whole"] = status == 200 and not a["truncated"]
        attempts.append(a)
        return a

    first = send(16)
    if not first["accepted_whole"]:
        raise BackendError(f"{url} did not accept even a 16-token prompt: {first['error'] or first['status']}")
    top = send(hi)
    if top["accepted_whole"]:
        return {
            "url": url,
            "effective_context": hi,
            "behaviour": "accepted everything up to the probe limit",
            "probe_limit": hi,
            "attempts": attempts,
        }
    lo = 16
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if send(mid)["accepted_whole"]:
            lo = mid
        else:
            hi = mid
    over = next(a for a in reversed(attempts) if not a["accepted_whole"])
    behaviour = "truncates silently" if over["truncated"] else f"refuses (HTTP {over['status']})"
    return {
        "url": url,
        "effective_context": lo,
        "behaviour": behaviour,
        "silent_truncation": bool(over["truncated"]),
        "example_over_limit": over,
        "tokens_counted_with": tok.spec.name,
        "attempts": attempts,
    }
