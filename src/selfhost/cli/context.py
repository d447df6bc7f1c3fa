"""`selfhost context count|budget|pack|chunk|probe`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from selfhost.cli.options import json_option
from selfhost.cli.output import print_json, print_rows, stdout
from selfhost.errors import UsageError
from selfhost.files import read_json, read_text


def _tok(model: str | None) -> Any:
    from selfhost.backends.tokenizer import Tokenizer
    from selfhost.models.resolve import resolve_model

    return Tokenizer(resolve_model(model))


def _request_options(f: Any) -> Any:
    for opt in reversed(
        [
            click.option(
                "--model", default=None, help="MODEL whose tokenizer and template to use (default: embedded)."
            ),
            click.option("--ctx", "n_ctx", type=int, required=True, help="The server's context window (tokens)."),
            click.option("--reserve", type=int, default=512, show_default=True, help="Tokens kept for the answer."),
            click.option("--system", default=None, help="System prompt text."),
            click.option("--system-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None),
            click.option(
                "--chunk",
                "chunk_files",
                multiple=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                help="A retrieved passage (repeat; best first).",
            ),
            click.option(
                "--history",
                "history_file",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                help="JSON list of earlier messages, oldest first.",
            ),
            click.option("--question", required=True),
            click.option("--json", "as_json", is_flag=True),
        ]
    ):
        f = opt(f)
    return f


def _request(
    system: str | None,
    system_file: Path | None,
    chunk_files: tuple[Path, ...],
    history_file: Path | None,
    question: str,
) -> Any:
    from selfhost.context.budget import Request

    history = []
    if history_file:
        from selfhost.template.conversations import check_messages

        history = check_messages(read_json(history_file), str(history_file))
    return Request(
        question=question,
        system=read_text(system_file) if system_file else system,
        chunks=[read_text(p) for p in chunk_files],
        history=history,
    )


@click.group()
def context() -> None:
    """Context windows: real token counts, budgets, packing, truncation probes."""


@context.command()
@click.argument("text", required=False)
@click.option("--model", default=None)
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--parse-special", is_flag=True, help="Count control tokens written in the text as single tokens.")
@json_option
def count(text: str | None, model: str | None, file: Path | None, parse_special: bool, as_json: bool) -> None:
    """Tokens in TEXT (or --file) by MODEL's own tokenizer."""
    if (text is None) == (file is None):
        raise UsageError("give TEXT or --file (one of them)")
    body = read_text(file) if file else str(text)
    tok = _tok(model)
    n = len(tok.encode(body, parse_special=parse_special))
    if as_json:
        print_json({"tokens": n, "characters": len(body), "model": tok.spec.name})
    else:
        stdout.print(f"{n} tokens ({len(body)} characters, {tok.spec.name})")


def _from_options(opts: dict[str, Any]) -> tuple[Any, Any, int, int, bool]:
    """(tokenizer, request, n_ctx, reserve, as_json) from the options `_request_options` declares."""
    req = _request(opts["system"], opts["system_file"], opts["chunk_files"], opts["history_file"], opts["question"])
    return _tok(opts["model"]), req, opts["n_ctx"], opts["reserve"], opts["as_json"]


@context.command("budget")
@_request_options
def budget_cmd(**opts: Any) -> None:
    """Where a request's tokens go, against the context window."""
    from selfhost.context.budget import budget

    tok, req, n_ctx, reserve, as_json = _from_options(opts)
    b = budget(tok, req, n_ctx, reserve)
    if as_json:
        print_json(b)
        return
    print_rows(
        f"budget: {b['total_tokens']:,} of {n_ctx:,} tokens ({'fits' if b['fits'] else 'DOES NOT FIT'})",
        [(k, f"{v:,}") for k, v in b["parts"].items()] + [("reserved for the answer", f"{reserve:,}")],
    )


@context.command("pack")
@_request_options
def pack_cmd(**opts: Any) -> None:
    """Fit a request into the window: oldest history first, then lowest-ranked chunks, trimming at sentences."""
    from selfhost.context.pack import pack

    tok, req, n_ctx, reserve, as_json = _from_options(opts)
    d = pack(tok, req, n_ctx, reserve).to_dict()
    if as_json:
        print_json(d)
        return
    print_rows(
        "packed",
        [
            ("prompt tokens", f"{d['prompt_tokens']} of {d['limit']}"),
            ("dropped history messages", str(d["dropped_history_messages"])),
            ("dropped chunks", str(d["dropped_chunks"])),
            ("trimmed chunk", str(d["trimmed_chunk"])),
        ],
    )


@context.command("chunk")
@click.option("--model", default=None)
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--size", type=int, default=256, show_default=True, help="Max tokens per chunk.")
@click.option("--overlap", type=int, default=32, show_default=True)
@json_option
def chunk_cmd(model: str | None, file: Path, size: int, overlap: int, as_json: bool) -> None:
    """Split a document into token-bounded chunks on sentence boundaries, with overlap."""
    from selfhost.context.pack import chunk_text

    tok = _tok(model)
    chunks = chunk_text(tok, read_text(file), size, overlap)
    if as_json:
        print_json({"chunks": [{"text": c, "tokens": tok.count(c)} for c in chunks]})
    else:
        for i, c in enumerate(chunks):
            stdout.print(f"[bold]#{i}[/] ({tok.count(c)} tokens) {c[:100]!r}")


@context.command("probe")
@click.argument("url")
@click.option("--model", default=None, help="MODEL whose tokenizer sizes the prompts (default: embedded).")
@click.option("--api", type=click.Choice(["openai", "ollama"]), default="openai", show_default=True)
@click.option("--served-name", default=None, help="Model name in requests (Ollama: required tag).")
@click.option("--upper", type=int, default=None, help="Largest prompt to try (default: the model's context length).")
@json_option
def probe(url: str, model: str | None, api: str, served_name: str | None, upper: int | None, as_json: bool) -> None:
    """The effective context window of the server at URL, and whether it refuses or silently truncates."""
    from selfhost.context.probe import probe_context

    r = probe_context(url, _tok(model), api=api, model=served_name, upper=upper)
    if as_json:
        print_json(r)
        return
    stdout.print(
        f"{url}: effective context [bold]{r['effective_context']:,}[/] tokens; past it the server {r['behaviour']}"
    )
    if r.get("silent_truncation"):
        ex = r["example_over_limit"]
        stdout.print(
            f"[red]silent truncation[/]: sent {ex['sent_tokens']:,} tokens, the server evaluated "
            f"{ex['server_prompt_tokens']:,} and answered 200 OK"
        )
