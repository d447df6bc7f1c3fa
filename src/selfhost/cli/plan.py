"""`selfhost plan` (measure and decide how to run a model here, or plan it on paper for GPUs that are not here)
and `selfhost plan verify CARD` (is the card still true)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from selfhost.cli.options import DefaultGroup, config_from, config_options, json_option
from selfhost.cli.output import emit, stderr
from selfhost.plan.run import PlanOptions


@click.group(cls=DefaultGroup, default="run")
def plan() -> None:
    """How to run a model well: the measured deployment decision, on a card that `plan verify` re-checks."""


@plan.command("run")
@click.argument("model", required=False)
@config_options(PlanOptions)
@click.option("--gpu", default=None, help="Plan on paper for this catalog GPU (not here): a predicted-only card.")
@click.option("--gpus", type=int, default=1, show_default=True, help="With --gpu: how many.")
@click.option("--gpus-per-node", type=int, default=8, show_default=True, help="With --gpu: GPUs in one node.")
@click.option("--ctx", type=int, default=None, help="With --gpu: context per request (default: 8192).")
@click.option("--kv-type", default="bf16", show_default=True, help="With --gpu: vLLM KV cache dtype (bf16, fp8).")
@json_option
def run(
    model: str | None,
    gpu: str | None,
    gpus: int,
    gpus_per_node: int,
    ctx: int | None,
    kv_type: str,
    as_json: bool,
    **values: Any,
) -> None:
    """Measure how to serve MODEL (default: embedded) here with llama-server, and write the deployment card.

    Settings (slots, threads, flash attention, KV type, ubatch, quantization variants) that cannot work are pruned
    without measuring; the rest are searched one knob at a time from llama-server's defaults, each measured by its
    goodput under --slo; the two best are run again for an interval. With --gpu: a plan on paper instead."""
    from selfhost.plan.card import card_report, write_card

    o = config_from(PlanOptions, values)
    if gpu is not None:
        from selfhost.plan.predicted import predicted_card

        card = predicted_card(
            model, gpu, gpus, ctx=ctx or 8192, kv_type=kv_type, per_node=gpus_per_node, price_per_hour=o.price_per_hour
        )
        o.out.mkdir(parents=True, exist_ok=True)
        write_card(card, o.out)
        emit(card, card_report(card).sections, as_json)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from selfhost.plan.run import plan_deployment

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    ) as bar:
        task = bar.add_task("planning", total=None)
        card = plan_deployment(
            o, model, lambda what, n, total: bar.update(task, completed=n, total=total, description=what)
        )
    emit(card, card_report(card).sections, as_json)


@plan.command("verify")
@click.argument("card", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--runs", type=int, default=1, show_default=True, help="Measurements of the chosen setting.")
@click.option(
    "--tolerance",
    type=float,
    default=0.2,
    show_default=True,
    help="Drift is goodput outside the card's range widened by this fraction.",
)
@json_option
def verify(card: Path, runs: int, tolerance: float, as_json: bool) -> None:
    """Re-check CARD here: the same model file, engine build and hardware, then the chosen setting measured again
    against the card's goodput interval. Exits 1 on drift."""
    from selfhost.plan.section import verify_section
    from selfhost.plan.verify import verify_card

    r = verify_card(card, runs, tolerance)
    emit(r, verify_section(r), as_json)
    if r["drift"]:
        raise SystemExit(1)
