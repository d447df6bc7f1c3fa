"""ModelSpec from real GGUF files: the embedded SmolLM2 and Gemma 3 270M."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfhost.models.gguf_spec import spec_from_gguf, swa_layers_for


def test_smollm2_facts(smollm2_path: Path) -> None:
    s = spec_from_gguf(smollm2_path)
    assert (s.architecture, s.n_layers, s.n_heads, s.n_kv_heads, s.head_dim) == ("llama", 30, 9, 3, 64)
    assert s.context_length == 8192
    assert s.vocab_size == 49152
    assert s.file_type == "Q4_1"
    assert s.tokenizer.bos_token == "<|im_start|>" and s.tokenizer.eos_token == "<|im_end|>"
    assert s.tokenizer.add_bos_token is False
    assert s.chat_template and "<|im_start|>" in s.chat_template
    assert s.n_swa_layers == 0 and not s.is_moe
    # SmolLM2-135M has 134,515,008 parameters (sum of tensor elements, tied embeddings)
    assert s.parameters == 134_515_008


def test_smollm2_tensor_types_and_bytes(smollm2_path: Path) -> None:
    s = spec_from_gguf(smollm2_path)
    assert s.tensor_types == {"F32": 61, "Q4_1": 210, "Q8_0": 1}
    # Block arithmetic by hand: Q4_1 is 20 bytes per 32 weights, Q8_0 34 per 32, F32 4 per weight.
    q8 = [t for t in s.tensors if t.type == "Q8_0"]
    assert [t.name for t in q8] == ["token_embd.weight"]
    assert s.tensor_bytes_by_type["Q8_0"] == 576 * 49152 // 32 * 34
    q41 = sum(t.n_elements for t in s.tensors if t.type == "Q4_1")
    assert s.tensor_bytes_by_type["Q4_1"] == q41 // 32 * 20
    f32 = sum(t.n_elements for t in s.tensors if t.type == "F32")
    assert s.tensor_bytes_by_type["F32"] == f32 * 4
    assert s.weights_bytes == sum(s.tensor_bytes_by_type.values()) < s.file_bytes


def test_gemma3_sliding_window_layers(gemma3_path: Path) -> None:
    s = spec_from_gguf(gemma3_path)
    assert s.architecture == "gemma3"
    assert (s.n_layers, s.n_heads, s.n_kv_heads, s.head_dim) == (18, 4, 1, 256)
    assert s.sliding_window == 512
    # llama.cpp gemma3: every 6th layer (5, 11, 17) is global, the rest use the window.
    assert [i for i, w in enumerate(s.swa_layers) if not w] == [5, 11, 17]
    assert "swa_layers" in s.derived  # the file has no pattern key: say the rule came from llama.cpp
    assert s.tokenizer.add_bos_token is True and s.tokenizer.bos_token == "<bos>"


@pytest.mark.parametrize(("n", "period", "full"), [(6, 2, [1, 3, 5]), (12, 6, [5, 11]), (4, 4, [3])])
def test_swa_pattern_rule(n: int, period: int, full: list[int]) -> None:
    assert [i for i, w in enumerate(swa_layers_for(n, period)) if not w] == full
