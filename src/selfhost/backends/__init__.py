"""Backends: llama.cpp in-process here; HTTP backends register themselves the same way."""

from selfhost.backends import http as _http  # noqa: F401  (registers "openai" and "ollama")
from selfhost.backends import llamacpp as _llamacpp  # noqa: F401  (registers "llama.cpp")
from selfhost.backends.base import Backend, Completion, GenerationParams, StreamEvent, collect, create_backend

__all__ = ["Backend", "Completion", "GenerationParams", "StreamEvent", "collect", "create_backend"]
