"""`selfhost quant --imatrix`: llama.cpp's own llama-imatrix and llama-quantize (built by `make llama-server`) make
NAME+imatrix variants next to the plain ones, calibrated on the suite's prompts and kept by what made them."""

from __future__ import annotations

import json
from pathlib import Path

from selfhost.evals.suite import default_suite
from selfhost.models.gguf_spec import spec_from_gguf
from selfhost.quant.imatrix import calibration_text, imatrix_variants
from selfhost.quant.kld import default_text
from selfhost.quant.variants import Variant
from tests.cli.test_info_cli import run


def test_imatrix_variant_next_to_the_plain_one(smollm2_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "q"
    args = ("quant", str(smollm2_path), "--variants", "Q2_K", "--imatrix", "--limit", "4", "--out", str(out))
    r = run(*args, "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    by = {v["name"]: v for v in got["variants"]}
    assert list(by) == ["F16", "Q2_K", "Q2_K+imatrix"]
    plain, guided = Path(by["Q2_K"]["path"]), Path(by["Q2_K+imatrix"]["path"])
    assert plain.read_bytes() != guided.read_bytes()
    assert abs(plain.stat().st_size - guided.stat().st_size) < 0.01 * plain.stat().st_size  # same type, same size
    assert by["Q2_K+imatrix"]["kld_mean"] is not None and by["Q2_K+imatrix"]["pass_rate"] is not None
    # Calibrated on the suite's prompts as the model sees them; the KL divergence text is held out.
    calib = calibration_text(spec_from_gguf(smollm2_path), default_suite()[:4])
    assert "<|im_start|>user" in calib and default_suite()[0].messages[0]["content"] in calib
    assert default_text()[:200] not in calib
    (matrix,) = (out / "variants").glob("*.imatrix-*.gguf")
    made = matrix.stat().st_mtime_ns, guided.stat().st_mtime_ns
    # A rerun reuses both; another suite is another calibration, so another importance matrix and variant.
    assert run(*args, "--json").returncode == 0
    assert (matrix.stat().st_mtime_ns, guided.stat().st_mtime_ns) == made
    r = run(*args[:-4], "--limit", "6", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert len(list((out / "variants").glob("*.imatrix-*.gguf"))) == 2
    assert guided.stat().st_mtime_ns != made[1]
    # Types that do not use an importance matrix get no +imatrix twin.
    ref = Variant("F16", Path(by["F16"]["path"]))
    assert imatrix_variants(ref, ["Q8_0", "F16"], matrix, out / "variants") == []
