"""`selfhost bench run|compare` (`selfhost bench TARGET` is `bench run TARGET`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from selfhost.bench.command import BenchOptions
from selfhost.cli.options import DefaultGroup, config_from, config_options, json_option
from selfhost.cli.output import emit, stderr


@click.group(cls=DefaultGroup, default="run", context_settings={"ignore_unknown_options": True})
def bench() -> None:
    """Latency and throughput under load, and saved results side by side.

    `selfhost bench TARGET` is `selfhost bench run TARGET`."""


@bench.command()
@click.argument("target")
@config_options(BenchOptions)
@json_option
def run(target: str, as_json: bool, **values: Any) -> None:
    """Latency and throughput of TARGET (a server URL, or `embedded` to serve the embedded model here)."""
    from selfhost.bench.command import bench_command
    from selfhost.bench.section import bench_table_section

    if target == "embedded":
        stderr.print("starting llama-cpp-python's server with the embedded model on 127.0.0.1 ...")
    result = bench_command(target, config_from(BenchOptions, values))
    emit(result, bench_table_section(result), as_json)
    if any(r["interrupted"] for r in result.get("runs") or [result]):
        raise KeyboardInterrupt


@bench.command()
@click.argument("results", nargs=-1, type=click.Path(path_type=Path))
@json_option
def compare(results: tuple[Path, ...], as_json: bool) -> None:
    """Saved `selfhost bench --json` results side by side."""
    from selfhost.bench.compare import compare_results, compare_section

    result = compare_results(list(results))
    emit(result, compare_section(result), as_json)
