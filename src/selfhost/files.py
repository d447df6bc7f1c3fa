"""Input files read as untrusted data, and outputs written so that no input is ever destroyed.

Readers report what is wrong with a file as a :class:`BadInputError` (exit 2) that names the file and the
line or byte offset: text that is not UTF-8, JSON that does not parse, JSON nested deeper than Python can
read, NaN/Infinity (not JSON). Text is read without newline translation, so a CRLF file gives the same text
(and the same token count) as the same bytes passed any other way.

Writers go through :func:`atomic_output`: a temporary file in the same folder, renamed over the target only
when complete, so an interrupted run never leaves half a file where a good one was; and
:func:`refuse_overwriting_inputs` compares every output with every input by device and inode (a hard link or
symlink to an input is the input) before anything is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from selfhost.errors import UsageError

__all__ = [
    "BadInputError",
    "read_text",
    "parse_json",
    "read_json",
    "iter_jsonl",
    "same_file",
    "refuse_overwriting_inputs",
    "atomic_output",
    "streamed_output",
    "write_text_atomic",
]


class BadInputError(UsageError):
    """An input file that cannot be used as it is; `where` is file[:line], `reason` the bare cause."""

    def __init__(self, where: str, reason: str, next_step: str | None = None) -> None:
        super().__init__(f"{where}: {reason}", next_step)
        self.where = where
        self.reason = reason


def read_text(path: Path | str) -> str:
    """The file as text: strict UTF-8 (a leading BOM dropped), line endings kept as they are."""
    p = Path(path)
    if p.is_dir():
        raise BadInputError(str(p), "is a folder, not a file")
    data = p.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise BadInputError(
            f"{p}:{line}",
            f"not UTF-8 text (byte offset {exc.start}: {exc.reason})",
            "save the file as UTF-8",
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(text: str | bytes, where: str) -> Any:
    """Parse JSON from an untrusted source; errors name `where` and the line."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        multiline = "\n" in (text if isinstance(text, str) else text.decode("utf-8", "replace"))
        at = f"line {exc.lineno}, column {exc.colno}" if multiline else f"column {exc.colno}"
        raise BadInputError(
            f"{where}:{exc.lineno}" if multiline else where, f"not valid JSON ({exc.msg} at {at})"
        ) from None
    except RecursionError:
        raise BadInputError(where, "JSON nested too deeply to read", "flatten the structure") from None
    except ValueError as exc:  # NaN / Infinity, or bytes that are not UTF-8
        raise BadInputError(where, str(exc)) from None


def read_json(path: Path | str) -> Any:
    return parse_json(read_text(path), str(path))


def iter_jsonl(path: Path | str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object) for each non-blank line; the first bad line raises BadInputError."""
    for lineno, line in enumerate(read_text(path).split("\n"), 1):
        if line.strip():
            yield lineno, parse_json(line, f"{path}:{lineno}")


def _identity(p: Path) -> tuple[int, int] | None:
    try:
        st = p.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def same_file(a: Path | str, b: Path | str) -> bool:
    """True when a and b name one file: same device and inode if both exist (hard links, symlinks), else the
    same resolved path."""
    ia, ib = _identity(Path(a)), _identity(Path(b))
    if ia is not None and ib is not None:
        return ia == ib
    return Path(a).resolve() == Path(b).resolve()


def refuse_overwriting_inputs(
    outputs: Mapping[str, Path | str | None], inputs: Mapping[str, Path | str | Iterable[Path | str] | None]
) -> None:
    """Exit 2 before anything is written if an output is an input, or two outputs are one file.

    Keys are the option names shown to the user (`--out`, `FILE`)."""
    flat_in: list[tuple[str, Path]] = []
    for name, value in inputs.items():
        if value is None:
            continue
        values = [value] if isinstance(value, str | Path) else list(value)
        flat_in += [(name, Path(v)) for v in values]
    outs = [(name, Path(v)) for name, v in outputs.items() if v is not None]
    for i, (oname, out) in enumerate(outs):
        for iname, inp in flat_in:
            if same_file(out, inp):
                raise UsageError(
                    f"{oname} {out} is the input {iname} {inp}: inputs are never modified",
                    "write the output to a new file",
                )
        for oname2, out2 in outs[i + 1 :]:
            if same_file(out, out2):
                raise UsageError(f"{oname} and {oname2} are the same file ({out})", "give each output its own file")


@contextlib.contextmanager
def atomic_output(path: Path | str, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """A file object whose content replaces `path` only when the block ends without an exception."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{target} is a folder", "give a file name for the output")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def streamed_output(path: Path | str) -> Iterator[IO[str]]:
    """A text file written line by line to `.NAME.partial` beside `path` and renamed over it when the block ends,
    normally or by an exception (whatever was written is complete lines worth keeping). A killed process leaves
    the partial file and the previous `path` untouched."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{target} is a folder", "give a file name for the output")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    f = open(partial, "w", encoding="utf-8")  # noqa: SIM115 (closed in finally, then renamed)
    try:
        yield f
    finally:
        f.close()
        os.replace(partial, target)


def write_text_atomic(path: Path | str, text: str) -> None:
    with atomic_output(path) as f:
        f.write(text)
