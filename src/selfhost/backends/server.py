"""Start llama-cpp-python's OpenAI-compatible server on 127.0.0.1 for a local GGUF, and stop it cleanly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from selfhost.errors import BackendError, UsageError

__all__ = ["LlamaCppServer", "free_port", "check_port_free"]


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


class LlamaCppServer:
    """`python -m llama_cpp.server` as a child process; `url` is its base URL once `start()` returns."""

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
    ) -> None:
        self.model_path = model_path
        self.host = host
        self.port = port or free_port(host)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.model_alias = model_alias or model_path.stem
        self.log_path = log_path
        self.chat_format = chat_format  # None: the GGUF's own template
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 120.0) -> LlamaCppServer:
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--model_alias",
            self.model_alias,
            # By default this server aborts the stream in flight whenever another request arrives; queue instead.
            "--interrupt_requests",
            "False",
        ]
        if self.n_threads:
            cmd += ["--n_threads", str(self.n_threads)]
        if self.chat_format:
            cmd += ["--chat_format", self.chat_format]
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        try:
            return self._wait_ready(timeout_s)
        except BaseException:  # Ctrl-C or a failure while starting: never leave the child running
            self.stop()
            raise

    def _wait_ready(self, timeout_s: float) -> LlamaCppServer:
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BackendError(
                    f"llama-cpp-python's server exited with code {self.proc.returncode} while starting",
                    f"see its log{': ' + str(self.log_path) if self.log_path else ''}; "
                    "is llama-cpp-python[server] installed?",
                )
            try:
                with urllib.request.urlopen(self.url + "/v1/models", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.stop()
        raise BackendError(f"llama-cpp-python's server did not answer within {timeout_s:.0f} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> LlamaCppServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
