"""Where a template command's template comes from: MODEL's own, or a --template FILE with given special tokens;
and the extra variables a render is given (`--var KEY=JSON`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selfhost.errors import UsageError
from selfhost.files import parse_json, read_text
from selfhost.models.spec import ModelSpec

__all__ = ["template_source", "template_of", "parse_vars"]


def template_source(
    model: str | None, template: Path | None, bos: str | None = None, eos: str | None = None
) -> tuple[str, dict[str, str | None], bool | None, ModelSpec | None]:
    """(template text, special tokens, add_bos_token, spec or None) from MODEL or a template FILE."""
    if template is not None:
        return read_text(template), {"bos_token": bos, "eos_token": eos}, None, None
    from selfhost.models.resolve import resolve_model

    spec = resolve_model(model)
    if not spec.chat_template:
        raise UsageError(f"{spec.name} has no chat template", "pass --template FILE")
    tok = spec.tokenizer
    special = {"bos_token": bos or tok.bos_token, "eos_token": eos or tok.eos_token}
    return spec.chat_template, special, tok.add_bos_token, spec


def template_of(name: str) -> tuple[str, dict[str, str]]:
    """A .jinja file's text, or a MODEL's template with its special tokens (what `template diff` compares)."""
    p = Path(name)
    if p.suffix in (".jinja", ".j2", ".txt") and p.is_file():
        return read_text(p), {}
    text, special, _, _ = template_source(name, None)
    return text, {k: v for k, v in special.items() if v}


def parse_vars(items: tuple[str, ...]) -> dict[str, Any]:
    """`KEY=JSON` pairs → template variables (e.g. enable_thinking=false)."""
    extra: dict[str, Any] = {}
    for v in items:
        key, sep, value = v.partition("=")
        if not sep:
            raise UsageError(f"--var {v!r} is not KEY=JSON")
        try:
            extra[key] = parse_json(value, f"--var {key}")
        except UsageError:
            raise UsageError(f"--var {key}: {value!r} is not JSON", "strings need quotes: --var name='\"x\"'") from None
    return extra
