"""Importance-matrix variants: llama.cpp's own llama-imatrix on calibration text, then llama-quantize --imatrix.

The calibration text is the suite's prompts rendered with the model's chat template (so JSON, tool-call and
extraction formats are covered); the KL divergence is measured on the --text, which is not part of it, so the KLD
of an imatrix variant is held out. Its pass rates are not: the suite's prompts (never the answers) calibrated it.
Both tools come from `make llama-server` (this environment's bin/), $SELFHOST_LLAMA_BIN, or PATH."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from selfhost.errors import BackendError, MissingDependencyError, UsageError
from selfhost.evals.suite import Case
from selfhost.models.spec import ModelSpec
from selfhost.quant.variants import Variant

__all__ = ["find_llama_tool", "calibration_text", "compute_imatrix", "quantize_with_imatrix", "imatrix_variants"]

# What an importance matrix changes: llama.cpp uses it for K-, IQ- and legacy 4/5-bit quants, not for Q8_0 or F16.
IMATRIX_TYPES = ("Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K")


def find_llama_tool(name: str) -> str:
    """llama.cpp's program NAME (llama-imatrix, llama-quantize, llama-perplexity)."""
    candidates = [os.environ.get("SELFHOST_LLAMA_BIN"), str(Path(sys.prefix) / "bin")]
    for d in candidates:
        if d and (p := Path(d) / name).is_file() and os.access(p, os.X_OK):
            return str(p)
    found = shutil.which(name)
    if found:
        return found
    raise MissingDependencyError(
        f"no {name} found (checked $SELFHOST_LLAMA_BIN, this environment's bin/, and PATH)",
        "build it with `make llama-server` (it builds llama.cpp's tools too), or install llama.cpp",
    )


def calibration_text(spec: ModelSpec, cases: list[Case]) -> str:
    """Every case's prompt as the model will see it (its chat template, generation prompt added)."""
    from selfhost.errors import SelfhostError
    from selfhost.template.render import render_chat

    t = spec.tokenizer
    rendered = []
    for c in cases:
        try:
            if not spec.chat_template:
                raise SelfhostError("no chat template")
            rendered.append(render_chat(spec.chat_template, c.messages, bos_token=t.bos_token, eos_token=t.eos_token))
        except SelfhostError:  # no template, or one that refuses the case: its text is still worth calibrating on
            rendered.append("\n".join(str(m.get("content", "")) for m in c.messages))
    return "\n".join(rendered) + "\n"


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise BackendError(f"{what} failed (exit {done.returncode}): {' / '.join(tail)}", f"rerun: {' '.join(argv)}")


def compute_imatrix(model: Path, text: str, out_dir: Path, chunk_ctx: int = 256, threads: int = 2) -> Path:
    """The importance matrix of MODEL on TEXT in chunks of CHUNK_CTX tokens, kept under OUT_DIR keyed by the model
    file, the text and the chunk size: a rerun on the same inputs reuses it, any change makes a new one."""
    from selfhost.backends.tokenizer import Tokenizer
    from selfhost.models.gguf_spec import spec_from_gguf

    # llama-imatrix needs at least two chunks: a short calibration text gets shorter chunks (never under 32 tokens)
    n_tokens = len(Tokenizer(spec_from_gguf(model)).encode(text, add_special=True, parse_special=True))
    chunk_ctx = min(chunk_ctx, n_tokens // 2)
    if chunk_ctx < 32:
        raise UsageError(
            f"the calibration text has {n_tokens} tokens, too few for an importance matrix (64 at least)",
            "use more cases (raise or drop --max-cases), or a suite with longer prompts",
        )
    st = model.stat()
    key = hashlib.sha256(f"{model.resolve()}:{st.st_size}:{st.st_mtime_ns}:{chunk_ctx}\n{text}".encode()).hexdigest()
    out = out_dir / f"{model.stem}.imatrix-{key[:16]}.gguf"
    if out.is_file():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    calib = out_dir / f".calibration-{key[:16]}.txt"
    calib.write_text(text, encoding="utf-8")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial.gguf")
    argv = [find_llama_tool("llama-imatrix"), "-m", str(model), "-f", str(calib), "-o", str(tmp)]
    argv += ["-c", str(chunk_ctx), "-b", str(chunk_ctx), "-t", str(threads), "--parse-special", "--no-ppl"]
    try:
        _run(argv, "llama-imatrix")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
        calib.unlink(missing_ok=True)
    return out


def llama_quantize(src: Path, dst: Path, name: str, options: list[str], threads: int = 2) -> Path:
    """DST as quantization NAME of SRC by llama.cpp's own llama-quantize with these OPTIONS, written atomically
    (only a complete file gets the final name)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.partial")
    argv = [find_llama_tool("llama-quantize"), *options, str(src), str(tmp), name, str(threads)]
    try:
        _run(argv, f"llama-quantize {name} {' '.join(options)}".rstrip())
        tmp.replace(dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst


def quantize_with_imatrix(src: Path, dst: Path, name: str, imatrix: Path, threads: int = 2) -> Path:
    """DST as quantization NAME of SRC, guided by IMATRIX (llama-quantize --imatrix), written atomically."""
    return llama_quantize(src, dst, name, ["--imatrix", str(imatrix)], threads)


def imatrix_variants(reference: Variant, names: list[str], imatrix: Path, out_dir: Path) -> list[Variant]:
    """`NAME+imatrix` for each NAME that an importance matrix affects, quantized from the reference; a file is
    reused only when made from the same reference file and the same importance matrix."""
    from selfhost.quant.variants import _mark, _valid, file_identity

    assert reference.path is not None
    made_from = f"{file_identity(reference.path)} imatrix:{imatrix.name}"
    out = []
    for name in names:
        if name not in IMATRIX_TYPES:
            continue
        p = out_dir / f"{reference.path.stem.removesuffix('.F16')}.{name}+imatrix.gguf"
        if not _valid(p, made_from):
            quantize_with_imatrix(reference.path, p, name, imatrix)
            _mark(p, made_from)
        out.append(Variant(f"{name}+imatrix", p, f"quantized here from the F16 reference with {imatrix.name}"))
    return out
