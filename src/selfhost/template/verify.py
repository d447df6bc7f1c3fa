"""Prove what a running server feeds the model: the same conversation through its chat endpoint and,
rendered by selfhost from the model's official template, through its raw completion endpoint.
Same prompt token count and the same greedy output mean the server applies the template correctly."""

from __future__ import annotations

import difflib
from typing import Any

from selfhost.errors import BackendError
from selfhost.models.spec import ModelSpec
from selfhost.template.conversations import CONVERSATIONS
from selfhost.template.render import render_chat

__all__ = ["PROBE_CONVERSATION", "verify_server", "diff_templates"]

PROBE_CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
]


def _engine_render(backend: Any, messages: list[dict[str, Any]], model: str | None) -> tuple[str, str] | None:
    """(endpoint, prompt) the server's chat endpoint would build, from its own render endpoint: llama-server's
    /apply-template (text), or vLLM's chat /tokenize (token ids of the rendered chat, turned back into text by its
    own /detokenize); None where the server has neither."""
    try:
        status, out = backend.post("/apply-template", {"messages": messages})
        if status == 200 and isinstance(out, dict) and "prompt" in out:
            return "/apply-template", str(out["prompt"])
        named = {"model": model} if model else {}
        chat = {"messages": messages, "add_generation_prompt": True, "add_special_tokens": False, **named}
        status, out = backend.post("/tokenize", chat)
        if status != 200 or not isinstance(out, dict) or not out.get("tokens"):
            return None
        status, text = backend.post("/detokenize", {"tokens": out["tokens"], **named})
        if status == 200 and isinstance(text, dict) and "prompt" in text:
            return "/tokenize (chat)", str(text["prompt"])
    except BackendError:
        return None
    return None


def _first_divergence(a: str, b: str) -> int | None:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def verify_server(
    url: str,
    spec: ModelSpec,
    messages: list[dict[str, Any]] | None = None,
    model: str | None = None,
    max_tokens: int = 24,
    api_key: str | None = None,
    api: str = "openai",
) -> dict[str, Any]:
    if not spec.chat_template:
        raise BackendError(
            f"{spec.name} has no chat template to verify against",
            "pass the model file the server loaded (a GGUF or HF directory with its template)",
        )
    url = url.rstrip("/")
    messages = messages or PROBE_CONVERSATION
    tok = spec.tokenizer
    rendered = render_chat(
        spec.chat_template, messages, add_generation_prompt=True, bos_token=tok.bos_token, eos_token=tok.eos_token
    )
    from selfhost.backends.base import GenerationParams, create_backend

    backend: Any = create_backend(api, url=url, model=model, api_key=api_key, timeout_s=300.0)
    params = GenerationParams(max_tokens=max_tokens)
    sides = []
    for kind, payload in (("chat", messages), ("raw", rendered)):
        once = backend.request_once(kind, payload, params)
        if once["error"] is not None:
            raise BackendError(f"{url} answered HTTP {once['status']}: {once['error'][:200]}")
        sides.append(once)
    (chat_text, chat_tokens), (raw_text, raw_tokens) = ((o["text"], o["prompt_tokens"]) for o in sides)
    agree_tokens = chat_tokens is not None and chat_tokens == raw_tokens
    agree_text = chat_text == raw_text
    out: dict[str, Any] = {
        "url": url,
        "api": api,
        "rendered_prompt": rendered,
        "chat": {"prompt_tokens": chat_tokens, "text": chat_text},
        "raw_completion": {"prompt_tokens": raw_tokens, "text": raw_text},
        "prompt_tokens_agree": agree_tokens,
        "outputs_agree": agree_text,
        "agree": agree_tokens and agree_text,
    }
    if not agree_text:
        out["first_divergence_char"] = _first_divergence(chat_text, raw_text)
    if not agree_tokens and chat_tokens is not None and raw_tokens is not None:
        out["prompt_token_difference"] = chat_tokens - raw_tokens
    if api != "ollama":
        found = _engine_render(backend, messages, model)
        if found is not None:  # the engine's own render of the chat, where it has an endpoint for it
            endpoint, engine = found
            same = engine == rendered
            out["engine_render"] = {"endpoint": endpoint, "prompt": engine, "same_as_selfhost": same}
            if not same:
                out["engine_render"]["first_divergence_char"] = _first_divergence(engine, rendered)
            out["agree"] = out["agree"] and same
    return out


def diff_templates(a: str, b: str, special: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Render both templates on the standard conversations; a unified diff wherever they differ."""
    out = []
    for name, conv in CONVERSATIONS.items():
        renders = []
        for t in (a, b):
            try:
                renders.append(
                    render_chat(
                        t,
                        conv["messages"],
                        tools=conv.get("tools"),
                        add_generation_prompt=conv.get("add_generation_prompt", False),
                        continue_final_message=conv.get("continue_final_message", False),
                        bos_token=(special or {}).get("bos_token"),
                        eos_token=(special or {}).get("eos_token"),
                    )
                )
            except Exception as exc:  # a refusal is a result here, shown as such
                renders.append(f"<error: {exc}>")
        same = renders[0] == renders[1]
        diff = (
            ""
            if same
            else "".join(difflib.unified_diff(renders[0].splitlines(True), renders[1].splitlines(True), "A", "B"))
        )
        out.append({"conversation": name, "same": same, "diff": diff})
    return out
