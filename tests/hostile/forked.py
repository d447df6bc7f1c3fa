"""One hostile case as its own process, forked from a server that has already imported selfhost.

Starting a fresh interpreter and importing the CLI, numpy and llama.cpp's bindings costs every case about 0.5 s on
two busy cores: 700 cases spent most of their time there. The forked process is still a separate process with its
own session (so a hang is killed with everything it started), its own stdout/stderr files and its own exit code; it
runs the same `selfhost.cli.main.main` as `python -m selfhost`, then exits as the interpreter would (atexit handlers,
flushed streams, a traceback and exit 1 for an exception that escapes). That `python -m selfhost` itself starts is
checked by every other CLI test, which run it as a plain subprocess."""

from __future__ import annotations

import atexit
import io
import multiprocessing
import os
import sys
import traceback
from multiprocessing.context import ForkServerContext

# What a case's process would import anyway; nothing here starts a thread or initialises a backend at import.
PRELOAD = [
    "selfhost.cli.main",
    *sorted({m for m, _ in __import__("selfhost.cli.main", fromlist=["COMMANDS"]).COMMANDS.values()}),
    "numpy",
    "jinja2",
    "aiohttp",
    "llama_cpp",
    "tests.hostile.forked",
]


def context() -> ForkServerContext:
    ctx = multiprocessing.get_context("forkserver")
    assert isinstance(ctx, ForkServerContext)
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def _stream(fd: int) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8", errors="backslashreplace")


def run_case(argv: list[str], env: dict[str, str], stdout_path: str, stderr_path: str, rc_path: str) -> None:
    """The forked process's whole life: never returns. Its exit code is also written to `rc_path`, because
    multiprocessing's forkserver reports 255 for a few percent of processes started concurrently from threads."""
    os.setsid()
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, stdout_path), (2, stderr_path)):
        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, fd)
        os.close(out)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdout, sys.stderr = _stream(1), _stream(2)
    sys.argv = ["selfhost", *argv]
    code = 1
    try:
        from selfhost.cli.main import main

        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        with open(rc_path + ".tmp", "w") as f:
            f.write(str(code))
        os.rename(rc_path + ".tmp", rc_path)
        os._exit(code)
