"""fit in the check report: the plan for this machine, checked against llama.cpp's own buffers."""

from __future__ import annotations

from collections.abc import Sequence

from selfhost.backends.llamacpp_log import MIB
from selfhost.models.spec import ModelSpec
from selfhost.report.plots import line_chart
from selfhost.report.section import Section
from selfhost.units import fmt_bytes

__all__ = ["fit_section"]


def fit_section(
    spec: ModelSpec,
    n_ctx: int,
    host_bandwidth: float,
    contexts: Sequence[int] = (512, 1024, 2048, 4096, 8192),
    measured_decode_tokens_per_s: float | None = None,
) -> Section:
    """The memory plan for this machine, checked against llama.cpp, and memory against context length."""
    from selfhost.fit.compute import llamacpp_compute_bytes
    from selfhost.fit.kv import LlamaCppKVConfig, kv_bytes_per_token, llamacpp_kv
    from selfhost.fit.plan import FitRequest
    from selfhost.fit.solve import fit_answer
    from selfhost.fit.verify import measure_llamacpp, predicted_process_bytes, verify_llamacpp
    from selfhost.hardware.select import host_device

    answer = fit_answer(spec, FitRequest(n_ctx=n_ctx, host=host_device(host_bandwidth)), host_bandwidth)
    answer.pop("table", None)
    verify = verify_llamacpp(spec, LlamaCppKVConfig(n_ctx))
    curve = []
    assert spec.path is not None
    for ctx in [c for c in contexts if c <= (spec.context_length or c)]:
        cfg = LlamaCppKVConfig(ctx)
        rep, measured, _ = measure_llamacpp(spec.path, cfg)
        curve.append(
            {
                "n_ctx": ctx,
                "predicted_kv_bytes": llamacpp_kv(spec, cfg).bytes,
                "reported_kv_bytes": round(rep.kv_mib * MIB),
                "predicted_compute_bytes": llamacpp_compute_bytes(spec, cfg),
                "reported_compute_bytes": round(rep.compute_mib * MIB),
                "predicted_process_bytes": predicted_process_bytes(spec, cfg),
                "measured_process_bytes": measured,
            }
        )
    kv_slope = (
        ((curve[-1]["reported_kv_bytes"] - curve[0]["reported_kv_bytes"]) / (curve[-1]["n_ctx"] - curve[0]["n_ctx"]))
        if len(curve) > 1
        else 0.0
    )
    compute = [c["reported_compute_bytes"] for c in curve]
    d = {
        "plan": answer,
        "verify": verify,
        "context_curve": curve,
        "kv_bytes_per_token_measured": kv_slope,
        "kv_bytes_per_token_predicted": kv_bytes_per_token(spec),
        "host_bandwidth_bytes_per_s": host_bandwidth,
    }
    rows = [
        (
            "plan on this machine",
            f"{fmt_bytes(answer['total_bytes'])} at {n_ctx:,} tokens "
            f"({'fits' if answer['fits'] else 'does not fit'} in RAM)",
        )
    ]
    for c in verify["checks"]:
        rows.append(
            (
                f"{c['component']}: predicted vs actual",
                f"{fmt_bytes(c['predicted_bytes'])} vs {fmt_bytes(c['actual_bytes'])} ({c['error'] * 100:+.1f} %)",
            )
        )
    rows.append(
        ("KV per token", f"{kv_slope:,.0f} bytes measured over the curve; {kv_bytes_per_token(spec):,.0f} predicted")
    )
    rows.append(
        ("compute buffer across contexts", f"{fmt_bytes(min(compute))} – {fmt_bytes(max(compute))} (flash attention)")
    )
    rows.append(("memory bandwidth (measured)", f"{host_bandwidth / 1e9:.1f} GB/s"))
    bound = answer.get("decode_tokens_per_s_upper_bound")
    if bound:
        rows.append(("decode ceiling at full context", f"{bound:.0f} tokens/s"))
    if measured_decode_tokens_per_s:
        short_bound = host_bandwidth / ((spec.weights_bytes or 1) + kv_bytes_per_token(spec) * 128)
        d["decode_bound_short_context_tokens_per_s"] = short_bound
        d["measured_decode_fraction_of_bound"] = measured_decode_tokens_per_s / short_bound
        rows.append(
            (
                "measured decode vs ceiling",
                f"{measured_decode_tokens_per_s:.0f} of {short_bound:.0f} tokens/s "
                f"({100 * measured_decode_tokens_per_s / short_bound:.0f} %) at ~128 tokens",
            )
        )
    xs = [c["n_ctx"] for c in curve]
    plot = line_chart(
        [
            ("process, predicted", xs, [c["predicted_process_bytes"] / MIB for c in curve]),
            ("process, measured RSS", xs, [c["measured_process_bytes"] / MIB for c in curve]),
            ("KV, predicted", xs, [c["predicted_kv_bytes"] / MIB for c in curve]),
            ("KV, llama.cpp", xs, [c["reported_kv_bytes"] / MIB for c in curve]),
            ("compute, llama.cpp", xs, [c["reported_compute_bytes"] / MIB for c in curve]),
        ],
        title="Memory against context length",
        x_label="context (tokens)",
        y_label="MiB",
    )
    notes = [
        f"KV memory grows linearly with context: llama.cpp's own KV size rises by {kv_slope:,.0f} bytes per token "
        f"across {xs[0]:,}–{xs[-1]:,} tokens (predicted {kv_bytes_per_token(spec):,.0f}). With flash attention the "
        f"compute buffer does not grow with context at all here "
        f"({fmt_bytes(min(compute))} – {fmt_bytes(max(compute))}), "
        "so there is no quadratic term.",
        "Measured process memory is the RSS growth of loading the model, creating the context and decoding one full "
        "micro-batch; predicted is the sum of llama.cpp's buffers plus the tokenizer's vocabulary.",
        "Decode ceiling = measured memory bandwidth ÷ bytes read per token (weights + KV); a bound, not a forecast.",
    ]
    return Section("fit", "Fit (memory plan, checked against llama.cpp)", d, rows, [plot], notes)
