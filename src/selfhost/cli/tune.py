"""`selfhost tune MODEL DATA --out DIR` and `selfhost tune eval --base MODEL --adapter DIR --data FILE`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from selfhost.cli.output import print_json, print_rows, stderr
from selfhost.errors import UsageError
from selfhost.tune.train import load_conversations, load_labeled


def _base_of(base: str | None, adapter: Path) -> Any:
    """--base, or the base model recorded in the run directory."""
    from selfhost.models.resolve import resolve_model

    if base is None:
        run = adapter / "selfhost-run.json"
        if not run.exists():
            raise UsageError(f"{adapter} has no selfhost-run.json naming its base model", "pass --base MODEL")
        base = json.loads(run.read_text(encoding="utf-8"))["base_model"]
    from selfhost.tune.train import with_run_template

    return with_run_template(resolve_model(base), adapter)


def _eval(
    base: str | None, adapter: Path | None, eval_data: Path | None, suite: str | None, engine: str, as_json: bool
) -> None:
    from selfhost.evals.suite import default_suite, load_suite
    from selfhost.tune.evaluate import evaluate_adapter, evaluate_adapter_llamacpp

    if adapter is None or eval_data is None:
        raise UsageError("tune eval needs --adapter DIR --data FILE (and --base MODEL unless DIR records it)")
    if suite is not None and suite != "default" and not Path(suite).exists():
        raise UsageError(f"no suite file at {suite}", "pass a quant suite JSONL, or --suite default")
    cases = None if suite is None else default_suite() if suite == "default" else load_suite(Path(suite))
    evaluate = evaluate_adapter_llamacpp if engine == "llama.cpp" else evaluate_adapter
    r = evaluate(_base_of(base, adapter), adapter, load_conversations(eval_data), cases)
    # Kept beside the adapter, so the run's report shows base vs tuned under the loss curve.
    name = "eval.json" if engine == "transformers" else "eval-llamacpp.json"
    (adapter / name).write_text(json.dumps(r, indent=2), encoding="utf-8")
    from selfhost.tune.report import write_tune_report

    r["report_html"] = str(write_tune_report(adapter))
    if as_json:
        print_json(r)
        return
    rows = [(k, f"loss {r[k]['loss']:.3f}, pass rate {r[k]['pass_rate']:.0%}") for k in ("base", "tuned")]
    rows.append(("significant improvement", str(r["improvement_significant"])))
    if "suite" in r:
        s = r["suite"]
        rows.append(("suite pass rate", f"base {s['base']['pass_rate']:.0%} → tuned {s['tuned']['pass_rate']:.0%}"))
        rows.append(("significant regression", str(s["regression_significant"])))
    print_rows(f"base vs tuned ({engine})", rows)


def _export(base: str | None, adapter: Path | None, merge_dir: Path | None, outtype: str, as_json: bool) -> None:
    from selfhost.tune.export import export_run

    if adapter is None:
        raise UsageError("tune export needs --adapter DIR")
    stderr.print(
        "converting with llama.cpp's convert_lora_to_gguf.py" + (" and convert_hf_to_gguf.py" if merge_dir else "")
    )
    r = export_run(_base_of(base, adapter), adapter, merge_dir, outtype)
    if as_json:
        print_json(r)
        return
    print_rows("export", [(k, str(v)) for k, v in r.items() if k != "serve"] + list(r["serve"].items()))


def _probe(spec: Any, data_file: Path, cfg: Any, as_json: bool) -> None:
    from selfhost.tune.train import probe_training

    examples, sources = load_labeled(data_file)
    stderr.print("probing: a few steps of full batches of the longest conversation …")
    r = probe_training(spec, examples, cfg, sources)
    if as_json:
        print_json(r)
        return
    m = r["memory"]
    print_rows(
        "tune probe (worst case)",
        [
            (
                "tokens per step",
                f"{r['worst_case_tokens_per_step']:,} (longest conversation {r['longest_conversation_tokens']})",
            ),
            ("peak memory", f"{m['peak_bytes'] / 2**30:.2f} GiB on {m['device']} ({m['source']})"),
            ("time per step", f"{r['step_s']:.2f} s (first step {r['first_step_s']:.2f} s)"),
            ("this run", f"{r['run_steps']} steps, at most {r['run_s_upper_bound'] / 60:.1f} min"),
        ],
    )


def _preflight(data_file: Path, eval_file: Path | None) -> dict[str, int]:
    from selfhost.tune.train import preflight

    found = preflight(data_file, eval_file)
    if found:
        listed = ", ".join(f"{n} {code}" for code, n in found.items())
        again = f"selfhost data check {data_file}" + (f" --eval {eval_file}" if eval_file else "")
        stderr.print(
            f"data check: {listed} — `{again}` lists them; `selfhost data clean` removes them",
            soft_wrap=True,
            markup=False,
        )
    return found


def _train(
    spec: Any, data_file: Path, out_dir: Path, cfg: Any, eval_file: Path | None, data_check: dict[str, int] | None
) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from selfhost.tune.train import train_lora

    with Progress(
        TextColumn("training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    ) as bar:
        task = bar.add_task("training", total=None, loss="…")

        def progress(step: int, total: int, loss: float) -> None:
            bar.update(task, completed=step, total=total, loss=f"{loss:.4f}")

        examples, sources = load_labeled(data_file)
        held_out = load_conversations(eval_file) if eval_file else None
        extra = {"data_check": data_check} if data_check is not None else None
        try:
            return train_lora(spec, examples, out_dir, cfg, progress, held_out, sources, extra)
        except KeyboardInterrupt:
            saved = sorted(out_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
            if saved:
                stderr.print(f"checkpoint kept in {saved[-1]}; rerun the same command to resume", markup=False)
            raise


@click.command()
@click.argument("model", required=False)
@click.argument("data_file", required=False, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Run directory (train).")
@click.option("--epochs", type=float, default=3.0, show_default=True)
@click.option("--steps", type=int, default=0, show_default=True, help="Optimizer steps; overrides --epochs when > 0.")
@click.option("--batch-size", type=int, default=4, show_default=True, help="Per device.")
@click.option("--grad-accum", type=int, default=1, show_default=True, help="Gradient accumulation steps.")
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--lr-scheduler", default="linear", show_default=True, help="linear, cosine, constant, …")
@click.option("--warmup-ratio", type=float, default=0.0, show_default=True)
@click.option("--rank", type=int, default=8, show_default=True)
@click.option("--alpha", type=int, default=16, show_default=True)
@click.option("--dropout", type=float, default=0.0, show_default=True)
@click.option(
    "--target-modules",
    default="q_proj,k_proj,v_proj,o_proj",
    show_default=True,
    help="Comma-separated module names, or all-linear.",
)
@click.option("--max-seq-len", type=int, default=256, show_default=True, help="Tokens after the chat template.")
@click.option(
    "--chat-template",
    "chat_template_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Jinja chat template to train with instead of the model's own (needed for base models without one).",
)
@click.option(
    "--on-long",
    type=click.Choice(["error", "drop", "truncate"]),
    default="error",
    show_default=True,
    help="Conversations longer than --max-seq-len: stop and say where, skip them, or cut them.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--checkpoint-every",
    type=int,
    default=50,
    show_default=True,
    help="Steps between checkpoints; a rerun with the same --out resumes, and Ctrl-C saves one.",
)
@click.option(
    "--eval",
    "eval_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Held-out conversations: their loss is logged during training and drawn on the loss curve.",
)
@click.option("--eval-every", type=int, default=0, show_default=True, help="Steps between held-out losses (0: 10x).")
@click.option(
    "--no-data-check",
    "skip_data_check",
    is_flag=True,
    help="Skip the duplicate/leakage/answer checks of `selfhost data check` before training.",
)
@click.option(
    "--probe",
    is_flag=True,
    help="Measure a few worst-case steps (full batches of the longest conversation): peak memory, time per "
    "step, an upper bound on the run's time. Writes nothing.",
)
@click.option("--qlora", is_flag=True, help="4-bit NF4 base weights (bitsandbytes; needs CUDA and an HF model dir).")
@click.option("--gradient-checkpointing", is_flag=True, help="Recompute activations: less memory, ~30 % slower.")
@click.option(
    "--gpus",
    type=int,
    default=None,
    help="Processes, one per GPU (default: the GPUs found). Above 1 the run goes through `accelerate launch`.",
)
@click.option(
    "--launch-only",
    is_flag=True,
    help="Write DIR/launch/ (run config, accelerate config, launch.sh) for a training host and stop.",
)
@click.option(
    "--merge",
    "merge_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write base + adapter merged into one HF model directory here.",
)
@click.option("--base", default=None, help="eval: the base MODEL.")
@click.option(
    "--adapter",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="eval: the adapter directory.",
)
@click.option(
    "--data",
    "eval_data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="eval: held-out conversations.",
)
@click.option(
    "--suite",
    default=None,
    help="eval: also run a quant suite (JSONL of prompts with checks, or `default`) on base and tuned.",
)
@click.option(
    "--engine",
    type=click.Choice(["transformers", "llama.cpp"]),
    default="transformers",
    show_default=True,
    help="eval: run base and tuned in transformers (as trained) or llama.cpp with the GGUF adapter (as served).",
)
@click.option("--gguf", "to_gguf", is_flag=True, help="Also convert the adapter (and --merge model) to GGUF.")
@click.option(
    "--outtype",
    type=click.Choice(["f16", "bf16", "q8_0", "f32"]),
    default="q8_0",
    show_default=True,
    help="export: the merged GGUF's weight type.",
)
@click.option("--json", "as_json", is_flag=True)
def tune(
    model: str | None,
    data_file: Path | None,
    out_dir: Path | None,
    epochs: float,
    steps: int,
    batch_size: int,
    grad_accum: int,
    lr: float,
    lr_scheduler: str,
    warmup_ratio: float,
    rank: int,
    alpha: int,
    dropout: float,
    target_modules: str,
    max_seq_len: int,
    chat_template_file: Path | None,
    on_long: str,
    seed: int,
    checkpoint_every: int,
    eval_file: Path | None,
    eval_every: int,
    skip_data_check: bool,
    probe: bool,
    qlora: bool,
    gradient_checkpointing: bool,
    gpus: int | None,
    launch_only: bool,
    merge_dir: Path | None,
    base: str | None,
    adapter: Path | None,
    eval_data: Path | None,
    suite: str | None,
    engine: str,
    to_gguf: bool,
    outtype: str,
    as_json: bool,
) -> None:
    """LoRA/QLoRA fine-tune MODEL on DATA with TRL (loss on assistant tokens, the model's own template).

    `tune eval --adapter DIR --data FILE` compares base and tuned on held-out data; `tune export --adapter DIR
    [--merge DIR]` converts the adapter (and the merged model) to GGUF for llama.cpp and Ollama."""
    from selfhost.models.resolve import resolve_model

    if model == "eval":
        _eval(base, adapter, eval_data, suite, engine, as_json)
        return
    if model == "export":
        _export(base, adapter, merge_dir, outtype, as_json)
        return
    if data_file is None or (out_dir is None and not probe):
        raise UsageError("tune needs MODEL DATA --out DIR", "e.g. selfhost tune embedded train.jsonl --out run/")
    if min(epochs, batch_size, grad_accum, rank, max_seq_len) <= 0 or steps < 0 or lr <= 0:
        raise UsageError("--epochs, --batch-size, --grad-accum, --rank, --max-seq-len and --lr must be positive")
    from selfhost.tune.train import TuneConfig

    modules = tuple(m.strip() for m in target_modules.split(",") if m.strip())
    cfg = TuneConfig(
        epochs=epochs,
        steps=steps,
        batch_size=batch_size,
        grad_accum=grad_accum,
        learning_rate=lr,
        lr_scheduler=lr_scheduler,
        warmup_ratio=warmup_ratio,
        rank=rank,
        alpha=alpha,
        dropout=dropout,
        target_modules=modules,
        max_seq_len=max_seq_len,
        on_long=on_long,
        seed=seed,
        checkpoint_every=checkpoint_every,
        eval_every=eval_every,
        qlora=qlora,
        gradient_checkpointing=gradient_checkpointing,
    )
    spec = resolve_model(model)
    if chat_template_file is not None:
        from dataclasses import replace

        spec = replace(spec, chat_template=chat_template_file.read_text(encoding="utf-8"))
    if probe:
        _probe(spec, data_file, cfg, as_json)
        return
    assert out_dir is not None
    data_check = None if skip_data_check else _preflight(data_file, eval_file)
    if gpus is None:
        from selfhost.hardware.detect import detect_host

        gpus = max(1, len(detect_host().gpus))
    if launch_only or gpus > 1:
        from selfhost.tune.launch import run_launch, write_launch

        name = model or "embedded"  # as given, so that it resolves on the training host too
        name = str(Path(name).resolve()) if Path(name).exists() else name
        extra = {"data_check": data_check} if data_check is not None else None
        plan = write_launch(name, data_file, out_dir, cfg, gpus, eval_file, extra)
        if launch_only:
            if as_json:
                print_json(plan)
            else:
                print_rows("launch", [("processes", str(gpus)), ("run it", f"sh {plan['script']}")])
            return
        stderr.print(f"{gpus} GPUs: training through accelerate, one process each ({plan['script']})")
        r = run_launch(plan)
    else:
        r = _train(spec, data_file, out_dir, cfg, eval_file, data_check)
    from selfhost.tune.report import write_tune_report

    r["report_html"] = str(write_tune_report(out_dir))
    long = r["longer_than_max_seq_len"]
    if long["count"]:
        verb = {"drop": "skipped", "truncate": "cut"}[long["policy"]]
        stderr.print(
            f"note: {long['count']} conversations longer than --max-seq-len were {verb}: {long['where'][0]} …",
            soft_wrap=True,
            markup=False,
        )
    if to_gguf:
        from selfhost.tune.export import export_run

        r["export"] = export_run(spec, out_dir, merge_dir, outtype)
    elif merge_dir is not None:
        from selfhost.tune.train import merge_adapter

        r["merge"] = merge_adapter(spec, out_dir, merge_dir)
    if as_json:
        print_json(r | {"adapter": str(out_dir)})
        return
    print_rows(
        "tune",
        [
            ("adapter", str(out_dir)),
            ("examples", f"{r['examples']} train, {r['eval_examples']} held out"),
            ("steps", str(r["steps"])),
            ("trainable parameters", f"{r['trainable_parameters']:,}"),
            ("train loss (mean)", f"{r['train_loss']:.4f}"),
            ("train time", f"{r['train_s']:.1f} s"),
            ("peak memory", f"{r['memory']['peak_bytes'] / 2**30:.2f} GiB ({r['memory']['device']})"),
            ("loss curve", r["report_html"]),
        ],
    )
