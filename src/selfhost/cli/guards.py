"""Checks every command gets before it runs: each numeric option within its allowed range (finite, with the
range in the message), and no output path that is an input (by inode: hard links and symlinks count).

Applied once to the whole command tree at registration (:func:`guard_commands`), so a new option cannot skip
them: tests/cli/test_guards.py fails for a numeric option that has no range here.
"""

from __future__ import annotations

import functools
import math
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from selfhost.errors import UsageError
from selfhost.files import refuse_overwriting_inputs

__all__ = ["RANGES", "OUTPUT_PARAMS", "MODEL_PARAMS", "Range", "guard_commands", "numeric_params"]

_DAY = 86400.0
_BIG = 1 << 31


@dataclass(frozen=True)
class Range:
    lo: float
    hi: float
    lo_open: bool = False  # lo itself not allowed

    def describe(self) -> str:
        lo = f"> {self.lo:g}" if self.lo_open else f"≥ {self.lo:g}"
        return f"{lo} and ≤ {self.hi:g}"

    def contains(self, v: float) -> bool:
        return math.isfinite(v) and (v > self.lo if self.lo_open else v >= self.lo) and v <= self.hi


def _positive(hi: float) -> Range:
    return Range(0, hi, lo_open=True)


# Option flag -> allowed range; "command --flag" overrides the flag's range for one command.
RANGES: dict[str, Range] = {
    "--burstiness": _positive(1e3),
    "--max-concurrency": Range(1, 1e6),
    "--requests": Range(1, 1e8),
    "--duration": _positive(31 * _DAY),
    "--warmup": Range(0, 1e6),
    "--output-tokens": Range(1, 1e7),
    "--trace-speedup": _positive(1e6),
    "--shared-prefix": Range(0, 1e7),
    "--multi-turn": Range(0, 1e4),
    "--timeout": _positive(7 * _DAY),
    "--search-max": _positive(1e7),
    "--seed": Range(0, 2**32 - 1),
    "--port": Range(0, 65535),  # 0: any free port
    "--ctx": Range(1, _BIG),
    "--threads": Range(1, 4096),
    "--ttft": Range(0, 3600),
    "--itl": Range(0, 3600),
    "--tokens-per-chunk": Range(1, 1e6),
    "--reasoning-tokens": Range(0, 1e7),
    "--ollama-num-ctx": Range(1, _BIG),
    "--reserve": Range(0, _BIG),
    "--size": Range(1, 1e7),
    "--overlap": Range(0, 1e7),
    "--upper": Range(1, _BIG),
    "--max-seq-len": Range(1, _BIG),
    "--near-dup-threshold": _positive(1),
    "--eval-fraction": Range(0, 1),
    "--line": Range(1, _BIG),
    "--gpus": Range(1, 1024),
    "--price-per-hour": Range(0, 1e6),
    "--purchase-price": Range(0, 1e10),
    "--lifetime-years": _positive(100),
    "--watts": Range(0, 1e7),
    "--idle-watts": Range(0, 1e7),
    "--kwh-price": Range(0, 1e3),
    "--utilization": _positive(1),
    "--parallel": Range(1, 65536),
    "--n-gpu-layers": Range(0, 1e5),
    "--n-cpu-moe": Range(0, 1e5),
    "--gpu-util": _positive(1),
    "--tp": Range(1, 1024),
    "--limit": Range(1, 1e8),
    "--max-drop": Range(0, 1),
    "--max-kld-p99": _positive(1e6),
    "--epochs": _positive(1e4),
    "--steps": Range(0, 1e9),
    "--batch-size": Range(1, 65536),
    "--grad-accum": Range(1, 65536),
    "--lr": _positive(10),
    "--warmup-ratio": Range(0, 1),
    "--rank": Range(1, 65536),
    "--alpha": Range(1, 1e6),
    "--dropout": Range(0, 1),
    "--checkpoint-every": Range(0, 1e9),
    "--eval-every": Range(0, 1e9),
    "--max-tokens": Range(1, 1e7),
    "--workers": Range(1, 64),
    "data split --eval-fraction": _positive(1),
}
# Exclusive upper bounds where a value of exactly hi is meaningless.
_HI_OPEN = {"--dropout", "--warmup-ratio", "data split --eval-fraction"}

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


def numeric_params(root: click.Command) -> Iterable[tuple[str, click.Command, click.Parameter]]:
    """(command path, command, parameter) for every int/float option in the tree."""

    def walk(cmd: click.Command, path: str) -> Iterable[tuple[str, click.Command, click.Parameter]]:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                yield from walk(sub, f"{path} {name}".strip())
            return
        for p in cmd.params:
            base = p.type.inner if isinstance(p.type, _Bounded) else p.type
            if isinstance(base, click.types.IntParamType | click.types.FloatParamType):
                yield path, cmd, p

    return walk(root, "")


def _flag(param: click.Parameter) -> str:
    return max(param.opts, key=len) if param.opts else param.name or ""


def range_for(path: str, param: click.Parameter) -> tuple[Range, bool] | None:
    flag = _flag(param)
    key = f"{path} {flag}"
    rng = RANGES.get(key) or RANGES.get(flag)
    return (rng, key in _HI_OPEN or flag in _HI_OPEN) if rng else None


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


def guard_commands(root: click.Command) -> None:
    """Bound every numeric option that has a range, and check paths before every command runs."""
    for path, _cmd, param in numeric_params(root):
        found = range_for(path, param)
        if found is not None and not isinstance(param.type, _Bounded):
            param.type = _Bounded(param.type, *found)

    def walk(cmd: click.Command) -> None:
        if isinstance(cmd, click.Group):
            for sub in cmd.commands.values():
                walk(sub)
        elif cmd.callback is not None and not getattr(cmd.callback, "_selfhost_guarded", False):
            cmd.callback = _guarded(cmd, cmd.callback)
            cmd.callback._selfhost_guarded = True  # type: ignore[attr-defined]

    walk(root)
