"""`selfhost template render|lint|verify|diff`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from selfhost.cli.options import in_file, json_option
from selfhost.cli.output import emit, print_json, stdout
from selfhost.errors import UsageError
from selfhost.files import read_json
from selfhost.template.source import parse_vars, template_source


@click.group()
def template() -> None:
    """Chat templates: render exactly, lint, verify a live server, diff two templates."""


@template.command()
@click.argument("model", required=False)
@in_file("--messages", "messages_path", "JSON list of messages.", required=True)
@in_file("--template", "template_path", "A Jinja template file instead of MODEL's.")
@click.option("--bos-token", default=None)
@click.option("--eos-token", default=None)
@click.option("--add-generation-prompt", is_flag=True)
@click.option("--continue-final-message", is_flag=True)
@in_file("--tools", "tools_path", "JSON list of tool definitions.")
@click.option(
    "--var", "variables", multiple=True, help="KEY=JSON extra template variable (e.g. enable_thinking=false)."
)
@click.option("--raw", is_flag=True, help="Only the rendered prompt, byte for byte, on stdout.")
@json_option
def render(
    model: str | None,
    messages_path: Path,
    template_path: Path | None,
    bos_token: str | None,
    eos_token: str | None,
    add_generation_prompt: bool,
    continue_final_message: bool,
    tools_path: Path | None,
    variables: tuple[str, ...],
    raw: bool,
    as_json: bool,
) -> None:
    """Render MESSAGES with MODEL's chat template (or --template FILE) as transformers would."""
    from selfhost.template.conversations import check_messages, check_tools
    from selfhost.template.render import render_chat

    if model is not None and template_path is not None:
        raise UsageError("give MODEL or --template FILE, not both")
    text, special, _, _ = template_source(model, template_path, bos_token, eos_token)
    messages = check_messages(read_json(messages_path), str(messages_path))
    extra = parse_vars(variables)
    tools = check_tools(read_json(tools_path), str(tools_path)) if tools_path else None
    out = render_chat(
        text,
        messages,
        add_generation_prompt=add_generation_prompt,
        continue_final_message=continue_final_message,
        tools=tools,
        bos_token=special["bos_token"],
        eos_token=special["eos_token"],
        **extra,
    )
    if as_json:
        print_json({"prompt": out, "chars": len(out)})
    elif raw:
        sys.stdout.write(out)
        sys.stdout.flush()
    else:
        stdout.print(out, markup=False, highlight=False, end="")


@template.command()
@click.argument("model", required=False)
@in_file("--template", "template_path", "A Jinja template file instead of MODEL's.")
@click.option("--bos-token", default=None)
@click.option("--eos-token", default=None)
@click.option("--add-bos-token/--no-add-bos-token", default=None, help="Whether the tokenizer adds BOS.")
@in_file("--messages", "messages_path", "Also check these messages for control tokens inside their content.")
@json_option
def lint(
    model: str | None,
    template_path: Path | None,
    bos_token: str | None,
    eos_token: str | None,
    add_bos_token: bool | None,
    messages_path: Path | None,
    as_json: bool,
) -> None:
    """Family, capabilities and known bug classes of a chat template."""
    from selfhost.template.lint import control_tokens_in, lint_template

    text, special, file_add_bos, _ = template_source(model, template_path, bos_token, eos_token)
    report = lint_template(
        text,
        bos_token=special["bos_token"],
        eos_token=special["eos_token"],
        add_bos_token=add_bos_token if add_bos_token is not None else file_add_bos,
    )
    if messages_path:
        tokens = [t for t in (special["bos_token"], special["eos_token"]) if t]
        from selfhost.template.conversations import check_messages
        from selfhost.template.lint import END_OF_TURN

        msgs = check_messages(read_json(messages_path), str(messages_path))
        report.findings.extend(control_tokens_in(msgs, [*tokens, *END_OF_TURN]))
    from selfhost.template.section import lint_section

    d = report.to_dict()
    emit(d, lint_section(d), as_json)


@template.command()
@click.argument("url")
@click.option(
    "--model", "model", default=None, help="The model the server loaded (GGUF, HF dir, ...; default embedded)."
)
@click.option("--served-name", default=None, help="Model name to put in requests (default: the server's).")
@click.option("--api-key", default=None)
@click.option("--api", type=click.Choice(["openai", "ollama"]), default="openai", show_default=True)
@json_option
def verify(url: str, model: str | None, served_name: str | None, api_key: str | None, api: str, as_json: bool) -> None:
    """Prove the server at URL applies MODEL's official template: chat vs selfhost-rendered raw completion."""
    from selfhost.models.resolve import resolve_model
    from selfhost.template.verify import verify_server

    spec = resolve_model(model)
    r = verify_server(
        url, spec, model=served_name or (spec.name if api == "ollama" else None), api_key=api_key, api=api
    )
    from selfhost.template.section import verify_section

    emit(r, verify_section(url, r), as_json)
    if not r["agree"]:
        raise SystemExit(1)


@template.command()
@click.argument("a")
@click.argument("b")
@json_option
def diff(a: str, b: str, as_json: bool) -> None:
    """Render two templates (MODELs or .jinja files) on standard conversations and show where they differ."""
    from selfhost.template.section import diff_section
    from selfhost.template.source import template_of
    from selfhost.template.verify import diff_templates

    ta, sa = template_of(a)
    tb, _ = template_of(b)
    conversations = diff_templates(ta, tb, sa)
    result = {"a": a, "b": b, "conversations": conversations, "identical": all(r["same"] for r in conversations)}
    emit(result, diff_section(result), as_json)
