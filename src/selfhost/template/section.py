"""The chat template in the check report: lint findings and the live server's rendering verified."""

from __future__ import annotations

from typing import Any

from selfhost.models.spec import ModelSpec
from selfhost.report.section import Section

__all__ = ["template_section", "lint_section", "verify_section", "diff_section"]


def template_section(spec: ModelSpec, server_url: str) -> Section:
    """The chat template: lint findings, and proof that a real server renders it as the model expects."""
    from selfhost.template.lint import lint_template
    from selfhost.template.verify import verify_server

    tok = spec.tokenizer
    report = lint_template(
        spec.chat_template or "", bos_token=tok.bos_token, eos_token=tok.eos_token, add_bos_token=tok.add_bos_token
    )
    verified = verify_server(server_url, spec)
    rows = [
        ("family", report.family),
        ("system role", str(report.supports_system_role)),
        ("tools", str(report.supports_tools)),
        ("generation prompt", str(report.supports_generation_prompt)),
        (
            "live server (llama-cpp-python)",
            f"{'agrees' if verified['agree'] else 'DIFFERS'}: chat endpoint {verified['chat']['prompt_tokens']} "
            f"prompt tokens, selfhost's render {verified['raw_completion']['prompt_tokens']}; same greedy output: "
            f"{verified['outputs_agree']}",
        ),
    ]
    rows += [(f"{f.severity}: {f.code}", f.message) for f in report.findings]
    notes = [
        "Rendered in jinja2's sandbox exactly as transformers' apply_chat_template would (byte parity on "
        "llama.cpp's 70 official templates). Verification sends one conversation through the server's chat "
        "endpoint and selfhost's rendering of it through the raw completion endpoint, at temperature 0."
    ]
    return Section(
        "template",
        "Chat template (linted, verified on a live server)",
        {"lint": report.to_dict(), "verify": verified},
        rows,
        [],
        notes,
    )


def lint_section(d: dict[str, Any]) -> Section:
    """`selfhost template lint`: what the template supports, then each finding."""
    rows = [
        ("family", d["family"]),
        ("system role", str(d["supports_system_role"])),
        ("tools", str(d["supports_tools"])),
        ("generation prompt", str(d["supports_generation_prompt"])),
        ("system prompt placement", str(d["system_placement"])),
    ] + [(f"{f['severity']}: {f['code']}", f["message"]) for f in d["findings"]]
    return Section("template_lint", "template lint", d, rows)


def verify_section(url: str, r: dict[str, Any]) -> Section:
    """`selfhost template verify`: agree or differ first, then the two renders' token counts and outputs."""
    verdict = "[green]agree[/]" if r["agree"] else "[red]differ[/]"
    chat, raw = r["chat"], r["raw_completion"]
    rows = [
        ("chat endpoint", f"{chat['prompt_tokens']} prompt tokens → {chat['text']!r}"),
        ("raw completion of selfhost's render", f"{raw['prompt_tokens']} prompt tokens → {raw['text']!r}"),
    ]
    answer = f"{url}: chat endpoint and selfhost's rendering {verdict}"
    return Section("template_verify", "prompt tokens and outputs", r, rows, answer=answer)


def diff_section(result: dict[str, Any]) -> Section:
    """`selfhost template diff`: same or different per conversation, with the diff as a note."""
    rows = [(c["conversation"], "same" if c["same"] else "DIFFERENT") for c in result["conversations"]]
    notes = [c["diff"] for c in result["conversations"] if c["diff"]]
    answer = "identical on every conversation" if result["identical"] else "[bold]the templates differ[/]"
    return Section("template_diff", f"{result['a']} vs {result['b']}", result, rows, notes=notes, answer=answer)
