"""Shared fixtures: the real embedded models and files built for each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from selfhost.backends.llamacpp import LlamaCppBackend
from selfhost.models.embedded import embedded_path


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    return embedded_path("smollm2-135m")


@pytest.fixture(scope="session")
def gemma3_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return embedded_path("gemma3-270m")


@pytest.fixture(scope="module")
def smollm2_backend(smollm2_path: Path) -> Iterator[LlamaCppBackend]:
    with LlamaCppBackend(smollm2_path, n_ctx=2048) as b:
        yield b
