"""`selfhost quant [MODEL]`: the lowest quantization that still does the job."""

from __future__ import annotations

from pathlib import Path

import click

from selfhost.cli.options import in_file, json_option, out_file
from selfhost.cli.output import emit, stderr
from selfhost.errors import UsageError
from selfhost.quant.variants import Variant


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
@out_file("--suite", "suite_path", "JSONL suite (default: the built-in suite, 510 cases in six categories).")
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
@click.option(
    "--max-cases",
    type=int,
    default=None,
    help="At most N cases per variant (in the run order, a shuffle of the suite); variants still open then are "
    "reported undecided.",
)
@click.option(
    "--budget-minutes",
    type=float,
    default=None,
    help="Stop generating after this long; variants still open are reported undecided (default: no limit).",
)
@click.option(
    "--max-drop",
    type=float,
    default=0.05,
    show_default=True,
    help="Gate: a variant passes once its pass rate is shown (95% confidence sequence) to be at most this much "
    "below the reference's, and fails once shown to be more.",
)
@click.option(
    "--max-category-drop",
    type=float,
    default=0.10,
    show_default=True,
    help="Gate per category (JSON, arithmetic, ...): a variant shown more than this below the reference in any one "
    "category fails, and each category gets its own verdict. Wider than --max-drop because a category holds a "
    "sixth of the cases.",
)
@click.option(
    "--max-bytes",
    "max_bytes_text",
    default=None,
    help="Also search a custom mix (per-tensor types, llama-quantize --tensor-type) for the lowest KL divergence "
    "whose file fits this size (bytes, or 900MiB, 4.5GB).",
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
    max_cases: int | None,
    budget_minutes: float | None,
    max_drop: float,
    max_category_drop: float,
    max_bytes_text: str | None,
    max_kld_p99: float,
    out_dir: Path,
    as_json: bool,
) -> None:
    """Make variants, measure KL divergence, run the suite on each until it is decided, and recommend the smallest
    variant shown non-inferior."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from selfhost.evals.builtin_suite import builtin_suite
    from selfhost.evals.suite import load_suite
    from selfhost.files import read_text
    from selfhost.models.resolve import local_gguf_path, resolve_model
    from selfhost.quant.kld import default_text
    from selfhost.quant.run import Gates, QuantConfig, run_order, run_quant
    from selfhost.quant.variants import FTYPES, make_variants, parse_endpoint

    max_bytes = _max_bytes(max_bytes_text)
    spec = resolve_model(model)
    wanted = [n.strip().upper() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in FTYPES]
    if unknown:
        raise UsageError(f"unknown variant {unknown[0]!r}", f"valid: {', '.join(FTYPES)}; or --variant NAME=PATH")
    if suite_path is not None and not suite_path.exists():
        raise UsageError(f"no suite file at {suite_path}")
    cases = load_suite(suite_path) if suite_path else builtin_suite()
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
    from selfhost.quant.imatrix import calibration_text

    if with_imatrix:
        from selfhost.quant.imatrix import compute_imatrix, imatrix_variants

        stderr.print("computing an importance matrix with llama-imatrix on the suite's prompts ...")
        assert variants[0].path is not None
        calibration = run_order(cases)[:max_cases] if max_cases else cases  # the prompts this run can reach
        imatrix = compute_imatrix(variants[0].path, calibration_text(spec, calibration), out_dir / "variants")
        variants += imatrix_variants(variants[0], wanted, imatrix, out_dir / "variants")
    if max_bytes is not None:
        calibration = run_order(cases)[:max_cases] if max_cases else cases
        variants.append(_custom_mix(variants, max_bytes, calibration_text(spec, calibration), out_dir))
    variants += given
    cfg = QuantConfig(
        variants,
        cases,
        text,
        out_dir / "items.jsonl",
        Gates(max_drop, max_kld_p99, max_category_drop=max_category_drop),
        kld_ctx=kld_ctx,
        kld_tokens=kld_tokens if kld_tokens is not None else (None if kld_ctx else 512),
        max_cases=max_cases,
        budget_s=None if budget_minutes is None else 60 * budget_minutes,
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    ) as bar:
        task = bar.add_task("measuring KL divergence", total=None)
        result = run_quant(cfg, lambda what, n, total: bar.update(task, completed=n, total=total, description=what))
    from selfhost.quant.section import quant_table_section

    emit(result, quant_table_section(result, spec.name, result["cases"]), as_json)


def _max_bytes(text: str | None) -> int | None:
    from selfhost.quant.mix import parse_bytes

    if text is None:
        return None
    max_bytes = parse_bytes(text)
    if max_bytes is None or max_bytes <= 0:
        raise UsageError(f"--max-bytes {text!r} is not a size", "give bytes, or a size such as 900MiB")
    return max_bytes


def _custom_mix(variants: list[Variant], max_bytes: int, calibration: str, out_dir: Path) -> Variant:
    """Searched on the suite's prompts, never on the KLD text, so the KLD the table shows for it is held out."""
    from selfhost.quant.mix import kld_meter, search_mix
    from selfhost.units import fmt_bytes

    reference = variants[0].path
    assert reference is not None
    stderr.print(f"searching a custom mix under {fmt_bytes(max_bytes)} (each candidate made and measured) ...")
    kld_of = kld_meter(reference, calibration, 512, None)
    named = {v.name: (v.path, kld_of(v.path)) for v in variants[1:] if v.path is not None and "+" not in v.name}
    found = search_mix(reference, named, max_bytes, kld_of, out_dir / "variants")
    if found is None:
        smallest = min(v.file_bytes or 0 for v in variants[1:])
        raise UsageError(
            f"--max-bytes {fmt_bytes(max_bytes)}: not even the smallest variant fits ({fmt_bytes(smallest)})",
            "give a larger budget, or add a smaller type to --variants",
        )
    return Variant(f"mix≤{fmt_bytes(max_bytes)}", found.path, f"custom mix: {found.mix.describe()}")
