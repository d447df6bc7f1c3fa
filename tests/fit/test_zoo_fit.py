"""fit on models it was never fitted on: every zoo architecture at the small width, loaded by llama.cpp in a fresh
process (selfhost.fit.verify), each component of fit's plan against the buffer llama.cpp logged and the process's
resident memory. The recurrent architectures (Mamba, LFM2, Granite 4.0-H) add their recurrent state, exact against
llama.cpp's RS buffer. The compute-buffer and tokenizer constants were fitted on SmolLM2 and Gemma 3 270M; none of these
architectures (or widths) was used, so every row here is held out. Published widths: benchmarks/bench_fit_zoo.py.

F16 files with flash attention on, Q4_K_M files with it off (the Q4_K tensors are what llama.cpp's CPU backend copies
into CPU_REPACK, and the mapped buffer then spans only the tensors it keeps mapped)."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfhost.errors import BackendError, UsageError
from selfhost.fit import zoo
from selfhost.fit.kv import LlamaCppKVConfig
from selfhost.fit.plan import RECURRENT_STATE_ARCHITECTURES, FitRequest, plan
from selfhost.fit.verify import verify_llamacpp
from selfhost.fit.weights import host_cpu_features
from selfhost.models.gguf_spec import spec_from_gguf

MIB = 2**20
ARCHS = zoo.architectures()
PLANNED = [a.name for a in ARCHS]  # every zoo architecture, the recurrent ones included (fit.recurrent)
RECURRENT = [a.name for a in ARCHS if a.llama_cpp_arch in RECURRENT_STATE_ARCHITECTURES]
# Exact components: llama.cpp logs MiB with two decimals, so a 0.01 MiB difference is the log's resolution.
EXACT, LOG_RESOLUTION = 0.005, 0.01 * MIB


def _repacks() -> bool:
    return bool({"avx2", "avx512"} & set(host_cpu_features()))


def _path(got: object) -> Path:
    if isinstance(got, BackendError):
        pytest.fail(str(got))
    return got.path if isinstance(got, zoo.ZooModel) else Path(str(got))


def _checks(path: Path, cfg: LlamaCppKVConfig, flash_attn: bool) -> dict[str, dict]:  # type: ignore[type-arg]
    r = verify_llamacpp(spec_from_gguf(path), cfg, flash_attn)
    return {c["component"]: c for c in r["checks"]}


def _assert_components(checks: dict[str, dict], label: str) -> None:  # type: ignore[type-arg]
    for name in ("model buffer", "cpu repack buffer", "KV cache", "recurrent state"):
        if name in checks:
            c = checks[name]
            tol = max(EXACT * c["actual_bytes"], LOG_RESOLUTION)
            assert abs(c["predicted_bytes"] - c["actual_bytes"]) <= tol, (label, c)
    compute = checks["compute buffer"]
    assert abs(compute["error"]) <= 0.05, (label, compute)
    buffers = [c for k, c in checks.items() if k != "process memory"]
    predicted, actual = sum(c["predicted_bytes"] for c in buffers), sum(c["actual_bytes"] for c in buffers)
    assert abs(predicted - actual) <= 0.02 * actual, (label, predicted, actual)
    rss = checks["process memory"]
    assert abs(rss["error"]) <= 0.10, (label, rss)


@pytest.mark.parametrize("name", PLANNED)
def test_f16_with_flash_attention(zoo_small: dict[str, object], name: str) -> None:
    checks = _checks(_path(zoo_small[name]), LlamaCppKVConfig(2048, 2), True)
    # F16 is never repacked; gpt-oss's MXFP4 experts are (with AVX2)
    assert ("cpu repack buffer" in checks) == (zoo.architecture(name).mxfp4_experts and _repacks())
    _assert_components(checks, name)


@pytest.mark.parametrize("name", PLANNED)
def test_q4_k_m_without_flash_attention(zoo_small_q4: dict[str, object], name: str) -> None:
    checks = _checks(_path(zoo_small_q4[name]), LlamaCppKVConfig(1024, 1), False)
    if _repacks():
        assert checks["cpu repack buffer"]["actual_bytes"] > 0  # fit predicted it, llama.cpp made it
    _assert_components(checks, name)


@pytest.mark.parametrize("name", RECURRENT)
def test_recurrent_state_is_planned_and_exact(zoo_small: dict[str, object], name: str) -> None:
    spec = spec_from_gguf(_path(zoo_small[name]))
    assert spec.recurrent is not None and any(spec.recurrent.layers)
    checks = _checks(_path(zoo_small[name]), LlamaCppKVConfig(4096, 4), True)
    state = checks["recurrent state"]  # one state per sequence: four here
    assert state["actual_bytes"] > 0
    assert abs(state["predicted_bytes"] - state["actual_bytes"]) <= LOG_RESOLUTION, state
    p = plan(spec, FitRequest(n_ctx=1024, parallel=4))
    assert p.recurrent_state_bytes == state["predicted_bytes"]
    assert p.recurrent_state_bytes == 4 * plan(spec, FitRequest(n_ctx=4096, parallel=1)).recurrent_state_bytes


def test_a_recurrent_architecture_fit_does_not_model_is_refused(zoo_small: dict[str, object]) -> None:
    from dataclasses import replace

    spec = spec_from_gguf(_path(zoo_small["lfm2-1.2b"]))
    unmodelled = replace(spec, architecture="qwen3next", recurrent=None)  # Gated DeltaNet: not modelled
    with pytest.raises(UsageError, match="recurrent state"):
        plan(unmodelled, FitRequest(n_ctx=1024))
