"""Backends: llama.cpp in-process, or an OpenAI/Ollama server over HTTP, made by `create_backend(kind, ...)`.

The modules that define each kind are imported when that kind is first asked for (BACKEND_MODULES), so importing
this package, or the wire layer inside it, loads neither llama.cpp nor numpy."""

from selfhost.backends.base import Backend, Completion, GenerationParams, StreamEvent, collect, create_backend

__all__ = ["Backend", "Completion", "GenerationParams", "StreamEvent", "collect", "create_backend"]
