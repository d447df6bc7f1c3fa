"""selfhost as a Python library, for scripts and notebooks: the calls the CLI makes, returning what its `--json`
prints (plain dicts with the same keys), and raising :class:`selfhost.errors.SelfhostError` (with `.message`,
`.next_step`, `.exit_code`) where the CLI would print an error.

    import selfhost.api as sh
    plan = sh.fit("embedded", gpu="RTX 4090", ctx=32768)

The calls live here rather than as `selfhost.fit(...)` because `selfhost.fit`, `selfhost.bench`, ... are the
capability packages; a function of the same name on the package would be replaced by the subpackage the moment
anything imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

__all__ = ["info", "fit", "count_tokens", "render", "check_data", "bench", "cost"]


def info(model: str | None = None) -> dict[str, Any]:
    """What a model is (`selfhost info --json`)."""
    from selfhost.models.resolve import resolve_model

    return resolve_model(model).to_dict()


def fit(model: str | None = None, **options: Any) -> dict[str, Any]:
    """Will it fit (`selfhost fit --json`). Options are FitOptions' fields: gpu, gpus, quant, ctx, parallel,
    kv_type, engine, n_gpu_layers, n_cpu_moe, flash_attn, kv_unified, gpu_util, tp, verify, from_log."""
    from selfhost.fit.run import FitOptions, fit_model

    return fit_model(model, FitOptions(**options))


def count_tokens(text: str, model: str | None = None, *, parse_special: bool = False) -> int:
    """Tokens in `text` by the model's own tokenizer (`selfhost context count`)."""
    from selfhost.backends.tokenizer import Tokenizer
    from selfhost.models.resolve import resolve_model

    return len(Tokenizer(resolve_model(model)).encode(text, parse_special=parse_special))


def render(
    messages: Sequence[dict[str, Any]],
    model: str | None = None,
    *,
    add_generation_prompt: bool = True,
    **variables: Any,
) -> str:
    """The prompt the model's chat template makes of `messages`, as transformers renders it (sandboxed)."""
    from selfhost.errors import UsageError
    from selfhost.models.resolve import resolve_model
    from selfhost.template.conversations import check_messages
    from selfhost.template.render import render_chat

    spec = resolve_model(model)
    if not spec.chat_template:
        raise UsageError(f"{spec.name} has no chat template")
    tok = spec.tokenizer
    return render_chat(
        spec.chat_template,
        check_messages(list(messages), "messages"),
        add_generation_prompt=add_generation_prompt,
        bos_token=tok.bos_token,
        eos_token=tok.eos_token,
        **variables,
    )


def check_data(
    path: str | Path, *, model: str | None = None, max_seq_len: int | None = None, eval_path: str | Path | None = None
) -> dict[str, Any]:
    """Every defect in a fine-tuning file with its line and code (`selfhost data check --json`)."""
    from selfhost.data.check import CheckOptions, check_dataset

    count = None
    if max_seq_len is not None:
        from selfhost.backends.tokenizer import Tokenizer
        from selfhost.models.resolve import resolve_model

        count = Tokenizer(resolve_model(model)).count_chat
    opts = CheckOptions(max_seq_len=max_seq_len, count_tokens=count)
    return check_dataset(Path(path), opts, Path(eval_path) if eval_path else None).to_dict()


def bench(
    url: str,
    *,
    concurrency: int = 1,
    requests: int = 100,
    input_tokens: int = 128,
    output_tokens: int = 64,
    model: str | None = None,
    api: str = "openai-chat",
    records: str | Path = "bench-requests.jsonl",
    **config: Any,
) -> dict[str, Any]:
    """Latency and throughput of one closed-loop level against a running server (`selfhost bench --json`);
    `config` takes BenchConfig's other fields (timeout_s, api_key, prompts_file, ...)."""
    from selfhost.bench.load import LoadSpec
    from selfhost.bench.run import BenchConfig, run_bench

    cfg = BenchConfig(
        url=url,
        api=api,  # type: ignore[arg-type]
        model=model,
        load=LoadSpec(concurrency=concurrency, requests=requests),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        records_path=Path(records),
    )
    return run_bench(replace(cfg, **config))


def cost(
    bench_result: dict[str, Any],
    *,
    price_per_hour: float | None = None,
    gpu: str | None = None,
    gpus: int = 1,
    apis: Sequence[str] = ("gpt-4o-mini", "gpt-4o"),
    utilization: float = 1.0,
) -> dict[str, Any]:
    """Dollars per million tokens at the measured throughput, and break-even against hosted APIs."""
    from selfhost.cost.run import HardwareOptions, cost_report, find_api_price, hardware_from_options

    hw = hardware_from_options(HardwareOptions(gpu, gpus, price_per_hour))
    return cost_report(bench_result, hw, [find_api_price(a) for a in apis], utilization, "given")
