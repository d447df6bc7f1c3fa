"""`selfhost data check|clean|split`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from selfhost.cli.options import json_option, out_file
from selfhost.cli.output import print_json, print_rows, stdout


def _options(model: str | None, max_seq_len: int | None, threshold: float) -> Any:
    from selfhost.data.check import CheckOptions

    count = None
    if max_seq_len is not None or model is not None:
        from selfhost.backends.tokenizer import Tokenizer
        from selfhost.models.resolve import resolve_model

        tok = Tokenizer(resolve_model(model))
        count = (
            tok.count_chat
            if tok.spec.chat_template
            else (lambda msgs: tok.count("\n".join(str(m.get("content") or "") for m in msgs)))
        )
    return CheckOptions(max_seq_len=max_seq_len, near_threshold=threshold, count_tokens=count)


@click.group()
def data() -> None:
    """Fine-tuning data: defects, cleaning, leakage-free splits."""


@data.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", default=None, help="MODEL whose template and tokenizer measure lengths (default: embedded).")
@click.option("--eval", "eval_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--max-seq-len", type=int, default=None, help="Flag samples longer than this after the chat template.")
@click.option("--near-dup-threshold", type=float, default=0.8, show_default=True)
@out_file("--html", "html_path", "Also write an HTML report with a token-length histogram and duplicate clusters.")
@json_option
def check(
    file: Path,
    model: str | None,
    eval_path: Path | None,
    max_seq_len: int | None,
    near_dup_threshold: float,
    html_path: Path | None,
    as_json: bool,
) -> None:
    """Every defect with its line: format, roles, empties, duplicates, near-duplicates, length, leakage."""
    from selfhost.data.check import check_dataset

    report = check_dataset(file, _options(model, max_seq_len, near_dup_threshold), eval_path)
    d = report.to_dict()
    if html_path is not None:
        from selfhost.data.check import report_section
        from selfhost.report.html import write_html
        from selfhost.report.section import Report

        page = Report(f"selfhost data check: {file.name}", {"file": str(file)})
        page.add(report_section(report, file, max_seq_len))
        write_html(page, html_path)
        d["report_html"] = str(html_path)
    if as_json:
        print_json(d)
        return
    print_rows(f"{file}: {d['rows']} rows, format {d['format']}", [(k, str(v)) for k, v in sorted(d["counts"].items())])
    for f in d["findings"][:50]:
        stdout.print(f"line {f['line']}: [bold]{f['code']}[/] {f['message']}", highlight=False)
    if len(d["findings"]) > 50:
        stdout.print(f"... {len(d['findings']) - 50} more (use --json)")


@data.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--policy",
    type=click.Choice(["keep-one", "drop"]),
    default="keep-one",
    show_default=True,
    help="Duplicate clusters: keep the first row, or drop them all.",
)
@out_file("--log", "log_path", "What was removed and why (default: OUT with .removed.jsonl).")
@click.option("--model", default=None)
@click.option("--eval", "eval_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None)
@click.option("--max-seq-len", type=int, default=None)
@click.option("--near-dup-threshold", type=float, default=0.8, show_default=True)
@json_option
def clean(
    file: Path,
    out: Path,
    policy: str,
    log_path: Path | None,
    model: str | None,
    eval_path: Path | None,
    max_seq_len: int | None,
    near_dup_threshold: float,
    as_json: bool,
) -> None:
    """Write a cleaned copy and a log of every removal; the input is never modified."""
    from selfhost.data.clean import clean_dataset

    log_path = log_path or out.with_suffix(".removed.jsonl")
    r = clean_dataset(file, out, log_path, _options(model, max_seq_len, near_dup_threshold), eval_path, policy=policy)
    print_json(r) if as_json else stdout.print(
        f"kept {r['kept']} of {r['input_rows']} rows → {out}; removals logged in {log_path}"
    )


@data.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--train", "train_out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--eval", "eval_out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--eval-fraction", type=float, default=0.1, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
def split(file: Path, train_out: Path, eval_out: Path, eval_fraction: float, seed: int, as_json: bool) -> None:
    """A train/eval split where duplicates and near-duplicates never straddle the two."""
    from selfhost.data.clean import split_dataset

    r = split_dataset(file, train_out, eval_out, eval_fraction, seed)
    print_json(r) if as_json else stdout.print(f"{r['train']} train / {r['eval']} eval rows")


@data.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--line", "line_no", type=int, required=True, help="The example's line (row) number.")
@click.option("--model", default=None, help="MODEL whose chat template and tokenizer to use (default: embedded).")
@json_option
def mask(file: Path, line_no: int, model: str | None, as_json: bool) -> None:
    """Which tokens of one example are trained (assistant turns), and whether end-of-turn is among them."""
    from selfhost.backends.tokenizer import Tokenizer
    from selfhost.data.check import Finding, load_examples
    from selfhost.data.mask import mask_preview
    from selfhost.errors import UsageError
    from selfhost.models.resolve import resolve_model

    examples, _, _ = load_examples(file, findings := [])  # type: ignore[var-annotated]
    ex = next((e for e in examples if e.line == line_no), None)
    if ex is None:
        why = next((f.message for f in findings if isinstance(f, Finding) and f.line == line_no), "no such line")
        raise UsageError(f"{file}:{line_no}: no usable example ({why})")
    r = mask_preview(Tokenizer(resolve_model(model)), ex.messages)
    if as_json:
        print_json(r)
        return
    from rich.text import Text

    out = Text()
    for t in r["masked"]:
        out.append(t["text"], style="bold green" if t["trained"] else "dim")
    stdout.print(out)
    stdout.print(
        f"trained {r['trained_tokens']} of {r['tokens']} tokens (green); end-of-turn trained: "
        f"{r['end_of_turn_trained']}"
    )
