"""fit's compute buffer from llama.cpp's own allocator in a dry run (fit/dry_run.py: `no_alloc`, the mode llama.cpp's
`--fit` uses): for every zoo architecture at the small width, with flash attention on and off, the dry run's buffers
equal those of a real load in a fresh process, and fit's plan takes its compute buffer from it, keeping the formula's
beside it. A file llama.cpp cannot load leaves the formula in place, with the reason in the notes."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfhost.backends.llamacpp_log import MIB
from selfhost.fit import zoo
from selfhost.fit.compute import llamacpp_compute_bytes
from selfhost.fit.dry_run import DryRun, llamacpp_dry_run
from selfhost.fit.kv import LlamaCppKVConfig
from selfhost.fit.plan import FitRequest, plan
from selfhost.fit.verify import measure_llamacpp
from selfhost.models.gguf_spec import spec_from_gguf
from tests.fit.test_zoo_fit import _path


@pytest.mark.parametrize("name", [a.name for a in zoo.architectures()])
def test_the_dry_run_sizes_what_a_real_load_allocates(zoo_small: dict[str, object], name: str) -> None:
    path = _path(zoo_small[name])
    spec = spec_from_gguf(path)
    for flash_attn in (True, False):
        cfg = LlamaCppKVConfig(2048, 2, "f16", "f16")
        dry = llamacpp_dry_run(path, cfg, flash_attn, None)
        assert isinstance(dry, DryRun), dry
        real, _, _ = measure_llamacpp(path, cfg, flash_attn)
        got = (dry.compute_bytes, dry.kv_cache_bytes, dry.recurrent_state_bytes, dry.output_bytes)
        want = tuple(round(x * MIB) for x in (real.compute_mib, real.kv_mib, real.recurrent_mib, real.output_mib))
        assert got == want, (name, flash_attn)
        # fit's plan (in-process output rule: every micro-batch token an output, as measure_llamacpp loads it)
        req = FitRequest(n_ctx=1024, parallel=2, flash_attn=flash_attn, outputs_per_slot=False, dry_run=True)
        p = plan(spec, req)
        assert p.compute_bytes == dry.compute_bytes, (name, flash_attn)
        assert p.detail["compute_formula_bytes"] == llamacpp_compute_bytes(spec, cfg, flash_attn, None)
        assert any("dry run" in n and "fit's formula gives" in n for n in p.notes)
        # fit's own KV and recurrent-state rules agree with the allocator's, so no note says otherwise
        assert not any("a cache rule fit does not know" in n for n in p.notes), p.notes


def test_a_file_llama_cpp_cannot_load_keeps_the_formula(tmp_path: Path) -> None:
    """A llama GGUF with only two of its tensors: selfhost reads its header, llama.cpp refuses to load it."""
    from tests.hostile.inputs import _gguf

    path = _gguf(tmp_path / "two-tensors.gguf")
    spec = spec_from_gguf(path)
    req = FitRequest(n_ctx=256, dry_run=True)
    p = plan(spec, req)
    assert p.compute_bytes == p.detail["compute_formula_bytes"]
    assert p.detail["compute_source"] == "formula (fit/compute.py)"
    note = next(n for n in p.notes if n.startswith("compute buffer: fit's formula (estimated; held out"))
    assert "llama.cpp's dry run failed" in note, note
