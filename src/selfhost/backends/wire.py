"""Request bodies and stream parsing for the two wire formats: OpenAI-compatible SSE and Ollama NDJSON.

OpenAI (https://platform.openai.com/docs/api-reference/chat/streaming): `data: {json}` events ending with
`data: [DONE]`; a chunk's `choices[0].delta` carries `role`, `content`, `reasoning_content` (vLLM, SGLang,
llama-server) or `reasoning`, `tool_calls`; with `stream_options.include_usage` the last chunk has `usage` and
no choices. Errors arrive as `{"error": {...}}` events. Ollama (docs/api.md): one JSON object per line,
`message.content` / `message.thinking` (chat) or `response` (generate), `done: true` with `eval_count`,
`prompt_eval_count` and `*_duration` in nanoseconds, or `{"error": "..."}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Api", "Chunk", "build_request", "parse_openai_event", "parse_ollama_line", "SSEDecoder"]

Api = Literal["openai-chat", "openai-completions", "ollama-chat", "ollama-generate"]


@dataclass
class Chunk:
    content: str = ""
    reasoning: str = ""
    tool_call: bool = False
    role_only: bool = False
    n_tokens: int | None = None  # when the chunk says (logprobs entries)
    usage: dict[str, Any] | None = None
    done: bool = False
    finish_reason: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def has_output(self) -> bool:
        return bool(self.content or self.reasoning or self.tool_call)


def build_request(
    api: Api,
    model: str,
    prompt: str | list[dict[str, Any]],
    max_tokens: int,
    ignore_eos: bool = True,
    temperature: float = 0.0,
) -> tuple[str, dict[str, Any]]:
    """(path, JSON body) for one streaming request."""
    messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    if api in ("openai-chat", "openai-completions"):
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": temperature,
        }
        if ignore_eos:
            body["ignore_eos"] = True  # vLLM/SGLang/llama-server extension; others ignore unknown fields
        if api == "openai-chat":
            return "/v1/chat/completions", body | {"messages": messages}
        text = prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in messages)
        return "/v1/completions", body | {"prompt": text}
    options = {"num_predict": max_tokens, "temperature": temperature}
    if api == "ollama-chat":
        return "/api/chat", {"model": model, "messages": messages, "stream": True, "options": options}
    text = prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in messages)
    return "/api/generate", {"model": model, "prompt": text, "stream": True, "options": options}


class SSEDecoder:
    """Incremental Server-Sent Events decoder: feed bytes, get the `data` payload of each complete event.
    Handles events split across reads, CRLF line ends, multi-line data and comments."""

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[bytes] = []

    def feed(self, raw: bytes) -> list[str]:
        self._buf += raw
        out: list[str] = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                return out
            line = self._buf[:nl].rstrip(b"\r")
            self._buf = self._buf[nl + 1 :]
            if not line:
                if self._data:
                    out.append(b"\n".join(self._data).decode("utf-8", errors="replace"))
                    self._data = []
            elif line.startswith(b"data:"):
                self._data.append(line[5:].lstrip(b" ") if line[5:6] == b" " else line[5:])
            # other fields (event:, id:, retry:) and comments (":") carry nothing we need

    def flush(self) -> list[str]:
        out = [b"\n".join(self._data).decode("utf-8", errors="replace")] if self._data else []
        self._data = []
        return out


def parse_openai_event(data: str) -> Chunk:
    if data.strip() == "[DONE]":
        return Chunk(done=True)
    try:
        obj = json.loads(data)
    except json.JSONDecodeError:
        return Chunk(error=f"malformed SSE data: {data[:80]!r}")
    if not isinstance(obj, dict):
        return Chunk(error=f"unexpected SSE payload: {data[:80]!r}")
    if "error" in obj:
        err = obj["error"]
        return Chunk(error=str(err.get("message", err) if isinstance(err, dict) else err))
    ch = Chunk(usage=obj.get("usage") or None)
    choices = obj.get("choices") or []
    if choices:
        c = choices[0]
        ch.finish_reason = c.get("finish_reason")
        delta = c.get("delta")
        if delta is None:  # /v1/completions
            ch.content = c.get("text") or ""
        else:
            ch.content = delta.get("content") or ""
            ch.reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
            ch.tool_call = bool(delta.get("tool_calls"))
            ch.role_only = bool(delta.get("role")) and not ch.has_output
        lp = c.get("logprobs")
        if isinstance(lp, dict) and isinstance(lp.get("content"), list):
            ch.n_tokens = len(lp["content"])
        elif isinstance(lp, dict) and isinstance(lp.get("tokens"), list):
            ch.n_tokens = len(lp["tokens"])
    return ch


def parse_ollama_line(line: str) -> Chunk:
    if not line.strip():
        return Chunk()
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return Chunk(error=f"malformed NDJSON line: {line[:80]!r}")
    if "error" in obj:
        return Chunk(error=str(obj["error"]))
    msg = obj.get("message") or {}
    ch = Chunk(
        content=msg.get("content") or obj.get("response") or "",
        reasoning=msg.get("thinking") or obj.get("thinking") or "",
        tool_call=bool(msg.get("tool_calls")),
    )
    if obj.get("done"):
        ch.done = True
        ch.finish_reason = obj.get("done_reason")
        ch.usage = {"prompt_tokens": obj.get("prompt_eval_count"), "completion_tokens": obj.get("eval_count")}
        ch.extra = {
            k: obj[k] for k in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration") if k in obj
        }
    return ch
