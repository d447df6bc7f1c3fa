"""The Hugging Face `tokenizers` path (a model directory with tokenizer.json) against llama.cpp's tokenizer of the
same model: the directory is the embedded model's tokenizer and config as transformers writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfhost.backends.tokenizer import Tokenizer
from selfhost.models.gguf_spec import spec_from_gguf
from selfhost.models.resolve import resolve_model
from tests.cli.test_info_cli import run

TEXTS = [
    "Hello world",
    "  leading spaces and\ttabs\n\nnewlines",
    "naïve café 東京 🙂",
    "<|im_start|>user\nhi<|im_end|>",
    "def f(x):\n    return x**2  # comment",
    "1234567890 3.14159",
]


@pytest.fixture(scope="module")
def hf_dir(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoConfig, AutoTokenizer

    d = tmp_path_factory.mktemp("hf-smollm2")
    AutoTokenizer.from_pretrained(str(smollm2_path.parent), gguf_file=smollm2_path.name).save_pretrained(str(d))
    config = AutoConfig.from_pretrained(str(smollm2_path.parent), gguf_file=smollm2_path.name)
    config.architectures = ["LlamaForCausalLM"]
    config.save_pretrained(str(d))
    return d


@pytest.mark.parametrize("parse_special", [False, True])
def test_hf_tokens_equal_llamacpp_tokens(hf_dir: Path, smollm2_path: Path, parse_special: bool) -> None:
    hf, gguf = Tokenizer(resolve_model(str(hf_dir))), Tokenizer(spec_from_gguf(smollm2_path))
    assert hf._impl[0] == "hf" and gguf._impl[0] == "llama"
    for text in TEXTS:
        assert hf.encode(text, parse_special=parse_special) == gguf.encode(text, parse_special=parse_special), text
    assert hf.decode(hf.encode(TEXTS[2])) == TEXTS[2]


def test_chat_counts_and_cli_agree(hf_dir: Path, smollm2_path: Path) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": TEXTS[2]}]
    hf, gguf = Tokenizer(resolve_model(str(hf_dir))), Tokenizer(spec_from_gguf(smollm2_path))
    assert hf.count_chat(messages) == gguf.count_chat(messages) > 10
    counts = [
        json.loads(run("context", "count", "--model", m, TEXTS[1], "--json").stdout)["tokens"]
        for m in (str(hf_dir), str(smollm2_path))
    ]
    assert counts[0] == counts[1] == 11
