"""llama.cpp's official chat templates, read from llama-cpp-python's source archive (downloaded by `make test`)."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _sdist() -> Path:
    env = os.environ.get("SELFHOST_LLAMA_SDIST")
    found = [Path(env)] if env else sorted((REPO / ".venv" / "sdist").glob("llama_cpp_python-*.tar.gz"))
    if not found or not found[-1].exists():
        pytest.fail("llama-cpp-python's source archive is missing: run `make install-test` (it downloads it)")
    return found[-1]


@pytest.fixture(scope="session")
def llama_cpp_templates() -> dict[str, str]:
    out: dict[str, str] = {}
    with tarfile.open(_sdist()) as tar:
        for m in tar.getmembers():
            if "/models/templates/" in m.name and m.name.endswith(".jinja") and m.isfile():
                f = tar.extractfile(m)
                assert f is not None
                out[Path(m.name).stem] = f.read().decode("utf-8")
    assert len(out) > 30
    return out
