"""The offline catalog: published config values with their sources, and close-name suggestions."""

from __future__ import annotations

import pytest

from selfhost.errors import UnknownModelError
from selfhost.models.catalog import catalog_entries, find_entry, spec_from_catalog
from selfhost.models.params import estimate_parameters

REQUIRED = [
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "llama-3.2-1b",
    "llama-3.2-3b",
    "qwen2.5-7b",
    "qwen2.5-32b",
    "qwen2.5-72b",
    "qwen3-8b",
    "qwen3-30b-a3b",
    "qwen3-235b-a22b",
    "mistral-7b-v0.3",
    "mistral-nemo-12b",
    "mistral-small-24b",
    "mixtral-8x7b",
    "gemma-2-9b",
    "gemma-2-27b",
    "gemma-3-4b",
    "gemma-3-12b",
    "gemma-3-27b",
    "phi-4",
    "deepseek-v3",
    "gpt-oss-20b",
    "gpt-oss-120b",
]


def test_catalog_has_the_popular_models_with_sources() -> None:
    names = {e.name for e in catalog_entries()}
    assert set(REQUIRED) <= names
    for e in catalog_entries():
        assert e.source_url.startswith("https://huggingface.co/") and e.source_url.endswith("/config.json")
        assert e.hf_repo in e.source_url


def test_llama_3_1_8b_published_config() -> None:
    s = spec_from_catalog("llama-3.1-8b")
    assert (s.n_layers, s.n_heads, s.n_kv_heads, s.head_dim) == (32, 32, 8, 128)
    assert (s.hidden_size, s.intermediate_size, s.vocab_size, s.context_length) == (4096, 14336, 128256, 131072)
    assert s.parameters == 8_030_261_248
    assert s.source == "catalog" and "meta-llama/Llama-3.1-8B-Instruct" in (s.source_url or "")


@pytest.mark.parametrize("name", REQUIRED)
def test_parameter_formula_agrees_with_published_counts(name: str) -> None:
    """The formula and the model cards are independent: agreement within 1.5 % checks both."""
    e = find_entry(name)
    est = estimate_parameters(e.config)
    total = est.total + (e.vision_parameters or 0)
    assert total == pytest.approx(e.parameters, rel=0.015), (total, e.parameters)


@pytest.mark.parametrize("name", ["mixtral-8x7b", "qwen3-30b-a3b", "qwen3-235b-a22b", "deepseek-v3"])
def test_active_parameters_of_moe(name: str) -> None:
    e = find_entry(name)
    assert e.active_parameters is not None
    assert estimate_parameters(e.config).active == pytest.approx(e.active_parameters, rel=0.05)


def test_exact_formula_for_llama_3_1_8b() -> None:
    assert estimate_parameters(find_entry("llama-3.1-8b").config).total == 8_030_261_248


def test_architecture_specific_facts() -> None:
    ds = spec_from_catalog("deepseek-v3")
    assert ds.architecture == "deepseek2" and ds.mla is not None
    assert (ds.mla.kv_lora_rank, ds.mla.qk_rope_head_dim) == (512, 64)
    assert ds.n_experts == 256 and ds.n_experts_used == 8 and ds.n_shared_experts == 1
    g = spec_from_catalog("gemma-3-27b")
    assert g.sliding_window == 1024 and g.n_swa_layers == 62 - 62 // 6
    oss = spec_from_catalog("gpt-oss-20b")
    assert oss.n_swa_layers == 12 and oss.sliding_window == 128
    assert spec_from_catalog("mixtral-8x7b").architecture == "llama"  # as llama.cpp converts it


def test_lookup_by_alias_and_repo() -> None:
    assert find_entry("llama3.1:8b").name == "llama-3.1-8b"
    assert find_entry("meta-llama/Llama-3.1-70B-Instruct").name == "llama-3.1-70b"
    assert find_entry("Qwen3-8B").name == "qwen3-8b"


def test_unknown_name_suggests_close_ones() -> None:
    with pytest.raises(UnknownModelError) as err:
        find_entry("lama-3.1-8b")
    assert "llama-3.1-8b" in (err.value.next_step or "")
