"""MODEL argument -> ModelSpec: the one place that decides what kind of source a string names."""

from __future__ import annotations

from pathlib import Path

from selfhost.errors import CorruptModelError, ModelNotFoundError, NotAGGUFError
from selfhost.models.catalog import spec_from_catalog
from selfhost.models.embedded import DEFAULT_EMBEDDED, EMBEDDED, embedded_path
from selfhost.models.gguf_file import is_gguf
from selfhost.models.gguf_spec import spec_from_gguf
from selfhost.models.hf import spec_from_hf_dir
from selfhost.models.ollama import spec_from_ollama
from selfhost.models.spec import ModelSpec
from selfhost.models.validate import validate_spec

__all__ = ["resolve_model", "local_gguf_path", "EMBEDDED_ALIASES"]

EMBEDDED_ALIASES = {"", "embedded", "default"}


def _embedded_name(model: str | None) -> str | None:
    if model is None or model.strip().lower() in EMBEDDED_ALIASES:
        return DEFAULT_EMBEDDED
    key = model.strip().lower().removeprefix("embedded:")
    return key if key in EMBEDDED and (model.startswith("embedded:") or key == model) else None


def _looks_like_path(model: str) -> bool:
    return "/" in model or "\\" in model or model.startswith(".") or model.endswith((".gguf", ".json"))


def resolve_model(model: str | None) -> ModelSpec:
    """Embedded name, path to a GGUF file, HF directory/config.json, ollama:NAME[:TAG] or catalog name.

    Whatever the source, the facts are checked for consistency (models/validate.py) before anyone plans on them."""
    try:
        return validate_spec(_read_spec(model))
    except (ZeroDivisionError, OverflowError, TypeError, ValueError, KeyError, IndexError) as exc:
        raise CorruptModelError(
            f"{model}: the model's metadata is inconsistent ({type(exc).__name__}: {exc})",
            "the file or config is damaged; re-download it",
        ) from None


def _read_spec(model: str | None) -> ModelSpec:
    embedded = _embedded_name(model)
    if embedded is not None:
        spec = spec_from_gguf(embedded_path(embedded), source="embedded")
        spec.extra["embedded_name"] = embedded
        return spec
    assert model is not None
    if model.startswith("ollama:"):
        return spec_from_ollama(model)
    path = Path(model).expanduser()
    if path.exists():
        if path.is_dir() or path.name == "config.json":
            return spec_from_hf_dir(path)
        if not is_gguf(path):
            raise NotAGGUFError(
                f"{path} is not a GGUF file (it does not start with the GGUF magic bytes)",
                "pass a .gguf file, a Hugging Face model directory, an ollama:NAME tag or a catalog name",
            )
        return spec_from_gguf(path)
    if _looks_like_path(model):
        raise ModelNotFoundError(f"no such file or directory: {model}", "check the path, or run `selfhost models`")
    return spec_from_catalog(model)


def local_gguf_path(spec: ModelSpec) -> Path:
    """The GGUF file to load for a spec, or a clear error for sources with no local weights."""
    if spec.path is not None and spec.source in ("gguf", "embedded", "ollama"):
        return spec.path
    raise ModelNotFoundError(
        f"{spec.name} has no local GGUF file to run (source: {spec.source})",
        "pass a .gguf file, an ollama: tag or `embedded`; catalog entries and HF directories are facts only",
    )
