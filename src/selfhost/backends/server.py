"""Serving engines as child processes (llama-server, vLLM, llama-cpp-python's server): started, waited for, logged,
stopped cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from selfhost.errors import BackendError, UsageError

__all__ = ["EngineProcess", "LlamaCppServer", "free_port", "check_port_free"]


def check_port_free(host: str, port: int) -> None:
    """Exit 2 naming the port when something already listens there (0 means any free port)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                "another server is using that port: pick another with --port (0 picks a free one)",
            ) from None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGTERM when selfhost exits, however it exits (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class EngineProcess:
    """A serving engine as a child process: started with its own command line, ready once HEALTH_PATH answers
    200, its output kept in a log, stopped with SIGTERM (then SIGKILL) — and never outliving selfhost."""

    name = "server"
    health_path = "/health"

    def __init__(
        self,
        argv: list[str],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = argv
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return self.argv

    def start(self, timeout_s: float = 120.0) -> EngineProcess:
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(self.env or {})},
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
                start_new_session=True,  # its own process group: stop() reaches the workers an engine spawns (vLLM)
            )
        except OSError as exc:
            raise BackendError(
                f"cannot start {self.name}: {exc}", "is it installed? see `selfhost serve --help`"
            ) from None
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        try:
            return self._wait_ready(timeout_s)
        except BaseException:  # Ctrl-C or a failure while starting: never leave the child running
            self.stop()
            raise

    def _wait_ready(self, timeout_s: float) -> EngineProcess:
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BackendError(
                    f"{self.name} exited with code {self.proc.returncode} while starting",
                    f"see its log{': ' + str(self.log_path) if self.log_path else ''}",
                )
            try:
                with urllib.request.urlopen(self.url + self.health_path, timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        raise BackendError(f"{self.name} did not answer within {timeout_s:.0f} s")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM to the engine's process group, SIGKILL after GRACE_S; then SIGKILL to whatever of the group is
        left (a worker whose parent exited without waiting for it)."""
        if self.proc is None:
            return
        group = self.proc.pid
        if self.proc.poll() is None:
            _signal_group(group, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(group, signal.SIGKILL)
                self.proc.wait()
        _signal_group(group, signal.SIGKILL)
        self.proc = None

    def __enter__(self) -> EngineProcess:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class LlamaCppServer(EngineProcess):
    """`python -m llama_cpp.server` (llama-cpp-python's OpenAI-compatible server) for a local GGUF."""

    name = "llama-cpp-python's server"
    health_path = "/v1/models"

    def __init__(
        self,
        model_path: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        model_alias: str | None = None,
        log_path: Path | None = None,
        chat_format: str | None = None,
        flash_attn: bool | None = None,
    ) -> None:
        super().__init__([], host=host, port=port, log_path=log_path)
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.model_alias = model_alias or model_path.stem
        self.chat_format = chat_format  # None: the GGUF's own template
        self.flash_attn = flash_attn

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path), "--host", self.host]
        cmd += ["--port", str(self.port), "--n_ctx", str(self.n_ctx), "--model_alias", self.model_alias]
        # By default this server aborts the stream in flight whenever another request arrives; queue instead.
        cmd += ["--interrupt_requests", "False"]
        if self.n_threads:
            cmd += ["--n_threads", str(self.n_threads)]
        if self.chat_format:
            cmd += ["--chat_format", self.chat_format]
        if self.flash_attn is not None:
            cmd += ["--flash_attn", str(self.flash_attn)]
        return cmd

    def start(self, timeout_s: float = 120.0) -> LlamaCppServer:
        super().start(timeout_s)
        return self

    def __enter__(self) -> LlamaCppServer:
        return self.start()
