"""Every official template in llama.cpp's models/templates, rendered with every standard conversation,
byte for byte against transformers' own renderer (a test-only dependency)."""

from __future__ import annotations

from typing import Any

from selfhost.errors import SelfhostError
from selfhost.template.conversations import CONVERSATIONS
from selfhost.template.render import render_chat

SPECIAL = {"bos_token": "<s>", "eos_token": "</s>"}


def transformers_render(template: str, conv: dict[str, Any]) -> str:
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, _ = render_jinja_template(
        conversations=[conv["messages"]],
        tools=conv.get("tools"),
        chat_template=template,
        add_generation_prompt=conv.get("add_generation_prompt", False),
        continue_final_message=conv.get("continue_final_message", False),
        **SPECIAL,
    )
    return str(rendered[0])


def ours(template: str, conv: dict[str, Any]) -> str:
    return render_chat(
        template,
        conv["messages"],
        tools=conv.get("tools"),
        add_generation_prompt=conv.get("add_generation_prompt", False),
        continue_final_message=conv.get("continue_final_message", False),
        **SPECIAL,
    )


def outcome(fn: Any, template: str, conv: dict[str, Any]) -> tuple[str, str]:
    try:
        return "ok", fn(template, conv)
    except SelfhostError as exc:
        return "error", exc.message
    except Exception as exc:  # transformers raises jinja2/ValueError types
        return "error", f"{type(exc).__name__}: {exc}"


def test_byte_for_byte_with_transformers(llama_cpp_templates: dict[str, str]) -> None:
    total = same = 0
    differences = []
    for name, template in sorted(llama_cpp_templates.items()):
        for conv_name, conv in CONVERSATIONS.items():
            total += 1
            theirs = outcome(transformers_render, template, conv)
            mine = outcome(ours, template, conv)
            # Agreement: the same bytes, or both refuse the conversation.
            if theirs[0] == mine[0] and (theirs[0] == "error" or theirs[1] == mine[1]):
                same += 1
            else:
                differences.append((name, conv_name, theirs, mine))
    rate = same / total
    report = "\n".join(
        f"{n} / {c}: transformers={t[0]} {t[1][:120]!r} selfhost={m[0]} {m[1][:120]!r}" for n, c, t, m in differences
    )
    print(f"parity {same}/{total} = {rate:.2%}\n{report}")
    assert rate == 1.0, report
