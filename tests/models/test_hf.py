"""ModelSpec from a Hugging Face model directory built on disk: config.json, real safetensors, tokenizer files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from selfhost.errors import CorruptModelError, UnsupportedModelError
from selfhost.models.hf import read_safetensors_header, spec_from_hf_dir
from selfhost.models.resolve import resolve_model

CONFIG = {
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "vocab_size": 100,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
}


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """The safetensors layout: u64 header length, JSON header, then the raw little-endian data."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name, arr in tensors.items():
        raw = arr.astype("<f2").tobytes()
        header[name] = {"dtype": "F16", "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def llama_tensors(c: dict[str, int]) -> dict[str, np.ndarray]:
    h, i, hd = c["hidden_size"], c["intermediate_size"], c["hidden_size"] // c["num_attention_heads"]
    kv = c["num_key_value_heads"] * hd
    t = {"model.embed_tokens.weight": np.zeros((c["vocab_size"], h)), "model.norm.weight": np.zeros(h)}
    for layer in range(c["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        t |= {
            p + "self_attn.q_proj.weight": np.zeros((h, h)),
            p + "self_attn.k_proj.weight": np.zeros((kv, h)),
            p + "self_attn.v_proj.weight": np.zeros((kv, h)),
            p + "self_attn.o_proj.weight": np.zeros((h, h)),
            p + "mlp.gate_proj.weight": np.zeros((i, h)),
            p + "mlp.up_proj.weight": np.zeros((i, h)),
            p + "mlp.down_proj.weight": np.zeros((h, i)),
            p + "input_layernorm.weight": np.zeros(h),
            p + "post_attention_layernorm.weight": np.zeros(h),
        }
    return t


@pytest.fixture
def hf_dir(tmp_path: Path) -> Path:
    d = tmp_path / "tiny-llama"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(CONFIG))
    write_safetensors(d / "model.safetensors", llama_tensors(CONFIG))
    (d / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "bos_token": {"content": "<s>", "lstrip": False},
                "eos_token": "</s>",
                "add_bos_token": True,
                "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}",
            }
        )
    )
    return d


def test_hf_dir_facts_and_exact_bytes(hf_dir: Path) -> None:
    s = resolve_model(str(hf_dir))
    assert s.source == "hf" and s.architecture == "llama"
    assert (s.n_layers, s.n_heads, s.n_kv_heads, s.head_dim) == (2, 4, 2, 16)
    assert s.tensor_types == {"F16": 2 + 2 * 9}
    n_elements = sum(a.size for a in llama_tensors(CONFIG).values())
    assert s.parameters == n_elements
    assert s.weights_bytes == 2 * n_elements  # F16
    assert s.tokenizer.bos_token == "<s>" and s.tokenizer.eos_token == "</s>" and s.tokenizer.add_bos_token
    assert s.chat_template and "messages" in s.chat_template
    assert "parameters" not in s.derived  # counted from the tensors, not estimated


def test_parameter_formula_matches_real_tensor_count(hf_dir: Path) -> None:
    """Without weights, the config formula must give the same count the tensors give."""
    (hf_dir / "model.safetensors").unlink()
    s = spec_from_hf_dir(hf_dir)
    assert s.parameters == sum(a.size for a in llama_tensors(CONFIG).values())
    assert "estimated" in s.derived["parameters"]


def test_chat_template_jinja_file_wins(hf_dir: Path) -> None:
    (hf_dir / "chat_template.jinja").write_text("{{ messages[0]['content'] }}!")
    assert spec_from_hf_dir(hf_dir).chat_template == "{{ messages[0]['content'] }}!"


def test_truncated_safetensors(hf_dir: Path) -> None:
    f = hf_dir / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(CorruptModelError, match="truncated"):
        read_safetensors_header(f)


def test_bad_config_json_names_the_line(hf_dir: Path) -> None:
    (hf_dir / "config.json").write_text('{\n  "hidden_size": 64,\n  oops\n}')
    with pytest.raises(CorruptModelError, match="line 3"):
        spec_from_hf_dir(hf_dir)


def test_config_without_attention_facts(hf_dir: Path) -> None:
    (hf_dir / "config.json").write_text(json.dumps({"model_type": "bert_like", "hidden_size": 8}))
    with pytest.raises(UnsupportedModelError, match="num_hidden_layers"):
        spec_from_hf_dir(hf_dir)


def test_multimodal_text_config_and_layer_types(tmp_path: Path) -> None:
    cfg = {
        "model_type": "gemma3",
        "text_config": CONFIG
        | {"model_type": "gemma3_text", "sliding_window": 512, "layer_types": ["sliding_attention", "full_attention"]},
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    s = spec_from_hf_dir(tmp_path)
    assert s.architecture == "gemma3"
    assert s.swa_layers == (True, False) and s.sliding_window == 512
