"""`selfhost fit MODEL`: will it fit, at which quantization and context, for how many users."""

from __future__ import annotations

from pathlib import Path

import click

from selfhost.cli.output import print_json, print_rows, stdout
from selfhost.fit.engines import engine_names
from selfhost.units import fmt_bytes


@click.command()
@click.argument("model", required=False)
@click.option("--gpu", default=None, help="Catalog GPU name (e.g. 'RTX 4090', H100), 'auto' (NVML), or omit for CPU.")
@click.option("--gpus", "gpu_count", type=int, default=1, show_default=True, help="How many of --gpu.")
@click.option("--quant", default=None, help="Weights quantization (default: the file's own; Q4_K_M for catalog).")
@click.option(
    "--ctx",
    "n_ctx",
    type=int,
    default=None,
    help="Context per request (default: min(8192, model limit); Ollama: its own VRAM-tiered default).",
)
@click.option("--parallel", type=int, default=1, show_default=True, help="Parallel slots / concurrent sequences.")
@click.option("--kv-type", default="f16", show_default=True, help="KV cache type: f16, bf16, q8_0, q4_0 (vLLM: fp8).")
@click.option("--engine", type=click.Choice(engine_names()), default="llama.cpp", show_default=True)
@click.option("--n-gpu-layers", "-ngl", type=int, default=None, help="llama.cpp layers on GPU (default: all that fit).")
@click.option("--n-cpu-moe", type=int, default=0, help="llama.cpp: keep the experts of the first N layers in RAM.")
@click.option("--no-flash-attn", is_flag=True, help="Plan without flash attention (bigger compute buffer).")
@click.option("--kv-unified", is_flag=True, help="llama.cpp --kv-unified: one KV stream shared by all slots.")
@click.option(
    "--gpu-util",
    type=click.FloatRange(0.05, 1.0),
    default=0.9,
    show_default=True,
    help="vLLM --gpu-memory-utilization.",
)
@click.option("--tp", type=int, default=None, help="vLLM tensor parallel size (default: number of GPUs).")
@click.option("--verify", is_flag=True, help="Load the model in llama.cpp here and compare every component.")
@click.option(
    "--from-log",
    "log_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A llama.cpp or vLLM startup log: show predicted vs logged.",
)
@click.option("--json", "as_json", is_flag=True)
def fit(
    model: str | None,
    gpu: str | None,
    gpu_count: int,
    quant: str | None,
    n_ctx: int | None,
    parallel: int,
    kv_type: str,
    engine: str,
    n_gpu_layers: int | None,
    n_cpu_moe: int,
    no_flash_attn: bool,
    kv_unified: bool,
    gpu_util: float,
    tp: int | None,
    verify: bool,
    log_path: Path | None,
    as_json: bool,
) -> None:
    """Memory plan for MODEL: weights + KV cache + buffers per device, max context per quantization,
    the recommended configuration, speed ceilings and launch commands."""
    from selfhost.fit.run import FitOptions, fit_model

    options = FitOptions(
        gpu=gpu,
        gpus=gpu_count,
        quant=quant,
        ctx=n_ctx,
        parallel=parallel,
        kv_type=kv_type,
        engine=engine,
        n_gpu_layers=n_gpu_layers,
        n_cpu_moe=n_cpu_moe,
        flash_attn=not no_flash_attn,
        kv_unified=kv_unified,
        gpu_util=gpu_util,
        tp=tp,
        verify=verify,
        from_log=log_path,
    )
    answer = fit_model(model, options)
    if as_json:
        print_json(answer)
        return
    _print(answer)


def _print(a: dict) -> None:  # type: ignore[type-arg]
    verdict = "[green]fits[/]" if a["fits"] else "[red]does not fit[/]"
    stdout.print(
        f"[bold]{a['model']}[/] on {a['engine']}, {a['quant']}, {a['n_ctx']:,} tokens × {a['parallel']} "
        f"slot(s), KV {a['kv_type']}: {verdict}"
    )
    rows = [
        ("weights", f"{fmt_bytes(a['weights_bytes'])} ({'exact' if a['weights_exact'] else 'estimated'})"),
        ("KV cache", fmt_bytes(a["kv_cache_bytes"])),
        ("compute buffers", fmt_bytes(a["compute_bytes"])),
        ("overhead", fmt_bytes(a["overhead_bytes"])),
        ("total", fmt_bytes(a["total_bytes"])),
    ]
    if a.get("n_gpu_layers") is not None:
        rows.append(("GPU layers", str(a["n_gpu_layers"])))
    if a.get("kv_capacity_tokens") is not None:
        rows.append(("KV capacity", f"{a['kv_capacity_tokens']:,} tokens"))
    for d in a["per_device"]:
        comps = ", ".join(f"{k} {fmt_bytes(v)}" for k, v in d["components"].items() if v)
        rows.append(
            (
                d["name"],
                f"{fmt_bytes(d['used_bytes'])} of {fmt_bytes(d['capacity_bytes'])} "
                f"({'ok' if d['fits'] else 'OVER'}; {comps})",
            )
        )
    if a.get("decode_tokens_per_s_upper_bound"):
        rows.append(
            (
                "decode ceiling",
                f"{a['decode_tokens_per_s_upper_bound']:.0f} tokens/s (bandwidth ÷ "
                f"{fmt_bytes(a['bytes_read_per_token'])} read per token)",
            )
        )
    if a.get("prefill_tokens_per_s_upper_bound"):
        rows.append(("prefill ceiling", f"{a['prefill_tokens_per_s_upper_bound']:.0f} tokens/s (peak FLOPs)"))
    print_rows("memory plan", rows)
    print_rows(
        "largest context that fits, per quantization",
        [(q, f"{c:,}" if c else "does not fit") for q, c in a["max_context"].items()],
    )
    rec = a.get("recommended")
    stdout.print(
        f"recommended: [bold]{rec['quant']}[/] — {rec['why']}"
        if rec
        else "[red]no quantization fits this context on these devices[/]"
    )
    print_rows("launch", list(a["launch"].items()))
    for n in a["notes"]:
        stdout.print(f"[dim]note: {n}[/]")
    for key in ("verify", "from_log"):
        if key in a:
            print_rows(
                f"{key}: predicted vs actual",
                [
                    (
                        c["component"],
                        f"{fmt_bytes(c['predicted_bytes'])} vs {fmt_bytes(c['actual_bytes'])} "
                        f"({c['error'] * 100:+.1f} %) — {c['source']}",
                    )
                    for c in a[key]["checks"]
                ],
            )
