"""`selfhost tune train|eval|export` as library calls: options in, the `--json` answer out."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from selfhost.errors import UsageError
from selfhost.models.spec import ModelSpec
from selfhost.settings import setting
from selfhost.tune.config import Progress, TuneConfig
from selfhost.tune.dataset import load_conversations, load_labeled

__all__ = ["TrainOptions", "base_model", "train_run", "probe_run", "eval_run", "export", "data_check"]


@dataclass(frozen=True)
class TrainOptions:
    """How a training run is fed and what it leaves behind (TuneConfig holds the optimization settings)."""

    eval_file: Path | None = setting(
        None,
        "Held-out conversations: their loss is logged during training and drawn on the loss curve.",
        flag="--eval",
        path="in",
    )
    chat_template_file: Path | None = setting(
        None,
        "Jinja chat template to train with instead of the model's own (needed for base models without one).",
        flag="--chat-template",
        path="in",
    )
    data_check: bool = setting(
        True,
        "Skip the duplicate/leakage/answer checks of `selfhost data check` before training.",
        flag="--no-data-check",
        invert=True,
    )
    gpus: int | None = setting(
        None, "Processes, one per GPU (default: the GPUs found). Above 1 the run goes through `accelerate launch`."
    )
    launch_only: bool = setting(
        False, "Write DIR/launch/ (run config, accelerate config, launch.sh) for a training host and stop."
    )
    merge_dir: Path | None = setting(
        None, "Also write base + adapter merged into one HF model directory here.", flag="--merge", path="dir"
    )
    to_gguf: bool = setting(False, "Also convert the adapter (and --merge model) to GGUF.", flag="--gguf")
    outtype: str = setting("q8_0", "The merged GGUF's weight type.", choices=("f16", "bf16", "q8_0", "f32"))


def base_model(base: str | None, adapter: Path) -> ModelSpec:
    """--base, or the base model recorded in the run directory, with the template the run was trained with."""
    from selfhost.models.resolve import resolve_model
    from selfhost.tune.dataset import with_run_template

    if base is None:
        run = adapter / "selfhost-run.json"
        if not run.exists():
            raise UsageError(f"{adapter} has no selfhost-run.json naming its base model", "pass --base MODEL")
        base = json.loads(run.read_text(encoding="utf-8"))["base_model"]
    return with_run_template(resolve_model(base), adapter)


def _spec(model: str | None, chat_template_file: Path | None) -> ModelSpec:
    from selfhost.models.resolve import resolve_model

    spec = resolve_model(model)
    if chat_template_file is not None:
        spec = replace(spec, chat_template=chat_template_file.read_text(encoding="utf-8"))
    return spec


def data_check(data_file: Path, eval_file: Path | None) -> dict[str, int]:
    from selfhost.tune.dataset import preflight

    return preflight(data_file, eval_file)


def probe_run(model: str | None, data_file: Path, cfg: TuneConfig, opts: TrainOptions) -> dict[str, Any]:
    from selfhost.tune.probe import probe_training

    examples, sources = load_labeled(data_file)
    return probe_training(_spec(model, opts.chat_template_file), examples, cfg, sources)


def train_run(
    model: str | None,
    data_file: Path,
    out_dir: Path,
    cfg: TuneConfig,
    opts: TrainOptions,
    found: dict[str, int] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train (here, or through `accelerate launch` on several GPUs), then the report, merge and export asked for.

    found: the data check's counts, recorded with the run. With launch_only, the launch plan is returned instead."""
    spec = _spec(model, opts.chat_template_file)
    gpus = opts.gpus
    if gpus is None:
        from selfhost.hardware.detect import detect_host

        gpus = max(1, len(detect_host().gpus))
    extra = {"data_check": found} if found is not None else None
    if opts.launch_only or gpus > 1:
        from selfhost.tune.launch import run_launch, write_launch

        name = model or "embedded"  # as given, so that it resolves on the training host too
        name = str(Path(name).resolve()) if Path(name).exists() else name
        plan = write_launch(name, data_file, out_dir, cfg, gpus, opts.eval_file, extra)
        if opts.launch_only:
            return plan | {"launch_only": True, "processes": gpus}
        r = run_launch(plan)
    else:
        from selfhost.tune.train import train_lora

        examples, sources = load_labeled(data_file)
        held_out = load_conversations(opts.eval_file) if opts.eval_file else None
        r = train_lora(spec, examples, out_dir, cfg, progress, held_out, sources, extra)
    from selfhost.tune.report import write_tune_report

    r["report_html"] = str(write_tune_report(out_dir))
    if opts.to_gguf:
        from selfhost.tune.export import export_run

        r["export"] = export_run(spec, out_dir, opts.merge_dir, opts.outtype)
    elif opts.merge_dir is not None:
        from selfhost.tune.hf import merge_adapter

        r["merge"] = merge_adapter(spec, out_dir, opts.merge_dir)
    return r | {"adapter": str(out_dir)}


def eval_run(
    base: str | None, adapter: Path, eval_data: Path, suite: str | None = None, engine: str = "transformers"
) -> dict[str, Any]:
    """Base vs tuned on held-out conversations (and a quant suite), in transformers or llama.cpp; the result is
    kept beside the adapter so the run's report shows it under the loss curve."""
    from selfhost.evals.suite import default_suite, load_suite
    from selfhost.tune.evaluate import evaluate_adapter, evaluate_adapter_llamacpp
    from selfhost.tune.report import write_tune_report

    if suite is not None and suite != "default" and not Path(suite).exists():
        raise UsageError(f"no suite file at {suite}", "pass a quant suite JSONL, or --suite default")
    cases = None if suite is None else default_suite() if suite == "default" else load_suite(Path(suite))
    evaluate = evaluate_adapter_llamacpp if engine == "llama.cpp" else evaluate_adapter
    r = evaluate(base_model(base, adapter), adapter, load_conversations(eval_data), cases)
    name = "eval.json" if engine == "transformers" else "eval-llamacpp.json"
    (adapter / name).write_text(json.dumps(r, indent=2), encoding="utf-8")
    r["report_html"] = str(write_tune_report(adapter))
    return r


def export(base: str | None, adapter: Path, merge_dir: Path | None = None, outtype: str = "q8_0") -> dict[str, Any]:
    from selfhost.tune.export import export_run

    return export_run(base_model(base, adapter), adapter, merge_dir, outtype)
