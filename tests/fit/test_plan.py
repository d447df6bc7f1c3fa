"""Memory plans on catalog models, checked against published numbers and hand arithmetic."""

from __future__ import annotations

import pytest

from selfhost.errors import UsageError
from selfhost.fit.kv import LlamaCppKVConfig, kv_bytes_per_token, llamacpp_kv
from selfhost.fit.plan import FitRequest, plan
from selfhost.fit.solve import fit_answer, max_context
from selfhost.hardware.catalog import find_device
from selfhost.hardware.select import host_device
from selfhost.models.catalog import spec_from_catalog
from selfhost.models.spec import ModelSpec

GIB = 1024**3
# `selfhost fit --json` fields DESIGN.md §2 promises.
FIT_CONTRACT = (
    "weights_bytes",
    "kv_cache_bytes",
    "compute_bytes",
    "overhead_bytes",
    "total_bytes",
    "fits",
    "per_device",
    "max_context",
    "launch",
    "decode_tokens_per_s_upper_bound",
)


def test_llama_3_1_8b_kv_at_8192_is_one_gib() -> None:
    spec = spec_from_catalog("llama-3.1-8b")
    assert llamacpp_kv(spec, LlamaCppKVConfig(8192)).bytes == 1 * GIB
    # 32 layers × 2 (K and V) × 8 KV heads × 128 dims × 2 bytes
    assert kv_bytes_per_token(spec) == 32 * 2 * 8 * 128 * 2 == 131072


def test_q8_0_kv_is_8_5_sixteenths_of_f16() -> None:
    spec = spec_from_catalog("llama-3.1-8b")
    f16 = llamacpp_kv(spec, LlamaCppKVConfig(8192)).bytes
    q8 = llamacpp_kv(spec, LlamaCppKVConfig(8192, type_k="q8_0", type_v="q8_0")).bytes
    q4 = llamacpp_kv(spec, LlamaCppKVConfig(8192, type_k="q4_0", type_v="q4_0")).bytes
    assert q8 * 16 == f16 * 8.5 and q4 * 16 == f16 * 4.5


def test_public_llama_server_capture() -> None:
    """36 layers, 8 KV heads, head_dim 128, -c 8192 → f16 1152.00 MiB, q8_0 612.00 MiB (research notes)."""
    spec = ModelSpec(
        name="capture",
        source="test",
        architecture="llama",
        parameters=0,
        n_layers=36,
        n_heads=32,
        n_kv_heads=8,
        head_dim=128,
        context_length=32768,
        vocab_size=1000,
        hidden_size=4096,
    )
    assert llamacpp_kv(spec, LlamaCppKVConfig(8192)).bytes == 1152 * 1024**2
    assert llamacpp_kv(spec, LlamaCppKVConfig(8192, type_k="q8_0", type_v="q8_0")).bytes == 612 * 1024**2


def test_deepseek_v3_mla_kv_per_token() -> None:
    spec = spec_from_catalog("deepseek-v3")
    # MLA caches the latent (kv_lora_rank 512) and the rope key (64) per layer, nothing for V.
    assert kv_bytes_per_token(spec) == 61 * (512 + 64) * 2


def test_sliding_window_layers_stop_growing() -> None:
    spec = spec_from_catalog("gemma-3-27b")
    full_only = sum(not s for s in spec.swa_layers) * 2 * 16 * 128 * 2
    at_128k = kv_bytes_per_token(spec, context=131072) * 131072
    swa_cap = spec.n_swa_layers * 2 * 16 * 128 * 2 * 1024
    assert at_128k == pytest.approx(full_only * 131072 + swa_cap)


def test_moe_counts_every_expert_as_resident() -> None:
    spec = spec_from_catalog("mixtral-8x7b")
    p = plan(spec, FitRequest(quant="Q4_K_M", n_ctx=4096, gpus=(find_device("A100 80GB"),)))
    # 46.7B parameters (all experts), not the 12.9B active ones
    assert p.weights_bytes == pytest.approx(46.7e9 * 4.8944 / 8, rel=0.01)


def test_estimated_weights_match_llama_cpp_readme() -> None:
    """Llama-3.1-8B Q4_K_M is 4.58 GiB in llama.cpp's quantize README; the estimate uses its bpw."""
    p = plan(spec_from_catalog("llama-3.1-8b"), FitRequest(quant="Q4_K_M", n_ctx=4096))
    assert p.weights_bytes / GIB == pytest.approx(4.58, abs=0.02)
    assert not p.weights.exact and "README" in p.weights.source


def test_offload_split_when_the_gpu_is_too_small() -> None:
    spec = spec_from_catalog("llama-3.1-70b")
    req = FitRequest(quant="Q4_K_M", n_ctx=8192, gpus=(find_device("RTX 4090"),), host=None)
    p = plan(spec, req)
    assert 0 < (p.n_gpu_layers or 0) < spec.n_layers
    gpu = p.per_device[0]
    assert gpu.fits and gpu.margin_bytes < 2 * GIB  # packed as full as it goes
    more = plan(spec, FitRequest(quant="Q4_K_M", n_ctx=8192, gpus=(find_device("RTX 4090"),) * 2))
    assert (more.n_gpu_layers or 0) > (p.n_gpu_layers or 0)
    assert len(more.per_device) == 2


def test_ollama_multiplies_context_by_parallel() -> None:
    spec = spec_from_catalog("llama-3.1-8b")
    one = plan(spec, FitRequest(quant="Q4_K_M", n_ctx=8192, parallel=1, engine="ollama"))
    four = plan(spec, FitRequest(quant="Q4_K_M", n_ctx=8192, parallel=4, engine="ollama"))
    assert four.kv_cache_bytes == 4 * one.kv_cache_bytes == 4 * GIB


def test_vllm_budget_and_tensor_parallel() -> None:
    spec = spec_from_catalog("llama-3.1-70b")
    h100 = find_device("H100")
    one = plan(spec, FitRequest(n_ctx=8192, engine="vllm", gpus=(h100,)))
    assert not one.fits  # 141 GB of BF16 weights on one 80 GB card
    four = plan(spec, FitRequest(n_ctx=8192, engine="vllm", gpus=(h100,) * 4))
    assert four.fits and four.kv_capacity_tokens and four.kv_capacity_tokens > 8192
    for d in four.per_device:
        assert d.capacity_bytes == int(h100.memory_bytes * 0.9)
        assert d.components["weights"] == four.weights_bytes // 4


def test_llm_d_receipt_70b_fp8_tp2() -> None:
    """llm-d measured Llama-3.3-70B-FP8 at TP2 on H100s (util 0.9): 32.0 GiB of KV per GPU."""
    spec = spec_from_catalog("llama-3.1-70b")  # same architecture as Llama 3.3 70B
    p = plan(spec, FitRequest(quant="FP8", n_ctx=16000, engine="vllm", gpus=(find_device("H100"),) * 2))
    per_gpu_kv = (p.kv_capacity_tokens or 0) * p.detail["kv_bytes_per_token_per_rank"]
    assert per_gpu_kv / GIB == pytest.approx(32.0, rel=0.05)


def test_llm_d_receipt_llama_8b_on_h100() -> None:
    """llm-d measured 51.38 GiB of KV for Llama-3.1-8B on an H100 at utilization 0.9 (research notes, (c)1).
    Our plan, from architecture and the assumed activation/graph terms, is within 5 % of it."""
    spec = spec_from_catalog("llama-3.1-8b")
    p = plan(spec, FitRequest(n_ctx=16000, engine="vllm", gpus=(find_device("H100"),)))
    kv_budget = (p.kv_capacity_tokens or 0) * kv_bytes_per_token(spec)
    assert kv_budget / GIB == pytest.approx(51.38, rel=0.05)


def test_max_context_is_the_largest_that_fits() -> None:
    spec = spec_from_catalog("qwen2.5-7b")
    req = FitRequest(quant="Q4_K_M", n_ctx=4096, gpus=(find_device("RTX 3060 12GB"),))
    best = max_context(spec, req, "Q4_K_M")
    assert 0 < best <= spec.context_length
    from dataclasses import replace

    full = spec.n_layers + 1
    assert plan(spec, replace(req, n_ctx=best, n_gpu_layers=full)).fits
    if best < spec.context_length:
        assert not plan(spec, replace(req, n_ctx=best + 256, n_gpu_layers=full)).fits


def test_answer_contract_and_recommendation() -> None:
    a = fit_answer(spec_from_catalog("llama-3.1-8b"), FitRequest(n_ctx=8192, gpus=(find_device("RTX 4090"),)))
    for key in FIT_CONTRACT:
        assert key in a
    assert a["recommended"]["quant"] in a["max_context"]
    assert a["max_context"][a["recommended"]["quant"]] >= 8192
    assert set(a["launch"]) == {"llama.cpp", "ollama", "vllm"}
    # 1008 GB/s ÷ (weights + 1 GiB of KV at 8192) for the default Q4_K_M plan
    per_token = a["weights_bytes"] + GIB
    assert a["decode_tokens_per_s_upper_bound"] == pytest.approx(1008e9 / per_token, rel=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_ctx": 200_000}, "above llama-3.1-8b's limit"),
        ({"parallel": 0}, "at least 1"),
        ({"n_ctx": 100, "parallel": 300}, "cannot share"),
        ({"kv_type": "q3_weird"}, "unknown KV cache type"),
        ({"engine": "tgi-magic"}, "unknown engine"),
        ({"engine": "vllm"}, "needs at least one GPU"),
    ],
)
def test_bad_requests(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        plan(spec_from_catalog("llama-3.1-8b"), FitRequest(**kwargs))  # type: ignore[arg-type]


def test_unknown_gpu_suggests() -> None:
    with pytest.raises(UsageError) as err:
        find_device("RTX 4900")
    assert "RTX 4090" in (err.value.next_step or "")


def test_model_without_attention_facts() -> None:
    spec = ModelSpec(
        name="encoder",
        source="test",
        architecture="bert",
        parameters=1,
        n_layers=0,
        n_heads=0,
        n_kv_heads=0,
        head_dim=0,
        context_length=512,
        vocab_size=10,
        hidden_size=8,
    )
    with pytest.raises(UsageError, match="no attention facts"):
        plan(spec, FitRequest(n_ctx=256))


def test_n_cpu_moe_moves_experts_to_ram() -> None:
    spec = spec_from_catalog("qwen3-30b-a3b")
    gpu = (find_device("RTX 3060 12GB"),)
    host = host_device()
    base = plan(spec, FitRequest(quant="Q4_K_M", n_ctx=8192, gpus=gpu, host=host, n_gpu_layers=49))
    moe = plan(spec, FitRequest(quant="Q4_K_M", n_ctx=8192, gpus=gpu, host=host, n_gpu_layers=49, n_cpu_moe=48))
    assert not base.per_device[0].fits and moe.per_device[0].fits
    moved = base.per_device[0].components["weights"] - moe.per_device[0].components["weights"]
    # Experts are ~(30.5B − 3.3B)·128/120 parameters: most of the model.
    assert moved == pytest.approx(base.weights_bytes * 0.95, rel=0.05)
    assert sum(d.used_bytes for d in moe.per_device) == pytest.approx(sum(d.used_bytes for d in base.per_device))


def test_ollama_default_context_tiers() -> None:
    from selfhost.fit.solve import ollama_default_context

    assert ollama_default_context((find_device("RTX 3060 12GB"),), 131072) == 4096
    assert ollama_default_context((find_device("RTX 4090"),), 131072) == 32768
    assert ollama_default_context((find_device("RTX 4090"),) * 2, 131072) == 131072  # capped at the model's limit
    assert ollama_default_context((find_device("H100"),), 262144) == 262144


def test_vllm_fp8_kv_is_one_byte_per_element_and_launched_as_fp8() -> None:
    from selfhost.fit.engines import get_engine

    spec = spec_from_catalog("llama-3.1-8b")
    h100 = (find_device("H100"),)
    f16 = plan(spec, FitRequest(n_ctx=8192, engine="vllm", gpus=h100))
    fp8 = plan(spec, FitRequest(n_ctx=8192, engine="vllm", gpus=h100, kv_type="fp8"))
    assert fp8.detail["kv_bytes_per_token_per_rank"] * 2 == f16.detail["kv_bytes_per_token_per_rank"]
    assert fp8.kv_cache_bytes * 2 == pytest.approx(f16.kv_cache_bytes, abs=1)
    # same KV budget, half the bytes per token: twice the tokens (to the 16-token block)
    assert abs((fp8.kv_capacity_tokens or 0) - 2 * (f16.kv_capacity_tokens or 0)) <= 16
    argv = get_engine("vllm").launch_argv(spec, fp8, FitRequest(n_ctx=8192, engine="vllm", gpus=h100, kv_type="fp8"))
    assert argv[argv.index("--kv-cache-dtype") + 1] == "fp8"


def test_vllm_refuses_llama_cpp_kv_types() -> None:
    """q8_0 is llama.cpp's; vLLM would have been launched with fp8 and planned as f16."""
    with pytest.raises(UsageError, match="no KV cache type 'q8_0'"):
        plan(spec_from_catalog("llama-3.1-8b"), FitRequest(engine="vllm", kv_type="q8_0", gpus=(find_device("H100"),)))


def test_vllm_cpu_plan_is_whole_blocks_of_the_fixed_kv_size() -> None:
    from selfhost.fit.engines import get_engine
    from selfhost.hardware.select import host_device

    spec = spec_from_catalog("llama-3.1-8b")
    req = FitRequest(n_ctx=4096, engine="vllm", host=host_device(None), kv_cache_memory_bytes=3 * GIB)
    p = plan(spec, req)
    per_token = 32 * 2 * 8 * 128 * 2  # layers × (K, V) × KV heads × head dim × bf16
    assert p.kv_capacity_tokens == (3 * GIB) // (per_token * 16) * 16
    argv = get_engine("vllm").launch_argv(spec, p, req)
    assert argv[argv.index("--kv-cache-memory-bytes") + 1] == str(3 * GIB)
    assert "--gpu-memory-utilization" not in argv


def test_vllm_gpt_oss_mxfp4_weights_against_llm_d() -> None:
    """gpt-oss ships MXFP4 experts, which vLLM loads as they are. llm-d measured 13.47 GiB of weights for
    gpt-oss-20b on an H100 (empirical-vllm-memory-results.md); nothing here was fitted on it: experts at 4.25 bits
    (the MXFP4 format), the rest at 16. gpt-oss-120b runs on one 80 GB H100 (OpenAI's model card; llm-d ran it)."""
    small = plan(spec_from_catalog("gpt-oss-20b"), FitRequest(n_ctx=16000, engine="vllm", gpus=(find_device("H100"),)))
    assert small.quant == "MXFP4" and "MXFP4" in small.weights.source
    assert small.weights_bytes / GIB == pytest.approx(13.47, rel=0.10)
    big = plan(spec_from_catalog("gpt-oss-120b"), FitRequest(n_ctx=16000, engine="vllm", gpus=(find_device("H100"),)))
    assert big.fits and big.quant == "MXFP4"


@pytest.mark.parametrize("arch", ["granitehybrid", "mamba2", "qwen3next", "falcon-h1", "lfm2"])
def test_architectures_with_recurrent_state_are_refused_not_planned_wrong(arch: str) -> None:
    from dataclasses import replace

    spec = replace(spec_from_catalog("llama-3.1-8b"), architecture=arch)
    for engine in ("llama.cpp", "vllm"):
        with pytest.raises(UsageError, match="recurrent state per sequence"):
            plan(spec, FitRequest(engine=engine, gpus=(find_device("H100"),)))
