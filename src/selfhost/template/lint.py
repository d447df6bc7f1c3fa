"""Lint a chat template: what family it is, what it supports (probed by rendering), and known bug classes.

Family detection looks for each family's own control markers in the template source; a template that
matches none is reported as `unknown` — never silently treated as some default.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from selfhost.errors import SelfhostError
from selfhost.template.render import render_chat

__all__ = ["Finding", "LintReport", "detect_family", "lint_template", "security_scan", "control_tokens_in"]

# (family, markers that must all appear in the template source). First match wins, most specific first.
FAMILIES: list[tuple[str, tuple[str, ...]]] = [
    ("gpt-oss/harmony", ("<|start|>", "<|channel|>")),
    ("llama3", ("<|start_header_id|>", "<|eot_id|>")),
    ("command-r", ("<|START_OF_TURN_TOKEN|>",)),
    ("deepseek", ("<｜User｜>",)),
    ("gemma", ("<start_of_turn>",)),
    ("phi3", ("<|user|>", "<|end|>")),
    ("zephyr", ("<|user|>", "<|assistant|>")),
    ("mistral-v7", ("[SYSTEM_PROMPT]", "[INST]")),
    ("mistral-v3-tekken", ("[INST]", "[AVAILABLE_TOOLS]", "[/INST]' + ")),
    ("mistral-v3", ("[INST]", "[AVAILABLE_TOOLS]")),
    ("llama2", ("[INST]", "<<SYS>>")),
    ("mistral-v1", ("[INST]", "[/INST]")),
    ("chatml", ("<|im_start|>", "<|im_end|>")),
    ("alpaca", ("### Instruction",)),
    ("vicuna", ("USER:", "ASSISTANT:")),
]
END_OF_TURN = (
    "<|im_end|>",
    "<|eot_id|>",
    "<end_of_turn>",
    "<|end|>",
    "</s>",
    "<|END_OF_TURN_TOKEN|>",
    "<｜end▁of▁sentence｜>",
    "<|return|>",
    "[/INST]",
    "<|endoftext|>",
)
# Server-side template injection patterns (CVE-2024-34359, CVE-2026-5760, CVE-2025-27516).
_SSTI = [
    (re.compile(r"__\w+__"), "dunder attribute access"),
    (re.compile(r"\blipsum\b|\bcycler\b|\bjoiner\b"), "jinja global usable to reach Python internals"),
    (re.compile(r"\|\s*attr\b"), "the |attr filter"),
    (re.compile(r"\b(popen|subprocess|__import__|eval|exec)\b"), "process or code execution name"),
    (re.compile(r"\.(mro|func_globals|f_globals|gi_frame)\b"), "interpreter introspection"),
]

_PROBE_USER = "PROBE_USER_TEXT"
_PROBE_USER2 = "PROBE_SECOND_USER"
_PROBE_SYSTEM = "PROBE_SYSTEM_TEXT"
_PROBE_ASSISTANT = "PROBE_ASSISTANT_TEXT"


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # "error", "warning", "info"
    message: str


@dataclass
class LintReport:
    family: str
    supports_system_role: bool
    supports_tools: bool
    supports_generation_prompt: bool
    supports_multi_turn: bool
    system_placement: str | None
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["findings"] = [asdict(f) for f in self.findings]
        return d


def detect_family(template: str) -> str:
    for family, markers in FAMILIES:
        if all(m in template for m in markers):
            return family
    return "unknown"


def security_scan(template: str) -> list[Finding]:
    out = []
    for pattern, what in _SSTI:
        m = pattern.search(template)
        if m:
            out.append(
                Finding(
                    "ssti",
                    "error",
                    f"template contains {what} ({m.group(0)!r}): possible sandbox "
                    "escape attempt; selfhost renders it only inside jinja2's sandbox",
                )
            )
    return out


def control_tokens_in(messages: list[dict[str, Any]], special_tokens: list[str]) -> list[Finding]:
    out = []
    for i, m in enumerate(messages):
        content = m.get("content")
        if isinstance(content, str):
            for tok in special_tokens:
                if tok and tok in content:
                    out.append(
                        Finding(
                            "control_token_in_content",
                            "warning",
                            f"message {i} ({m.get('role')}) contains the control token {tok!r}: it would "
                            "be parsed as structure, not text",
                        )
                    )
    return out


def _try(template: str, messages: list[dict[str, Any]], **kw: Any) -> str | None:
    try:
        return render_chat(template, messages, **kw)
    except SelfhostError:
        return None


def lint_template(
    template: str, *, bos_token: str | None = None, eos_token: str | None = None, add_bos_token: bool | None = None
) -> LintReport:
    special = {"bos_token": bos_token or "", "eos_token": eos_token or ""}
    findings = security_scan(template)
    family = detect_family(template)
    if family == "unknown":
        findings.append(
            Finding(
                "unknown_family",
                "info",
                "no known chat family's markers found; the template is used as it is, with no assumptions",
            )
        )
    user = [{"role": "user", "content": _PROBE_USER}]
    with_gen = _try(template, user, add_generation_prompt=True, **special)
    without_gen = _try(template, user, add_generation_prompt=False, **special)
    if with_gen is None:
        findings.append(Finding("render_fails", "error", "the template cannot render a single user message"))
    gen_ok = with_gen is not None and without_gen is not None and with_gen != without_gen
    if with_gen is not None and not gen_ok:
        findings.append(
            Finding(
                "no_generation_prompt",
                "error",
                "add_generation_prompt changes nothing: the model is not told its turn begins, "
                "so it may continue the user's text",
            )
        )
    # System role and where the system prompt lands.
    conv = [
        {"role": "system", "content": _PROBE_SYSTEM},
        {"role": "user", "content": _PROBE_USER},
        {"role": "assistant", "content": _PROBE_ASSISTANT},
        {"role": "user", "content": _PROBE_USER2},
    ]
    sys_render = _try(template, conv, add_generation_prompt=True, **special)
    supports_system = sys_render is not None and _PROBE_SYSTEM in sys_render
    placement = None
    if sys_render is None:
        findings.append(
            Finding(
                "no_system_role",
                "warning",
                "the template rejects the system role: put instructions in the first user message instead",
            )
        )
    elif _PROBE_SYSTEM not in sys_render:
        findings.append(Finding("system_dropped", "error", "the template silently drops the system prompt"))
    else:
        at, u1, u2 = (sys_render.index(x) for x in (_PROBE_SYSTEM, _PROBE_USER, _PROBE_USER2))
        if at < u1:
            placement = "start"
        elif at < u2:
            placement = "last_user_turn"
            findings.append(
                Finding(
                    "system_in_last_user_turn",
                    "warning",
                    "the system prompt is placed in the last user turn, not at the start (Mistral "
                    "v3 style); a server or trainer using another template puts it elsewhere",
                )
            )
        else:
            placement = "after_last_user_turn"
    multi_ok = sys_render is not None or _try(template, conv[1:], add_generation_prompt=True, **special) is not None
    # End of turn after an assistant message.
    closed = _try(template, conv[1:3], add_generation_prompt=False, **special)
    if closed is not None and _PROBE_ASSISTANT in closed:
        tail = closed[closed.index(_PROBE_ASSISTANT) + len(_PROBE_ASSISTANT) :]
        markers = [*END_OF_TURN, *([eos_token] if eos_token else [])]
        if not any(m and m in tail for m in markers):
            findings.append(
                Finding(
                    "missing_end_of_turn",
                    "warning",
                    "nothing marks the end of an assistant turn: a fine-tune on this template never learns to stop",
                )
            )
    # Double BOS: the template writes BOS and the tokenizer adds another.
    if with_gen is not None and bos_token and with_gen.startswith(bos_token) and add_bos_token:
        findings.append(
            Finding(
                "double_bos",
                "error",
                f"the template starts with {bos_token!r} and the tokenizer adds BOS too: the model "
                "sees two; tokenize rendered prompts with add_special=False",
            )
        )
    # Tools, and tool-call arguments as a JSON string instead of a mapping.
    tools_ok = False
    tool = {
        "type": "function",
        "function": {"name": "probe_tool", "description": "probe", "parameters": {"type": "object", "properties": {}}},
    }
    tool_render = _try(template, user, tools=[tool], add_generation_prompt=True, **special)
    tools_ok = tool_render is not None and "probe_tool" in tool_render
    if "tool_call" in template or "tool_calls" in template:
        args = {"city": "Paris"}
        msgs: list[dict[str, Any]] = [
            {"role": "user", "content": _PROBE_USER},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"type": "function", "function": {"name": "probe_tool", "arguments": json.dumps(args)}}],
            },
        ]
        as_string = _try(template, msgs, add_generation_prompt=False, **special)
        if as_string is None or '\\"city\\"' in as_string:
            findings.append(
                Finding(
                    "tool_arguments_must_be_mapping",
                    "warning",
                    "tool-call arguments given as a JSON string "
                    + ("make this template fail" if as_string is None else "are encoded twice")
                    + ": pass them as a mapping (dict), as OpenAI-style clients send strings",
                )
            )
    return LintReport(family, supports_system, tools_ok, gen_ok, multi_ok, placement, findings)
