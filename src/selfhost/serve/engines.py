"""The engines `selfhost serve` starts, by name: where each one's program is, and its command line for a plan.

llama-server and vLLM take the command line `fit` prints for them (fit.engines.<engine>.launch_argv), so a
launch command is one that selfhost has run; llama-cpp-python's server is the in-process engine's own server."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from selfhost.errors import MissingDependencyError

__all__ = ["ServeEngine", "SERVE_ENGINES", "serve_engine_names", "find_llama_server", "find_vllm_python"]


def find_llama_server() -> str:
    """$SELFHOST_LLAMA_SERVER, the one `make llama-server` built into this environment, or llama-server on PATH."""
    candidates = [os.environ.get("SELFHOST_LLAMA_SERVER"), str(Path(sys.prefix) / "bin" / "llama-server")]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    found = shutil.which("llama-server")
    if found:
        return found
    raise MissingDependencyError(
        "no llama-server found (checked $SELFHOST_LLAMA_SERVER, this environment's bin/, and PATH)",
        "build it with `make llama-server` (~1.5 min on 2 cores), or install llama.cpp",
    )


def find_vllm_python() -> str:
    """$SELFHOST_VLLM_PYTHON, or the interpreter of `make vllm`'s own environment (.venv-vllm)."""
    candidates = [
        os.environ.get("SELFHOST_VLLM_PYTHON"),
        str(Path(sys.prefix).parent / ".venv-vllm" / "bin" / "python"),
    ]
    for c in candidates:
        if c and Path(c).is_file():
            return c
    raise MissingDependencyError(
        "no vLLM environment found (checked $SELFHOST_VLLM_PYTHON and .venv-vllm/)",
        "install it with `make vllm` (vLLM for CPU in its own environment)",
    )


@dataclass(frozen=True)
class ServeEngine:
    name: str
    fit_engine: str  # whose memory rules and launch command apply
    health_path: str
    program: Callable[[], list[str]]  # the argv prefix that replaces the engine's own program name
    summary: str
    # llama.cpp engines: does the server cap the reserve graph's outputs at its slots (fit.plan.FitRequest)?
    outputs_per_slot: bool | None = None


SERVE_ENGINES: dict[str, ServeEngine] = {
    e.name: e
    for e in (
        ServeEngine(
            "llama-server", "llama.cpp", "/health", lambda: [find_llama_server()], "llama.cpp's own C++ server"
        ),
        ServeEngine(
            "vllm",
            "vllm",
            "/health",
            lambda: [find_vllm_python(), "-m", "vllm.entrypoints.openai.api_server"],
            "vLLM's OpenAI-compatible server (CPU build here)",
        ),
        ServeEngine(
            "llama-cpp-python",
            "llama.cpp",
            "/v1/models",
            lambda: [sys.executable, "-m", "llama_cpp.server"],
            "llama-cpp-python's server (the in-process engine, one request at a time)",
            outputs_per_slot=False,  # llama.cpp's default: every token of the micro-batch is an output
        ),
    )
}


def serve_engine_names() -> list[str]:
    return list(SERVE_ENGINES)
