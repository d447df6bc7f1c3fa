"""The architecture zoo at the small width, built once per session for the zoo tests (tests/fit/test_zoo.py) and
fit's held-out checks on it (tests/fit/test_zoo_fit.py): F16 and Q4_K_M."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfhost.errors import BackendError, ModelNotFoundError


def zoo_tokenizers_available() -> bool:
    from selfhost.fit import zoo

    try:
        zoo._tokenizer_source_id("bpe")
        zoo._tokenizer_source_id("spm")
    except ModelNotFoundError:
        return False
    return True


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("zoo")


@pytest.fixture(scope="session")
def zoo_small(zoo_dir: Path) -> dict[str, object]:
    """Every architecture at the small width in F16 (one converter process for all)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from selfhost.fit import zoo

    if not zoo_tokenizers_available():
        pytest.skip("the embedded models (SmolLM2, Gemma 3 270M) lend the tokenizers")
    return dict(zoo.build_many([a.name for a in zoo.architectures()], "small", zoo_dir))


@pytest.fixture(scope="session")
def zoo_small_q4(zoo_small: dict[str, object], zoo_dir: Path) -> dict[str, object]:
    """The same F16 files quantized to Q4_K_M by llama-quantize (Q4_K is what llama.cpp's CPU backend repacks)."""
    from selfhost.fit import zoo

    out: dict[str, object] = {}
    for name, m in zoo_small.items():
        if isinstance(m, BackendError):
            out[name] = m
            continue
        assert isinstance(m, zoo.ZooModel)
        q = m.path.with_name(m.path.stem + "-q4_k_m.gguf")
        if not q.exists():
            try:
                zoo._quantize(m.path, q, "Q4_K_M", keep_mxfp4_experts=zoo.architecture(name).mxfp4_experts)
            except BackendError as e:
                out[name] = e
                continue
        out[name] = q
    return out
