"""A mock server in its own process (so it does not share the client's CPU or event loop)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest


@pytest.fixture
def mock_server() -> Iterator[Callable[..., str]]:
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> str:
        p = subprocess.Popen(
            [sys.executable, "-m", "selfhost", "mock-server", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        procs.append(p)
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.startswith("listening on "), line
        return line.split()[-1]

    yield start
    for p in procs:
        p.terminate()
        p.wait(timeout=10)
        if p.stdout is not None:
            p.stdout.close()
