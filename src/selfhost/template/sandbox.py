"""The bounded sandbox that untrusted chat templates run in.

jinja2's ImmutableSandboxedEnvironment stops templates from reaching Python internals, but not from running
forever or filling memory: `{% for i in range(100000) %}{% for j in range(100000) %}` runs for hours and
`{{ 'a' * 10**10 }}` allocates 10 GB. Every render here runs under a :class:`RenderBudget`:

- loop iterations: every `for` loop charges its length (or each item, for iterables without one);
- wall time: checked on loop items, calls, operators and output chunks;
- size: string/list repetition, `+`, `~` and `**` are checked before they allocate, calls with huge width
  arguments (`'x'.center(10**9)`) are refused, and the rendered output is counted as it streams;
- recursion: a macro that calls itself without end stops at Python's recursion limit.

Past a limit the render raises :class:`TemplateLimitError` (exit 3) naming the limit. The checks are counters
on paths jinja already takes, so ordinary renders stay as fast as before (tests/template/test_parity.py).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from jinja2 import nodes
from jinja2.runtime import str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment

from selfhost.errors import SelfhostError

__all__ = ["LIMITS", "RenderBudget", "TemplateLimitError", "BoundedEnvironment", "budget"]

# The limits, shown in the README's error section.
LIMITS = {
    "template_bytes": 1 << 20,  # source size: real chat templates are under 40 KB
    "output_chars": 16 << 20,  # a rendered prompt (16 Mi characters is ~4M tokens)
    "loop_iterations": 2_000_000,  # summed over every loop of one render
    "seconds": 5.0,  # wall time of one render
    "operations": 20_000_000,  # attribute lookups, calls and filters in one render
    "recursion": 1000,  # Python's own frame limit; a recursive macro reaches it after a few hundred calls
}


class TemplateLimitError(SelfhostError):
    exit_code = 3

    def __init__(self, limit: str, detail: str) -> None:
        super().__init__(
            f"chat template stopped: {detail} (limit {limit} = {LIMITS[limit]:,})",
            "the template is hostile or broken; use a trusted template (--template FILE)",
        )
        self.limit = limit


class RenderBudget:
    __slots__ = ("deadline", "iterations", "operations")

    def __init__(self) -> None:
        self.deadline = time.perf_counter() + LIMITS["seconds"]
        self.iterations = 0
        self.operations = 0

    def charge_iterations(self, n: int) -> None:
        self.iterations += n
        if self.iterations > LIMITS["loop_iterations"]:
            raise TemplateLimitError("loop_iterations", f"loops ran more than {LIMITS['loop_iterations']:,} times")
        self.tick()

    def tick(self) -> None:
        self.operations += 1
        if self.operations > LIMITS["operations"]:
            raise TemplateLimitError("operations", "too many operations")
        if self.operations & 255 == 0 and time.perf_counter() > self.deadline:
            raise TemplateLimitError("seconds", f"the render ran longer than {LIMITS['seconds']} s")

    def check_size(self, n: int, what: str) -> None:
        if n > LIMITS["output_chars"]:
            raise TemplateLimitError("output_chars", f"{what} would hold {n:,} items")


_local = threading.local()


def budget() -> RenderBudget:
    """The budget of the render running on this thread (a fresh one outside any render)."""
    b = getattr(_local, "budget", None)
    if b is None:
        b = _local.budget = RenderBudget()
    return b


def start_budget() -> RenderBudget:
    _local.budget = RenderBudget()
    return _local.budget


def _counted(items: Iterable[Any], b: RenderBudget) -> Iterator[Any]:
    for item in items:
        b.charge_iterations(1)
        yield item


def _bounded_loop(items: Any) -> Any:
    b = budget()
    try:
        n = len(items)
    except TypeError:
        return _counted(items, b)
    b.charge_iterations(max(n, 1))
    return items


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | tuple) else None


def _huge_int_argument(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    limit = LIMITS["output_chars"]
    for a in args:
        if type(a) is int and a > limit:
            return True
    return bool(kwargs) and any(type(a) is int and a > limit for a in kwargs.values())


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        if len(source) > LIMITS["template_bytes"]:
            raise TemplateLimitError("template_bytes", f"the template is {len(source):,} characters long")
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, "_selfhost_bounded_loop", [], [], None, None, lineno=loop.lineno)
        for concat in tree.find_all(nodes.Concat):
            concat.nodes = [nodes.Filter(nodes.List(concat.nodes), "_selfhost_bounded_join", [], [], None, None)]
        return tree

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters["_selfhost_bounded_loop"] = _bounded_loop
        self.filters["_selfhost_bounded_join"] = _bounded_join
        for name in ("center", "indent", "format", "wordwrap", "truncate"):
            self.filters[name] = _refusing_huge_widths(self.filters[name])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        b = budget()
        b.tick()
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                n = _size(seq)
                if n is not None and type(times) is int:
                    b.check_size(n * max(times, 0), "a repeated string or list")
        elif operator == "**":
            if type(left) is int and type(right) is int and right > 0 and abs(left) > 1:
                if abs(left).bit_length() * right > 4096:
                    raise TemplateLimitError("output_chars", f"{left} ** {right} is too large a number")
        elif operator == "%" and isinstance(left, str):
            _refuse_huge_format_widths(left)
        elif operator == "+":
            nl, nr = _size(left), _size(right)
            if nl is not None and nr is not None:
                b.check_size(nl + nr, "a joined string or list")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget().tick()
        if _huge_int_argument(args, kwargs):
            raise TemplateLimitError("output_chars", "a call asked for a width or count beyond the output limit")
        return super().call(__context, __obj, *args, **kwargs)

    # Lookups are not counted: they are the commonest operation in real templates, and a body of lookups alone
    # is bounded by the loop-iteration budget.
    def getattr(self, obj: Any, attribute: str) -> Any:
        if attribute in ("format", "format_map") and isinstance(obj, str):
            _refuse_huge_format_widths(obj)
        return super().getattr(obj, attribute)


def _bounded_join(parts: list[Any]) -> str:
    out = str_join(parts)
    budget().check_size(len(out), "a joined string")
    return out


_DIGITS = re.compile(r"\d{6,}")


def _refuse_huge_format_widths(fmt: str) -> None:
    """'%0999999999d' and '{:>999999999}' allocate their width before any check could run."""
    if any(int(m.group()) > LIMITS["output_chars"] for m in _DIGITS.finditer(fmt)):
        raise TemplateLimitError("output_chars", "a format string asked for a width beyond the output limit")


def _refusing_huge_widths(f: Any) -> Any:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], str) and f.__name__ == "do_format":
            _refuse_huge_format_widths(args[0])
        if _huge_int_argument(args[1:], kwargs):
            raise TemplateLimitError("output_chars", "a filter asked for a width beyond the output limit")
        return f(*args, **kwargs)

    for attr in ("jinja_pass_arg",):
        if hasattr(f, attr):
            setattr(wrapped, attr, getattr(f, attr))
    return wrapped
