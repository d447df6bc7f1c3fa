"""Models present on this machine: embedded packages and the local Ollama store."""

from __future__ import annotations

from typing import Any

from selfhost.models.embedded import EMBEDDED, available_embedded
from selfhost.models.ollama import list_ollama_models

__all__ = ["list_local_models"]


def list_local_models() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, path in available_embedded().items():
        out.append(
            {
                "model": f"embedded:{name}",
                "kind": "embedded",
                "path": str(path),
                "file_bytes": path.stat().st_size,
                "description": EMBEDDED[name].description,
            }
        )
    for m in list_ollama_models():
        out.append(
            {
                "model": f"ollama:{m.name}",
                "kind": "ollama",
                "path": str(m.model_blob),
                "file_bytes": m.model_blob.stat().st_size,
                "description": str(m.manifest),
            }
        )
    return out
