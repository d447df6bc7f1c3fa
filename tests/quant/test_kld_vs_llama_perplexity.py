"""`selfhost quant --kld-ctx 512 --imatrix` against llama.cpp's own `llama-perplexity --kl-divergence -c 512`
(built by `make llama-server` from the same llama.cpp), on the same text and the same variant files; and the
importance-matrix variants that run makes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from selfhost.evals.builtin_suite import builtin_suite
from selfhost.evals.suite import default_suite
from selfhost.models.gguf_spec import spec_from_gguf
from selfhost.quant.imatrix import calibration_text, compute_imatrix, imatrix_variants
from selfhost.quant.kld import default_text
from selfhost.quant.run import run_order
from selfhost.quant.variants import Variant
from tests.cli.test_info_cli import run

PERPLEXITY = Path(sys.executable).parent / "llama-perplexity"
CTX, CHUNKS = 512, 2


@pytest.fixture(scope="module")
def text(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """llama.cpp's README (MIT), from the source archive `make install-test` downloads: several thousand tokens of
    ordinary technical prose, none of it written for this test."""
    archive = sorted((Path(sys.prefix) / "sdist").glob("llama_cpp_python-*.tar.gz"))[-1]
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("vendor/llama.cpp/README.md"))
        f = tar.extractfile(member)
        assert f is not None
        out = tmp_path_factory.mktemp("kld") / "readme.txt"
        out.write_bytes(f.read())
    return out


def llama_perplexity(
    ref: Path, var: Path, text: Path, tmp: Path, ctx: int = CTX, chunks: int = CHUNKS
) -> dict[str, float]:
    # Flash attention off in both: on this small model the kernel alone moves KLD by up to 17 % (RESULTS.md).
    common = ["-f", str(text), "-c", str(ctx), "-b", str(ctx), "--chunks", str(chunks), "-fa", "off", "-t", "2"]
    base = tmp / f"{ref.stem}.kld-base"
    if not base.exists():
        subprocess.run(
            [str(PERPLEXITY), "-m", str(ref), *common, "--kl-divergence-base", str(base)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    out = subprocess.run(
        [str(PERPLEXITY), "-m", str(var), *common, "--kl-divergence-base", str(base), "--kl-divergence"],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = out.stdout + out.stderr
    mean = re.search(r"Mean\s+KLD:\s+([-\d.eE+]+)\s+±\s+([-\d.eE+]+)", log)
    top = re.search(r"Same top p:\s+([-\d.eE+]+)\s+±\s+([-\d.eE+]+)\s*%", log)
    assert mean and top, log[-2000:]
    return {"kld_mean": float(mean[1]), "kld_mean_se": float(mean[2]), "top1": float(top[1]) / 100}


@pytest.fixture(scope="module")
def quant_run(smollm2_path: Path, text: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """One `selfhost quant` run with llama-perplexity's KLD settings and importance-matrix variants."""
    out = tmp_path_factory.mktemp("quant")
    args = ("--variants", "Q8_0,Q2_K", "--imatrix", "--kld-ctx", str(CTX), "--kld-tokens", str(CTX * CHUNKS))
    r = run("quant", str(smollm2_path), *args, "--text", str(text), "--max-cases", "4", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), out


def test_kld_agrees_with_llama_perplexity(quant_run: tuple[dict[str, Any], Path], text: Path, tmp_path: Path) -> None:
    got, _ = quant_run
    assert got["kld_settings"] == {"ctx": CTX, "tokens": CTX * CHUNKS}
    assert got["kld_positions"] == CHUNKS * (CTX - 1 - CTX // 2)  # llama-perplexity's scored positions
    by = {v["name"]: v for v in got["variants"]}
    ref = Path(by["F16"]["path"])
    for name in ("Q8_0", "Q2_K", "Q2_K+imatrix"):  # the same files selfhost made
        theirs = llama_perplexity(ref, Path(by[name]["path"]), text, tmp_path)
        ours = by[name]
        assert ours["kld_mean"] == pytest.approx(theirs["kld_mean"], rel=0.02), name
        assert ours["kld_mean_se"] == pytest.approx(theirs["kld_mean_se"], rel=0.05), name
        assert ours["top1_agreement"] == pytest.approx(theirs["top1"], abs=0.01), name
    assert by["Q8_0"]["kld_mean"] < by["Q2_K+imatrix"]["kld_mean"] < by["Q2_K"]["kld_mean"]


def test_imatrix_variant_next_to_the_plain_one(quant_run: tuple[dict[str, Any], Path], smollm2_path: Path) -> None:
    """llama-imatrix on the suite's prompts, llama-quantize --imatrix from the same F16 reference; both kept by
    what made them."""
    got, out = quant_run
    by = {v["name"]: v for v in got["variants"]}
    assert list(by) == ["F16", "Q8_0", "Q2_K", "Q2_K+imatrix"]  # Q8_0 does not use an importance matrix
    plain, guided = Path(by["Q2_K"]["path"]), Path(by["Q2_K+imatrix"]["path"])
    assert plain.read_bytes() != guided.read_bytes()
    assert abs(plain.stat().st_size - guided.stat().st_size) < 0.01 * plain.stat().st_size  # same type, same size
    assert by["Q2_K+imatrix"]["decision"] in ("worse", "undecided")  # 4 cases decide only by KLD
    # Calibrated on the prompts of the cases the run can reach, as the model sees them; the KLD text is held out.
    cases = run_order(builtin_suite())[:4]
    calib = calibration_text(spec_from_gguf(smollm2_path), cases)
    assert "<|im_start|>user" in calib and cases[0].messages[0]["content"] in calib
    assert default_text()[:200] not in calib
    (matrix,) = (out / "variants").glob("*.imatrix-*.gguf")
    made = matrix.stat().st_mtime_ns, guided.stat().st_mtime_ns
    f16 = Path(by["F16"]["path"])
    reference = Variant("F16", f16)
    # The same reference and calibration: both reused as they are.
    assert compute_imatrix(f16, calib, out / "variants") == matrix
    assert imatrix_variants(reference, ["Q2_K"], matrix, out / "variants")[0].path == guided
    assert (matrix.stat().st_mtime_ns, guided.stat().st_mtime_ns) == made
    # Another suite is another calibration: another importance matrix, and the variant is made again from it.
    other = compute_imatrix(
        reference.path, calibration_text(spec_from_gguf(smollm2_path), default_suite()[4:10]), out / "variants"
    )
    assert other != matrix and other.is_file()
    imatrix_variants(reference, ["Q2_K"], other, out / "variants")
    assert guided.stat().st_mtime_ns != made[1]
    # Types that do not use an importance matrix get no +imatrix twin.
    assert imatrix_variants(reference, ["Q8_0", "F16"], matrix, out / "variants") == []


def test_every_chunk_starts_with_bos_as_in_llama_perplexity(gemma3_path: Path, text: Path, tmp_path: Path) -> None:
    """Gemma 3's vocabulary adds BOS (SmolLM2's does not): llama-perplexity puts it first in every chunk, not only
    the first, and a chunk without it scores very differently on this model."""
    from selfhost.quant.kld import compare_distributions, logprobs, summarize
    from selfhost.quant.variants import quantize

    ctx, chunks = 64, 4  # llama-perplexity prints its summary only from 100 positions on
    ref = gemma3_path  # as shipped (Q4_K_M), against a Q2_K made from it: what matters here is the chunking
    var = quantize(ref, tmp_path / "gemma3.Q2_K.gguf", "Q2_K")
    ref_next, ref_lp = logprobs(ref, text.read_text(), max_tokens=ctx * chunks, chunk_ctx=ctx)
    var_next, var_lp = logprobs(var, text.read_text(), max_tokens=ctx * chunks, chunk_ctx=ctx)
    ours = summarize(compare_distributions(ref_next, ref_lp, var_next, var_lp))
    assert ours["positions"] == chunks * (ctx - 1 - ctx // 2)
    theirs = llama_perplexity(ref, var, text, tmp_path, ctx, chunks)
    assert ours["kld_mean"] == pytest.approx(theirs["kld_mean"], rel=0.02)
