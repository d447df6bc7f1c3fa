"""Shape-only zoo builds (selfhost.fit.zoo, shape_only=True): a model's header and tensor table with the weights left as
holes. Such a file must be, to llama.cpp's dry run, the same file as a real build; and at published widths it lets
the tests hold fit's compute formula against llama.cpp's allocator where a real build would take gigabytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfhost.backends.llamacpp_log import MIB
from selfhost.backends.llamacpp_probe import llamacpp_probe
from selfhost.fit import zoo
from selfhost.fit.compute import llamacpp_compute_bytes
from selfhost.fit.kv import LlamaCppKVConfig
from selfhost.models.gguf_file import read_gguf
from selfhost.models.gguf_spec import spec_from_gguf
from tests.fit.conftest import zoo_tokenizers_available
from tests.fit.test_zoo_fit import _path

# the builds that go through every transformation a build makes: experts unfused back to the checkpoint's layout
# (Mixtral, DeepSeek, Granite), MXFP4 expert blocks and renamed tensors (gpt-oss), a fused QKV (Phi-3), a vision
# tower and its projector file (Gemma 3)
TRANSFORMED = ["mixtral-8x7b", "deepseek2-lite", "granite4-h-tiny", "gpt-oss-20b", "phi3-mini", "gemma3-4b-vision"]


@pytest.fixture(scope="module")
def shape_only_small(zoo_dir: Path) -> dict[str, zoo.ZooModel]:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    if not zoo_tokenizers_available():
        pytest.skip("the embedded models (SmolLM2, Gemma 3 270M) lend the tokenizers")
    built = zoo.build_many(TRANSFORMED, "small", zoo_dir, shape_only=True)
    return {n: m for n, m in built.items() if isinstance(m, zoo.ZooModel)}


def _header(path: Path) -> tuple[object, ...]:
    f = read_gguf(path)
    return f.metadata, f.array_lengths, f.tensors, f.data_offset, f.file_bytes


@pytest.mark.parametrize("name", TRANSFORMED)
def test_a_shape_only_build_is_the_real_builds_header_without_its_weights(
    zoo_small: dict[str, object], shape_only_small: dict[str, zoo.ZooModel], name: str
) -> None:
    shapes, real = shape_only_small[name], _path(zoo_small[name])
    assert "-shapes-" in shapes.path.name and shapes.path != real
    assert _header(shapes.path) == _header(real)  # metadata, tensor table (names, types, shapes, offsets), size
    if shapes.mmproj is not None:
        real_mmproj = zoo_small[name].mmproj  # type: ignore[attr-defined]
        assert _header(shapes.mmproj) == _header(real_mmproj)
    # the weights are a hole: the file takes a fraction of its length on disk
    st = shapes.path.stat()
    assert st.st_blocks * 512 < st.st_size / 4
    # and llama.cpp's dry run sizes the same compute buffer for it
    cfg = LlamaCppKVConfig(2048, 2)
    with llamacpp_probe(shapes.path, dry_run=True) as a, llamacpp_probe(real, dry_run=True) as b:
        assert a.context_report(cfg, False).compute_mib == b.context_report(cfg, False).compute_mib


def test_a_shape_only_build_refuses_to_be_quantized(tmp_path: Path) -> None:
    from selfhost.errors import UsageError

    with pytest.raises(UsageError, match="no weights to quantize"):
        zoo.build_many(["llama-1b"], "published", tmp_path, quant="Q4_K_M", shape_only=True)


@pytest.fixture(scope="module")
def moe_published(zoo_dir: Path) -> dict[str, Path]:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    if not zoo_tokenizers_available():
        pytest.skip("the embedded models (SmolLM2, Gemma 3 270M) lend the tokenizers")
    built = zoo.build_many(["mixtral-8x7b", "olmoe-1b-7b"], "published", zoo_dir, shape_only=True)
    return {n: m.path for n, m in built.items() if isinstance(m, zoo.ZooModel)}


@pytest.mark.parametrize("name", ["mixtral-8x7b", "olmoe-1b-7b"])
def test_the_formula_counts_the_feed_forward_of_each_expert_a_token_uses(
    moe_published: dict[str, Path], name: str
) -> None:
    """At published widths with llama-server's outputs (one per slot), the feed-forward is the peak. Mixtral-8x7B
    (2 of 8 experts) is where the rule was read; OLMoE (8 of 64) is held out. Counting one expert's rows, as fit did
    before, is −41 % and −62 % here."""
    path = moe_published[name]
    spec = spec_from_gguf(path)
    with llamacpp_probe(path, dry_run=True) as probe:
        for n_ctx, seqs, ub in [(4096, 1, 512), (32768, 4, 2048)]:
            cfg = LlamaCppKVConfig(n_ctx, seqs, n_ubatch=ub)
            truth = probe.context_report(cfg, True, n_outputs_max=seqs).compute_mib * MIB
            formula = llamacpp_compute_bytes(spec, cfg, True, seqs)
            assert abs(formula - truth) <= 0.05 * truth, (name, cfg, formula / MIB, truth / MIB)


def test_a_config_without_tensors_gets_the_same_expert_rows_as_its_gguf(moe_published: dict[str, Path]) -> None:
    """The catalog's Mixtral (a config: no tensors) and the zoo's GGUF of the same published config."""
    from selfhost.fit.compute import _ffn_rows
    from selfhost.models.resolve import resolve_model

    config_spec = resolve_model("mixtral-8x7b")
    assert not config_spec.tensors
    assert _ffn_rows(config_spec) == _ffn_rows(spec_from_gguf(moe_published["mixtral-8x7b"])) == 3 * 14336 * 2
    # a routed expert narrower than the dense layers (DeepSeek-V3: 2,048 per expert, 8 used; 3 dense layers of 18,432)
    v3 = resolve_model("deepseek-v3")
    assert _ffn_rows(v3) == max(3 * 18432, 3 * 2048 * 8)
