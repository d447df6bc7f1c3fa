"""Options shared by commands, and options generated from config dataclasses (see selfhost.settings)."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from selfhost.settings import cli_meta

__all__ = ["json_option", "in_file", "out_file", "out_dir", "config_options", "config_from"]

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C")


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object (errors too).")(f)


def in_file(flag: str, name: str, help: str, **kw: Any) -> Callable[[F], F]:  # noqa: A002
    """An option naming a file that must exist."""
    kw.setdefault("default", None)
    return click.option(flag, name, type=click.Path(exists=True, dir_okay=False, path_type=Path), help=help, **kw)


def out_file(flag: str, name: str, help: str, **kw: Any) -> Callable[[F], F]:  # noqa: A002
    """An option naming a file that will be written (cli.guards refuses one that is an input)."""
    kw.setdefault("default", None)
    return click.option(flag, name, type=click.Path(dir_okay=False, path_type=Path), help=help, **kw)


def out_dir(flag: str, name: str, help: str, **kw: Any) -> Callable[[F], F]:  # noqa: A002
    kw.setdefault("default", None)
    return click.option(flag, name, type=click.Path(file_okay=False, path_type=Path), help=help, **kw)


def _base_type(hint: Any) -> Any:
    """int for `int | None`, str for `tuple[str, ...]`, the type itself otherwise."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is tuple:
        return tuple
    return hint


def config_options(cls: type, skip: tuple[str, ...] = ()) -> Callable[[F], F]:
    """click options for every `setting` field of dataclass CLS, in field order."""
    hints = typing.get_type_hints(cls)
    decorators = []
    for f in dataclasses.fields(cls):
        meta = cli_meta(f)
        if meta is None or f.name in skip:
            continue
        base = _base_type(hints[f.name])
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        names = [flag, *([meta["short"]] if meta["short"] else []), f.name]
        kw: dict[str, Any] = {"help": meta["help"]}
        if base is bool:
            kw |= {"is_flag": True, "default": False}
        else:
            default = ",".join(f.default) if base is tuple else f.default
            kw |= {"default": default, "show_default": meta["show_default"] and default is not None}
            choices = meta["choices"]
            if choices is not None:
                kw["type"] = click.Choice(list(choices() if callable(choices) else choices))
            elif meta["path"] == "in":
                kw["type"] = click.Path(exists=True, dir_okay=False, path_type=Path)
            elif meta["path"] in ("out", "dir"):
                kw["type"] = click.Path(dir_okay=meta["path"] == "dir", file_okay=meta["path"] == "out", path_type=Path)
            elif base in (int, float):
                kw["type"] = base
        decorators.append(click.option(*names, **kw))

    def apply(fn: F) -> F:
        for d in reversed(decorators):
            fn = d(fn)
        return fn

    return apply


def config_from(cls: type[C], values: dict[str, Any], **overrides: Any) -> C:
    """Build CLS from parsed options, taking (and removing) its fields from VALUES."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        meta = cli_meta(f)
        if meta is None or f.name not in values:
            continue
        v = values.pop(f.name)
        if _base_type(hints[f.name]) is tuple and isinstance(v, str):
            v = tuple(x.strip() for x in v.split(",") if x.strip())
        kwargs[f.name] = (not v) if meta["invert"] else v
    return cls(**(kwargs | overrides))


class DefaultGroup(click.Group):
    """A group whose first subcommand is implied: `selfhost tune MODEL DATA` is `selfhost tune train MODEL DATA`.

    Keeps the spellings from before the subcommands existed working, while `--help` lists the real ones."""

    def __init__(self, *args: Any, default: str, **kwargs: Any) -> None:
        kwargs.setdefault("no_args_is_help", False)
        super().__init__(*args, **kwargs)
        self.default = default

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        first = args[0] if args else None
        if first is None or (first not in self.commands and first not in ("-h", "--help")):
            args = [self.default, *args]
        return super().parse_args(ctx, args)
