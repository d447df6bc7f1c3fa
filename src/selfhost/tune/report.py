"""The run directory's report.html: the loss curve (train, and held-out when measured) and, once `tune eval` has
run, base vs tuned with confidence intervals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from selfhost.report.html import write_html
from selfhost.report.plots import bar_chart, line_chart
from selfhost.report.section import Report, Section
from selfhost.tune.train import read_losses

__all__ = ["training_section", "eval_section", "write_tune_report"]


_NONE_LONG = {"count": 0, "policy": "-"}


def _moving_average(values: list[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def training_section(run: dict[str, Any], losses: list[dict[str, Any]]) -> Section:
    train = [r for r in losses if "loss" in r]
    held = [r for r in losses if "eval_loss" in r]
    steps = [float(r["step"]) for r in train]
    values = [float(r["loss"]) for r in train]
    window = max(1, len(values) // 20)
    series = [("train loss", steps, values)]
    if window > 1:
        series.append((f"train, mean of {window}", steps, _moving_average(values, window)))
    if held:
        series.append(("held-out loss", [float(r["step"]) for r in held], [float(r["eval_loss"]) for r in held]))
    cfg = run.get("config", {})
    rows = [
        ("base model", str(run.get("base_name"))),
        ("examples", f"{run.get('examples')} train, {run.get('eval_examples', 0)} held out"),
        ("steps", str(run.get("steps"))),
        (
            "longer than max_seq_len",
            "{count} ({policy})".format(**run.get("longer_than_max_seq_len", {"count": 0, "policy": "-"})),
        ),
        ("batch", f"{cfg.get('batch_size')} × {cfg.get('grad_accum')} accumulation × {run.get('processes', 1)}"),
        ("LoRA", f"rank {cfg.get('rank')}, alpha {cfg.get('alpha')}, {', '.join(cfg.get('target_modules', []))}"),
        ("learning rate", f"{cfg.get('learning_rate')} ({cfg.get('lr_scheduler')})"),
        ("trainable parameters", f"{run.get('trainable_parameters', 0):,}"),
        ("train time", f"{run.get('train_s', 0.0):.1f} s"),
    ]
    memory = run.get("memory")
    if memory:
        grew = (memory["peak_bytes"] - memory["before_train_bytes"]) / 2**30
        rows.append(
            (
                "peak memory",
                f"{memory['peak_bytes'] / 2**30:.2f} GiB ({grew:+.2f} GiB while training; {memory['source']})",
            )
        )
    if train:
        rows.append(("loss first → last", f"{values[0]:.4f} → {values[-1]:.4f}"))
    if held:
        rows.append(("held-out loss first → last", f"{held[0]['eval_loss']:.4f} → {held[-1]['eval_loss']:.4f}"))
    plots = [line_chart(series, title="Loss per optimizer step", x_label="step", y_label="loss")] if train else []
    notes = ["Loss is the mean cross-entropy over assistant tokens (end-of-turn included) of each step's batch."]
    return Section("training", "Training", {"run": run, "losses": losses}, rows, plots, notes)


def eval_section(result: dict[str, Any]) -> Section:
    rows = []
    for side in ("base", "tuned"):
        s = result[side]
        lo, hi = s["pass_rate_ci"]
        rows.append((side, f"loss {s['loss']:.3f}; pass rate {s['pass_rate']:.0%} (95 % CI {lo:.0%}–{hi:.0%})"))
    rows.append(("significant improvement", str(result["improvement_significant"])))
    suite = result.get("suite")
    if suite:
        change = suite["pass_rate_change"]
        rows.append(
            (
                f"suite ({suite['cases']} prompts beyond the task)",
                f"base {suite['base']['pass_rate']:.0%} → tuned {suite['tuned']['pass_rate']:.0%} "
                f"(change 95 % CI {change['ci_low']:+.0%} to {change['ci_high']:+.0%})",
            )
        )
        rows.append(("significant regression", str(suite["regression_significant"])))
    plot = bar_chart(
        ["base", "tuned"],
        [100 * result["base"]["pass_rate"], 100 * result["tuned"]["pass_rate"]],
        title=f"Pass rate on {result['examples']} held-out conversations",
        unit="%",
    )
    notes = ["Pass: the greedy answer contains the reference (normalised). CIs: Wilson; gains: paired bootstrap."]
    engine = result.get("engine", "transformers")
    return Section(f"eval_{engine}", f"Base vs tuned (held out, {engine})", result, rows, [plot], notes)


def write_tune_report(run_dir: Path) -> Path:
    run_file = run_dir / "selfhost-run.json"
    run = json.loads(run_file.read_text(encoding="utf-8")) if run_file.exists() else {}
    report = Report(f"selfhost tune: {run.get('base_name', run_dir.name)}", {"run_dir": str(run_dir)})
    report.add(training_section(run, read_losses(run_dir)))
    for name in ("eval.json", "eval-llamacpp.json"):  # as trained (transformers) and as served (llama.cpp)
        if (run_dir / name).exists():
            report.add(eval_section(json.loads((run_dir / name).read_text(encoding="utf-8"))))
    path = run_dir / "report.html"
    write_html(report, path)
    return path
