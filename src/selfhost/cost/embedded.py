"""A short real bench of the embedded model through `selfhost serve`'s server, for `cost` without --bench."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["bench_embedded"]


def bench_embedded(records_dir: Path, levels: tuple[int, ...] = (1, 2)) -> tuple[dict[str, Any], str]:
    from selfhost.backends.server import LlamaCppServer
    from selfhost.backends.tokenizer import token_counter
    from selfhost.bench.load import LoadSpec
    from selfhost.bench.run import BenchConfig, run_sweep
    from selfhost.models.embedded import embedded_path

    path = embedded_path()
    with LlamaCppServer(path, n_ctx=2048) as server:
        runs = run_sweep(
            BenchConfig(
                url=server.url,
                load=LoadSpec(requests=6),
                input_tokens=64,
                output_tokens=32,
                records_path=records_dir / "cost-bench.jsonl",
            ),
            list(levels),
            "concurrency",
            token_counter(str(path)),
        )
    when = datetime.now(UTC).isoformat(timespec="seconds")
    return {"runs": runs}, f"selfhost bench of the embedded model via llama-cpp-python's server, {when}"
