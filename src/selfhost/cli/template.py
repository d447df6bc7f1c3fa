"""`selfhost template render|lint|verify|diff`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from selfhost.cli.output import print_json, print_rows, stdout
from selfhost.errors import UsageError
from selfhost.files import parse_json, read_json, read_text


def _read_json(path: Path, what: str) -> Any:
    return read_json(path)


def _source(
    model: str | None, template: Path | None, bos: str | None, eos: str | None
) -> tuple[str, dict[str, str | None], bool | None, Any]:
    """(template text, special tokens, add_bos_token, spec or None) from MODEL or --template FILE."""
    if template is not None:
        return read_text(template), {"bos_token": bos, "eos_token": eos}, None, None
    from selfhost.models.resolve import resolve_model

    spec = resolve_model(model)
    if not spec.chat_template:
        raise UsageError(f"{spec.name} has no chat template", "pass --template FILE")
    tok = spec.tokenizer
    return (
        spec.chat_template,
        {"bos_token": bos or tok.bos_token, "eos_token": eos or tok.eos_token},
        tok.add_bos_token,
        spec,
    )


@click.group()
def template() -> None:
    """Chat templates: render exactly, lint, verify a live server, diff two templates."""


@template.command()
@click.argument("model", required=False)
@click.option(
    "--messages",
    "messages_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="JSON list of messages.",
)
@click.option("--template", "template_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bos-token", default=None)
@click.option("--eos-token", default=None)
@click.option("--add-generation-prompt", is_flag=True)
@click.option("--continue-final-message", is_flag=True)
@click.option("--tools", "tools_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--var", "variables", multiple=True, help="KEY=JSON extra template variable (e.g. enable_thinking=false)."
)
@click.option("--raw", is_flag=True, help="Only the rendered prompt, byte for byte, on stdout.")
@click.option("--json", "as_json", is_flag=True)
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
    text, special, _, _ = _source(model, template_path, bos_token, eos_token)
    messages = check_messages(_read_json(messages_path, "--messages"), str(messages_path))
    extra: dict[str, Any] = {}
    for v in variables:
        key, sep, value = v.partition("=")
        if not sep:
            raise UsageError(f"--var {v!r} is not KEY=JSON")
        try:
            extra[key] = parse_json(value, f"--var {key}")
        except UsageError:
            raise UsageError(f"--var {key}: {value!r} is not JSON", "strings need quotes: --var name='\"x\"'") from None
    tools = check_tools(_read_json(tools_path, "--tools"), str(tools_path)) if tools_path else None
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
@click.option("--template", "template_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bos-token", default=None)
@click.option("--eos-token", default=None)
@click.option("--add-bos-token/--no-add-bos-token", default=None, help="Whether the tokenizer adds BOS.")
@click.option(
    "--messages",
    "messages_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also check these messages for control tokens inside their content.",
)
@click.option("--json", "as_json", is_flag=True)
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

    text, special, file_add_bos, _ = _source(model, template_path, bos_token, eos_token)
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

        msgs = check_messages(_read_json(messages_path, "--messages"), str(messages_path))
        report.findings.extend(control_tokens_in(msgs, [*tokens, *END_OF_TURN]))
    d = report.to_dict()
    if as_json:
        print_json(d)
        return
    print_rows(
        "template lint",
        [
            ("family", d["family"]),
            ("system role", str(d["supports_system_role"])),
            ("tools", str(d["supports_tools"])),
            ("generation prompt", str(d["supports_generation_prompt"])),
            ("system prompt placement", str(d["system_placement"])),
        ]
        + [(f"{f['severity']}: {f['code']}", f["message"]) for f in d["findings"]],
    )


@template.command()
@click.argument("url")
@click.option(
    "--model", "model", default=None, help="The model the server loaded (GGUF, HF dir, ...; default embedded)."
)
@click.option("--served-name", default=None, help="Model name to put in requests (default: the server's).")
@click.option("--api-key", default=None)
@click.option("--api", type=click.Choice(["openai", "ollama"]), default="openai", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def verify(url: str, model: str | None, served_name: str | None, api_key: str | None, api: str, as_json: bool) -> None:
    """Prove the server at URL applies MODEL's official template: chat vs selfhost-rendered raw completion."""
    from selfhost.models.resolve import resolve_model
    from selfhost.template.verify import verify_server

    spec = resolve_model(model)
    r = verify_server(
        url, spec, model=served_name or (spec.name if api == "ollama" else None), api_key=api_key, api=api
    )
    if as_json:
        print_json(r)
    else:
        verdict = "[green]agree[/]" if r["agree"] else "[red]differ[/]"
        stdout.print(f"{url}: chat endpoint and selfhost's rendering {verdict}")
        print_rows(
            "prompt tokens and outputs",
            [
                ("chat endpoint", f"{r['chat']['prompt_tokens']} prompt tokens → {r['chat']['text']!r}"),
                (
                    "raw completion of selfhost's render",
                    f"{r['raw_completion']['prompt_tokens']} prompt tokens → {r['raw_completion']['text']!r}",
                ),
            ],
        )
    if not r["agree"]:
        raise SystemExit(1)


@template.command()
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True)
def diff(a: str, b: str, as_json: bool) -> None:
    """Render two templates (MODELs or .jinja files) on standard conversations and show where they differ."""
    from selfhost.template.verify import diff_templates

    def load(x: str) -> tuple[str, dict[str, str]]:
        p = Path(x)
        if p.suffix in (".jinja", ".j2", ".txt") and p.is_file():
            return read_text(p), {}
        text, special, _, _ = _source(x, None, None, None)
        return text, {k: v for k, v in special.items() if v}

    ta, sa = load(a)
    tb, _ = load(b)
    result = diff_templates(ta, tb, sa)
    if as_json:
        print_json({"a": a, "b": b, "conversations": result, "identical": all(r["same"] for r in result)})
        return
    for r in result:
        stdout.print(f"[bold]{r['conversation']}[/]: {'same' if r['same'] else 'DIFFERENT'}")
        if r["diff"]:
            stdout.print(r["diff"], markup=False, highlight=False)
