"""Checks every command gets before it runs: each numeric option within its allowed range (finite, with the
range in the message), and no output path that is an input (by inode: hard links and symlinks count).

Applied to each top-level command's whole tree when cli.main loads it (:func:`guard_commands`), so a new option
cannot skip them: tests/hostile fails for a numeric option that has no range in cli/ranges.py.
"""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from selfhost.cli.ranges import HI_OPEN, RANGES, Range
from selfhost.errors import UsageError
from selfhost.files import refuse_overwriting_inputs

__all__ = ["RANGES", "OUTPUT_PARAMS", "MODEL_PARAMS", "Range", "guard_commands", "numeric_params", "subcommands"]

# Parameters (by name) that are written; every other path parameter, and MODEL arguments that name a file, are
# read.
OUTPUT_PARAMS = frozenset(
    {"records_path", "html_path", "out", "log_path", "train_out", "eval_out", "json_path", "merge_dir", "out_dir"}
)
MODEL_PARAMS = frozenset({"model", "base", "tokenizer", "a", "b"})


class _Bounded(click.ParamType):
    """The option's own type (int or float) plus its range; NaN and infinities are never in range."""

    def __init__(self, inner: click.ParamType, rng: Range, hi_open: bool) -> None:
        self.inner, self.rng, self.hi_open = inner, rng, hi_open
        self.name = inner.name

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        v = self.inner.convert(value, param, ctx)
        ok = self.rng.contains(float(v)) and not (self.hi_open and v >= self.rng.hi)
        if not ok:
            allowed = self.rng.describe().replace("≤", "<") if self.hi_open else self.rng.describe()
            self.fail(f"{value!r} is out of range: must be {allowed}", param, ctx)
        return v

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str | None:
        return None


def subcommands(group: click.Group) -> dict[str, click.Command]:
    """Every subcommand of GROUP, including those a lazy group has not imported yet."""
    ctx = click.Context(group)
    found = {name: group.get_command(ctx, name) for name in group.list_commands(ctx)}
    return {name: cmd for name, cmd in found.items() if cmd is not None}


def numeric_params(root: click.Command, path: str = "") -> Iterable[tuple[str, click.Command, click.Parameter]]:
    """(command path, command, parameter) for every int/float option in the tree; PATH is ROOT's own path."""

    def walk(cmd: click.Command, path: str) -> Iterable[tuple[str, click.Command, click.Parameter]]:
        if isinstance(cmd, click.Group):
            for name, sub in subcommands(cmd).items():
                yield from walk(sub, f"{path} {name}".strip())
            return
        for p in cmd.params:
            base = p.type.inner if isinstance(p.type, _Bounded) else p.type
            if isinstance(base, click.types.IntParamType | click.types.FloatParamType):
                yield path, cmd, p

    return walk(root, path)


def _flag(param: click.Parameter) -> str:
    return max(param.opts, key=len) if param.opts else param.name or ""


def range_for(path: str, param: click.Parameter) -> tuple[Range, bool] | None:
    flag = _flag(param)
    key = f"{path} {flag}"
    rng = RANGES.get(key) or RANGES.get(flag)
    return (rng, key in HI_OPEN or flag in HI_OPEN) if rng else None


def _existing_path(value: Any) -> Path | None:
    if isinstance(value, str) and value and not value.startswith(("http://", "https://", "ollama:")):
        p = Path(value).expanduser()
        return p if p.exists() else None
    return None


def _check_paths(cmd: click.Command, kwargs: dict[str, Any]) -> None:
    outputs: dict[str, Any] = {}
    inputs: dict[str, Any] = {}
    for p in cmd.params:
        value = kwargs.get(p.name or "")
        if value is None or p.name is None:
            continue
        label = _flag(p) if p.opts and p.opts[0].startswith("-") else p.name.upper()
        if p.name in OUTPUT_PARAMS and isinstance(p.type, click.Path):
            outputs[label] = value
        elif isinstance(p.type, click.Path):
            inputs[label] = value
        elif p.name in MODEL_PARAMS or p.name == "more":
            values = value if isinstance(value, tuple) else (value,)
            found = [q for v in values if (q := _existing_path(v)) is not None]
            if found:
                inputs[label] = found
    if outputs:
        refuse_overwriting_inputs(outputs, inputs)


def _check_urls(kwargs: dict[str, Any]) -> None:
    """Server URLs (`url`, bench's TARGET) must be http(s)://host[:port]; bench also takes its own keywords."""
    for name in ("url", "target"):
        value = kwargs.get(name)
        if not isinstance(value, str) or (name == "target" and value in ("embedded", "compare")):
            continue
        parsed = urllib.parse.urlsplit(value)
        try:
            parsed.port  # noqa: B018 (raises ValueError for a port out of range)
        except ValueError:
            parsed = parsed._replace(netloc="")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise UsageError(
                f"{value!r} is not a URL of a server",
                "give http://HOST:PORT (e.g. http://127.0.0.1:8080)" + (" or `embedded`" if name == "target" else ""),
            )


def _guarded(cmd: click.Command, callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        _check_urls(kwargs)
        _check_paths(cmd, kwargs)
        return callback(*args, **kwargs)

    return run


def guard_commands(root: click.Command, path: str = "") -> None:
    """Bound every numeric option that has a range, and check paths before every command runs. PATH is ROOT's own
    command path (`bench` for the bench group), which ranges for one command are keyed by."""
    for where, _cmd, param in numeric_params(root, path):
        found = range_for(where, param)
        if found is not None and not isinstance(param.type, _Bounded):
            param.type = _Bounded(param.type, *found)

    def walk(cmd: click.Command) -> None:
        if isinstance(cmd, click.Group):
            for sub in subcommands(cmd).values():
                walk(sub)
        elif cmd.callback is not None and not getattr(cmd.callback, "_selfhost_guarded", False):
            cmd.callback = _guarded(cmd, cmd.callback)
            cmd.callback._selfhost_guarded = True  # type: ignore[attr-defined]

    walk(root)
