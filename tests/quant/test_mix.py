"""A custom mix under a byte budget, searched on the embedded model with llama.cpp's own llama-quantize."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfhost.evals.builtin_suite import builtin_suite
from selfhost.models.gguf_file import read_gguf
from selfhost.models.gguf_spec import spec_from_gguf
from selfhost.quant.imatrix import calibration_text
from selfhost.quant.kld import default_text
from selfhost.quant.mix import (
    Mix,
    SearchLog,
    kld_meter,
    make_mix,
    parse_bytes,
    predicted_bytes,
    search_mix,
    tensor_roles,
)
from selfhost.quant.variants import make_variants

pytest.importorskip("llama_cpp")


def test_a_recipe_is_made_as_asked_and_its_size_predicted(smollm2_path: Path, tmp_path: Path) -> None:
    variants = make_variants(smollm2_path, tmp_path / "v", ["Q4_K_M"], "Q4_1")
    reference, base = variants[0].path, variants[1].path
    assert reference is not None and base is not None
    mix = Mix("Q4_K_M", (("token_embd", "q5_0"), ("attn_q", "q8_0"), ("ffn_up", "q6_k")))
    made = make_mix(reference, mix, tmp_path / "mix")
    assert made.stat().st_size == predicted_bytes(base, mix.overrides) != base.stat().st_size
    types = {t.name: t.type.lower() for t in read_gguf(made).tensors}
    assert types["token_embd.weight"] == "q5_0"
    assert {ty for n, ty in types.items() if n.endswith(".attn_q.weight")} == {"q8_0"}
    # ffn_up's rows are 576 wide, not whole Q6_K blocks: llama.cpp falls back to Q8_0, and the prediction knows it
    assert {ty for n, ty in types.items() if n.endswith(".ffn_up.weight")} == {"q8_0"}
    assert make_mix(reference, mix, tmp_path / "mix") == made  # kept by reference and recipe: not made twice


def test_search_returns_the_lowest_measured_kld_that_fits(smollm2_path: Path, tmp_path: Path) -> None:
    """The search's own contract on real files and real KL divergence, searched on the suite's prompts (as
    `quant --max-bytes` does) and judged on text it never saw: the mix beats the named quant of the budget's size."""
    variants = make_variants(smollm2_path, tmp_path / "v", ["Q3_K_M", "Q4_K_M"], "Q4_1")
    reference = variants[0].path
    assert reference is not None
    calibration = calibration_text(spec_from_gguf(smollm2_path), builtin_suite()[:60])
    kld_of = kld_meter(reference, calibration, 256, None)
    named = {v.name: (v.path, kld_of(v.path)) for v in variants[1:] if v.path is not None}
    budget = named["Q4_K_M"][0].stat().st_size
    log = SearchLog()
    found = search_mix(reference, named, budget, kld_of, tmp_path / "mix", log)
    assert found is not None and found.file_bytes == found.path.stat().st_size <= budget
    assert len(log.tried) >= len(tensor_roles(reference))  # each role measured one step down, then raises
    fitting = [m.kld_mean for m in log.tried if m.file_bytes <= budget] + [k for _, k in named.values()]
    assert found.kld_mean == min(fitting)
    assert all(m.file_bytes == predicted_bytes(named["Q4_K_M"][0], m.mix.overrides) for m in log.tried)
    assert search_mix(reference, named, 10**6, kld_of, tmp_path / "mix") is None  # nothing fits 1 MB
    held_out = kld_meter(reference, default_text(), 512, None)  # the Declaration: never searched on
    assert found.mix.overrides and held_out(found.path) < held_out(named["Q4_K_M"][0]), found.mix.describe()


def test_sizes_and_refusals(smollm2_path: Path) -> None:
    assert parse_bytes("900MiB") == 900 * 2**20 and parse_bytes("4.5GB") == 4_500_000_000
    assert parse_bytes("123") == 123 and parse_bytes("lots") is None and parse_bytes("-5MB") is None
    assert "attn_v" in tensor_roles(smollm2_path) and "attn_norm" not in tensor_roles(smollm2_path)
    assert Mix("Q3_K_M", (("attn_v", "q8_0"),)).describe() == "Q3_K_M attn_v=q8_0"
