"""A local Ollama store (~/.ollama/models, or $OLLAMA_MODELS): manifests -> GGUF blobs -> ModelSpec.

Layout (ollama server/images.go, server/manifest.go): manifests/<host>/<namespace>/<model>/<tag> is an
OCI-style JSON manifest whose layers name blobs/sha256-<hex>; the layer with media type
application/vnd.ollama.image.model is the GGUF file, .template the Go chat template, .params the
default options (JSON), .system the default system prompt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfhost.errors import CorruptModelError, ModelNotFoundError
from selfhost.files import BadInputError, parse_json, read_json, read_text
from selfhost.models.gguf_spec import spec_from_gguf
from selfhost.models.spec import ModelSpec

__all__ = [
    "OllamaModel",
    "ollama_root",
    "parse_ollama_name",
    "find_ollama_model",
    "list_ollama_models",
    "spec_from_ollama",
]

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
MEDIA_MODEL = "application/vnd.ollama.image.model"
MEDIA_TEMPLATE = "application/vnd.ollama.image.template"
MEDIA_PARAMS = "application/vnd.ollama.image.params"
MEDIA_SYSTEM = "application/vnd.ollama.image.system"


@dataclass(frozen=True)
class OllamaModel:
    name: str  # as a user writes it: model:tag, namespace/model:tag or host/namespace/model:tag
    manifest: Path
    model_blob: Path
    template: str | None
    system: str | None
    params: dict[str, Any]


def ollama_root() -> Path:
    env = os.environ.get("OLLAMA_MODELS")
    return Path(env) if env else Path.home() / ".ollama" / "models"


def parse_ollama_name(name: str) -> tuple[str, str, str, str]:
    """'llama3.2' -> (registry.ollama.ai, library, llama3.2, latest)."""
    name = name.removeprefix("ollama:")
    tag = "latest"
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        base, tag = name.rsplit(":", 1)
    else:
        base = name
    parts = base.split("/")
    if len(parts) == 1:
        return DEFAULT_HOST, DEFAULT_NAMESPACE, parts[0], tag
    if len(parts) == 2:
        return DEFAULT_HOST, parts[0], parts[1], tag
    return parts[0], "/".join(parts[1:-1]), parts[-1], tag


def _display(host: str, ns: str, model: str, tag: str) -> str:
    prefix = (
        ""
        if host == DEFAULT_HOST and ns == DEFAULT_NAMESPACE
        else (f"{ns}/" if host == DEFAULT_HOST else f"{host}/{ns}/")
    )
    return f"{prefix}{model}:{tag}"


def _blob(root: Path, digest: str) -> Path:
    return root / "blobs" / digest.replace(":", "-")


def _params(text: str | None, where: Path | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = parse_json(text, str(where))
    except BadInputError as exc:
        raise CorruptModelError(f"Ollama params blob {exc.where}: {exc.reason}", "run `ollama pull` again") from None
    if not isinstance(value, dict):
        raise CorruptModelError(f"Ollama params blob {where} is not a JSON object", "run `ollama pull` again")
    return value


def _load(root: Path, manifest: Path, display: str) -> OllamaModel:
    try:
        data = read_json(manifest)
        layers = list(data["layers"])
        if not all(isinstance(layer, dict) for layer in layers):
            raise TypeError("a layer is not an object")
    except (BadInputError, KeyError, TypeError) as exc:
        raise CorruptModelError(f"Ollama manifest {manifest} is corrupt: {exc}", "run `ollama pull` again") from None
    by_type: dict[str, Path] = {}
    for layer in layers:
        by_type.setdefault(layer.get("mediaType", ""), _blob(root, layer.get("digest", "")))
    model_blob = by_type.get(MEDIA_MODEL)
    if model_blob is None:
        raise CorruptModelError(f"Ollama manifest {manifest} has no model layer")
    if not model_blob.exists():
        raise ModelNotFoundError(f"Ollama blob {model_blob} named by {manifest} is missing", "run `ollama pull` again")

    def text(media: str) -> str | None:
        p = by_type.get(media)
        return read_text(p) if p and p.exists() else None

    params_text = text(MEDIA_PARAMS)
    return OllamaModel(
        display,
        manifest,
        model_blob,
        text(MEDIA_TEMPLATE),
        text(MEDIA_SYSTEM),
        _params(params_text, by_type.get(MEDIA_PARAMS)),
    )


def find_ollama_model(name: str, root: Path | None = None) -> OllamaModel:
    root = root or ollama_root()
    host, ns, model, tag = parse_ollama_name(name)
    manifest = root / "manifests" / host / ns / model / tag
    if not manifest.exists():
        known = [m.name for m in list_ollama_models(root)]
        hint = (
            f"models in {root}: {', '.join(known)}" if known else f"no models under {root}; `ollama pull {model}` first"
        )
        raise ModelNotFoundError(f"no Ollama model {_display(host, ns, model, tag)} in {root}", hint)
    return _load(root, manifest, _display(host, ns, model, tag))


def list_ollama_models(root: Path | None = None) -> list[OllamaModel]:
    root = root or ollama_root()
    base = root / "manifests"
    out: list[OllamaModel] = []
    if not base.is_dir():
        return out
    for manifest in sorted(p for p in base.rglob("*") if p.is_file()):
        rel = manifest.relative_to(base).parts
        if len(rel) < 4:
            continue
        host, *ns, model, tag = rel
        try:
            out.append(_load(root, manifest, _display(host, "/".join(ns), model, tag)))
        except (CorruptModelError, ModelNotFoundError):
            continue
    return out


def spec_from_ollama(name: str, root: Path | None = None) -> ModelSpec:
    m = find_ollama_model(name, root)
    spec = spec_from_gguf(m.model_blob, source="ollama")
    spec.name = m.name
    spec.extra.update(
        {
            "ollama_template": m.template,
            "ollama_system": m.system,
            "ollama_params": m.params,
            "ollama_manifest": str(m.manifest),
        }
    )
    return spec
