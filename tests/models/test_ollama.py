"""A local Ollama store built on disk in Ollama's documented layout, pointing at the real embedded GGUF."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from selfhost.errors import ModelNotFoundError
from selfhost.models.ollama import list_ollama_models, parse_ollama_name
from selfhost.models.resolve import resolve_model

GO_TEMPLATE = "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}<|im_start|>user\n{{ .Prompt }}"


def _blob(root: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (root / "blobs" / digest.replace(":", "-")).write_bytes(data)
    return digest


@pytest.fixture
def store(tmp_path: Path, smollm2_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "models"
    (root / "blobs").mkdir(parents=True)
    model_digest = "sha256:" + "ab" * 32
    os.symlink(smollm2_path, root / "blobs" / model_digest.replace(":", "-"))
    layers = [
        {
            "mediaType": "application/vnd.ollama.image.model",
            "digest": model_digest,
            "size": smollm2_path.stat().st_size,
        },
        {"mediaType": "application/vnd.ollama.image.template", "digest": _blob(root, GO_TEMPLATE.encode())},
        {"mediaType": "application/vnd.ollama.image.params", "digest": _blob(root, b'{"num_ctx": 8192}')},
    ]
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "layers": layers,
    }
    mdir = root / "manifests" / "registry.ollama.ai" / "library" / "smollm2"
    mdir.mkdir(parents=True)
    (mdir / "135m").write_text(json.dumps(manifest))
    monkeypatch.setenv("OLLAMA_MODELS", str(root))
    return root


def test_resolve_ollama_tag(store: Path) -> None:
    s = resolve_model("ollama:smollm2:135m")
    assert s.source == "ollama" and s.name == "smollm2:135m"
    assert (s.n_layers, s.n_kv_heads) == (30, 3)
    assert s.extra["ollama_template"] == GO_TEMPLATE
    assert s.extra["ollama_params"] == {"num_ctx": 8192}


def test_list_store(store: Path) -> None:
    assert [m.name for m in list_ollama_models()] == ["smollm2:135m"]


def test_missing_tag_lists_what_exists(store: Path) -> None:
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model("ollama:smollm2")  # :latest is not there
    assert "smollm2:135m" in (err.value.next_step or "")


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("llama3.2", ("registry.ollama.ai", "library", "llama3.2", "latest")),
        ("ollama:qwen3:8b", ("registry.ollama.ai", "library", "qwen3", "8b")),
        ("me/tuned:q4", ("registry.ollama.ai", "me", "tuned", "q4")),
        ("hf.co/org/repo:Q4_K_M", ("hf.co", "org", "repo", "Q4_K_M")),
    ],
)
def test_parse_names(name: str, parts: tuple[str, str, str, str]) -> None:
    assert parse_ollama_name(name) == parts
