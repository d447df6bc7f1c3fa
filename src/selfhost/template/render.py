"""Render a chat template the way transformers' apply_chat_template does, in jinja2's sandbox.

Templates come from model files and are untrusted code (CVE-2024-34359): they are only ever compiled by an
ImmutableSandboxedEnvironment. What the template sees follows transformers 5.x
(src/transformers/utils/chat_template_utils.py), re-implemented here so transformers is not needed at run
time: trim_blocks and lstrip_blocks, the loopcontrols extension and the `{% generation %}` block, the globals
`raise_exception`, `strftime_now`, a `dict` and a `namespace` that refuse underscore names, a `tojson` that
keeps non-ASCII, reasoning fields aliased (`reasoning_content`/`thinking`/`reasoning`), only plain JSON data
passed in, and `continue_final_message` cutting the render right after the final message.
tests/template/test_parity.py compares the output byte for byte with transformers on llama.cpp's templates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, NoReturn

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.ext import Extension, loopcontrols

from selfhost.errors import SelfhostError
from selfhost.template.sandbox import LIMITS, BoundedEnvironment, TemplateLimitError, start_budget

__all__ = ["TemplateRaised", "TemplateRenderError", "render_chat", "compile_template", "REASONING_FIELDS"]

REASONING_FIELDS = ("reasoning_content", "thinking", "reasoning")
_CONTINUE_TAG = "CONTINUE_FINAL_MESSAGE_TAG "


class TemplateRaised(SelfhostError):
    """The template itself called raise_exception (e.g. it rejects a system message)."""

    exit_code = 3


class TemplateRenderError(SelfhostError):
    exit_code = 3


class _Refusal(TemplateError):
    """raise_exception(...) inside a template."""


def _raise_exception(message: str) -> NoReturn:
    raise _Refusal(message)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


class _GenerationBlock(Extension):
    """`{% generation %}...{% endgeneration %}` marks assistant text for training masks; rendering keeps the body."""

    tags = {"generation"}

    def parse(self, parser: Any) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller: Any) -> str:
        return str(caller())


class _SafeDict:
    """`dict(...)` for templates, without exposing the dict type itself."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict(*args, **kwargs)

    def fromkeys(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict.fromkeys(*args, **kwargs)


class _SafeNamespace(jinja2.utils.Namespace):
    """A namespace that refuses underscore-prefixed names (no path to CPython internals)."""

    def __init__(*args: Any, **kwargs: Any) -> None:  # noqa: N805 (jinja's own signature trick)
        self, rest = args[0], args[1:]
        attrs = dict(*rest, **kwargs)
        for name in attrs:
            _SafeNamespace._check(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name: str, value: Any) -> None:
        _SafeNamespace._check(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check(name: Any) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise SecurityError(f"templates cannot set underscore-prefixed namespace attributes ({name!r})")


@lru_cache(maxsize=64)
def compile_template(source: str) -> jinja2.Template:
    env = BoundedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[_GenerationBlock, loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    env.globals["dict"] = _SafeDict()
    env.globals["namespace"] = _SafeNamespace
    try:
        return env.from_string(source)
    except RecursionError:
        raise TemplateRenderError("chat template does not parse: nested too deeply") from None
    except TemplateError as exc:
        raise TemplateRenderError(
            f"chat template does not parse: {type(exc).__name__}: {exc}",
            "the model's chat template is broken or uses syntax jinja2 lacks",
        ) from None


def _plain(value: Any) -> Any:
    """Only JSON-shaped data reaches the template: no objects whose methods the sandbox does not know."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return f"<{type(value).__name__}>"


def _alias_reasoning(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    reasoning = next((message[k] for k in REASONING_FIELDS if message.get(k) is not None), None)
    if reasoning is None:
        return message
    return {"thinking": reasoning, **message, "reasoning_content": reasoning}


def _render_bounded(compiled: jinja2.Template, context: dict[str, Any]) -> str:
    start_budget()
    parts: list[str] = []
    size = 0
    for part in compiled.generate(**context):
        size += len(part)
        if size > LIMITS["output_chars"]:
            raise TemplateLimitError(
                "output_chars", f"the rendered prompt passed {LIMITS['output_chars']:,} characters"
            )
        parts.append(part)
    return "".join(parts)


def render_chat(
    template: str,
    messages: Sequence[dict[str, Any]],
    *,
    add_generation_prompt: bool = True,
    bos_token: str | None = None,
    eos_token: str | None = None,
    tools: Sequence[dict[str, Any]] | None = None,
    documents: Sequence[dict[str, Any]] | None = None,
    continue_final_message: bool = False,
    **variables: Any,
) -> str:
    compiled = compile_template(template)
    chat = [_alias_reasoning(m) for m in _plain(list(messages))]
    final = None
    if continue_final_message:
        if not chat or not isinstance(chat[-1].get("content"), str):
            raise TemplateRenderError("continue_final_message needs a final message with text content")
        final = chat[-1]["content"]
        chat[-1] = {**chat[-1], "content": final + _CONTINUE_TAG}
    context: dict[str, Any] = {
        "messages": chat,
        "tools": _plain(list(tools)) if tools is not None else None,
        "documents": _plain(list(documents)) if documents is not None else None,
        "add_generation_prompt": add_generation_prompt,
        **_plain(variables),
    }
    if bos_token is not None:
        context["bos_token"] = bos_token
    if eos_token is not None:
        context["eos_token"] = eos_token
    try:
        out = _render_bounded(compiled, context)
    except RecursionError:
        raise TemplateLimitError("recursion", "a macro or loop recursed without end") from None
    except OverflowError as exc:  # jinja's own safe_range refuses ranges over 100,000 items
        raise TemplateLimitError("loop_iterations", f"the template asked for too large a range ({exc})") from None
    except MemoryError:
        raise TemplateLimitError("output_chars", "the render ran out of memory") from None
    except _Refusal as exc:
        raise TemplateRaised(f"the chat template refused the conversation: {exc}") from None
    except TemplateError as exc:
        raise TemplateRenderError(
            f"chat template failed: {type(exc).__name__}: {exc}",
            "the model's chat template is broken or does not accept this conversation",
        ) from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        raise TemplateRenderError(
            f"chat template failed on this conversation: {type(exc).__name__}: {exc}",
            "check the message fields the template expects (e.g. tool-call arguments)",
        ) from None
    if final is not None:
        tag = _CONTINUE_TAG.strip()
        if final.strip() not in out or tag not in out:
            raise TemplateRenderError("continue_final_message: the template dropped part of the final message")
        at = out.rindex(tag)
        out = out[:at] if out[at : at + len(_CONTINUE_TAG)] == _CONTINUE_TAG else out[:at].rstrip()
    return out
