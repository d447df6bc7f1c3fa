"""Builders for real files the tests need."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gguf
import numpy as np


def timing_test(attempts: int = 3) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """For tests that compare measured times with a schedule at millisecond precision: rerun on a failed
    assertion, up to `attempts` in all. On this shared 2-core machine a client starved for a few milliseconds
    reads several chunks at once; that is the machine, not the client, and a real fault fails every attempt."""

    def wrap(test: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(test)
        def run(*args: Any, **kwargs: Any) -> Any:
            for attempt in range(attempts):
                try:
                    return test(*args, **kwargs)
                except AssertionError:
                    if attempt == attempts - 1:
                        raise
            return None

        return run

    return wrap


def write_sparse_huge_gguf(path: Path, n_bytes: int) -> None:
    """A valid GGUF whose one F16 tensor is n_bytes long; the data is a sparse hole, so it costs no disk."""
    n = n_bytes // 2
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(1)
    w.add_embedding_length(4096)
    w.add_head_count(32)
    w.add_context_length(4096)
    w.add_vocab_size(32000)
    w.add_tensor_info("token_embd.weight", (n // 4096, 4096), np.dtype(np.float16), n_bytes)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    size = path.stat().st_size
    os.truncate(path, size + n_bytes + 64)


@contextmanager
def mock_server_process(*args: str) -> Iterator[str]:
    """`selfhost mock-server` in its own process on a free port; yields its base URL."""
    p = subprocess.Popen(
        [sys.executable, "-m", "selfhost", "mock-server", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert p.stdout is not None
    line = p.stdout.readline()
    try:
        assert line.startswith("listening on "), line
        yield line.split()[-1]
    finally:
        p.terminate()
        p.wait(timeout=10)
        p.stdout.close()


def sigint_default() -> None:
    """preexec_fn for a child a test will Ctrl-C: SIGINT handled as in a terminal. A shell that starts the suite in
    the background (`make test &`) makes it ignored, and Python then never raises KeyboardInterrupt."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_when(
    args: list[str], ready: Callable[[], bool], within_s: float = 60.0, finish_s: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Runs a command, sends it SIGINT as Ctrl-C in a terminal would once `ready()` holds (or after `within_s`), and
    waits up to `finish_s` for it to exit. A failure here never leaves the run going into the next tests."""
    import signal
    import time

    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_default,  # noqa: PLW1509
    )
    try:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline and proc.poll() is None and not ready():
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=finish_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


def has_lines(path: Path, n: int) -> Callable[[], bool]:
    """For `interrupt_when`: true once `path` holds at least `n` lines."""
    return lambda: path.exists() and len(path.read_text().splitlines()) >= n
