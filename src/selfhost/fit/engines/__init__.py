"""The engines `fit` plans for, one module each (llama.cpp, Ollama, vLLM), registered by name (base.py)."""

from selfhost.fit.engines.base import Engine, engine_names, get_engine, register

__all__ = ["Engine", "engine_names", "get_engine", "register"]
