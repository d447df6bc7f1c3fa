"""What `selfhost serve` prints: vLLM's KV capacity is in tokens, llama.cpp's buffers in bytes."""

from __future__ import annotations

from selfhost.serve.section import serve_section


def _report(checks: list[dict]) -> dict:  # type: ignore[type-arg]
    predicted = {"weights_bytes": 1, "kv_cache_bytes": 2, "compute_bytes": 3, "total_bytes": 6}
    return {
        "engine": "vllm",
        "model": "m",
        "url": "http://127.0.0.1:1",
        "command": "x",
        "log": "l",
        "predicted": predicted,
        "from_log": {"checks": checks},
    }


def test_kv_capacity_in_tokens_and_buffers_in_bytes() -> None:
    tokens = {"component": "KV capacity (tokens)", "predicted_bytes": 46592, "actual_bytes": 46592, "error": 0.0}
    buffer = {"component": "KV cache", "predicted_bytes": 2**20, "actual_bytes": 2**20, "error": 0.0}
    rows = dict(serve_section(_report([tokens, buffer])).rows)
    assert rows["KV capacity: engine logged"] == "46,592 tokens (predicted 46,592, +0.0 %)"
    assert rows["KV cache: engine logged"].startswith("1.00 MiB (predicted 1.00 MiB")


def test_engine_args_are_appended_and_a_broken_quote_is_a_usage_error() -> None:
    import pytest

    from selfhost.errors import UsageError
    from selfhost.fit.run import FitOptions
    from selfhost.serve import run as serve

    options = serve.ServeOptions(engine="llama-cpp-python", print_only=True, engine_args="--verbose 'a b'")
    launch = serve.prepare(None, FitOptions(ctx=512), options)
    assert launch.argv[-2:] == ["--verbose", "a b"]
    with pytest.raises(UsageError, match="--engine-args"):
        serve.prepare(None, FitOptions(ctx=512), serve.ServeOptions(print_only=True, engine_args="'unbalanced"))
