"""The architecture zoo: every entry builds at the small width, converts with llama.cpp's converter and loads in
llama.cpp with the expected architecture; builds are keyed by what shapes them; published configs copy their
models' widths."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("sentencepiece")

from selfhost.errors import BackendError  # noqa: E402
from selfhost.fit import zoo  # noqa: E402
from selfhost.models.gguf_file import read_gguf  # noqa: E402
from tests.fit.conftest import zoo_tokenizers_available  # noqa: E402

ARCHS = zoo.architectures()
NAMES = [a.name for a in ARCHS]

# Key widths of each copied model, from its published config.json: (hidden, attention heads, KV heads).
PUBLISHED = {
    "meta-llama/Llama-3.2-1B": (2048, 32, 8),
    "meta-llama/Llama-3.1-8B": (4096, 32, 8),
    "meta-llama/Llama-2-7b-hf": (4096, 32, 32),
    "mistralai/Mistral-7B-v0.1": (4096, 32, 8),
    "mistralai/Mixtral-8x7B-v0.1": (4096, 32, 8),
    "Qwen/Qwen2.5-7B-Instruct": (3584, 28, 4),
    "Qwen/Qwen3-8B": (4096, 32, 8),
    "Qwen/Qwen3-30B-A3B": (2048, 32, 4),
    "microsoft/Phi-3-mini-4k-instruct": (3072, 32, 32),
    "google/gemma-2-2b-it": (2304, 8, 4),
    "google/gemma-3-1b-it": (1152, 4, 1),
    "deepseek-ai/DeepSeek-V2-Lite": (2048, 16, 16),
    "allenai/OLMoE-1B-7B-0924": (2048, 16, 16),
    "openai/gpt-oss-20b": (2880, 64, 8),
    "LiquidAI/LFM2-1.2B": (2048, 32, 8),
    "ibm-granite/granite-4.0-h-tiny": (1536, 12, 4),
    "state-spaces/mamba-130m-hf": (768, None, None),
    "HuggingFaceTB/SmolVLM-256M-Instruct": (576, 9, 3),
    "google/gemma-3-4b-it": (2560, 8, 4),
}
REQUIRED_ARCHS = {"llama", "qwen2", "qwen3", "qwen3moe", "phi3", "gemma2", "gemma3", "deepseek2", "gpt-oss", "mamba"}
_EXPERT_KEYS = ("num_experts", "num_local_experts", "n_routed_experts")


needs_tokenizers = pytest.mark.skipif(
    not zoo_tokenizers_available(), reason="the embedded models (SmolLM2, Gemma 3 270M) lend the tokenizers"
)


@pytest.fixture(scope="module")
def out_dir(zoo_dir: Path) -> Path:
    return zoo_dir


@pytest.fixture(scope="module")
def built(zoo_small: dict[str, zoo.ZooModel | BackendError]) -> dict[str, zoo.ZooModel | BackendError]:
    return zoo_small


def _model(built: dict[str, zoo.ZooModel | BackendError], name: str) -> zoo.ZooModel:
    got = built[name]
    if isinstance(got, BackendError):
        pytest.fail(str(got))
    return got


# --- the JSON -----------------------------------------------------------------------------------------------------


def test_entries_are_complete() -> None:
    assert len(NAMES) == len(set(NAMES)) >= 14
    assert REQUIRED_ARCHS <= {a.llama_cpp_arch for a in ARCHS}
    assert any(a.is_vision and a.mmproj_arch == "clip" for a in ARCHS)
    for a in ARCHS:
        assert a.url == f"https://huggingface.co/{a.copies}", a.name
        assert a.tokenizer in ("bpe", "spm"), a.name
        assert a.supported_by_llama_cpp or a.reason, f"{a.name}: unsupported needs a reason"
        assert a.text_config()["num_hidden_layers"] > a.layers, a.name


@pytest.mark.parametrize("name", NAMES)
def test_published_config_copies_the_model(name: str) -> None:
    a = zoo.architecture(name)
    hidden, heads, kv = PUBLISHED[a.copies]
    text = a.text_config(zoo.model_config(a, "published"))
    assert text["hidden_size"] == hidden
    assert text.get("num_attention_heads") == heads
    assert text.get("num_key_value_heads") == kv
    # Few layers: 2-4, more only where llama.cpp's fixed layer pattern needs them to include every kind (Gemma 3: 6).
    assert 2 <= a.layers <= (6 if a.llama_cpp_arch == "gemma3" else 4)
    assert text["num_hidden_layers"] == a.layers
    for k, v in text.items():  # per-layer lists are cut to the kept layers
        if k.endswith("layer_types"):
            assert len(v) == a.layers, k


@pytest.mark.parametrize("name", NAMES)
def test_small_keeps_the_structure(name: str) -> None:
    a = zoo.architecture(name)
    pub, small = (a.text_config(zoo.model_config(a, w)) for w in ("published", "small"))
    assert small["hidden_size"] < pub["hidden_size"]
    if pub.get("num_key_value_heads"):  # the GQA ratio
        assert (
            small["num_attention_heads"] * pub["num_key_value_heads"]
            == pub["num_attention_heads"] * small["num_key_value_heads"]
        )
    for k in (*_EXPERT_KEYS, "kv_lora_rank", "sliding_window", "layer_types", "full_attn_idxs", "num_hidden_layers"):
        assert (k in pub) == (k in small), k
        if k in _EXPERT_KEYS and k in pub:
            assert small[k] > small.get("num_experts_per_tok", 1) >= 1
    for k in ("sliding_window", "layer_types", "full_attn_idxs", "num_hidden_layers"):
        assert pub.get(k) == small.get(k), k


# --- keys -----------------------------------------------------------------------------------------------------------


@needs_tokenizers
def test_key_changes_with_what_shapes_the_file() -> None:
    a = zoo.architecture("llama-1b")
    key = zoo.build_key(a, "small")
    assert key == zoo.build_key(a, "small")
    changed = dataclasses.replace(a, config=a.config | {"rms_norm_eps": 1e-6})
    others = {
        zoo.build_key(a, "published"),
        zoo.build_key(a, "small", outtype="bf16"),
        zoo.build_key(a, "small", quant="Q4_K_M"),
        zoo.build_key(dataclasses.replace(a, layers=3), "small"),
        zoo.build_key(changed, "small"),
        zoo.build_key(dataclasses.replace(a, small=a.small | {"intermediate_size": 768}), "small"),
    }
    assert key not in others and len(others) == 6


def test_unknown_names_are_refused() -> None:
    from selfhost.errors import UsageError

    with pytest.raises(UsageError, match="no zoo architecture"):
        zoo.architecture("nope")
    with pytest.raises(UsageError):
        zoo.model_config(ARCHS[0], "medium")  # type: ignore[arg-type]


# --- builds -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_small_build_converts_and_loads_in_llama_cpp(built: dict[str, zoo.ZooModel | BackendError], name: str) -> None:
    import llama_cpp

    a = zoo.architecture(name)
    m = _model(built, name)
    assert m.path.is_file() and m.path.name.endswith(f"-{m.key}.gguf") and not m.reused
    g = read_gguf(m.path)
    arch = g.get("general.architecture")
    assert arch == a.llama_cpp_arch
    text = a.text_config(zoo.model_config(a, "small"))
    assert g.get(f"{arch}.block_count") == a.layers
    assert g.get(f"{arch}.embedding_length") == text["hidden_size"]
    if not a.supported_by_llama_cpp:
        with pytest.raises(ValueError):
            llama_cpp.Llama(model_path=str(m.path), n_ctx=256, verbose=False)
        return
    llm = llama_cpp.Llama(model_path=str(m.path), n_ctx=256, n_threads=1, verbose=False)
    try:
        assert llm.n_vocab() == text["vocab_size"]
        llm.eval(llm.tokenize(b"Hello world")[:4])  # the graph runs, not only loads
    finally:
        llm.close()
    if a.is_vision:
        assert m.mmproj is not None and m.mmproj.is_file()
        p = read_gguf(m.mmproj)
        assert p.get("general.architecture") == a.mmproj_arch
        assert p.get("clip.vision.block_count") == a.vision_layers


def test_vision_projector_loads_in_llama_cpp(built: dict[str, zoo.ZooModel | BackendError]) -> None:
    import llama_cpp
    from llama_cpp import mtmd_cpp

    vision = [a for a in ARCHS if a.is_vision and a.supported_by_llama_cpp]
    for a in vision:
        m = _model(built, a.name)
        assert m.mmproj is not None
        llm = llama_cpp.Llama(model_path=str(m.path), n_ctx=256, n_threads=1, verbose=False)
        try:
            params = mtmd_cpp.mtmd_context_params_default()
            params.use_gpu = False
            params.print_timings = False
            params.n_threads = 1
            ctx = mtmd_cpp.mtmd_init_from_file(str(m.mmproj).encode(), llm._model.model, params)
            assert ctx, f"{a.name}: llama.cpp could not load {m.mmproj.name}"
            assert mtmd_cpp.mtmd_support_vision(ctx)
            mtmd_cpp.mtmd_free(ctx)
        finally:
            llm.close()


def test_gpt_oss_experts_are_mxfp4(built: dict[str, zoo.ZooModel | BackendError]) -> None:
    for a in ARCHS:
        if not a.mxfp4_experts:
            continue
        g = read_gguf(_model(built, a.name).path)
        experts = {t.type for t in g.tensors if "_exps.weight" in t.name}
        others = {t.type for t in g.tensors if t.name.endswith("attn_q.weight")}
        assert experts == {"MXFP4"} and others == {"F16"}, a.name


def test_quantize_keeps_mxfp4_experts(built: dict[str, zoo.ZooModel | BackendError], tmp_path: Path) -> None:
    for a in ARCHS:
        if a.mxfp4_experts:
            q = tmp_path / f"{a.name}-q4km.gguf"
            zoo._quantize(_model(built, a.name).path, q, "Q4_K_M", keep_mxfp4_experts=True)
            types = {t.name.rpartition(".")[0].split(".")[-1]: t.type for t in read_gguf(q).tensors}
            assert types["ffn_down_exps"] == "MXFP4" and types["attn_output"] not in ("F16", "MXFP4")


def test_rebuild_reuses_only_the_identical_build(
    built: dict[str, zoo.ZooModel | BackendError], out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _model(built, "llama-1b")
    again = zoo.build("llama-1b", "small", out_dir)
    assert again.reused and again.path == first.path and again.seconds == 0.0
    # A changed config is a new build: a new file, never the old one.
    entries = tuple(
        dataclasses.replace(a, small=a.small | {"intermediate_size": 768}) if a.name == "llama-1b" else a for a in ARCHS
    )
    monkeypatch.setattr(zoo, "_entries", lambda: entries)
    changed = zoo.build("llama-1b", "small", out_dir, quant="Q4_K_M")
    assert not changed.reused and changed.path != first.path and changed.key != first.key
    g = read_gguf(changed.path)
    assert g.get("llama.feed_forward_length") == 768
    assert {t.type for t in g.tensors if t.name == "blk.0.ffn_up.weight"} == {"Q4_K"}
    assert not list(out_dir.glob(".zoo-*"))  # the staging directories are gone
