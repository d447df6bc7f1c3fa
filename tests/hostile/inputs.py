"""Hostile and damaged input files, made fresh for each test session: what a careless or hostile user feeds
selfhost. Every file is small; GGUFs are tiny llama-shaped models written with the gguf package (the writer
llama.cpp's own converter uses), with one field damaged each."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np

GOOD_CHAT = [{"role": "user", "content": "hi"}]
GOOD_ROW = {"messages": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]}

# Chat templates that try to hang, fill memory or recurse.
HOSTILE_TEMPLATES = {
    "nested_range": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "repeat_huge": "{{ 'a' * 10**10 }}",
    "repeat_list": "{{ ([1] * 100000000)|length }}",
    "power_huge": "{{ 10 ** 100000000 }}",
    "recursive_macro": "{% macro f(x) %}{{ f(x) }}{% endmacro %}{{ f(1) }}",
    "doubling_concat": (
        "{% set ns = namespace(x='a') %}{% for i in range(64) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}"
    ),
    "doubling_plus": (
        "{% set ns = namespace(x='a') %}{% for i in range(64) %}{% set ns.x = ns.x + ns.x %}{% endfor %}{{ ns.x }}"
    ),
    "center_huge": "{{ 'x'.center(10**9) }}",
    "center_filter": "{{ 'x'|center(10**9) }}",
    "format_width": "{{ '%0999999999d'|format(1) }}",
    "output_flood": (
        "{% for i in range(1000) %}{% for j in range(1000) %}{{ 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' }}"
        "{% endfor %}{% endfor %}"
    ),
    "range_too_big": "{% for i in range(10**9) %}{% endfor %}",
    "percent_width": "{{ '%0999999999d' % 1 }}",
    "str_format_width": "{{ '{:>999999999}'.format(1) }}",
    "loop_over_messages": (
        "{% for a in messages * 1000 %}{% for b in messages * 1000 %}{% for c in messages * 1000 %}"
        "{% endfor %}{% endfor %}{% endfor %}"
    ),
    "dunder_escape": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "namespace_underscore": "{% set ns = namespace(_x=1) %}{{ ns._x }}",
    "unparsable": "{% for %}",
    "deep_nesting": "{% if 1 %}" * 3000 + "x" + "{% endif %}" * 3000,
    "raises": "{{ raise_exception('no system role') }}",
}


def _gguf(path: Path, **override: object) -> Path:
    """A tiny llama model (2 layers, 8-wide, 32 tokens); `override` replaces metadata fields (None drops one)."""
    fields: dict[str, object] = {
        "block_count": 2,
        "embedding_length": 8,
        "attention.head_count": 2,
        "attention.head_count_kv": 1,
        "context_length": 256,
        "rope.freq_base": 10000.0,
        "feed_forward_length": 16,
    }
    fields.update(override)
    w = gguf.GGUFWriter(path, "llama")
    adders = {
        "block_count": (w.add_block_count, gguf.GGUFValueType.UINT32),
        "embedding_length": (w.add_embedding_length, gguf.GGUFValueType.UINT32),
        "attention.head_count": (w.add_head_count, gguf.GGUFValueType.UINT32),
        "attention.head_count_kv": (w.add_head_count_kv, gguf.GGUFValueType.UINT32),
        "context_length": (w.add_context_length, gguf.GGUFValueType.UINT32),
        "rope.freq_base": (w.add_rope_freq_base, gguf.GGUFValueType.FLOAT32),
        "feed_forward_length": (w.add_feed_forward_length, gguf.GGUFValueType.UINT32),
    }
    for name, value in fields.items():
        if value is None:
            continue
        adder, vtype = adders[name]
        if isinstance(value, int) and value < 0:
            w.add_key_value(f"llama.{name}", value, gguf.GGUFValueType.INT32)
        elif isinstance(value, int) and vtype == gguf.GGUFValueType.UINT32:
            adder(value)
        else:
            w.add_key_value(f"llama.{name}", float(value), gguf.GGUFValueType.FLOAT32)
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"t{i}" for i in range(32)])
    w.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    w.add_tensor("token_embd.weight", np.zeros((32, 8), dtype=np.float32))
    for i in range(2):
        w.add_tensor(f"blk.{i}.attn_q.weight", np.zeros((8, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _hf(folder: Path, **override: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cfg: dict[str, object] = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
        "vocab_size": 100,
        "rope_theta": 10000.0,
    }
    cfg.update(override)
    text = json.dumps({k: v for k, v in cfg.items() if v is not None}, allow_nan=True)
    (folder / "config.json").write_text(text, encoding="utf-8")
    return folder


def make_inputs(d: Path) -> dict[str, Path]:
    """name -> path of every hostile input, written under d."""
    files: dict[str, Path] = {}

    def put(name: str, data: bytes | str) -> Path:
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        files[name] = p
        return p

    # plain text
    put("text.txt", "The cat sat on the mat. It was warm. The dog slept.\n")
    put("crlf.txt", "line one\r\nline two\r\n")
    put("latin1.txt", "caf\xe9 cr\xe8me\n".encode("latin-1"))
    put("binary.bin", bytes(range(256)) * 8)
    put("empty.txt", b"")
    put("nul.txt", b"abc\x00def\n")
    put("bom.txt", "\ufeffhello\n")
    # JSON
    put("chat.json", json.dumps(GOOD_CHAT))
    put("chat_latin1.json", json.dumps([{"role": "user", "content": "x"}]).encode() + b"\xff")
    put("deep.json", "[" * 100_000 + "]" * 100_000)
    put("deep_obj.json", '{"a":' * 50_000 + "1" + "}" * 50_000)
    put("nan.json", '[{"role": "user", "content": NaN}]')
    put("bad.json", '[{"role": "user", "content": "x"')
    put("object.json", '{"role": "user"}')
    put("list_of_numbers.json", "[1, 2, 3]")
    put("huge_number.json", "[" + "9" * 5000 + "]")
    put("string.json", '"just a string"')
    put("tools_bad.json", '{"not": "a list"}')
    # datasets
    row = json.dumps(GOOD_ROW)
    put("data.jsonl", "\n".join([row] * 3 + [json.dumps({"messages": [{"role": "user", "content": "b"}]})]) + "\n")
    put("data_crlf.jsonl", "\r\n".join([row, row]) + "\r\n")
    put("data_latin1.jsonl", row.encode() + b"\n" + '{"text": "caf\xe9"}'.encode("latin-1") + b"\n")
    put("data_deep.jsonl", "[" * 100_000 + "\n")
    put("data_garbage.jsonl", "not json at all\n{}\n[1,2]\n" + row + "\n")
    put("data_empty.jsonl", "")
    put("data_blank_lines.jsonl", "\n\n\n")
    put("data_nan.jsonl", '{"messages": [{"role": "user", "content": NaN}]}\n')
    put("data.json", json.dumps([GOOD_ROW, GOOD_ROW]))
    put("data_dict.json", json.dumps({"rows": [GOOD_ROW]}))
    put("data_deep.json", "[" * 100_000 + "]" * 100_000)
    put("ragged.csv", "prompt,response\na,b\nc,d,e,f\n")
    put("good.csv", "prompt,response\nWhat is 2+2?,4\nWhat is 3+3?,6\n")
    put("quote.csv", 'prompt,response\n"unterminated,b\n')
    put("latin1.csv", "prompt,response\ncaf\xe9,b\n".encode("latin-1"))
    put("fake.parquet", "this is text, not parquet\n")
    put("PAR1.parquet", b"PAR1" + b"\x00" * 64)
    put("data.txt", "plain text is not a dataset format\n")
    # prompts and traces for bench
    put("prompts.jsonl", '{"prompt": "hello"}\n')
    put("prompts_bad.jsonl", '{"prompt": "hello"}\n{"nope": 1}\n')
    put("prompts_maxtok.jsonl", '{"prompt": "hello", "max_tokens": -5}\n')
    put("prompts_latin1.jsonl", '{"prompt": "caf\xe9"}\n'.encode("latin-1"))
    put("prompts_deep.jsonl", "[" * 100_000 + "\n")
    put("prompts_list.jsonl", "[1, 2]\n")
    put(
        "trace_far.jsonl",
        '{"timestamp": 0, "input_length": 8, "output_length": 4}\n'
        '{"timestamp": 1e15, "input_length": 8, "output_length": 4}\n',
    )
    put("trace_negative.jsonl", '{"timestamp": -5, "input_length": 8, "output_length": 4}\n')
    put("trace_nan.jsonl", '{"timestamp": NaN, "input_length": 8, "output_length": 4}\n')
    put("trace_huge_input.jsonl", '{"timestamp": 0, "input_length": 1000000000000, "output_length": 4}\n')
    put("trace_zero_output.jsonl", '{"timestamp": 0, "input_length": 8, "output_length": 0}\n')
    put("trace_bad_hash.jsonl", '{"timestamp": 0, "input_length": 8, "output_length": 4, "hash_ids": ["x"]}\n')
    put("trace_string_ts.jsonl", '{"timestamp": "soon", "input_length": 8, "output_length": 4}\n')
    put("trace_ok.jsonl", '{"timestamp": 0, "input_length": 8, "output_length": 4}\n')
    put("bench_list.json", "[1, 2]")
    put("bench_partial.json", '{"ttft_s": "fast"}')
    put("bench_nan.json", '{"output_tokens_per_s": NaN}')
    # quant suites
    case = {"id": "a", "prompt": "hi", "checks": [{"type": "json"}]}
    put("suite_ok.jsonl", json.dumps(case) + "\n")
    put("suite_bad_schema.jsonl", json.dumps({**case, "checks": [{"type": "json_schema", "schema": {"type": 5}}]}))
    put("suite_minmax.jsonl", json.dumps({**case, "checks": [{"type": "word_count", "min": 10, "max": 1}]}))
    put("suite_number_abc.jsonl", json.dumps({**case, "checks": [{"type": "number", "value": "abc"}]}))
    put("suite_regex.jsonl", json.dumps({**case, "checks": [{"type": "regex", "pattern": "("}]}))
    put("suite_unknown.jsonl", json.dumps({**case, "checks": [{"type": "telepathy"}]}))
    put("suite_no_checks.jsonl", json.dumps({"id": "a", "prompt": "hi"}))
    put("suite_maxtok.jsonl", json.dumps({**case, "max_tokens": "lots"}))
    put("suite_dup.jsonl", json.dumps(case) + "\n" + json.dumps(case) + "\n")
    put("suite_latin1.jsonl", '{"prompt": "caf\xe9"}\n'.encode("latin-1"))
    put("suite_deep.jsonl", "[" * 100_000 + "\n")
    put("suite_bad.yaml", "- id: a\n  prompt: [unclosed\n")
    put("suite_scalar.yaml", "just a string\n")
    put("suite_empty.jsonl", "")
    # chat templates
    for name, body in HOSTILE_TEMPLATES.items():
        put(f"tpl_{name}.jinja", body)
    put("tpl_ok.jinja", "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}")
    put("tpl_latin1.jinja", "{{ 'caf\xe9' }}".encode("latin-1"))
    put("tpl_huge.jinja", "x" * (2 << 20))
    # logs
    put("log_garbage.txt", bytes(range(256)) * 4)
    # models: damaged GGUFs
    models = d / "models"
    models.mkdir(exist_ok=True)
    for name, override in {
        "ok": {},
        "layers0": {"block_count": 0},
        "layers_max": {"block_count": 0xFFFFFFFF},
        "layers_negative": {"block_count": -3},
        "heads0": {"attention.head_count": 0},
        "kv_gt_heads": {"attention.head_count_kv": 4},
        "kv_not_divisor": {"attention.head_count": 3, "attention.head_count_kv": 2},
        "ctx0": {"context_length": 0},
        "hidden_odd": {"embedding_length": 7},
        "rope_nan": {"rope.freq_base": float("nan")},
        "rope_negative": {"rope.freq_base": -1.0},
        "no_layers_key": {"block_count": None},
        "blocks_mismatch": {"block_count": 5},
    }.items():
        files[f"gguf_{name}"] = _gguf(models / f"{name}.gguf", **override)
    raw = files["gguf_ok"].read_bytes()
    files["gguf_truncated"] = put("models/truncated.gguf", raw[: len(raw) // 3])
    files["gguf_magic_only"] = put("models/magic.gguf", b"GGUF")
    files["gguf_text"] = put("models/text.gguf", "not a model\n")
    # models: damaged HF configs
    for name, override in {
        "ok": {},
        "heads0": {"num_attention_heads": 0},
        "layers_negative": {"num_hidden_layers": -2},
        "layers_huge": {"num_hidden_layers": 4_000_000_000},
        "kv_gt_heads": {"num_key_value_heads": 8},
        "hidden_odd": {"hidden_size": 66},
        "ctx0": {"max_position_embeddings": 0},
        "vocab0": {"vocab_size": 0},
        "rope_nan": {"rope_theta": float("nan")},
        "layers_string": {"num_hidden_layers": "many"},
        "layers_float": {"num_hidden_layers": 2.5},
        "heads_list": {"num_attention_heads": [1, 2]},
        "no_hidden": {"hidden_size": None},
    }.items():
        files[f"hf_{name}"] = _hf(models / f"hf_{name}", **override)
    hf_bad = models / "hf_badjson"
    hf_bad.mkdir(exist_ok=True)
    (hf_bad / "config.json").write_text("{not json", encoding="utf-8")
    files["hf_badjson"] = hf_bad
    hf_latin = models / "hf_latin1"
    hf_latin.mkdir(exist_ok=True)
    (hf_latin / "config.json").write_bytes(b'{"model_type": "caf\xe9"}')
    files["hf_latin1"] = hf_latin
    hf_list = models / "hf_list"
    hf_list.mkdir(exist_ok=True)
    (hf_list / "config.json").write_text("[1, 2]", encoding="utf-8")
    files["hf_list"] = hf_list
    # a model whose own chat template is hostile
    w = gguf.GGUFWriter(models / "hostile_template.gguf", "llama")
    w.add_block_count(2)
    w.add_embedding_length(8)
    w.add_head_count(2)
    w.add_context_length(256)
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"t{i}" for i in range(32)])
    w.add_chat_template(HOSTILE_TEMPLATES["nested_range"])
    w.add_tensor("token_embd.weight", np.zeros((32, 8), dtype=np.float32))
    for i in range(2):
        w.add_tensor(f"blk.{i}.attn_q.weight", np.zeros((8, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    files["gguf_hostile_template"] = models / "hostile_template.gguf"
    return files
