"""The Backend protocol: how every capability talks to a running model.

Implementations: llama.cpp in-process (backends.llamacpp); OpenAI-compatible and Ollama HTTP
backends implement the same protocol. Streaming is the primitive: a backend yields StreamEvents
stamped with time.perf_counter() on arrival, and the non-streaming calls are built from them, so
timings mean the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from selfhost.errors import UsageError

__all__ = [
    "Message",
    "GenerationParams",
    "StreamEvent",
    "Completion",
    "Backend",
    "collect",
    "register_backend",
    "create_backend",
    "BACKENDS",
]

Message = dict[str, Any]  # {"role": ..., "content": ...} as in the OpenAI chat API
EventKind = Literal["content", "reasoning", "tool_call", "role", "usage", "done"]
TokenSource = Literal["engine", "usage", "tokenizer", "chunks"]


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int = 0
    stop: tuple[str, ...] = ()
    # False: evaluate the whole prompt every call, so timings never benefit from an earlier call.
    cache_prompt: bool = False


@dataclass(frozen=True)
class StreamEvent:
    kind: EventKind
    t: float  # time.perf_counter() when the event was received
    text: str = ""
    n_tokens: int = 0  # generated tokens this event carries (0 when unknown)
    data: dict[str, Any] = field(default_factory=dict)  # finish_reason, usage, ...


@dataclass
class Completion:
    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    tokens_source: TokenSource | None
    start_t: float
    first_token_t: float | None
    end_t: float
    token_times: list[float] = field(default_factory=list)  # arrival time of each generated token

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token_t is None else self.first_token_t - self.start_t

    @property
    def e2e_s(self) -> float:
        return self.end_t - self.start_t

    @property
    def decode_tokens_per_s(self) -> float | None:
        """Tokens after the first, over the time after the first (prompt processing excluded)."""
        n = self.completion_tokens
        if not n or n < 2 or self.first_token_t is None or self.end_t <= self.first_token_t:
            return None
        return (n - 1) / (self.end_t - self.first_token_t)


@runtime_checkable
class Backend(Protocol):
    kind: str
    model: str
    capabilities: frozenset[str]  # subset of {"chat", "completion", "tokenize", "logprobs"}

    def stream_complete(self, prompt: str, params: GenerationParams) -> Iterator[StreamEvent]: ...

    def stream_chat(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[StreamEvent]: ...

    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]: ...

    def detokenize(self, ids: Sequence[int]) -> str: ...

    def close(self) -> None: ...


def collect(events: Iterable[StreamEvent], start_t: float, until: Callable[[str], bool] | None = None) -> Completion:
    """Fold a stream into a Completion. A chunk carrying k tokens contributes k token times. `until(text so far)`
    true ends the stream there (closing it stops the generation), with finish_reason "settled"."""
    parts: list[str] = []
    token_times: list[float] = []
    first: float | None = None
    finish: str | None = None
    prompt_tokens: int | None = None
    usage_tokens: int | None = None
    end = start_t
    for ev in events:
        end = ev.t
        if ev.kind in ("content", "reasoning", "tool_call") and (ev.text or ev.n_tokens):
            if first is None:
                first = ev.t
            parts.append(ev.text)
            token_times.extend([ev.t] * max(ev.n_tokens, 1 if ev.text else 0))
            if until is not None and ev.kind == "content" and until("".join(parts)):
                finish = "settled"
                close = getattr(events, "close", None)
                if close is not None:
                    close()
                break
        elif ev.kind == "usage":
            prompt_tokens = ev.data.get("prompt_tokens", prompt_tokens)
            usage_tokens = ev.data.get("completion_tokens", usage_tokens)
        elif ev.kind == "done":
            finish = ev.data.get("finish_reason", finish)
            prompt_tokens = ev.data.get("prompt_tokens", prompt_tokens)
            usage_tokens = ev.data.get("completion_tokens", usage_tokens)
    source: TokenSource | None = None
    n = usage_tokens
    if n is not None:
        source = "usage"
    elif token_times:
        n, source = len(token_times), "chunks"
    return Completion("".join(parts), finish, prompt_tokens, n, source, start_t, first, end, token_times)


BACKENDS: dict[str, Callable[..., Backend]] = {}


def register_backend(kind: str) -> Callable[[Callable[..., Backend]], Callable[..., Backend]]:
    def deco(factory: Callable[..., Backend]) -> Callable[..., Backend]:
        BACKENDS[kind] = factory
        return factory

    return deco


# kind -> the module whose import registers it
BACKEND_MODULES = {
    "openai": "selfhost.backends.http",
    "ollama": "selfhost.backends.http",
    "llama.cpp": "selfhost.backends.llamacpp",
}


def create_backend(kind: str, **options: Any) -> Backend:
    if kind not in BACKENDS and kind in BACKEND_MODULES:
        import importlib

        importlib.import_module(BACKEND_MODULES[kind])
    try:
        factory = BACKENDS[kind]
    except KeyError:
        raise UsageError(
            f"unknown backend {kind!r}", f"valid backends: {', '.join(sorted(set(BACKENDS) | set(BACKEND_MODULES)))}"
        ) from None
    return factory(**options)
