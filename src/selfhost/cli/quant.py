"""`selfhost quant [MODEL]`: the lowest quantization that still does the job."""

from __future__ import annotations

from pathlib import Path

import click

from selfhost.cli.options import in_file, json_option, out_file
from selfhost.cli.output import emit, stderr
from selfhost.errors import UsageError


@click.command()
@click.argument("model", required=False)
@click.option(
    "--variants",
    "names",
    default="Q8_0,Q6_K,Q5_K_M,Q4_K_M,Q3_K_M,Q2_K",
    show_default=True,
    help="Variants to make locally from an F16 reference.",
)
@click.option(
    "--variant",
    "extra",
    multiple=True,
    help="NAME=PATH of a GGUF, NAME=ollama:TAG (local Ollama store) or NAME=URL[#MODEL] (OpenAI-compatible).",
)
@out_file("--suite", "suite_path", "JSONL suite (default: the built-in 64-case suite).")
@in_file("--text", "text_path", "Text for the KL divergence (default: a bundled public-domain text).")
@click.option(
    "--kld-ctx",
    type=int,
    default=None,
    help="KL divergence as llama-perplexity --kl-divergence -c N: chunks of N tokens from an empty cache, BOS "
    "first, second half scored (default: one pass over the text).",
)
@click.option(
    "--kld-tokens",
    type=int,
    default=None,
    help="Use the text's first N tokens for KL divergence (default: 512, or the whole text with --kld-ctx).",
)
@click.option(
    "--imatrix",
    "with_imatrix",
    is_flag=True,
    help="Also make NAME+imatrix for each K-quant: llama-imatrix on the suite's prompts, llama-quantize --imatrix.",
)
@click.option("--limit", type=int, default=None, help="Use only the first N cases (a quick look).")
@click.option(
    "--max-drop",
    type=float,
    default=0.05,
    show_default=True,
    help="Gate: pass rate may not be provably worse than the reference by more than this.",
)
@click.option("--max-kld-p99", type=float, default=1.0, show_default=True, help="Gate: KLD p99 bound.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("selfhost-runs/quant"),
    show_default=True,
    help="Variants and the resumable per-item JSONL go here.",
)
@json_option
def quant(
    model: str | None,
    names: str,
    extra: tuple[str, ...],
    suite_path: Path | None,
    text_path: Path | None,
    kld_ctx: int | None,
    kld_tokens: int | None,
    with_imatrix: bool,
    limit: int | None,
    max_drop: float,
    max_kld_p99: float,
    out_dir: Path,
    as_json: bool,
) -> None:
    """Make variants, run your suite on each, measure KL divergence, and recommend the smallest that passes."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from selfhost.evals.suite import default_suite, load_suite
    from selfhost.files import read_text
    from selfhost.models.resolve import local_gguf_path, resolve_model
    from selfhost.quant.kld import default_text
    from selfhost.quant.run import Gates, QuantConfig, run_quant
    from selfhost.quant.variants import FTYPES, Variant, make_variants, parse_endpoint

    spec = resolve_model(model)
    wanted = [n.strip().upper() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in FTYPES]
    if unknown:
        raise UsageError(f"unknown variant {unknown[0]!r}", f"valid: {', '.join(FTYPES)}; or --variant NAME=PATH")
    if suite_path is not None and not suite_path.exists():
        raise UsageError(f"no suite file at {suite_path}")
    cases = load_suite(suite_path) if suite_path else default_suite()
    cases = cases[:limit] if limit else cases
    given: list[Variant] = []
    for e in extra:
        name, sep, where = e.partition("=")
        if not sep or not name or not where:
            raise UsageError(f"--variant {e!r} is not NAME=PATH", "or NAME=ollama:TAG, NAME=http://HOST:PORT[#MODEL]")
        if where.startswith("ollama:"):  # a tag in the local Ollama store: its GGUF blob, evaluated here
            given.append(Variant(name, local_gguf_path(resolve_model(where)), f"Ollama {where[7:]}"))
        elif where.startswith(("http://", "https://")):  # an OpenAI-compatible server: answers only, no logits
            url, served = parse_endpoint(where)
            given.append(Variant(name, None, f"served at {where}", url=url, model=served))
        else:
            resolve_model(where)  # a damaged or missing file is refused now, before any variant is made
            given.append(Variant(name, Path(where), "given on the command line"))
    text = read_text(text_path) if text_path else default_text()
    if not text.strip():
        raise UsageError(f"{text_path}: no text to measure KL divergence on")
    stderr.print("making variants with llama.cpp's quantizer ...")
    variants = make_variants(local_gguf_path(spec), out_dir / "variants", wanted, spec.file_type)
    if with_imatrix:
        from selfhost.quant.imatrix import calibration_text, compute_imatrix, imatrix_variants

        stderr.print("computing an importance matrix with llama-imatrix on the suite's prompts ...")
        assert variants[0].path is not None
        imatrix = compute_imatrix(variants[0].path, calibration_text(spec, cases), out_dir / "variants")
        variants += imatrix_variants(variants[0], wanted, imatrix, out_dir / "variants")
    variants += given
    cfg = QuantConfig(
        variants,
        cases,
        text,
        out_dir / "items.jsonl",
        Gates(max_drop, max_kld_p99),
        kld_ctx=kld_ctx,
        kld_tokens=kld_tokens if kld_tokens is not None else (None if kld_ctx else 512),
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    ) as bar:
        task = bar.add_task("generating", total=len(variants) * len(cases))
        result = run_quant(cfg, lambda what, n, total: bar.update(task, completed=n, description=what))
    from selfhost.quant.section import quant_table_section

    emit(result, quant_table_section(result, spec.name, len(cases)), as_json)
