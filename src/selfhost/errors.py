"""Errors that reach the user, and the one table that turns any exception into a message.

Library code raises :class:`SelfhostError` subclasses that already know what went wrong and
what to do next. Anything else that escapes (``FileNotFoundError`` from deep inside a library,
``KeyboardInterrupt``) is translated by :func:`describe` through ``_FOREIGN`` so the CLI can
print one line and exit non-zero; the traceback appears only with ``SELFHOST_DEBUG=1``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "SelfhostError",
    "ModelNotFoundError",
    "NotAGGUFError",
    "CorruptModelError",
    "UnknownModelError",
    "UnsupportedModelError",
    "ModelTooLargeError",
    "BackendError",
    "MissingDependencyError",
    "UsageError",
    "UserMessage",
    "describe",
    "debug_enabled",
]


class SelfhostError(Exception):
    """An error with a message for a person and the next step to take."""

    exit_code: int = 1

    def __init__(self, message: str, next_step: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.next_step = next_step


class ModelNotFoundError(SelfhostError):
    exit_code = 2


class NotAGGUFError(SelfhostError):
    exit_code = 2


class CorruptModelError(SelfhostError):
    exit_code = 2


class UnknownModelError(SelfhostError):
    exit_code = 2


class UnsupportedModelError(SelfhostError):
    exit_code = 2


class ModelTooLargeError(SelfhostError):
    exit_code = 4


class BackendError(SelfhostError):
    exit_code = 5


class MissingDependencyError(SelfhostError):
    exit_code = 6


class UsageError(SelfhostError):
    exit_code = 2


@dataclass(frozen=True)
class UserMessage:
    message: str
    next_step: str | None
    exit_code: int


def _os_error(exc: BaseException) -> UserMessage:
    assert isinstance(exc, OSError)
    where = f": {exc.filename}" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return UserMessage(f"disk full{where}", "free some space or write elsewhere (--output)", 1)
    if isinstance(exc, PermissionError):
        return UserMessage(f"permission denied{where}", "check the file's permissions", 1)
    if isinstance(exc, FileNotFoundError):
        return UserMessage(f"no such file{where}", "check the path", 2)
    if isinstance(exc, IsADirectoryError):
        return UserMessage(f"is a folder, not a file{where}", "give a file", 2)
    if isinstance(exc, NotADirectoryError):
        return UserMessage(f"not a folder{where}", "check the path", 2)
    return UserMessage(f"{exc.strerror or exc}{where}", None, 1)


# Exceptions raised by Python or third-party code, mapped to what a person should read.
_FOREIGN: list[tuple[type[BaseException], Callable[[BaseException], UserMessage]]] = [
    (KeyboardInterrupt, lambda e: UserMessage("interrupted", "results written so far are kept", 130)),
    (MemoryError, lambda e: UserMessage("out of memory", "try a smaller model, quantization or context", 4)),
    (OSError, _os_error),
    # Readers turn these into file:line messages; this is the backstop for any that escape.
    (UnicodeDecodeError, lambda e: UserMessage(f"input is not UTF-8 text ({e})", "save it as UTF-8", 2)),
    (RecursionError, lambda e: UserMessage("input nested too deeply to read", "flatten the structure", 2)),
]


def describe(exc: BaseException) -> UserMessage:
    """The message, next step and exit code for any exception."""
    if isinstance(exc, SelfhostError):
        return UserMessage(exc.message, exc.next_step, exc.exit_code)
    for kind, render in _FOREIGN:
        if isinstance(exc, kind):
            return render(exc)
    return UserMessage(
        f"unexpected error: {type(exc).__name__}: {exc}",
        "rerun with SELFHOST_DEBUG=1 for the traceback and report it",
        70,
    )


def debug_enabled() -> bool:
    return os.environ.get("SELFHOST_DEBUG", "") not in ("", "0", "false", "no")
