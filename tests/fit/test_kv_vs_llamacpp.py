"""Predicted KV cache bytes against what llama.cpp itself reports, read at test time (never copied)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from selfhost.backends.llamacpp_log import MIB
from selfhost.backends.llamacpp_probe import LlamaCppProbe, llamacpp_probe
from selfhost.fit.kv import LlamaCppKVConfig, llamacpp_kv
from selfhost.fit.weights import cpu_repack_bytes
from selfhost.models.gguf_spec import spec_from_gguf

GRID = [
    LlamaCppKVConfig(n_ctx=c, n_parallel=p, type_k=t, type_v=t)
    for c, p, t in itertools.product([512, 2048, 4096, 8192], [1, 4], ["f16", "q8_0", "q4_0"])
]
# llama.cpp's padding and rounding rules, unified KV, and the full-size SWA switch.
EDGES = [
    LlamaCppKVConfig(1000, 3),
    LlamaCppKVConfig(3000, 1),
    LlamaCppKVConfig(4096, 4, kv_unified=True),
    LlamaCppKVConfig(4096, 4, swa_full=True),
    LlamaCppKVConfig(8192, 2, "q8_0", "f16", kv_unified=True),
    LlamaCppKVConfig(2048, 1, n_ubatch=256),
]


@pytest.fixture(scope="module")
def smollm2_probe(smollm2_path: Path) -> Iterator[LlamaCppProbe]:
    with llamacpp_probe(smollm2_path) as p:
        yield p


@pytest.fixture(scope="module")
def gemma3_probe(gemma3_path: Path) -> Iterator[LlamaCppProbe]:
    with llamacpp_probe(gemma3_path) as p:
        yield p


def _assert_same(spec, probe: LlamaCppProbe, cfg: LlamaCppKVConfig) -> None:  # type: ignore[no-untyped-def]
    plan = llamacpp_kv(spec, cfg)
    rep = probe.context_report(cfg)
    reported = sorted((k.layers, k.cells, k.seqs, k.mib) for k in rep.kv_caches)
    predicted = sorted((c.layers, c.cells, c.streams, c.bytes / MIB) for c in plan.caches)
    assert [r[:3] for r in predicted] == [r[:3] for r in reported], cfg
    for (*_, p_mib), (*_, r_mib) in zip(predicted, reported):
        assert abs(p_mib - r_mib) <= 0.005 + 1e-9, (cfg, p_mib, r_mib)  # llama.cpp prints MiB with 2 decimals


@pytest.mark.parametrize("cfg", GRID + EDGES, ids=str)
def test_smollm2_kv_exact(smollm2_path: Path, smollm2_probe: LlamaCppProbe, cfg: LlamaCppKVConfig) -> None:
    _assert_same(spec_from_gguf(smollm2_path), smollm2_probe, cfg)


@pytest.mark.parametrize("cfg", GRID + EDGES, ids=str)
def test_gemma3_sliding_window_kv_exact(gemma3_path: Path, gemma3_probe: LlamaCppProbe, cfg: LlamaCppKVConfig) -> None:
    _assert_same(spec_from_gguf(gemma3_path), gemma3_probe, cfg)


def test_model_buffer_exact(smollm2_path: Path, smollm2_probe: LlamaCppProbe) -> None:
    spec = spec_from_gguf(smollm2_path)
    assert smollm2_probe.model_report.model_mib == round(spec.weights_bytes / MIB, 2)  # type: ignore[operator]
    assert cpu_repack_bytes(spec) == 0  # Q4_1 and Q8_0 are not repacked


def test_gemma3_model_buffers_exact(gemma3_path: Path, gemma3_probe: LlamaCppProbe) -> None:
    """Q4_K weights are also copied into llama.cpp's CPU_REPACK buffer; both buffers are predicted exactly."""
    spec = spec_from_gguf(gemma3_path)
    buffers = gemma3_probe.model_report.model_buffers_mib
    assert buffers["CPU_Mapped"] == round(spec.weights_bytes / MIB, 2)  # type: ignore[operator]
    repack = cpu_repack_bytes(spec)
    assert repack > 0
    assert buffers.get("CPU_REPACK", 0.0) == round(repack / MIB, 2)
