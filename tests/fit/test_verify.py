"""`--verify` and `--from-log`: predictions against what llama.cpp reports and what the process uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfhost.backends.llamacpp import LlamaCppBackend
from selfhost.fit.kv import LlamaCppKVConfig
from selfhost.fit.plan import FitRequest
from selfhost.fit.verify import compare_log, parse_vllm_log, verify_llamacpp
from selfhost.hardware.catalog import find_device
from selfhost.models.catalog import spec_from_catalog
from selfhost.models.gguf_spec import spec_from_gguf

CFGS = [LlamaCppKVConfig(2048), LlamaCppKVConfig(4096, 4, "q8_0", "q8_0")]


@pytest.mark.parametrize("cfg", CFGS, ids=str)
@pytest.mark.parametrize("model", ["smollm2_path", "gemma3_path"])
def test_verify_components(model: str, cfg: LlamaCppKVConfig, request: pytest.FixtureRequest) -> None:
    spec = spec_from_gguf(request.getfixturevalue(model))
    checks = {c["component"]: c for c in verify_llamacpp(spec, cfg)["checks"]}
    # Exact at llama.cpp's printed precision: two decimals of MiB per printed line (Gemma prints two KV caches).
    for exact in ("model buffer", "KV cache", "output buffer"):
        assert abs(checks[exact]["predicted_bytes"] - checks[exact]["actual_bytes"]) <= 2 * 0.005 * 1024**2 + 1
    assert abs(checks["compute buffer"]["error"]) < 0.05
    assert abs(checks["process memory"]["error"]) < 0.10
    assert checks["process memory"]["actual_bytes"] > checks["model buffer"]["actual_bytes"]


def test_from_llama_cpp_log(tmp_path: Path, smollm2_path: Path) -> None:
    with LlamaCppBackend(smollm2_path, n_ctx=3000) as b:
        log = b.load_report.log
    f = tmp_path / "llama.log"
    f.write_text(log)
    out = compare_log(spec_from_gguf(smollm2_path), f)
    assert out["settings"]["n_ctx"] == 3072  # llama.cpp padded 3000 to a multiple of 256
    checks = {c["component"]: c for c in out["checks"]}
    assert checks["KV cache"]["actual_bytes"] == checks["KV cache"]["predicted_bytes"] == 3072 * 30 * 2 * 192 * 2


VLLM_LOG = """\
INFO 11-29 10:00:01 [gpu_model_runner.py:1620] Model loading took 14.9889 GiB and 6.4 seconds
INFO 11-29 10:00:19 [kv_cache_utils.py:716] GPU KV cache size: 420,912 tokens
INFO 11-29 10:00:19 [kv_cache_utils.py:720] Maximum concurrency for 8,192 tokens per request: 51.38x
"""


def test_from_vllm_log(tmp_path: Path) -> None:
    """VLLM_LOG stands for a vLLM v1 startup log on a GPU (it cannot run here; the CPU build's own log is checked in
    tests/serve/test_vllm.py); the lines follow the format of
    vllm/v1/core/kv_cache_utils.py and gpu_model_runner.py."""
    assert parse_vllm_log(VLLM_LOG) == {
        "device": "GPU",
        "kv_capacity_tokens": 420912,
        "max_model_len": 8192,
        "max_concurrency": 51.38,
        "weights_bytes": int(14.9889 * 1024**3),
    }
    f = tmp_path / "vllm.log"
    f.write_text(VLLM_LOG)
    out = compare_log(
        spec_from_catalog("llama-3.1-8b"), f, FitRequest(engine="vllm", n_ctx=8192, gpus=(find_device("H100"),))
    )
    kv = next(c for c in out["checks"] if c["component"] == "KV capacity (tokens)")
    assert kv["actual_bytes"] == 420912 and abs(kv["error"]) < 0.05


def test_log_that_is_neither(tmp_path: Path) -> None:
    from selfhost.errors import UsageError

    f = tmp_path / "x.log"
    f.write_text("hello\n")
    with pytest.raises(UsageError, match="neither a llama.cpp nor a vLLM"):
        compare_log(spec_from_catalog("llama-3.1-8b"), f)
