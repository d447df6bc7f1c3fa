"""What `selfhost check` and `selfhost info` show of a model's facts."""

from __future__ import annotations

from selfhost.backends.llamacpp_log import MIB
from selfhost.models.spec import ModelSpec
from selfhost.report.plots import bar_chart
from selfhost.report.section import Section
from selfhost.units import fmt_bytes, fmt_count

__all__ = ["model_section"]


def model_section(spec: ModelSpec) -> Section:
    d = spec.to_dict()
    d["chat_template_chars"] = len(spec.chat_template) if spec.chat_template else 0
    rows = [
        ("name", spec.name),
        ("source", f"{spec.source}: {spec.path or spec.source_url}"),
        ("architecture", spec.architecture),
        (
            "parameters",
            fmt_count(spec.parameters)
            + (f" ({fmt_count(spec.active_parameters)} active)" if spec.active_parameters else ""),
        ),
        (
            "layers / heads / KV heads / head dim",
            f"{spec.n_layers} / {spec.n_heads} / {spec.n_kv_heads} / {spec.head_dim}",
        ),
        ("context length", f"{spec.context_length:,}"),
        ("vocabulary", f"{spec.vocab_size:,}"),
    ]
    if spec.sliding_window:
        rows.append(
            ("sliding window", f"{spec.sliding_window} tokens on {spec.n_swa_layers} of {spec.n_layers} layers")
        )
    if spec.is_moe:
        rows.append(("experts", f"{spec.n_experts} ({spec.n_experts_used} active per token)"))
    if spec.file_bytes:
        rows.append(
            (
                "file",
                f"{fmt_bytes(spec.file_bytes)} ({spec.file_type or '?'}), "
                f"{spec.bits_per_weight or 0:.3f} bits per weight over all tensors",
            )
        )
    rows.append(("chat template", f"{len(spec.chat_template):,} characters" if spec.chat_template else "none"))
    plots = []
    by_type = spec.tensor_bytes_by_type
    if by_type:
        plots.append(
            bar_chart(
                list(by_type),
                [b / MIB for b in by_type.values()],
                title="Tensor bytes by type (read from the file's tensor table)",
                unit="MiB",
            )
        )
    notes = [f"{k}: {v}" for k, v in spec.derived.items()]
    return Section("model", "Model", d, rows, plots, notes)
