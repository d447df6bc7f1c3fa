"""What `selfhost tune train|eval|export|--probe` show: one Section each (the run directory's report.html with its
loss curve is tune.report)."""

from __future__ import annotations

from typing import Any

from selfhost.report.section import Section

__all__ = ["train_section", "eval_summary_section", "export_section", "probe_section", "launch_section"]


def train_section(r: dict[str, Any]) -> Section:
    rows = [
        ("adapter", str(r["adapter"])),
        ("examples", f"{r['examples']} train, {r['eval_examples']} held out"),
        ("steps", str(r["steps"])),
        ("trainable parameters", f"{r['trainable_parameters']:,}"),
        ("train loss (mean)", f"{r['train_loss']:.4f}"),
        ("train time", f"{r['train_s']:.1f} s"),
        ("peak memory", f"{r['memory']['peak_bytes'] / 2**30:.2f} GiB ({r['memory']['device']})"),
        ("loss curve", r["report_html"]),
    ]
    return Section("tune", "tune", r, rows)


def eval_summary_section(r: dict[str, Any], engine: str) -> Section:
    rows = [(k, f"loss {r[k]['loss']:.3f}, pass rate {r[k]['pass_rate']:.0%}") for k in ("base", "tuned")]
    rows.append(("significant improvement", str(r["improvement_significant"])))
    if "suite" in r:
        s = r["suite"]
        rows.append(("suite pass rate", f"base {s['base']['pass_rate']:.0%} → tuned {s['tuned']['pass_rate']:.0%}"))
        rows.append(("significant regression", str(s["regression_significant"])))
    return Section("tune_eval", f"base vs tuned ({engine})", r, rows)


def export_section(r: dict[str, Any]) -> Section:
    rows = [(k, str(v)) for k, v in r.items() if k != "serve"] + list(r["serve"].items())
    return Section("tune_export", "export", r, rows)


def probe_section(r: dict[str, Any]) -> Section:
    m = r["memory"]
    rows = [
        (
            "tokens per step",
            f"{r['worst_case_tokens_per_step']:,} (longest conversation {r['longest_conversation_tokens']})",
        ),
        ("peak memory", f"{m['peak_bytes'] / 2**30:.2f} GiB on {m['device']} ({m['source']})"),
        ("time per step", f"{r['step_s']:.2f} s (first step {r['first_step_s']:.2f} s)"),
        ("this run", f"{r['run_steps']} steps, at most {r['run_s_upper_bound'] / 60:.1f} min"),
    ]
    return Section("tune_probe", "tune probe (worst case)", r, rows)


def launch_section(plan: dict[str, Any]) -> Section:
    return Section(
        "tune_launch", "launch", plan, [("processes", str(plan["processes"])), ("run it", f"sh {plan['script']}")]
    )
