"""A mock server in its own process (so it does not share the client's CPU or event loop)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from tests.helpers import mock_server_process


@pytest.fixture
def mock_server() -> Iterator[Callable[..., str]]:
    with ExitStack() as stack:
        yield lambda *args: stack.enter_context(mock_server_process(*args))
