"""The compute-buffer estimate against llama.cpp's reported size: within 5 % everywhere we can measure."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from selfhost.backends.llamacpp_log import MIB
from selfhost.backends.llamacpp_probe import LlamaCppProbe, llamacpp_probe
from selfhost.fit.compute import llamacpp_compute_bytes, llamacpp_output_bytes
from selfhost.fit.kv import LlamaCppKVConfig
from selfhost.models.embedded import embedded_path
from selfhost.models.gguf_spec import spec_from_gguf

CASES = list(itertools.product([128, 512], [512, 2048, 8192, 16384], [True, False], [1, 4]))


@pytest.fixture(scope="module", params=["smollm2-135m", "gemma3-270m"])
def probe(request: pytest.FixtureRequest) -> Iterator[tuple[str, LlamaCppProbe]]:
    with llamacpp_probe(embedded_path(request.param)) as p:
        yield request.param, p


def test_compute_buffer_within_5_percent(probe: tuple[str, LlamaCppProbe]) -> None:
    name, p = probe
    spec = spec_from_gguf(p.path)
    errors = []
    for ub, ctx, fa, par in CASES:
        cfg = LlamaCppKVConfig(ctx, par, n_ubatch=ub)
        rep = p.context_report(cfg, flash_attn=fa)
        predicted = llamacpp_compute_bytes(spec, cfg, flash_attn=fa) / MIB
        errors.append(abs(predicted - rep.compute_mib) / rep.compute_mib)
        assert predicted == pytest.approx(rep.compute_mib, rel=0.05), (name, ub, ctx, fa, par)
        assert round(llamacpp_output_bytes(spec, par) / MIB, 2) == rep.output_mib
    assert max(errors) < 0.05
