"""Backends over HTTP: any OpenAI-compatible server (vLLM, SGLang, llama-server, TGI, LM Studio,
llama-cpp-python) and Ollama's native API. Synchronous (urllib) — for capabilities that talk to a
model one request at a time; `selfhost bench` has its own asynchronous client for load."""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

from selfhost.backends.base import GenerationParams, Message, StreamEvent, register_backend
from selfhost.backends.wire import Chunk, SSEDecoder, parse_ollama_line, parse_openai_event
from selfhost.errors import BackendError

__all__ = ["OpenAIHttpBackend", "OllamaHttpBackend"]


class _HttpBase:
    kind = "http"
    capabilities: frozenset[str] = frozenset({"chat", "completion"})

    def __init__(self, url: str, model: str | None = None, api_key: str | None = None, timeout_s: float = 600.0):
        self.url = url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout_s = timeout_s
        self.model = model or self._first_model()

    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h

    def _request(self, path: str, body: dict[str, Any] | None) -> urllib.request.Request:
        data = None if body is None else json.dumps(body).encode()
        method = "GET" if body is None else "POST"
        return urllib.request.Request(self.url + path, data=data, headers=self._headers(), method=method)

    def _unreachable(self, path: str, exc: BaseException) -> BackendError:
        if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
            return BackendError(
                f"cannot connect to {self.url}: {exc.reason}", "is the server running? start one with `selfhost serve`"
            )
        return BackendError(f"{self.url}{path}: the connection failed mid-request ({exc or type(exc).__name__})")

    def _open(self, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            return urllib.request.urlopen(self._request(path, body), timeout=self.timeout_s)
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode("utf-8", errors="replace")
            hint = "pass --api-key or set OPENAI_API_KEY" if exc.code in (401, 403) else "check the URL and model"
            raise BackendError(f"{self.url}{path} answered HTTP {exc.code}: {detail}", hint) from None
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(path, exc) from None

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any] | str]:
        """POST a JSON body: (HTTP status, the JSON object answered, or the error text of a refusal). A refusal is
        an answer (the context probe looks for them); a connection that fails, or a reply that is not a JSON
        object, raises BackendError."""
        try:
            with urllib.request.urlopen(self._request(path, body), timeout=self.timeout_s) as r:
                status, out = r.status, json.load(r)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()[:300].decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(path, exc) from None
        except ValueError as exc:
            raise BackendError(
                f"{self.url}{path} did not answer with JSON ({exc})", "is it an OpenAI-compatible server?"
            ) from None
        if not isinstance(out, dict):
            raise BackendError(f"{self.url}{path} did not answer with a JSON object", "is it the right server?")
        return status, out

    def request_once(self, kind: str, payload: Any, params: GenerationParams) -> dict[str, Any]:
        """One request without streaming: kind "chat" (payload: messages, the server applies its template) or
        "raw" (payload: a prompt taken as is). {"status", "text", "prompt_tokens", "error"}; a refusal is
        returned with its status and error text."""
        path, body = self._once_body(kind, payload, params)
        status, out = self.post(path, body)
        if isinstance(out, str):
            return {"status": status, "text": None, "prompt_tokens": None, "error": out}
        text, prompt_tokens = self._once_result(kind, out)
        return {"status": status, "text": text, "prompt_tokens": prompt_tokens, "error": None}

    def _once_body(self, kind: str, payload: Any, params: GenerationParams) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def _once_result(self, kind: str, out: dict[str, Any]) -> tuple[str, int | None]:
        raise NotImplementedError

    def _json(self, path: str, body: dict[str, Any] | None = None) -> Any:
        with self._open(path, body) as r:
            return json.load(r)

    def _first_model(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        pass


@register_backend("openai")
class OpenAIHttpBackend(_HttpBase):
    kind = "openai"

    def served_models(self) -> list[str]:
        """The model names GET /v1/models lists."""
        return [str(m.get("id")) for m in self._json("/v1/models").get("data") or []]

    def _first_model(self) -> str:
        served = self.served_models()
        if not served:
            raise BackendError(f"{self.url} serves no models")
        return served[0]

    def _body(self, params: GenerationParams) -> dict[str, Any]:
        # repeat_penalty is llama.cpp's servers' own name; llama-cpp-python's server defaults it to 1.1, which changes
        # even greedy answers. The in-process backend uses 1.0, and so do vLLM and llama-server by default.
        body = {"model": self.model, **_sampling(params, "max_tokens"), "repeat_penalty": 1.0}
        return body | {"stream": True, "stream_options": {"include_usage": True}}

    def _once_body(self, kind: str, payload: Any, params: GenerationParams) -> tuple[str, dict[str, Any]]:
        body = {k: v for k, v in self._body(params).items() if k not in ("stream", "stream_options")}
        if kind == "chat":
            return "/v1/chat/completions", body | {"messages": list(payload)}
        return "/v1/completions", body | {"prompt": payload}

    def _once_result(self, kind: str, out: dict[str, Any]) -> tuple[str, int | None]:
        choice = (out.get("choices") or [{}])[0]
        text = (choice.get("message") or {}).get("content") if kind == "chat" else choice.get("text")
        return text or "", (out.get("usage") or {}).get("prompt_tokens")

    def _stream(self, path: str, body: dict[str, Any]) -> Iterator[StreamEvent]:
        dec = SSEDecoder()
        usage: dict[str, Any] | None = None
        finish = None
        with self._open(path, body) as resp:
            for line in resp:
                t = time.perf_counter()
                for data in dec.feed(line):
                    ch = parse_openai_event(data)
                    if ch.error:
                        raise BackendError(f"{self.url}{path} sent an error mid-stream: {ch.error}")
                    usage = ch.usage or usage
                    finish = ch.finish_reason or finish
                    yield from _events(ch, t)
        if finish is None:  # the connection closed cleanly, but before the server said the answer was complete
            raise BackendError(f"{self.url}{path}: the stream ended before the answer finished (no finish_reason)")
        done: dict[str, Any] = {"finish_reason": finish}
        if usage:
            done.update(prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"))
        yield StreamEvent("done", time.perf_counter(), data=done)

    def stream_chat(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[StreamEvent]:
        return self._stream("/v1/chat/completions", self._body(params) | {"messages": list(messages)})

    def stream_complete(self, prompt: str, params: GenerationParams) -> Iterator[StreamEvent]:
        return self._stream("/v1/completions", self._body(params) | {"prompt": prompt})

    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        """llama-server's /tokenize, or llama-cpp-python's /extras/tokenize; others offer none."""
        for path, body in (
            ("/tokenize", {"content": text, "add_special": add_special, "parse_special": parse_special}),
            ("/extras/tokenize", {"input": text, "model": self.model}),
        ):
            try:
                return [int(t) for t in self._json(path, body)["tokens"]]
            except (BackendError, KeyError):
                continue
        raise BackendError(f"{self.url} offers no tokenize endpoint", "use the model's GGUF for token counts")

    def detokenize(self, ids: Sequence[int]) -> str:
        for path, body in (
            ("/detokenize", {"tokens": list(ids)}),
            ("/extras/detokenize", {"tokens": list(ids), "model": self.model}),
        ):
            try:
                out = self._json(path, body)
                return str(out.get("content", out.get("text", "")))
            except BackendError:
                continue
        raise BackendError(f"{self.url} offers no detokenize endpoint")


@register_backend("ollama")
class OllamaHttpBackend(_HttpBase):
    kind = "ollama"

    def _first_model(self) -> str:
        models = self._json("/api/tags").get("models") or []
        if not models:
            raise BackendError(f"{self.url} has no models", "run `ollama pull MODEL` first")
        return str(models[0]["name"])

    def _stream(self, path: str, body: dict[str, Any]) -> Iterator[StreamEvent]:
        last: Chunk | None = None
        with self._open(path, body) as resp:
            for line in resp:
                t = time.perf_counter()
                ch = parse_ollama_line(line.decode("utf-8", errors="replace"))
                if ch.error:
                    raise BackendError(f"{self.url}{path} sent an error: {ch.error}")
                yield from _events(ch, t)
                if ch.done:
                    last = ch
        data: dict[str, Any] = {"finish_reason": last.finish_reason if last else None}
        if last and last.usage:
            data.update(last.usage)
            data.update(last.extra)  # *_duration in ns: Ollama's own timings
        yield StreamEvent("done", time.perf_counter(), data=data)

    def _once_body(self, kind: str, payload: Any, params: GenerationParams) -> tuple[str, dict[str, Any]]:
        # /api/chat applies the model's Go template; /api/generate with raw=true takes the prompt as is.
        common = {"model": self.model, "stream": False, "options": self._options(params)}
        if kind == "chat":
            return "/api/chat", common | {"messages": list(payload)}
        return "/api/generate", common | {"prompt": payload, "raw": True}

    def _once_result(self, kind: str, out: dict[str, Any]) -> tuple[str, int | None]:
        text = (out.get("message") or {}).get("content") if kind == "chat" else out.get("response")
        return text or "", out.get("prompt_eval_count")  # the only place Ollama reports what it evaluated

    def _options(self, params: GenerationParams) -> dict[str, Any]:
        return _sampling(params, "num_predict")

    def stream_chat(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[StreamEvent]:
        return self._stream(
            "/api/chat",
            {"model": self.model, "messages": list(messages), "stream": True, "options": self._options(params)},
        )

    def stream_complete(self, prompt: str, params: GenerationParams) -> Iterator[StreamEvent]:
        return self._stream(
            "/api/generate",
            {"model": self.model, "prompt": prompt, "stream": True, "raw": True, "options": self._options(params)},
        )

    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        raise BackendError("Ollama's API offers no tokenize endpoint", "use the model's GGUF for token counts")

    def detokenize(self, ids: Sequence[int]) -> str:
        raise BackendError("Ollama's API offers no detokenize endpoint")


def _sampling(params: GenerationParams, max_tokens_key: str) -> dict[str, Any]:
    """The sampling settings both wire formats carry (OpenAI: max_tokens at the top level; Ollama: num_predict in
    options)."""
    out: dict[str, Any] = {max_tokens_key: params.max_tokens, "temperature": params.temperature}
    out |= {"top_p": params.top_p, "seed": params.seed}
    return out | ({"stop": list(params.stop)} if params.stop else {})


def _events(ch: Chunk, t: float) -> Iterator[StreamEvent]:
    if ch.role_only:
        yield StreamEvent("role", t)
    if ch.reasoning:
        yield StreamEvent("reasoning", t, ch.reasoning, ch.n_tokens or 0)
    if ch.content:
        yield StreamEvent("content", t, ch.content, ch.n_tokens or 0)
    if ch.tool_call:
        yield StreamEvent("tool_call", t, "", ch.n_tokens or 0)
