"""`selfhost tune train|eval|export` (`selfhost tune MODEL DATA --out DIR` is `tune train`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from selfhost.cli.options import DefaultGroup, config_from, config_options, in_file, json_option, out_dir
from selfhost.cli.output import emit, stderr
from selfhost.errors import UsageError
from selfhost.tune.config import TuneConfig
from selfhost.tune.run import TrainOptions


@click.group(cls=DefaultGroup, default="train", context_settings={"ignore_unknown_options": True})
def tune() -> None:
    """LoRA/QLoRA fine-tuning with TRL, evaluation of base vs tuned, and export to GGUF.

    `selfhost tune MODEL DATA --out DIR` is `selfhost tune train MODEL DATA --out DIR`."""


def _announce_data_check(found: dict[str, int], data_file: Path, eval_file: Path | None) -> None:
    if found:
        listed = ", ".join(f"{n} {code}" for code, n in found.items())
        again = f"selfhost data check {data_file}" + (f" --eval {eval_file}" if eval_file else "")
        stderr.print(
            f"data check: {listed} — `{again}` lists them; `selfhost data clean` removes them",
            soft_wrap=True,
            markup=False,
        )


def _train_with_progress(run: Any) -> dict[str, Any]:
    """RUN(progress) under a progress bar on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn())
    with Progress(TextColumn("training"), *columns, console=stderr, transient=True) as bar:
        task = bar.add_task("training", total=None, loss="…")

        def progress(step: int, total: int, loss: float) -> None:
            bar.update(task, completed=step, total=total, loss=f"{loss:.4f}")

        return run(progress)  # type: ignore[no-any-return]


@tune.command()
@click.argument("model", required=False)
@click.argument("data_file", required=False, type=click.Path(path_type=Path))
@out_dir("--out", "out_dir", "Run directory.")
@config_options(TuneConfig)
@config_options(TrainOptions)
@click.option(
    "--probe",
    is_flag=True,
    help="Measure a few worst-case steps (full batches of the longest "
    "conversation): peak memory, time per step, an upper bound on the run's time. Writes nothing.",
)
@json_option
def train(
    model: str | None, data_file: Path | None, out_dir: Path | None, probe: bool, as_json: bool, **values: Any
) -> None:
    """LoRA/QLoRA fine-tune MODEL on DATA with TRL (loss on assistant tokens, the model's own template)."""
    from selfhost.tune import run, section

    if data_file is None or (out_dir is None and not probe):
        raise UsageError("tune needs MODEL DATA --out DIR", "e.g. selfhost tune embedded train.jsonl --out run/")
    cfg = config_from(TuneConfig, values)
    opts = config_from(TrainOptions, values)
    if probe:
        stderr.print("probing: a few steps of full batches of the longest conversation …")
        r = run.probe_run(model, data_file, cfg, opts)
        emit(r, section.probe_section(r), as_json)
        return
    assert out_dir is not None
    found = None
    if opts.data_check:
        found = run.data_check(data_file, opts.eval_file)
        _announce_data_check(found, data_file, opts.eval_file)
    try:
        r = _train_with_progress(lambda progress: run.train_run(model, data_file, out_dir, cfg, opts, found, progress))
    except KeyboardInterrupt:
        saved = sorted(out_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        if saved:
            stderr.print(f"checkpoint kept in {saved[-1]}; rerun the same command to resume", markup=False)
        raise
    if r.get("launch_only"):
        emit(r, section.launch_section(r), as_json)
        return
    long = r["longer_than_max_seq_len"]
    if long["count"]:
        verb = {"drop": "skipped", "truncate": "cut"}[long["policy"]]
        stderr.print(
            f"note: {long['count']} conversations longer than --max-seq-len were {verb}: {long['where'][0]} …",
            soft_wrap=True,
            markup=False,
        )
    emit(r, section.train_section(r), as_json)


@tune.command("eval")
@click.option("--base", default=None, help="The base MODEL (default: the one the run directory records).")
@click.option("--adapter", type=click.Path(exists=True, file_okay=False, path_type=Path), help="The adapter directory.")
@in_file("--data", "eval_data", "Held-out conversations.")
@click.option("--suite", default=None, help="Also run a quant suite (JSONL of prompts with checks, or `default`).")
@click.option(
    "--engine",
    type=click.Choice(["transformers", "llama.cpp"]),
    default="transformers",
    show_default=True,
    help="Run base and tuned as trained (transformers) or as served (llama.cpp + GGUF adapter).",
)
@json_option
def eval_(
    base: str | None, adapter: Path | None, eval_data: Path | None, suite: str | None, engine: str, as_json: bool
) -> None:
    """Compare base and tuned on held-out data (loss, pass rate, and a suite's checks)."""
    from selfhost.tune import run, section

    if adapter is None or eval_data is None:
        raise UsageError("tune eval needs --adapter DIR --data FILE (and --base MODEL unless DIR records it)")
    r = run.eval_run(base, adapter, eval_data, suite, engine)
    emit(r, section.eval_summary_section(r, engine), as_json)


@tune.command()
@click.option("--base", default=None, help="The base MODEL (default: the one the run directory records).")
@click.option("--adapter", type=click.Path(exists=True, file_okay=False, path_type=Path), help="The adapter directory.")
@out_dir("--merge", "merge_dir", "Also merge base + adapter into one HF directory here, and convert it.")
@click.option(
    "--outtype",
    type=click.Choice(["f16", "bf16", "q8_0", "f32"]),
    default="q8_0",
    show_default=True,
    help="The merged GGUF's weight type.",
)
@json_option
def export(base: str | None, adapter: Path | None, merge_dir: Path | None, outtype: str, as_json: bool) -> None:
    """Convert the adapter (and the merged model) to GGUF for llama.cpp and Ollama."""
    from selfhost.tune import run, section

    if adapter is None:
        raise UsageError("tune export needs --adapter DIR")
    stderr.print(
        "converting with llama.cpp's convert_lora_to_gguf.py" + (" and convert_hf_to_gguf.py" if merge_dir else "")
    )
    r = run.export(base, adapter, merge_dir, outtype)
    emit(r, section.export_section(r), as_json)
