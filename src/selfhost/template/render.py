"""Render a chat template the way transformers' apply_chat_template does, in jinja2's sandbox.

Templates come from model files and are untrusted code (CVE-2024-34359): they are only ever
compiled by an ImmutableSandboxedEnvironment. Environment settings and globals follow
transformers (src/transformers/utils/chat_template_utils.py: trim_blocks, lstrip_blocks,
loopcontrols, `raise_exception`, `strftime_now`, `tojson` that keeps non-ASCII).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, NoReturn

from jinja2 import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from selfhost.errors import SelfhostError

__all__ = ["TemplateRaised", "TemplateRenderError", "render_chat"]


class TemplateRaised(SelfhostError):
    """The template itself called raise_exception (e.g. it rejects a system message)."""

    exit_code = 3


class TemplateRenderError(SelfhostError):
    exit_code = 3


def _raise_exception(message: str) -> NoReturn:
    raise TemplateRaised(f"the chat template refused the conversation: {message}")


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


@lru_cache(maxsize=32)
def _compile(source: str) -> Any:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(source)


def render_chat(
    template: str,
    messages: Sequence[dict[str, Any]],
    *,
    add_generation_prompt: bool = True,
    bos_token: str | None = None,
    eos_token: str | None = None,
    **variables: Any,
) -> str:
    try:
        compiled = _compile(template)
        return str(
            compiled.render(
                messages=list(messages),
                add_generation_prompt=add_generation_prompt,
                bos_token=bos_token or "",
                eos_token=eos_token or "",
                **variables,
            )
        )
    except SelfhostError:
        raise
    except TemplateError as exc:
        raise TemplateRenderError(
            f"chat template failed: {type(exc).__name__}: {exc}", "the model's chat template is broken or unsupported"
        ) from None
