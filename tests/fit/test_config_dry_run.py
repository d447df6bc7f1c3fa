"""fit --shape-dry-run: llama.cpp's own compute buffer for a model known only by its config (fit/config_dry_run.py),
and the file's dry run answering for any quantization of it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from selfhost.fit import zoo
from selfhost.fit.dry_run import DRY_RUN_SOURCE, DryRun, llamacpp_dry_run
from selfhost.fit.kv import LlamaCppKVConfig
from selfhost.fit.plan import FitRequest, plan
from selfhost.models.gguf_spec import spec_from_gguf
from selfhost.models.resolve import resolve_model
from tests.fit.conftest import zoo_tokenizers_available
from tests.fit.test_zoo_fit import _path


@pytest.fixture(scope="module")
def built_ok(zoo_dir: Path) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    if not zoo_tokenizers_available():
        pytest.skip("the embedded models (SmolLM2, Gemma 3 270M) lend the tokenizers")
    got = zoo.build("qwen3moe-30b-a3b", "published", zoo_dir, shape_only=True)
    return got.path


def test_a_catalog_model_gets_llama_cpps_compute_buffer_from_its_config(
    built_ok: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Qwen3-30B-A3B from the catalog (its published config values), where fit's formula is 37 % low: the plan takes
    llama.cpp's answer for a header built from the config. The zoo builds the same published model from its own copy
    of the config.json, with 2 layers instead of 8: llama.cpp sizes the same compute buffer for both."""
    monkeypatch.setenv("SELFHOST_CACHE", str(tmp_path))
    spec = resolve_model("qwen3-30b-a3b")
    assert spec.path is None and "hf_config" in spec.extra
    for flash_attn, slots in [(True, 1), (False, 4)]:
        req = FitRequest(n_ctx=4096, parallel=slots, flash_attn=flash_attn, dry_run=True, config_dry_run=True)
        p = plan(spec, req)
        assert p.detail["compute_source"] == DRY_RUN_SOURCE, p.notes
        assert any("built from the config" in n for n in p.notes), p.notes
        cfg = LlamaCppKVConfig(4096 * slots, slots)
        zoo_answer = llamacpp_dry_run(built_ok, cfg, flash_attn, slots)  # llama-server: one output per slot
        assert isinstance(zoo_answer, DryRun)
        assert p.compute_bytes == zoo_answer.compute_bytes
        if flash_attn:  # what it fixes: the formula's −37 % (without flash attention the formula is close)
            assert p.detail["compute_formula_bytes"] < 0.7 * p.compute_bytes
    (built,) = (tmp_path / "shapes").glob("*.gguf")
    assert built.stat().st_blocks * 512 < 50 * 2**20 < built.stat().st_size  # 8 layers at 4.9 GB, on disk a header
    # 8 layers stand for all 48: the compute buffer is one layer's work at a time
    from selfhost.fit.config_dry_run import config_gguf

    every_layer = config_gguf(spec, layers=spec.n_layers)
    assert isinstance(every_layer, Path) and every_layer != built
    for cfg, flash_attn, outputs in [(LlamaCppKVConfig(4096, 1), True, 1), (LlamaCppKVConfig(8192, 2), False, None)]:
        a, b = (
            llamacpp_dry_run(built, cfg, flash_attn, outputs),
            llamacpp_dry_run(every_layer, cfg, flash_attn, outputs),
        )
        assert isinstance(a, DryRun) and isinstance(b, DryRun)
        assert a.compute_bytes == b.compute_bytes and a.kv_cache_bytes * 48 == b.kv_cache_bytes * 8
    # a rerun finds the build by its config, without torch (whose import takes seconds)
    monkeypatch.setitem(sys.modules, "torch", None)
    again = plan(spec, FitRequest(n_ctx=4096, dry_run=True, config_dry_run=True))
    assert again.detail["compute_source"] == DRY_RUN_SOURCE, again.notes
    # without it, the formula stays and says how far it can be trusted
    p = plan(spec, FitRequest(n_ctx=4096, dry_run=True))
    assert p.detail["compute_source"].startswith("formula")
    assert any("held out" in n and "--shape-dry-run" in n for n in p.notes), p.notes


def test_without_torch_the_formula_stays_with_the_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SELFHOST_CACHE", str(tmp_path))
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    p = plan(resolve_model("llama-3.1-8b"), FitRequest(n_ctx=4096, dry_run=True, config_dry_run=True))
    assert p.detail["compute_source"].startswith("formula")
    assert any("selfhost[tune]" in n for n in p.notes), p.notes


def test_a_config_transformers_does_not_know_keeps_the_formula(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("transformers")
    from dataclasses import replace

    monkeypatch.setenv("SELFHOST_CACHE", str(tmp_path))
    spec = resolve_model("llama-3.1-8b")
    odd = replace(spec, extra=spec.extra | {"hf_config": spec.extra["hf_config"] | {"model_type": "no-such-model"}})
    p = plan(odd, FitRequest(n_ctx=4096, dry_run=True, config_dry_run=True))
    assert p.detail["compute_source"].startswith("formula")
    assert any("no-such-model" in n for n in p.notes), p.notes


def test_the_compute_buffer_does_not_depend_on_the_weights_quantization(
    zoo_small: dict[str, object], zoo_small_q4: dict[str, object]
) -> None:
    """Why a file's dry run answers for any --quant: F16 and Q4_K_M builds of the same architectures reserve the
    same compute buffer (the activations are f32 whatever the weights). Measured on 7 architectures × 8 settings
    while writing this (all equal); three of them here."""
    for name in ["llama-1b", "qwen3moe-30b-a3b", "gpt-oss-20b"]:
        f16, q4 = _path(zoo_small[name]), _path(zoo_small_q4[name])
        for cfg, fa, outputs in [
            (LlamaCppKVConfig(4096, 2), True, None),
            (LlamaCppKVConfig(4096, 2, n_ubatch=2048), False, 2),
        ]:
            a, b = llamacpp_dry_run(f16, cfg, fa, outputs), llamacpp_dry_run(q4, cfg, fa, outputs)
            assert isinstance(a, DryRun) and isinstance(b, DryRun)
            assert a.compute_bytes == b.compute_bytes, (name, cfg, fa)
    spec = spec_from_gguf(_path(zoo_small["llama-1b"]))
    p = plan(spec, FitRequest(quant="Q4_K_M", n_ctx=2048, parallel=2, dry_run=True))
    assert p.detail["compute_source"] == DRY_RUN_SOURCE and not p.weights.exact


def test_a_hostile_config_is_refused_before_anything_is_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A config.json is input: a vocabulary of 10^9 would have the converter pad it token by token."""
    pytest.importorskip("transformers")
    from dataclasses import replace

    monkeypatch.setenv("SELFHOST_CACHE", str(tmp_path))
    spec = resolve_model("llama-3.2-1b")
    hostile = replace(spec, extra=spec.extra | {"hf_config": spec.extra["hf_config"] | {"vocab_size": 10**9}})
    p = plan(hostile, FitRequest(n_ctx=4096, dry_run=True, config_dry_run=True))
    assert p.detail["compute_source"].startswith("formula")
    assert any("vocab_size 1000000000 is outside" in n for n in p.notes), p.notes
    assert not (tmp_path / "shapes").exists() or not any((tmp_path / "shapes").rglob("*.gguf"))
