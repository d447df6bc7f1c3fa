"""`selfhost check [MODEL]`: the main job."""

from __future__ import annotations

from pathlib import Path

import click

from selfhost.cli.output import print_json, print_rows, stderr


def _quant_names(names: str | None) -> tuple[str, ...]:
    from selfhost.errors import UsageError
    from selfhost.quant.variants import FTYPES

    wanted = tuple(n.strip().upper() for n in (names or "").split(",") if n.strip())
    unknown = [n for n in wanted if n not in FTYPES]
    if unknown:
        raise UsageError(f"unknown quantization {unknown[0]!r}", f"valid: {', '.join(FTYPES)}")
    return wanted


@click.command()
@click.argument("model", required=False)
@click.option(
    "--output",
    "-o",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="Self-contained HTML report.",
)
@click.option(
    "--json-output",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.json"),
    show_default=True,
    help="Machine-readable report.",
)
@click.option(
    "--ctx",
    "n_ctx",
    type=click.IntRange(min=64),
    default=4096,
    show_default=True,
    help="Context size to load the model with.",
)
@click.option("--max-tokens", type=click.IntRange(min=1), default=64, show_default=True)
@click.option(
    "--threads", type=click.IntRange(min=1), default=None, help="llama.cpp threads (default: physical cores)."
)
@click.option(
    "--quant",
    "quant_names",
    default=None,
    help="Also make these quantizations and compare them on a slice of the quant suite (e.g. Q8_0,Q4_K_M,Q2_K; "
    "about 20 s per variant for the embedded model).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def check(
    model: str | None,
    html_path: Path,
    json_path: Path,
    n_ctx: int,
    max_tokens: int,
    threads: int | None,
    quant_names: str | None,
    as_json: bool,
) -> None:
    """Measure everything selfhost can about MODEL and write report.html + report.json."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from selfhost.check.run import CheckConfig, run_check
    from selfhost.report.html import write_html
    from selfhost.report.section import Report

    cfg = CheckConfig(
        model=model,
        n_ctx=n_ctx,
        max_tokens=max_tokens,
        n_threads=threads,
        records_dir=json_path.parent / "selfhost-runs",
        quant_variants=_quant_names(quant_names),
    )

    def save(report: Report) -> None:  # after every section: an interrupted run keeps what it measured
        report.write_json(json_path)
        write_html(report, html_path)

    try:
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=stderr, transient=True
        ) as progress:
            task = progress.add_task("starting", total=None)
            report = run_check(cfg, step=lambda s: progress.update(task, description=s), on_update=save)
    except KeyboardInterrupt:
        stderr.print(f"interrupted: the sections finished so far are in {html_path} and {json_path}")
        raise
    if as_json:
        print_json(report.to_dict() | {"report_html": str(html_path), "report_json": str(json_path)})
        return
    for s in report.sections:
        print_rows(s.title, s.rows[:12])
    for skipped in report.meta.get("skipped", []):
        stderr.print(f"[yellow]skipped[/] {skipped}")
    stderr.print(f"wrote [bold]{html_path}[/] and [bold]{json_path}[/] in {report.meta['check_s']:.1f} s")
