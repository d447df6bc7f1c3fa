"""Settings declared once: a config dataclass field carries its own help text and command-line spelling.

The CLI generates its options from these fields (`selfhost.cli.options.config_options`) and builds the config back
from the parsed values (`config_from`), so an option is written in one place: its field, with its default and help.
The Python API takes the same dataclasses. No click here: the library does not depend on the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import MISSING, Field, field
from typing import Any

__all__ = ["setting", "cli_meta"]


def setting(
    default: Any = None,
    help: str = "",  # noqa: A002 (the word click and argparse use)
    *,
    flag: str | None = None,
    short: str | None = None,
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None,
    invert: bool = False,
    path: str | None = None,
    show_default: bool = True,
) -> Any:
    """A dataclass field that is also a command-line option.

    flag: the option's spelling (default: --field-name); invert: a bool field set by a `--no-…` flag; path:
    "in" (an existing file), "out" (a file that will be written) or "dir"; choices: allowed values, or a function
    that returns them (an engine registry)."""
    meta = {
        "help": help,
        "flag": flag,
        "short": short,
        "choices": choices,
        "invert": invert,
        "path": path,
        "show_default": show_default,
    }
    if isinstance(default, list | dict | set):
        raise TypeError("mutable default: use a tuple")
    return field(default=default, metadata={"cli": meta})


def cli_meta(f: Field[Any]) -> dict[str, Any] | None:
    """The option metadata of a field declared with :func:`setting`, or None."""
    meta = f.metadata.get("cli")
    if meta is None or f.default is MISSING:
        return None
    return dict(meta)
